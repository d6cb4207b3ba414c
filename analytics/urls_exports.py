"""Exports (under /exports/): start one from a list page, the person's background exports and their downloads, and
the scheduled reports. `export_start` takes the list's name (analytics.exports.EXPORTS) and the list's query string:
`{% url 'export_start' 'claims' %}?format=xlsx&status=approved`."""

from django.urls import path

from analytics import views_exports as views

urlpatterns = [
    path("", views.export_list, name="export_list"),
    path("reports/", views.report_subscriptions, name="report_subscriptions"),
    path("<int:job_id>/download/", views.export_download, name="export_download"),
    path("<slug:kind>/", views.export_start, name="export_start"),
]
