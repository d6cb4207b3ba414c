"""Reward orders' addresses (/api/v1/orders/…): rewards.api.orders."""

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from integrations.api.problems import problem_response
from rewards.api import orders


def by_method(name: str, **views):
    """One address for several operations, each its own ApiView (GET the list, POST a new one): a request goes to
    the view of its method (HEAD to GET's), any other method is a 405 problem. The schema sees one class holding
    each view's method, so each operation is documented by its own view."""
    handlers = {method.upper(): view.as_view() for method, view in views.items()}
    if "GET" in handlers:
        handlers.setdefault("HEAD", handlers["GET"])
    allowed = ", ".join(sorted(handlers))

    @csrf_exempt  # as REST framework's own views: session-authenticated requests are checked by its authentication
    def dispatch(request, *args, **kwargs):
        handler = handlers.get(request.method) or (
            handlers[next(iter(handlers))] if request.method == "OPTIONS" else None
        )
        if handler is None:
            response = problem_response(
                request, status_code=405, code="method_not_allowed", detail=f"Use {allowed} on this address."
            )
            response["Allow"] = allowed
            return response
        return handler(request, *args, **kwargs)

    dispatch.cls = type(name, tuple(views.values()), {"__doc__": "One address, several operations."})
    dispatch.initkwargs = {}
    return dispatch


urlpatterns = [
    path("orders/", by_method("OrdersView", get=orders.OrderListView, post=orders.OrderCreateView), name="api_orders"),
    path("orders/<int:pk>/", orders.OrderDetailView.as_view(), name="api_order"),
    path("orders/<int:pk>/status/", orders.OrderStatusView.as_view(), name="api_order_status"),
]
