from django.contrib import admin
from django.urls import include, path

from loyalty import views as loyalty_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("points/", loyalty_views.points_statement, name="points_statement"),
    path("points/entries/<int:entry_id>/", loyalty_views.points_entry, name="points_entry"),
    path("claims/", include("loyalty.claim_urls")),
    path("rewards/", include("rewards.urls")),
    path("", include("partners.urls")),
]
