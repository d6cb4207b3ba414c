"""The partners area of the API (/api/v1/): partners and members, upserted by the CRM's ids and read with filters."""

from django.urls import path

from partners.api import members, partners

urlpatterns = [
    path("partners/", partners.PartnerListView.as_view(), name="api_partner_list"),
    path("partners/<int:pk>/", partners.PartnerDetailView.as_view(), name="api_partner_detail"),
    path("partners/by-external-id/<str:external_id>/", partners.PartnerUpsertView.as_view(), name="api_partner_upsert"),
    path("members/", members.MemberListView.as_view(), name="api_member_list"),
    path("members/<int:pk>/", members.MemberDetailView.as_view(), name="api_member_detail"),
    path("members/<int:pk>/deactivation/", members.MemberDeactivationView.as_view(), name="api_member_deactivation"),
    path("members/by-external-id/<str:external_id>/", members.MemberUpsertView.as_view(), name="api_member_upsert"),
]
