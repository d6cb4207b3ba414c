"""Sales claims' addresses (/api/v1/claims/…): loyalty.api.claims."""

from django.urls import path

from loyalty.api import claims

urlpatterns = [
    path("claims/", claims.ClaimListView.as_view(), name="api_claims"),
    path("claims/<int:pk>/", claims.ClaimDetailView.as_view(), name="api_claim"),
    path("claims/<int:pk>/decision/", claims.ClaimDecisionView.as_view(), name="api_claim_decision"),
]
