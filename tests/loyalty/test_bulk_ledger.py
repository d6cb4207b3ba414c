import json
import random
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from loyalty.constants import Formula
from loyalty.engine.bulk import LineEvaluator, RuleIndex, json_text, share_of
from loyalty.engine.rules import CompiledRule, Event, Participant, evaluate
from loyalty.services.ledger_bulk import Return, copy_text, proportional

DAY = date.today() - timedelta(days=3)


# The candidate index: exactly engine.evaluate ---------------------------------------------------------------


def random_rules(rng: random.Random) -> tuple[CompiledRule, ...]:
    rules = []
    for n in range(40):
        formula = rng.choice(
            [Formula.PER_UNIT, Formula.PER_AMOUNT, Formula.FIXED, Formula.MULTIPLIER, Formula.PERCENT_BONUS]
        )
        start = DAY - timedelta(days=rng.randint(0, 60))
        rules.append(
            CompiledRule(
                id=n + 1,
                code=f"r{n}",
                version=1,
                name=f"Rule {n}",
                event=rng.choice(["sale_line", "sale_line", "sale_line", "training_passed"]),
                formula=formula,
                value=Decimal(rng.choice(["0.5", "1", "3", "10", "1.5", "20"])),
                roles=frozenset(rng.sample(["sales", "engineer", "owner"], rng.randint(0, 2))),
                partner_kinds=frozenset(rng.sample(["dealer", "installer"], rng.randint(0, 1))),
                tier_ids=frozenset(rng.sample([1, 2, 3], rng.randint(0, 2))),
                region_ids=frozenset(rng.sample([1, 2, 3, 4], rng.randint(0, 2))),
                line_ids=frozenset(rng.sample([1, 2, 3], rng.randint(0, 1))),
                product_ids=frozenset(rng.sample(range(1, 11), rng.randint(0, 2))),
                min_quantity=rng.choice([None, Decimal(2)]),
                min_amount=rng.choice([None, Decimal(100)]),
                valid_from=rng.choice([None, start]),
                valid_until=rng.choice([None, start + timedelta(days=30)]),
                priority=rng.randint(1, 300),
                exclusive=rng.random() < 0.1,
                shares=rng.choice([(), (("sales", Decimal(60)), ("engineer", Decimal(30)))]),
            )
        )
    return tuple(sorted(rules, key=lambda r: (-r.priority, r.code, -r.version)))


def random_event(rng: random.Random, n: int) -> Event:
    people = []
    if rng.random() < 0.8:
        people.append(Participant(rng.randint(1, 50), rng.choice(["sales", "engineer", "owner"]), "x", is_actor=True))
    if rng.random() < 0.2:
        people.append(Participant(rng.randint(51, 99), rng.choice(["sales", "engineer"]), "y"))
    product = rng.randint(1, 10)
    return Event(
        kind=rng.choice(["sale_line", "sale_line", "training_passed"]),
        source_key=f"sale:1:{n}",
        occurred_on=DAY - timedelta(days=rng.randint(0, 90)),
        partner_id=rng.randint(1, 5),
        partner_kind=rng.choice(["dealer", "installer", "distributor"]),
        region_id=rng.randint(1, 4),
        tier_id=rng.choice([None, 1, 2, 3]),
        tier_name="Gold",
        tier_multiplier=rng.choice([Decimal(1), Decimal("1.2")]),
        pooled=rng.random() < 0.2,
        participants=tuple(people),
        product_id=product,
        line_id=product % 3 + 1,
        quantity=Decimal(rng.randint(1, 12)),
        amount=Decimal(rng.randint(1, 50000)) / 100,
    )


def test_evaluating_over_the_candidate_rules_gives_exactly_what_evaluating_all_rules_gives():
    rng = random.Random(11)
    for _ in range(5):
        rules = random_rules(rng)
        index = RuleIndex(rules)
        for n in range(400):
            event = random_event(rng, n)
            assert index.evaluate(event) == evaluate(event, rules)
            assert [p.explanation for p in index.evaluate(event)] == [p.explanation for p in evaluate(event, rules)]


# The line evaluator: exactly engine.evaluate, remembered -------------------------------------------------


def _check_line_evaluator(rng: random.Random, rules: tuple[CompiledRule, ...], lines: int) -> None:
    evaluator = LineEvaluator(RuleIndex(rules))
    for n in range(lines):
        event = random_event(rng, n)
        actor = event.actor
        event = replace(
            event,
            kind="sale_line",
            participants=(actor,) if actor else (),
            quantity=Decimal(rng.choice([1, 2, 3, 5])),
            amount=Decimal(rng.choice([50, 99, 100, 250])) if rng.random() < 0.7 else event.amount,
        )
        if event.tier_id is None:  # a partner without a tier has no multiplier
            event = replace(event, tier_name="", tier_multiplier=Decimal(1))
        tier = (event.tier_id, event.tier_name, event.tier_multiplier) if event.tier_id else None
        shares = evaluator.shares(
            (event.partner_id, event.partner_kind, event.region_id, event.pooled, tier),
            (actor.member_id, event.partner_id, "active", actor.role_code, actor.role_name) if actor else None,
            (event.product_id, event.line_id),
            event.occurred_on,
            event.quantity,
            event.amount,
        )
        postings = evaluate(event, rules)
        assert list(shares) == [share_of(posting) for posting in postings]
        for share, posting in zip(shares, postings, strict=True):
            member = "null" if posting.member_id is None else str(posting.member_id)
            line_json = json.loads(share.head + member + share.tail)
            assert line_json == [posting.rule_id, posting.member_id, posting.points, posting.explanation]


def test_the_line_evaluator_gives_exactly_what_the_engine_gives_for_every_line():
    """Its results are remembered per kind of line, date range and quantity: a line must still get exactly
    engine.evaluate's postings, whatever the rules (dates, minimums, exclusivity, bonuses, shares, tiers)."""
    rng = random.Random(5)
    for _ in range(4):
        rules = tuple(replace(rule, event="sale_line") for rule in random_rules(rng))
        _check_line_evaluator(rng, rules, 1500)


def test_the_line_evaluator_does_only_the_arithmetic_for_amounts_and_still_gives_what_the_engine_gives():
    """Base rules without shares or minimum amounts (the arithmetic-only path): per amount, per unit, fixed."""
    rng = random.Random(8)
    for _ in range(4):
        rules = tuple(
            replace(
                rule,
                event="sale_line",
                formula=rng.choice([Formula.PER_AMOUNT, Formula.PER_AMOUNT, Formula.PER_UNIT, Formula.FIXED]),
                shares=(),
                min_amount=None,
                apply_tier_multiplier=rng.random() < 0.8,
            )
            for rule in random_rules(rng)
        )
        _check_line_evaluator(rng, rules, 1500)


def test_copy_text_escapes_what_copy_would_misread():
    assert copy_text("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
    assert copy_text("plain") == "plain"


@pytest.mark.parametrize("value", ["sale:1:L1", 'quo"te', "back\\slash", "ümlaut × 1.2 — ok", "tab\there"])
def test_json_text_is_json_that_reads_back_the_same(value):
    assert json.loads(json_text(value)) == value


def test_json_text_leaves_letters_as_they_are_so_copy_has_nothing_to_escape():
    assert json_text("3 units × 10 pts — limited") == '"3 units × 10 pts — limited"'


def test_partial_returns_add_up_to_exactly_the_points_earned():
    def back(points, returned, before, quantity):
        return proportional(
            points,
            Return(returned=Decimal(returned), original_quantity=Decimal(quantity), returned_before=Decimal(before)),
        )

    assert [back(10, 1, n, 3) for n in range(3)] == [3, 4, 3]
    assert [back(5, 1, n, 2) for n in range(2)] == [3, 2]
    assert back(100, 4, 0, 10) == 40
