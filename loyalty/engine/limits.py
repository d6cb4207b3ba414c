"""Caps and budgets: how many of a posting's points a rule may still pay.

Caps (per member and period) and budgets (per rule) need state, so they are applied after engine.rules.evaluate,
by a `Limiter`: in memory for simulations and bulk imports (`MemoryLimiter`), over locked rows when posting one
event (services.earning.LockedLimiter). Both go through the same `limit`, so a simulation pays exactly what
posting would.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Protocol

from loyalty.constants import CapPeriod

if TYPE_CHECKING:
    from loyalty.engine.rules import Posting


def period_start(period: str, day: date) -> date:
    if period == CapPeriod.YEAR:
        return day.replace(month=1, day=1)
    if period == CapPeriod.QUARTER:
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(day=1)


class Limiter(Protocol):
    def used_by_member(self, rule_id: int, member_id: int, period: date) -> int: ...
    def used_by_rule(self, rule_id: int) -> int: ...
    def record(self, rule_id: int, member_id: int | None, period: date, points: int) -> None: ...


def limit(posting: Posting, day: date, limiter: Limiter) -> int:
    """How many of the posting's points the cap and the budget still allow (and record them)."""
    allowed = posting.points
    period = period_start(posting.cap_period, day)
    if posting.cap_points is not None and posting.member_id is not None:
        allowed = min(allowed, posting.cap_points - limiter.used_by_member(posting.rule_id, posting.member_id, period))
    if posting.budget_points is not None:
        allowed = min(allowed, posting.budget_points - limiter.used_by_rule(posting.rule_id))
    allowed = max(allowed, 0)
    if allowed:
        limiter.record(posting.rule_id, posting.member_id, period, allowed)
    return allowed


class MemoryLimiter:
    """Caps and budgets counted in memory, starting from what the database says was already paid."""

    def __init__(self, member_usage: dict | None = None, rule_usage: dict | None = None):
        self.member_usage: dict[tuple[int, int, date], int] = dict(member_usage or {})
        self.rule_usage: dict[int, int] = dict(rule_usage or {})

    def used_by_member(self, rule_id, member_id, period):
        return self.member_usage.get((rule_id, member_id, period), 0)

    def used_by_rule(self, rule_id):
        return self.rule_usage.get(rule_id, 0)

    def record(self, rule_id, member_id, period, points):
        if member_id is not None:
            key = (rule_id, member_id, period)
            self.member_usage[key] = self.member_usage.get(key, 0) + points
        self.rule_usage[rule_id] = self.rule_usage.get(rule_id, 0) + points
