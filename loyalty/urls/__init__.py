"""The site's root URLconf (ROOT_URLCONF): the back office, sign-in, then each capability's member pages."""

from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

# The back office signs in through allauth's sign-in (/accounts/login/), like the member site: one page with the
# lockout after failed passwords (django-axes) and the second factor (allauth.mfa), which Django's own admin
# sign-in form would skip.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("loyalty.urls.api")),  # the REST API (/api/v1/…), its schema and docs
    path("accounts/", include("allauth.urls")),  # sign-in, password, and two-factor pages under accounts/2fa/
    path("points/", include("loyalty.urls.ledger")),
    path("claims/", include("loyalty.urls.claims")),
    path("learn/", include("loyalty.urls.training")),
    path("challenges/", include("loyalty.urls.challenges")),
    path("how-to-earn/", include("loyalty.urls.earning")),
    path("referrals/", include("loyalty.urls.referrals")),
    path("returns/", include("loyalty.urls.returns")),
    path("co-marketing/", include("loyalty.urls.comarketing")),
    path("draws/", include("loyalty.urls.draws")),
    path("club/", include("loyalty.urls.clubs")),
    path("rewards/", include("rewards.urls")),
    path("", include("analytics.urls")),  # dashboards and exports (analytics reads everything; nothing imports it)
    path("messages/", include("communications.urls")),
    path("", include("communications.urls_surveys")),  # surveys/ and feedback/
    path("", include("communications.urls_links")),  # m/<code>: a message's short (sign-in) link
    # The e-mail provider's delivery reports (communications/tracking.py); not served without a webhook secret.
    *([path("anymail/", include("communications.urls_tracking"))] if settings.ANYMAIL["WEBHOOK_SECRET"] else []),
    path("", include("partners.urls")),
]
