"""A member's message preferences (issue #11): the channel per topic, consent for marketing topics only."""

import re

import pytest
from django.urls import reverse

from communications.constants import Channel, Kind, Topic
from communications.models import Delivery, Preference
from communications.preferences import PreferenceError, preferences_save
from communications.services import notify
from loyalty.common.errors import ApplicationError
from partners.constants import Channel as MemberChannel
from partners.constants import MarketingConsent
from tests.communications.factories import PreferenceFactory
from tests.partners.factories import MemberFactory, ProgramManagerFactory, RegionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):
    member = MemberFactory(phone="+49 30 1234567", preferred_channel=MemberChannel.EMAIL)
    client.force_login(member.user)
    return member


def every_topic(channel: str = Channel.EMAIL, **overrides) -> dict:
    """The preferences form's data: every topic on `channel`, marketing topics switched on."""
    data = {f"{topic}-channel": channel for topic in Topic.values}
    data.update({f"{topic}-opted_in": "on" for topic in (Topic.CAMPAIGNS, Topic.SURVEYS)})
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def checked_channel(html: str, topic: str) -> list[str]:
    """The values of the topic's checked channel radio buttons."""
    return re.findall(rf'<input type="radio" name="{topic}-channel" value="(\w+)"[^>]* checked>', html)


def saved(member) -> dict:
    return {p.topic: (p.channel, p.opted_in) for p in Preference.objects.filter(member=member)}


def test_the_page_shows_each_topic_with_the_members_channel_and_consent_only_for_marketing(client, member):
    PreferenceFactory(member=member, topic=Topic.CLAIMS, channel=Channel.SMS)
    PreferenceFactory(member=member, topic=Topic.CAMPAIGNS, channel=Channel.EMAIL, opted_in=False)

    html = client.get(reverse("message_preferences")).content.decode()

    assert checked_channel(html, Topic.CLAIMS) == [Channel.SMS]
    assert checked_channel(html, Topic.ORDERS) == [Channel.EMAIL]
    assert 'name="campaigns-opted_in"' in html and 'name="surveys-opted_in"' in html
    assert 'name="claims-opted_in"' not in html
    assert html.count("cannot be switched off") == len(Topic.values) - 2
    assert 'id="id_campaigns-opted_in" checked' not in html
    assert 'id="id_surveys-opted_in" checked' in html


def test_saving_stores_only_the_choices_that_differ_from_the_defaults(client, member):
    data = every_topic(**{"claims-channel": Channel.SMS, "orders-channel": Channel.INBOX, "campaigns-opted_in": None})

    response = client.post(reverse("message_preferences"), data)

    assert response.status_code == 302 and response.url == reverse("message_preferences")
    # E-mail is the member's preferred channel and surveys stay on as their region has it: no row for those.
    assert saved(member) == {
        Topic.CLAIMS: (Channel.SMS, None),  # transactional: no consent to record
        Topic.ORDERS: (Channel.INBOX, None),
        Topic.CAMPAIGNS: (Channel.EMAIL, False),
    }


def test_saving_again_updates_the_rows_in_place(client, member):
    client.post(reverse("message_preferences"), every_topic(Channel.INBOX))
    ids = set(Preference.objects.filter(member=member).values_list("pk", flat=True))

    client.post(reverse("message_preferences"), every_topic(Channel.INBOX, **{"surveys-opted_in": None}))

    assert set(Preference.objects.filter(member=member).values_list("pk", flat=True)) == ids
    assert len(ids) == len(Topic.values)
    assert saved(member)[Topic.SURVEYS] == (Channel.INBOX, False)
    assert saved(member)[Topic.CAMPAIGNS] == (Channel.INBOX, None)  # on, as the region has it: no choice to keep
    assert saved(member)[Topic.POINTS] == (Channel.INBOX, None)


def test_choosing_the_default_again_removes_the_members_row(client, member):
    PreferenceFactory(member=member, topic=Topic.CLAIMS, channel=Channel.SMS, opted_in=None)
    PreferenceFactory(member=member, topic=Topic.SURVEYS, channel=Channel.EMAIL, opted_in=False)

    client.post(reverse("message_preferences"), every_topic())

    assert saved(member) == {}


def test_after_saving_the_defaults_the_profile_channel_still_decides(client, member, messages_out):
    """A walk saved the preferences page once; from then on "How should we reach you?" changed nothing."""
    client.post(reverse("message_preferences"), every_topic())
    client.post(
        reverse("profile"),
        {"full_name": "Anna Berg", "phone": member.phone, "language": "en", "preferred_channel": MemberChannel.SMS},
    )
    member.refresh_from_db()
    assert member.preferred_channel == MemberChannel.SMS

    notify(
        kind=Kind.CLAIM_APPROVED,
        member=member,
        source_key="claim:1:approved",
        variables={"invoice_number": "INV-7", "points": 1250, "explanation": "5 units × 250 pts"},
    )

    assert set(Delivery.objects.filter(member=member).values_list("channel", flat=True)) == {Channel.SMS, Channel.INBOX}


def test_a_consent_is_stored_only_where_it_differs_from_the_regions_rule(member):
    opt_in_member = MemberFactory(partner__region=RegionFactory(marketing_consent=MarketingConsent.OPT_IN))

    preferences_save(member=member, channels={}, opted_in={Topic.CAMPAIGNS: True, Topic.SURVEYS: False})
    preferences_save(member=opt_in_member, channels={}, opted_in={Topic.CAMPAIGNS: True, Topic.SURVEYS: False})

    assert saved(member) == {Topic.SURVEYS: (Channel.EMAIL, False)}
    assert saved(opt_in_member) == {Topic.CAMPAIGNS: (Channel.EMAIL, True)}


def test_a_transactional_topic_cannot_be_switched_off_from_the_page(client, member):
    client.post(reverse("message_preferences"), every_topic(**{"claims-channel": Channel.SMS, "claims-opted_in": ""}))

    assert saved(member)[Topic.CLAIMS] == (Channel.SMS, None)


def test_the_service_refuses_to_switch_off_a_transactional_topic_and_changes_nothing(member):
    with pytest.raises(ApplicationError) as refused:
        preferences_save(
            member=member,
            channels={Topic.CAMPAIGNS: Channel.SMS},
            opted_in={Topic.CAMPAIGNS: False, Topic.TIERS: False},
        )

    assert refused.value.code == PreferenceError.NOT_SWITCHABLE
    assert "Tiers" in refused.value.message
    assert not Preference.objects.exists()


@pytest.mark.parametrize(
    ("channels", "opted_in", "code"),
    [
        ({"fax": Channel.EMAIL}, {}, PreferenceError.UNKNOWN_TOPIC),
        ({}, {"gossip": True}, PreferenceError.UNKNOWN_TOPIC),
        ({Topic.CLAIMS: "pigeon"}, {}, PreferenceError.UNKNOWN_CHANNEL),
    ],
)
def test_the_service_refuses_unknown_topics_and_channels(member, channels, opted_in, code):
    with pytest.raises(ApplicationError) as refused:
        preferences_save(member=member, channels=channels, opted_in=opted_in)

    assert refused.value.code == code
    assert not Preference.objects.exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"claims-channel": "pigeon"},
        {"claims-channel": None},
        {"orders-channel": "x" * 10_000},
        {"campaigns-channel": "email\u200b"},
    ],
)
def test_bad_input_is_refused_with_a_message_and_changes_nothing(client, member, bad):
    PreferenceFactory(member=member, topic=Topic.CLAIMS, channel=Channel.INBOX)

    response = client.post(reverse("message_preferences"), every_topic(**bad))

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode() or "This field is required" in response.content.decode()
    assert saved(member) == {Topic.CLAIMS: (Channel.INBOX, True)}


def test_sms_without_a_phone_number_is_refused_on_the_form(client):
    member = MemberFactory(phone="")
    client.force_login(member.user)

    response = client.post(reverse("message_preferences"), every_topic(**{"points-channel": Channel.SMS}))

    assert response.status_code == 200
    assert "Add your mobile phone number to your profile before choosing SMS." in response.content.decode()
    assert not Preference.objects.filter(member=member).exists()


def test_a_member_who_prefers_the_app_starts_with_in_the_app_only(client):
    member = MemberFactory(preferred_channel=MemberChannel.IN_APP)
    client.force_login(member.user)

    html = client.get(reverse("message_preferences")).content.decode()

    assert checked_channel(html, Topic.POINTS) == [Channel.INBOX]


def test_people_without_a_membership_have_no_preferences_to_save(client):
    client.force_login(ProgramManagerFactory())

    page = client.get(reverse("message_preferences"))
    post = client.post(reverse("message_preferences"), every_topic())

    assert "apply to members of a partner" in page.content.decode()
    assert post.status_code == 200
    assert not Preference.objects.exists()


def test_the_profile_and_the_inbox_link_to_the_preferences(client, member):
    profile = client.get(reverse("profile")).content.decode()
    inbox = client.get(reverse("inbox")).content.decode()

    assert reverse("message_preferences") in profile
    assert reverse("message_preferences") in inbox


def test_the_preferences_page_query_count_is_fixed(client, member, django_assert_num_queries):
    PreferenceFactory(member=member, topic=Topic.CLAIMS, channel=Channel.SMS)

    # session, user, the viewer's membership, the preferences, the bell's count, the program (navigation)
    with django_assert_num_queries(6):
        client.get(reverse("message_preferences"))
