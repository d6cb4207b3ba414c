"""The member site's dashboards, at the site root (analytics.urls): the account manager's portfolio, a partner's
overview (linked from the partner page, partners.urls' partner_detail), the owner's company dashboard (next to the
company settings at /company/) and a member's own progress."""

from django.urls import path

from analytics import views_dashboards as views

urlpatterns = [
    path("portfolio/", views.portfolio, name="portfolio"),
    path("partners/<int:partner_id>/overview/", views.partner_overview, name="partner_overview"),
    path("company/overview/", views.company_dashboard, name="company_dashboard"),
    path("my-progress/", views.my_progress, name="my_progress"),
]
