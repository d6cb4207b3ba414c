"""Referrals' addresses (/api/v1/referrals/…): loyalty.api.referrals."""

from django.urls import path

from loyalty.api import referrals

urlpatterns = [
    path("referrals/", referrals.ReferralListView.as_view(), name="api_referrals"),
    path("referrals/<int:pk>/", referrals.ReferralDetailView.as_view(), name="api_referral"),
    path("referrals/<int:pk>/conversion/", referrals.ReferralConversionView.as_view(), name="api_referral_conversion"),
]
