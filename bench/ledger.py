"""The ledger benchmark: spends per second through loyalty.services.ledger.spend, next to the same transaction in
plain SQL run by pgbench, on one hot account and on 100,000 spread accounts.

4 OS processes (each with django.setup() and its own database connection) call spend(account, 1 point, a new
key) in a loop for --duration seconds after --warmup seconds: (a) all on one hot company account with a huge
balance, (b) each on a random one of 100,000 member accounts. pgbench runs the raw SQL version with 4 clients
for the same time: lock the account row FOR UPDATE, insert the entry, take the point from the
soonest-to-expire open lot, insert the allocation, move the balances. Every spend of both kinds keeps the
books balanced, so loyalty.selectors.ledger.ledger_problems() must find nothing before and after the run, and every
successful spend must have posted exactly one entry. The CPU time per spend of the Python processes, pgbench and
their PostgreSQL backends is read from /proc (same machine only), to tell where the time goes.

The data (database <name>_ledger): the demo channel at scale 334 (partners.demo) for the members (100,200),
then, written once with COPY by LedgerRows below, a program with one hot account (3 lots of 10^12 points) and
100,000 accounts with 3 lots of 10,000 points each, each lot with its earn entry. Re-runs reuse it.

Target: the service at least 0.25 of the raw SQL rate, on both kinds of account.
"""

import hashlib
import os
import re
import resource
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench import harness
from bench.harness import BenchError, Options

NAME = "ledger"
DESCRIPTION = "ledger.spend in 4 processes on a hot account and on 100,000 accounts vs the same SQL in pgbench"

PROCESSES = 4
MIN_RATIO = 0.25
MEMBER_SCALE = 334  # demo channel blocks: 100,200 members, enough for one account each
SPREAD_ACCOUNTS = 100_000
LOTS_PER_ACCOUNT = 3
POINTS_PER_LOT = 10_000
HOT_POINTS_PER_LOT = 10**12
PROGRAM_SLUG = "bench-ledger"
WORKER_START_MARGIN = 8.0  # seconds for the worker processes to start and set Django up before the warm-up ends
SPEND_TEXT = "Benchmark spend"


# Building ledger data with COPY ----------------------------------------------------------------------------------


class LedgerRows:
    """Accounts of one program with their entries, lots and allocations, built in memory and written with COPY.

    Earns add an entry and a lot expiring `expiry` later; spends add an entry and take the points from the
    account's lots soonest-to-expire first, recording an allocation per lot, as loyalty.services.ledger does.
    The balances are the sums of the entries, so everything loyalty.selectors.ledger.ledger_problems() checks holds.
    Entries get ids in the order they are added (statement order is by id): add them in time order, interleaving
    accounts as real activity would. Times are POSIX seconds; each account's must not go backwards.
    """

    def __init__(self, *, program_id: int, expiry: timedelta, key_prefix: str):
        self.program_id = program_id
        self.expiry = expiry.total_seconds()
        self.key_prefix = key_prefix
        self.holders: list[tuple[int | None, int | None]] = []  # (member_id, partner_id) per account
        self.available, self.earned, self.redeemed = array("q"), array("q"), array("q")
        self.last_at = array("d")
        self.open_lots: list[deque] = []  # per account: lot indexes with points left, soonest-to-expire first
        self.entry_account, self.entry_delta, self.entry_at, self.entry_text = (
            array("q"),
            array("q"),
            array("d"),
            array("l"),
        )
        self.texts: dict[str, int] = {}
        self.lot_entry, self.lot_points, self.lot_remaining = array("q"), array("q"), array("q")
        self.allocation_lot, self.allocation_entry, self.allocation_points = array("q"), array("q"), array("q")

    def __len__(self) -> int:
        return len(self.entry_account)

    def add_account(self, *, member_id: int | None = None, partner_id: int | None = None) -> int:
        if (member_id is None) == (partner_id is None):
            raise ValueError("An account belongs to a member or to a partner.")
        self.holders.append((member_id, partner_id))
        for column in (self.available, self.earned, self.redeemed):
            column.append(0)
        self.last_at.append(0.0)
        self.open_lots.append(deque())
        return len(self.holders) - 1

    def _entry(self, account: int, delta: int, at: float, text: str) -> int:
        if at < self.last_at[account]:
            raise ValueError(f"Entries of account {account} must be added in time order.")
        self.last_at[account] = at
        self.entry_account.append(account)
        self.entry_delta.append(delta)
        self.entry_at.append(at)
        self.entry_text.append(self.texts.setdefault(text, len(self.texts)))
        return len(self.entry_account) - 1

    def earn(self, account: int, points: int, at: float, text: str = "Points earned") -> int:
        if points <= 0:
            raise ValueError("An earn adds points.")
        entry = self._entry(account, points, at, text)
        self.lot_entry.append(entry)
        self.lot_points.append(points)
        self.lot_remaining.append(points)
        self.open_lots[account].append(len(self.lot_entry) - 1)
        self.available[account] += points
        self.earned[account] += points
        return entry

    def spend(self, account: int, points: int, at: float, text: str = "Points spent") -> int:
        if not 0 < points <= self.available[account]:
            raise ValueError(f"Account {account} cannot spend {points} of {self.available[account]} points.")
        entry = self._entry(account, -points, at, text)
        left, lots = points, self.open_lots[account]
        while left:
            lot = lots[0]
            taken = min(self.lot_remaining[lot], left)
            self.lot_remaining[lot] -= taken
            left -= taken
            self.allocation_lot.append(lot)
            self.allocation_entry.append(entry)
            self.allocation_points.append(taken)
            if self.lot_remaining[lot] == 0:
                lots.popleft()
        self.available[account] -= points
        self.redeemed[account] += points
        return entry

    def write_and_report(self, started: float) -> dict:
        """`write` on the default connection, then print what was written and the time since `started`."""
        from django.db import connection

        with connection.cursor() as cursor:
            written = self.write(cursor)
        print(
            f"wrote {written['entries']:,} entries, {written['lots']:,} lots, {written['allocations']:,} allocations "
            f"on {written['accounts']:,} accounts with COPY in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        return written

    def write(self, cursor) -> dict:
        """Write everything in the caller's transaction; returns the id ranges and row counts."""
        from loyalty.models import PointsAccount, PointsAllocation, PointsEntry, PointsLot

        accounts = allocate_ids(cursor, PointsAccount, len(self.holders))
        entries = allocate_ids(cursor, PointsEntry, len(self.entry_account))
        lots = allocate_ids(cursor, PointsLot, len(self.lot_entry))
        now = datetime.now(UTC)
        last = [datetime.fromtimestamp(at, UTC) if at else now for at in self.last_at]
        copy_rows(
            cursor,
            PointsAccount,
            ["id", "program", "member", "partner", "available", "pending", "lifetime_earned", "redeemed", "expired"]
            + ["created_at", "updated_at"],
            (
                (accounts[i], self.program_id, member, partner, self.available[i], 0, self.earned[i])
                + (self.redeemed[i], 0, now, last[i])
                for i, (member, partner) in enumerate(self.holders)
            ),
        )
        texts = list(self.texts)
        prefix = self.key_prefix

        def entry_rows():
            for i, delta in enumerate(self.entry_delta):
                at = datetime.fromtimestamp(self.entry_at[i], UTC)
                key = f"{prefix}:{entries[i]}"
                earn = delta > 0
                yield (
                    entries[i],
                    accounts[self.entry_account[i]],
                    "earn" if earn else "spend",
                    delta,
                    0,
                    key,
                    hashlib.sha256(key.encode()).hexdigest(),
                    "bench",
                    "",
                    texts[self.entry_text[i]],
                    "{}",
                    at + timedelta(seconds=self.expiry) if earn else None,
                    at,
                )

        copy_rows(
            cursor,
            PointsEntry,
            ["id", "account", "kind", "available_delta", "pending_delta", "idempotency_key", "fingerprint"]
            + ["source_type", "source_id", "explanation", "details", "expires_at", "created_at"],
            entry_rows(),
        )
        copy_rows(
            cursor,
            PointsLot,
            ["id", "account", "entry", "points", "remaining", "is_pending", "expires_at"],
            (
                (
                    lots[i],
                    accounts[self.entry_account[entry]],
                    entries[entry],
                    self.lot_points[i],
                    self.lot_remaining[i],
                    False,
                    datetime.fromtimestamp(self.entry_at[entry] + self.expiry, UTC),
                )
                for i, entry in enumerate(self.lot_entry)
            ),
        )
        copy_rows(
            cursor,
            PointsAllocation,
            ["lot", "entry", "points"],
            (
                (lots[lot], entries[self.allocation_entry[i]], self.allocation_points[i])
                for i, lot in enumerate(self.allocation_lot)
            ),
        )
        return {
            "accounts": len(self.holders),
            "entries": len(self.entry_account),
            "lots": len(self.lot_entry),
            "allocations": len(self.allocation_lot),
            "account_ids": [accounts.start, accounts.stop - 1] if accounts else None,
            "entry_ids": [entries.start, entries.stop - 1] if entries else None,
        }


def allocate_ids(cursor, model, count: int) -> range:
    """Take `count` consecutive ids from the table's sequence (nothing else may insert meanwhile)."""
    if count == 0:
        return range(0)
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
    sequence = cursor.fetchone()[0]
    cursor.execute("SELECT nextval(%s)", [sequence])
    first = cursor.fetchone()[0]
    cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
    return range(first, first + count)


def copy_rows(cursor, model, fields: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY `rows` (values in the order of `fields`, model field names) into the model's table."""
    from django.db import connection

    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
    written = 0
    with cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def vacuum_analyze(*models) -> None:
    """VACUUM ANALYZE after a bulk load (outside any transaction): planner statistics and the visibility map
    as a long-running database would have them, so the first measurement does not pay for hint bits."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def ledger_problems() -> list[str]:
    from loyalty.selectors.ledger import ledger_problems as problems

    return problems()


# The Django side: data, workers and checks (run in child processes by harness.django_call) ----------------------


def build(*, spread_accounts: int, lots_per_account: int, points_per_lot: int, hot_points_per_lot: int) -> dict:
    """The program, the hot account and the spread accounts, written once; later calls find them and return the
    same facts. Also returns the pgbench script (table and column names from the models)."""
    from django.db import connection, transaction
    from django.db.models import Min

    from loyalty.models import PointsAccount, PointsAllocation, PointsEntry, PointsLot
    from partners.models import Member, Partner

    started = time.monotonic()
    with transaction.atomic():
        program, _ = harness.bench_program(PROGRAM_SLUG, "Benchmark: ledger", started_days_ago=365)
        accounts = PointsAccount.objects.filter(program=program)
        present = accounts.count()
        built = False
        if present == 0:
            members = list(Member.objects.order_by("pk").values_list("pk", flat=True)[:spread_accounts])
            partner = Partner.objects.order_by("pk").values_list("pk", flat=True).first()
            if len(members) < spread_accounts or partner is None:
                raise RuntimeError(f"{len(members):,} members, need {spread_accounts:,}: seed more demo data.")
            rows = LedgerRows(program_id=program.pk, expiry=timedelta(days=730), key_prefix="bench-ledger-data")
            at = time.time() - 86_400
            hot = rows.add_account(partner_id=partner)
            for n in range(lots_per_account):
                rows.earn(hot, hot_points_per_lot, at + n, "Benchmark grant")
            for member in members:
                account = rows.add_account(member_id=member)
                for n in range(lots_per_account):
                    rows.earn(account, points_per_lot, at + n, "Benchmark grant")
            rows.write_and_report(started)
            built = True
        elif present != spread_accounts + 1:
            raise RuntimeError(
                f"Program {PROGRAM_SLUG} has {present:,} accounts, not {spread_accounts + 1:,}: drop the database "
                f"{connection.settings_dict['NAME']} and run again."
            )
    if built:
        vacuum_analyze(PointsAccount, PointsEntry, PointsLot, PointsAllocation)
    hot = accounts.filter(partner__isnull=False).get()
    spread = accounts.filter(member__isnull=False).order_by("pk")
    first, last = spread.first(), spread.last()
    if last.pk - first.pk + 1 != spread_accounts:
        raise RuntimeError(f"The spread accounts' ids {first.pk}..{last.pk} are not consecutive.")
    lowest = spread.aggregate(lowest=Min("available"))["lowest"]
    return {
        "program_id": program.pk,
        "built": built,
        "build_seconds": round(time.monotonic() - started, 1),
        "hot_account": hot.pk,
        "hot_available": hot.available,
        "spread_first": first.pk,
        "spread_last": last.pk,
        "spread_lowest_available": lowest,
        "entries": PointsEntry.objects.count(),
        "pgbench_script": pgbench_script(),
    }


def pgbench_script() -> str:
    """The raw SQL spend for pgbench: what ledger.spend does for 1 point, in 5 statements. Variables: lo and hi
    (the account id range; equal for the hot account) and tag (a number in each entry's key)."""
    from django.db import connection

    from loyalty.models import PointsAccount, PointsAllocation, PointsEntry, PointsLot

    q = connection.ops.quote_name

    def table(model):
        return q(model._meta.db_table)

    def col(model, name):
        return q(model._meta.get_field(name).column)

    a, e, lot, al = PointsAccount, PointsEntry, PointsLot, PointsAllocation
    entry_columns = ", ".join(
        col(e, name)
        for name in (
            "account", "kind", "available_delta", "pending_delta", "idempotency_key", "fingerprint", "source_type",
            "source_id", "explanation", "details", "created_at",
        )
    )  # fmt: skip
    return "\n".join(
        [
            r"\set aid random(:lo, :hi)",
            "BEGIN;",
            f"SELECT {col(a, 'available')} FROM {table(a)} WHERE id = :aid FOR UPDATE;",
            f"INSERT INTO {table(e)} ({entry_columns}) VALUES (:aid, 'spend', -1, 0, "
            "'bench-pgbench:' || :tag || ':' || gen_random_uuid(), "
            "encode(sha256(convert_to('spend:' || :aid, 'UTF8')), 'hex'), "
            f"'bench', '', '{SPEND_TEXT}', '{{}}', now()) RETURNING id AS entry_id \\gset",
            f"UPDATE {table(lot)} SET {col(lot, 'remaining')} = {col(lot, 'remaining')} - 1 WHERE id = ("
            f"SELECT id FROM {table(lot)} WHERE {col(lot, 'account')} = :aid AND {col(lot, 'remaining')} > 0 "
            f"AND NOT {col(lot, 'is_pending')} ORDER BY {col(lot, 'expires_at')} NULLS LAST, id LIMIT 1) "
            "RETURNING id AS lot_id \\gset",
            f"INSERT INTO {table(al)} ({col(al, 'lot')}, {col(al, 'entry')}, {col(al, 'points')}) "
            "VALUES (:lot_id, :entry_id, 1);",
            f"UPDATE {table(a)} SET {col(a, 'available')} = {col(a, 'available')} - 1, "
            f"{col(a, 'redeemed')} = {col(a, 'redeemed')} + 1, {col(a, 'updated_at')} = now() WHERE id = :aid;",
            "COMMIT;",
            "",
        ]
    )


def spend_worker(*, first: int, last: int, start_at: float, end_at: float, run: str, worker: int) -> dict:
    """Spend 1 point at a time through ledger.spend from random accounts first..last until `end_at` (POSIX time);
    counts and times the spends that start at or after `start_at` and end by `end_at`, the rest is warm-up. Also
    the CPU time this process and its database backend used in the measured window, per counted spend."""
    import random

    from django.db import connection

    from loyalty.models import PointsAccount
    from loyalty.services import ledger

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    rng = random.Random(f"{run}:{worker}")
    ready_at = time.time()
    done = counted = failed = 0
    latencies: list[float] = []
    first_error = ""
    cpu_start = None
    while (began := time.time()) < end_at:
        if cpu_start is None and began >= start_at:
            cpu_start = (time.process_time(), harness.cpu_seconds(backend))
        account = PointsAccount(pk=first if first == last else rng.randint(first, last))
        clock = time.perf_counter()
        try:
            ledger.spend(
                account=account, points=1, key=f"bench-ledger:{run}:{worker}:{done + failed}", source_type="bench",
                source_id=str(worker), explanation=SPEND_TEXT,
            )  # fmt: skip
        except Exception as exc:  # counted and reported: the run goes on
            failed += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            continue
        elapsed = time.perf_counter() - clock
        done += 1
        if began >= start_at and time.time() <= end_at:
            counted += 1
            latencies.append(elapsed)
    cpu_end = (time.process_time(), harness.cpu_seconds(backend))
    latencies.sort()
    per_spend = 1000 / counted if counted and cpu_start else 0.0
    return {
        "worker": worker,
        "pid": os.getpid(),
        "ready_late": ready_at > start_at,
        "done": done,
        "counted": counted,
        "failed": failed,
        "first_error": first_error,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p95_ms": _percentile(latencies, 95) * 1000,
        "python_cpu_ms": (cpu_end[0] - cpu_start[0]) * per_spend if cpu_start else 0.0,
        "backend_cpu_ms": (cpu_end[1] - cpu_start[1]) * per_spend if cpu_start else 0.0,
    }


def check(*, program_id: int, service_runs: list[str], pgbench_tags: list[int]) -> dict:
    """After a run: the ledger invariants, and the number of entries each run posted (by key prefix)."""
    from loyalty.models import PointsEntry

    entries = PointsEntry.objects.filter(account__program_id=program_id)
    return {
        "problems": ledger_problems(),
        "service_entries": {
            run: entries.filter(idempotency_key__startswith=f"bench-ledger:{run}:").count() for run in service_runs
        },
        "pgbench_entries": {
            str(tag): entries.filter(idempotency_key__startswith=f"bench-pgbench:{tag}:").count()
            for tag in pgbench_tags
        },
        "entries": entries.count(),
    }


def _percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of sorted `values` (0.0 when empty)."""
    if not values:
        return 0.0
    rank = max(1, -(-len(values) * percent // 100))
    return values[int(rank) - 1]


# The benchmark --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    first: int
    last: int


@dataclass
class PgbenchResult:
    transactions: int
    failed: int
    tps: float
    latency_ms: float
    seconds: float
    backend_cpu_ms: float = 0.0  # CPU time per transaction in PostgreSQL backends (0 when not on this machine)
    client_cpu_ms: float = 0.0  # and in pgbench itself


@dataclass
class ServiceResult:
    spends: int  # counted in the measured window, all processes
    seconds: float
    rate: float
    p50_ms: float  # the median of the processes' medians
    p95_ms: float  # the highest of the processes' 95th percentiles
    python_cpu_ms: float  # CPU time per spend in the Python process (mean of the processes)
    backend_cpu_ms: float  # and in its PostgreSQL backend (0 when the server is not on this machine)
    done: int  # successful spends including warm-up
    failed: int
    first_error: str


@dataclass
class VariantResult:
    variant: Variant
    raw: PgbenchResult | None = None
    service: ServiceResult | None = None
    ratio: float | None = None
    failures: list[str] | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def parse_pgbench(output: str) -> PgbenchResult:
    """Read pgbench's summary: transactions processed and failed, tps without connection time, latency."""

    def find(pattern: str, default: str | None = None) -> str:
        found = re.search(pattern, output, re.MULTILINE)
        if found:
            return found.group(1)
        if default is not None:
            return default
        raise BenchError(f"Cannot read pgbench's output ({pattern}):\n{output}")

    return PgbenchResult(
        transactions=int(find(r"^number of transactions actually processed: (\d+)")),  # "N" with -T, "N/M" with -t
        failed=int(find(r"^number of failed transactions: (\d+)", "0")),
        tps=float(find(r"^tps = ([\d.]+) \(without initial connection time\)")),
        latency_ms=float(find(r"^latency average = ([\d.]+) ms")),
        seconds=float(find(r"^duration: (\d+) s", "0")),
    )


def ensure_pgbench() -> str:
    import shutil

    path = shutil.which("pgbench")
    if not path:
        raise BenchError("pgbench is not installed: apt-get install postgresql-client (Debian ships it there).")
    return path


def run_pgbench(database_url: str, script: Path, *, variant: Variant, seconds: int, tag: int) -> PgbenchResult:
    command = [
        ensure_pgbench(), "--no-vacuum", "--client", str(PROCESSES), "--jobs", str(PROCESSES), "--time", str(seconds),
        "--file", str(script), "-D", f"lo={variant.first}", "-D", f"hi={variant.last}", "-D", f"tag={tag}",
        _libpq_url(database_url),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with BackendCpu(database_url) as backends:
        result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise BenchError(f"pgbench failed (exit code {result.returncode}):\n{result.stderr}\n{result.stdout}")
    parsed = parse_pgbench(result.stdout)
    if parsed.transactions:
        parsed.backend_cpu_ms = backends.seconds * 1000 / parsed.transactions
        client = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        parsed.client_cpu_ms = client * 1000 / parsed.transactions
    return parsed


class BackendCpu:
    """The CPU seconds used by the backends that connect to a database while the block runs (pgbench's, which
    come and go with it): a thread finds them by their process titles and follows their CPU time until they end.
    Backends already there when the block begins are left out."""

    def __init__(self, database_url: str, interval: float = 0.1):
        self.database_url, self.interval = database_url, interval
        self.seconds = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> "BackendCpu":
        self._old = set(harness.postgres_backend_pids(self.database_url))
        self._seen: dict[int, float] = {}
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = sum(self._seen.values())

    def _follow(self) -> None:
        rounds = 0
        while not self._stop.is_set():
            if rounds % 5 == 0:  # look for new backends twice a second, follow the known ones ten times
                for pid in harness.postgres_backend_pids(self.database_url):
                    if pid not in self._old:
                        self._seen.setdefault(pid, 0.0)
            for pid in self._seen:
                used = harness.cpu_seconds(pid)
                if used:  # 0.0: the backend has ended; keep its last reading
                    self._seen[pid] = used
            rounds += 1
            self._stop.wait(self.interval)


def run_service(database_url: str, *, variant: Variant, warmup: int, seconds: int, run: str) -> ServiceResult:
    start_at = time.time() + WORKER_START_MARGIN + warmup
    end_at = start_at + seconds
    payload = {"first": variant.first, "last": variant.last, "start_at": start_at, "end_at": end_at, "run": run}
    processes = [
        harness.django_call_start(database_url, "bench.ledger:spend_worker", {**payload, "worker": n})
        for n in range(PROCESSES)
    ]
    workers = [
        harness.django_call_finish(p, label=f"   [worker {n}] ", timeout=seconds + warmup + 120)
        for n, p in enumerate(processes)
    ]
    late = [w["worker"] for w in workers if w["ready_late"]]
    if late:
        raise BenchError(
            f"worker(s) {late} were not ready when the measurement began ({WORKER_START_MARGIN:.0f} s after "
            "start): the machine is too busy; try again."
        )
    spends = sum(w["counted"] for w in workers)
    return ServiceResult(
        spends=spends,
        seconds=seconds,
        rate=spends / seconds,
        p50_ms=sorted(w["p50_ms"] for w in workers)[len(workers) // 2],
        p95_ms=max(w["p95_ms"] for w in workers),
        python_cpu_ms=statistics.mean(w["python_cpu_ms"] for w in workers),
        backend_cpu_ms=statistics.mean(w["backend_cpu_ms"] for w in workers),
        done=sum(w["done"] for w in workers),
        failed=sum(w["failed"] for w in workers),
        first_error=next((w["first_error"] for w in workers if w["first_error"]), ""),
    )


def run(options: Options) -> bool:
    """Run the benchmark, print the table, write bench/results/ledger.json; True when every target is met."""
    started = time.monotonic()
    url = harness.sibling_database(options.database_url, "ledger")
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(f"-- data: database {_name(url)}", flush=True)
    ensure_pgbench()
    seed_seconds = harness.prepare_channel(url, MEMBER_SCALE, label="[ledger] ")
    facts = harness.django_call(
        url,
        "bench.ledger:build",
        {
            "spread_accounts": SPREAD_ACCOUNTS,
            "lots_per_account": LOTS_PER_ACCOUNT,
            "points_per_lot": POINTS_PER_LOT,
            "hot_points_per_lot": HOT_POINTS_PER_LOT,
        },
        label="   ",
    )
    print(
        f"   program {facts['program_id']}: hot account {facts['hot_account']} ({facts['hot_available']:,} points), "
        f"{SPREAD_ACCOUNTS:,} accounts {facts['spread_first']}..{facts['spread_last']} (lowest balance "
        f"{facts['spread_lowest_available']:,}); {facts['entries']:,} entries in all",
        flush=True,
    )
    if facts["spread_lowest_available"] < 100:
        raise BenchError(f"Spread accounts are running out of points: drop database {_name(url)} and run again.")
    before = harness.django_call(
        url, "bench.ledger:check", {"program_id": facts["program_id"], "service_runs": [], "pgbench_tags": []}
    )
    print(f"-- invariants before the run: {_problems(before['problems'])}", flush=True)

    variants = (
        Variant("hot", "one hot account", facts["hot_account"], facts["hot_account"]),
        Variant("spread", f"{SPREAD_ACCOUNTS:,} spread accounts", facts["spread_first"], facts["spread_last"]),
    )
    results = [VariantResult(v) for v in variants]
    runs: list[str] = []
    tags: list[int] = []
    expected_raw: dict[str, int] = {}
    load_averages = {}
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as directory:
        script = Path(directory) / "spend.sql"
        script.write_text(facts["pgbench_script"])
        for result in results:
            variant = result.variant
            print(
                f"-- {variant.label}: {PROCESSES} clients, {options.duration} s after {options.warmup} s warm-up",
                flush=True,
            )
            load_averages[variant.name] = harness.report_load("")
            for phase, seconds in (("warm-up", options.warmup), ("measure", options.duration)):
                if seconds <= 0:
                    continue
                tag = int(time.time() * 1000) % 10**12
                tags.append(tag)
                raw = run_pgbench(url, script, variant=variant, seconds=seconds, tag=tag)
                expected_raw[str(tag)] = raw.transactions
                if phase == "measure":
                    result.raw = raw
            print(
                f"   raw SQL (pgbench): {result.raw.tps:,.0f} spends/s, {result.raw.latency_ms:.2f} ms average; "
                f"CPU per spend: {result.raw.client_cpu_ms:.2f} ms in pgbench, "
                f"{result.raw.backend_cpu_ms:.2f} ms in PostgreSQL",
                flush=True,
            )
            run_id = uuid.uuid4().hex[:12]
            runs.append(run_id)
            result.service = run_service(
                url, variant=variant, warmup=options.warmup, seconds=options.duration, run=run_id
            )
            print(
                f"   ledger.spend: {result.service.rate:,.0f} spends/s, p50 {result.service.p50_ms:.2f} ms, "
                f"p95 {result.service.p95_ms:.2f} ms; CPU per spend: {result.service.python_cpu_ms:.2f} ms in Python, "
                f"{result.service.backend_cpu_ms:.2f} ms in its PostgreSQL backend",
                flush=True,
            )

    after = harness.django_call(
        url, "bench.ledger:check", {"program_id": facts["program_id"], "service_runs": runs, "pgbench_tags": tags}
    )
    print(f"-- invariants after the run: {_problems(after['problems'])}", flush=True)
    integrity = []
    if before["problems"]:
        integrity.append(f"{len(before['problems'])} ledger problems before the run, e.g. {before['problems'][0]}")
    if after["problems"]:
        integrity.append(f"{len(after['problems'])} ledger problems after the run, e.g. {after['problems'][0]}")
    for result, run_id in zip(results, runs, strict=True):
        posted = after["service_entries"][run_id]
        if posted != result.service.done:
            integrity.append(f"{result.variant.name}: {result.service.done:,} successful spends but {posted:,} entries")
    for tag, transactions in expected_raw.items():
        posted = after["pgbench_entries"][tag]
        if posted != transactions:
            integrity.append(f"pgbench run {tag}: {transactions:,} transactions but {posted:,} entries")

    for result in results:
        _judge(result)
    _print(results)
    for failure in integrity:
        print(f"  integrity: {failure}")
    passed = all(r.passed for r in results) and not integrity
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed, options),
            "processes": PROCESSES,
            "load_average_at_start": load_averages,
            "targets": {"min_ratio_to_raw_sql": MIN_RATIO, "ledger_problems": "none before and after"},
            "data": {
                **{k: v for k, v in facts.items() if k != "pgbench_script"},
                "database": _name(url),
                "seed_seconds": round(seed_seconds, 1),
            },
            "pgbench_script": facts["pgbench_script"],
            "variants": [
                {
                    **asdict(r.variant),
                    "raw_sql": asdict(r.raw) if r.raw else None,
                    "service": asdict(r.service) if r.service else None,
                    "ratio": round(r.ratio, 3) if r.ratio is not None else None,
                    "passed": r.passed,
                    "failures": r.failures or [],
                }
                for r in results
            ],
            "invariants": {
                "problems_before": before["problems"][:20],
                "problems_after": after["problems"][:20],
                "entries_per_service_run": after["service_entries"],
                "entries_per_pgbench_run": after["pgbench_entries"],
                "pgbench_transactions": expected_raw,
                "failures": integrity,
            },
        },
    )
    print(
        f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.1f} s)",
        flush=True,
    )
    return passed


def _judge(result: VariantResult) -> None:
    failures = []
    raw, service = result.raw, result.service
    result.ratio = service.rate / raw.tps if raw.tps else 0.0
    if result.ratio < MIN_RATIO:
        failures.append(f"ledger.spend at {result.ratio:.2f} of the raw SQL rate, below {MIN_RATIO}")
    if service.failed:
        failures.append(f"{service.failed} spends failed: {service.first_error}")
    if raw.failed:
        failures.append(f"{raw.failed} pgbench transactions failed")
    result.failures = failures


def _print(results: list[VariantResult]) -> None:
    table = harness.Table(
        ["accounts", "raw SQL/s", "raw avg ms", "raw CPU ms", "spend()/s", "p50 ms", "p95 ms", "spend() CPU ms"]
        + ["vs raw", "target", "result"]
    )
    for r in results:
        raw, service = r.raw, r.service
        table.add(
            r.variant.label,
            f"{raw.tps:,.0f}",
            f"{raw.latency_ms:.2f}",
            f"{raw.backend_cpu_ms + raw.client_cpu_ms:.2f}",
            f"{service.rate:,.0f}",
            f"{service.p50_ms:.2f}",
            f"{service.p95_ms:.2f}",
            f"{service.python_cpu_ms + service.backend_cpu_ms:.2f}",
            f"{r.ratio:.2f}",
            f">={MIN_RATIO} raw SQL",
            "PASS" if r.passed else "FAIL",
        )
    print()
    print(table.render())
    print(
        "  CPU ms: per spend, in pgbench + its PostgreSQL backends (raw), or in the Python processes + theirs "
        "(spend()); 0 when the database server runs elsewhere"
    )
    for r in results:
        for failure in r.failures or []:
            print(f"  {r.variant.name}: {failure}")
    print(flush=True)


def _problems(problems: list[str]) -> str:
    return "ledger_problems() == [] (books balance)" if not problems else f"{len(problems)} problems: {problems[:3]}"


def _libpq_url(database_url: str) -> str:
    """libpq takes postgresql:// and postgres:// URLs; Django-style schemes like postgis:// it does not."""
    parts = urlsplit(database_url)
    return parts._replace(scheme="postgresql").geturl()


def _name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")
