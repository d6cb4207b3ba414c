"""The rule engine: a pure function from (event, compiled rules) to postings that explain themselves.

Nothing here touches the database (but `compile_rules`, for the names of the product lines rules require a
certificate for, when they were not selected with the rows). `compile_rules` turns IncentiveRule rows into frozen
value objects once per program, so evaluating millions of sale lines is plain Python over sets. What each rule's
formula pays is its engine.formulas class, looked up once per compiled rule. Caps and budgets need state, so they
are applied afterwards, by engine.limits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from enum import StrEnum

from loyalty.constants import CapPeriod
from loyalty.engine.formulas import HUNDRED, ONE, ZERO, PointsFormula, formula_for, number_text


@dataclass(frozen=True, slots=True)
class Participant:
    member_id: int
    role_code: str
    role_name: str
    is_actor: bool = False
    # The product lines the person holds a valid certificate for on the event's day (engine.facts fills them when
    # a rule requires a certification; empty otherwise).
    certified_line_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Event:
    """What happened, with every fact the conditions look at (gathered once, by the caller)."""

    kind: str
    source_key: str  # unique per source line; postings derive their idempotency keys from it
    occurred_on: date
    partner_id: int
    partner_kind: str
    region_id: int
    tier_id: int | None = None
    tier_name: str = ""
    tier_multiplier: Decimal = ONE
    pooled: bool = False
    participants: tuple[Participant, ...] = ()
    product_id: int | None = None
    line_id: int | None = None
    quantity: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    custom_event: str = ""
    unit: str = "units"
    # What the event is about, named for people in the explanation (a survey's title); "" for a sale line.
    subject: str = ""
    # Whether the participants' certified lines were looked up (engine.facts.certify does it at most once).
    certificates_known: bool = False

    @property
    def actor(self) -> Participant | None:
        return next((p for p in self.participants if p.is_actor), None)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: int
    code: str
    version: int
    name: str
    event: str
    formula: str
    value: Decimal
    custom_event: str = ""
    roles: frozenset[str] = frozenset()
    partner_kinds: frozenset[str] = frozenset()
    tier_ids: frozenset[int] = frozenset()
    region_ids: frozenset[int] = frozenset()
    line_ids: frozenset[int] = frozenset()
    product_ids: frozenset[int] = frozenset()
    min_quantity: Decimal | None = None
    min_amount: Decimal | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    effective_from: date | None = None
    effective_until: date | None = None
    apply_tier_multiplier: bool = True
    priority: int = 100
    exclusive: bool = False
    shares: tuple[tuple[str, Decimal], ...] = ()
    cap_points: int | None = None
    cap_period: str = CapPeriod.MONTH
    budget_points: int | None = None
    # Pays only when the person who acted holds a valid certificate for this product line on the event's day.
    certified_line_id: int | None = None
    certified_line_name: str = ""
    # Negotiated conditions: pays only at these partners (empty: at every partner).
    partner_ids: frozenset[int] = frozenset()
    # The class of `formula`, looked up once here rather than for each event.
    points_formula: PointsFormula = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "points_formula", formula_for(self.formula))

    def matches_facts(self, event: Event, role: str | None) -> bool:
        """The conditions on who and what (event, role of the person acting, partner, product), not on when or
        how much: the same for every line of one kind, so bulk evaluation can cache it."""
        return self.matches_who(event, role) and self.matches_product(event.product_id, event.line_id)

    def matches_who(self, event: Event, role: str | None) -> bool:
        """The conditions on the kind of event and on who acted: role, partner kind, tier, the partners a negotiated
        rule names, region."""
        if self.event != event.kind or (self.custom_event and self.custom_event != event.custom_event):
            return False
        if self.roles and role not in self.roles:
            return False
        if self.partner_kinds and event.partner_kind not in self.partner_kinds:
            return False
        if self.tier_ids and event.tier_id not in self.tier_ids:
            return False
        if self.partner_ids and event.partner_id not in self.partner_ids:
            return False
        return not (self.region_ids and event.region_id not in self.region_ids)

    def matches_product(self, product_id: int | None, line_id: int | None) -> bool:
        """The conditions on what was sold: product and product line."""
        if self.product_ids and product_id not in self.product_ids:
            return False
        return not (self.line_ids and line_id not in self.line_ids)

    def matches_when(self, event: Event) -> bool:
        """The conditions on when and how much: the version's effective dates, the date window, the minimums."""
        day = event.occurred_on
        if self.effective_from and day < self.effective_from or self.effective_until and day >= self.effective_until:
            return False
        if self.valid_from and day < self.valid_from or self.valid_until and day > self.valid_until:
            return False
        if self.min_quantity is not None and event.quantity < self.min_quantity:
            return False
        return self.min_amount is None or event.amount >= self.min_amount

    def matches_certification(self, actor: Participant | None) -> bool:
        """The person who acted holds the certificate the rule requires (on the event's day: their
        `certified_line_ids` are those of that day). Not part of matches_facts, so bulk caches stay valid."""
        return self.certified_line_id is None or (
            actor is not None and self.certified_line_id in actor.certified_line_ids
        )

    def matches(self, event: Event) -> bool:
        actor = event.actor
        if not self.matches_facts(event, actor.role_code if actor is not None else None):
            return False
        return self.matches_when(event) and self.matches_certification(actor)


@dataclass(frozen=True, slots=True)
class Posting:
    """Points one beneficiary gets from one rule version for one event, and why."""

    rule_id: int
    rule_code: str
    rule_version: int
    partner_id: int
    member_id: int | None  # None: the partner's company account
    points: int
    explanation: str
    details: dict = field(default_factory=dict, compare=False, hash=False)
    cap_points: int | None = None
    cap_period: str = CapPeriod.MONTH
    budget_points: int | None = None

    @property
    def beneficiary_key(self) -> str:
        return f"m{self.member_id}" if self.member_id is not None else f"p{self.partner_id}"


def compile_rules(rules: Iterable) -> tuple[CompiledRule, ...]:
    """Freeze IncentiveRule rows (with roles, tiers, regions, lines and products prefetched), best first. The names
    of the lines rules require a certificate for are read from `requires_certification` when it was selected,
    else in one query (none when no rule requires a certificate)."""
    rules = list(rules)
    line_names = _certification_line_names(rules)
    named = _named_partner_ids(rules)
    compiled = []
    for rule in rules:
        compiled.append(
            CompiledRule(
                id=rule.pk,
                code=rule.code,
                version=rule.version,
                name=rule.name,
                event=rule.event,
                custom_event=rule.custom_event,
                formula=rule.formula,
                value=Decimal(rule.value),
                roles=frozenset(role.code for role in rule.roles.all()),
                partner_kinds=frozenset(rule.partner_kinds),
                tier_ids=frozenset(tier.pk for tier in rule.tiers.all()),
                region_ids=frozenset(region.pk for region in rule.regions.all()),
                line_ids=frozenset(line.pk for line in rule.product_lines.all()),
                product_ids=frozenset(product.pk for product in rule.products.all()),
                min_quantity=rule.min_quantity,
                min_amount=rule.min_amount,
                valid_from=rule.valid_from,
                valid_until=rule.valid_until,
                effective_from=_day(rule.effective_from),
                effective_until=_day(rule.effective_until),
                apply_tier_multiplier=rule.apply_tier_multiplier,
                priority=rule.priority,
                exclusive=rule.exclusive,
                shares=tuple((share["role"], Decimal(str(share["percent"]))) for share in rule.shares or ()),
                cap_points=rule.cap_points,
                cap_period=rule.cap_period,
                budget_points=rule.budget_points,
                certified_line_id=rule.requires_certification_id,
                certified_line_name=line_names.get(rule.requires_certification_id, ""),
                partner_ids=named.get(rule.pk, frozenset()),
            )
        )
    return tuple(sorted(compiled, key=lambda r: (-r.priority, r.code, -r.version)))


def _certification_line_names(rules: list) -> dict[int, str]:
    """{line id: name} of the lines `rules` require a certificate for."""
    names, missing = {}, set()
    for rule in rules:
        line_id = rule.requires_certification_id
        if line_id is None:
            continue
        if type(rule).requires_certification.is_cached(rule):
            names[line_id] = rule.requires_certification.name
        else:
            missing.add(line_id)
    missing -= names.keys()
    if missing:
        from loyalty.models import ProductLine  # the only query of the engine, and only for such rules

        names.update(ProductLine.objects.filter(pk__in=missing).values_list("pk", "name"))
    return names


def _named_partner_ids(rules: list) -> dict[int, frozenset[int]]:
    """{rule id: the partners a negotiated rule names}: from the `named_partner_ids` annotation (selectors.
    negotiated.named_partner_ids: no query), else from `named_partners` when it was prefetched, else in one query
    for all the rules (never one per rule)."""
    named, missing = {}, []
    for rule in rules:
        cache = getattr(rule, "_prefetched_objects_cache", {})
        if hasattr(rule, "named_partner_ids"):
            named[rule.pk] = frozenset(rule.named_partner_ids or ())
        elif "named_partners" in cache:
            named[rule.pk] = frozenset(partner.pk for partner in cache["named_partners"])
        else:
            missing.append(rule.pk)
    if missing:
        from loyalty.models import IncentiveRule

        through = IncentiveRule.named_partners.through
        for rule_id, partner_id in through.objects.filter(incentiverule_id__in=missing).values_list(
            "incentiverule_id", "partner_id"
        ):
            named[rule_id] = named.get(rule_id, frozenset()) | {partner_id}
    return named


def negotiated(rules: Iterable[CompiledRule]) -> bool:
    """Whether some of `rules` pay only at the partners they name (then a bulk cache must key on the partner)."""
    return any(rule.partner_ids for rule in rules)


def certification_lines(rules: Iterable[CompiledRule]) -> frozenset[int]:
    """The product lines `rules` require a certificate for (empty: nobody's certificates need looking up)."""
    return frozenset(rule.certified_line_id for rule in rules if rule.certified_line_id is not None)


def _day(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None


def evaluate(event: Event, rules: tuple[CompiledRule, ...]) -> list[Posting]:
    """The postings `rules` pay for `event`, before caps and budgets. Pure and deterministic."""
    paying = paying_rules(event, rules)
    raw: list[tuple[CompiledRule, Decimal, str]] = [
        (rule, *rule.points_formula.points(rule.value, event, ZERO))
        for rule in paying
        if not rule.points_formula.is_bonus
    ]
    base_total = sum((points for _, points, _ in raw), ZERO)
    if base_total:  # bonuses top up what the base rules paid, after all of them
        for rule in paying:
            if rule.points_formula.is_bonus:
                raw.append((rule, *rule.points_formula.points(rule.value, event, base_total)))

    postings: list[Posting] = []
    for rule, points, arithmetic in raw:
        settled = settle(rule, event, points, arithmetic, about=event.subject)
        if settled is not None:
            postings.extend(_split(rule, event, *settled))
    return postings


def paying_rules(event: Event, rules: tuple[CompiledRule, ...]) -> list[CompiledRule]:
    """The rules that pay for `event`, best first, up to the first exclusive one."""
    paying: list[CompiledRule] = []
    for rule in rules:  # best first
        if rule.matches(event):
            paying.append(rule)
            if rule.exclusive:
                break
    return paying


def base_points(rule: CompiledRule, event) -> tuple[int, str] | None:
    """A base rule's points for an event and why ("4 units × 10 pts × Gold 1.1 = 44"), or None when nothing.
    `event` needs only quantity, amount, unit, tier_name and tier_multiplier."""
    return settle(rule, event, *rule.points_formula.points(rule.value, event, ZERO))


def settle(rule: CompiledRule, event, points: Decimal, arithmetic: str, about: str = "") -> tuple[int, str] | None:
    """The tier multiplier on top of a rule's raw points, rounded half up: (total, explanation) or None. `about`:
    what the event is about, named after the rule ("Survey points v1, survey “NPS”: …")."""
    if rule.apply_tier_multiplier and event.tier_multiplier != ONE:
        points *= event.tier_multiplier
        arithmetic += f" × {event.tier_name} {number_text(event.tier_multiplier)}"
    total = int(points.quantize(ONE, rounding=ROUND_HALF_UP))
    if total <= 0:
        return None
    about = f", {about}" if about else ""
    certified = f" (certified on {rule.certified_line_name})" if rule.certified_line_id is not None else ""
    return total, f"{rule.name} v{rule.version}{about}: {arithmetic} = {total}{certified}"


def sole_beneficiary(event: Event) -> tuple[bool, str]:
    """Who a rule without shares pays: (to the acting member?, note). Nobody acting, or a pooled partner: the
    company account (noted when a member's points were pooled)."""
    actor = event.actor
    if actor is None:
        return False, ""
    if event.pooled:
        return False, " (pooled to the company account)"
    return True, ""


def _split(rule: CompiledRule, event: Event, total: int, explanation: str) -> list[Posting]:
    """Shares per role (divided equally among the people in that role); the rest to the partner account.
    A partner whose management chose pooling gets the members' shares in its company account."""
    common = {
        "rule_id": rule.id,
        "rule_code": rule.code,
        "rule_version": rule.version,
        "partner_id": event.partner_id,
        "cap_points": rule.cap_points,
        "cap_period": rule.cap_period,
        "budget_points": rule.budget_points,
    }
    details = {
        "rule_id": rule.id,
        "rule": rule.code,
        "version": rule.version,
        "total": total,
        "source": event.source_key,
    }
    if event.line_id is not None:  # the product line the points were paid for (analytics sums points by line)
        details["product_line_id"] = event.line_id
    if not rule.shares:
        to_member, note = sole_beneficiary(event)
        member_id = event.actor.member_id if to_member else None
        return [Posting(member_id=member_id, points=total, explanation=explanation + note, details=details, **common)]

    postings, paid = [], 0
    for role_code, percent in rule.shares:
        people = [p for p in event.participants if p.role_code == role_code]
        if not people:
            continue
        each = int((Decimal(total) * percent / HUNDRED / len(people)).quantize(ONE, rounding=ROUND_DOWN))
        if each <= 0:
            continue
        for person in people:
            text = f"{explanation}; {person.role_name} share {number_text(percent)}%"
            if len(people) > 1:
                text += f" ÷ {len(people)}"
            text += f" = {each}"
            member_id = None if event.pooled else person.member_id
            if event.pooled:
                text += " (pooled to the company account)"
            postings.append(Posting(member_id=member_id, points=each, explanation=text, details=details, **common))
            paid += each
    if total - paid > 0:
        postings.append(
            Posting(
                member_id=None,
                points=total - paid,
                explanation=f"{explanation}; company share = {total - paid}",
                details=details,
                **common,
            )
        )
    return _merge(postings)


def _merge(postings: list[Posting]) -> list[Posting]:
    """One posting per beneficiary (a pooled partner receives several shares in one entry)."""
    merged: dict[str, Posting] = {}
    for posting in postings:
        key = posting.beneficiary_key
        if key in merged:
            first = merged[key]
            merged[key] = Posting(
                rule_id=first.rule_id,
                rule_code=first.rule_code,
                rule_version=first.rule_version,
                partner_id=first.partner_id,
                member_id=first.member_id,
                points=first.points + posting.points,
                explanation=f"{first.explanation} + {posting.points}",
                details=first.details,
                cap_points=first.cap_points,
                cap_period=first.cap_period,
                budget_points=first.budget_points,
            )
        else:
            merged[key] = posting
    return list(merged.values())


class Unpaid(StrEnum):
    """Why an event paid a person (or anyone) nothing, as far as the rules tell (caps and budgets are applied
    later, by the ledger, and show as paid postings that were limited)."""

    NO_RULE = "no_rule"  # no rule pays for this kind of event at all
    NO_RULE_FOR_PRODUCT = "no_rule_for_product"
    NO_RULE_FOR_ROLE = "no_rule_for_role"  # rules pay for the product, but not for the acting person's role
    NOT_FOR_PARTNER = "not_for_partner"  # the partner's kind, tier or region is not among the rules', or the
    # rules are negotiated for named partners only and this partner is not one of them
    CONDITIONS = "conditions"  # the product's rules did not apply on that date, or below their minimums
    NO_SHARE_FOR_ROLE = "no_share_for_role"  # the rules pay, but share nothing with this person's role
    POOLED = "pooled"  # the person's share went to the company account, as the partner chose
    NOT_CERTIFIED = "not_certified"  # a rule would pay, but only a person certified on its line, and they were not


def why_unpaid(event: Event, rules: tuple[CompiledRule, ...], member_id: int | None = None) -> Unpaid | None:
    """Why `evaluate` pays nothing for `event` (member_id None), or nothing to that member; None if it pays."""
    postings = evaluate(event, rules)
    if member_id is not None and postings:
        if any(posting.member_id == member_id for posting in postings):
            return None
        return Unpaid.POOLED if event.pooled else Unpaid.NO_SHARE_FOR_ROLE
    if postings:
        return None
    for_event = [
        r for r in rules if r.event == event.kind and (not r.custom_event or r.custom_event == event.custom_event)
    ]
    for_product = [r for r in for_event if r.matches_product(event.product_id, event.line_id)]
    actor = event.actor
    role = actor.role_code if actor is not None else None
    if not for_event:
        return Unpaid.NO_RULE
    if not for_product:
        return Unpaid.NO_RULE_FOR_PRODUCT
    if not any(not r.roles or role in r.roles for r in for_product):
        return Unpaid.NO_RULE_FOR_ROLE
    for_who = [r for r in for_product if r.matches_who(event, role)]
    if not for_who:
        return Unpaid.NOT_FOR_PARTNER
    if any(r.matches_when(event) and not r.matches_certification(actor) for r in for_who):
        return Unpaid.NOT_CERTIFIED
    return Unpaid.CONDITIONS
