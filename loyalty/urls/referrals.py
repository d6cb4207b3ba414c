from django.urls import path

from loyalty.views import referrals as views

urlpatterns = [
    path("", views.referral_list, name="referral_list"),
    path("new/", views.referral_new, name="referral_new"),
]
