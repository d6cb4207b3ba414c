"""The analytics pages of the member site: dashboards (portfolio, partner, team, company, my progress) and exports."""

from django.urls import include, path

urlpatterns = [
    path("", include("analytics.urls_dashboards")),
    path("exports/", include("analytics.urls_exports")),
]
