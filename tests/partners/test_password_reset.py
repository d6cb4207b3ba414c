"""Password resets: they never skip the second factor, and an unknown address is told whom to ask."""

import re
from urllib.parse import urlsplit

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.partners.factories import NEW_PASSWORD, OwnerFactory, TOTPFactory, VerifiedEmailFactory, totp_code_of

pytestmark = pytest.mark.django_db


def reset_link(mail) -> str:
    """The path of the one link in a password-reset mail."""
    (url,) = re.findall(r"https?://\S+", mail.body)
    return urlsplit(url).path


def set_new_password(client, link: str):
    """Open the mailed link (it moves on to the form's own address) and choose a new password there."""
    form_url = client.get(link).url
    return client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})


def signed_in_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")


def test_a_reset_with_an_authenticator_app_asks_for_the_code_before_signing_in(client, mailoutbox):
    owner = VerifiedEmailFactory(user=OwnerFactory(user__email="olga@aqua.example").user).user
    TOTPFactory(user=owner)
    client.post(reverse("account_reset_password"), {"email": owner.email})

    response = set_new_password(client, reset_link(mailoutbox[0]))

    assert (response.status_code, response.url) == (302, reverse("mfa_authenticate"))
    assert signed_in_user_id(client) is None
    assert client.get(reverse("home")).status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert client.post(reverse("mfa_authenticate"), {"code": totp_code_of(owner)}).status_code == 302
    assert signed_in_user_id(client) == str(owner.pk)


def test_a_reset_without_an_authenticator_app_signs_in_at_once(client, mailoutbox):
    owner = VerifiedEmailFactory(user=OwnerFactory(user__email="olga@aqua.example").user).user
    client.post(reverse("account_reset_password"), {"email": owner.email})

    response = set_new_password(client, reset_link(mailoutbox[0]))

    assert (response.status_code, response.url) == (302, reverse("home"))
    assert signed_in_user_id(client) == str(owner.pk)


@override_settings(PROGRAM_CONTACT_EMAIL="program-team@clearwell.example")
def test_a_reset_for_an_unknown_address_says_whom_to_ask_and_links_nowhere(client, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": "stranger@nowhere.example"})

    assert (response.status_code, response.url) == (302, reverse("account_reset_password_done"))
    (mail,) = mailoutbox
    assert mail.to == ["stranger@nowhere.example"]
    assert mail.subject == "[Partner Loyalty] No account for this address"
    assert "stranger@nowhere.example. This address is not registered in the partner program" in mail.body
    assert "ask your company's owner" in mail.body
    assert "write to the program team at program-team@clearwell.example." in mail.body
    assert "sign up" not in mail.body.lower() and "signup" not in mail.body
    assert re.findall(r"https?://", mail.body) == []
