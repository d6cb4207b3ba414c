"""The exports benchmark: a points statement of 1,000,000 lines exported as CSV through the HTTP endpoint, next to
PostgreSQL's `COPY (…) TO STDOUT` of the same query in the same run; and the same rows as XLSX
(analytics.exports.write_xlsx, what a background export writes), next to a bare xlsxwriter loop over them.

The data (database <name>_exports): the demo channel at scale 1 (partners.demo), a program, and ENTRIES entries on one
account, the demo login "Sales rep"'s, written once with COPY: earns (a tenth pending, with their expiry dates) and
spends, their texts from a small set, one in fifty starting with "=", "+" or "-" as pasted text sometimes does (the
cell rule has work to do). Only entries are written (the export reads nothing else): this database is for this
benchmark only. Re-runs reuse the data.

Measured, ROUNDS times each:
- CSV: the gunicorn server (one sync worker, bench settings) serving `/exports/statement/?format=csv` to the member
  (a session cookie), the body read in 64 KiB pieces and dropped — the bounded row count, the planner's estimate and
  the COPY streamed through StreamingHttpResponse; against the COPY of the very statement the endpoint runs
  (analytics.exports.copy_statement), read through psycopg in a Django process and dropped. The worker's peak
  resident memory (VmHWM) is read before the exports (after a warm-up request) and after them.
- XLSX: write_xlsx into a temporary file against xlsxwriter in constant-memory mode writing the same rows, read the
  same way (the export's query through a server-side cursor), with write_row and no formats.

Targets: the CSV endpoint's rows per second ≥ 0.8 of COPY's, with the worker's peak memory at most 50 MB above its
peak before; the XLSX writer ≥ 0.5 of the bare loop's speed.
"""

import hashlib
import http.client
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench import harness
from bench.harness import Options

NAME = "exports"
DESCRIPTION = "statement of 1,000,000 lines: CSV through the endpoint vs COPY; XLSX vs a bare xlsxwriter loop"

ENTRIES = 1_000_000
WHO = "Sales rep"
ROUNDS = 3
MIN_CSV_RATIO = 0.8
MAX_MEMORY_MB = 50
MIN_XLSX_RATIO = 0.5
PROGRAM_SLUG = "bench-exports"
SEED = 2026
PIECE = 64 * 1024
EARN_TEXTS = (
    "Sale: WS-200 water softener",
    "Sale: RO-5 reverse osmosis unit, 2 units",
    "Installation bonus",
    "Training module completed: filtration basics",
)
SPEND_TEXTS = ("Order: e-voucher 25 EUR", "Order: branded jacket")
SOURCE = ("bench", "", "{}")  # source type, source id, details
PASTED_TEXTS = ("=Sale booked by hand", "+49 30 1234 5678 called back", "-5 % promotion")


# The Django side (run in child processes by harness.django_call) ------------------------------------------------


def build(*, entries: int, who: str) -> dict:
    """The program, the member's account and its entries, written once; later calls find them."""
    from django.db import connection, transaction

    from bench.ledger import vacuum_analyze
    from loyalty.models import PointsAccount, PointsEntry
    from partners.constants import CURRENT_MEMBER_STATUSES
    from partners.demo import demo_logins
    from partners.models import Member

    started = time.monotonic()
    member = Member.objects.get(user__email=dict(demo_logins())[who], status__in=CURRENT_MEMBER_STATUSES)
    built = False
    with transaction.atomic():
        program, _ = harness.bench_program(PROGRAM_SLUG, "Benchmark: exports", started_days_ago=800)
        account, _ = PointsAccount.objects.get_or_create(program=program, member=member)
        present = PointsEntry.objects.filter(account=account).count()
        if present == 0:
            write_entries(account.pk, entries)
            print(f"wrote {entries:,} entries with COPY in {time.monotonic() - started:.1f} s", flush=True)
            built = True
        elif present != entries:
            raise RuntimeError(
                f"The account has {present:,} entries, not {entries:,}: drop the database "
                f"{connection.settings_dict['NAME']} and run again."
            )
    if built:
        vacuum_analyze(PointsEntry)
    return {
        "program_id": program.pk,
        "account_id": account.pk,
        "entries": PointsEntry.objects.filter(account=account).count(),
        "built": built,
        "build_seconds": round(time.monotonic() - started, 1),
    }


def write_entries(account_id: int, entries: int) -> int:
    """COPY `entries` entries onto the account (ids taken from the sequence in one go)."""
    from django.db import connection

    from bench.ledger import allocate_ids, copy_rows
    from loyalty.models import PointsEntry

    with connection.cursor() as cursor:
        ids = allocate_ids(cursor, PointsEntry, entries)
        return copy_rows(cursor, PointsEntry, ENTRY_FIELDS, entry_rows(account_id, ids))


ENTRY_FIELDS = [
    "id", "account", "kind", "available_delta", "pending_delta", "idempotency_key", "fingerprint", "source_type",
    "source_id", "details", "explanation", "available_at", "expires_at", "created_at",
]  # fmt: skip


def entry_rows(account_id: int, ids: range):
    """The entries, oldest first over the last 700 days: earns (a tenth pending) and spends."""
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    start = now - timedelta(days=700)
    step = timedelta(days=700) / max(len(ids), 1)
    for n, entry_id in enumerate(ids):
        at = start + step * n
        key = f"bench-exports:{entry_id}"
        fingerprint = hashlib.sha256(key.encode()).hexdigest()
        pasted = rng.random() < 0.02
        if rng.random() < 0.3:
            text = rng.choice(PASTED_TEXTS) if pasted else rng.choice(SPEND_TEXTS)
            spent = -rng.randint(50, 400)
            yield entry_id, account_id, "spend", spent, 0, key, fingerprint, *SOURCE, text, None, None, at
            continue
        text = rng.choice(PASTED_TEXTS) if pasted else rng.choice(EARN_TEXTS)
        points = rng.randint(20, 400)
        available, pending, available_at = (
            (0, points, at + timedelta(days=30)) if rng.random() < 0.1 else (points, 0, None)
        )
        expires_at = at + timedelta(days=730)
        yield (
            entry_id,
            account_id,
            "earn",
            available,
            pending,
            key,
            fingerprint,
            *SOURCE,
            text,
            available_at,
            expires_at,
            at,
        )


def _statement_rows(who: str):
    """The export's rows as the member's request makes them (the viewer, the program, no filter)."""
    from analytics.exports import export_rows
    from loyalty.models import Program
    from partners.demo import demo_logins
    from partners.models import User

    user = User.objects.get(email=dict(demo_logins())[who])
    program = Program.objects.get(slug=PROGRAM_SLUG)
    return export_rows(kind="statement", viewer=user, program=program, filters={})


def copy_baseline(*, who: str, rounds: int) -> dict:
    """COPY of the endpoint's own statement, read through psycopg and dropped, `rounds` times (one unmeasured)."""
    from django.db import connection

    from analytics.exports import copy_statement

    statement = copy_statement(_statement_rows(who), using="default")

    def once() -> tuple[float, int, int]:
        clock = time.perf_counter()
        rows = size = 0
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for data in copy:
                rows += 1
                size += len(data)
        return time.perf_counter() - clock, rows, size

    once()
    runs = [once() for _ in range(rounds)]
    return {
        "seconds": [run[0] for run in runs],
        "median": statistics.median(run[0] for run in runs),
        "rows": runs[0][1],
        "bytes": runs[0][2],
    }


def xlsx_measure(*, who: str, rounds: int) -> dict:
    """write_xlsx against a bare constant-memory xlsxwriter loop over the same rows, alternating, `rounds` times
    each; the process's peak memory before and after."""
    import xlsxwriter
    from django.db import connection

    from analytics.exports import write_xlsx

    rows = _statement_rows(who)
    sql, params = rows.typed().query.get_compiler(using="default").as_sql()
    peak_before = _peak_kb()

    def ours() -> tuple[float, int]:
        with tempfile.TemporaryFile() as file:
            clock = time.perf_counter()
            written = write_xlsx(file, rows, using="default")
            return time.perf_counter() - clock, written

    def bare() -> tuple[float, int]:
        with tempfile.TemporaryFile() as file:
            clock = time.perf_counter()
            workbook = xlsxwriter.Workbook(file, {"constant_memory": True})
            sheet = workbook.add_worksheet()
            sheet.write_row(0, 0, rows.header)
            written = 0
            with connection.chunked_cursor() as cursor:
                cursor.execute(sql, params)
                while batch := cursor.fetchmany(2000):
                    for row in batch:
                        written += 1
                        sheet.write_row(written, 0, row)
            workbook.close()
            return time.perf_counter() - clock, written

    times = {"ours": [], "bare": []}
    written = {}
    for n in range(rounds):
        order = (("ours", ours), ("bare", bare)) if n % 2 == 0 else (("bare", bare), ("ours", ours))
        for name, run_once in order:
            seconds, written[name] = run_once()
            times[name].append(seconds)
    return {
        "ours_seconds": times["ours"],
        "bare_seconds": times["bare"],
        "ours_median": statistics.median(times["ours"]),
        "bare_median": statistics.median(times["bare"]),
        "ours_rows": written["ours"],
        "bare_rows": written["bare"],
        "peak_mb_before": round(peak_before / 1024, 1),
        "peak_mb_after": round(_peak_kb() / 1024, 1),
    }


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# The benchmark process: HTTP ------------------------------------------------------------------------------------


def stream(url: str, *, cookie: str, timeout: float = 600) -> tuple[int, int, int, bytes]:
    """GET `url`, reading the body in pieces and dropping it: (status, bytes, lines, first bytes)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}", headers={"Cookie": cookie})
        response = connection.getresponse()
        size = lines = 0
        head = b""
        while piece := response.read(PIECE):
            if not head:
                head = piece[:16]
            size += len(piece)
            lines += piece.count(b"\n")
        return response.status, size, lines, head
    finally:
        connection.close()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB; 0 where /proc is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure_http(url: str, *, cookie: str, rounds: int) -> dict:
    with harness.Server(url, workers=1) as server:
        workers = harness.child_pids(server.process.pid)
        worker = workers[0] if workers else server.process.pid
        status, _, _, _ = stream(server.url + "/exports/", cookie=cookie)  # warm-up: the app loaded, signed in
        if status != 200:
            raise harness.BenchError(f"/exports/ answered HTTP {status} (is the session cookie valid?)")
        peak_before = peak_rss_mb(worker)
        runs = []
        for _ in range(rounds):
            clock = time.perf_counter()
            status, size, lines, head = stream(server.url + "/exports/statement/?format=csv", cookie=cookie)
            runs.append((time.perf_counter() - clock, status, size, lines, head))
        peak_after = peak_rss_mb(worker)
    return {
        "seconds": [run[0] for run in runs],
        "median": statistics.median(run[0] for run in runs),
        "status": runs[0][1],
        "bytes": runs[0][2],
        "lines": runs[0][3],
        "starts_with_bom": runs[0][4].startswith("\ufeff".encode()),
        "worker_peak_mb_before": round(peak_before, 1),
        "worker_peak_mb_after": round(peak_after, 1),
    }


# The benchmark --------------------------------------------------------------------------------------------------


def run(options: Options, *, entries: int = ENTRIES, rounds: int = ROUNDS) -> bool:
    """Run the benchmark, print the table, write bench/results/exports.json; True when every target is met."""
    started = time.monotonic()
    url = harness.sibling_database(options.database_url, "exports" if entries == ENTRIES else f"exports{entries}")
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(f"-- data: database {_name(url)}, {entries:,} statement lines", flush=True)
    seed_seconds = harness.prepare_channel(url, 1, label="[exports] ")
    facts = harness.django_call(url, "bench.exports:build", {"entries": entries, "who": WHO}, label="   ")
    cookie = harness.probe(url, pages=[], sessions=[WHO])["sessions"][WHO]
    print(f"-- {rounds} rounds of each; COPY in a Django process, the endpoint on gunicorn (1 sync worker)", flush=True)
    load_average = harness.report_load("")
    copied = harness.django_call(url, "bench.exports:copy_baseline", {"who": WHO, "rounds": rounds})
    served = measure_http(url, cookie=cookie, rounds=rounds)
    xlsx = harness.django_call(url, "bench.exports:xlsx_measure", {"who": WHO, "rounds": rounds})

    csv_ratio = copied["median"] / served["median"] if served["median"] else 0.0
    memory_growth = max(served["worker_peak_mb_after"] - served["worker_peak_mb_before"], 0.0)
    xlsx_ratio = xlsx["bare_median"] / xlsx["ours_median"] if xlsx["ours_median"] else 0.0
    failures = []
    if served["status"] != 200:
        failures.append(f"the endpoint answered HTTP {served['status']}")
    if served["lines"] != facts["entries"] + 1 or copied["rows"] != facts["entries"]:
        failures.append(
            f"{served['lines']:,} CSV lines served, {copied['rows']:,} copied, for {facts['entries']:,} entries"
        )
    if not served["starts_with_bom"]:
        failures.append("the CSV does not start with the byte order mark")
    if csv_ratio < MIN_CSV_RATIO:
        failures.append(f"the CSV endpoint at {csv_ratio:.2f} of COPY's speed, below {MIN_CSV_RATIO}")
    if memory_growth > MAX_MEMORY_MB:
        failures.append(f"the web worker's peak memory grew by {memory_growth:.1f} MB, over {MAX_MEMORY_MB}")
    if xlsx["ours_rows"] != xlsx["bare_rows"] or xlsx["ours_rows"] != facts["entries"]:
        failures.append(f"{xlsx['ours_rows']:,} XLSX rows written, the bare loop {xlsx['bare_rows']:,}")
    if xlsx_ratio < MIN_XLSX_RATIO:
        failures.append(f"the XLSX writer at {xlsx_ratio:.2f} of the bare loop's speed, below {MIN_XLSX_RATIO}")
    passed = not failures

    rows = facts["entries"]
    table = harness.Table(["what", "median s", "runs s", "rows/s", "result"])
    table.add("COPY … TO STDOUT", f"{copied['median']:.3f}", _runs(copied["seconds"]), _rate(rows, copied), "")
    table.add(
        "CSV endpoint (HTTP)",
        f"{served['median']:.3f}",
        _runs(served["seconds"]),
        _rate(rows, served),
        f"{csv_ratio:.2f} of COPY (>= {MIN_CSV_RATIO}); worker peak +{memory_growth:.1f} MB (<= {MAX_MEMORY_MB})",
    )
    table.add("bare xlsxwriter loop", f"{xlsx['bare_median']:.3f}", _runs(xlsx["bare_seconds"]), "", "")
    table.add(
        "write_xlsx",
        f"{xlsx['ours_median']:.3f}",
        _runs(xlsx["ours_seconds"]),
        f"{rows / xlsx['ours_median']:,.0f}" if xlsx["ours_median"] else "",
        f"{xlsx_ratio:.2f} of bare (>= {MIN_XLSX_RATIO}); process peak {xlsx['peak_mb_after']} MB",
    )
    print()
    print(table.render())
    for failure in failures:
        print(f"  {failure}")
    print(f"  {'PASS' if passed else 'FAIL'}", flush=True)
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed, options),
            "load_average_at_start": load_average,
            "targets": {
                "min_csv_ratio_to_copy": MIN_CSV_RATIO,
                "max_worker_memory_growth_mb": MAX_MEMORY_MB,
                "min_xlsx_ratio_to_bare": MIN_XLSX_RATIO,
            },
            "data": {**facts, "database": _name(url), "seed_seconds": round(seed_seconds, 1)},
            "copy": copied,
            "http": served,
            "xlsx": xlsx,
            "csv_ratio": round(csv_ratio, 3),
            "worker_memory_growth_mb": round(memory_growth, 1),
            "xlsx_ratio": round(xlsx_ratio, 3),
            "failures": failures,
        },
    )
    print(
        f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.1f} s)",
        flush=True,
    )
    return passed


def _runs(seconds: list[float]) -> str:
    return " ".join(f"{s:.3f}" for s in seconds)


def _rate(rows: int, measured: dict) -> str:
    return f"{rows / measured['median']:,.0f}" if measured["median"] else ""


def _name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")
