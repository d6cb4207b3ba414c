"""Period standings: the points the program's rules paid in each program period, per member and per company,
raised as they are posted so that a period's leaderboard is an index read (models.PeriodStanding).

What counts: every EARN the rule engine posts — earning.post_event (claims, surveys, training, challenge
completions…) and a sell-out import's ledger (services.ledger_bulk) — for the period it is posted in
(`period_start`: the first day of the current quarter or year, per `program.tier_period`, in the site's time zone).
A member's points raise the member's row and the company row (member empty) of the member's partner; points paid
to a partner's company account raise the company row only. Taking points back (earning.reverse_source, a sell-out
return) lowers the rows of the period the points were earned in. Manual adjustments, redemptions, expiry and
prizes (not paid by the rules) do not count.

Each call is one INSERT … ON CONFLICT DO UPDATE statement for the whole posting (people's rows and companies' rows,
in id order, so two postings never wait on each other in a circle; two postings at once for the same member both
count: the second waits for the first's row and adds to it). A company row keeps the partner's active members
(counted again at each raise) and `normalised` = points per active member; a member's row has normalised = points.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.conf import settings
from django.db import connection
from django.utils import timezone

from loyalty.constants import TierPeriod
from loyalty.engine.limits import period_start
from loyalty.models import Program
from partners.constants import MemberStatus


def standings_period(program: Program, day: date | None = None) -> date:
    """The first day of the program period (quarter or year, per `tier_period`) that holds `day` (today)."""
    return period_start(program.tier_period, day or timezone.localdate())


# `d`: the rows to add — program_id, period_start, member_id (NULL: a company account), partner_id, points.
_UPSERT = """
WITH d AS ({rows}),
people AS (
    INSERT INTO loyalty_periodstanding AS s (program_id, period_start, partner_id, member_id, points, normalised,
        active_members)
    SELECT program_id, period_start, partner_id, member_id, SUM(points), SUM(points), 1
    FROM d WHERE member_id IS NOT NULL
    GROUP BY program_id, period_start, member_id, partner_id ORDER BY program_id, period_start, member_id
    ON CONFLICT (program_id, period_start, member_id) WHERE member_id IS NOT NULL
    DO UPDATE SET points = s.points + EXCLUDED.points, normalised = s.points + EXCLUDED.points
)
INSERT INTO loyalty_periodstanding AS s (program_id, period_start, partner_id, member_id, points, normalised,
    active_members)
SELECT program_id, period_start, partner_id, NULL, points, ROUND(points::numeric / active, 4), active
FROM (
    SELECT program_id, period_start, partner_id, SUM(points) AS points,
        GREATEST((SELECT count(*) FROM partners_member a WHERE a.partner_id = d.partner_id AND a.status = %(active)s),
            1) AS active
    FROM d GROUP BY program_id, period_start, partner_id
) AS c
ORDER BY program_id, period_start, partner_id
ON CONFLICT (program_id, period_start, partner_id) WHERE member_id IS NULL
DO UPDATE SET points = s.points + EXCLUDED.points, active_members = EXCLUDED.active_members,
    normalised = ROUND((s.points + EXCLUDED.points)::numeric / EXCLUDED.active_members, 4)
"""
# Points posted now: members' points (partner looked up) and companies' points, for one program period.
_POSTED = (
    "SELECT %(program)s::bigint AS program_id, %(period)s::date AS period_start, u.m AS member_id, "
    "COALESCE(u.p, pm.partner_id) AS partner_id, u.pts AS points "
    "FROM unnest(%(members)s::bigint[], %(partners)s::bigint[], %(points)s::bigint[]) AS u(m, p, pts) "
    "LEFT JOIN partners_member pm ON pm.id = u.m"
)
# Points taken back from earn entries: each entry's account and the period of the day it was earned on.
_TAKEN_BACK = (
    "SELECT a.program_id, (CASE WHEN p.tier_period = %(year)s "
    "THEN date_trunc('year', e.created_at AT TIME ZONE %(tz)s) "
    "ELSE date_trunc('quarter', e.created_at AT TIME ZONE %(tz)s) END)::date AS period_start, "
    "a.member_id, COALESCE(a.partner_id, pm.partner_id) AS partner_id, -u.pts AS points "
    "FROM unnest(%(entries)s::bigint[], %(points)s::bigint[]) AS u(id, pts) "
    "JOIN loyalty_pointsentry e ON e.id = u.id JOIN loyalty_pointsaccount a ON a.id = e.account_id "
    "JOIN loyalty_program p ON p.id = a.program_id LEFT JOIN partners_member pm ON pm.id = a.member_id"
)


def standings_add(
    *, program: Program, rows: Iterable[tuple[int | None, int | None, int]], day: date | None = None
) -> None:
    """Raise the standings of the period of `day` (today) by what the rules just paid: `rows` of (member id, partner
    id, points) — a member's account (its partner id may be None: looked up), or a company's (member None)."""
    rows = [(member, partner, points) for member, partner, points in rows if points]
    if not rows:
        return
    rows.sort(key=lambda row: (row[0] is None, row[0] or 0, row[1] or 0))
    params = {
        "program": program.pk,
        "period": standings_period(program, day),
        "members": [row[0] for row in rows],
        "partners": [row[1] for row in rows],
        "points": [row[2] for row in rows],
        "active": MemberStatus.ACTIVE.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT.format(rows=_POSTED), params)


def standings_take_back(*, entries: Iterable[tuple[int, int]]) -> None:
    """Lower the standings by points taken back from earn entries: `entries` of (earn entry id, points taken back),
    each from the period its entry was posted in."""
    entries = sorted((entry_id, points) for entry_id, points in entries if points)
    if not entries:
        return
    params = {
        "entries": [entry_id for entry_id, _ in entries],
        "points": [points for _, points in entries],
        "year": TierPeriod.YEAR.value,
        "tz": settings.TIME_ZONE,
        "active": MemberStatus.ACTIVE.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT.format(rows=_TAKEN_BACK), params)
