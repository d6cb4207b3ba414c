from django.urls import path

from loyalty.views import ledger as views

urlpatterns = [
    path("", views.points_statement, name="points_statement"),
    path("entries/<int:entry_id>/", views.points_entry, name="points_entry"),
]
