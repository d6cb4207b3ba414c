"""A signed-in member reads the site (words, dates, numbers and money) in the language of their profile, and its
times in their time zone (their own, else their region's, else the program's).

Both are noted in the session when they sign in and when they change them, so that pages cost no extra query;
LocaleMiddleware's choice (the browser's languages) and the program's time zone apply to everyone else.
"""

import contextlib
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone, translation

from partners.visibility import current_membership

LANGUAGE_SESSION_KEY = "member_language"
TIME_ZONE_SESSION_KEY = "member_time_zone"
_KNOWN = {code for code, _name in settings.LANGUAGES}


def remember_language(request, language: str) -> None:
    if hasattr(request, "session") and language in _KNOWN:
        request.session[LANGUAGE_SESSION_KEY] = language


def remember_time_zone(request, member) -> None:
    if hasattr(request, "session"):
        request.session[TIME_ZONE_SESSION_KEY] = member.zone().key


def note_language_at_login(sender, request, user, **kwargs) -> None:
    member = current_membership(user)
    if request is not None and member is not None:
        remember_language(request, member.language)
        remember_time_zone(request, member)


class MemberLanguageMiddleware:
    """After LocaleMiddleware and the session: the member's own language wins over the browser's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = request.session.get(LANGUAGE_SESSION_KEY) if hasattr(request, "session") else None
        if language in _KNOWN:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        zone = request.session.get(TIME_ZONE_SESSION_KEY) if hasattr(request, "session") else None
        timezone.deactivate()
        if zone:
            # A zone the system no longer knows leaves the program's.
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                timezone.activate(ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()  # the thread goes back to the program's zone (a worker's next job, a test)
