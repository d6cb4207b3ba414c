"""Simulating a rule over past sale lines and approved claims: it pays what posting pays, replaces the versions of
the rule's code, costs the difference in money, says who would get the points, posts nothing, and costs the same
few queries whatever the number of lines."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import ClaimStatus, RuleStatus
from loyalty.engine.facts import partner_tiers, sale_event
from loyalty.models import (
    ClaimLine,
    IncentiveRule,
    PartnerTier,
    PointsAccount,
    PointsEntry,
    RuleUsage,
    SaleLine,
    SalesClaim,
    SalesSource,
)
from loyalty.services import earning
from loyalty.services.rules import rule_new_version, rule_publish
from loyalty.services.simulation import default_period, money, rule_simulate
from partners.constants import PartnerKind, PayoutPolicy
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory, TierFactory
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory, RegionFactory, role

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
START, END = TODAY - timedelta(days=30), TODAY


def source_of(program) -> SalesSource:
    return SalesSource.objects.get_or_create(program=program, code="feed", defaults={"name": "Distributor feed"})[0]


def sale_line(program, partner, product, *, member=None, quantity="5", amount="500", day=None, ext=None) -> SaleLine:
    source = source_of(program)
    return SaleLine.objects.create(
        source=source,
        external_id=ext or f"L{SaleLine.objects.count() + 1}",
        partner=partner,
        member=member,
        product=product,
        quantity=Decimal(quantity),
        amount=Decimal(amount),
        invoice_number="INV-1",
        invoice_date=day or TODAY - timedelta(days=3),
    )


def approved_claim(program, member, lines, *, colleagues=(), day=None, status=ClaimStatus.APPROVED) -> SalesClaim:
    claim = SalesClaim.objects.create(
        program=program,
        member=member,
        partner=member.partner,
        invoice_number=f"C-{SalesClaim.objects.count() + 1}",
        invoice_date=day or TODAY - timedelta(days=2),
        document="claims/invoice.pdf",
        status=status,
    )
    claim.colleagues.set(colleagues)
    for product, quantity, amount in lines:
        ClaimLine.objects.create(claim=claim, product=product, quantity=Decimal(quantity), amount=Decimal(amount))
    return claim


def draft_of(rule, **changes) -> IncentiveRule:
    return rule_new_version(rule=rule, **changes)


def post_everything(program, start=START, end=END) -> None:
    """Post the period's sale lines and approved claim lines the way the import and claim approval do, in date
    order (sale lines before claim lines on the same day), with events built here, independently."""
    rules = earning.published_rules(program)
    sale_lines = SaleLine.objects.filter(quantity__gt=0, invoice_date__range=(start, end))
    claims = SalesClaim.objects.filter(status=ClaimStatus.APPROVED, invoice_date__range=(start, end))
    tiers = partner_tiers(program, {line.partner_id for line in sale_lines} | {c.partner_id for c in claims})

    def event(line, partner, occurred_on, actor, colleagues=()):
        """A sale line, or a claim's line, as the engine sees it."""
        return sale_event(
            program=program,
            source_key=line.source_key,
            partner=partner,
            product=line.product,
            quantity=line.quantity,
            amount=line.amount,
            occurred_on=occurred_on,
            actor=actor,
            colleagues=colleagues,
            tier=tiers.get(partner.pk),
        )

    work = []
    for line in sale_lines.select_related("partner", "product", "member__role"):
        sold = event(line, line.partner, line.invoice_date, line.member)
        work.append(((line.invoice_date, 0, line.pk), sold, "sale_line"))
    for claim in claims.select_related("partner", "member__role"):
        colleagues = list(claim.colleagues.select_related("role").order_by("pk"))
        for line in claim.lines.select_related("product").order_by("pk"):
            claimed = event(line, claim.partner, claim.invoice_date, claim.member, colleagues)
            work.append(((claim.invoice_date, 1, claim.pk, line.pk), claimed, "claim"))
    for _, event, source_type in sorted(work, key=lambda item: item[0]):
        earning.post_event(program=program, event=event, rules=rules, source_type=source_type)


def posted() -> int:
    return sum(e.available_delta + e.pending_delta for e in PointsEntry.objects.all())


def posted_by_holder() -> dict[str, int]:
    totals: dict[str, int] = {}
    for account in PointsAccount.objects.select_related("member__role"):
        paid = sum(e.available_delta + e.pending_delta for e in account.entries.all())
        key = account.member.role.name if account.member_id else "Company accounts"
        totals[key] = totals.get(key, 0) + paid
    return totals


class World:
    """Two regions, a tiered dealer with a sales rep and an engineer, a pooled installer, some lines."""

    def __init__(self):
        self.program = ProgramFactory(point_value=Decimal("0.0125"), money_currency="EUR")
        north, south = RegionFactory(name="North"), RegionFactory(name="South")
        self.dealer = PartnerFactory(name="Aqua Dealer", region=north)
        self.installer = PartnerFactory(
            name="Pool Installers", region=south, kind=PartnerKind.INSTALLER, payout_policy=PayoutPolicy.POOLED
        )
        gold = TierFactory(program=self.program, name="Gold", multiplier=Decimal("1.20"))
        PartnerTier.objects.create(program=self.program, partner=self.dealer, tier=gold, since=TODAY, held_until=TODAY)
        self.rep = MemberFactory(partner=self.dealer, role=role("sales"))
        self.engineer = MemberFactory(partner=self.dealer, role=role("engineer"))
        self.pool_rep = MemberFactory(partner=self.installer, role=role("sales"))
        self.softener, self.filter = ProductFactory(), ProductFactory()
        self.rule = RuleFactory(
            program=self.program,
            code="softeners",
            name="Softeners",
            cap_points=400,
            shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 30}],
        )
        self.bonus = RuleFactory(program=self.program, code="march", formula="multiplier", value=Decimal(2), priority=5)

    def lines(self):
        sale_line(
            self.program, self.dealer, self.softener, member=self.rep, quantity="7", day=TODAY - timedelta(days=9)
        )
        sale_line(self.program, self.dealer, self.filter, quantity="3", day=TODAY - timedelta(days=8))  # no member
        sale_line(self.program, self.installer, self.softener, member=self.pool_rep, quantity="4")
        sale_line(self.program, self.dealer, self.softener, member=self.rep, quantity="-2")  # a return: left out
        sale_line(self.program, self.dealer, self.softener, member=self.rep, day=TODAY - timedelta(days=60))  # before
        approved_claim(self.program, self.rep, [(self.softener, "6", "600"), (self.filter, "2", "80")],
                       colleagues=[self.engineer])  # fmt: skip
        approved_claim(self.program, self.rep, [(self.softener, "9", "900")], status=ClaimStatus.SUBMITTED)


@pytest.fixture
def world():
    return World()


# Equal to posting ------------------------------------------------------------------------------------------------


def test_the_rules_in_force_simulate_exactly_what_posting_those_lines_pays(world):
    world.lines()
    simulation = rule_simulate(rule=world.rule, start=START, end=END)
    assert not PointsEntry.objects.exists()

    post_everything(world.program)

    assert simulation.current.points == posted() > 0
    assert simulation.current.points == simulation.proposed.points  # the rule replaced by itself
    assert simulation.current.postings == PointsEntry.objects.count()


def test_breakdown_by_role_equals_what_each_kind_of_account_was_paid(world):
    world.lines()
    SaleLine.objects.filter(invoice_date=TODAY - timedelta(days=60)).update(invoice_date=TODAY - timedelta(days=10))
    simulation = rule_simulate(rule=world.rule, start=START, end=END)
    post_everything(world.program)
    assert {row.label: row.current for row in simulation.by_role} == posted_by_holder()


def test_caps_count_from_zero_in_the_period_like_a_fresh_ledger(world):
    for _ in range(3):  # 20 units × 10 × Gold 1.2 = 240; the rep's 60 % share, 144, three times: capped at 400
        sale_line(world.program, world.dealer, world.softener, member=world.rep, quantity="20")
    simulation = rule_simulate(rule=world.rule, start=START, end=END)
    post_everything(world.program)
    assert RuleUsage.objects.get(rule=world.rule, member=world.rep).points == 400
    assert simulation.current.points == posted()


# The scenario with the rule ------------------------------------------------------------------------------------


def test_a_draft_replaces_every_version_of_its_code_and_the_difference_is_costed_in_money():
    program = ProgramFactory(point_value=Decimal("0.0100"), money_currency="EUR")
    v1 = RuleFactory(
        program=program, code="softeners", value=Decimal(10), effective_from=timezone.now() - timedelta(days=400)
    )
    v2 = rule_publish(
        rule=draft_of(v1, value=Decimal(12)),
        actor=ProgramManagerFactory(),
        effective_from=timezone.now() - timedelta(5),
    )
    draft = draft_of(v2, value=Decimal(20))
    member, product = MemberFactory(), ProductFactory()
    sale_line(program, member.partner, product, member=member, quantity="5", day=TODAY - timedelta(days=10))  # v1
    sale_line(program, member.partner, product, member=member, quantity="5", day=TODAY - timedelta(days=1))  # v2

    simulation = rule_simulate(rule=draft, start=START, end=END)

    assert (simulation.current.points, simulation.proposed.points) == (50 + 60, 100 + 100)
    assert simulation.replaced == (1, 2)
    assert (simulation.current_cost, simulation.proposed_cost) == (Decimal("1.10"), Decimal("2.00"))
    assert (simulation.difference, simulation.cost_difference) == (90, Decimal("0.90"))
    assert simulation.currency == "EUR"
    assert (simulation.sale_lines, simulation.claim_lines, simulation.lines) == (2, 0, 2)


def test_a_rule_with_a_new_code_is_added_to_the_rules_in_force():
    program = ProgramFactory()
    RuleFactory(program=program, code="base", value=Decimal(10))
    new = RuleFactory(program=program, code="lines", value=Decimal(1), status=RuleStatus.DRAFT, effective_from=None)
    member, product = MemberFactory(), ProductFactory()
    sale_line(program, member.partner, product, member=member, quantity="5")
    simulation = rule_simulate(rule=new, start=START, end=END)
    assert (simulation.current.points, simulation.proposed.points, simulation.replaced) == (50, 55, ())


def test_who_would_get_the_points_by_role_region_and_partner(world):
    world.lines()
    draft = draft_of(world.rule, value=Decimal(20), cap_points=None)
    simulation = rule_simulate(rule=draft, start=START, end=END)
    roles = {row.label: (row.current, row.proposed) for row in simulation.by_role}
    regions = {row.label: (row.current, row.proposed) for row in simulation.by_region}
    partners = [(row.label, row.current, row.proposed) for row in simulation.top_partners]
    # As published. Dealer (Gold 1.2): the rep's sale of 7 → 84, rep 60 % = 50, no engineer on it, company 34, and
    # the ×2 campaign's 84 to the rep; 3 units with nobody named → 36 + 36 to the company; the claim of 6 + 2 units
    # with the engineer → 72 (rep 43, engineer 21, company 8) and 24 (14, 7, 3), campaign 72 + 24 to the rep.
    # The pooled installer's 4 units → 40 + 40, all to its company account.
    assert {label: current for label, (current, _) in roles.items()} == {
        "Sales rep": 50 + 84 + 43 + 72 + 14 + 24,
        "Engineer / installer": 21 + 7,
        "Company accounts": 34 + 36 + 36 + 8 + 3 + 40 + 40,
    }
    assert {label: current for label, (current, _) in regions.items()} == {"North": 432, "South": 80}
    assert roles["Sales rep"][1] > roles["Sales rep"][0]
    assert [name for name, _, _ in partners] == ["Aqua Dealer", "Pool Installers"]
    assert sum(current for _, current, _ in partners) == simulation.current.points
    # The pooled installer's staff share goes to its company account: no member of it is paid.
    assert world.pool_rep.pk not in simulation.current.members
    assert world.rep.pk in simulation.current.members
    assert simulation.proposed.partners == {world.dealer.pk, world.installer.pk}


def test_top_partners_are_the_twenty_biggest():
    program = ProgramFactory()
    rule = RuleFactory(program=program, value=Decimal(1))
    product = ProductFactory()
    for index in range(21):
        sale_line(program, PartnerFactory(name=f"P{index:02d}"), product, quantity=str(index + 1))
    simulation = rule_simulate(rule=rule, start=START, end=END)
    assert len(simulation.top_partners) == 20
    assert simulation.top_partners[0].label == "P20"
    assert simulation.top_partners[-1].label == "P01"


def test_returns_submitted_claims_and_lines_outside_the_period_are_not_evaluated(world):
    world.lines()
    simulation = rule_simulate(rule=world.rule, start=START, end=END)
    assert (simulation.sale_lines, simulation.claim_lines) == (3, 2)


def test_money_is_points_times_the_point_value_rounded_half_up():
    assert money(125, Decimal("0.0100")) == Decimal("1.25")
    assert money(1, Decimal("0.0050")) == Decimal("0.01")
    assert money(0, Decimal("0.0100")) == Decimal("0.00")


def test_a_rule_paying_on_other_events_gets_a_note():
    program = ProgramFactory()
    rule = RuleFactory(program=program, event="training_passed", formula="fixed", status=RuleStatus.DRAFT)
    simulation = rule_simulate(rule=rule, start=START, end=END)
    assert simulation.proposed.points == 0
    assert "replays sale lines only" in simulation.notes[0]


# Nothing written, few queries -------------------------------------------------------------------------------------


def test_the_simulation_posts_nothing(world):
    world.lines()
    draft = draft_of(world.rule, value=Decimal(50), budget_points=100)
    rule_simulate(rule=draft, start=START, end=END)
    assert not PointsEntry.objects.exists()
    assert not PointsAccount.objects.exists()
    assert not RuleUsage.objects.exists()
    assert list(IncentiveRule.objects.values_list("budget_used", flat=True)) == [0, 0, 0]


def test_a_period_that_ends_before_it_starts_is_refused(world):
    with pytest.raises(ApplicationError, match="ends before it starts"):
        rule_simulate(rule=world.rule, start=END, end=START)
    with pytest.raises(ApplicationError, match="at most"):
        rule_simulate(rule=world.rule, start=date(2020, 1, 1), end=date(2026, 1, 1))


def test_the_default_period_is_the_last_ninety_days():
    assert default_period(date(2026, 3, 31)) == (date(2026, 1, 1), date(2026, 3, 31))


# Queries: program, rules (1 + 5 prefetches), partners, tiers, products, colleagues, members, sale lines, claim lines.
SIMULATION_QUERIES = 14


@pytest.mark.parametrize("copies", [1, 10])
def test_the_number_of_queries_does_not_depend_on_the_number_of_lines(world, django_assert_num_queries, copies):
    for index in range(copies):
        member = MemberFactory(partner=world.dealer, role=role("sales"))
        sale_line(world.program, PartnerFactory(), world.softener, member=None, ext=f"X{index}")
        sale_line(world.program, world.dealer, world.filter, member=member, ext=f"Y{index}")
        approved_claim(world.program, member, [(world.softener, "1", "10")], colleagues=[world.engineer])
    draft = draft_of(world.rule, value=Decimal(20))
    with django_assert_num_queries(SIMULATION_QUERIES):
        simulation = rule_simulate(rule=draft, start=START, end=END)
    assert (simulation.sale_lines, simulation.claim_lines) == (2 * copies, copies)
