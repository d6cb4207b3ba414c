"""Absolute links in messages (e-mails and anything else read away from the site).

The one place that reads SITE_URL: every link in every message starts with the same public address, whichever
process builds it (a web request, a Celery worker, a command) and whatever host a request named.
"""

from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.urls import reverse


def absolute_url(path_or_url_name: str, *args, **kwargs) -> str:
    """The public address of a path ("/rewards/", "/claims/?status=open") or of a URL name reversed with
    `args`/`kwargs` ("invitation_accept", token)."""
    is_path = path_or_url_name.startswith("/")
    path = path_or_url_name if is_path else reverse(path_or_url_name, args=args, kwargs=kwargs)
    return settings.SITE_URL.rstrip("/") + path


def on_site(url: str) -> str:
    """A link someone else built (a library, from the request's host) moved onto SITE_URL: its path, query and
    fragment are kept."""
    parts = urlsplit(url)
    return absolute_url(urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment)))


def site() -> SimpleNamespace:
    """The site as e-mail templates name it ("Thank you for using {{ current_site.domain }}"): SITE_URL's host, in
    place of the host a request named (allauth's default)."""
    domain = urlsplit(settings.SITE_URL).netloc
    return SimpleNamespace(name=domain, domain=domain)


def site_hostname() -> str:
    """SITE_URL's host name without the port ("loyalty.example.com"), e.g. for our e-mails' Message-IDs."""
    return urlsplit(settings.SITE_URL).hostname or "localhost"
