"""The REST API, version 1 (/api/v1/): each app's operations from its own `api` package, the OpenAPI schema and its
docs page. Anything else under /api/ is a problem document's 404, never an HTML page."""

from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from integrations.api.problems import problem_response


@csrf_exempt  # a POST to an unknown address answers 404, not the CSRF failure page
def not_found(request, *args, **kwargs):
    return problem_response(request, status_code=404, code="not_found", detail="There is no such API address.")


class Schema(SpectacularAPIView):
    permission_classes = [AllowAny]


class Docs(SpectacularSwaggerSplitView):
    permission_classes = [AllowAny]
    title = "Partner Loyalty API"


v1 = [
    path("schema/", Schema.as_view(), name="api_schema"),
    path("docs/", Docs.as_view(url_name="api_schema"), name="api_docs"),
    path("", include("integrations.api.urls")),
    path("", include("integrations.api.urls_webhooks")),
    path("", include("partners.api.urls")),
    path("", include("loyalty.api.urls_sales")),
    path("", include("loyalty.api.urls_events")),
    path("", include("loyalty.api.urls_ledger")),
    path("", include("loyalty.api.urls_claims")),
    path("", include("loyalty.api.urls_referrals")),
    path("", include("rewards.api.urls_catalogue")),
    path("", include("rewards.api.urls_orders")),
]

urlpatterns = [
    path("v1/", include(v1)),
    re_path(r"^", not_found),
]
