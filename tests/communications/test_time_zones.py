"""Quiet hours follow the member's own time zone: theirs, else their partner's region's, else the program's. A member
chooses theirs on the profile page; a region's is set in the admin."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from communications import sms
from communications.constants import Channel, DeliveryStatus
from communications.sending import delivery_send
from partners.models import Member, Region
from tests.communications.factories import DeliveryFactory
from tests.communications.test_sending import Clock
from tests.partners.factories import MemberFactory, PartnerFactory, RegionFactory

pytestmark = pytest.mark.usefixtures("messages_out")
UTC = ZoneInfo("UTC")
NOON_UTC = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo, 13:00 in Berlin, 07:00 in New York


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(monkeypatch)
    clock.now = NOON_UTC
    return clock


def sms_to(member):
    return DeliveryFactory(channel=Channel.SMS, member=member, address="+491512345678", body="Claim approved")


def member(time_zone="", region_zone=""):
    region = RegionFactory(time_zone=region_zone)
    return MemberFactory(phone="+49 151 2345678", time_zone=time_zone, partner=PartnerFactory(region=region))


@pytest.mark.parametrize(
    ("who", "held_until"),
    [
        # Tokyo at 21:00: held until 08:00 there (23:00 UTC).
        ({"time_zone": "Asia/Tokyo"}, datetime(2026, 12, 7, 23, 0, tzinfo=UTC)),
        # The region's zone when the member has none: New York at 07:00, held until 08:00 there (13:00 UTC).
        ({"region_zone": "America/New_York"}, datetime(2026, 12, 7, 13, 0, tzinfo=UTC)),
        # The member's own zone wins over the region's: Berlin at 13:00, sent.
        ({"time_zone": "Europe/Berlin", "region_zone": "Asia/Tokyo"}, None),
        # Neither: the program's (Europe/Berlin in the settings), 13:00: sent.
        ({}, None),
    ],
)
def test_an_sms_waits_for_the_morning_of_the_members_own_time_zone(settings, clock, who, held_until):
    settings.TIME_ZONE = "Europe/Berlin"
    delivery = sms_to(member(**who))

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    if held_until is None:
        assert delivery.status == DeliveryStatus.SENT and len(sms.outbox) == 1
    else:
        assert (delivery.status, delivery.not_before, sms.outbox) == (DeliveryStatus.QUEUED, held_until, [])


def test_a_member_chooses_their_time_zone_on_the_profile_page(client):
    someone = member()
    client.force_login(someone.user)
    form = {
        "full_name": "Anna Berg",
        "phone": "+49 151 2345678",
        "language": "en",
        "preferred_channel": "sms",
        "time_zone": "Asia/Tokyo",
    }

    response = client.post(reverse("profile"), form)

    assert response.status_code == 302
    assert Member.objects.get(pk=someone.pk).time_zone == "Asia/Tokyo"
    assert 'value="Asia/Tokyo" selected' in client.get(reverse("profile")).content.decode()


def test_an_unknown_time_zone_is_refused_with_a_message_and_nothing_changes(client):
    someone = member(time_zone="Europe/Berlin")
    client.force_login(someone.user)
    form = {"full_name": "Anna Berg", "phone": "", "language": "en", "preferred_channel": "email"}

    response = client.post(reverse("profile"), {**form, "time_zone": "Mars/Olympus_Mons"})

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert Member.objects.get(pk=someone.pk).time_zone == "Europe/Berlin"


def test_a_region_with_an_unknown_time_zone_is_refused_on_save():
    from django.core.exceptions import ValidationError

    region = Region(code="mars", name="Mars", time_zone="Mars/Olympus_Mons")
    with pytest.raises(ValidationError) as refused:
        region.full_clean()
    assert "is not a time zone" in str(refused.value)


def test_the_member_site_shows_times_in_the_members_time_zone_and_in_day_month_year(client):
    tokyo = member(time_zone="Asia/Tokyo")
    DeliveryFactory(member=tokyo, channel=Channel.INBOX, queued_at=datetime(2026, 12, 7, 3, 45, tzinfo=UTC))
    client.force_login(tokyo.user)  # signing in notes the member's zone

    page = client.get(reverse("inbox")).content.decode()

    assert "7 Dec 2026, 12:45" in page  # 03:45 UTC is 12:45 in Tokyo; not "12/07/2026 ..." (read as 12 July)


def test_changing_the_time_zone_on_the_profile_applies_at_once(client):
    someone = member()
    DeliveryFactory(member=someone, channel=Channel.INBOX, queued_at=datetime(2026, 12, 7, 3, 45, tzinfo=UTC))
    client.force_login(someone.user)
    assert "7 Dec 2026, 04:45" in client.get(reverse("inbox")).content.decode()  # the program's: Berlin
    form = {"full_name": "Anna Berg", "phone": "", "language": "en", "preferred_channel": "email"}

    client.post(reverse("profile"), {**form, "time_zone": "America/New_York"})

    assert "6 Dec 2026, 22:45" in client.get(reverse("inbox")).content.decode()
