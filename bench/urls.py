"""The product's URLs plus a bare view to measure the server and middleware alone. Benchmarks only."""

from django.http import HttpResponse
from django.urls import include, path


def bare(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/bare/", bare),
    path("", include("loyalty.urls")),
]
