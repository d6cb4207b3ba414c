"""Posting a sell-out import through the ledger: one entry per account and import.

One of the two modules that write the points tables; the other is loyalty.services.ledger (one event at a
time), whose promises this one keeps. The lines' shares come from loyalty.engine.bulk (`LineEvaluator`, no
database); `ImportLedger` (the writer's transaction, one per import) applies caps and budgets in file order from
the rows it has locked, sums the points per beneficiary, and at the end writes one earn entry (with its lot) per
account and one reversal entry per earn entry that returns take from, then every balance in one UPDATE.

One entry per import and account (not per line) is what keeps a million-line import cheap: the ledger's
entries, lots and their indexes grow with the number of accounts an import pays, not with its lines. Each
line keeps its own share of those entries (`SaleLine.points` and `postings`), so a statement entry opens on
the lines behind it, with their arithmetic, and a return takes back exactly what its line earned. It keeps
every promise of loyalty.services.ledger: entries and allocations are only INSERTed (append-only triggers),
lots and balances move under the accounts' row locks by exactly the entries' sums, and the entry keys
(`sales-import:{import id}:m{member id}` / `:p{partner id}` and `...:return:{entry id}`) make the posting
happen once. Locks are taken in the per-event path's order: budget rules (ascending id) when the import
starts, usage rows as lines need them, accounts (ascending id) at the end.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

from loyalty.common.events import publish
from loyalty.constants import EntryKind, EntrySource
from loyalty.engine.bulk import Share
from loyalty.engine.formulas import ONE
from loyalty.engine.limits import MemoryLimiter, limit, period_start
from loyalty.lock_objects import accounts_lock_sql, budget_rules_lock_sql, rule_usages_lock_sql
from loyalty.models import Program
from loyalty.services import ledger, standings

SOURCE_TYPE = EntrySource.SALES_IMPORT.value  # in COPY text and fingerprints
# The entries' kinds in fingerprints (and spelled out in the COPY text: earn, reverse).
EARN, REVERSE = EntryKind.EARN.value, EntryKind.REVERSE.value


def copy_text(value: str) -> str:
    """A string as a field of COPY's text format (backslash, tab and line breaks escaped)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


# Value objects -------------------------------------------------------------------------------------------


class _Capped(NamedTuple):
    """The fields of a Posting that engine.limits.limit reads."""

    rule_id: int
    member_id: int | None
    points: int
    cap_points: int | None
    cap_period: str
    budget_points: int | None


@dataclass(slots=True)
class OpenLot:
    """A lot a return may take points back from (ledger.take_lots lowers `remaining`)."""

    id: int
    remaining: int
    is_pending: bool


@dataclass(frozen=True, slots=True)
class Return:
    """One return line taking back its share of what its original line paid (see `_proportional`)."""

    returned: Decimal
    original_quantity: Decimal
    returned_before: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Shortfall:
    ref: int
    account_id: int
    wanted: int
    taken: int

    @property
    def missing(self) -> int:
        return self.wanted - self.taken


@dataclass
class LedgerResult:
    entries: int = 0
    points_earned: int = 0
    points_reversed: int = 0
    shortfalls: list[Shortfall] = field(default_factory=list)


# Posting one import ----------------------------------------------------------------------------------------


class ImportLedger:
    """The ledger side of one import, inside the writer's transaction (see the module docstring).

    begin() → [limit() and add() per batch, add_return() per return] → finish(). `snapshot()`/`restore()`
    undo a batch's limits when the batch has to be written again."""

    def __init__(self, program: Program, *, sales_import_id: int, label: str, budget_rule_ids: Sequence[int]):
        self.program = program
        self.import_id = sales_import_id
        self.label = label
        self.budget_rule_ids = sorted(budget_rule_ids)
        self.limiter = MemoryLimiter()
        self._usage_start: dict[tuple[int, int, date], int] = {}
        self._budget_start: dict[int, int] = {}
        self.earned: dict[tuple[str, int], int] = defaultdict(int)  # ("m", member id) / ("p", partner id)
        self.lines: dict[tuple[str, int], int] = defaultdict(int)
        # (original line's import id, beneficiary) -> [points wanted, return lines, first file line]
        self.returns: dict[tuple[int, tuple[str, int]], list[int]] = {}
        self.budget_back: dict[int, int] = defaultdict(int)
        self.taken_back: list[tuple[int, int]] = []  # (earn entry id, points) the returns took back (standings)

    def begin(self, cursor) -> None:
        """Lock the program's budget rules for the whole import (ascending ids, like the per-event path)."""
        if self.budget_rule_ids:
            self._budget_start = budget_rules_lock_sql(cursor, self.budget_rule_ids)
            self.limiter.rule_usage.update(self._budget_start)

    def snapshot(self) -> tuple[dict, dict]:
        return dict(self.limiter.member_usage), dict(self.limiter.rule_usage)

    def restore(self, snapshot: tuple[dict, dict]) -> None:
        self.limiter.member_usage, self.limiter.rule_usage = dict(snapshot[0]), dict(snapshot[1])

    def lock_usages(self, cursor, keys: set[tuple[int, int, date]]) -> None:
        """Create (if absent) and lock the usage rows of caps that these lines need, once per import."""
        wanted = sorted(keys - self._usage_start.keys())
        if not wanted:
            return
        rules, members, starts = (list(column) for column in zip(*wanted, strict=True))
        cursor.execute(
            "INSERT INTO loyalty_ruleusage (rule_id, member_id, period_start, points) "
            "SELECT r, m, d, 0 FROM unnest(%s::bigint[], %s::bigint[], %s::date[]) AS u(r, m, d) "
            "ON CONFLICT (rule_id, member_id, period_start) DO NOTHING",
            [rules, members, starts],
        )
        for rule_id, member_id, start, points in rule_usages_lock_sql(cursor, rules, members, starts):
            self._usage_start[(rule_id, member_id, start)] = points
            self.limiter.member_usage[(rule_id, member_id, start)] = points

    @staticmethod
    def usage_keys(share: Share, member_id: int | None, day: date) -> tuple[int, int, date] | None:
        if share.cap_points is None or not share.to_member or member_id is None:
            return None
        return (share.rule_id, member_id, period_start(share.cap_period, day))

    def limit(self, share: Share, member_id: int | None, day: date) -> int:
        """engine.limits.limit for one share, in file order, from the locked totals."""
        capped = _Capped(share.rule_id, member_id if share.to_member else None, share.points, share.cap_points,
                         share.cap_period, share.budget_points)  # fmt: skip
        return limit(capped, day, self.limiter)

    def add(self, beneficiary: tuple[str, int], points: int, new_line: bool = True) -> None:
        """Points of one share; `new_line`: the first share of its line for this beneficiary (lines are counted)."""
        self.earned[beneficiary] += points
        if new_line:
            self.lines[beneficiary] += 1

    def add_return(self, original_import_id: int, beneficiary: tuple[str, int], rule_id: int, points: int,
                   ref: int) -> None:  # fmt: skip
        group = self.returns.get((original_import_id, beneficiary))
        if group is None:
            self.returns[(original_import_id, beneficiary)] = [points, 1, ref]
        else:
            group[0] += points
            group[1] += 1
        if rule_id in self.budget_rule_ids:
            self.budget_back[rule_id] += points

    # -- the end ------------------------------------------------------------------------------------------

    def finish(self, cursor) -> LedgerResult:
        result = LedgerResult()
        earned = {holder: points for holder, points in self.earned.items() if points > 0}
        holders = set(earned) | {holder for _, holder in self.returns}
        accounts = self._accounts(cursor, holders)
        originals = self._original_entries(cursor, accounts)
        locked = sorted(set(accounts.values()) | {row[1] for row in originals.values()})
        accounts_lock_sql(cursor, locked)
        deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # available, pending, lifetime_earned
        own_entries = self._write_earns(cursor, earned, accounts, deltas, result)
        for (import_id, holder), entry in own_entries.items():
            originals.setdefault((import_id, holder), entry)
        self._reverse(cursor, originals, deltas, result)
        self._move_balances(cursor, deltas)
        self._write_limits(cursor)
        # The period standings: what this import paid (one statement), and what its returns took back.
        paid = [(h, None, points) if kind == "m" else (None, h, points) for (kind, h), points in earned.items()]
        standings.standings_add(program=self.program, rows=paid)
        standings.standings_take_back(entries=self.taken_back)
        return result

    def _key(self, import_id: int, holder: tuple[str, int]) -> str:
        return f"sales-import:{import_id}:{holder[0]}{holder[1]}"

    def _accounts(self, cursor, holders: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Account ids of these members and partners, created (insert-if-absent, like ledger._account) when new."""
        found: dict[tuple[str, int], int] = {}
        for prefix, column in (("m", "member_id"), ("p", "partner_id")):
            ids = sorted(holder[1] for holder in holders if holder[0] == prefix)
            if not ids:
                continue
            cursor.execute(
                f"INSERT INTO loyalty_pointsaccount (program_id, {column}, available, pending, lifetime_earned, "
                "redeemed, expired, created_at, updated_at) "
                "SELECT %s, h, 0, 0, 0, 0, 0, now(), now() FROM unnest(%s::bigint[]) AS h ON CONFLICT DO NOTHING",
                [self.program.pk, ids],
            )
            cursor.execute(
                f"SELECT {column}, id FROM loyalty_pointsaccount WHERE program_id = %s AND {column} = ANY(%s)",
                [self.program.pk, ids],
            )
            found.update(((prefix, holder), account_id) for holder, account_id in cursor.fetchall())
        return found

    def _original_entries(self, cursor, accounts) -> dict[tuple[int, tuple[str, int]], tuple[int, int, int]]:
        """{(import id, holder): (entry id, account id, points)} of the earlier imports' entries that returns
        take from."""
        wanted = {self._key(import_id, holder): (import_id, holder) for import_id, holder in self.returns
                  if import_id != self.import_id}  # fmt: skip
        if not wanted:
            return {}
        cursor.execute(
            "SELECT idempotency_key, id, account_id, available_delta + pending_delta FROM loyalty_pointsentry "
            "WHERE idempotency_key = ANY(%s)",
            [sorted(wanted)],
        )
        return {wanted[key]: (entry_id, account_id, points) for key, entry_id, account_id, points in cursor.fetchall()}

    def _write_earns(self, cursor, earned, accounts, deltas, result) -> dict:
        """One earn entry and one lot per account; returns {(this import, holder): (entry id, account id, points)}."""
        if not earned:
            return {}
        holders = sorted(earned)
        entry_ids = allocate_ids(cursor, "loyalty_pointsentry", len(holders))
        expires = ledger._expiry(self.program, timezone.now())
        expires_text = expires.isoformat() if expires is not None else "\\N"
        entries, lots, written = io.StringIO(), io.StringIO(), {}
        for holder, entry_id in zip(holders, entry_ids, strict=True):
            points, account_id, lines = earned[holder], accounts[holder], self.lines[holder]
            key = self._key(self.import_id, holder)
            fingerprint = ledger._fingerprint(EARN, account_id, points, SOURCE_TYPE, str(self.import_id), None)
            text = f"{lines:,} sale {'line' if lines == 1 else 'lines'} from {self.label}"
            details = json.dumps({"sales_import": self.import_id, "lines": lines})
            entries.write(
                f"{entry_id}\t{account_id}\tearn\t{points}\t0\t{key}\t{fingerprint}\t{SOURCE_TYPE}\t"
                f"{self.import_id}\t{copy_text(text[:500])}\t{copy_text(details)}\t{expires_text}\n"
            )
            lots.write(f"{account_id}\t{entry_id}\t{points}\t{points}\tf\t{expires_text}\n")
            delta = deltas[account_id]
            delta[0] += points
            delta[2] += points
            written[(self.import_id, holder)] = (entry_id, account_id, points)
            result.entries += 1
            result.points_earned += points
        copy_in(
            cursor,
            "loyalty_pointsentry",
            "id, account_id, kind, available_delta, pending_delta, idempotency_key, fingerprint, source_type, "
            "source_id, explanation, details, expires_at",
            entries.getvalue(),
        )
        copy_in(
            cursor, "loyalty_pointslot", "account_id, entry_id, points, remaining, is_pending, expires_at",
            lots.getvalue(),
        )  # fmt: skip
        for (_import_id, (kind, holder)), (entry_id, account_id, points) in written.items():
            publish(
                "points.earned",
                program_id=self.program.pk,
                data={"account_id": account_id, "member_id": holder if kind == "m" else None,
                      "partner_id": holder if kind == "p" else None, "points": points, "entry_id": entry_id,
                      "source_type": SOURCE_TYPE, "source_id": str(self.import_id)},
            )  # fmt: skip
        return written

    def _reverse(self, cursor, originals, deltas, result: LedgerResult) -> None:
        """One reversal entry per original entry that this import's returns take from: from that entry's own
        lot first, then from the account's other lots soonest-to-expire first (ledger.reverse's rule). What was
        already spent cannot be taken back: it is reported as a shortfall."""
        groups = []  # (original entry id, account id, original points, wanted, lines, ref)
        for (import_id, holder), (wanted, lines, ref) in sorted(self.returns.items(), key=lambda item: item[1][2]):
            original = originals.get((import_id, holder))
            if original is None or wanted <= 0:
                continue  # the line earned nothing for this holder (a line from before postings were kept)
            groups.append((*original, wanted, lines, ref))
        if not groups:
            return
        entry_ids = [group[0] for group in groups]
        cursor.execute(
            "SELECT reverses_id, -SUM(available_delta + pending_delta) FROM loyalty_pointsentry "
            "WHERE reverses_id = ANY(%s) GROUP BY reverses_id",
            [entry_ids],
        )
        reversed_before = dict(cursor.fetchall())
        cursor.execute(
            "SELECT id, entry_id, remaining, is_pending FROM loyalty_pointslot WHERE entry_id = ANY(%s) "
            "AND remaining > 0 ORDER BY id",
            [entry_ids],
        )
        lots: dict[int, OpenLot] = {}
        own_lots: dict[int, list[OpenLot]] = defaultdict(list)
        for lot_id, entry_id, remaining, is_pending in cursor.fetchall():
            lot = lots[lot_id] = OpenLot(lot_id, remaining, is_pending)
            own_lots[entry_id].append(lot)
        other_lots: dict[int, list[OpenLot]] = {}
        planned = []
        for entry_id, account_id, points, wanted, lines, ref in groups:
            wanted = min(wanted, points - reversed_before.get(entry_id, 0))
            if wanted <= 0:
                continue
            taken = ledger.take_lots(own_lots.get(entry_id, []), wanted)
            left = wanted - sum(n for _, n in taken)
            if left:
                if account_id not in other_lots:
                    other_lots[account_id] = self._open_lots(cursor, account_id, lots)
                own = {lot.id for lot in own_lots.get(entry_id, ())}
                taken += ledger.take_lots([lot for lot in other_lots[account_id] if lot.id not in own], left)
            total = sum(n for _, n in taken)
            if total < wanted:
                result.shortfalls.append(Shortfall(ref, account_id, wanted, total))
            if total > 0:
                planned.append((entry_id, account_id, wanted, total, lines, taken))
        if not planned:
            return
        new_ids = allocate_ids(cursor, "loyalty_pointsentry", len(planned))
        entries, allocations, touched = io.StringIO(), io.StringIO(), {}
        for (original_id, account_id, wanted, total, lines, taken), entry_id in zip(planned, new_ids, strict=True):
            pending = sum(n for lot, n in taken if lot.is_pending)
            available = total - pending
            key = f"sales-import:{self.import_id}:return:{original_id}"
            fingerprint = ledger._fingerprint(REVERSE, original_id, total)
            text = f"{lines:,} {'return' if lines == 1 else 'returns'} from {self.label}: {total:,} points taken back"
            if total < wanted:
                text += f" ({wanted - total:,} could not be: already spent)"
            details = json.dumps(
                {"sales_import": self.import_id, "lines": lines, "wanted": wanted, "reverses_kind": EARN}
            )
            entries.write(
                f"{entry_id}\t{account_id}\treverse\t{-available}\t{-pending}\t{key}\t{fingerprint}\t"
                f"{SOURCE_TYPE}\t{self.import_id}\t{copy_text(text[:500])}\t{copy_text(details)}\t{original_id}\n"
            )
            for lot, n in taken:
                allocations.write(f"{lot.id}\t{entry_id}\t{n}\n")
                touched[lot.id] = lot.remaining
            delta = deltas[account_id]
            delta[0] -= available
            delta[1] -= pending
            delta[2] -= total
            result.entries += 1
            result.points_reversed += total
            self.taken_back.append((original_id, total))
        copy_in(
            cursor,
            "loyalty_pointsentry",
            "id, account_id, kind, available_delta, pending_delta, idempotency_key, fingerprint, source_type, "
            "source_id, explanation, details, reverses_id",
            entries.getvalue(),
        )
        copy_in(cursor, "loyalty_pointsallocation", "lot_id, entry_id, points", allocations.getvalue())
        cursor.execute(
            "UPDATE loyalty_pointslot l SET remaining = t.remaining FROM unnest(%s::bigint[], %s::bigint[]) "
            "AS t(id, remaining) WHERE l.id = t.id",
            [list(touched), list(touched.values())],
        )

    def _open_lots(self, cursor, account_id: int, lots: dict[int, OpenLot]) -> list[OpenLot]:
        """The account's available lots soonest-to-expire first (ledger._open_lots), sharing loaded ones."""
        cursor.execute(
            "SELECT id, remaining, is_pending FROM loyalty_pointslot WHERE account_id = %s AND remaining > 0 "
            "AND NOT is_pending ORDER BY expires_at ASC NULLS LAST, id",
            [account_id],
        )
        rows = cursor.fetchall()
        return [lots.setdefault(lot_id, OpenLot(lot_id, remaining, pending)) for lot_id, remaining, pending in rows]

    def _move_balances(self, cursor, deltas: dict[int, list[int]]) -> None:
        rows = [(account_id, *d) for account_id, d in deltas.items() if any(d)]
        if not rows:
            return
        ids, available, pending, earned = (list(column) for column in zip(*rows, strict=True))
        cursor.execute(
            "UPDATE loyalty_pointsaccount a SET available = a.available + d.av, pending = a.pending + d.pe, "
            "lifetime_earned = a.lifetime_earned + d.le, updated_at = now() "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) AS d(id, av, pe, le) "
            "WHERE a.id = d.id",
            [ids, available, pending, earned],
        )

    def _write_limits(self, cursor) -> None:
        changed = [(key, self.limiter.member_usage[key] - start) for key, start in self._usage_start.items()
                   if self.limiter.member_usage[key] != start]  # fmt: skip
        if changed:
            cursor.execute(
                "UPDATE loyalty_ruleusage u SET points = u.points + w.p "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::date[], %s::bigint[]) AS w(r, m, d, p) "
                "WHERE u.rule_id = w.r AND u.member_id = w.m AND u.period_start = w.d",
                [[k[0] for k, _ in changed], [k[1] for k, _ in changed], [k[2] for k, _ in changed]]
                + [[d for _, d in changed]],
            )
        totals = {rule_id: self.limiter.rule_usage.get(rule_id, start) - start - self.budget_back.get(rule_id, 0)
                  for rule_id, start in self._budget_start.items()}  # fmt: skip
        totals = {rule_id: delta for rule_id, delta in totals.items() if delta}
        if totals:
            cursor.execute(
                "UPDATE loyalty_incentiverule r SET budget_used = GREATEST(r.budget_used + w.d, 0) "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS w(id, d) WHERE r.id = w.id",
                [list(totals), list(totals.values())],
            )


def proportional(points: int, line: Return) -> int:
    """A return's share of `points` its original line earned: the running total after it minus the running
    total before it, each rounded half up, so that returning everything in parts takes back exactly `points`."""
    quantity = line.original_quantity

    def share(returned: Decimal) -> int:
        return int((Decimal(points) * returned / quantity).quantize(ONE, rounding=ROUND_HALF_UP))

    before = line.returned_before
    return share(min(before + line.returned, quantity)) - share(min(before, quantity))


# Planner statistics -----------------------------------------------------------------------------------------

STATISTICS_TABLES = ("loyalty_saleline", "loyalty_pointsentry", "loyalty_pointslot", "loyalty_ruleusage")


def refresh_statistics(tables: Sequence[str] = STATISTICS_TABLES) -> list[str]:
    """ANALYZE the tables a bulk load grows when their planner statistics are missing or stale (changed by
    more than a fifth since, autovacuum's own rule), in case autovacuum is off or behind: without them
    PostgreSQL may scan millions of entries to find a few hundred. Returns the tables analysed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) AND n_mod_since_analyze > 1000 "
            "AND (COALESCE(last_analyze, last_autoanalyze) IS NULL OR n_mod_since_analyze > n_live_tup / 5)",
            [list(tables)],
        )
        stale = sorted(row[0] for row in cursor.fetchall())
        for table in stale:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    return stale


# COPY helpers --------------------------------------------------------------------------------------------


def allocate_ids(cursor, table: str, count: int) -> list[int]:
    """`count` ids from the table's identity sequence (safe next to concurrent inserts)."""
    if count <= 0:
        return []
    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
    return [row[0] for row in cursor.fetchall()]


def copy_in(cursor, table: str, columns: str, rows: str | list[str]) -> None:
    """COPY rows already in COPY's text format (tab-separated, escaped, each ending with a line break)."""
    if not rows:
        return
    with connection.wrap_database_errors, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        if isinstance(rows, str):
            copy.write(rows)
        else:
            for start in range(0, len(rows), 2000):
                copy.write("".join(rows[start : start + 2000]))
