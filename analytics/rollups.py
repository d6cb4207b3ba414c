"""Keeping the daily roll-ups (analytics.models): each day rebuilt whole from its sources, one day per transaction.

A day of a roll-up is rebuilt by deleting its rows and summing the sources again in one `INSERT … SELECT … GROUP BY`
(raw SQL, parameterised); RollupDay records when. So a rebuild is idempotent (twice gives the same rows), a late or
corrected source row is counted by the next rebuild of its day, and one day's points roll-up is exactly one
INSERT … SELECT over that day's entries (plus the DELETE): one pass over the day's rows, then index lookups for
the claim postings and reversals among them.

Days are the site's (settings.TIME_ZONE): a moment belongs to the local day it falls on, computed in SQL with
`AT TIME ZONE`, so an entry at 23:30 in Berlin counts on that Berlin day whatever UTC says. Sales are by invoice
date (a date already). Dimensions are read as they are when the day is summed (a member who changed role counts
in the new role from the next rebuild of the day on).

What each table sums:
- points (PointsDay), by the entry's time: `issued` = EARN (available + pending); `reversed` = points taken back by
  a REVERSE of an EARN; `redeemed` = SPEND, net of refunds (an order refund is a REVERSE of the order's SPEND: it
  lowers `redeemed` on the day of the refund); `expired` = EXPIRE, net of reversed expiries; `adjusted` = ADJUST,
  net, with reversed adjustments. Every reversal thus nets into the column of the entry it reverses (the kind of
  that entry, looked up by primary key for REVERSE rows only), and issued − reversed − redeemed − expired + adjusted
  is the change of the balances (transfers aside). RELEASE (pending → available) and TRANSFER (one account to
  another: a leaver's points to the company account) move points that were issued already; both are left out,
  entries included.
  Company accounts have role 0. The product line is known only for a claim line's postings (source "claim", source
  id "claim:<claim>:<line>", also copied onto their reversals): the claim line's product's line. A sell-out import
  posts one entry per account and import, over many lines and lines of products, so its entries (and every other
  source's) have product line 0.
- sales (SalesDay), by invoice date, counted as loyalty.services.tiers.sales_amounts counts them: sell-out lines
  for the part that paid (amount × paid_quantity / quantity; a return, quantity < 0, in full) and the lines of
  approved claims for the part that paid. A line that paid nothing (the second report of a sale already counted)
  is left out. Role: the claimant's; 0 for sell-out lines.
- claims (ClaimsDay), by the claim's events: `submitted` = submissions on the day (a corrected claim sent again is
  submitted again), `approved` / `rejected` = decisions on the day, `turnaround_hours` = the sum over those
  decisions of the time since the submission they decided. Role: the claimant's.
- members (MembersDay): `invited` = people whose first invitation was sent that day, `joined` = memberships
  activated (Member.joined_at) — both with program 0, as partners belong to no program —, `first_earn` and
  `first_redemption` = members whose first EARN (first SPEND) entry in a program falls on the day.
- messages (MessagesDay), per channel, role and kind: `sent` (sent_at; an inbox message is sent when it is
  placed, delivered_at), `delivered`, `opened` (opened_at, or read_at in the inbox), `acted` (clicked_at) and
  `failed` (failed or bounced; on the day the row last changed, as no failure time is stored).
"""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics.error_codes import ErrorCode
from analytics.lock_objects import rollup_day_lock
from analytics.models import RollupDay
from loyalty.common.errors import ApplicationError

MAX_YEARS = 10
# The periodic pass looks for late source rows changed since its previous start less this: a row stamped just
# before a run began but committed after it is still found by the next run.
LATE_MARGIN = timedelta(minutes=10)
# RollupDay's `rollup` of the periodic pass's own record: when it last started (see rollup_recent).
RECENT = "recent"
ROLLUP_WORK_MEM = "64MB"

# The local day %(day)s in the site's zone %(zone)s, as a range of moments (sargable: the column is left bare).
_START = "(%(day)s::date::timestamp AT TIME ZONE %(zone)s)"
_END = "((%(day)s::date + 1)::timestamp AT TIME ZONE %(zone)s)"


def _on_day(column: str) -> str:
    return f"({column} >= {_START} AND {column} < {_END})"


# Points ---------------------------------------------------------------------------------------------------------

# The day's entries are summed per account, kind, product line and — for a reversal — the kind it reverses first, over
# a scan that finds the day's rows however the table is indexed. The ledger writes a posting's product line
# ("product_line_id") and a reversal's reversed kind and line ("reverses_kind", "product_line_id") in the entry's
# details, so the day's rows are all it reads; a reversal written before it did so is grouped by the entry it
# reverses, looked up by one index probe each. Only the far fewer grouped rows are joined, to the accounts for the
# dimensions. A reversal counts in the column, and the line, of what it reverses; a reversed earn is `reversed`.
_POINTS_SELECT = f"""
SELECT %(day)s::date, a.program_id, p.id, COALESCE(m.role_id, 0), p.region_id,
    COALESCE(g.line_id, (r.details ->> 'product_line_id')::bigint, 0),
    COALESCE(SUM(g.points) FILTER (WHERE g.kind = 'earn'), 0),
    -COALESCE(SUM(g.points) FILTER (WHERE COALESCE(g.reversed_kind, r.kind) = 'earn'), 0),
    -COALESCE(SUM(g.points) FILTER (WHERE 'spend' IN (g.kind, g.reversed_kind, r.kind)), 0),
    -COALESCE(SUM(g.points) FILTER (WHERE 'expire' IN (g.kind, g.reversed_kind, r.kind)), 0),
    COALESCE(SUM(g.points) FILTER (WHERE 'adjust' IN (g.kind, g.reversed_kind, r.kind)), 0),
    SUM(g.entries)
FROM (
    SELECT e.account_id, e.kind,
        CASE WHEN e.kind = 'reverse' THEN e.details ->> 'reverses_kind' END AS reversed_kind,
        CASE WHEN e.kind = 'reverse' AND NOT e.details ? 'reverses_kind' THEN e.reverses_id END AS reverses_id,
        (e.details ->> 'product_line_id')::bigint AS line_id,
        SUM(e.available_delta + e.pending_delta) AS points,
        COUNT(*) AS entries
    FROM loyalty_pointsentry e
    WHERE {_on_day("e.created_at")} AND e.kind IN ('earn', 'spend', 'expire', 'adjust', 'reverse')
    GROUP BY 1, 2, 3, 4, 5
) g
JOIN loyalty_pointsaccount a ON a.id = g.account_id
LEFT JOIN partners_member m ON m.id = a.member_id
JOIN partners_partner p ON p.id = COALESCE(a.partner_id, m.partner_id)
-- One index probe per older reversal (OFFSET 0 keeps the planner from hashing the whole ledger instead).
LEFT JOIN LATERAL (
    SELECT r.kind, r.details FROM loyalty_pointsentry r
    WHERE g.reverses_id IS NOT NULL AND r.id = g.reverses_id OFFSET 0
) r ON true
GROUP BY a.program_id, p.id, COALESCE(m.role_id, 0), p.region_id,
    COALESCE(g.line_id, (r.details ->> 'product_line_id')::bigint, 0)
"""

# Sales ----------------------------------------------------------------------------------------------------------

_SALES_SELECT = """
SELECT %(day)s::date, s.program_id, s.partner_id, s.role_id, p.region_id, pr.line_id,
    SUM(s.amount), SUM(s.units), COUNT(*)
FROM (
    SELECT src.program_id, l.partner_id, 0 AS role_id, l.product_id,
        CASE WHEN l.quantity < 0 THEN l.amount ELSE l.amount * l.paid_quantity / l.quantity END AS amount,
        CASE WHEN l.quantity < 0 THEN l.quantity ELSE l.paid_quantity END AS units
    FROM loyalty_saleline l JOIN loyalty_salessource src ON src.id = l.source_id
    WHERE l.invoice_date = %(day)s AND (l.quantity < 0 OR l.paid_quantity <> 0)
    UNION ALL
    SELECT c.program_id, c.partner_id, m.role_id, cl.product_id,
        cl.amount * cl.paid_quantity / cl.quantity, cl.paid_quantity
    FROM loyalty_salesclaim c
    JOIN loyalty_claimline cl ON cl.claim_id = c.id
    JOIN partners_member m ON m.id = c.member_id
    WHERE c.invoice_date = %(day)s AND c.status = 'approved' AND cl.paid_quantity <> 0
) s
JOIN partners_partner p ON p.id = s.partner_id
JOIN loyalty_product pr ON pr.id = s.product_id
GROUP BY s.program_id, s.partner_id, s.role_id, p.region_id, pr.line_id
"""

# Claims ---------------------------------------------------------------------------------------------------------

_CLAIMS_SELECT = f"""
SELECT %(day)s::date, c.program_id, c.partner_id, m.role_id, p.region_id,
    COUNT(*) FILTER (WHERE ev.to_status = 'submitted'),
    COUNT(*) FILTER (WHERE ev.to_status = 'approved'),
    COUNT(*) FILTER (WHERE ev.to_status = 'rejected'),
    COALESCE(SUM(ev.waited) / 3600, 0)
FROM (
    SELECT ev.claim_id, ev.to_status,
        CASE WHEN ev.to_status <> 'submitted' THEN EXTRACT(EPOCH FROM ev.created_at - (
            SELECT MAX(s.created_at) FROM loyalty_claimevent s
            WHERE s.claim_id = ev.claim_id AND s.to_status = 'submitted' AND s.created_at <= ev.created_at
        )) END AS waited
    FROM loyalty_claimevent ev
    WHERE {_on_day("ev.created_at")} AND ev.to_status IN ('submitted', 'approved', 'rejected')
) ev
JOIN loyalty_salesclaim c ON c.id = ev.claim_id
JOIN partners_member m ON m.id = c.member_id
JOIN partners_partner p ON p.id = c.partner_id
GROUP BY c.program_id, c.partner_id, m.role_id, p.region_id
"""

# Members --------------------------------------------------------------------------------------------------------

_MEMBERS_SELECT = f"""
SELECT %(day)s::date, x.program_id, mem.partner_id, mem.role_id, p.region_id,
    SUM(x.invited), SUM(x.joined), SUM(x.first_earn), SUM(x.first_redemption)
FROM (
    SELECT 0 AS program_id, i.member_id, 1 AS invited, 0 AS joined, 0 AS first_earn, 0 AS first_redemption
    FROM partners_invitation i
    WHERE {_on_day("i.created_at")} AND NOT EXISTS (
        SELECT 1 FROM partners_invitation o
        WHERE o.member_id = i.member_id
            AND (o.created_at < i.created_at OR (o.created_at = i.created_at AND o.id < i.id))
    )
    UNION ALL
    SELECT 0, m.id, 0, 1, 0, 0 FROM partners_member m WHERE {_on_day("m.joined_at")}
    UNION ALL
    SELECT a.program_id, a.member_id, 0, 0, (f.kind = 'earn')::int, (f.kind = 'spend')::int
    FROM (
        SELECT DISTINCT e.account_id, e.kind FROM loyalty_pointsentry e
        WHERE {_on_day("e.created_at")} AND e.kind IN ('earn', 'spend')
    ) f
    JOIN loyalty_pointsaccount a ON a.id = f.account_id AND a.member_id IS NOT NULL
    WHERE NOT EXISTS (
        -- OFFSET 0 keeps this a lookup per account and kind (the statement index, newest first: an earlier earn is
        -- found at once) instead of an anti join the planner would feed with a scan of the whole ledger
        SELECT 1 FROM loyalty_pointsentry o
        WHERE o.account_id = f.account_id AND o.kind = f.kind AND o.created_at < {_START}
        OFFSET 0
    )
) x
JOIN partners_member mem ON mem.id = x.member_id
JOIN partners_partner p ON p.id = mem.partner_id
GROUP BY x.program_id, mem.partner_id, mem.role_id, p.region_id
"""

# Messages -------------------------------------------------------------------------------------------------------

_SENT = _on_day("COALESCE(d.sent_at, CASE WHEN d.channel = 'inbox' THEN d.delivered_at END)")
_DELIVERED = _on_day("d.delivered_at")
_OPENED = _on_day("COALESCE(d.opened_at, d.read_at)")
_ACTED = _on_day("d.clicked_at")
_FAILED = f"(d.status IN ('failed', 'bounced') AND {_on_day('d.updated_at')})"
_MESSAGES_SELECT = f"""
SELECT %(day)s::date, d.channel, m.role_id, d.kind,
    COUNT(*) FILTER (WHERE {_SENT}),
    COUNT(*) FILTER (WHERE {_DELIVERED}),
    COUNT(*) FILTER (WHERE {_OPENED}),
    COUNT(*) FILTER (WHERE {_ACTED}),
    COUNT(*) FILTER (WHERE {_FAILED})
FROM communications_delivery d
JOIN partners_member m ON m.id = d.member_id
WHERE {_SENT} OR {_DELIVERED} OR {_OPENED} OR {_ACTED} OR {_FAILED}
GROUP BY d.channel, m.role_id, d.kind
"""


@dataclass(frozen=True)
class Rollup:
    name: str
    table: str
    columns: str
    select: str


_DIMENSIONS = "day, program_id, partner_id, role_id, region_id"
ROLLUPS: dict[str, Rollup] = {
    rollup.name: rollup
    for rollup in (
        Rollup(
            "points",
            "analytics_pointsday",
            f"{_DIMENSIONS}, product_line_id, issued, reversed, redeemed, expired, adjusted, entries",
            _POINTS_SELECT,
        ),
        Rollup("sales", "analytics_salesday", f"{_DIMENSIONS}, product_line_id, amount, units, lines", _SALES_SELECT),
        Rollup(
            "claims",
            "analytics_claimsday",
            f"{_DIMENSIONS}, submitted, approved, rejected, turnaround_hours",
            _CLAIMS_SELECT,
        ),
        Rollup(
            "members",
            "analytics_membersday",
            f"{_DIMENSIONS}, invited, joined, first_earn, first_redemption",
            _MEMBERS_SELECT,
        ),
        Rollup(
            "messages",
            "analytics_messagesday",
            "day, channel, role_id, kind, sent, delivered, opened, acted, failed",
            _MESSAGES_SELECT,
        ),
    )
}
ALL: tuple[str, ...] = tuple(ROLLUPS)

_RECORD = """
INSERT INTO analytics_rollupday (rollup, day, built_at, rows) VALUES (%s, %s, %s, %s)
ON CONFLICT (rollup, day) DO UPDATE SET built_at = EXCLUDED.built_at, rows = EXCLUDED.rows
"""


# The report -----------------------------------------------------------------------------------------------------


@dataclass
class TableTotal:
    rows: int = 0
    seconds: float = 0.0


@dataclass
class RollupReport:
    """What a rebuild wrote (or, on a dry run, would write): rows per table and day, and the time per table."""

    dry_run: bool = False
    days: dict[str, dict[date, int]] = field(default_factory=dict)
    totals: dict[str, TableTotal] = field(default_factory=dict)

    def add(self, table: str, day: date, rows: int, seconds: float) -> None:
        self.days.setdefault(table, {})[day] = rows
        total = self.totals.setdefault(table, TableTotal())
        total.rows += rows
        total.seconds += seconds

    def summary(self) -> dict:
        """JSON-friendly: per table the rows, the seconds and the days rebuilt (ISO dates)."""
        return {
            table: {
                "rows": total.rows,
                "seconds": round(total.seconds, 3),
                "days": sorted(day.isoformat() for day in self.days.get(table, {})),
            }
            for table, total in self.totals.items()
        }


# Rebuilding days ------------------------------------------------------------------------------------------------


def check_range(*, first: date, last: date, today: date | None = None) -> None:
    """A range of days one may sum: in order, not after today (the site's), at most ten years long."""
    today = today or timezone.localdate()
    if first > last:
        raise ApplicationError(
            _("The range is reversed: %(first)s is after %(last)s. Give the earlier day first.")
            % {"first": first.isoformat(), "last": last.isoformat()},
            code=ErrorCode.RANGE_REVERSED,
        )
    if last > today:
        raise ApplicationError(
            _("The range ends in the future (%(last)s); nothing has happened after today, %(today)s.")
            % {"last": last.isoformat(), "today": today.isoformat()},
            code=ErrorCode.RANGE_IN_FUTURE,
        )
    if last >= first + relativedelta(years=MAX_YEARS):
        raise ApplicationError(
            _("The range from %(first)s to %(last)s is longer than %(years)s years; split it.")
            % {"first": first.isoformat(), "last": last.isoformat(), "years": MAX_YEARS},
            code=ErrorCode.RANGE_TOO_LONG,
        )


def check_tables(tables: Iterable[str]) -> tuple[str, ...]:
    tables = tuple(dict.fromkeys(tables))
    unknown = [name for name in tables if name not in ROLLUPS]
    if unknown or not tables:
        raise ApplicationError(
            _("Unknown roll-up %(names)s; choose from %(choices)s.")
            % {"names": ", ".join(unknown) or "—", "choices": ", ".join(ALL)},
            code=ErrorCode.UNKNOWN_ROLLUP,
        )
    return tables


def rollup_days(
    *,
    first: date,
    last: date,
    tables: Iterable[str] = ALL,
    dry_run: bool = False,
    progress: Callable[[date, RollupReport], None] | None = None,
) -> RollupReport:
    """Rebuild each day from `first` to `last` (both included) of each of `tables`, one transaction per day:
    delete the day's rows, insert them summed from the sources, record RollupDay. `dry_run`: count the rows that
    would be written and write nothing. `progress(day, report)` is called after each day."""
    check_range(first=first, last=last)
    tables = check_tables(tables)
    report = RollupReport(dry_run=dry_run)
    day = first
    while day <= last:
        _rebuild_day(day, tables, report, dry_run=dry_run)
        if progress is not None:
            progress(day, report)
        day += timedelta(days=1)
    return report


def _rebuild_day(day: date, tables: tuple[str, ...], report: RollupReport, *, dry_run: bool) -> None:
    params = {"day": day, "zone": settings.TIME_ZONE}
    with transaction.atomic():
        if not dry_run:
            rollup_day_lock(day)
        built_at = timezone.now()
        with connection.cursor() as cursor:
            # A busy day's grouped rows (tens of thousands) fit in memory: hash them instead of sorting a million
            # entries first, which the default work_mem makes the planner choose. For this transaction only.
            cursor.execute(f"SET LOCAL work_mem = '{ROLLUP_WORK_MEM}'")
            for name in tables:
                rollup = ROLLUPS[name]
                started = time.perf_counter()
                if dry_run:
                    cursor.execute(f"SELECT count(*) FROM ({rollup.select}) AS would_be", params)
                    rows = cursor.fetchone()[0]
                else:
                    cursor.execute(f"DELETE FROM {rollup.table} WHERE day = %s", [day])
                    cursor.execute(f"INSERT INTO {rollup.table} ({rollup.columns}) {rollup.select}", params)
                    rows = cursor.rowcount
                    cursor.execute(_RECORD, [name, day, built_at, rows])
                report.add(name, day, rows, time.perf_counter() - started)


# The periodic pass ----------------------------------------------------------------------------------------------

_LATE_SALES_DAYS = """
SELECT c.invoice_date FROM loyalty_salesclaim c
WHERE c.status = 'approved' AND c.updated_at >= %(since)s AND c.invoice_date < %(before)s
UNION
SELECT l.invoice_date FROM loyalty_saleline l
WHERE l.sales_import_id IN (SELECT i.id FROM loyalty_salesimport i WHERE i.finished_at >= %(since)s)
    AND l.invoice_date < %(before)s
"""


def late_sales_days(*, since: datetime, before: date) -> list[date]:
    """Invoice dates before `before` whose sales changed since `since`: claims approved (or changed once approved)
    since then, and the lines of sell-out imports finished since then (found through the lines' import, which a
    block-range index serves)."""
    with connection.cursor() as cursor:
        cursor.execute(_LATE_SALES_DAYS, {"since": since, "before": before})
        return sorted(row[0] for row in cursor.fetchall())


def rollup_recent(now: datetime | None = None) -> RollupReport:
    """The periodic work: rebuild today and yesterday (the site's days) of every roll-up, and the older days of
    SalesDay whose sources changed since the previous run.

    Only sales can change an old day: points entries, claim events, invitations, activations and messages are
    stamped when they happen, so they land on today (or, for a transaction that began before midnight, on
    yesterday, which is rebuilt too). A sale counts on its invoice date, and a claim approved today or an import
    finished today can be about any earlier date: those dates are found from the rows changed since the previous
    run began (less LATE_MARGIN, for rows stamped before it began but committed after) and rebuilt. The previous
    run is this pass's own RollupDay record (rollup "recent", built_at = when it began), written when a run has
    succeeded, so a failed run's changes are looked for again; the first run has none and looks for nothing old
    (build the history with `manage.py rollup`). Rebuilding is idempotent, so finding a day twice costs time only.
    A provider's report of an open or click dated before yesterday is not looked for (no index finds it cheaply):
    the next rebuild of its day with the command counts it.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    yesterday = today - timedelta(days=1)
    previous = RollupDay.objects.filter(rollup=RECENT).order_by("-built_at").values_list("built_at", flat=True).first()
    report = RollupReport()
    for day in (yesterday, today):
        _rebuild_day(day, ALL, report, dry_run=False)
    if previous is not None:
        for day in late_sales_days(since=previous - LATE_MARGIN, before=yesterday):
            _rebuild_day(day, ("sales",), report, dry_run=False)
    days = len({day for days in report.days.values() for day in days})
    with connection.cursor() as cursor:
        cursor.execute(_RECORD, [RECENT, today, now, days])
    return report
