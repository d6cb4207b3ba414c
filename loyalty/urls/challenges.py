from django.urls import path

from loyalty.views import challenges as views

urlpatterns = [
    path("", views.challenge_list, name="challenge_list"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("<int:challenge_id>/", views.challenge_detail, name="challenge_detail"),
]
