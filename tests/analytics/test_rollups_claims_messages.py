"""ClaimsDay and MessagesDay on a small hand-computed history."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.models import ClaimsDay, MessagesDay
from analytics.rollups import rollup_days
from communications.constants import Channel, DeliveryStatus, Kind
from loyalty.constants import RejectionReason
from loyalty.services import claims
from tests.analytics.helpers import clock, local, rows_of, submit
from tests.communications.factories import DeliveryFactory
from tests.loyalty.factories import ProductFactory, ProgramFactory
from tests.partners.factories import MemberFactory, ProgramManagerFactory, role

pytestmark = pytest.mark.django_db

FIRST = timezone.localdate() - timedelta(days=10)
SECOND = FIRST + timedelta(days=1)


def test_claims_count_submissions_and_decisions_on_their_days_with_the_hours_each_decision_waited():
    program = ProgramFactory(claim_auto_approve_below=Decimal("0"), starts_on=FIRST - timedelta(days=365))
    manager = ProgramManagerFactory()
    member = MemberFactory(role=role("sales"))
    product = ProductFactory()
    lines = [(product, 1, "900.00")]
    with clock(local(FIRST, 9)):
        corrected = submit(member, program, lines, number="B-1", invoice_date=FIRST)
    with clock(local(FIRST, 10)):
        waited = submit(member, program, lines, number="A-1", invoice_date=FIRST)
    with clock(local(FIRST, 15)):  # 6 hours after its submission
        claims.claim_reject(claim=corrected, actor=manager, reason=RejectionReason.UNREADABLE)
    with clock(local(SECOND, 8)):
        claims.claim_resubmit(
            claim=corrected, member=member, invoice_number="B-2", invoice_date=FIRST, lines=[(product, 1, Decimal(900))]
        )
    with clock(local(SECOND, 9, 30)):  # 1.5 hours after it was sent again
        claims.claim_approve(claim=corrected, actor=manager)
    with clock(local(SECOND, 12)):  # 26 hours after its submission
        claims.claim_approve(claim=waited, actor=manager)

    rollup_days(first=FIRST, last=SECOND, tables=["claims"])

    dimensions = (program.pk, member.partner_id, member.role_id, member.partner.region_id)
    assert rows_of(ClaimsDay) == {
        (FIRST, *dimensions): (2, 0, 1, Decimal("6.00")),
        (SECOND, *dimensions): (1, 2, 0, Decimal("27.50")),
    }


def test_messages_count_each_step_on_its_own_day_per_channel_role_and_kind():
    seller, owner = MemberFactory(role=role("sales")), MemberFactory(role=role("owner"))
    kind = Kind.CLAIM_APPROVED
    with clock(local(FIRST, 10)):
        DeliveryFactory(
            member=seller, kind=kind, channel=Channel.EMAIL, status=DeliveryStatus.CLICKED, sent_at=local(FIRST, 10),
            delivered_at=local(FIRST, 10, 1), opened_at=local(SECOND, 9), clicked_at=local(SECOND, 9, 5),
        )  # fmt: skip
    with clock(local(FIRST, 11)):
        DeliveryFactory(
            member=owner, kind=kind, channel=Channel.INBOX, status=DeliveryStatus.DELIVERED,
            delivered_at=local(FIRST, 11), read_at=local(FIRST, 12),
        )  # fmt: skip
    with clock(local(FIRST, 13)):
        DeliveryFactory(member=seller, kind=kind, channel=Channel.SMS, status=DeliveryStatus.FAILED)
    with clock(local(SECOND, 0, 10)):  # the bounce report comes after midnight
        DeliveryFactory(
            member=seller, kind=kind, channel=Channel.EMAIL, status=DeliveryStatus.BOUNCED,
            sent_at=local(FIRST, 23, 30),
        )  # fmt: skip

    rollup_days(first=FIRST, last=SECOND, tables=["messages"])

    sales, owners = role("sales").pk, role("owner").pk
    assert rows_of(MessagesDay) == {
        (FIRST, "email", sales, kind): (2, 1, 0, 0, 0),
        (FIRST, "inbox", owners, kind): (1, 1, 1, 0, 0),
        (FIRST, "sms", sales, kind): (0, 0, 0, 0, 1),
        (SECOND, "email", sales, kind): (0, 0, 1, 1, 1),
    }
