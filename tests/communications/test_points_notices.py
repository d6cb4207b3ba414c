"""Points adjusted by hand and points about to expire reach the member, each once (issue #11)."""

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from communications.constants import Kind
from communications.models import Delivery
from loyalty.services import ledger
from loyalty.services.adjustments import adjustment_request
from loyalty.services.expiry_notices import warn_expiring_points
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory

pytestmark = pytest.mark.usefixtures("messages_out")


def told(kind) -> list[tuple[int, str]]:
    return list(Delivery.objects.filter(kind=kind, channel="inbox").values_list("member_id", "body").order_by("pk"))


def test_a_posted_adjustment_tells_the_member_how_much_and_why_once():
    program = ProgramFactory(adjustment_approval_threshold=5000)
    member = MemberFactory(language="en")
    account = ledger.member_account(program=program, member=member)

    adjustment_request(account=account, points=250, reason="Trade show bonus", requested_by=ProgramManagerFactory())

    assert told(Kind.ADJUSTMENT_POSTED) == [
        (member.pk, "The program team adjusted your points by 250. Trade show bonus")
    ]


def test_a_company_accounts_adjustment_tells_no_member():
    program = ProgramFactory()
    account = ledger.partner_account(program=program, partner=PartnerFactory())

    adjustment_request(account=account, points=250, reason="Fair", requested_by=ProgramManagerFactory())

    assert told(Kind.ADJUSTMENT_POSTED) == []


def test_points_expiring_within_the_notice_period_are_told_once_per_expiry_day():
    program = ProgramFactory(expiry_months=12, expiry_notice_days=30)
    member = MemberFactory(language="en")
    # Earned 11 months and 20 days ago: expires in about 10 days, within the 30-day notice.
    ledger.earn(
        account=ledger.member_account(program=program, member=member),
        points=75,
        key="in-notice",
        earned_at=timezone.now() - relativedelta(months=12) + timedelta(days=10),
    )
    # Expiring in about 60 days: not yet.
    ledger.earn(
        account=ledger.member_account(program=program, member=member),
        points=500,
        key="later",
        earned_at=timezone.now() - relativedelta(months=12) + timedelta(days=60),
    )

    warn_expiring_points()
    warn_expiring_points()  # the next day's run tells nothing twice

    messages = told(Kind.POINTS_EXPIRING)
    assert len(messages) == 1
    assert messages[0][0] == member.pk
    assert "75 points" in Delivery.objects.get(kind=Kind.POINTS_EXPIRING, channel="inbox").subject


def test_programs_without_expiry_or_not_running_warn_nobody():
    member = MemberFactory()
    for program in (ProgramFactory(expiry_months=None), ProgramFactory(expiry_months=12, is_active=False)):
        ledger.earn(
            account=ledger.member_account(program=program, member=member),
            points=75,
            key=f"p{program.pk}",
            earned_at=timezone.now() - relativedelta(months=12) + timedelta(days=10),
        )

    assert warn_expiring_points() == 0
    assert told(Kind.POINTS_EXPIRING) == []
