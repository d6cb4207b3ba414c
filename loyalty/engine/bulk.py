"""Evaluating many sale lines fast, with exactly what engine.evaluate pays for each (no database).

`RuleIndex` keeps, per kind of event (who acted, partner kind, tier, region, product), the rules that can
match it. `LineEvaluator` gives each sale line its `Share`s (rule, member or partner account, points,
explanation): lines of one kind share their candidate rules, lines of one kind, date range and quantity share
the result, so engine.evaluate runs once per distinct case rather than once per line (lines whose rules look at
the amount are evaluated one by one). The engine stays the one place that decides what a line pays; the
sell-out import (services/sellout) calls this, and services/ledger_bulk.py posts the shares.

Certificates: a rule requiring one (CompiledRule.certified_line_id) is checked in CompiledRule.matches, after the
cached conditions on who and what, so the candidates stay valid. The line evaluator is told the sellers'
certificates as spans (`know_certificates`, fetched by the caller in one query per batch of lines, and only when
`certification_lines` is not empty); the lines a seller holds on a line's day, among those its candidate rules
require, are part of the key its result is remembered by.

Negotiated rules (CompiledRule.partner_ids): when some rule names partners, the partner's id is part of the keys
candidates and plans are remembered by (`RuleIndex.per_partner`), so a rule for one partner never pays another's
lines; without such rules the keys are what they were.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from loyalty.constants import RuleEvent
from loyalty.engine.formulas import ONE
from loyalty.engine.rules import (
    CompiledRule,
    Event,
    Participant,
    Posting,
    base_points,
    certification_lines,
    evaluate,
    negotiated,
    paying_rules,
    sole_beneficiary,
)

_JSON_UNSAFE = set('"\\') | {chr(c) for c in range(32)}


def json_text(value: str) -> str:
    """json.dumps(value) without escaping non-ASCII letters ("×", "é": no backslashes for COPY to escape)."""
    if not _JSON_UNSAFE.intersection(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


# Value objects ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Share:
    """What one rule pays one beneficiary for one line: the member who sold (`to_member`) or the partner's
    company account. `head` and `tail` are the JSON of SaleLine.postings around the member id."""

    rule_id: int
    to_member: bool
    points: int
    explanation: str
    cap_points: int | None = None
    cap_period: str = ""
    budget_points: int | None = None
    head: str = field(default="", compare=False)
    tail: str = field(default="", compare=False)

    @property
    def is_limited(self) -> bool:
        return self.cap_points is not None or self.budget_points is not None


def share_of(posting: Posting) -> Share:
    return make_share(posting.rule_id, posting.member_id is not None, posting.points, posting.explanation,
                      posting.cap_points, posting.cap_period, posting.budget_points)  # fmt: skip


def make_share(rule_id: int, to_member: bool, points: int, explanation: str, cap_points: int | None,
               cap_period: str, budget_points: int | None) -> Share:  # fmt: skip
    return Share(
        rule_id, to_member, points, explanation, cap_points, cap_period, budget_points,
        head=f"[{rule_id},", tail=f",{points},{json_text(explanation)}]",
    )  # fmt: skip


class Figures(NamedTuple):
    """What engine.base_points reads of a line."""

    quantity: Decimal
    amount: Decimal
    unit: str
    tier_name: str
    tier_multiplier: Decimal


# Candidate rules ------------------------------------------------------------------------------------------


class RuleIndex:
    """For each kind of event (who acted, partner kind, tier, region, product): the rules that can match it,
    best first. Dates, minimums and certificates stay per event, in CompiledRule.matches. Removing rules that
    cannot match changes nothing in engine.evaluate (it walks the rules in order and stops only at a matching
    exclusive one), so evaluating with the candidates gives exactly what evaluating with all rules gives."""

    def __init__(self, rules: Sequence[CompiledRule]):
        self.rules = tuple(rules)
        self._cache: dict[tuple, tuple[CompiledRule, ...]] = {}
        # Rules negotiated for named partners match per partner: then the partner is part of every cache key.
        self.per_partner = negotiated(self.rules)

    def candidates(self, event: Event, role: str | None = ...) -> tuple[CompiledRule, ...]:
        """The rules that can match `event`, best first. `role`: the actor's role code, when the caller knows
        it (saves looking the actor up again)."""
        if role is ...:
            actor = event.actor
            role = actor.role_code if actor is not None else None
        key = (
            event.kind,
            event.custom_event,
            role,
            event.partner_kind,
            event.tier_id,
            event.region_id,
            event.product_id,
            event.line_id,
            event.partner_id if self.per_partner else None,
        )
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = tuple(rule for rule in self.rules if rule.matches_facts(event, role))
        return found

    def evaluate(self, event: Event, role: str | None = ...) -> list[Posting]:
        """engine.evaluate(event, all rules), evaluated over the candidates only."""
        candidates = self.candidates(event, role)
        return evaluate(event, candidates) if candidates else []


# Evaluating lines ------------------------------------------------------------------------------------------

_MEMBER = -1  # the member id of the template events: a posting to it is a posting to the line's member


@dataclass(frozen=True, slots=True)
class _Plan:
    """One set of candidate rules, and what their result depends on besides the facts that chose them."""

    number: int
    rules: tuple[CompiledRule, ...]
    bounds: tuple[date, ...]  # days on which a candidate starts or stops being in force
    by_amount: bool  # formulas that read the amount, and minimum amounts, look at it
    certified_lines: frozenset[int]  # the lines candidates require the seller to be certified on
    # Only base rules without shares or minimum amounts: which of them pay does not depend on the amount, so it
    # is remembered and each line only does the arithmetic (engine.base_points).
    simple: bool


class LineEvaluator:
    """engine.evaluate for sale lines, with each distinct case evaluated once (see the module docstring).

    What a line pays depends on its candidate rules (chosen by the kind of line), the tier, the payout
    policy, the seller's role, the date (only as far as it puts candidates in or out of force), the seller's
    certificates valid that day (only those candidates require), the quantity and, for some rules, the amount:
    that is the key results are remembered by."""

    def __init__(self, index: RuleIndex):
        self.index = index
        # The lines some rule requires a certificate for: when empty, nobody's certificates are needed.
        self.certification_lines = certification_lines(index.rules)
        self._kinds: dict[tuple, _Plan | None] = {}
        self._who: dict[tuple, tuple[CompiledRule, ...]] = {}
        self._plans: dict[tuple[int, ...], _Plan] = {}
        self._results: dict[tuple, tuple[Share, ...]] = {}
        self._paying: dict[tuple, tuple] = {}
        self._spans: dict[int, tuple] = {}  # member id: their certificates (selectors.certificates.Span)

    def unknown_members(self, member_ids) -> set[int]:
        """Of `member_ids`, those whose certificates the evaluator was not told yet (none when no rule requires
        a certificate)."""
        if not self.certification_lines:
            return set()
        return {member_id for member_id in member_ids if member_id not in self._spans}

    def know_certificates(self, member_ids, spans: dict[int, tuple]) -> None:
        """Remember the certificates of `member_ids` ({member id: spans}, as selectors.certificates.
        certificate_spans gives them; a member missing from `spans` has none). A seller whose certificates were
        not told is taken as certified on nothing."""
        for member_id in member_ids:
            self._spans[member_id] = tuple(spans.get(member_id, ()))

    def shares(self, partner: tuple, member: tuple | None, product: tuple, day: date, quantity: Decimal,
               amount: Decimal) -> tuple[Share, ...]:  # fmt: skip
        """What a line pays. `partner`: (id, kind, region id, pooled, (tier id, name, multiplier) or None);
        `member`: (id, partner id, status, role code, role name) or None; `product`: (id, line id)."""
        tier = partner[4]
        role = member[3] if member else None
        kind = (partner[1], partner[2], tier, role, product, partner[0] if self.index.per_partner else None)
        plan = self._kinds.get(kind, ...)
        if plan is ...:
            plan = self._kinds[kind] = self._plan(partner, role, product)
        if plan is None:
            return ()
        held = self._held(plan, member, day) if plan.certified_lines else frozenset()
        key = (plan.number, tier, partner[3], role, member[4] if member else None,
               bisect.bisect_right(plan.bounds, day), quantity, held, amount if plan.by_amount else None)  # fmt: skip
        if plan.by_amount:  # amounts hardly repeat: their results are not remembered
            if plan.simple:
                return self._arithmetic(plan, key, partner, member, product, day, quantity, amount, held)
            return self._evaluate(plan, partner, member, product, day, quantity, amount, held)
        found = self._results.get(key)
        if found is None:
            found = self._results[key] = self._evaluate(plan, partner, member, product, day, quantity, amount, held)
        return found

    def _held(self, plan: _Plan, member, day: date) -> frozenset[int]:
        """The lines the plan's rules require that the seller holds a valid certificate for on `day`."""
        if member is None:
            return frozenset()
        among = plan.certified_lines
        return frozenset(
            span[0] for span in self._spans.get(member[0], ()) if span[0] in among and span[1] <= day < span[2]
        )

    def _evaluate(self, plan: _Plan, partner, member, product, day, quantity, amount, held) -> tuple[Share, ...]:
        event = self._event(partner, member, product, day, quantity, amount, held)
        return tuple(share_of(posting) for posting in evaluate(event, plan.rules))

    def _arithmetic(self, plan: _Plan, key: tuple, partner, member, product, day, quantity, amount, held):
        """A simple plan's shares for one amount: the paying rules are remembered without the amount."""
        paying = self._paying.get(key[:-1])
        if paying is None:
            event = self._event(partner, member, product, day, quantity, amount, held)
            paying = self._paying[key[:-1]] = (
                paying_rules(event, plan.rules), *sole_beneficiary(event), event.unit, event.tier_name,
                event.tier_multiplier,
            )  # fmt: skip
        rules, to_member, note, unit, tier_name, tier_multiplier = paying
        figures = Figures(quantity, amount, unit, tier_name, tier_multiplier)
        shares = []
        for rule in rules:
            settled = base_points(rule, figures)
            if settled is not None:
                shares.append(make_share(rule.id, to_member, settled[0], settled[1] + note, rule.cap_points,
                                         rule.cap_period, rule.budget_points))  # fmt: skip
        return tuple(shares)

    @staticmethod
    def _event(partner, member, product, day, quantity, amount, held=frozenset()) -> Event:
        tier = partner[4]
        participants = (
            (Participant(_MEMBER, member[3], member[4], is_actor=True, certified_line_ids=held),) if member else ()
        )
        return Event(
            kind=RuleEvent.SALE_LINE, source_key="", occurred_on=day, partner_id=partner[0], partner_kind=partner[1],
            region_id=partner[2], tier_id=tier[0] if tier else None, tier_name=tier[1] if tier else "",
            tier_multiplier=tier[2] if tier else ONE, pooled=partner[3], participants=participants,
            product_id=product[0], line_id=product[1], quantity=quantity, amount=amount,
        )  # fmt: skip

    def _plan(self, partner: tuple, role: str | None, product: tuple) -> _Plan | None:
        tier = partner[4]
        # The rules that pass the conditions on who (few kinds), then those of them that pass the product's.
        partner_id = partner[0] if self.index.per_partner else 0
        who = (partner[1], partner[2], tier[0] if tier else None, role, partner_id)
        rules = self._who.get(who)
        if rules is None:
            event = Event(kind=RuleEvent.SALE_LINE, source_key="", occurred_on=date.min, partner_id=partner_id,
                          partner_kind=partner[1], region_id=partner[2], tier_id=who[2])  # fmt: skip
            rules = self._who[who] = tuple(rule for rule in self.index.rules if rule.matches_who(event, role))
        rules = tuple(rule for rule in rules if rule.matches_product(product[0], product[1]))
        if not rules:
            return None
        ids = tuple(rule.id for rule in rules)
        plan = self._plans.get(ids)
        if plan is None:
            bounds = set()
            for rule in rules:
                bounds.update(day for day in (rule.effective_from, rule.effective_until, rule.valid_from) if day)
                if rule.valid_until:
                    bounds.add(rule.valid_until + timedelta(days=1))
            plan = self._plans[ids] = _Plan(
                number=len(self._plans),
                rules=rules,
                bounds=tuple(sorted(bounds)),
                by_amount=any(rule.points_formula.reads_amount or rule.min_amount is not None for rule in rules),
                certified_lines=certification_lines(rules),
                simple=all(
                    not rule.points_formula.is_bonus and not rule.shares and rule.min_amount is None for rule in rules
                ),
            )
        return plan
