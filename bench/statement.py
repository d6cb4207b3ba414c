"""The statement benchmark: the points statement page (/points/) with 1,000,000 entries in the database, next to
the same page with 1,000 entries in the database.

One member, the demo login "Sales rep", has an account with 1,000 entries (earns and spends, with their lots and
allocations) in both databases. In the big one, 999,000 more entries are spread over the accounts of the other
10,199 members of the demo channel at scale 34 (partners.demo; about 98 each), interleaved in time with the
member's own, so the member's entries lie scattered across the table as after two years of activity. In the
small one the member's 1,000 entries are all there is. The entries are identical in both (same amounts, kinds,
texts and dates), written once with COPY by bench.ledger.LedgerRows with every ledger invariant intact; re-runs
reuse them. The benchmark's program is chosen in the session (the member site shows the session's program).

The page is requested in-process with Django's test client (full middleware, session and template rendering;
no HTTP server), signed in as the member: page 1 and the last page (40), --requests times each after 5
unmeasured requests; median and 95th percentile of the wall time, and the query count of one request.

Target: the same query count at 1,000 and at 1,000,000 entries, for both pages (and each page answers 200
with 25 entries).
"""

import math
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bench import harness
from bench.harness import Options

NAME = "statement"
DESCRIPTION = "points statement page, 1,000,000 entries in the database vs 1,000: median time, query count"

BIG_ENTRIES = 1_000_000
SMALL_ENTRIES = 1_000
TARGET_ENTRIES = 1_000  # the member's own, in both databases
BIG_SCALE = 34  # demo channel blocks of the big database: 10,200 members hold the entries
WHO = "Sales rep"
PAGE_SIZE = 25  # loyalty.views.ledger.PAGE_SIZE
REQUESTS = 100
WARMUP_REQUESTS = 5
PROGRAM_SLUG = "bench-statement"
SEED = 2026
SPAN_DAYS = 700  # entries spread over the last 700 days; lots expire 730 days after the earn
SLOTS = 20_000  # time slots the entries are spread over, in order
SPEND_SHARE = 0.3
EARN_TEXTS = (
    "Sale: WS-200 water softener",
    "Sale: RO-5 reverse osmosis unit, 2 units",
    "Installation bonus",
    "Training module completed: filtration basics",
    "Quarterly target reached",
    "Sale: filter cartridges, 12 units",
)
SPEND_TEXTS = ("Order: e-voucher 25 EUR", "Order: branded jacket", "Order: charity donation")


# The Django side (run in child processes by harness.django_call) ------------------------------------------------


def build(*, total_entries: int, target_entries: int, who: str) -> dict:
    """The program and its entries, written once: `target_entries` on the member's account and the rest spread over
    every other member's account. Later calls find them and return the same facts."""
    from django.db import connection, transaction

    from bench.ledger import ledger_problems, vacuum_analyze
    from loyalty.models import PointsAccount, PointsAllocation, PointsEntry, PointsLot
    from partners.constants import CURRENT_MEMBER_STATUSES
    from partners.demo import demo_logins
    from partners.models import Member

    started = time.monotonic()
    member = Member.objects.get(user__email=dict(demo_logins())[who], status__in=CURRENT_MEMBER_STATUSES)
    built = False
    with transaction.atomic():
        program, _ = harness.bench_program(PROGRAM_SLUG, "Benchmark: statement", started_days_ago=800)
        entries = PointsEntry.objects.filter(account__program=program)
        present = entries.count()
        if present == 0:
            others = list(Member.objects.exclude(pk=member.pk).order_by("pk").values_list("pk", flat=True))
            rows = ledger_rows(program.pk, member.pk, others, total_entries=total_entries, target=target_entries)
            rows.write_and_report(started)
            built = True
        elif present != total_entries:
            raise RuntimeError(
                f"Program {PROGRAM_SLUG} has {present:,} entries, not {total_entries:,}: drop the database "
                f"{connection.settings_dict['NAME']} and run again."
            )
    if built:
        vacuum_analyze(PointsAccount, PointsEntry, PointsLot, PointsAllocation)
    account = PointsAccount.objects.get(program=program, member=member)
    problems = ledger_problems()
    return {
        "ledger_problems": len(problems),
        "ledger_problem_examples": problems[:5],
        "program_id": program.pk,
        "built": built,
        "build_seconds": round(time.monotonic() - started, 1),
        "entries_in_database": PointsEntry.objects.count(),
        "accounts": PointsAccount.objects.filter(program=program).count(),
        "account_id": account.pk,
        "account_entries": account.entries.count(),
    }


def ledger_rows(
    program_id: int, member_id: int, others: list[int], *, total_entries: int, target: int, now: float | None = None
):
    """The rows build() writes: `target` entries for `member_id`, the rest spread evenly over `others`, all in
    time order across the SPAN_DAYS days before `now` (POSIX time). The member's entries depend only on `target`
    and `now`, never on the others, so they are the same in a database of any size."""
    from bench.ledger import LedgerRows

    rest = total_entries - target
    if rest and not others:
        raise RuntimeError(f"{rest:,} entries need other members' accounts, and there are none.")
    each, extra = divmod(rest, len(others)) if others else (0, 0)
    rows = LedgerRows(program_id=program_id, expiry=timedelta(days=730), key_prefix="bench-statement")
    accounts = [(rows.add_account(member_id=member_id), target, random.Random(f"{SEED}:target"))]
    for n, other in enumerate(others):
        count = each + (1 if n < extra else 0)
        if count:
            accounts.append((rows.add_account(member_id=other), count, random.Random(f"{SEED}:{other}")))
    slots: list[list[int]] = [[] for _ in range(SLOTS)]
    for position, (_, count, rng) in enumerate(accounts):
        offset = rng.random()
        for i in range(count):
            slots[int((i + offset) * SLOTS / count)].append(position)
    start = (now or datetime.now(UTC).timestamp()) - SPAN_DAYS * 86_400
    step = (SPAN_DAYS * 86_400 - 3600) / SLOTS
    for slot, positions in enumerate(slots):
        at = start + slot * step
        for position in positions:
            account, _, rng = accounts[position]
            available = rows.available[account]
            if available and rng.random() < SPEND_SHARE:
                rows.spend(account, min(available, rng.randint(50, 400)), at, rng.choice(SPEND_TEXTS))
            else:
                rows.earn(account, rng.randint(20, 400), at, rng.choice(EARN_TEXTS))
    return rows


def measure(*, who: str, program_id: int, pages: list[int], requests: int, explain: bool = False) -> dict:
    """Request each statement page as `who` with the test client: the status, entries shown and queries of one
    request, then the wall time of `requests` more. With `explain`, EXPLAIN ANALYZE of the entry and lot queries."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from partners.demo import demo_logins
    from partners.models import User

    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(email=dict(demo_logins())[who]))
    session = client.session
    session["program_id"] = program_id  # the program the member site shows (else the oldest active one)
    session.save()
    answers = []
    for page in pages:
        path = f"/points/?page={page}"
        for _ in range(WARMUP_REQUESTS):
            client.get(path)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        # Read them now: each request's request_started signal empties the connection's query log.
        queries = [{"ms": float(q["time"]) * 1000, "sql": q["sql"]} for q in captured.captured_queries]
        times = []
        for _ in range(requests):
            clock = time.perf_counter()
            client.get(path)
            times.append((time.perf_counter() - clock) * 1000)
        times.sort()
        plans = []
        if explain:
            with connection.cursor() as cursor:
                for query in queries:
                    if "loyalty_pointsentry" in query["sql"] or "loyalty_pointslot" in query["sql"]:
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                        plans.append({"sql": query["sql"], "plan": "\n".join(row[0] for row in cursor.fetchall())})
        answers.append(
            {
                "page": page,
                "path": path,
                "status": response.status_code,
                "entries_shown": response.content.count(b'data-label="Date"'),
                "queries": len(queries),
                "query_list": queries,
                "median_ms": statistics.median(times),
                "p95_ms": times[max(0, math.ceil(len(times) * 0.95) - 1)],
                "min_ms": times[0],
                "plans": plans,
            }
        )
    return {"pages": answers}


# The benchmark --------------------------------------------------------------------------------------------------


@dataclass
class PageResult:
    page: int
    small: dict
    big: dict
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def run(options: Options, requests: int = REQUESTS) -> bool:
    """Run the benchmark, print the table, write bench/results/statement.json; True when every target is met."""
    started = time.monotonic()
    big_url = harness.sibling_database(options.database_url, "statement")
    small_url = harness.sibling_database(options.database_url, "statement1k")
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(f"-- data: {SMALL_ENTRIES:,} entries in {_name(small_url)}, {BIG_ENTRIES:,} in {_name(big_url)}", flush=True)
    seed = {
        "small": harness.prepare_channel(small_url, 1, label="[1k] "),
        "big": harness.prepare_channel(big_url, BIG_SCALE, label="[1M] "),
    }
    facts = {}
    for size, url, total in (("small", small_url, SMALL_ENTRIES), ("big", big_url, BIG_ENTRIES)):
        facts[size] = harness.django_call(
            url,
            "bench.statement:build",
            {"total_entries": total, "target_entries": TARGET_ENTRIES, "who": WHO},
            label=f"   [{size}] ",
        )
        print(
            f"   {_name(url)}: {facts[size]['entries_in_database']:,} entries on {facts[size]['accounts']:,} accounts; "
            f"{WHO}'s account {facts[size]['account_id']} has {facts[size]['account_entries']:,}; ledger_problems(): "
            f"{facts[size]['ledger_problems'] or 'none'}",
            flush=True,
        )
    last_page = math.ceil(TARGET_ENTRIES / PAGE_SIZE)
    pages = [1, last_page]
    print(f"-- {WHO}'s statement, pages {pages}: {requests} requests each, in-process test client", flush=True)
    load_average = harness.report_load("")
    measured = {
        size: harness.django_call(
            url,
            "bench.statement:measure",
            {"who": WHO, "program_id": facts[size]["program_id"], "pages": pages, "requests": requests}
            | {"explain": size == "big"},
        )
        for size, url in (("small", small_url), ("big", big_url))
    }
    results = []
    for small, big in zip(measured["small"]["pages"], measured["big"]["pages"], strict=True):
        failures = []
        for label, answer in (("1k", small), ("1M", big)):
            if answer["status"] != 200:
                failures.append(f"answers HTTP {answer['status']} at {label}")
            elif answer["entries_shown"] != PAGE_SIZE:
                failures.append(f"shows {answer['entries_shown']} entries at {label}, not {PAGE_SIZE}")
        for label, size in (("1k", "small"), ("1M", "big")):
            if facts[size]["ledger_problems"]:
                failures.append(f"{facts[size]['ledger_problems']} ledger problems at {label}")
        if small["queries"] != big["queries"]:
            failures.append(
                f"{small['queries']} queries at {SMALL_ENTRIES:,} entries but {big['queries']} at {BIG_ENTRIES:,}"
            )
        results.append(PageResult(small["page"], small, big, failures))

    _print(results)
    passed = all(r.passed for r in results)
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed),
            "client": "django.test.Client in-process (middleware, session, templates; no HTTP server)",
            "requests_per_page": requests,
            "load_average_at_start": load_average,
            "targets": {"same_query_count": True, "status": 200, "entries_shown": PAGE_SIZE},
            "data": {
                "small": {**facts["small"], "database": _name(small_url), "seed_seconds": round(seed["small"], 1)},
                "big": {**facts["big"], "database": _name(big_url), "seed_seconds": round(seed["big"], 1)},
            },
            "pages": [
                {
                    "page": r.page,
                    f"at_{SMALL_ENTRIES}": r.small,
                    f"at_{BIG_ENTRIES}": r.big,
                    "passed": r.passed,
                    "failures": r.failures,
                }
                for r in results
            ],
        },
    )
    print(
        f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.1f} s)",
        flush=True,
    )
    return passed


def _print(results: list[PageResult]) -> None:
    small, big = f"{SMALL_ENTRIES // 1000}k", f"{BIG_ENTRIES // 1_000_000}M"
    table = harness.Table(
        [
            "page",
            f"median ms@{small}",
            f"median ms@{big}",
            f"p95 ms@{small}",
            f"p95 ms@{big}",
            f"{big}/{small}",
            f"queries@{small}",
            f"queries@{big}",
            "target",
            "result",
        ]
    )
    for r in results:
        table.add(
            f"/points/?page={r.page}",
            f"{r.small['median_ms']:.2f}",
            f"{r.big['median_ms']:.2f}",
            f"{r.small['p95_ms']:.2f}",
            f"{r.big['p95_ms']:.2f}",
            f"{r.big['median_ms'] / r.small['median_ms']:.2f}",
            r.small["queries"],
            r.big["queries"],
            "same queries",
            "PASS" if r.passed else "FAIL",
        )
    print()
    print(table.render())
    for r in results:
        slowest = max(r.big["query_list"], key=lambda q: q["ms"], default=None)
        if slowest:
            print(f"  page {r.page} at {BIG_ENTRIES:,}: slowest query {slowest['ms']:.2f} ms: {slowest['sql'][:150]}")
        for failure in r.failures:
            print(f"  page {r.page}: {failure}")
    print(flush=True)


def _name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")
