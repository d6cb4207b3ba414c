"""The rule engine is a pure function: these tests need no database."""

from datetime import date
from decimal import Decimal

import pytest

from loyalty.engine.limits import MemoryLimiter, limit
from loyalty.engine.rules import CompiledRule, Event, Participant, evaluate

D = Decimal
SALES = Participant(member_id=1, role_code="sales", role_name="Sales rep", is_actor=True)
ENGINEER = Participant(member_id=2, role_code="engineer", role_name="Engineer / installer")
OWNER = Participant(member_id=3, role_code="owner", role_name="Owner / manager")


def event(**overrides) -> Event:
    facts = {
        "kind": "sale_line",
        "source_key": "sale:1",
        "occurred_on": date(2026, 3, 10),
        "partner_id": 10,
        "partner_kind": "dealer",
        "region_id": 5,
        "participants": (SALES,),
        "product_id": 100,
        "line_id": 7,
        "quantity": D(12),
        "amount": D("1500.00"),
    }
    return Event(**{**facts, **overrides})


def rule(**overrides) -> CompiledRule:
    values = {"id": 1, "code": "units", "version": 1, "name": "Units", "event": "sale_line", "formula": "per_unit"}
    return CompiledRule(**{**values, "value": D(10), **overrides})


def paid(postings) -> list[tuple[int | None, int]]:
    return [(p.member_id, p.points) for p in postings]


@pytest.mark.parametrize(
    ("formula", "value", "points", "arithmetic"),
    [
        ("fixed", D(50), 50, "50 pts"),
        ("per_unit", D(10), 120, "12 units × 10 pts"),
        ("per_amount", D("0.1"), 150, "1500 × 0.1 pts per 1.00"),
    ],
)
def test_base_formulas(formula, value, points, arithmetic):
    [posting] = evaluate(event(), (rule(formula=formula, value=value),))
    assert (posting.member_id, posting.points) == (1, points)
    assert posting.explanation == f"Units v1: {arithmetic} = {points}"


def test_tier_multiplier_on_top_is_explained():
    [posting] = evaluate(event(tier_id=2, tier_name="Gold", tier_multiplier=D("1.2")), (rule(),))
    assert posting.points == 144
    assert posting.explanation == "Units v1: 12 units × 10 pts × Gold 1.2 = 144"


def test_tier_multiplier_can_be_switched_off_per_rule():
    [posting] = evaluate(event(tier_multiplier=D("1.5"), tier_name="Gold"), (rule(apply_tier_multiplier=False),))
    assert posting.points == 120


@pytest.mark.parametrize(
    ("condition", "matching", "not_matching"),
    [
        ({"roles": frozenset({"sales"})}, {}, {"participants": (ENGINEER,)}),
        ({"partner_kinds": frozenset({"dealer"})}, {}, {"partner_kind": "installer"}),
        ({"tier_ids": frozenset({2})}, {"tier_id": 2}, {"tier_id": 3}),
        ({"region_ids": frozenset({5})}, {}, {"region_id": 6}),
        ({"product_ids": frozenset({100})}, {}, {"product_id": 101}),
        ({"line_ids": frozenset({7})}, {}, {"line_id": 8}),
        ({"min_quantity": D(12)}, {}, {"quantity": D(11)}),
        ({"min_amount": D(1500)}, {}, {"amount": D("1499.99")}),
        ({"valid_from": date(2026, 3, 1), "valid_until": date(2026, 3, 31)}, {}, {"occurred_on": date(2026, 4, 1)}),
        ({"effective_from": date(2026, 3, 10)}, {}, {"occurred_on": date(2026, 3, 9)}),
        ({"effective_until": date(2026, 3, 11)}, {}, {"occurred_on": date(2026, 3, 11)}),
    ],
)
def test_each_condition(condition, matching, not_matching):
    rules = (rule(**condition),)
    assert paid(evaluate(event(**matching), rules)) == [(1, 120)]
    assert evaluate(event(**not_matching), rules) == []


def test_a_role_condition_needs_someone_acting():
    assert evaluate(event(participants=()), (rule(roles=frozenset({"sales"})),)) == []


def test_rules_stack_and_bonuses_apply_to_the_base_points():
    rules = (
        rule(id=1, code="units", priority=100),
        rule(id=2, code="big-deal", name="Big deal", formula="fixed", value=D(30), priority=90),
        rule(id=3, code="march", name="March x2", formula="multiplier", value=D(2), priority=80),
        rule(id=4, code="ten", name="10% bonus", formula="percent_bonus", value=D(10), priority=70),
    )
    postings = evaluate(event(), rules)
    assert [(p.rule_code, p.points) for p in postings] == [
        ("units", 120),
        ("big-deal", 30),
        ("march", 150),
        ("ten", 15),
    ]
    assert postings[2].explanation == "March x2 v1: 150 pts × (2 − 1) = 150"


def test_an_exclusive_rule_stops_lower_priority_rules():
    rules = (
        rule(id=1, code="launch", name="Launch", formula="fixed", value=D(500), priority=200, exclusive=True),
        rule(id=2, code="units", priority=100),
    )
    assert [(p.rule_code, p.points) for p in evaluate(event(), rules)] == [("launch", 500)]
    # When the exclusive rule does not match, the others pay as usual.
    only_line_8 = (
        rule(id=1, code="launch", formula="fixed", value=D(500), priority=200, exclusive=True, line_ids=frozenset({8})),
        rules[1],
    )
    assert [(p.rule_code, p.points) for p in evaluate(event(), only_line_8)] == [("units", 120)]


def test_a_bonus_without_base_points_pays_nothing():
    assert evaluate(event(), (rule(formula="multiplier", value=D(2)),)) == []


def test_split_between_roles_with_the_rest_to_the_company():
    shares = (("sales", D(60)), ("engineer", D(30)))
    postings = evaluate(event(participants=(SALES, ENGINEER)), (rule(value=D("8.25"), shares=shares),))
    # 12 × 8.25 = 99: sales 59 (60 % floored), engineer 29, company 11 (10 % plus the rounding)
    assert paid(postings) == [(1, 59), (2, 29), (None, 11)]
    assert postings[0].explanation == "Units v1: 12 units × 8.25 pts = 99; Sales rep share 60% = 59"
    assert sum(p.points for p in postings) == 99


def test_a_share_whose_role_is_absent_goes_to_the_company():
    postings = evaluate(event(), (rule(shares=(("sales", D(60)), ("engineer", D(30)))),))
    assert paid(postings) == [(1, 72), (None, 48)]


def test_people_of_one_role_divide_its_share():
    second = Participant(member_id=4, role_code="engineer", role_name="Engineer / installer")
    postings = evaluate(event(participants=(SALES, ENGINEER, second)), (rule(shares=(("engineer", D(50)),)),))
    assert paid(postings) == [(2, 30), (4, 30), (None, 60)]
    assert postings[0].explanation.endswith("Engineer / installer share 50% ÷ 2 = 30")


def test_pooled_partners_get_member_shares_in_the_company_account():
    shares = (("sales", D(60)), ("engineer", D(30)))
    postings = evaluate(event(participants=(SALES, ENGINEER), pooled=True), (rule(shares=shares),))
    assert paid(postings) == [(None, 120)]
    assert "pooled to the company account" in postings[0].explanation
    [single] = evaluate(event(pooled=True), (rule(),))
    assert (single.member_id, single.points) == (None, 120)


def test_a_line_without_a_member_pays_the_partner():
    assert paid(evaluate(event(participants=()), (rule(),))) == [(None, 120)]


def test_rounding_is_half_up_and_zero_points_post_nothing():
    assert paid(evaluate(event(quantity=D(1)), (rule(value=D("0.5")),))) == [(1, 1)]
    assert evaluate(event(quantity=D(1)), (rule(value=D("0.4")),)) == []


def test_caps_and_budgets_limit_exactly():
    [posting] = evaluate(event(), (rule(cap_points=200, budget_points=250),))
    limiter = MemoryLimiter()
    day = date(2026, 3, 10)
    assert [limit(posting, day, limiter) for _ in range(3)] == [120, 80, 0]
    assert limit(posting, date(2026, 4, 1), limiter) == 50  # new month: cap resets, budget has 50 left
    assert limit(posting, date(2026, 5, 1), limiter) == 0
