"""The site's root URLconf (ROOT_URLCONF): the back office, sign-in, then each capability's member pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("points/", include("loyalty.urls.ledger")),
    path("claims/", include("loyalty.urls.claims")),
    path("rewards/", include("rewards.urls")),
    path("", include("partners.urls")),
]
