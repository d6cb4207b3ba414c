from django.urls import path

from integrations.api import views

urlpatterns = [
    path("me/", views.MeView.as_view(), name="api_me"),
    path("auth/tokens/", views.TokenCreateView.as_view(), name="api_token_create"),
    path("auth/tokens/revoke/", views.TokenRevokeView.as_view(), name="api_token_revoke"),
]
