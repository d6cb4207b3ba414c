"""Period standings rise with every earn the rules post (one event, or a sell-out import) for the member and their
company, fall when points are taken back, and ignore adjustments and redemptions."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from loyalty.constants import TierPeriod
from loyalty.engine.facts import sale_event
from loyalty.models import PeriodStanding
from loyalty.services import earning, ledger, standings
from partners.constants import MemberStatus
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.loyalty.test_imports import World
from tests.loyalty.test_ledger_concurrency import run_in_parallel
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory, role

TODAY = timezone.localdate()
QUARTER = date(TODAY.year, (TODAY.month - 1) // 3 * 3 + 1, 1)


def sale(program, member, key="sale:1", quantity=12, colleagues=()):
    return sale_event(
        program=program,
        source_key=key,
        partner=member.partner,
        product=ProductFactory(),
        quantity=Decimal(quantity),
        amount=Decimal(1000),
        occurred_on=TODAY,
        actor=member,
        colleagues=list(colleagues),
    )


def rows(program) -> list[tuple]:
    """(period, member id or None, partner id, points, normalised, active members), people first."""
    return list(
        PeriodStanding.objects.filter(program=program)
        .order_by("period_start", "member_id", "partner_id")
        .values_list("period_start", "member_id", "partner_id", "points", "normalised", "active_members")
    )


@pytest.mark.django_db
def test_a_posting_raises_the_members_row_and_the_company_row_of_the_quarter():
    program = ProgramFactory()
    RuleFactory(program=program, shares=[{"role": "sales", "percent": 60}])  # 40 % to the company
    rep = MemberFactory(role=role("sales"))
    MemberFactory(partner=rep.partner, role=role("engineer"))
    MemberFactory(partner=rep.partner, status=MemberStatus.LEFT)

    earning.post_event(program=program, event=sale(program, rep))  # 120 points: 72 + 48
    earning.post_event(program=program, event=sale(program, rep, key="sale:1"))  # a retry: nothing new
    earning.post_event(program=program, event=sale(program, rep, key="sale:2", quantity=1))  # 6 + 4

    assert rows(program) == [
        (QUARTER, rep.pk, rep.partner_id, 78, Decimal(78), 1),
        (QUARTER, None, rep.partner_id, 130, Decimal(65), 2),  # 130 points / 2 active members
    ]


@pytest.mark.django_db
def test_a_yearly_program_keeps_one_row_a_year():
    program = ProgramFactory(tier_period=TierPeriod.YEAR)
    RuleFactory(program=program)
    member = MemberFactory()

    earning.post_event(program=program, event=sale(program, member))

    assert [row[:4] for row in rows(program)] == [
        (date(TODAY.year, 1, 1), member.pk, member.partner_id, 120),
        (date(TODAY.year, 1, 1), None, member.partner_id, 120),
    ]


def backdate_entries(source_key: str, when) -> None:
    """Make the entries of a source look posted at `when` (entries are append-only: the trigger is off meanwhile)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending: the table can be altered
        cursor.execute("ALTER TABLE loyalty_pointsentry DISABLE TRIGGER loyalty_pointsentry_append_only")
        cursor.execute("UPDATE loyalty_pointsentry SET created_at = %s WHERE source_id = %s", [when, source_key])
        cursor.execute("ALTER TABLE loyalty_pointsentry ENABLE TRIGGER loyalty_pointsentry_append_only")


@pytest.mark.django_db
def test_taking_points_back_lowers_the_rows_of_the_period_they_were_earned_in():
    program = ProgramFactory()
    RuleFactory(program=program)
    member = MemberFactory()
    earning.post_event(program=program, event=sale(program, member))
    then = timezone.now() - timedelta(days=400)
    backdate_entries("sale:1", then)  # posted 400 days ago: the standings rows of then are moved by hand
    before = standings.standings_period(program, timezone.localdate(then))
    PeriodStanding.objects.filter(program=program).update(period_start=before)
    earning.post_event(program=program, event=sale(program, member, key="sale:2"))

    earning.reverse_source(source_key="sale:1", fraction=Decimal("0.5"), key="return:1", explanation="Returned")
    earning.reverse_source(source_key="sale:2", fraction=Decimal(1), key="return:2", explanation="Returned")
    earning.reverse_source(source_key="sale:2", fraction=Decimal(1), key="return:2", explanation="Returned")  # again

    assert [row[:4] for row in rows(program)] == [
        (before, member.pk, member.partner_id, 120 - 60),
        (before, None, member.partner_id, 60),
        (QUARTER, member.pk, member.partner_id, 120 - 120),
        (QUARTER, None, member.partner_id, 0),
    ]


@pytest.mark.django_db
def test_adjustments_redemptions_and_prizes_outside_the_rules_do_not_count():
    program = ProgramFactory()
    member = MemberFactory()
    account = ledger.member_account(program=program, member=member)
    ledger.adjust(account=account, points=500, key="adj:1", reason="Welcome", created_by=ProgramManagerFactory())
    ledger.spend(account=account, points=100, key="order:1")
    ledger.earn(account=account, points=50, key="other:1")

    assert rows(program) == []


@pytest.mark.django_db
def test_one_statement_raises_many_rows(django_assert_num_queries):
    program = ProgramFactory()
    members = [MemberFactory() for _ in range(5)]
    company = PartnerFactory()
    paid = [(member.pk, None, 10 * number) for number, member in enumerate(members, 1)] + [(None, company.pk, 7)]

    with django_assert_num_queries(1):
        standings.standings_add(program=program, rows=paid)
    with django_assert_num_queries(1):
        standings.standings_add(program=program, rows=paid[:2])

    assert [row[1:4] for row in rows(program) if row[1] is not None] == [
        (members[0].pk, members[0].partner_id, 20),
        (members[1].pk, members[1].partner_id, 40),
        (members[2].pk, members[2].partner_id, 30),
        (members[3].pk, members[3].partner_id, 40),
        (members[4].pk, members[4].partner_id, 50),
    ]
    assert PeriodStanding.objects.get(member=None, partner=company).points == 7


@pytest.mark.django_db
def test_a_sellout_import_raises_the_standings_and_its_returns_lower_them(private_media):
    world = World()
    world.run([world.line("L1", qty="10"), world.line("L2", qty="2"), world.line("L3", qty="3", rep="")])
    assert [row[1:4] for row in rows(world.program)] == [
        (world.member.pk, world.partner.pk, 120),
        (None, world.partner.pk, 150),  # the member's 120 and the company account's 30
    ]

    world.run([world.line("R1", qty="-4", returns="L1")])

    assert [row[1:4] for row in rows(world.program)] == [
        (world.member.pk, world.partner.pk, 80),
        (None, world.partner.pk, 110),
    ]


@pytest.mark.django_db(transaction=True)
def test_postings_at_the_same_instant_for_one_member_all_count():
    program = ProgramFactory()
    RuleFactory(program=program)
    member = MemberFactory()
    colleague = MemberFactory(partner=member.partner)
    people = [member, colleague] * 4
    events = [sale(program, people[i], key=f"s:{i}", quantity=1) for i in range(8)]

    outcomes = run_in_parallel(8, lambda i: len(earning.post_event(program=program, event=events[i])))

    assert outcomes == {1: 8}

    assert [row[1:4] for row in rows(program)] == [
        (member.pk, member.partner_id, 40),
        (colleague.pk, member.partner_id, 40),
        (None, member.partner_id, 80),
    ]
