"""One-click unsubscribe from a marketing e-mail (issue #11, RFC 8058): signed, no sign-in, honoured at once."""

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from communications.constants import Channel, Kind, Topic
from communications.models import Preference
from communications.sending import UNSUBSCRIBE_SALT, unsubscribe_token
from tests.communications.factories import DeliveryFactory, PreferenceFactory
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.django_db
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def csrf_client():
    """A client that checks CSRF tokens as browsers and mail providers meet them (the test client skips it)."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def campaign_email():
    return DeliveryFactory(kind=Kind.CAMPAIGN, channel=Channel.EMAIL, member=MemberFactory())


def url_of(token: str) -> str:
    return reverse("unsubscribe", args=[token])


def opted_in(member, topic=Topic.CAMPAIGNS) -> bool | None:
    preference = Preference.objects.filter(member=member, topic=topic).first()
    return None if preference is None else preference.opted_in


def old_token(delivery, age: timedelta) -> str:
    """The delivery's unsubscribe token as it was signed `age` ago."""
    then = signing.b62_encode(int(time.time() - age.total_seconds()))
    with mock.patch.object(signing.TimestampSigner, "timestamp", lambda self: then):
        return unsubscribe_token(delivery)


def test_the_link_asks_first_and_changes_nothing_on_get(csrf_client, campaign_email):
    response = csrf_client.get(url_of(unsubscribe_token(campaign_email)))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Stop e-mails about Campaigns?" in html
    assert 'name="List-Unsubscribe" value="One-Click"' in html
    assert "csrfmiddlewaretoken" not in html
    assert opted_in(campaign_email.member) is None


def test_a_one_click_post_without_sign_in_or_csrf_token_unsubscribes_at_once(csrf_client, campaign_email):
    PreferenceFactory(member=campaign_email.member, topic=Topic.CAMPAIGNS, channel=Channel.SMS, opted_in=True)

    response = csrf_client.post(url_of(unsubscribe_token(campaign_email)), ONE_CLICK)

    assert response.status_code == 200
    assert "You are unsubscribed from Campaigns" in response.content.decode()
    preference = Preference.objects.get(member=campaign_email.member, topic=Topic.CAMPAIGNS)
    assert (preference.channel, preference.opted_in) == (Channel.SMS, False)


def test_unsubscribing_twice_is_the_same_as_once(csrf_client, campaign_email):
    url = url_of(unsubscribe_token(campaign_email))

    first = csrf_client.post(url, ONE_CLICK)
    second = csrf_client.post(url, ONE_CLICK)

    assert (first.status_code, second.status_code) == (200, 200)
    assert Preference.objects.filter(member=campaign_email.member).count() == 1
    assert opted_in(campaign_email.member) is False


def test_it_stops_only_that_topic_of_that_member(csrf_client, campaign_email):
    survey = DeliveryFactory(kind=Kind.SURVEY, channel=Channel.EMAIL, member=campaign_email.member)
    other = DeliveryFactory(kind=Kind.CAMPAIGN, channel=Channel.EMAIL)

    csrf_client.post(url_of(unsubscribe_token(survey)), ONE_CLICK)

    assert opted_in(campaign_email.member, Topic.SURVEYS) is False
    assert opted_in(campaign_email.member, Topic.CAMPAIGNS) is None
    assert opted_in(other.member) is None


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_link_gets_a_clear_page_and_changes_nothing(csrf_client, campaign_email, method):
    token = unsubscribe_token(campaign_email)
    forged = signing.dumps({"member": campaign_email.member.pk, "topic": Topic.CAMPAIGNS}, salt="another.salt")

    responses = [
        getattr(csrf_client, method)(url_of(token[:-2] + ("AA" if not token.endswith("AA") else "BB")), ONE_CLICK),
        getattr(csrf_client, method)(url_of(forged), ONE_CLICK),
        getattr(csrf_client, method)(url_of("x" * 2000), ONE_CLICK),
    ]

    for response in responses:
        assert response.status_code == 404
        assert "This unsubscribe link is not valid." in response.content.decode()
    assert not Preference.objects.exists()


def test_an_expired_link_gets_a_clear_page_and_changes_nothing(csrf_client, campaign_email):
    expired = old_token(campaign_email, timedelta(days=61))
    recent = old_token(campaign_email, timedelta(days=59))

    refused = csrf_client.post(url_of(expired), ONE_CLICK)
    assert refused.status_code == 410
    assert "This unsubscribe link has expired." in refused.content.decode()
    assert not Preference.objects.exists()

    assert csrf_client.post(url_of(recent), ONE_CLICK).status_code == 200
    assert opted_in(campaign_email.member) is False


def test_a_link_to_a_transactional_topic_cannot_switch_it_off(csrf_client):
    claim_email = DeliveryFactory(kind=Kind.CLAIM_APPROVED, channel=Channel.EMAIL)

    response = csrf_client.post(url_of(unsubscribe_token(claim_email)), ONE_CLICK)

    assert response.status_code == 409
    assert "Messages about Claims are part of the program and cannot be switched off." in response.content.decode()
    assert not Preference.objects.exists()


def test_a_link_of_a_member_who_is_gone_gets_a_clear_page(csrf_client):
    # Signed like a real link, for a member id that no longer exists.
    token = signing.dumps({"member": 2**62, "topic": Topic.CAMPAIGNS}, salt=UNSUBSCRIBE_SALT)

    response = csrf_client.post(url_of(token), ONE_CLICK)

    assert response.status_code == 404
    assert "no longer valid" in response.content.decode()
    assert not Preference.objects.exists()


def test_other_views_still_check_csrf(csrf_client):
    member = MemberFactory()
    csrf_client.force_login(member.user)

    response = csrf_client.post(reverse("message_preferences"), {f"{Topic.CAMPAIGNS}-channel": Channel.SMS})

    assert response.status_code == 403
    assert not Preference.objects.exists()
