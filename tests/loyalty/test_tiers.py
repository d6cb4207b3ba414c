"""Partner tiers: the metric (sales or points EARNED over a rolling window), upgrades at once, downgrades at the
end of the period, the history, the daily task, a member's progress and the home page card."""

import itertools
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import ClaimStatus, TierMetric, TierPeriod
from loyalty.engine.facts import partner_tiers
from loyalty.models import ClaimLine, PartnerTier, SaleLine, SalesClaim, SalesSource, TierChange
from loyalty.services import ledger
from loyalty.services.tiers import partner_metric, period_end, tier_evaluate, tier_progress, tiers_evaluate_all
from loyalty.tasks.tiers import evaluate_tiers
from partners.constants import MemberStatus, PartnerStatus
from tests.loyalty.factories import ProductFactory, ProgramFactory, TierFactory
from tests.loyalty.test_ledger_concurrency import run_together
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 5, 15)  # in Q2 2026: the quarter ends on 30 June
_ids = itertools.count(1)


@pytest.fixture
def program():
    return ProgramFactory(
        name="Aqua Rewards",
        tier_metric=TierMetric.SALES_AMOUNT,
        tier_window_days=365,
        tier_period=TierPeriod.QUARTER,
        money_currency="EUR",
    )


@pytest.fixture
def ladder(program):
    """Bronze (entry), Silver from €5,000, Gold from €10,000."""
    return (
        TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0")),
        TierFactory(program=program, name="Silver", rank=1, threshold=Decimal("5000"), multiplier=Decimal("1.10")),
        TierFactory(
            program=program,
            name="Gold",
            rank=2,
            threshold=Decimal("10000"),
            multiplier=Decimal("1.25"),
            service_level="Next-day delivery and a dedicated technician",
        ),
    )


@pytest.fixture
def partner():
    return PartnerFactory(name="Aqua Dealer Ltd")


def _source(program) -> SalesSource:
    return SalesSource.objects.get_or_create(program=program, code="erp", defaults={"name": "ERP"})[0]


def sale(program, partner, amount, *, day=TODAY, quantity="1") -> SaleLine:
    return SaleLine.objects.create(
        source=_source(program),
        external_id=f"L{next(_ids)}",
        partner=partner,
        product=ProductFactory(),
        quantity=Decimal(quantity),
        amount=Decimal(amount),
        invoice_date=day,
        paid_quantity=max(Decimal(quantity), Decimal(0)),
    )


def claim(program, partner, amount, *, day=TODAY, status=ClaimStatus.APPROVED, matched_line=None) -> SalesClaim:
    member = MemberFactory(partner=partner)
    claim = SalesClaim.objects.create(
        program=program,
        member=member,
        partner=partner,
        invoice_number=f"INV-{next(_ids)}",
        invoice_date=day,
        document="claims/2026/05/invoice.pdf",
        status=status,
        total_amount=Decimal(amount),
        matched_line=matched_line,
    )
    paid = Decimal(1 if status == ClaimStatus.APPROVED and matched_line is None else 0)
    ClaimLine.objects.create(
        claim=claim, product=ProductFactory(), quantity=Decimal("1"), amount=Decimal(amount), paid_quantity=paid
    )
    return claim


def held(program, partner) -> PartnerTier:
    return PartnerTier.objects.select_related("tier").get(program=program, partner=partner)


def snapshot(program, partner) -> tuple:
    row = held(program, partner)
    return row.tier.name, row.since, row.held_until, row.metric_value, row.evaluated_at, TierChange.objects.count()


# Periods --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "period", "end"),
    [
        (date(2026, 1, 1), TierPeriod.QUARTER, date(2026, 3, 31)),
        (date(2026, 3, 31), TierPeriod.QUARTER, date(2026, 3, 31)),
        (date(2026, 4, 1), TierPeriod.QUARTER, date(2026, 6, 30)),
        (date(2026, 8, 20), TierPeriod.QUARTER, date(2026, 9, 30)),
        (date(2026, 12, 31), TierPeriod.QUARTER, date(2026, 12, 31)),
        (date(2026, 2, 10), TierPeriod.YEAR, date(2026, 12, 31)),
    ],
)
def test_period_end_is_the_last_day_of_the_quarter_or_year(today, period, end):
    assert period_end(period=period, today=today) == end


# The sales metric -----------------------------------------------------------------------------------


def test_sales_metric_sums_sale_lines_in_the_window_and_returns_reduce_it(program, partner):
    # given a 365-day window ending 15 May 2026: it starts on 16 May 2025
    sale(program, partner, "6000.00", day=date(2025, 5, 16))  # first day: in
    sale(program, partner, "2500.50", day=TODAY)  # last day: in
    sale(program, partner, "-1000.00", day=date(2026, 1, 10), quantity="-1")  # a return
    sale(program, partner, "9999.00", day=date(2025, 5, 15))  # the day before the window: out
    sale(program, partner, "9999.00", day=TODAY + timedelta(days=1))  # after today: out

    assert partner_metric(program=program, partner=partner, today=TODAY) == Decimal("7500.50")


def test_sales_metric_adds_approved_claims_no_sale_line_confirms_and_counts_a_confirmed_one_once(program, partner):
    confirmed_by = sale(program, partner, "3000.00")
    claim(program, partner, "3000.00", matched_line=confirmed_by)  # counted once, through the sale line
    claim(program, partner, "1200.00")  # approved, unconfirmed: counted
    claim(program, partner, "700.00", status=ClaimStatus.SUBMITTED)
    claim(program, partner, "800.00", status=ClaimStatus.REJECTED)
    claim(program, partner, "900.00", status=ClaimStatus.WITHDRAWN)
    claim(program, partner, "5000.00", day=date(2025, 1, 1))  # approved but before the window

    assert partner_metric(program=program, partner=partner, today=TODAY) == Decimal("4200.00")


def test_a_sale_claimed_and_then_reported_by_sell_out_counts_once_through_what_paid_it(program, partner):
    """Issue #10 (one sale pays once): the claim paid the 2 units, the sell-out line of the same sale paid none;
    a second source reporting 3 units of another sale already paid for 2 adds the third unit only."""
    claim(program, partner, "3000.00")  # approved, paid
    reported_again = sale(program, partner, "3000.00")
    reported_again.paid_quantity = Decimal(0)
    reported_again.save()
    partly = sale(program, partner, "600.00", quantity="3")
    partly.paid_quantity = Decimal(1)
    partly.save()

    assert partner_metric(program=program, partner=partner, today=TODAY) == Decimal("3200.00")


def test_sales_metric_ignores_other_partners_and_other_programs(program, partner):
    other_program = ProgramFactory()
    sale(program, partner, "100.00")
    sale(program, PartnerFactory(), "5000.00")
    sale(other_program, partner, "5000.00")
    claim(other_program, partner, "5000.00")

    assert partner_metric(program=program, partner=partner, today=TODAY) == Decimal("100.00")


# The points metric: EARNED, never balances (FIELD.md item 7) ------------------------------------------


@pytest.fixture
def points_program():
    return ProgramFactory(
        currency_name="AquaPoints", tier_metric=TierMetric.POINTS_EARNED, tier_window_days=30, expiry_months=None
    )


def test_points_metric_counts_points_earned_on_the_company_and_its_members_accounts(points_program, partner):
    company = ledger.partner_account(program=points_program, partner=partner)
    ana = ledger.member_account(program=points_program, member=MemberFactory(partner=partner))
    former = ledger.member_account(
        program=points_program, member=MemberFactory(partner=partner, status=MemberStatus.LEFT)
    )
    outsider = ledger.member_account(program=points_program, member=MemberFactory())
    ledger.earn(account=company, points=1000, key="c1")
    ledger.earn(account=ana, points=300, key="a1")
    ledger.earn(account=ana, points=50, key="a2", available_at=timezone.now() + timedelta(days=30))  # pending
    ledger.earn(account=former, points=20, key="f1")  # earned while a member of this partner
    ledger.earn(account=outsider, points=9000, key="o1")

    assert partner_metric(program=points_program, partner=partner) == Decimal("1370")


def test_points_metric_is_not_lowered_by_spending_nor_raised_by_transfers_or_adjustments(points_program, partner):
    company = ledger.partner_account(program=points_program, partner=partner)
    ana = ledger.member_account(program=points_program, member=MemberFactory(partner=partner))
    ledger.earn(account=ana, points=800, key="a1")
    ledger.spend(account=ana, points=700, key="order-1")  # the balance drops to 100
    ledger.transfer(source=ana, target=company, points=100, key="leaver-1")  # moves points, earns none
    ledger.adjust(account=company, points=5000, key="adj-1", reason="goodwill", created_by=None)

    assert partner_metric(program=points_program, partner=partner) == Decimal("800")


def test_points_metric_takes_back_reversed_earns(points_program, partner):
    ana = ledger.member_account(program=points_program, member=MemberFactory(partner=partner))
    entry = ledger.earn(account=ana, points=800, key="a1")
    ledger.reverse(entry=entry, key="a1-reversal", points=300)

    assert partner_metric(program=points_program, partner=partner) == Decimal("500")


def test_points_metric_counts_only_earns_inside_the_rolling_window(points_program, partner):
    ana = ledger.member_account(program=points_program, member=MemberFactory(partner=partner))
    ledger.earn(account=ana, points=800, key="a1")
    today = timezone.localdate()

    # the window has 30 days: today is its last day 29 days from now, and out of it 30 days from now
    assert partner_metric(program=points_program, partner=partner, today=today + timedelta(days=29)) == 800
    assert partner_metric(program=points_program, partner=partner, today=today + timedelta(days=30)) == 0
    assert partner_metric(program=points_program, partner=partner, today=today - timedelta(days=1)) == 0


def test_a_big_balance_from_long_ago_does_not_promote_a_partner_only_points_earned_in_the_window_do(
    points_program, partner
):
    TierFactory(program=points_program, name="Member", rank=0, threshold=0)
    TierFactory(program=points_program, name="Elite", rank=1, threshold=1000)
    ana = ledger.member_account(program=points_program, member=MemberFactory(partner=partner))
    ledger.earn(account=ana, points=50_000, key="long-ago")
    later = timezone.localdate() + timedelta(days=60)  # the earn is out of the 30-day window by then

    row = tier_evaluate(program=points_program, partner=partner, today=later)

    ana.refresh_from_db()
    assert ana.available == 50_000  # the balance would qualify many times over
    assert (row.tier.name, row.metric_value) == ("Member", Decimal("0"))


# Which tier -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "tier"),
    [("0.00", "Bronze"), ("4999.99", "Bronze"), ("5000.00", "Silver"), ("9999.99", "Silver"), ("10000.00", "Gold")],
)
def test_the_threshold_is_a_minimum_reached_exactly_and_not_a_cent_less(program, ladder, partner, amount, tier):
    sale(program, partner, amount)

    assert tier_evaluate(program=program, partner=partner, today=TODAY).tier.name == tier


def test_a_partner_with_no_sales_at_all_gets_the_entry_tier(program, ladder, partner):
    row = tier_evaluate(program=program, partner=partner, today=TODAY)

    assert (row.tier.name, row.metric_value, row.since, row.held_until) == (
        "Bronze",
        Decimal("0"),
        TODAY,
        date(2026, 6, 30),
    )
    change = TierChange.objects.get(partner=partner)
    assert (change.from_tier, change.to_tier.name) == (None, "Bronze")


def test_returns_that_make_the_metric_negative_still_leave_the_entry_tier(program, ladder, partner):
    sale(program, partner, "-300.00", quantity="-1")

    row = tier_evaluate(program=program, partner=partner, today=TODAY)

    assert (row.tier.name, row.metric_value) == ("Bronze", Decimal("-300.00"))


def test_a_program_without_tiers_evaluates_to_nothing(program, partner):
    sale(program, partner, "50000.00")

    assert tier_evaluate(program=program, partner=partner, today=TODAY) is None
    assert not PartnerTier.objects.exists() and not TierChange.objects.exists()


# Upgrades -------------------------------------------------------------------------------------------


def test_an_upgrade_happens_at_once_and_is_held_until_the_end_of_the_quarter(program, ladder, partner):
    sale(program, partner, "6000.00", day=date(2026, 2, 1))
    tier_evaluate(program=program, partner=partner, today=date(2026, 2, 1))  # Silver, held until 31 March
    sale(program, partner, "4000.00", day=TODAY)

    row = tier_evaluate(program=program, partner=partner, today=TODAY)

    assert (row.tier.name, row.since, row.held_until, row.metric_value) == (
        "Gold",
        TODAY,
        date(2026, 6, 30),
        Decimal("10000.00"),
    )
    change = TierChange.objects.filter(partner=partner).first()  # newest first
    assert (change.from_tier.name, change.to_tier.name, change.metric_value) == ("Silver", "Gold", Decimal("10000.00"))
    assert change.reason == "Upgraded: €10,000.00 of sales in 365 days reach Gold."


def test_an_upgrade_in_a_yearly_program_is_held_until_the_end_of_the_year(program, ladder, partner):
    program.tier_period = TierPeriod.YEAR
    program.save()
    sale(program, partner, "12000.00")

    row = tier_evaluate(program=program, partner=partner, today=TODAY)

    assert (row.tier.name, row.held_until) == ("Gold", date(2026, 12, 31))


def test_an_upgrade_applies_to_the_next_sale_through_the_engine_facts(program, ladder, partner):
    sale(program, partner, "10000.00")
    tier_evaluate(program=program, partner=partner, today=TODAY)

    facts = partner_tiers(program, [partner.pk])[partner.pk]

    assert (facts.tier.name, facts.tier.multiplier) == ("Gold", Decimal("1.25"))


# Downgrades -----------------------------------------------------------------------------------------


@pytest.fixture
def gold_partner(program, ladder, partner):
    """Gold since 15 May 2026 (held until 30 June) on a sale that leaves the window on 15 May 2027."""
    sale(program, partner, "10000.00", day=TODAY)
    tier_evaluate(program=program, partner=partner, today=TODAY)
    return partner


def test_a_partner_below_its_tier_keeps_it_until_the_end_of_the_period(program, gold_partner):
    # the sale is returned: the metric falls to 0 but Gold is held until 30 June
    sale(program, gold_partner, "-10000.00", day=date(2026, 6, 1), quantity="-1")

    row = tier_evaluate(program=program, partner=gold_partner, today=date(2026, 6, 30))

    assert (row.tier.name, row.since, row.held_until, row.metric_value) == (
        "Gold",
        TODAY,
        date(2026, 6, 30),
        Decimal("0.00"),
    )
    assert TierChange.objects.filter(partner=gold_partner).count() == 1


def test_after_the_period_a_partner_moves_straight_down_to_the_tier_it_qualifies_for(program, gold_partner):
    sale(program, gold_partner, "-10000.00", day=date(2026, 6, 1), quantity="-1")

    row = tier_evaluate(program=program, partner=gold_partner, today=date(2026, 7, 1))

    assert (row.tier.name, row.since, row.held_until) == ("Bronze", date(2026, 7, 1), date(2026, 9, 30))
    change = TierChange.objects.filter(partner=gold_partner).first()
    assert (change.from_tier.name, change.to_tier.name, change.metric_value) == ("Gold", "Bronze", Decimal("0.00"))
    assert change.reason.startswith("Downgraded at the end of the period (held until 2026-06-30)")


def test_a_partner_that_still_qualifies_after_the_period_keeps_its_tier_for_the_next_period(program, gold_partner):
    # 1 July: still Gold on the metric; no move, no history row, but the tier is now held until 30 September ...
    row = tier_evaluate(program=program, partner=gold_partner, today=date(2026, 7, 1))
    assert (row.tier.name, row.since, row.held_until) == ("Gold", TODAY, date(2026, 9, 30))
    assert TierChange.objects.filter(partner=gold_partner).count() == 1

    # ... so a drop in August waits for the end of September instead of downgrading at once
    sale(program, gold_partner, "-6000.00", day=date(2026, 8, 1), quantity="-1")
    assert tier_evaluate(program=program, partner=gold_partner, today=date(2026, 8, 2)).tier.name == "Gold"
    assert tier_evaluate(program=program, partner=gold_partner, today=date(2026, 10, 1)).tier.name == "Bronze"


def test_within_the_period_a_held_tier_only_refreshes_its_metric(program, gold_partner):
    sale(program, gold_partner, "250.00", day=date(2026, 5, 20))
    before = held(program, gold_partner)

    row = tier_evaluate(program=program, partner=gold_partner, today=date(2026, 5, 20))

    assert (row.tier_id, row.since, row.held_until) == (before.tier_id, before.since, before.held_until)
    assert row.metric_value == Decimal("10250.00")
    assert row.evaluated_at > before.evaluated_at


# Idempotence and the whole program ------------------------------------------------------------------


def test_evaluating_twice_the_same_day_changes_nothing_the_second_time(program, ladder, partner):
    sale(program, partner, "7000.00")
    tiers_evaluate_all(program=program, today=TODAY)
    first = snapshot(program, partner)

    result = tiers_evaluate_all(program=program, today=TODAY)

    assert snapshot(program, partner) == first
    assert (result.assigned, result.upgraded, result.downgraded, result.changes) == (0, 0, 0, ())


def test_evaluating_the_program_assigns_upgrades_and_skips_prospects_and_closed_partners(program, ladder):
    gold, silver, quiet = PartnerFactory(), PartnerFactory(), PartnerFactory(status=PartnerStatus.SUSPENDED)
    prospect, closed = PartnerFactory(status=PartnerStatus.PROSPECT), PartnerFactory(status=PartnerStatus.CLOSED)
    sale(program, gold, "12000.00")
    sale(program, silver, "5000.00")
    sale(program, prospect, "12000.00")
    sale(program, closed, "12000.00")

    result = tiers_evaluate_all(program=program, today=TODAY)

    tiers = dict(PartnerTier.objects.values_list("partner_id", "tier__name"))
    assert tiers == {gold.pk: "Gold", silver.pk: "Silver", quiet.pk: "Bronze"}
    assert (result.evaluated, result.assigned, result.upgraded, result.downgraded) == (3, 3, 0, 0)
    assert TierChange.objects.count() == 3


def _evaluation_queries(program, partners: int, django_assert_num_queries) -> None:
    for index in range(partners):
        partner = PartnerFactory()
        sale(program, partner, "12000.00" if index % 3 == 0 else "100.00")
        claim(program, partner, "5000.00")
        if index % 2:  # half of them already hold a tier that must be upgraded
            PartnerTier.objects.create(
                program=program,
                partner=partner,
                tier=program.tiers.get(rank=0),
                since=TODAY,
                held_until=date(2026, 6, 30),
            )
    # savepoint, advisory lock, tiers, partners, tier rows, the metric (one UNION), the paid club memberships,
    # insert rows, update rows, insert history, release savepoint; the upgraded partners' members hear of it: their
    # ids, then notify_many's savepoint, members, preferences, templates, suppressed addresses, insert, release
    with django_assert_num_queries(19):
        tiers_evaluate_all(program=program, today=TODAY)


@pytest.mark.parametrize("partners", [3, 30])
def test_evaluating_the_program_costs_the_same_queries_for_3_or_30_partners(
    program, ladder, partners, django_assert_num_queries
):
    _evaluation_queries(program, partners, django_assert_num_queries)
    assert PartnerTier.objects.filter(program=program).count() == partners


@pytest.mark.parametrize("partners", [3, 30])
def test_evaluating_a_points_program_costs_the_same_queries_for_3_or_30_partners(
    points_program, partners, django_assert_num_queries
):
    TierFactory(program=points_program, name="Member", rank=0, threshold=0)
    TierFactory(program=points_program, name="Elite", rank=1, threshold=100)
    for index in range(partners):
        partner = PartnerFactory()
        account = ledger.member_account(program=points_program, member=MemberFactory(partner=partner))
        ledger.earn(account=account, points=50 + index * 10, key=f"e{index}")

    # savepoint, advisory lock, tiers, partners, tier rows, the metric, the paid club memberships, insert rows,
    # insert history, release
    with django_assert_num_queries(10):
        result = tiers_evaluate_all(program=points_program)

    assert result.assigned == partners
    assert PartnerTier.objects.filter(tier__name="Elite").count() == max(partners - 5, 0)


def test_the_daily_task_evaluates_every_active_program(program, ladder, partner):
    paused = ProgramFactory(is_active=False)
    TierFactory(program=paused, name="Base", rank=0)
    sale(program, partner, "6000.00", day=timezone.localdate())

    totals = evaluate_tiers.delay().get()

    assert totals == {"evaluated": 1, "assigned": 1, "upgraded": 0, "downgraded": 0}
    assert held(program, partner).tier.name == "Silver"
    assert not PartnerTier.objects.filter(program=paused).exists()


@pytest.mark.django_db(transaction=True)
def test_two_evaluations_at_once_record_each_move_once():
    program = ProgramFactory()
    TierFactory(program=program, name="Bronze", rank=0)
    TierFactory(program=program, name="Gold", rank=1, threshold=Decimal("1000"))
    partners = PartnerFactory.create_batch(5)
    for partner in partners:
        sale(program, partner, "2000.00", day=timezone.localdate())
    errors = []

    def run(_):
        try:
            tiers_evaluate_all(program=program)
        except Exception as exc:  # reported below
            errors.append(exc)

    run_together(4, run)

    assert errors == []
    assert PartnerTier.objects.filter(tier__name="Gold").count() == 5
    assert TierChange.objects.count() == 5


# Progress -------------------------------------------------------------------------------------------


def test_progress_says_how_much_is_missing_for_the_next_tier(program, ladder, partner):
    sale(program, partner, "5750.00")
    tier_evaluate(program=program, partner=partner, today=TODAY)

    progress = tier_progress(program=program, partner=partner, today=TODAY)

    assert (progress.current.name, progress.next.name) == ("Silver", "Gold")
    assert (progress.missing, progress.metric_value, progress.percent) == (Decimal("4250.00"), Decimal("5750.00"), 57)
    assert progress.summary == "Silver · €4,250.00 of sales to reach Gold"
    assert progress.progress_text == "€5,750.00 of €10,000.00 of sales in the last 365 days (57%)"


def test_progress_at_the_top_tier_has_no_next_tier(program, ladder, partner):
    sale(program, partner, "15000.00")
    tier_evaluate(program=program, partner=partner, today=TODAY)

    progress = tier_progress(program=program, partner=partner, today=TODAY)

    assert (progress.current.name, progress.next, progress.missing, progress.percent) == ("Gold", None, None, 100)
    assert progress.summary == "Gold · the highest tier"


def test_progress_before_the_next_evaluation_says_the_next_tier_is_reached(program, ladder, partner):
    tier_evaluate(program=program, partner=partner, today=TODAY)
    sale(program, partner, "5000.00")  # enough for Silver; the daily evaluation has not run yet

    progress = tier_progress(program=program, partner=partner, today=TODAY, live=True)

    assert (progress.current.name, progress.next.name, progress.missing, progress.percent) == (
        "Bronze",
        "Silver",
        Decimal("0"),
        100,
    )
    assert progress.summary == "Bronze · Silver reached: it applies from the next daily review"


def test_progress_of_a_partner_never_evaluated_points_at_the_first_tier(points_program, partner):
    TierFactory(program=points_program, name="Member", rank=0, threshold=0)
    TierFactory(program=points_program, name="Elite", rank=1, threshold=Decimal("1000.50"))
    account = ledger.member_account(program=points_program, member=MemberFactory(partner=partner))
    ledger.earn(account=account, points=400, key="e1")
    tier_evaluate(program=points_program, partner=partner)

    progress = tier_progress(program=points_program, partner=partner, live=True)

    assert progress.summary == "Member · 601 AquaPoints more to earn to reach Elite"  # 600.50 rounds up
    assert progress.progress_text == "400 of 1,001 AquaPoints earned in the last 30 days (39%)"


def test_progress_warns_what_keeps_a_held_tier_after_the_period(program, gold_partner):
    sale(program, gold_partner, "-2000.00", day=date(2026, 6, 1), quantity="-1")

    progress = tier_progress(program=program, partner=gold_partner, today=date(2026, 6, 2), live=True)

    assert (progress.current.name, progress.held_until, progress.to_keep) == (
        "Gold",
        date(2026, 6, 30),
        Decimal("2000.00"),
    )


def test_progress_is_none_when_the_program_has_no_tiers(program, partner):
    assert tier_progress(program=program, partner=partner, live=True) is None


# The member's home page -----------------------------------------------------------------------------


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", html)


def test_home_shows_the_partners_tier_progress_with_an_accessible_bar(client, program, ladder, partner):
    owner = OwnerFactory(partner=partner)
    today = timezone.localdate()
    sale(program, partner, "5750.00", day=today)
    tier_evaluate(program=program, partner=partner)
    client.force_login(owner.user)

    html = _text(client.get(reverse("home")).content.decode())

    assert (
        '<p class="fw-semibold mb-2" data-testid="tier-summary">Silver · €4,250.00 of sales to reach Gold</p>' in html
    )
    assert (
        '<div class="progress" role="progressbar" aria-label="Progress to Gold" aria-valuemin="0" '
        'aria-valuemax="10000.00" aria-valuenow="5750.00" '
        'aria-valuetext="€5,750.00 of €10,000.00 of sales in the last 365 days (57%)">'
    ) in html
    assert '<svg class="progress-bar" width="57%" height="100%" aria-hidden="true" focusable="false"></svg>' in html
    assert "<dt>Points bonus</dt><dd>×1.1 on eligible sales</dd>" in html


def test_home_shows_the_service_level_of_the_tier(client, program, ladder, partner):
    member = MemberFactory(partner=partner)
    sale(program, partner, "12000.00", day=timezone.localdate())
    tier_evaluate(program=program, partner=partner)
    client.force_login(member.user)

    html = _text(client.get(reverse("home")).content.decode())

    assert "Gold · the highest tier" in html
    assert "<dt>Service level</dt><dd>Next-day delivery and a dedicated technician</dd>" in html
    assert 'role="progressbar"' not in html


def test_home_shows_no_tier_card_when_the_program_has_no_tiers(client, program, partner):
    client.force_login(OwnerFactory(partner=partner).user)

    html = client.get(reverse("home")).content.decode()

    assert 'data-testid="tier-card"' not in html


def test_home_shows_no_tier_card_to_a_member_waiting_for_approval(client, program, ladder, partner):
    client.force_login(MemberFactory(partner=partner, status=MemberStatus.PENDING_APPROVAL).user)

    html = client.get(reverse("home")).content.decode()

    assert 'data-testid="tier-card"' not in html


@pytest.mark.parametrize("team_size", [3, 30])
def test_home_with_tiers_costs_two_more_queries_whatever_the_team(
    client, program, ladder, partner, team_size, django_assert_max_num_queries
):
    owner = OwnerFactory(partner=partner)
    MemberFactory.create_batch(team_size, partner=partner)
    ledger.earn(account=ledger.member_account(program=program, member=owner), points=75, key="home")
    sale(program, partner, "5750.00", day=timezone.localdate())
    tier_evaluate(program=program, partner=partner)
    client.force_login(owner.user)

    # session, user, membership, team counts, program, balance, expiring soon, the tiers with the partner's,
    # the metric (one query); the next steps (tests/partners/test_views.py): rejected claims, two balances, the
    # partner's tier rank, the affordable rewards; the running challenges of "My challenges"
    with django_assert_max_num_queries(15):
        response = client.get(reverse("home"))

    assert 'data-testid="tier-card"' in response.content.decode()


@pytest.mark.django_db
def test_an_approved_claim_upgrades_the_partner_at_once(django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from loyalty.constants import TierMetric
    from loyalty.models import PartnerTier
    from loyalty.services.claims import claim_approve, claim_submit
    from tests.loyalty.factories import ProductFactory, ProgramFactory, TierFactory
    from tests.partners.factories import MemberFactory, ProgramManagerFactory

    program = ProgramFactory(tier_metric=TierMetric.SALES_AMOUNT, claim_auto_approve_below=Decimal("0"))
    TierFactory(program=program, name="Base", rank=0, threshold=Decimal("0"))
    TierFactory(program=program, name="Gold", rank=1, threshold=Decimal("1000"))
    member = MemberFactory()
    pdf = SimpleUploadedFile("invoice.pdf", b"%PDF-1.4\n%test invoice\n", content_type="application/pdf")
    claim = claim_submit(
        member=member,
        program=program,
        invoice_number="INV-77",
        invoice_date=date.today(),
        document=pdf,
        lines=[(ProductFactory(), Decimal(2), Decimal("1500.00"))],
        colleagues=[],
    )
    with django_capture_on_commit_callbacks(execute=True):
        claim_approve(claim=claim, actor=ProgramManagerFactory())
    assert PartnerTier.objects.get(program=program, partner=member.partner).tier.name == "Gold"
