"""Two-factor authentication (allauth.mfa, an authenticator app with recovery codes): staff must set it up before
they reach the back office or their portfolio (partners.security); partner owners may turn it on."""

from io import StringIO

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from partners.demo import DEMO_TOTP_SECRET
from partners.security import totp_code
from tests.helpers import messages_of
from tests.partners.factories import (
    PASSWORD,
    AccountManagerFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
    VerifiedEmailFactory,
    totp_code_of,
)

pytestmark = pytest.mark.django_db

SET_UP = reverse("mfa_activate_totp")
HELD = (
    "Your account sees partners' data, so it must be protected by two-factor authentication. "
    "Set up an authenticator app to continue."
)


def sign_in_with_password(client, user, next_url: str = ""):
    url = reverse("account_login") + (f"?next={next_url}" if next_url else "")
    return client.post(url, {"login": user.email, "password": PASSWORD})


def signed_in_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")


def confirm_password_for(client, url: str) -> None:
    """allauth asks for the password again before two-factor settings change, even right after signing in."""
    reauthenticate = client.get(url)
    assert reauthenticate.url == f"{reverse('account_reauthenticate')}?next={url.replace('/', '%2F')}"
    assert client.post(reauthenticate.url, {"password": PASSWORD}).url == url


def set_up_totp(client) -> str:
    """Go through the set-up pages as the signed-in user and return the app's secret."""
    confirm_password_for(client, SET_UP)
    secret = client.get(SET_UP).context["form"].secret
    done = client.post(SET_UP, {"code": totp_code(secret)})
    assert (done.status_code, done.url) == (302, reverse("mfa_view_recovery_codes"))
    return secret


def admin_urls() -> list[str]:
    """The back office's index and the list page of every model it has."""
    lists = [reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist") for m in admin.site._registry]
    return [reverse("admin:index"), *lists]


# Enforcement --------------------------------------------------------------------------------------------


def test_a_program_manager_without_an_authenticator_app_reaches_no_back_office_page(client):
    client.force_login(ProgramManagerFactory(totp=False))

    answers = {url: client.get(url) for url in admin_urls()}

    assert {url: (r.status_code, r.url) for url, r in answers.items()} == {url: (302, SET_UP) for url in answers}
    assert messages_of(answers[reverse("admin:index")]) == [HELD]


def test_a_program_manager_is_sent_to_set_up_the_app_right_after_signing_in(client):
    manager = VerifiedEmailFactory(user=ProgramManagerFactory(totp=False)).user

    assert sign_in_with_password(client, manager, next_url="/admin/").url == "/admin/"
    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[0] == (SET_UP, 302)
    assert HELD in messages_of(response)


def test_an_account_manager_without_an_authenticator_app_cannot_open_their_portfolio(client):
    manager = AccountManagerFactory(totp=False)
    partner = PartnerFactory(account_manager=manager)
    client.force_login(manager)

    for url in (reverse("home"), reverse("partner_list"), reverse("partner_detail", args=[partner.pk])):
        response = client.get(url)
        assert (response.status_code, response.url) == (302, SET_UP), url


def test_staff_set_up_the_app_and_then_reach_their_pages(client):
    manager = VerifiedEmailFactory(user=AccountManagerFactory(totp=False)).user
    partner = PartnerFactory(account_manager=manager, name="Aqua Dealer Ltd")
    client.force_login(manager)

    set_up_totp(client)

    assert client.get(reverse("mfa_view_recovery_codes")).status_code == 200
    assert "Aqua Dealer Ltd" in client.get(reverse("partner_detail", args=[partner.pk])).text


def test_staff_cannot_turn_the_app_off(client):
    manager = VerifiedEmailFactory(user=ProgramManagerFactory()).user
    sign_in_with_password(client, manager)
    client.post(reverse("mfa_authenticate"), {"code": totp_code_of(manager)})
    confirm_password_for(client, reverse("mfa_deactivate_totp"))

    response = client.post(reverse("mfa_deactivate_totp"))

    assert response.status_code == 200
    assert "You cannot deactivate two-factor authentication." in response.text
    assert Authenticator.objects.filter(user=manager, type=Authenticator.Type.TOTP).exists()


def test_partner_people_are_not_held(client):
    client.force_login(OwnerFactory().user)

    assert client.get(reverse("home")).status_code == 200


# Signing in with the second factor ----------------------------------------------------------------------


@pytest.fixture
def manager():
    return VerifiedEmailFactory(user=ProgramManagerFactory(email="paula@maker.example")).user


def test_with_an_authenticator_app_the_password_alone_does_not_sign_in(client, manager):
    response = sign_in_with_password(client, manager, next_url="/admin/")

    assert (response.status_code, response.url) == (302, reverse("mfa_authenticate"))
    assert signed_in_user_id(client) is None
    assert client.get("/admin/").status_code == 302
    page = client.get(reverse("mfa_authenticate"))
    assert "Two-Factor Authentication" in page.text


def test_a_wrong_code_is_refused(client, manager):
    sign_in_with_password(client, manager)
    right = totp_code_of(manager)
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"

    response = client.post(reverse("mfa_authenticate"), {"code": wrong})

    assert response.status_code == 200
    assert "Incorrect code." in response.text
    assert signed_in_user_id(client) is None


def test_the_right_code_signs_in_and_leads_on(client, manager):
    sign_in_with_password(client, manager, next_url="/admin/")

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code_of(manager)})

    assert (response.status_code, response.url) == (302, "/admin/")
    assert signed_in_user_id(client) == str(manager.pk)
    assert client.get("/admin/").status_code == 200


def test_a_recovery_code_signs_in_once(manager):
    codes = RecoveryCodes.activate(manager).generate_codes()
    first, again = Client(), Client()

    sign_in_with_password(first, manager)
    used = first.post(reverse("mfa_authenticate"), {"code": codes[0]})
    sign_in_with_password(again, manager)
    reused = again.post(reverse("mfa_authenticate"), {"code": codes[0]})

    assert (used.status_code, used.url) == (302, reverse("home"))
    assert signed_in_user_id(first) == str(manager.pk)
    assert reused.status_code == 200 and "Incorrect code." in reused.text
    assert signed_in_user_id(again) is None
    assert again.post(reverse("mfa_authenticate"), {"code": codes[1]}).status_code == 302


# Partner owners --------------------------------------------------------------------------------------


def test_an_owner_turns_on_two_factor_authentication_from_the_profile(client):
    owner = VerifiedEmailFactory(user=OwnerFactory().user).user
    client.force_login(owner)

    profile = client.get(reverse("profile"))
    assert f'<a href="{reverse("mfa_index")}">Set up or manage two-factor authentication</a>' in profile.text
    assert "Activate" in client.get(reverse("mfa_index")).text
    set_up_totp(client)
    client.post(reverse("account_logout"))

    assert sign_in_with_password(client, owner).url == reverse("mfa_authenticate")
    assert client.post(reverse("mfa_authenticate"), {"code": totp_code_of(owner)}).url == reverse("home")
    assert signed_in_user_id(client) == str(owner.pk)


# The pages -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mfa_index", "mfa_view_recovery_codes", "mfa_generate_recovery_codes"])
def test_two_factor_pages_use_the_sites_layout(client, manager, name):
    RecoveryCodes.activate(manager)
    sign_in_with_password(client, manager)
    client.post(reverse("mfa_authenticate"), {"code": totp_code_of(manager)})
    if name != "mfa_index":
        confirm_password_for(client, reverse(name))

    page = client.get(reverse(name))

    assert page.status_code == 200
    assert "base.html" in {template.name for template in page.templates}
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert 'class="navbar-toggler"' in page.text


def test_the_set_up_page_uses_the_sites_layout(client):
    client.force_login(VerifiedEmailFactory(user=OwnerFactory().user).user)
    confirm_password_for(client, SET_UP)

    page = client.get(SET_UP)

    assert "base.html" in {template.name for template in page.templates}
    assert 'src="data:image/svg+xml;base64,' in page.text
    assert page.context["form"].secret in page.text


# The demo ------------------------------------------------------------------------------------------------


def test_the_demo_code_command_prints_the_code_the_demo_staff_sign_in_with():
    out = StringIO()
    before = totp_code(DEMO_TOTP_SECRET)

    call_command("demo_totp_code", stdout=out)

    code, rest = out.getvalue().split("  ", 1)
    assert code in {before, totp_code(DEMO_TOTP_SECRET)}  # the 30-second step may turn in between
    assert rest.startswith("(changes in ")
