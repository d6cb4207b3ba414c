"""Simulating an incentive rule over past sales before it is published: the points it would have cost, what
they are worth in money, and who would have got them. Nothing is written.

`rule_simulate(rule=..., start=..., end=...)` replays the program's sale lines of the period (sell-out lines
with a positive quantity; returns are left out) and the lines of its approved sales claims, dated by the
invoice, through the same engine that posts (engine.rules.evaluate over engine.bulk.RuleIndex's candidates, then
engine.limits.limit), twice in one pass:

- **as published**: every published or retired version, each over the dates it was in force — exactly what
  posting those lines through earning.post_event pays (earning.published_rules' rules);
- **with the rule**: the same, except that every version of the rule's code is replaced by `rule` over the
  whole period (a draft has no effective dates yet; a published version is treated the same way). A new code
  is simply added.

Caps and budgets: each scenario starts from an empty engine.limits.MemoryLimiter (nothing used) on the first day
of the period. The question is "what would these lines cost under these rules", not "how much budget is left
today": seeding from RuleUsage / budget_used as of now would count the period's own payments twice (they are
already in those counters). So a cap or budget is applied as if the period were the rule's whole life; the
page says so.

Partners' tiers are today's (as the sell-out import and claim approval use the tier of the day they post).
A rule requiring a certificate pays a seller certified on its line on the sale's date: the certificates of every
member of the period that are valid on some day of it are fetched in one query, only when a scenario has such a
rule. Facts are gathered in bulk — partners (with their region), tiers, members (with their role), products, the
claims' colleagues and those certificates, one query each — and the lines are streamed, so the number of queries
does not depend on the number of lines (pinned in tests/loyalty/test_simulation.py).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import ClaimStatus, RuleEvent, RuleStatus
from loyalty.engine.bulk import RuleIndex
from loyalty.engine.facts import partner_tiers, sale_event, with_certificates
from loyalty.engine.limits import MemoryLimiter, limit
from loyalty.engine.rules import CompiledRule, Event, certification_lines, compile_rules
from loyalty.error_codes import ErrorCode
from loyalty.models import ClaimLine, IncentiveRule, Product, Program, SaleLine, SalesClaim
from loyalty.selectors.certificates import Span, certificate_spans, held_on
from loyalty.selectors.negotiated import named_partner_ids
from partners.models import Member, Partner

DEFAULT_DAYS = 90
TOP_PARTNERS = 20
MAX_DAYS = 3 * 366
COMPANY_ACCOUNTS = "Company accounts"
CENT = Decimal("0.01")
RULE_PREFETCH = ("roles", "tiers", "regions", "product_lines", "products")
STREAM_CHUNK = 5000


def default_period(today: date | None = None) -> tuple[date, date]:
    """The last DEFAULT_DAYS days, today included."""
    today = today or timezone.localdate()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def money(points: int, point_value: Decimal) -> Decimal:
    """What `points` are worth, rounded half up to the cent."""
    return (Decimal(points) * point_value).quantize(CENT, rounding=ROUND_HALF_UP)


# Results ------------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one set of rules pays over the period."""

    points: int = 0
    postings: int = 0
    by_role: Counter = field(default_factory=Counter)
    by_partner: Counter = field(default_factory=Counter)
    by_region: Counter = field(default_factory=Counter)
    members: set = field(default_factory=set)
    partners: set = field(default_factory=set)


@dataclass(frozen=True)
class Row:
    """One line of a comparison table: as published, with the rule, and the difference."""

    label: str
    current: int
    proposed: int
    current_cost: Decimal
    proposed_cost: Decimal

    @property
    def difference(self) -> int:
        return self.proposed - self.current

    @property
    def cost_difference(self) -> Decimal:
        return self.proposed_cost - self.current_cost


@dataclass(frozen=True)
class Simulation:
    rule: IncentiveRule
    program: Program
    start: date
    end: date
    sale_lines: int
    claim_lines: int
    current: Outcome
    proposed: Outcome
    replaced: tuple[int, ...]  # the versions of the rule's code the scenario leaves out
    by_role: tuple[Row, ...]
    by_region: tuple[Row, ...]
    top_partners: tuple[Row, ...]
    notes: tuple[str, ...]

    @property
    def lines(self) -> int:
        return self.sale_lines + self.claim_lines

    @property
    def currency(self) -> str:
        return self.program.money_currency

    @property
    def current_cost(self) -> Decimal:
        return money(self.current.points, self.program.point_value)

    @property
    def proposed_cost(self) -> Decimal:
        return money(self.proposed.points, self.program.point_value)

    @property
    def difference(self) -> int:
        return self.proposed.points - self.current.points

    @property
    def cost_difference(self) -> Decimal:
        return self.proposed_cost - self.current_cost


# The facts ----------------------------------------------------------------------------------------------------


@dataclass
class _Facts:
    program: Program
    partners: dict[int, Partner]
    tiers: dict
    products: dict[int, Product]
    members: dict[int, Member]
    colleagues: dict[int, list[Member]]
    # The members' certificates for the lines the scenarios' rules require (None: no rule requires one).
    certificates: dict[int, tuple[Span, ...]] | None = None

    def sale_event(
        self, source_key: str, partner_id: int, product_id: int, quantity, amount, day: date, actor, colleagues=()
    ) -> Event:
        """engine.facts.sale_event of one line, from the gathered facts (no query)."""
        event = sale_event(
            program=self.program,
            source_key=source_key,
            partner=self.partners[partner_id],
            product=self.products[product_id],
            quantity=quantity,
            amount=amount,
            occurred_on=day,
            actor=actor,
            colleagues=colleagues,
            tier=self.tiers.get(partner_id),
        )
        if self.certificates is None:
            return event
        people = [person.member_id for person in event.participants]
        return with_certificates(event, held_on(self.certificates, people, day))


def _period_lines(program: Program, start: date, end: date):
    sale_lines = SaleLine.objects.filter(
        source__program=program, invoice_date__gte=start, invoice_date__lte=end, quantity__gt=0
    )
    claims = SalesClaim.objects.filter(
        program=program, status=ClaimStatus.APPROVED, invoice_date__gte=start, invoice_date__lte=end
    )
    claim_lines = ClaimLine.objects.filter(claim__in=claims)
    return sale_lines, claims, claim_lines


def _facts(program: Program, sale_lines, claims, claim_lines) -> _Facts:
    """Everything the events need, one query per kind of fact whatever the number of lines."""
    partners = {
        partner.pk: partner
        for partner in Partner.objects.filter(
            Q(pk__in=sale_lines.values("partner_id")) | Q(pk__in=claims.values("partner_id"))
        )
        .select_related("region")
        .only("pk", "name", "kind", "payout_policy", "region__name")
    }
    tiers = partner_tiers(program, partners) if partners else {}
    products = {
        product.pk: product
        for product in Product.objects.filter(
            Q(pk__in=sale_lines.values("product_id")) | Q(pk__in=claim_lines.values("product_id"))
        ).only("pk", "line_id")
    }
    through = SalesClaim.colleagues.through
    pairs = list(
        through.objects.filter(salesclaim__in=claims)
        .order_by("salesclaim_id", "member_id")
        .values_list("salesclaim_id", "member_id")
    )
    members = {
        member.pk: member
        for member in Member.objects.filter(
            Q(pk__in=sale_lines.filter(member__isnull=False).values("member_id"))
            | Q(pk__in=claims.values("member_id"))
            | Q(pk__in=[member_id for _, member_id in pairs])
        )
        .select_related("role")
        .only("pk", "partner_id", "role__code", "role__name")
    }
    colleagues: dict[int, list[Member]] = defaultdict(list)
    for claim_id, member_id in pairs:
        colleagues[claim_id].append(members[member_id])
    return _Facts(program, partners, tiers, products, members, colleagues)


def _sale_line_events(facts: _Facts, sale_lines) -> Iterator[tuple[tuple, Event]]:
    rows = (
        sale_lines.order_by("invoice_date", "pk")
        .values_list("pk", "source_id", "external_id", "partner_id", "member_id", "product_id", "quantity", "amount",
                     "invoice_date")
        .iterator(chunk_size=STREAM_CHUNK)
    )  # fmt: skip
    for pk, source_id, external_id, partner_id, member_id, product_id, quantity, amount, day in rows:
        actor = facts.members.get(member_id) if member_id else None
        event = facts.sale_event(
            f"sale:{source_id}:{external_id}", partner_id, product_id, quantity, amount, day, actor
        )
        yield (day, 0, pk), event


def _claim_line_events(facts: _Facts, claim_lines) -> Iterator[tuple[tuple, Event]]:
    rows = (
        claim_lines.order_by("claim__invoice_date", "claim_id", "pk")
        .values_list("pk", "claim_id", "claim__partner_id", "claim__member_id", "product_id", "quantity", "amount",
                     "claim__invoice_date")
        .iterator(chunk_size=STREAM_CHUNK)
    )  # fmt: skip
    for pk, claim_id, partner_id, member_id, product_id, quantity, amount, day in rows:
        event = facts.sale_event(f"claim:{claim_id}:{pk}", partner_id, product_id, quantity, amount, day,
                                 facts.members[member_id], facts.colleagues.get(claim_id, []))  # fmt: skip
        yield (day, 1, claim_id, pk), event


# The rules ----------------------------------------------------------------------------------------------------


def _scenarios(rule: IncentiveRule) -> tuple[tuple[CompiledRule, ...], tuple[CompiledRule, ...], tuple[int, ...]]:
    """(rules as published, rules with `rule` in place of every version of its code, the versions replaced)."""
    rows = list(
        IncentiveRule.objects.filter(
            Q(program_id=rule.program_id, status__in=[RuleStatus.PUBLISHED, RuleStatus.RETIRED]) | Q(pk=rule.pk)
        )
        .select_related("requires_certification")
        .prefetch_related(*RULE_PREFETCH)
        .annotate(named_partner_ids=named_partner_ids())
    )
    published = [row for row in rows if row.status in (RuleStatus.PUBLISHED, RuleStatus.RETIRED)]
    current = compile_rules(published)
    [candidate] = compile_rules([row for row in rows if row.pk == rule.pk])
    candidate = replace(candidate, effective_from=None, effective_until=None)
    others = [compiled for compiled in current if compiled.code != rule.code]
    replaced = tuple(sorted(row.version for row in published if row.code == rule.code))
    proposed = tuple(sorted([*others, candidate], key=lambda r: (-r.priority, r.code, -r.version)))
    return current, proposed, replaced


# Running ------------------------------------------------------------------------------------------------------


class _Tally:
    """Pays one scenario's postings through engine.limits.limit and adds them up."""

    def __init__(self, rules: tuple[CompiledRule, ...], members: dict[int, Member], partners: dict[int, Partner]):
        self.index = RuleIndex(rules)
        self.limiter = MemoryLimiter()
        self.outcome = Outcome()
        self.members, self.partners = members, partners

    def add(self, event: Event) -> None:
        outcome = self.outcome
        for posting in self.index.evaluate(event):
            paid = limit(posting, event.occurred_on, self.limiter)
            if paid <= 0:
                continue
            outcome.points += paid
            outcome.postings += 1
            partner = self.partners[posting.partner_id]
            outcome.by_partner[posting.partner_id] += paid
            outcome.by_region[partner.region.name] += paid
            outcome.partners.add(posting.partner_id)
            if posting.member_id is None:
                outcome.by_role[COMPANY_ACCOUNTS] += paid
            else:
                outcome.by_role[self.members[posting.member_id].role.name] += paid
                outcome.members.add(posting.member_id)


def _rows(current: Counter, proposed: Counter, point_value: Decimal, labels=None, limit_to=None) -> tuple[Row, ...]:
    keys = set(current) | set(proposed)
    ordered = sorted(keys, key=lambda key: (-max(current[key], proposed[key]), str((labels or {}).get(key, key))))
    if limit_to is not None:
        ordered = ordered[:limit_to]
    return tuple(
        Row(
            label=str((labels or {}).get(key, key)),
            current=current[key],
            proposed=proposed[key],
            current_cost=money(current[key], point_value),
            proposed_cost=money(proposed[key], point_value),
        )
        for key in ordered
    )


def rule_simulate(*, rule: IncentiveRule, start: date, end: date) -> Simulation:
    """What the program's lines dated `start`..`end` (both included) would have paid with `rule` in place of the
    versions of its code, next to what the rules as published pay for them. Posts nothing."""
    if end < start:
        raise ApplicationError("The period ends before it starts.", code=ErrorCode.PERIOD)
    if (end - start).days >= MAX_DAYS:
        raise ApplicationError(f"Simulate at most {MAX_DAYS} days at a time.", code=ErrorCode.PERIOD)
    program = Program.objects.get(pk=rule.program_id)
    current_rules, proposed_rules, replaced = _scenarios(rule)

    sale_lines, claims, claim_lines = _period_lines(program, start, end)
    facts = _facts(program, sale_lines, claims, claim_lines)
    lines = certification_lines(current_rules) | certification_lines(proposed_rules)
    if lines:
        facts.certificates = certificate_spans(member_ids=facts.members, line_ids=lines, start=start, end=end)
    current = _Tally(current_rules, facts.members, facts.partners)
    proposed = _Tally(proposed_rules, facts.members, facts.partners)
    counted = Counter()
    for order, event in heapq.merge(_sale_line_events(facts, sale_lines), _claim_line_events(facts, claim_lines)):
        counted[order[1]] += 1
        current.add(event)
        proposed.add(event)

    notes = []
    if rule.event != RuleEvent.SALE_LINE:
        notes.append(
            f"This rule pays on “{rule.get_event_display()}” events; the simulation replays sale lines only, so it "
            "cannot show what the rule would cost."
        )
    if rule.cap_points is not None or rule.budget_points is not None:
        notes.append(
            "Caps and budgets are counted from zero at the start of the period, as if the period were the rule's "
            "whole life; what was already paid before it is not taken into account."
        )
    point_value = program.point_value
    names = {pk: partner.name for pk, partner in facts.partners.items()}
    return Simulation(
        rule=rule,
        program=program,
        start=start,
        end=end,
        sale_lines=counted[0],
        claim_lines=counted[1],
        current=current.outcome,
        proposed=proposed.outcome,
        replaced=replaced,
        by_role=_rows(current.outcome.by_role, proposed.outcome.by_role, point_value),
        by_region=_rows(current.outcome.by_region, proposed.outcome.by_region, point_value),
        top_partners=_rows(
            current.outcome.by_partner, proposed.outcome.by_partner, point_value, labels=names, limit_to=TOP_PARTNERS
        ),
        notes=tuple(notes),
    )
