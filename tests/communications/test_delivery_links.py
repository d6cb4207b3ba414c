"""A message's short link (/m/<code>): carried by sent SMS and e-mails instead of the long link, counted as a click,
and signing its member in with one tap, once, within SIGN_IN_LINK_HOURS, never staff or inactive people."""

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.utils import timezone

from communications import sms
from communications.constants import Channel, DeliveryStatus, Kind
from communications.delivery_links import tracked_link
from communications.models import Delivery
from communications.services import notify
from partners.constants import MemberStatus, StaffRole
from tests.communications.factories import DeliveryFactory, MessageTemplateFactory
from tests.partners.factories import MemberFactory, TOTPFactory, UserFactory, invitation_for_a_new_person

pytestmark = pytest.mark.usefixtures("messages_out")

SITE = "https://loyalty.example.com"
CLAIM = {"invoice_number": "INV-7", "points": 1250, "explanation": "Softeners v1: 5 units × 250 pts = 1250"}
PAGE = "/claims/7/"  # the message's page; it asks a visitor who is not signed in to sign in
SIGN_IN = "/accounts/login/?next=/claims/7/"


def sent_link(member=None, *, hours_ago=1.0, link=f"{SITE}/claims/7/", **kwargs):
    """A sent e-mail with a short link; returns it and the link's path ("/m/<code>")."""
    sent = {"status": DeliveryStatus.SENT, "sent_at": timezone.now() - timedelta(hours=hours_ago)}
    delivery = DeliveryFactory(member=member or MemberFactory(), link=link, **{**sent, **kwargs})
    url = tracked_link(delivery)
    delivery.save(update_fields=["link_code"])
    return delivery, urlsplit(url).path


def signed_in_user_id(client) -> int | None:
    user_id = client.session.get("_auth_user_id")
    return int(user_id) if user_id else None


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- the short link in what is sent ---------------------------------------------------------------------------------


def test_a_sent_sms_carries_the_short_link_in_at_most_two_segments(
    django_capture_on_commit_callbacks, settings, monkeypatch
):
    settings.TIME_ZONE = "Europe/Berlin"
    noon = datetime(2026, 12, 7, 12, tzinfo=ZoneInfo("Europe/Berlin"))  # out of the quiet hours
    monkeypatch.setattr(timezone, "now", lambda: noon)
    member = MemberFactory(phone="+49 151 2345678", preferred_channel=Channel.SMS)
    # A text of three segments with its link, written for this member's role (the default SMS has no link).
    body = "Claim {{ invoice_number }} approved. " * 12 + "{{ link }}"
    MessageTemplateFactory(channel=Channel.SMS, role=member.role, subject="", body=body)

    with django_capture_on_commit_callbacks(execute=True):
        notify(
            kind=Kind.CLAIM_APPROVED,
            member=member,
            source_key="claim:7:approved",
            variables=CLAIM,
            link_path="/claims/7/",
        )

    delivery = Delivery.objects.get(member=member, channel=Channel.SMS)
    assert delivery.body.endswith(f"{SITE}/claims/7/")  # stored with the long link
    assert delivery.status == DeliveryStatus.SENT
    assert len(delivery.link_code) >= 16
    [message] = sms.outbox
    assert message.text.startswith("Claim INV-7 approved. Claim INV-7 approved.")
    assert message.text.endswith(f"... {SITE}/m/{delivery.link_code}")
    assert "/claims/7/" not in message.text
    assert sms._segment_count(message.text) == 2


def test_a_sent_email_carries_the_short_link_instead_of_the_long_one(django_capture_on_commit_callbacks):
    member = MemberFactory()

    with django_capture_on_commit_callbacks(execute=True):
        notify(
            kind=Kind.CLAIM_APPROVED,
            member=member,
            source_key="claim:7:approved",
            variables=CLAIM,
            link_path="/claims/7/",
        )

    delivery = Delivery.objects.get(member=member, channel=Channel.EMAIL)
    assert f"{SITE}/claims/7/" in delivery.body
    [email] = mail.outbox
    assert f"\n{SITE}/m/{delivery.link_code}\n" in email.body
    assert "/claims/7/" not in email.body


def test_a_message_without_a_link_gets_no_short_link():
    delivery = DeliveryFactory(link="")

    assert tracked_link(delivery) == ""
    assert delivery.link_code is None


def test_a_resent_message_keeps_its_short_link():
    delivery, path = sent_link()

    assert tracked_link(delivery) == f"{SITE}{path}"


# --- the click ------------------------------------------------------------------------------------------------------


def test_opening_the_short_link_counts_the_first_click_and_leads_to_the_page(client):
    delivery, path = sent_link()
    client.force_login(delivery.member.user)

    first = client.get(path)
    delivery.refresh_from_db()
    clicked_at = delivery.clicked_at
    second = client.get(path)
    delivery.refresh_from_db()

    assert (first.status_code, first["Location"]) == (302, "/claims/7/")
    assert second["Location"] == "/claims/7/"
    assert delivery.status == DeliveryStatus.CLICKED
    assert clicked_at is not None and delivery.clicked_at == clicked_at
    assert delivery.link_used_at is None  # already signed in: no sign-in spent


def test_an_unknown_code_gets_a_friendly_404_and_changes_nothing(client):
    delivery, _path = sent_link()

    for path in ("/m/AAAAAAAAAAAAAAAA", "/m/" + "x" * 500, f"/m/{delivery.link_code.upper()}x"):
        response = client.get(path)
        assert response.status_code == 404
        assert "This link does not work" in response.text
    delivery.refresh_from_db()
    assert (delivery.status, delivery.clicked_at, signed_in_user_id(client)) == (DeliveryStatus.SENT, None, None)


@pytest.mark.parametrize(
    ("link", "location"),
    [
        ("https://evil.example/phish?x=1", "/phish?x=1"),  # another host: only its path, on this site
        (f"{SITE}//evil.example/phish", "/"),
        (f"{SITE}/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ],
)
def test_the_short_link_only_ever_leads_to_a_page_of_this_site(client, link, location):
    delivery, _path = sent_link()
    delivery.link = link
    delivery.save(update_fields=["link"])
    client.force_login(delivery.member.user)

    response = client.get(f"/m/{delivery.link_code}")

    assert (response.status_code, response["Location"]) == (302, location)


# --- one-tap sign-in ------------------------------------------------------------------------------------------------


def test_the_short_link_signs_the_member_in_once(client):
    delivery, path = sent_link()

    first = client.get(path)
    signed_in = signed_in_user_id(client)
    client.logout()
    second = client.get(path, follow=True)

    assert (first.status_code, first["Location"], signed_in) == (302, "/claims/7/", delivery.member.user.pk)
    # Not signed in again: the member's page sends them to the sign-in page, which says why.
    assert (second.redirect_chain, signed_in_user_id(client)) == ([("/claims/7/", 302), (SIGN_IN, 302)], None)
    assert "This link has already been used to sign in. Please sign in to continue." in second.text
    delivery.refresh_from_db()
    assert delivery.link_used_at is not None


@pytest.mark.parametrize(("hours_ago", "signs_in"), [(71.9, True), (72, False), (24 * 30, False)])
def test_the_short_link_signs_in_only_within_sign_in_link_hours_of_sending(client, settings, hours_ago, signs_in):
    settings.SIGN_IN_LINK_HOURS = 72
    delivery, path = sent_link(hours_ago=hours_ago)

    response = client.get(path)

    delivery.refresh_from_db()
    if signs_in:
        assert (response["Location"], signed_in_user_id(client)) == ("/claims/7/", delivery.member.user.pk)
    else:
        assert (response["Location"], signed_in_user_id(client), delivery.link_used_at) == (PAGE, None, None)
        assert messages_of(response) == ["This link has expired for signing in. Please sign in to continue."]
    assert delivery.clicked_at is not None


def test_a_head_request_such_as_a_link_checkers_spends_nothing(client):
    delivery, path = sent_link()

    response = client.head(path)

    delivery.refresh_from_db()
    assert (response.status_code, delivery.clicked_at, delivery.link_used_at) == (405, None, None)


def test_a_message_not_sent_yet_signs_nobody_in(client):
    delivery, path = sent_link(status=DeliveryStatus.QUEUED, sent_at=None)

    response = client.get(path)

    assert (response["Location"], signed_in_user_id(client)) == (PAGE, None)


@pytest.mark.parametrize(
    "user_kwargs",
    [
        {"is_staff": True, "totp": False},
        {"is_superuser": True, "totp": False},
        {"staff_role": StaffRole.ACCOUNT_MANAGER, "totp": False},
        {"staff_role": StaffRole.PROGRAM_MANAGER, "is_staff": True},  # with an authenticator app, as staff have
    ],
)
def test_the_short_link_never_signs_staff_in(client, user_kwargs):
    delivery, path = sent_link(MemberFactory(user=UserFactory(**user_kwargs)))

    response = client.get(path)

    delivery.refresh_from_db()
    assert (response["Location"], signed_in_user_id(client), delivery.link_used_at) == (PAGE, None, None)
    assert messages_of(response) == []


def test_the_short_link_does_not_skip_a_members_second_factor(client):
    member = MemberFactory()
    TOTPFactory(user=member.user)
    _delivery, path = sent_link(member)

    response = client.get(path)

    assert (response["Location"], signed_in_user_id(client)) == (PAGE, None)


@pytest.mark.parametrize(
    "member_kwargs",
    [
        {"status": MemberStatus.LEFT},
        {"status": MemberStatus.INVITED},
        {"status": MemberStatus.PENDING_APPROVAL},
        {"user__is_active": False},
    ],
)
def test_the_short_link_does_not_sign_in_a_member_who_is_not_active(client, member_kwargs):
    delivery, path = sent_link(MemberFactory(**member_kwargs))

    response = client.get(path)

    delivery.refresh_from_db()
    assert (response["Location"], signed_in_user_id(client), delivery.link_used_at) == (PAGE, None, None)


def test_an_invited_persons_short_link_leads_to_the_invitation_page_without_signing_in(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = invitation_for_a_new_person()
    [email] = mail.outbox
    [short_link] = re.findall(rf"{re.escape(SITE)}/m/\S+", email.body)

    response = client.get(urlsplit(short_link).path)

    assert (response["Location"], signed_in_user_id(client)) == (f"/invitations/{invitation.token}/", None)
    assert client.get(response["Location"]).status_code == 200


def test_someone_else_signed_in_stays_signed_in_as_themselves(client):
    delivery, path = sent_link()
    other = MemberFactory().user
    client.force_login(other)

    response = client.get(path)

    delivery.refresh_from_db()
    assert (response["Location"], signed_in_user_id(client), delivery.link_used_at) == ("/claims/7/", other.pk, None)
    assert delivery.clicked_at is not None


def test_the_back_office_never_shows_a_short_links_code(pm_client):
    delivery, _path = sent_link()

    response = pm_client.get(f"/admin/communications/delivery/{delivery.pk}/change/")

    assert response.status_code == 200
    assert delivery.member.user.email in response.text
    assert delivery.link_code not in response.text
