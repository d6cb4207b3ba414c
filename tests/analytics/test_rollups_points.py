"""PointsDay: random ledger activity on random local days rolls up to what a direct computation over the entries
gives; the site's days, the product line of a claim's postings, refunds netted from redemptions."""

import contextlib
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.models import ClaimsDay, MembersDay, MessagesDay, PointsDay, RollupDay, SalesDay
from analytics.rollups import rollup_days
from loyalty.common.errors import ApplicationError
from loyalty.constants import EntryKind
from loyalty.models import PointsEntry
from loyalty.services import claims, ledger
from tests.analytics.helpers import at_minute, clock, local, rows_of, submit
from tests.loyalty.factories import (
    MemberAccountFactory,
    PartnerAccountFactory,
    ProductFactory,
    ProgramFactory,
    RuleFactory,
)
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory, RegionFactory, role

pytestmark = pytest.mark.django_db

FIRST = timezone.localdate() - timedelta(days=10)
DAYS = 4
COLUMN_OF = {"earn": "issued", "spend": "redeemed", "expire": "expired", "adjust": "adjusted"}
ROLLUP_MODELS = (PointsDay, SalesDay, ClaimsDay, MembersDay, MessagesDay)
COLUMNS = ("issued", "reversed", "redeemed", "expired", "adjusted")


def expected_points(entries) -> dict[tuple, tuple]:
    """PointsDay computed directly: each entry on its local day, a reversal in the column of what it reverses."""
    sums = defaultdict(lambda: dict.fromkeys((*COLUMNS, "entries"), 0))
    for e in entries:
        if e.kind in (EntryKind.RELEASE, EntryKind.TRANSFER):
            continue
        account = e.account
        partner = account.partner if account.partner_id else account.member.partner
        role_id = account.member.role_id if account.member_id else 0
        key = (timezone.localdate(e.created_at), account.program_id, partner.pk, role_id, partner.region_id, 0)
        change = e.available_delta + e.pending_delta
        if e.kind == EntryKind.REVERSE:
            column = "reversed" if e.reverses.kind == EntryKind.EARN else COLUMN_OF[e.reverses.kind]
        else:
            column = COLUMN_OF[e.kind]
        sums[key][column] += change if column in ("issued", "adjusted") else -change
        sums[key]["entries"] += 1
    return {key: tuple(values[c] for c in (*COLUMNS, "entries")) for key, values in sums.items()}


def entries_of(program_ids):
    return PointsEntry.objects.filter(account__program__in=program_ids).select_related(
        "account__member__partner", "account__partner", "reverses"
    )


# The property -----------------------------------------------------------------------------------------------------

moment = st.tuples(st.integers(0, DAYS - 1), st.integers(0, 24 * 60 - 1))
amount = st.integers(1, 400)
operation = st.one_of(
    st.tuples(st.just("earn"), moment, st.integers(0, 3), amount, st.sampled_from(["now", "pending", "old"])),
    st.tuples(st.just("spend"), moment, st.integers(0, 3), amount),
    st.tuples(st.just("refund"), moment, st.integers(0, 30)),
    st.tuples(st.just("reverse"), moment, st.integers(0, 30), st.one_of(st.none(), amount)),
    st.tuples(st.just("expire"), moment, st.integers(0, 3)),
    st.tuples(st.just("adjust"), moment, st.integers(0, 3), st.integers(-300, 300).filter(bool)),
    st.tuples(st.just("release"), moment, st.integers(0, 30)),
    st.tuples(st.just("transfer"), moment, st.integers(0, 1), amount),
)


def _pick(kinds, n, **filters):
    entries = list(PointsEntry.objects.filter(kind__in=kinds, **filters).order_by("pk"))
    return entries[n % len(entries)] if entries else None


def apply(op, accounts, at, step):
    kind, key = op[0], f"op:{step}"
    if kind == "earn":
        _, _, who, points, when = op
        ledger.earn(
            account=accounts[who],
            points=points,
            key=key,
            available_at=at + timedelta(days=3) if when == "pending" else None,
            earned_at=at - relativedelta(months=25) if when == "old" else None,  # due to expire at once
        )
    elif kind == "spend":
        ledger.spend(account=accounts[op[2]], points=op[3], key=key)
    elif kind == "refund" and (entry := _pick([EntryKind.SPEND], op[2])):
        ledger.reverse(entry=entry, key=key)
    elif kind == "reverse" and (entry := _pick(["earn", "spend", "expire", "adjust"], op[2])):
        ledger.reverse(entry=entry, key=key, points=op[3])
    elif kind == "expire":
        ledger.expire_account(account=accounts[op[2]], now=at)
    elif kind == "adjust":
        ledger.adjust(account=accounts[op[2]], points=op[3], key=key, reason="Correction", created_by=None)
    elif kind == "release" and (entry := _pick([EntryKind.EARN], op[2], pending_delta__gt=0)):
        ledger.release(entry=entry)
    elif kind == "transfer":
        ledger.transfer(source=accounts[op[2]], target=accounts[2], points=op[3], key=key)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=20))
def test_random_ledger_activity_rolls_up_to_a_direct_computation_over_the_entries(operations):
    with transaction.atomic():
        program, other_program = ProgramFactory(expiry_months=24), ProgramFactory(expiry_months=24)
        north, south = RegionFactory(code="north"), RegionFactory(code="south")
        dealer = PartnerFactory(region=north)
        seller = MemberFactory(partner=dealer, role=role("sales"))
        engineer = MemberFactory(partner=PartnerFactory(region=south), role=role("engineer"))
        accounts = [
            MemberAccountFactory(program=program, member=seller),
            MemberAccountFactory(program=program, member=engineer),
            PartnerAccountFactory(program=program, partner=dealer),
            MemberAccountFactory(program=other_program, member=seller),
        ]
        ordered = sorted(enumerate(operations), key=lambda item: item[1][1])
        for step, op in ordered:
            day, minute = op[1]
            at = at_minute(FIRST + timedelta(days=day), minute)
            with clock(at), contextlib.suppress(ApplicationError):
                apply(op, accounts, at, step)

        rollup_days(first=FIRST, last=FIRST + timedelta(days=DAYS - 1), tables=["points"])

        assert rows_of(PointsDay) == expected_points(entries_of([program.pk, other_program.pk]))
        transaction.set_rollback(True)


# Examples -------------------------------------------------------------------------------------------------------


@pytest.fixture
def account():
    return MemberAccountFactory(program=ProgramFactory(), member=MemberFactory(role=role("sales")))


def key_of(account, day: date, product_line_id: int = 0) -> tuple:
    member = account.member
    return (day, account.program_id, member.partner_id, member.role_id, member.partner.region_id, product_line_id)


def test_an_entry_at_2330_local_time_counts_on_that_local_day_and_one_at_0030_on_the_next(account):
    day = date(2025, 6, 14)  # Berlin is UTC+2: 00:30 on the 15th is still the 14th in UTC
    with clock(local(day, 23, 30)):
        ledger.earn(account=account, points=10, key="late-evening")
    with clock(local(day + timedelta(days=1), 0, 30)):
        ledger.earn(account=account, points=7, key="just-after-midnight")

    rollup_days(first=day, last=day + timedelta(days=1), tables=["points"])

    assert rows_of(PointsDay) == {
        key_of(account, day): (10, 0, 0, 0, 0, 1),
        key_of(account, day + timedelta(days=1)): (7, 0, 0, 0, 0, 1),
    }


def test_an_order_refund_lowers_redeemed_on_the_day_of_the_refund_and_is_not_counted_as_reversed(account):
    day = FIRST
    with clock(local(day, 9)):
        ledger.earn(account=account, points=500, key="earned")
        spent = ledger.spend(account=account, points=300, key="order:1", source_type="order", source_id="1")
    with clock(local(day + timedelta(days=1), 9)):
        ledger.reverse(entry=PointsEntry.objects.get(pk=spent.pk), key="order-refund:1")
        ledger.spend(account=account, points=50, key="order:2", source_type="order", source_id="2")

    rollup_days(first=day, last=day + timedelta(days=1), tables=["points"])

    assert rows_of(PointsDay) == {
        key_of(account, day): (500, 0, 300, 0, 0, 2),
        key_of(account, day + timedelta(days=1)): (0, 0, -250, 0, 0, 2),
    }


def test_a_reversal_written_before_it_recorded_what_it_reverses_is_classified_by_the_entry_it_reverses(
    account, monkeypatch
):
    insert = ledger._insert_entry
    monkeypatch.setattr(ledger, "_insert_entry", lambda **fields: insert(**{**fields, "details": {}}))  # as before
    day = FIRST
    with clock(local(day, 9)):
        ledger.earn(account=account, points=500, key="earned")
        spent = ledger.spend(account=account, points=300, key="order:1", source_type="order", source_id="1")
        refund = ledger.reverse(entry=PointsEntry.objects.get(pk=spent.pk), key="order-refund:1")
    assert refund.details == {}

    rollup_days(first=day, last=day, tables=["points"])

    assert rows_of(PointsDay) == {key_of(account, day): (500, 0, 0, 0, 0, 3)}


def test_releases_and_transfers_move_points_already_issued_and_are_left_out(account):
    company = PartnerAccountFactory(program=account.program, partner=account.member.partner)
    with clock(local(FIRST, 9)):
        earned = ledger.earn(account=account, points=100, key="pending", available_at=local(FIRST, 10))
    with clock(local(FIRST, 11)):
        ledger.release(entry=earned)
        ledger.transfer(source=account, target=company, points=40, key="leaver")

    rollup_days(first=FIRST, last=FIRST, tables=["points"])

    assert rows_of(PointsDay) == {key_of(account, FIRST): (100, 0, 0, 0, 0, 1)}


def test_a_claims_points_and_their_reversal_carry_the_product_line_of_the_claim_line(account):
    program, member = account.program, account.member
    program.claim_auto_approve_below = Decimal("0")
    program.starts_on = FIRST - timedelta(days=365)
    program.save()
    RuleFactory(program=program)  # 10 points per unit
    product = ProductFactory()
    with clock(local(FIRST, 10)):
        claim = submit(member, program, [(product, 3, "300.00")], number="INV-7", invoice_date=FIRST)
        claims.claim_approve(claim=claim, actor=ProgramManagerFactory())
    earned = PointsEntry.objects.get(source_type="claim")
    with clock(local(FIRST + timedelta(days=1), 10)):
        ledger.reverse(entry=earned, key="returned", points=10)

    rollup_days(first=FIRST, last=FIRST + timedelta(days=1), tables=["points"])

    line = product.line_id
    assert rows_of(PointsDay) == {
        key_of(account, FIRST, line): (30, 0, 0, 0, 0, 1),
        key_of(account, FIRST + timedelta(days=1), line): (0, 10, 0, 0, 0, 1),
    }


def test_rebuilding_a_day_twice_gives_the_same_rows_and_one_record_per_day(account):
    with clock(local(FIRST, 9)):
        ledger.earn(account=account, points=100, key="earned")
        ledger.adjust(account=account, points=-30, key="fix", reason="Typo", created_by=None)
    rollup_days(first=FIRST, last=FIRST)
    once = {model: rows_of(model) for model in ROLLUP_MODELS}

    rollup_days(first=FIRST, last=FIRST)

    assert {model: rows_of(model) for model in ROLLUP_MODELS} == once
    assert once[PointsDay] == {key_of(account, FIRST): (100, 0, 0, 0, -30, 2)}
    assert once[MembersDay] == {key_of(account, FIRST)[:5]: (0, 0, 1, 0)}
    assert sorted(RollupDay.objects.values_list("rollup", "day", "rows")) == [
        ("claims", FIRST, 0),
        ("members", FIRST, 1),
        ("messages", FIRST, 0),
        ("points", FIRST, 1),
        ("sales", FIRST, 0),
    ]


def test_a_rebuild_removes_rows_the_sources_no_longer_give(account):
    PointsDay.objects.create(day=FIRST, program_id=account.program_id, partner_id=1, role_id=0, region_id=1,
                             product_line_id=0, issued=999, entries=1)  # fmt: skip

    rollup_days(first=FIRST, last=FIRST, tables=["points"])

    assert rows_of(PointsDay) == {}


def test_a_dry_run_counts_the_rows_and_writes_nothing(account):
    with clock(local(FIRST, 9)):
        ledger.earn(account=account, points=100, key="earned")
    with clock(local(FIRST + timedelta(days=1), 9)):
        ledger.earn(account=account, points=5, key="again")

    report = rollup_days(first=FIRST, last=FIRST + timedelta(days=2), tables=["points", "members"], dry_run=True)

    assert report.dry_run
    assert report.days["points"] == {FIRST: 1, FIRST + timedelta(days=1): 1, FIRST + timedelta(days=2): 0}
    assert report.totals["points"].rows == 2
    assert (PointsDay.objects.count(), RollupDay.objects.count()) == (0, 0)
    written = rollup_days(first=FIRST, last=FIRST + timedelta(days=2), tables=["points", "members"])
    assert written.days == report.days
