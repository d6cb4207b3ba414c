"""The entry points that serve (WSGI, ASGI, Celery workers) refuse to start half-configured."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def require_serving_configuration() -> None:
    if settings.STARTUP_PROBLEMS:
        raise ImproperlyConfigured(" ".join(settings.STARTUP_PROBLEMS))
