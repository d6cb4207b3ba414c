from django.urls import path

from rewards.api.catalogue import RewardDetailView, RewardListView

urlpatterns = [
    path("rewards/", RewardListView.as_view(), name="api_reward_list"),
    path("rewards/<int:pk>/", RewardDetailView.as_view(), name="api_reward_get"),
]
