"""The e-mail provider's delivery-report webhooks (django-anymail's tracking views, one per provider), included at
/anymail/ by the root URLconf when ANYMAIL["WEBHOOK_SECRET"] is set. A wrong secret gets anymail's 400; a body the
view cannot read, or a provider that is not configured, gets a logged 400 here instead of a server error."""

import logging
from functools import wraps

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailError
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import HttpResponseBadRequest
from django.urls import URLPattern

logger = logging.getLogger("communications.tracking")

app_name = "anymail"


def refusing_unreadable(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except SuspiciousOperation:
            raise  # a bad signature: Django answers 400 and logs it (django.security)
        except (AnymailError, ImproperlyConfigured, ValueError, KeyError, TypeError) as exc:
            logger.warning("Refused a delivery report at %s: %s: %s", request.path, type(exc).__name__, exc)
            return HttpResponseBadRequest()

    return wrapped


urlpatterns = [
    URLPattern(pattern.pattern, refusing_unreadable(pattern.callback), pattern.default_args, pattern.name)
    for pattern in anymail_urls.urlpatterns
    if pattern.name.endswith("_tracking_webhook")
]
