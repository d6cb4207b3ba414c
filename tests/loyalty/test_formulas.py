"""One class per formula (loyalty.engine.formulas): points and arithmetic, stacking, validation and words. Pure:
no database."""

from decimal import Decimal
from typing import NamedTuple

import pytest

from loyalty.constants import Formula
from loyalty.engine.formulas import (
    FORMULAS,
    FixedPoints,
    MultiplierCampaign,
    PercentBonus,
    PointsFormula,
    PointsPerAmount,
    PointsPerUnit,
    Problem,
    formula_for,
)
from loyalty.engine.rules import CompiledRule
from loyalty.error_codes import ErrorCode

D = Decimal


class Sale(NamedTuple):
    quantity: Decimal = D(12)
    amount: Decimal = D("1500.00")
    unit: str = "units"


def test_every_formula_choice_has_its_class():
    assert set(FORMULAS) == set(Formula.values)
    for code, formula in FORMULAS.items():
        assert formula.code == code
        assert formula_for(code) is formula


def test_an_unknown_formula_has_no_class():
    with pytest.raises(KeyError):
        formula_for("per_kilometre")


@pytest.mark.parametrize(
    ("code", "cls", "is_bonus", "reads_amount"),
    [
        ("fixed", FixedPoints, False, False),
        ("per_unit", PointsPerUnit, False, False),
        ("per_amount", PointsPerAmount, False, True),
        ("percent_bonus", PercentBonus, True, False),
        ("multiplier", MultiplierCampaign, True, False),
    ],
)
def test_what_each_formula_is(code, cls, is_bonus, reads_amount):
    formula = formula_for(code)
    assert type(formula) is cls
    assert (formula.is_bonus, formula.reads_amount) == (is_bonus, reads_amount)


@pytest.mark.parametrize(
    ("code", "value", "base_total", "points", "arithmetic"),
    [
        ("fixed", D("50.0000"), D(0), D("50.0000"), "50 pts"),
        ("per_unit", D("10.0000"), D(0), D(120), "12 units × 10 pts"),
        ("per_amount", D("0.1000"), D(0), D(150), "1500 × 0.1 pts per 1.00"),
        ("percent_bonus", D(10), D(150), D(15), "10% of 150 pts"),
        ("multiplier", D(2), D(150), D(150), "150 pts × (2 − 1)"),
        ("multiplier", D("1.5"), D(130), D(65), "130 pts × (1.5 − 1)"),
    ],
)
def test_points_and_their_arithmetic(code, value, base_total, points, arithmetic):
    assert formula_for(code).points(value, Sale(), base_total) == (points, arithmetic)


def test_base_formulas_read_the_event_and_bonus_formulas_the_base_total():
    assert formula_for("per_unit").points(D(10), Sale(quantity=D(3), unit="kits"), D(999)) == (D(30), "3 kits × 10 pts")
    assert formula_for("per_amount").points(D(2), Sale(amount=D("12.50")), D(999)) == (
        D("25.00"),
        "12.5 × 2 pts per 1.00",
    )
    assert formula_for("percent_bonus").points(D(10), Sale(quantity=D(999)), D(40)) == (D(4), "10% of 40 pts")


@pytest.mark.parametrize(
    ("code", "value", "tier", "words"),
    [
        ("fixed", D("150.0000"), False, "150 pts per sale line"),
        ("per_unit", D("10.0000"), False, "10 pts per unit"),
        ("per_unit", D("10.0000"), True, "10 pts per unit, × tier"),
        ("per_amount", D("0.5000"), True, "0.5 pts per 1.00 of amount, × tier"),
        ("percent_bonus", D(10), False, "+10 % on the other rules' points"),
        ("percent_bonus", D(10), True, "+10 % on the other rules' points, × tier"),
        ("multiplier", D("2.0000"), False, "× 2 on the other rules' points"),
        ("multiplier", D("2.0000"), True, "× 2 on the other rules' points"),
    ],
)
def test_how_a_program_manager_says_each_formula(code, value, tier, words):
    assert formula_for(code).describe(value, tier=tier) == words


@pytest.mark.parametrize("code", Formula.values)
@pytest.mark.parametrize("value", [None, D(0), D(-1)])
def test_every_formula_needs_a_value_above_zero(code, value):
    assert formula_for(code).value_problems(value) == [
        Problem("value", ErrorCode.VALUE_NOT_POSITIVE, "The formula's value must be greater than zero.")
    ]


@pytest.mark.parametrize("code", ["fixed", "per_unit", "per_amount", "percent_bonus"])
def test_a_small_positive_value_is_fine_but_for_a_multiplier(code):
    assert formula_for(code).value_problems(D("0.5")) == []


@pytest.mark.parametrize("value", [D("0.5"), D(1)])
def test_a_multiplier_must_be_more_than_one(value):
    assert formula_for("multiplier").value_problems(value) == [
        Problem(
            "value", ErrorCode.MULTIPLIER_TOO_SMALL, "A multiplier must be greater than 1 (e.g. 2 for double points)."
        )
    ]
    assert formula_for("multiplier").value_problems(D("1.01")) == []


@pytest.mark.parametrize(("code", "refused"), [(code, FORMULAS[code].is_bonus) for code in Formula.values])
def test_only_a_bonus_cannot_be_exclusive(code, refused):
    formula = formula_for(code)
    assert formula.stacking_problems(False) == []
    expected = [
        Problem(
            "exclusive", ErrorCode.BONUS_EXCLUSIVE, "A bonus rule tops up other rules, so it cannot also be exclusive."
        )
    ]
    assert formula.stacking_problems(True) == (expected if refused else [])


def test_a_compiled_rule_keeps_its_formula_and_stays_comparable():
    rule = CompiledRule(id=1, code="c", version=1, name="C", event="sale_line", formula="multiplier", value=D(2))
    assert rule.points_formula is FORMULAS["multiplier"]
    same = CompiledRule(id=1, code="c", version=1, name="C", event="sale_line", formula="multiplier", value=D(2))
    assert rule == same and hash(rule) == hash(same)
    assert "points_formula" not in repr(rule)


def test_a_new_formula_is_one_class(monkeypatch):
    monkeypatch.setattr("loyalty.engine.formulas.FORMULAS", dict(FORMULAS))
    from loyalty.engine import formulas

    class PerTenUnits(PointsFormula):
        code = "per_ten_units"
        words = "{value} pts per 10 units"

        def points(self, value, event, base_total):
            return event.quantity / 10 * value, f"{event.quantity} / 10 × {value} pts"

    formula = formulas.FORMULAS["per_ten_units"]
    assert isinstance(formula, PerTenUnits)
    assert formula.points(D(5), Sale(quantity=D(30)), D(0)) == (D(15), "30 / 10 × 5 pts")
    assert formula.describe(D(5), tier=True) == "5 pts per 10 units, × tier"
    assert (formula.is_bonus, formula.reads_amount) == (False, False)
