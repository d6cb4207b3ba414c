"""Every absolute link in a message comes from loyalty.common.links, which starts it with SITE_URL; in development
SITE_URL follows the port `make run` serves on."""

import ast
import re
import runpy
from urllib.parse import urlsplit

import pytest
from allauth.account.adapter import get_adapter
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from django.test import RequestFactory

from loyalty.common.links import absolute_url, on_site
from tests.partners.factories import MemberFactory, invitation_for_a_new_person
from tests.test_architecture import ROOT, _modules

SETTINGS_FILE = ROOT / "loyalty" / "settings.py"
LINKS_MODULE = "loyalty/common/links.py"
SITE = "https://loyalty.example.com"


def _site_url_with(monkeypatch, **environment) -> str:
    """SITE_URL as loyalty/settings.py computes it in this environment."""
    monkeypatch.delenv("SITE_URL", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))["SITE_URL"]


@pytest.mark.django_db
def test_invitation_mail_links_to_the_port_make_run_serves_on(
    monkeypatch, settings, django_capture_on_commit_callbacks, mailoutbox, client
):
    settings.SITE_URL = _site_url_with(monkeypatch, PORT="9000", DEBUG="true")

    with django_capture_on_commit_callbacks(execute=True):
        invitation = invitation_for_a_new_person()

    assert settings.SITE_URL == "http://127.0.0.1:9000"
    # The message's short link (communications/delivery_links.py) leads to the invitation.
    [short_link] = re.findall(r"http://127\.0\.0\.1:9000/m/\S+", mailoutbox[0].body)
    assert client.get(urlsplit(short_link).path)["Location"] == f"/invitations/{invitation.token}/"


def test_site_url_given_wins_over_the_port(monkeypatch):
    assert _site_url_with(monkeypatch, PORT="9000", DEBUG="true", SITE_URL="https://tunnel.example") == (
        "https://tunnel.example"
    )


@pytest.mark.django_db
def test_password_reset_mail_links_to_site_url_whatever_host_the_request_named(client, settings, mailoutbox):
    settings.SITE_URL = SITE
    settings.ALLOWED_HOSTS = ["testserver", "other-host.example"]
    member = MemberFactory(user__email="sam@dealer.example")
    EmailAddress.objects.create(user=member.user, email=member.user.email, verified=True, primary=True)

    client.post("/accounts/password/reset/", {"email": "sam@dealer.example"}, HTTP_HOST="other-host.example")

    assert len(mailoutbox) == 1
    assert f"{SITE}/accounts/password/reset/key/" in mailoutbox[0].body
    assert "other-host.example" not in mailoutbox[0].body  # nor in the greeting and the signature


@pytest.mark.django_db
def test_email_confirmation_link_comes_from_site_url(settings):
    settings.SITE_URL = SITE
    member = MemberFactory(user__email="sam@dealer.example")
    address = EmailAddress.objects.create(user=member.user, email=member.user.email, verified=False, primary=True)
    confirmation = EmailConfirmationHMAC(address)
    request = RequestFactory().get("/", HTTP_HOST="testserver")

    url = get_adapter(request).get_email_confirmation_url(request, confirmation)

    assert url == f"{SITE}/accounts/confirm-email/{confirmation.key}/"


def test_absolute_url_takes_a_path_or_a_url_name(settings):
    settings.SITE_URL = f"{SITE}/"

    assert absolute_url("/rewards/?page=2") == f"{SITE}/rewards/?page=2"
    assert absolute_url("invitation_accept", "abc") == f"{SITE}/invitations/abc/"
    assert (
        on_site("http://other-host.example:8000/claims/7/?tab=history#lines") == f"{SITE}/claims/7/?tab=history#lines"
    )


def test_only_the_links_module_reads_site_url_or_builds_absolute_urls():
    """A link built anywhere else would miss SITE_URL (a worker has no request) or trust the request's Host."""
    offenders = []
    for module, tree in _modules():
        if module in (LINKS_MODULE, "loyalty/settings.py"):
            continue
        for node in ast.walk(tree):
            reads_site_url = (isinstance(node, ast.Attribute) and node.attr == "SITE_URL") or (
                isinstance(node, ast.Constant) and node.value == "SITE_URL"
            )
            builds_from_request = isinstance(node, ast.Attribute) and node.attr == "build_absolute_uri"
            if reads_site_url or builds_from_request:
                offenders.append(f"{module}:{node.lineno}")

    assert offenders == []
