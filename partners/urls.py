from django.urls import path

from partners import views

urlpatterns = [
    path("", views.home, name="home"),
    path("profile/", views.profile, name="profile"),
    path("team/", views.team, name="team"),
    path("team/invite/", views.team_invite, name="team_invite"),
    path("team/<int:member_id>/approve/", views.member_approve, name="member_approve"),
    path("team/<int:member_id>/deactivate/", views.member_deactivate, name="member_deactivate"),
    path("team/<int:member_id>/resend/", views.invitation_resend, name="invitation_resend"),
    path("team/<int:member_id>/cancel/", views.invitation_cancel, name="invitation_cancel"),
    path("company/", views.company, name="company"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("partners/", views.partner_list, name="partner_list"),
    path("partners/<int:partner_id>/", views.partner_detail, name="partner_detail"),
]
