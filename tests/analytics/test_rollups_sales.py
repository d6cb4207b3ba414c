"""SalesDay: random claims (approved, rejected, waiting) and sell-out lines roll up to what a direct computation
over them gives, counted as loyalty.services.tiers.sales_amounts counts them; a claim approved or an import
finished after an old invoice date is counted by the next periodic pass."""

import contextlib
from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.models import RollupDay, SalesDay
from analytics.rollups import RECENT, rollup_days, rollup_recent
from loyalty.common.errors import ApplicationError
from loyalty.constants import ClaimStatus, ImportStatus, RejectionReason
from loyalty.models import ClaimLine, SaleLine, SalesImport, SalesSource
from loyalty.services import claims
from loyalty.services.tiers import sales_amounts
from tests.analytics.helpers import rows_of, submit
from tests.loyalty.factories import ProductFactory, ProductLineFactory, ProgramFactory
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory, RegionFactory, role

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
FIRST = TODAY - timedelta(days=10)
DAYS = 4
CENT, MILLI = Decimal("0.01"), Decimal("0.001")


def expected_sales(program) -> dict[tuple, tuple]:
    """SalesDay computed directly: the paid part of each approved claim's lines and each sell-out line (a return
    in full), by invoice date."""
    sums = defaultdict(lambda: [Decimal(0), Decimal(0), 0])

    def add(day, partner, role_id, product, amount, units):
        key = (day, program.pk, partner.pk, role_id, partner.region_id, product.line_id)
        sums[key][0] += amount
        sums[key][1] += units
        sums[key][2] += 1

    approved = ClaimLine.objects.filter(claim__program=program, claim__status=ClaimStatus.APPROVED)
    for line in approved.select_related("claim__partner", "claim__member", "product"):
        if line.paid_quantity:
            claim = line.claim
            amount = line.amount * line.paid_quantity / line.quantity
            add(claim.invoice_date, claim.partner, claim.member.role_id, line.product, amount, line.paid_quantity)
    for line in SaleLine.objects.filter(source__program=program).select_related("partner", "product"):
        if line.quantity < 0:
            add(line.invoice_date, line.partner, 0, line.product, line.amount, line.quantity)
        elif line.paid_quantity:
            amount = line.amount * line.paid_quantity / line.quantity
            add(line.invoice_date, line.partner, 0, line.product, amount, line.paid_quantity)
    return {
        key: (amount.quantize(CENT, ROUND_HALF_UP), units.quantize(MILLI), lines)
        for key, (amount, units, lines) in sums.items()
    }


@pytest.fixture
def program():
    return ProgramFactory(claim_auto_approve_below=Decimal("0"), starts_on=TODAY - timedelta(days=365))


# The property -----------------------------------------------------------------------------------------------------

day = st.integers(0, DAYS - 1)
claim_line = st.tuples(st.integers(0, 2), st.integers(1, 9), st.integers(1, 500))
operation = st.one_of(
    st.tuples(
        st.just("claim"),
        st.integers(0, 1),
        day,
        st.lists(claim_line, min_size=1, max_size=3),
        st.sampled_from(["approve", "reject", "wait"]),
    ),
    st.tuples(
        st.just("line"),
        st.integers(0, 1),
        st.integers(0, 2),
        day,
        st.integers(-5, 20).filter(bool),
        st.integers(1, 500),
        st.sampled_from(["full", "none", "one"]),
    ),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=8))
def test_random_claims_and_sell_out_lines_roll_up_to_a_direct_computation(operations):
    with transaction.atomic():
        program = ProgramFactory(claim_auto_approve_below=Decimal("0"), starts_on=TODAY - timedelta(days=365))
        manager = ProgramManagerFactory()
        partners = [
            PartnerFactory(region=RegionFactory(code="north")),
            PartnerFactory(region=RegionFactory(code="south")),
        ]
        members = [
            MemberFactory(partner=partners[0], role=role("sales")),
            MemberFactory(partner=partners[1], role=role("owner")),
        ]
        lines = [ProductLineFactory(), ProductLineFactory()]
        products = [ProductFactory(line=lines[0]), ProductFactory(line=lines[0]), ProductFactory(line=lines[1])]
        source = SalesSource.objects.create(program=program, name="Distributor feed", code="feed")
        for step, op in enumerate(operations):
            if op[0] == "claim":
                _, who, offset, claimed, outcome = op
                rows = [(products[p], quantity, quantity * unit) for p, quantity, unit in claimed]
                with contextlib.suppress(ApplicationError):
                    claim = submit(
                        members[who], program, rows, number=f"C-{step}", invoice_date=FIRST + timedelta(offset)
                    )
                    if outcome == "approve":
                        claims.claim_approve(claim=claim, actor=manager, reason="Checked")
                    elif outcome == "reject":
                        claims.claim_reject(claim=claim, actor=manager, reason=RejectionReason.UNREADABLE)
            else:
                _, where, p, offset, quantity, unit, paid = op
                paid = {"full": quantity, "none": 0, "one": 1}[paid] if quantity > 0 else 0
                SaleLine.objects.create(
                    source=source, external_id=f"L{step}", partner=partners[where], product=products[p],
                    quantity=Decimal(quantity), amount=Decimal(quantity * unit), paid_quantity=Decimal(paid),
                    invoice_number=f"S-{step}", invoice_date=FIRST + timedelta(offset),
                )  # fmt: skip
        last = FIRST + timedelta(days=DAYS - 1)

        rollup_days(first=FIRST, last=last, tables=["sales"])

        assert rows_of(SalesDay) == expected_sales(program)
        by_partner = defaultdict(Decimal)
        for (_day, _program, partner_id, *_), (amount, _units, _lines) in rows_of(SalesDay).items():
            by_partner[partner_id] += amount
        counted = sales_amounts(program=program, first=FIRST, last=last)
        assert {p: a for p, a in by_partner.items() if a} == {p: a for p, a in counted.items() if a}
        transaction.set_rollback(True)


# Late rows --------------------------------------------------------------------------------------------------------


def test_a_claim_approved_today_for_an_old_invoice_is_counted_on_that_date_by_the_next_periodic_pass(program):
    manager = ProgramManagerFactory()
    member = MemberFactory(role=role("sales"))
    product = ProductFactory()
    old = TODAY - timedelta(days=5)
    claim = submit(member, program, [(product, 2, "250.00")], number="INV-1", invoice_date=old)
    rollup_recent()
    assert not SalesDay.objects.filter(day=old).exists()

    claims.claim_approve(claim=claim, actor=manager)
    rollup_recent()

    partner = member.partner
    key = (old, program.pk, partner.pk, member.role_id, partner.region_id, product.line_id)
    assert rows_of(SalesDay) == {key: (Decimal("250.00"), Decimal("2.000"), 1)}


def test_the_lines_of_an_import_finished_since_the_last_pass_are_counted_on_their_invoice_dates(program):
    partner = PartnerFactory()
    product = ProductFactory()
    source = SalesSource.objects.create(program=program, name="Distributor feed", code="feed")
    rollup_recent()
    old = TODAY - timedelta(days=40)
    sales_import = SalesImport.objects.create(
        source=source, file="imports/feed.csv", original_name="feed.csv", uploaded_by=ProgramManagerFactory(),
        status=ImportStatus.DONE, finished_at=timezone.now(),
    )  # fmt: skip
    SaleLine.objects.create(
        source=source, sales_import=sales_import, external_id="L1", partner=partner, product=product,
        quantity=Decimal(4), amount=Decimal("400.00"), paid_quantity=Decimal(4), invoice_date=old,
    )  # fmt: skip

    rollup_recent()

    key = (old, program.pk, partner.pk, 0, partner.region_id, product.line_id)
    assert rows_of(SalesDay) == {key: (Decimal("400.00"), Decimal("4.000"), 1)}


def test_the_first_periodic_pass_rebuilds_today_and_yesterday_and_records_when_it_ran(program):
    now = timezone.now()

    report = rollup_recent(now)

    days = {TODAY - timedelta(days=1), TODAY}
    assert {table: set(built) for table, built in report.days.items()} == {
        table: days for table in ("points", "sales", "claims", "members", "messages")
    }
    assert set(RollupDay.objects.filter(rollup="points").values_list("day", flat=True)) == days
    assert list(RollupDay.objects.filter(rollup=RECENT).values_list("day", "built_at", "rows")) == [(TODAY, now, 2)]
