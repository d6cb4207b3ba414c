"""How a rule turns what happened into points: one class per formula, chosen by the rule's `formula` code (as
django-oscar chooses its benefit classes by type).

Each formula knows its points and their arithmetic ("12 units × 10 pts"), whether it tops up the other rules'
points (a bonus) or pays on its own, whether it reads the amount of a sale, what is wrong with a rule's value for
it, and how a program manager says it ("10 pts per unit"). Defining a subclass with a `code` registers it in
FORMULAS; the engine, the bulk evaluator, validation and the back office ask the registry, never the code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, NamedTuple, Protocol

from loyalty.constants import Formula
from loyalty.error_codes import ErrorCode

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)


class Problem(NamedTuple):
    """Something that makes a rule contradictory or meaningless: the rule's field it is about ("" when none
    is), a code forms and APIs map by, and a message for people."""

    field: str
    code: ErrorCode
    message: str


class Figures(Protocol):
    """What a base formula reads of an event (an engine.Event, or bulk.Figures for a sale line)."""

    quantity: Decimal
    amount: Decimal
    unit: str


def number_text(number: Decimal) -> str:
    """A decimal without its trailing zeros or an exponent: 10.0000 → "10", 0.50 → "0.5"."""
    return format(number.normalize(), "f")


FORMULAS: dict[str, PointsFormula] = {}


def formula_for(code: str) -> PointsFormula:
    """The formula of a rule's `formula` code (KeyError for an unknown code: the table's constraint has none)."""
    return FORMULAS[code]


class PointsFormula:
    """A formula. Subclasses set `code` (a loyalty.constants.Formula) and `words`, and define `points`."""

    code: ClassVar[str] = ""
    is_bonus: ClassVar[bool] = False  # tops up what the other rules paid for the event, pays nothing alone
    reads_amount: ClassVar[bool] = False  # its points depend on the event's amount (not only on the quantity)
    words: ClassVar[str] = ""  # how a program manager says it, with {value}
    says_tier: ClassVar[bool] = True  # "…, × tier" is added when the tier multiplier applies on top

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.code:
            FORMULAS[cls.code] = cls()

    def points(self, value: Decimal, event: Figures, base_total: Decimal) -> tuple[Decimal, str]:
        """The raw points (before the tier multiplier) and their arithmetic. `base_total`: what the base rules
        paid for the event (only bonus formulas read it)."""
        raise NotImplementedError

    def describe(self, value: Decimal, *, tier: bool = False) -> str:
        """The formula and its value in words ("10 pts per unit"); `tier`: the tier multiplier applies on top."""
        text = self.words.format(value=number_text(value))
        return f"{text}, × tier" if tier and self.says_tier else text

    def value_problems(self, value: Decimal | None) -> list[Problem]:
        """What is wrong with `value` as this formula's value."""
        if value is None or Decimal(value) <= 0:
            return [Problem("value", ErrorCode.VALUE_NOT_POSITIVE, "The formula's value must be greater than zero.")]
        return []

    def stacking_problems(self, exclusive: bool) -> list[Problem]:
        """What is wrong with stacking a rule of this formula this way."""
        return []


class BonusFormula(PointsFormula):
    """A formula that tops up the points the base rules paid for the same event."""

    is_bonus = True

    def stacking_problems(self, exclusive: bool) -> list[Problem]:
        if exclusive:  # it would stop the very rules it tops up
            return [
                Problem(
                    "exclusive",
                    ErrorCode.BONUS_EXCLUSIVE,
                    "A bonus rule tops up other rules, so it cannot also be exclusive.",
                )
            ]
        return []


class FixedPoints(PointsFormula):
    code = Formula.FIXED
    words = "{value} pts per sale line"

    def points(self, value, event, base_total):
        return value, f"{number_text(value)} pts"


class PointsPerUnit(PointsFormula):
    code = Formula.PER_UNIT
    words = "{value} pts per unit"

    def points(self, value, event, base_total):
        return event.quantity * value, f"{number_text(event.quantity)} {event.unit} × {number_text(value)} pts"


class PointsPerAmount(PointsFormula):
    """Points per one unit of money."""

    code = Formula.PER_AMOUNT
    reads_amount = True
    words = "{value} pts per 1.00 of amount"

    def points(self, value, event, base_total):
        return event.amount * value, f"{number_text(event.amount)} × {number_text(value)} pts per 1.00"


class PercentBonus(BonusFormula):
    code = Formula.PERCENT_BONUS
    words = "+{value} % on the other rules' points"

    def points(self, value, event, base_total):
        return base_total * value / HUNDRED, f"{number_text(value)}% of {number_text(base_total)} pts"


class MultiplierCampaign(BonusFormula):
    """Pays the base points × (value − 1) on top, so that with them the event earns value × as much."""

    code = Formula.MULTIPLIER
    words = "× {value} on the other rules' points"
    says_tier = False  # "× 2 …, × tier" would read as a second multiplier

    def points(self, value, event, base_total):
        return base_total * (value - ONE), f"{number_text(base_total)} pts × ({number_text(value)} − 1)"

    def value_problems(self, value):
        problems = super().value_problems(value)
        if not problems and Decimal(value) <= 1:
            problems.append(
                Problem(
                    "value",
                    ErrorCode.MULTIPLIER_TOO_SMALL,
                    "A multiplier must be greater than 1 (e.g. 2 for double points).",
                )
            )
        return problems
