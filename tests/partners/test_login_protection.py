"""Failed passwords lock one e-mail address at one client address (django-axes), on the member site's sign-in and
on the back office's, which goes through the same page."""

import pytest
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from partners.security import client_ip
from tests.partners.factories import (
    PASSWORD,
    MemberFactory,
    ProgramManagerFactory,
    UserFactory,
    VerifiedEmailFactory,
    totp_code_of,
)

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.66"
HOME = "198.51.100.7"
OFFICE = "192.0.2.10"
WRONG = "not-the-password"


def sign_in(client, email: str, password: str, *, ip: str, url: str | None = None):
    return client.post(url or reverse("account_login"), {"login": email, "password": password}, REMOTE_ADDR=ip)


def signed_in_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")


@pytest.fixture
def superuser():
    return VerifiedEmailFactory(user=ProgramManagerFactory(email="boss@maker.example")).user


@pytest.fixture
def member():
    return VerifiedEmailFactory(user=MemberFactory(user__email="sophie@aqua.example").user).user


def back_office_sign_in_url(client) -> str:
    """Where the back office sends someone signed out: its sign-in, which sends them on to the site's."""
    chain = client.get("/admin/", follow=True).redirect_chain
    assert chain == [("/admin/login/?next=/admin/", 302), ("/accounts/login/?next=%2Fadmin%2F", 302)]
    return chain[-1][0]


def test_the_back_office_signs_in_on_the_protected_sign_in_page(client, superuser):
    assert back_office_sign_in_url(client) == "/accounts/login/?next=%2Fadmin%2F"


def test_credentials_posted_to_the_admin_sign_in_form_sign_nobody_in(client, superuser):
    response = client.post("/admin/login/", {"username": superuser.email, "password": PASSWORD}, REMOTE_ADDR=HOME)

    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
    assert signed_in_user_id(client) is None


def test_twenty_wrong_passwords_for_a_superuser_lock_the_back_office_sign_in_from_that_address_only(client, superuser):
    login_url = back_office_sign_in_url(client)
    for _ in range(20):
        sign_in(client, superuser.email, WRONG, ip=ATTACKER, url=login_url)

    refused = sign_in(client, superuser.email, PASSWORD, ip=ATTACKER, url=login_url)

    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    assert signed_in_user_id(client) is None
    assert client.get("/admin/", REMOTE_ADDR=ATTACKER).status_code == 302

    elsewhere = Client()
    password_step = sign_in(elsewhere, superuser.email, PASSWORD, ip=HOME, url=login_url)
    assert (password_step.status_code, password_step.url) == (302, reverse("mfa_authenticate"))
    code_step = elsewhere.post(reverse("mfa_authenticate"), {"code": totp_code_of(superuser)}, REMOTE_ADDR=HOME)
    assert (code_step.status_code, code_step.url) == (302, "/admin/")
    assert signed_in_user_id(elsewhere) == str(superuser.pk)
    assert elsewhere.get("/admin/", REMOTE_ADDR=HOME).status_code == 200


def test_twenty_wrong_passwords_for_a_member_lock_the_sign_in_from_that_address_only(client, member):
    for _ in range(20):
        sign_in(client, member.email, WRONG, ip=ATTACKER)

    refused = sign_in(client, member.email, PASSWORD, ip=ATTACKER)

    assert refused.status_code == 429
    assert signed_in_user_id(client) is None
    elsewhere = Client()
    response = sign_in(elsewhere, member.email, PASSWORD, ip=HOME)
    assert (response.status_code, response.url) == (302, reverse("home"))
    assert signed_in_user_id(elsewhere) == str(member.pk)


def test_failures_on_other_accounts_from_a_shared_address_do_not_refuse_a_members_correct_password(client, member):
    """An office behind one address: a colleague (or an attacker) failing on other accounts locks only those."""
    for n in range(12):
        sign_in(Client(), f"colleague{n}@aqua.example", WRONG, ip=OFFICE)
        sign_in(Client(), UserFactory().email, WRONG, ip=OFFICE)

    response = sign_in(client, member.email, PASSWORD, ip=OFFICE)

    assert (response.status_code, response.url) == (302, reverse("home"))
    assert signed_in_user_id(client) == str(member.pk)


def test_the_e_mail_counts_whatever_its_case_and_spaces(client, member):
    for _ in range(5):
        sign_in(client, f"  {member.email.upper()} ", WRONG, ip=ATTACKER)

    assert sign_in(client, member.email, PASSWORD, ip=ATTACKER).status_code == 429


def test_fewer_failures_than_the_limit_lock_nothing_and_a_success_clears_them(client, member):
    for _ in range(4):
        sign_in(client, member.email, WRONG, ip=HOME)
    assert sign_in(client, member.email, PASSWORD, ip=HOME).url == reverse("home")
    client.post(reverse("account_logout"), REMOTE_ADDR=HOME)

    for _ in range(4):
        sign_in(client, member.email, WRONG, ip=HOME)

    assert sign_in(client, member.email, PASSWORD, ip=HOME).url == reverse("home")


def test_the_lockout_page_is_a_page_of_the_site_that_says_when_to_try_again(client, member):
    for _ in range(5):
        sign_in(client, member.email, WRONG, ip=ATTACKER)

    page = sign_in(client, member.email, PASSWORD, ip=ATTACKER)

    assert page.status_code == 429
    assert {"account/lockout.html", "base.html"} <= {template.name for template in page.templates}
    assert '<h1 class="h3 mb-3">Too many failed sign-ins</h1>' in page.text
    assert 'name="password"' not in page.text
    assert '<meta name="viewport"' in page.text
    assert "Try again in 15\xa0minutes (at " in page.text
    assert f'href="{reverse("account_reset_password")}"' in page.text


def test_the_lockout_counts_the_client_address_the_trusted_proxy_saw():
    factory = RequestFactory()
    forged = factory.post("/", HTTP_X_FORWARDED_FOR="10.0.0.1, 203.0.113.66", REMOTE_ADDR="10.1.1.1")

    with override_settings(TRUSTED_PROXY_COUNT=1):
        assert client_ip(forged) == "203.0.113.66"
        assert client_ip(factory.post("/", REMOTE_ADDR="10.1.1.1")) == "10.1.1.1"
    with override_settings(TRUSTED_PROXY_COUNT=0):
        assert client_ip(forged) == "10.1.1.1"
