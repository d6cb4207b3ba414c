"""Signing in safely: who must use a second factor, and how failed passwords are counted.

- Staff (program managers, account managers, anyone with back-office access) must have an authenticator app
  (TOTP, allauth's MFA) before they reach anything but their own account pages: `RequireStaffTOTPMiddleware`.
  Whether they have one is noted in the session when they sign in, so that pages cost no extra query.
- Failed passwords are counted by django-axes per e-mail address and client address together (settings: AXES_*);
  this module tells axes which e-mail (`login_email`) and which address (`client_ip`) an attempt is for, and
  renders the page a locked-out attempt gets (`lockout_response`).
"""

import time

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

# The session notes True once a staff user is known to have an authenticator app.
TOTP_SESSION_KEY = "partners.has_totp"
# allauth's sign-in, sign-out, password and two-factor pages (by view name, so not the back office's pages of
# allauth's models, "admin:account_emailaddress_changelist"): open to staff who have no authenticator app yet.
ACCOUNT_PAGES = ("account_", "mfa_")


def must_use_totp(user) -> bool:
    """Staff must sign in with an authenticator app: they see every partner's (or their portfolio's) data."""
    return user.is_staff or user.is_superuser or bool(user.staff_role)


def has_totp(user) -> bool:
    return is_mfa_enabled(user, [Authenticator.Type.TOTP])


def totp_code(secret: str) -> str:
    """The code an authenticator app shows now for `secret` (computed the way allauth checks it)."""
    return format_hotp_value(hotp_value(secret, int(time.time()) // mfa_settings.TOTP_PERIOD))


def note_totp_at_login(sender, request, user, **kwargs) -> None:
    """On every sign-in (user_logged_in, connected in PartnersConfig.ready): note whether a staff user has an
    authenticator app, so that the middleware need not ask the database on each page."""
    if request is not None and hasattr(request, "session") and must_use_totp(user):
        request.session[TOTP_SESSION_KEY] = has_totp(user)


class RequireStaffTOTPMiddleware:
    """Staff without an authenticator app are sent to set one up, from every page but their account pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or not must_use_totp(user) or request.session.get(TOTP_SESSION_KEY):
            return None
        if request.resolver_match.view_name.startswith(ACCOUNT_PAGES):  # "admin:account_..." is not one
            return None
        if has_totp(user):  # set up since they signed in
            request.session[TOTP_SESSION_KEY] = True
            return None
        messages.warning(
            request,
            _(
                "Your account sees partners' data, so it must be protected by two-factor authentication. "
                "Set up an authenticator app to continue."
            ),
        )
        return redirect("mfa_activate_totp")


def login_email(request, credentials=None) -> str:
    """The e-mail address a sign-in attempt is for, as axes counts it: allauth's form passes `email`, Django's
    authenticate() and axes itself `username`; a form post without credentials has the form's `login` field."""
    credentials = credentials or {}
    email = credentials.get("email") or credentials.get("username") or request.POST.get("login") or ""
    return email.strip().lower()


def client_ip(request) -> str:
    """The client address a sign-in attempt comes from: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the
    address the outermost of them saw (the entries before it in X-Forwarded-For are the client's to forge)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out sign-in gets (429), saying when to try again. Each try during the lockout restarts
    the wait (axes' default), so the wait is counted from now."""
    now = timezone.localtime()
    return render(
        request, "account/lockout.html", {"now": now, "retry_at": now + settings.AXES_COOLOFF_TIME}, status=429
    )
