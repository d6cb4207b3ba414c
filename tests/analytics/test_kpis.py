"""The key figures of a small program computed by hand: the activation funnel with its drop-off and median days,
active members, the points that moved, and the liability with its expiry forecast and breakage rate."""

from datetime import timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from analytics import kpis
from analytics.models import MembersDay, PointsDay
from loyalty.common.errors import ApplicationError
from loyalty.models import PartnerTier
from loyalty.services import ledger
from partners.constants import MemberStatus, PartnerKind
from tests.analytics.helpers import clock, local, submit
from tests.loyalty.factories import (
    MemberAccountFactory,
    PartnerAccountFactory,
    ProductFactory,
    ProgramFactory,
    TierFactory,
)
from tests.partners.factories import InvitationFactory, MemberFactory, PartnerFactory, RegionFactory, role

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
START = kpis.month_start(TODAY) - relativedelta(months=11)
PERIOD = {"start": START, "end": TODAY}


@pytest.fixture
def program():
    return ProgramFactory(point_value=Decimal("0.0100"), money_currency="EUR", expiry_months=24)


def points_day(program, day, partner_id=1, role_id=1, **numbers):
    return PointsDay.objects.create(
        day=day,
        program_id=program.pk,
        partner_id=partner_id,
        role_id=role_id,
        region_id=1,
        product_line_id=0,
        **numbers,
    )


# Activation funnel ------------------------------------------------------------------------------------------


@pytest.fixture
def funnel_program(program):
    """Two partners; MembersDay rows for the counts; five people with dates for the median days."""
    dealer = PartnerFactory(kind=PartnerKind.DEALER)
    installer = PartnerFactory(kind=PartnerKind.INSTALLER)
    sales, engineer = role("sales"), role("engineer")
    day = START + timedelta(days=3)
    for partner, who, program_id, numbers in (
        (dealer, sales, 0, {"invited": 10, "joined": 6}),
        (dealer, sales, program.pk, {"first_earn": 3, "first_redemption": 1}),
        (installer, engineer, 0, {"invited": 4, "joined": 4}),
        (installer, engineer, program.pk, {"first_earn": 1}),
        (installer, engineer, ProgramFactory().pk, {"first_earn": 5}),  # another program's
    ):
        MembersDay.objects.create(
            day=day, program_id=program_id, partner_id=partner.pk, role_id=who.pk, region_id=1, **numbers
        )
    MembersDay.objects.create(  # before the period
        day=START - timedelta(days=1), program_id=0, partner_id=dealer.pk, role_id=sales.pk, region_id=1, invited=7
    )

    joined = local(START + timedelta(days=20), 10)

    def person(partner, who, *, invited_days_before, earn_after=None, spend_after=None, joined_at=joined):
        member = MemberFactory(partner=partner, role=who, joined_at=joined_at)
        if invited_days_before is not None:
            with clock(joined_at - timedelta(days=invited_days_before)):
                InvitationFactory(member=member)
        account = MemberAccountFactory(program=program, member=member)
        if earn_after is not None:
            with clock(joined_at + timedelta(days=earn_after)):
                ledger.earn(account=account, points=100, key=f"earn-{member.pk}")
        if spend_after is not None:
            with clock(joined_at + timedelta(days=earn_after + spend_after)):
                ledger.spend(account=account, points=40, key=f"spend-{member.pk}")
        return member

    person(dealer, sales, invited_days_before=4, earn_after=2, spend_after=10)
    person(installer, sales, invited_days_before=2, earn_after=6)
    person(dealer, engineer, invited_days_before=10)
    person(installer, engineer, invited_days_before=None, earn_after=8)  # joined without an invitation
    # Joined before the period: not in the median days.
    person(
        dealer, sales, invited_days_before=1, earn_after=1, spend_after=1, joined_at=local(START - timedelta(days=5))
    )
    return program, dealer, installer


def numbers(row):
    return (row.invited, row.joined, row.first_earn, row.first_redemption)


def days(row):
    return (row.days_to_join, row.days_to_earn, row.days_to_redeem)


def test_the_funnel_counts_each_step_in_the_period_with_the_drop_off_between_steps(funnel_program):
    program, dealer, installer = funnel_program

    funnel = kpis.activation_funnel(program=program, **PERIOD)

    assert numbers(funnel.total) == (14, 10, 4, 1)
    assert (funnel.total.join_drop_off, funnel.total.earn_drop_off, funnel.total.redeem_drop_off) == (
        Decimal("28.6"),
        Decimal("60.0"),
        Decimal("75.0"),
    )
    assert [(row.label, numbers(row)) for row in funnel.by_role] == [
        ("Sales rep", (10, 6, 3, 1)),
        ("Engineer / installer", (4, 4, 1, 0)),
    ]
    sales = funnel.by_role[0]
    assert (sales.join_drop_off, sales.earn_drop_off, sales.redeem_drop_off) == (
        Decimal("40.0"),
        Decimal("50.0"),
        Decimal("66.7"),
    )
    assert [(row.key, numbers(row)) for row in funnel.by_kind] == [
        (PartnerKind.DEALER, (10, 6, 3, 1)),
        (PartnerKind.INSTALLER, (4, 4, 1, 0)),
    ]


def test_the_funnel_gives_the_median_days_of_the_people_who_joined_in_the_period(funnel_program):
    program, dealer, installer = funnel_program

    funnel = kpis.activation_funnel(program=program, **PERIOD)

    assert funnel.sampled == 4
    assert days(funnel.total) == (Decimal("4.0"), Decimal("6.0"), Decimal("10.0"))
    assert [(row.label, days(row)) for row in funnel.by_role] == [
        ("Sales rep", (Decimal("3.0"), Decimal("4.0"), Decimal("10.0"))),
        ("Engineer / installer", (Decimal("10.0"), Decimal("8.0"), None)),
    ]
    assert [(row.key, days(row)) for row in funnel.by_kind] == [
        (PartnerKind.DEALER, (Decimal("7.0"), Decimal("2.0"), Decimal("10.0"))),
        (PartnerKind.INSTALLER, (Decimal("2.0"), Decimal("7.0"), None)),
    ]


def test_the_funnel_of_some_partners_counts_only_theirs(funnel_program):
    program, dealer, installer = funnel_program

    funnel = kpis.activation_funnel(program=program, partner_ids=[installer.pk], **PERIOD)

    assert numbers(funnel.total) == (4, 4, 1, 0)
    assert funnel.sampled == 2
    assert days(funnel.total) == (Decimal("2.0"), Decimal("7.0"), None)
    assert [row.key for row in funnel.by_kind] == [PartnerKind.INSTALLER]


def test_the_funnel_costs_three_queries(funnel_program, django_assert_num_queries):
    program, dealer, installer = funnel_program
    with django_assert_num_queries(3):
        kpis.activation_funnel(program=program, **PERIOD)


def test_no_drop_off_is_given_when_a_step_counts_more_than_the_one_before():
    row = kpis.FunnelRow(None, "", invited=1, joined=3, first_earn=0, first_redemption=0)
    assert (row.join_drop_off, row.earn_drop_off, row.redeem_drop_off) == (None, Decimal("100.0"), None)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (TODAY, TODAY - timedelta(days=1)),  # reversed
        (TODAY, TODAY + timedelta(days=1)),  # in the future
        (TODAY - relativedelta(years=10), TODAY),  # ten years long
    ],
)
def test_a_bad_period_is_refused_with_a_clear_message(program, start, end):
    with pytest.raises(ApplicationError) as refused:
        kpis.activation_funnel(program=program, start=start, end=end)
    assert refused.value.message


# Active members ---------------------------------------------------------------------------------------------


@pytest.fixture
def active_program(program):
    """Four active members: A earned 10 days ago, B 60 days ago, C sent a claim 5 days ago, D did nothing here (but
    earned in another program); E earned yesterday but has left."""
    north, south = RegionFactory(code="north", name="North"), RegionFactory(code="south", name="South")
    dealer = PartnerFactory(kind=PartnerKind.DEALER, region=north)
    installer = PartnerFactory(kind=PartnerKind.INSTALLER, region=south)
    gold = TierFactory(program=program, name="Gold", rank=2)
    PartnerTier.objects.create(program=program, partner=dealer, tier=gold, since=START, held_until=TODAY)
    sales, engineer = role("sales"), role("engineer")
    now = timezone.now()

    a = MemberFactory(partner=dealer, role=sales)
    with clock(now - timedelta(days=10)):
        ledger.earn(account=MemberAccountFactory(program=program, member=a), points=10, key="a")
    b = MemberFactory(partner=installer, role=engineer)
    with clock(now - timedelta(days=60)):
        ledger.earn(account=MemberAccountFactory(program=program, member=b), points=10, key="b")
    c = MemberFactory(partner=installer, role=sales)
    with clock(now - timedelta(days=5)):
        submit(c, program, [(ProductFactory(), 1, 100)], number="INV-1", invoice_date=timezone.localdate())
    d = MemberFactory(partner=dealer, role=engineer)
    MemberAccountFactory(program=program, member=d)
    with clock(now - timedelta(days=5)):
        ledger.earn(account=MemberAccountFactory(program=ProgramFactory(), member=d), points=10, key="d")
    e = MemberFactory(partner=dealer, role=sales, status=MemberStatus.LEFT)
    with clock(now - timedelta(days=1)):
        ledger.earn(account=MemberAccountFactory(program=program, member=e), points=10, key="e")
    return program, dealer, installer


def counts(rows):
    return [(row.label, row.members, row.active_30, row.active_90) for row in rows]


def test_active_members_earned_spent_or_claimed_in_the_last_30_and_90_days(active_program):
    program, dealer, installer = active_program

    active = kpis.active_members(program=program)

    assert (active.total.members, active.total.active_30, active.total.active_90) == (4, 2, 3)
    assert (active.total.rate_30, active.total.rate_90) == (Decimal("50.0"), Decimal("75.0"))
    assert counts(active.by_role) == [("Sales rep", 2, 2, 2), ("Engineer / installer", 2, 0, 1)]
    assert counts(active.by_kind) == [("Dealer", 2, 1, 1), ("Installer", 2, 1, 2)]
    assert counts(active.by_region) == [("North", 2, 1, 1), ("South", 2, 1, 2)]
    assert counts(active.by_tier) == [("Gold", 2, 1, 1), ("No tier", 2, 1, 2)]


def test_active_members_of_some_partners_are_only_theirs(active_program, django_assert_num_queries):
    program, dealer, installer = active_program
    with django_assert_num_queries(4):
        active = kpis.active_members(program=program, partner_ids=[installer.pk])
    assert counts([active.total]) == [("Everybody", 2, 1, 2)]
    assert counts(active.by_tier) == [("No tier", 2, 1, 2)]


# Points and the liability -----------------------------------------------------------------------------------


def test_the_points_of_the_period_are_summed_from_the_roll_up(program, django_assert_num_queries):
    first_month = START + timedelta(days=2)
    this_month = kpis.month_start(TODAY)
    points_day(program, first_month, issued=1000, reversed=100, redeemed=300, expired=50, adjusted=-20)
    points_day(program, first_month, partner_id=2, issued=500)
    points_day(program, this_month, issued=200, redeemed=100)
    points_day(program, START - timedelta(days=1), issued=9999)  # before the period
    points_day(ProgramFactory(), first_month, issued=7777)  # another program

    with django_assert_num_queries(1):
        flow = kpis.points_flow(program=program, **PERIOD)
    assert (flow.issued, flow.reversed, flow.redeemed, flow.expired, flow.adjusted) == (1700, 100, 400, 50, -20)
    assert flow.net_issued == 1600
    assert kpis.points_flow(program=program, partner_ids=[2], **PERIOD).issued == 500

    with django_assert_num_queries(1):
        months = kpis.points_by_month(program=program, **PERIOD)
    assert len(months) == 12
    assert [(m.month, m.net_issued, m.redeemed, m.expired) for m in months if m.issued] == [
        (kpis.month_start(START), 1400, 300, 50),
        (this_month, 200, 100, 0),
    ]


@pytest.fixture
def liability_program(program):
    """A: 1,000 points expiring in two months (200 spent from them), 500 in five, 300 in fourteen; B: 50 overdue
    (past their expiry, not yet taken by the nightly expiry); the company account: 100 pending, expiring in five.
    PointsDay: 300 redeemed and 100 expired in the last 12 months, 1,000 redeemed 13 months ago."""
    now = timezone.now()
    this_month = kpis.month_start(TODAY)

    def expiring(months: int):
        """earned_at such that the points expire mid-month `months` from now (the program keeps them 24 months)."""
        return local(this_month + relativedelta(months=months, days=14)) - relativedelta(months=24)

    a = MemberAccountFactory(program=program)
    ledger.earn(account=a, points=1000, key="a1", earned_at=expiring(2))
    ledger.earn(account=a, points=500, key="a2", earned_at=expiring(5))
    ledger.earn(account=a, points=300, key="a3", earned_at=expiring(14))
    ledger.spend(account=a, points=200, key="a-spend")
    b = MemberAccountFactory(program=program)
    ledger.earn(account=b, points=50, key="b1", earned_at=now - relativedelta(months=24) - timedelta(hours=1))
    company = PartnerAccountFactory(program=program, partner=a.member.partner)
    ledger.earn(account=company, points=100, key="c1", earned_at=expiring(5), available_at=now + timedelta(days=30))
    MemberAccountFactory(program=ProgramFactory())  # another program's, empty
    points_day(program, TODAY - timedelta(days=10), redeemed=300, expired=100)
    points_day(program, TODAY - relativedelta(months=13), redeemed=1000)
    return program, a, b


def test_the_liability_is_the_outstanding_points_at_the_point_value(liability_program, django_assert_num_queries):
    program, a, b = liability_program

    with django_assert_num_queries(3):
        owed = kpis.liability(program=program)

    assert (owed.available, owed.pending, owed.outstanding) == (1650, 100, 1750)
    assert owed.value == Decimal("17.50")
    assert owed.currency == "EUR"


def test_the_expiry_forecast_gives_the_next_12_months_with_overdue_points_in_this_one(liability_program):
    program, a, b = liability_program

    owed = kpis.liability(program=program)

    this_month = kpis.month_start(TODAY)
    assert [row.month for row in owed.forecast] == [this_month + relativedelta(months=n) for n in range(12)]
    assert [(row.points, row.value) for row in owed.forecast if row.points] == [
        (50, Decimal("0.50")),
        (800, Decimal("8.00")),
        (600, Decimal("6.00")),
    ]
    assert [row.points for row in owed.forecast].index(800) == 2
    assert [row.points for row in owed.forecast].index(600) == 5
    assert (owed.expiring_points, owed.expiring_value) == (1450, Decimal("14.50"))


def test_the_breakage_rate_is_expired_over_redeemed_and_expired_in_the_last_12_months(liability_program):
    program, a, b = liability_program

    owed = kpis.liability(program=program)

    assert (owed.redeemed_before, owed.expired_before) == (300, 100)
    assert owed.breakage_rate == Decimal("25.0")
    assert owed.breakage_last == TODAY
    assert owed.breakage_first == TODAY - relativedelta(months=12) + timedelta(days=1)


def test_the_liability_of_some_partners_is_theirs_only(liability_program):
    program, a, b = liability_program

    owed = kpis.liability(program=program, partner_ids=[a.member.partner_id])

    assert (owed.available, owed.pending) == (1600, 100)
    assert owed.expiring_points == 1400


def test_without_points_redeemed_or_expired_there_is_no_breakage_rate(program):
    assert kpis.liability(program=program).breakage_rate is None
