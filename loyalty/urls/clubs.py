from django.urls import path

from loyalty.views import clubs as views

urlpatterns = [
    path("", views.club, name="club"),
    path("join/<int:tier_id>/", views.club_join, name="club_join"),
]
