"""Posting many events at once: the bulk twin of earning.post_event and earning.reverse_source.

`BulkPoster(program).post(events, reversals)` evaluates each event with the same engine (engine.evaluate over
the rules that can match it, found once per kind of event), applies caps and budgets with engine.limit from a
limiter seeded with the locked rule and usage rows, and writes with COPY: one entry and one lot per posting,
then every touched account's balances with one UPDATE. It runs in the caller's transaction (one per batch),
so a failure posts nothing of the batch.

It keeps every promise of loyalty.services.ledger:
- idempotency keys are exactly earning.posting_key's (`{source_key}:r{rule_id}:{beneficiary}`) and the
  fingerprints exactly ledger.earn's / ledger.reverse's, so the per-event path and this one can never pay a
  line twice (the unique key refuses it; see `_write_earns`);
- locks are taken in the per-event path's order: budget rules (ascending id), then usage rows (rule, member,
  period), then accounts (ascending id);
- entries and allocations are only ever INSERTed (the append-only triggers are untouched); lots and account
  balances are UPDATEd under the account locks, by exactly the entries' sums.

Reversals (returns, credit notes) take back `returned / original quantity` of each earn entry the original
line posted, as earning.reverse_source does, rounding the running total so that several partial returns add
up to exactly the original points. Points are taken from the entry's own lot first, then from the account's
other lots soonest-to-expire first (ledger.reverse's rule). When the member has already spent them, what is
there is taken back and the rest is reported as a shortfall instead of failing the batch.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..constants import EntryKind
from ..engine import CompiledRule, Event, MemoryLimiter, Posting, evaluate, limit, period_start
from ..models import Program
from . import ledger
from .earning import published_rules

SOURCE_TYPE = "sale_line"
_JSON_UNSAFE = set('"\\') | {chr(c) for c in range(32)}


def copy_text(value: str) -> str:
    """A string as a field of COPY's text format (backslash, tab and line breaks escaped)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _json_string(value: str) -> str:
    """json.dumps(value) (ensure_ascii), quickly for the usual plain-ASCII case."""
    if value.isascii() and not _JSON_UNSAFE.intersection(value):
        return f'"{value}"'
    return json.dumps(value)


# Value objects -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reversal:
    """Take back what one line earned, in proportion to the quantity returned (a return or credit note).

    `key` is the return line's source key: the reversal entries' keys are `{key}:return:{earn entry id}`.
    `returned_before` is what earlier returns of the same original already took back (their quantities).
    """

    key: str
    original_key: str
    returned: Decimal
    original_quantity: Decimal
    returned_before: Decimal = Decimal(0)
    explanation: str = ""
    ref: int = 0  # the caller's reference (a file line number), echoed in shortfalls


@dataclass(frozen=True, slots=True)
class Shortfall:
    ref: int
    key: str
    account_id: int
    wanted: int
    taken: int

    @property
    def missing(self) -> int:
        return self.wanted - self.taken


@dataclass
class BatchResult:
    entries: int = 0
    points_earned: int = 0
    points_reversed: int = 0
    postings_limited: int = 0
    shortfalls: list[Shortfall] = field(default_factory=list)
    earned_by_key: dict[str, int] = field(default_factory=dict)  # event source key -> points posted


# Candidate rules ------------------------------------------------------------------------------------------


class RuleIndex:
    """For each kind of event (who acted, partner kind, tier, region, product): the rules that can match it,
    best first. Dates and minimums stay per event, in CompiledRule.matches. Removing rules that cannot match
    changes nothing in engine.evaluate (it walks the rules in order and stops only at a matching exclusive
    one), so evaluating with the candidates gives exactly what evaluating with all rules gives."""

    def __init__(self, rules: Sequence[CompiledRule]):
        self.rules = tuple(rules)
        self._cache: dict[tuple, tuple[CompiledRule, ...]] = {}

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
        )
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = tuple(rule for rule in self.rules if rule.matches_facts(event, role))
        return found

    def evaluate(self, event: Event, role: str | None = ...) -> list[Posting]:
        """engine.evaluate(event, all rules), evaluated over the candidates only."""
        candidates = self.candidates(event, role)
        return evaluate(event, candidates) if candidates else []


# The poster ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Earn:
    event: Event
    posting: Posting
    key: str
    points: int = 0
    account_id: int = 0


class BulkPoster:
    """Posts batches of events of one program. Keep one per import: it caches compiled rules, candidate
    lists and account ids between batches. Call `post` inside a transaction (one per batch)."""

    def __init__(self, program: Program, *, rules: Sequence[CompiledRule] | None = None, source_type=SOURCE_TYPE):
        self.program = program
        self.rules = tuple(published_rules(program) if rules is None else rules)
        self.index = RuleIndex(self.rules)
        self.budget_rule_ids = sorted({r.id for r in self.rules if r.budget_points is not None})
        self.source_type = source_type
        self._member_accounts: dict[int, int] = {}
        self._partner_accounts: dict[int, int] = {}
        self.entries_written = 0
        self.timings: dict[str, float] = defaultdict(float)  # seconds per step, for benchmarks

    # -- public -----------------------------------------------------------------------------------------

    def evaluate(self, events: Sequence[Event]) -> list[_Earn]:
        earns = []
        index_evaluate = self.index.evaluate
        for event in events:
            participants = event.participants
            if not participants:
                role = None
            elif len(participants) == 1 and participants[0].is_actor:
                role = participants[0].role_code
            else:
                role = ...
            postings = index_evaluate(event, role)
            if postings:
                source_key = event.source_key
                for posting in postings:
                    earns.append(_Earn(event, posting, f"{source_key}:r{posting.rule_id}:{posting.beneficiary_key}"))
        return earns

    def post(
        self, events: Sequence[Event], reversals: Sequence[Reversal] = (), *, evaluated: list[_Earn] | None = None
    ) -> BatchResult:
        """Evaluate and post `events` (or post `evaluated`, what `evaluate` returned for them), then the
        `reversals`, in the caller's transaction."""
        if not connection.in_atomic_block:
            raise RuntimeError("BulkPoster.post must run inside a transaction (one per batch).")
        result = BatchResult()
        clock = self._clock()
        earns = self.evaluate(events) if evaluated is None else [_Earn(e.event, e.posting, e.key) for e in evaluated]
        clock("evaluate")
        if not earns and not reversals:
            return result
        with connection.cursor() as cursor:
            old_entries = self._earn_entries(cursor, [r.original_key for r in reversals]) if reversals else {}
            budget_rules = set(self.budget_rule_ids)
            rule_ids = self.budget_rule_ids if reversals else sorted({e.posting.rule_id for e in earns} & budget_rules)
            budgets = self._lock_rules(cursor, rule_ids)
            usages = self._lock_usages(cursor, earns)
            self._limit(earns, budgets, usages, result)
            earns = [e for e in earns if e.points > 0]
            clock("limits")
            self._resolve_accounts(cursor, earns)
            account_ids = {e.account_id for e in earns}
            account_ids.update(row[1] for rows in old_entries.values() for row in rows)
            locked = self._lock_accounts(cursor, account_ids)
            clock("lock_accounts")
            deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # available, pending, lifetime_earned
            if earns:
                earns = self._write_earns(cursor, earns, budgets, usages, result)
                for earn in earns:
                    delta = deltas[earn.account_id]
                    delta[0] += earn.points
                    delta[2] += earn.points
            clock("write_earns")
            budget_back: dict[int, int] = defaultdict(int)
            if reversals:
                self._reverse(cursor, reversals, locked, deltas, budget_back, result)
            clock("reverse")
            self._move_balances(cursor, deltas)
            self._write_limits(cursor, budgets, usages, budget_back)
            clock("balances")
        self.entries_written += result.entries
        return result

    def _clock(self):
        last = [time.perf_counter()]

        def clock(phase: str) -> None:
            now = time.perf_counter()
            self.timings[phase] += now - last[0]
            last[0] = now

        return clock

    # -- caps and budgets (locked in the per-event path's order) -----------------------------------------

    def _lock_rules(self, cursor, rule_ids: list[int]) -> dict[int, list[int]]:
        """{rule id: [budget_used when locked, budget_used now]} for the budget rules, locked in id order."""
        if not rule_ids:
            return {}
        cursor.execute(
            "SELECT id, budget_used FROM loyalty_incentiverule WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [list(rule_ids)],
        )
        return {rule_id: [used, used] for rule_id, used in cursor.fetchall()}

    def _lock_usages(self, cursor, earns: list[_Earn]) -> dict[tuple[int, int, date], list[int]]:
        wanted = sorted(
            {
                (e.posting.rule_id, e.posting.member_id, period_start(e.posting.cap_period, e.event.occurred_on))
                for e in earns
                if e.posting.cap_points is not None and e.posting.member_id is not None
            }
        )
        if not wanted:
            return {}
        rules, members, starts = (list(column) for column in zip(*wanted, strict=True))
        cursor.execute(
            "INSERT INTO loyalty_ruleusage (rule_id, member_id, period_start, points) "
            "SELECT r, m, d, 0 FROM unnest(%s::bigint[], %s::bigint[], %s::date[]) AS u(r, m, d) "
            "ON CONFLICT (rule_id, member_id, period_start) DO NOTHING",
            [rules, members, starts],
        )
        cursor.execute(
            "SELECT u.rule_id, u.member_id, u.period_start, u.points FROM loyalty_ruleusage u "
            "JOIN unnest(%s::bigint[], %s::bigint[], %s::date[]) AS w(r, m, d) "
            "ON u.rule_id = w.r AND u.member_id = w.m AND u.period_start = w.d "
            "ORDER BY u.rule_id, u.member_id, u.period_start FOR UPDATE OF u",
            [rules, members, starts],
        )
        return {(r, m, d): [points, points] for r, m, d, points in cursor.fetchall()}

    def _limit(self, earns, budgets, usages, result: BatchResult) -> None:
        """engine.limit for every posting in order, from the locked totals; remembers the new totals."""
        limiter = MemoryLimiter(
            member_usage={key: value[0] for key, value in usages.items()},
            rule_usage={rule_id: value[0] for rule_id, value in budgets.items()},
        )
        for earn in earns:
            posting = earn.posting
            if posting.cap_points is None and posting.budget_points is None:
                earn.points = posting.points
                continue
            earn.points = limit(posting, earn.event.occurred_on, limiter)
            if earn.points < posting.points:
                result.postings_limited += 1
        for key, value in usages.items():
            value[1] = limiter.member_usage.get(key, value[0])
        for rule_id, value in budgets.items():
            value[1] = limiter.rule_usage.get(rule_id, value[0])

    def _write_limits(self, cursor, budgets, usages, budget_back: dict[int, int]) -> None:
        changed = [(key, new - old) for key, (old, new) in usages.items() if new != old]
        if changed:
            cursor.execute(
                "UPDATE loyalty_ruleusage u SET points = u.points + w.p "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::date[], %s::bigint[]) AS w(r, m, d, p) "
                "WHERE u.rule_id = w.r AND u.member_id = w.m AND u.period_start = w.d",
                [[k[0] for k, _ in changed], [k[1] for k, _ in changed], [k[2] for k, _ in changed]]
                + [[d for _, d in changed]],
            )
        totals = {rule_id: new - old for rule_id, (old, new) in budgets.items()}
        for rule_id, points in budget_back.items():
            if rule_id in budgets:
                totals[rule_id] = totals.get(rule_id, 0) - points
        totals = {rule_id: delta for rule_id, delta in totals.items() if delta}
        if totals:
            cursor.execute(
                "UPDATE loyalty_incentiverule r SET budget_used = GREATEST(r.budget_used + w.d, 0) "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS w(id, d) WHERE r.id = w.id",
                [list(totals), list(totals.values())],
            )

    # -- accounts ----------------------------------------------------------------------------------------

    def _resolve_accounts(self, cursor, earns: list[_Earn]) -> None:
        members = {e.posting.member_id for e in earns if e.posting.member_id is not None}
        partners = {e.posting.partner_id for e in earns if e.posting.member_id is None}
        self._ensure_accounts(cursor, "member_id", members - self._member_accounts.keys(), self._member_accounts)
        self._ensure_accounts(cursor, "partner_id", partners - self._partner_accounts.keys(), self._partner_accounts)
        for earn in earns:
            posting = earn.posting
            if posting.member_id is None:
                earn.account_id = self._partner_accounts[posting.partner_id]
            else:
                earn.account_id = self._member_accounts[posting.member_id]

    def _ensure_accounts(self, cursor, column: str, holders: set[int], cache: dict[int, int]) -> None:
        """Account ids of these members or partners, created (insert-if-absent, like ledger._account) when new."""
        if not holders:
            return
        holders = sorted(holders)
        select = f"SELECT {column}, id FROM loyalty_pointsaccount WHERE program_id = %s AND {column} = ANY(%s)"
        cursor.execute(select, [self.program.pk, holders])
        found = dict(cursor.fetchall())
        missing = [h for h in holders if h not in found]
        if missing:
            cursor.execute(
                f"INSERT INTO loyalty_pointsaccount (program_id, {column}, available, pending, lifetime_earned, "
                "redeemed, expired, created_at, updated_at) "
                "SELECT %s, h, 0, 0, 0, 0, 0, now(), now() FROM unnest(%s::bigint[]) AS h ON CONFLICT DO NOTHING",
                [self.program.pk, missing],
            )
            cursor.execute(select, [self.program.pk, missing])
            found.update(cursor.fetchall())
        cache.update(found)

    def _lock_accounts(self, cursor, account_ids) -> set[int]:
        ids = sorted(account_ids)
        if ids:
            cursor.execute("SELECT id FROM loyalty_pointsaccount WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])
            cursor.fetchall()
        return set(ids)

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

    # -- earns -------------------------------------------------------------------------------------------

    def _write_earns(self, cursor, earns: list[_Earn], budgets, usages, result: BatchResult) -> list[_Earn]:
        """COPY the entries and their lots. A key that already exists (the line was posted by another path)
        makes the COPY fail: then the batch's earns are planned again without the keys already posted."""
        try:
            with transaction.atomic():
                self._copy_earns(cursor, earns)
        except IntegrityError:
            keys = [e.key for e in earns]
            cursor.execute("SELECT idempotency_key FROM loyalty_pointsentry WHERE idempotency_key = ANY(%s)", [keys])
            posted = {row[0] for row in cursor.fetchall()}
            if not posted:
                raise
            earns = [e for e in earns if e.key not in posted]
            for earn in earns:
                earn.points = 0
            result.postings_limited = 0
            self._limit(earns, budgets, usages, result)
            earns = [e for e in earns if e.points > 0]
            if earns:
                self._copy_earns(cursor, earns)
        for earn in earns:
            result.entries += 1
            result.points_earned += earn.points
            source_key = earn.event.source_key
            result.earned_by_key[source_key] = result.earned_by_key.get(source_key, 0) + earn.points
        return earns

    def _copy_earns(self, cursor, earns: list[_Earn]) -> None:
        """COPY the entries while they are formatted (the server inserts as the rows arrive), then the lots."""
        entry_ids = allocate_ids(cursor, "loyalty_pointsentry", len(earns))
        expires = ledger._expiry(self.program, timezone.now())
        expires_text = expires.isoformat() if expires is not None else "\\N"
        source_type = self.source_type
        lots, chunk = [], []
        last_event = None
        source_json = source_copy = source_key_json = ""
        sha256 = hashlib.sha256
        columns = (
            "id, account_id, kind, available_delta, pending_delta, idempotency_key, fingerprint, source_type, "
            "source_id, explanation, details, expires_at"
        )
        with connection.wrap_database_errors, cursor.copy(f"COPY loyalty_pointsentry ({columns}) FROM STDIN") as copy:
            for earn, entry_id in zip(earns, entry_ids, strict=True):
                event, posting, points, account_id = earn.event, earn.posting, earn.points, earn.account_id
                if event is not last_event:
                    last_event = event
                    source_id = event.source_key[:64]
                    source_json = _json_string(source_id)
                    source_copy = copy_text(source_id)
                    source_key_json = _json_string(event.source_key)
                explanation = posting.explanation
                if points < posting.points:
                    explanation += f" — limited to {points} by the rule's cap or budget"
                fingerprint = sha256(
                    f'["earn", {account_id}, {points}, "{source_type}", {source_json}, null]'.encode()
                ).hexdigest()
                d = posting.details
                details = (
                    f'{{"rule_id": {d["rule_id"]}, "rule": {_json_string(d["rule"])}, "version": {d["version"]}, '
                    f'"total": {d["total"]}, "source": {source_key_json}, "paid": {points}}}'
                )
                chunk.append(
                    f"{entry_id}\t{account_id}\tearn\t{points}\t0\t{copy_text(earn.key)}\t{fingerprint}\t"
                    f"{source_type}\t{source_copy}\t{copy_text(explanation[:500])}\t{copy_text(details)}\t"
                    f"{expires_text}\n"
                )
                lots.append(f"{account_id}\t{entry_id}\t{points}\t{points}\tf\t{expires_text}\n")
                if len(chunk) >= 2000:
                    copy.write("".join(chunk))
                    chunk = []
            if chunk:
                copy.write("".join(chunk))
        copy_in(cursor, "loyalty_pointslot", "account_id, entry_id, points, remaining, is_pending, expires_at", lots)

    def _earn_entries(self, cursor, source_keys: Sequence[str]) -> dict[str, list[tuple]]:
        """{source key: [(entry id, account id, points, rule id), ...]}: the earn entries each line posted."""
        if not source_keys:
            return {}
        wanted = {key: f"{key}:r" for key in source_keys}
        cursor.execute(
            "SELECT id, account_id, available_delta + pending_delta, idempotency_key, details ->> 'rule_id', "
            "source_id FROM loyalty_pointsentry WHERE source_type = %s AND source_id = ANY(%s) AND kind = %s "
            "ORDER BY id",
            [self.source_type, sorted({key[:64] for key in source_keys}), EntryKind.EARN],
        )
        by_source_id = defaultdict(list)
        for row in cursor.fetchall():
            by_source_id[row[5]].append(row)
        found: dict[str, list[tuple]] = {}
        for key, prefix in wanted.items():
            found[key] = [
                (row[0], row[1], row[2], int(row[4]) if row[4] else None)
                for row in by_source_id.get(key[:64], ())
                if row[3].startswith(prefix)
            ]
        return found

    # -- reversals ---------------------------------------------------------------------------------------

    def _reverse(self, cursor, reversals, locked: set[int], deltas, budget_back, result: BatchResult) -> None:
        entries = self._earn_entries(cursor, [r.original_key for r in reversals])
        entry_ids = sorted({row[0] for rows in entries.values() for row in rows})
        late = {row[1] for rows in entries.values() for row in rows} - locked
        if late:  # an original posted by another path after we looked: lock its account too
            locked |= self._lock_accounts(cursor, late)
        reversed_before: dict[int, int] = defaultdict(int)
        own_lots: dict[int, list[list]] = defaultdict(list)  # entry id -> [[lot id, remaining, is_pending], ...]
        if entry_ids:
            cursor.execute(
                "SELECT reverses_id, -SUM(available_delta + pending_delta) FROM loyalty_pointsentry "
                "WHERE reverses_id = ANY(%s) GROUP BY reverses_id",
                [entry_ids],
            )
            reversed_before.update(cursor.fetchall())
            cursor.execute(
                "SELECT id, entry_id, remaining, is_pending FROM loyalty_pointslot "
                "WHERE entry_id = ANY(%s) AND remaining > 0 ORDER BY id",
                [entry_ids],
            )
            for lot_id, entry_id, remaining, is_pending in cursor.fetchall():
                own_lots[entry_id].append([lot_id, remaining, is_pending])
        lots: dict[int, list] = {}  # lot id -> [lot id, remaining, is_pending], shared by every list below
        for rows in own_lots.values():
            for lot in rows:
                lots[lot[0]] = lot
        other_lots: dict[int, list[list]] = {}  # account id -> open lots soonest-to-expire first (loaded lazily)
        planned = []  # (reversal, entry id, account id, available taken, pending taken, [(lot, n)], wanted)
        for reversal in reversals:
            for entry_id, account_id, points, rule_id in entries.get(reversal.original_key, ()):
                wanted = _proportional(points, reversal)
                wanted = min(wanted, points - reversed_before[entry_id])
                if wanted <= 0:
                    continue
                reversed_before[entry_id] += wanted
                taken = _take([lots[lot[0]] for lot in own_lots.get(entry_id, ())], wanted)
                left = wanted - sum(n for _, n in taken)
                if left:
                    if account_id not in other_lots:
                        other_lots[account_id] = self._open_lots(cursor, account_id, lots)
                    own = {lot[0] for lot in own_lots.get(entry_id, ())}
                    taken += _take([lot for lot in other_lots[account_id] if lot[0] not in own], left)
                total = sum(n for _, n in taken)
                if total < wanted:
                    reversed_before[entry_id] -= wanted - total
                    result.shortfalls.append(Shortfall(reversal.ref, reversal.key, account_id, wanted, total))
                if total <= 0:
                    continue
                pending = sum(n for lot, n in taken if lot[2])
                planned.append((reversal, entry_id, account_id, total - pending, pending, taken, rule_id, wanted))
        if not planned:
            return
        entry_ids = allocate_ids(cursor, "loyalty_pointsentry", len(planned))
        entry_rows, allocation_rows = io.StringIO(), io.StringIO()
        touched: dict[int, int] = {}
        for (reversal, original_id, account_id, available, pending, taken, rule_id, wanted), entry_id in zip(
            planned, entry_ids, strict=True
        ):
            total = available + pending
            key = f"{reversal.key}:return:{original_id}"
            fingerprint = ledger._fingerprint("reverse", original_id, total)
            text = reversal.explanation or f"Return {reversal.key}"
            text += f": {total} points taken back"
            if total < wanted:
                text += f" ({wanted - total} could not be: already spent)"
            details = json.dumps(
                {"return_of": reversal.original_key, "quantity": str(reversal.returned), "rule_id": rule_id}
            )
            entry_rows.write(
                f"{entry_id}\t{account_id}\treverse\t{-available}\t{-pending}\t{copy_text(key)}\t{fingerprint}\t"
                f"{self.source_type}\t{copy_text(reversal.key[:64])}\t{copy_text(text[:500])}\t{copy_text(details)}\t"
                f"{original_id}\n"
            )
            for lot, n in taken:
                allocation_rows.write(f"{lot[0]}\t{entry_id}\t{n}\n")
                touched[lot[0]] = lot[1]
            delta = deltas[account_id]
            delta[0] -= available
            delta[1] -= pending
            delta[2] -= total
            result.entries += 1
            result.points_reversed += total
            if rule_id is not None and rule_id in self.budget_rule_ids:
                budget_back[rule_id] += total
        copy_in(
            cursor,
            "loyalty_pointsentry",
            "id, account_id, kind, available_delta, pending_delta, idempotency_key, fingerprint, source_type, "
            "source_id, explanation, details, reverses_id",
            entry_rows.getvalue(),
        )
        copy_in(cursor, "loyalty_pointsallocation", "lot_id, entry_id, points", allocation_rows.getvalue())
        cursor.execute(
            "UPDATE loyalty_pointslot l SET remaining = t.remaining FROM unnest(%s::bigint[], %s::bigint[]) "
            "AS t(id, remaining) WHERE l.id = t.id",
            [list(touched), list(touched.values())],
        )

    def _open_lots(self, cursor, account_id: int, lots: dict[int, list]) -> list[list]:
        """The account's available lots soonest-to-expire first (ledger._open_lots), sharing loaded ones."""
        cursor.execute(
            "SELECT id, remaining, is_pending FROM loyalty_pointslot WHERE account_id = %s AND remaining > 0 "
            "AND NOT is_pending ORDER BY expires_at ASC NULLS LAST, id",
            [account_id],
        )
        found = []
        for lot_id, remaining, is_pending in cursor.fetchall():
            found.append(lots.setdefault(lot_id, [lot_id, remaining, is_pending]))
        return found


def _proportional(points: int, reversal: Reversal) -> int:
    """This return's share of an earn of `points`: the running total after it minus the running total before
    it, each rounded half up, so that returning everything in parts takes back exactly `points`."""
    quantity = reversal.original_quantity

    def share(returned: Decimal) -> int:
        return int((Decimal(points) * returned / quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    before = reversal.returned_before
    return share(min(before + reversal.returned, quantity)) - share(min(before, quantity))


def _take(lots: list[list], points: int) -> list[tuple[list, int]]:
    taken, left = [], points
    for lot in lots:
        if left == 0:
            break
        amount = min(lot[1], left)
        if amount <= 0:
            continue
        lot[1] -= amount
        left -= amount
        taken.append((lot, amount))
    return taken


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
