"""Sales against the same months last year, tiers and their moves, claim turnaround, campaign messages, and the
return on the incentive budget, on small hand-computed programs."""

from datetime import timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.db.models import F
from django.utils import timezone

from analytics import kpis, roi
from analytics.models import ClaimsDay, MessagesDay, PointsDay, SalesDay
from communications.constants import CampaignStatus
from communications.models import Campaign, CampaignRecipient
from loyalty.models import PartnerTier, TierChange
from tests.analytics.helpers import local
from tests.loyalty.factories import ProductLineFactory, ProgramFactory, TierFactory
from tests.partners.factories import MemberFactory, PartnerFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
THIS_MONTH = kpis.month_start(TODAY)
START = THIS_MONTH - relativedelta(months=11)
PERIOD = {"start": START, "end": TODAY}
D = Decimal


@pytest.fixture
def program():
    return ProgramFactory(point_value=D("0.0100"), money_currency="EUR")


def sale(program, day, partner, line, amount):
    return SalesDay.objects.create(
        day=day,
        program_id=program.pk,
        partner_id=partner.pk,
        role_id=0,
        region_id=partner.region_id,
        product_line_id=line.pk if line else 0,
        amount=D(amount),
        units=D("1"),
        lines=1,
    )


# Sales ------------------------------------------------------------------------------------------------------


@pytest.fixture
def sales_program(program):
    alpha, beta, gamma = (PartnerFactory(name=name) for name in ("Alpha", "Beta", "Gamma"))
    softeners, filters = ProductLineFactory(name="Softeners"), ProductLineFactory(name="Filters")
    early = START + timedelta(days=5)
    sale(program, early, alpha, softeners, "1000.00")
    sale(program, early, alpha, filters, "200.00")
    sale(program, THIS_MONTH, beta, softeners, "500.00")
    sale(program, THIS_MONTH, gamma, filters, "50.00")
    # A year before
    sale(program, kpis.year_before(early), alpha, softeners, "800.00")
    sale(program, kpis.year_before(early), gamma, filters, "100.00")
    sale(program, kpis.year_before(THIS_MONTH), beta, softeners, "1000.00")
    # Neither: between the two periods, and another program's.
    sale(program, START - timedelta(days=1), alpha, softeners, "9999.00")
    sale(ProgramFactory(), early, alpha, softeners, "7777.00")
    return program, (alpha, beta, gamma), (softeners, filters)


def test_sales_by_month_stand_against_the_same_months_a_year_before(sales_program, django_assert_num_queries):
    program, (alpha, beta, gamma), lines = sales_program

    with django_assert_num_queries(1):
        months = kpis.sales_by_month(program=program, **PERIOD)

    assert [row.key for row in months] == kpis.months_between(START, TODAY)
    assert [(row.key, row.amount, row.last_year) for row in months if row.amount or row.last_year] == [
        (START, D("1200.00"), D("900.00")),
        (THIS_MONTH, D("550.00"), D("1000.00")),
    ]
    assert (months[0].change, months[-1].change) == (D("33.3"), D("-45.0"))


def test_sales_by_product_line_and_by_partner_biggest_first(sales_program, django_assert_num_queries):
    program, (alpha, beta, gamma), (softeners, filters) = sales_program

    with django_assert_num_queries(1):
        by_line = kpis.sales_by_product_line(program=program, **PERIOD)
    assert [(row.label, row.amount, row.last_year) for row in by_line] == [
        ("Softeners", D("1500.00"), D("1800.00")),
        ("Filters", D("250.00"), D("100.00")),
    ]

    with django_assert_num_queries(1):
        by_partner = kpis.sales_by_partner(program=program, limit=2, **PERIOD)
    assert [(row.key, row.label, row.amount, row.last_year, row.change) for row in by_partner] == [
        (alpha.pk, "Alpha", D("1200.00"), D("800.00"), D("50.0")),
        (beta.pk, "Beta", D("500.00"), D("1000.00"), D("-50.0")),
    ]


def test_sales_of_some_partners_are_theirs_only(sales_program):
    program, (alpha, beta, gamma), lines = sales_program

    months = kpis.sales_by_month(program=program, partner_ids=[beta.pk, gamma.pk], **PERIOD)

    assert (months[0].amount, months[0].last_year) == (D("0"), D("100.00"))
    assert (months[-1].amount, months[-1].last_year) == (D("550.00"), D("1000.00"))
    assert [row.label for row in kpis.sales_by_partner(program=program, partner_ids=[gamma.pk], **PERIOD)] == ["Gamma"]


# Tiers ------------------------------------------------------------------------------------------------------


def test_tier_distribution_and_moves_in_the_period(program, django_assert_num_queries):
    bronze = TierFactory(program=program, name="Bronze", rank=0)
    silver = TierFactory(program=program, name="Silver", rank=1)
    gold = TierFactory(program=program, name="Gold", rank=2)
    p1, p2, p3 = PartnerFactory.create_batch(3)
    for partner, tier in ((p1, gold), (p2, gold), (p3, bronze)):
        PartnerTier.objects.create(program=program, partner=partner, tier=tier, since=START, held_until=TODAY)
    other = ProgramFactory()
    PartnerTier.objects.create(
        program=other, partner=p1, tier=TierFactory(program=other), since=START, held_until=TODAY
    )
    for partner, before, after in ((p1, None, bronze), (p1, bronze, gold), (p2, silver, gold), (p3, silver, bronze)):
        TierChange.objects.create(
            program=program, partner=partner, from_tier=before, to_tier=after, metric_value=0, reason="test"
        )
    old = TierChange.objects.create(
        program=program, partner=p3, from_tier=bronze, to_tier=silver, metric_value=0, reason="before the period"
    )
    TierChange.objects.filter(pk=old.pk).update(created_at=local(START - timedelta(days=1)))

    with django_assert_num_queries(1):
        tiers = kpis.tier_distribution(program=program)
    assert [(row.name, row.partners) for row in tiers] == [("Bronze", 1), ("Silver", 0), ("Gold", 2)]
    assert [row.partners for row in kpis.tier_distribution(program=program, partner_ids=[p1.pk, p3.pk])] == [1, 0, 1]

    with django_assert_num_queries(1):
        moves = kpis.tier_moves(program=program, **PERIOD)
    assert (moves.first, moves.up, moves.down, moves.total) == (1, 2, 1, 4)
    assert kpis.tier_moves(program=program, partner_ids=[p3.pk], **PERIOD) == kpis.TierMoves(down=1)


# Claims and campaigns ---------------------------------------------------------------------------------------


def claims_day(program, day, partner_id=1, **numbers):
    ClaimsDay.objects.create(day=day, program_id=program.pk, partner_id=partner_id, role_id=1, region_id=1, **numbers)


def test_claim_turnaround_is_the_mean_time_to_a_decision(program, django_assert_num_queries):
    claims_day(program, START, submitted=4, approved=2, rejected=1, turnaround_hours=D("30"))
    claims_day(program, THIS_MONTH, submitted=1, approved=1, turnaround_hours=D("6"))
    claims_day(program, THIS_MONTH, partner_id=2, submitted=3)
    claims_day(program, START - timedelta(days=1), approved=9, turnaround_hours=D("900"))

    with django_assert_num_queries(1):
        claims = kpis.claim_turnaround(program=program, **PERIOD)

    total = claims.total
    assert (total.submitted, total.approved, total.rejected, total.decided) == (8, 3, 1, 4)
    assert (total.mean_hours, total.mean_days, total.approval_rate) == (D("9.0"), D("0.4"), D("75.0"))
    assert [(m.month, m.submitted, m.mean_hours) for m in claims.months if m.submitted] == [
        (START, 4, D("10.0")),
        (THIS_MONTH, 4, D("6.0")),
    ]
    assert kpis.claim_turnaround(program=program, partner_ids=[2], **PERIOD).total.mean_hours is None


def test_campaign_messages_per_channel_and_the_campaigns_sent(program, django_assert_num_queries):
    for day, channel, kind, numbers in (
        (START, "email", "campaign", (100, 90, 45, 9, 10)),
        (THIS_MONTH, "email", "campaign", (10, 10, 0, 0, 0)),
        (THIS_MONTH, "sms", "campaign", (20, 20, 0, 2, 0)),
        (THIS_MONTH, "email", "tier_changed", (500, 500, 500, 500, 0)),  # not a campaign
        (START - timedelta(days=1), "email", "campaign", (1000, 0, 0, 0, 0)),  # before the period
    ):
        sent, delivered, opened, acted, failed = numbers
        MessagesDay.objects.create(
            day=day, channel=channel, role_id=1, kind=kind, sent=sent, delivered=delivered, opened=opened,
            acted=acted, failed=failed,
        )  # fmt: skip
    with django_assert_num_queries(1):
        channels = kpis.campaign_messages(**PERIOD)
    assert [(c.channel, c.label, c.sent, c.delivered, c.opened, c.acted, c.failed) for c in channels] == [
        ("email", "E-mail", 110, 100, 45, 9, 10),
        ("sms", "SMS", 20, 20, 0, 2, 0),
    ]
    assert (channels[0].open_rate, channels[0].act_rate) == (D("45.0"), D("9.0"))

    members = MemberFactory.create_batch(3)
    sent = Campaign.objects.create(
        program=program, name="Spring", status=CampaignStatus.SENT, sent_at=local(THIS_MONTH, 9)
    )
    for member, control in zip(members, (False, False, True), strict=True):
        CampaignRecipient.objects.create(campaign=sent, member=member, in_control_group=control)
    Campaign.objects.create(program=program, name="Draft")
    Campaign.objects.create(program=ProgramFactory(), name="Other", status=CampaignStatus.SENT, sent_at=sent.sent_at)
    with django_assert_num_queries(1):
        campaigns = kpis.recent_campaigns(program=program, **PERIOD)
    assert [(c.pk, c.name, c.told, c.control) for c in campaigns] == [(sent.pk, "Spring", 2, 1)]


# Return on the incentive budget -----------------------------------------------------------------------------


def points(program, day, partner, role_id, issued, reversed=0):
    PointsDay.objects.create(
        day=day, program_id=program.pk, partner_id=partner.pk, role_id=role_id, region_id=partner.region_id,
        product_line_id=0, issued=issued, reversed=reversed,
    )  # fmt: skip


@pytest.fixture
def roi_program(program):
    """P1 and P2 participate (their people earned points), P3 is the comparison (only its company account earned: it
    grew 10 %), P4 participates but sold nothing a year before. Points issued: 17,000, 1,000 taken back."""
    p1, p2, p3, p4 = (PartnerFactory(name=name) for name in ("P1", "P2", "P3", "P4"))
    line = ProductLineFactory()
    day = START + timedelta(days=40)
    for partner, before, now in ((p1, "1000", "1500"), (p2, "1000", "1300"), (p3, "2000", "2200")):
        sale(program, kpis.year_before(day), partner, line, before)
        sale(program, day, partner, line, now)
    sale(program, day, p4, line, "500")
    points(program, day, p1, 2, 9000)
    points(program, day, p4, 2, 1000)
    points(program, day, p2, 2, 5000, reversed=1000)
    points(program, day, p3, 0, 2000)  # the company account: not participation
    points(program, kpis.year_before(day), p3, 2, 999)  # a year before: not participation now
    return program, (p1, p2, p3, p4)


def test_the_return_on_the_incentive_budget_of_a_constructed_case(roi_program, django_assert_num_queries):
    program, (p1, p2, p3, p4) = roi_program

    with django_assert_num_queries(2):
        estimate = roi.incentive_roi(program=program, **PERIOD)

    assert estimate.participating == roi.PartnerGroup(2, D("2800.00"), D("2000.00"))
    assert estimate.comparison == roi.PartnerGroup(1, D("2200.00"), D("2000.00"))
    assert (estimate.new_partners, estimate.new_partner_sales) == (1, D("500.00"))
    assert (estimate.participating.lift, estimate.comparison.lift) == (D("40.0"), D("10.0"))
    assert (estimate.points_issued, estimate.cost) == (16000, D("160.00"))
    assert estimate.extra_vs_own == D("800.00")
    assert estimate.expected == D("2200.00")
    assert estimate.extra_vs_comparison == D("600.00")
    assert (estimate.return_vs_own, estimate.return_vs_comparison) == (D("5.00"), D("3.75"))


def test_the_return_of_some_partners_counts_only_theirs(roi_program):
    program, (p1, p2, p3, p4) = roi_program

    estimate = roi.incentive_roi(program=program, partner_ids=[p1.pk, p3.pk], **PERIOD)

    assert estimate.participating == roi.PartnerGroup(1, D("1500.00"), D("1000.00"))
    assert estimate.extra_vs_comparison == D("400.00")  # 1,500 − 1,000 × 1.1
    assert estimate.cost == D("110.00")
    assert estimate.return_vs_comparison == D("3.64")


def test_without_a_comparison_group_only_the_own_baseline_is_given(roi_program):
    program, (p1, p2, p3, p4) = roi_program
    PointsDay.objects.filter(partner_id=p3.pk).update(role_id=F("role_id") + 5)  # P3's people earned: it takes part

    estimate = roi.incentive_roi(program=program, **PERIOD)

    assert estimate.comparison == roi.PartnerGroup()
    assert (estimate.expected, estimate.extra_vs_comparison, estimate.return_vs_comparison) == (None, None, None)
    assert estimate.extra_vs_own == D("1000.00")
