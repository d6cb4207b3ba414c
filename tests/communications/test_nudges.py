"""Nudges: the invited who have not joined are reminded once per invitation; members who did nothing for a while are
nudged once in that time, within their consent and the weekly cap; "N to keep your tier" before the period ends."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from django.utils.formats import date_format

from communications.constants import Channel, Kind, Topic
from communications.models import Delivery
from communications.nudges import nudge_inactive, remind_invited
from communications.tasks import send_nudges
from loyalty.models import PartnerTier
from loyalty.services import ledger
from loyalty.tasks.tiers import warn_tier_keep
from partners.constants import MemberStatus
from tests.communications.factories import DeliveryFactory, PreferenceFactory
from tests.loyalty.factories import MemberAccountFactory, ProgramFactory, TierFactory
from tests.partners.factories import InvitationFactory, MemberFactory, OwnerFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.usefixtures("messages_out")


def told(kind):
    return sorted(Delivery.objects.filter(kind=kind).values_list("member_id", "channel"))


def days_ago(days: int):
    return timezone.now() - timedelta(days=days)


def invitation(*, days_old: int, **kwargs):
    made = InvitationFactory(**kwargs)
    type(made).objects.filter(pk=made.pk).update(created_at=days_ago(days_old))
    return made


# The invited -----------------------------------------------------------------------------------------------------


def test_an_invitation_not_accepted_after_a_week_is_reminded_once(django_capture_on_commit_callbacks):
    inviter = UserFactory(full_name="Olga Owner")
    waiting = invitation(days_old=8, invited_by=inviter)
    invitation(days_old=3)  # too fresh
    invitation(days_old=8, revoked_at=timezone.now())  # replaced by a newer link
    invitation(days_old=20, expires_at=days_ago(6))  # its link no longer works

    with django_capture_on_commit_callbacks(execute=True):
        remind_invited()
    remind_invited()

    assert told(Kind.INVITATION) == [(waiting.member_id, Channel.EMAIL)]  # no inbox before joining
    expires = timezone.localdate(waiting.expires_at)
    assert [m.subject for m in mail.outbox] == ["Reminder: Olga Owner invited you to the partner program"]
    assert f"use the link in the invitation e-mail by {date_format(expires)}." in mail.outbox[0].body


def test_a_fresh_invitation_of_the_same_person_is_reminded_again():
    first = invitation(days_old=9)
    remind_invited()
    type(first).objects.filter(pk=first.pk).update(revoked_at=timezone.now())
    invitation(days_old=8, member=first.member)

    remind_invited()

    assert Delivery.objects.filter(kind=Kind.INVITATION, channel=Channel.EMAIL).count() == 2


# The inactive ----------------------------------------------------------------------------------------------------


def test_members_who_did_nothing_for_sixty_days_are_nudged_once_within_their_consent_and_the_cap(
    django_capture_on_commit_callbacks,
):
    program = ProgramFactory()
    idle = MemberFactory(joined_at=days_ago(100))
    earner = MemberAccountFactory(program=program, member=MemberFactory(joined_at=days_ago(100)))
    ledger.earn(account=earner, points=100, key="earned-recently")
    MemberFactory(joined_at=days_ago(10))  # new: not inactive yet
    MemberFactory(joined_at=days_ago(100), status=MemberStatus.LEFT)
    opted_out = MemberFactory(joined_at=days_ago(100))
    PreferenceFactory(member=opted_out, topic=Topic.CAMPAIGNS, opted_in=False)
    capped = MemberFactory(joined_at=days_ago(100))
    for n in range(2):
        DeliveryFactory(member=capped, kind=Kind.CAMPAIGN, channel=Channel.INBOX, source_key=f"campaign:{n}")

    with django_capture_on_commit_callbacks(execute=True):
        nudge_inactive()
    nudge_inactive()  # a second run the same day
    nudge_inactive(now=timezone.now() + timedelta(days=1))  # and the next day: nudged within 60 days

    assert told(Kind.NUDGE_INACTIVE) == [(idle.pk, Channel.EMAIL), (idle.pk, Channel.INBOX)]
    assert [m.subject for m in mail.outbox] == ["We have not heard from you in a while"]
    assert "for 60 days" in mail.outbox[0].body
    assert "List-Unsubscribe" in mail.outbox[0].extra_headers  # a marketing message


def test_a_nudged_member_still_inactive_is_nudged_again_after_sixty_days():
    ProgramFactory()
    idle = MemberFactory(joined_at=days_ago(200))
    nudge_inactive(now=days_ago(61))
    Delivery.objects.update(queued_at=days_ago(61))  # stored then

    nudge_inactive()

    assert Delivery.objects.filter(kind=Kind.NUDGE_INACTIVE, member=idle, channel=Channel.INBOX).count() == 2


def test_no_one_is_nudged_when_no_program_runs():
    ProgramFactory(is_active=False)
    MemberFactory(joined_at=days_ago(100))

    assert nudge_inactive() == 0
    assert not Delivery.objects.exists()


def test_the_daily_task_reminds_and_nudges():
    ProgramFactory()
    invitation(days_old=8)
    MemberFactory(joined_at=days_ago(100))

    assert send_nudges() == {"invited": 1, "inactive": 1}
    assert send_nudges() == {"invited": 1, "inactive": 0}  # the reminder is made again but stored once
    assert Delivery.objects.filter(channel=Channel.EMAIL).count() == 2


# To keep your tier -----------------------------------------------------------------------------------------------


def test_members_of_a_partner_short_of_keeping_its_tier_hear_what_is_missing_once_per_period(
    django_capture_on_commit_callbacks,
):
    program = ProgramFactory(money_currency="EUR")
    entry = TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0"))
    gold = TierFactory(program=program, name="Gold", rank=1, threshold=Decimal("1000.00"))
    today = timezone.localdate()
    short, safe, later, bottom = PartnerFactory(), PartnerFactory(), PartnerFactory(), PartnerFactory()
    rep, owner = MemberFactory(partner=short), OwnerFactory(partner=short)
    MemberFactory(partner=short, status=MemberStatus.LEFT)
    for partner in (safe, later, bottom):
        MemberFactory(partner=partner)
    for partner, tier, metric, held_until in (
        (short, gold, "400.00", today + timedelta(days=10)),
        (safe, gold, "1200.00", today + timedelta(days=10)),
        (later, gold, "400.00", today + timedelta(days=60)),
        (bottom, entry, "0.00", today + timedelta(days=10)),
    ):
        PartnerTier.objects.create(
            program=program,
            partner=partner,
            tier=tier,
            since=date(2026, 1, 1),
            held_until=held_until,
            metric_value=Decimal(metric),
        )

    with django_capture_on_commit_callbacks(execute=True):
        warn_tier_keep()
    warn_tier_keep()

    assert told(Kind.TIER_KEEP) == sorted(
        [(rep.pk, Channel.EMAIL), (rep.pk, Channel.INBOX), (owner.pk, Channel.EMAIL), (owner.pk, Channel.INBOX)]
    )
    assert {m.subject for m in mail.outbox} == {"Keep Gold: €600.00 to go"}
