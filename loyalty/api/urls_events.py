from django.urls import path

from loyalty.api.events import EventReportView

urlpatterns = [
    path("events/", EventReportView.as_view(), name="api_event_report"),
]
