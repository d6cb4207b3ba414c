"""The roll-up benchmark: analytics.rollups rebuilding one day's points roll-up (PointsDay) when that day has
1,000,000 new ledger entries, next to a bare `INSERT … SELECT … GROUP BY` over the same rows in the same run.

The data (database <name>_rollups): the demo channel at scale 34 (partners.demo: 10,200 members at 340 partners), a
program with an account per member and per partner, and 1,000,000 entries on one day of the site's time zone
(yesterday when it was built; the newest day with entries on re-runs) plus 1,000,000 spread over the 30 days before
it, so the day is a part of a bigger table. The entries are a mix as a busy day has them: earns (a tenth pending, a
fifth from claims, with their product line in the details as the engine writes it), spends, reversals of an earlier
earn of the same account, adjustments, expiries, releases and transfers, on member accounts and company accounts.
They are written once with COPY; the roll-up reads entries only, so lots and balances are not written: this database
is for this benchmark only.

Measured, ROUNDS times each, alternating which goes first: (a) `rollup_days(first=day, last=day,
tables=["points"])` — its transaction, its advisory lock, the DELETE of the day's rows, the one INSERT … SELECT
over the day's entries (with the account, member and partner joined for the dimensions) and the RollupDay record;
(b) the bare statement: DELETE and INSERT INTO a plain table SELECT day, account, kind, SUM(points), COUNT(*) FROM
the day's entries GROUP BY account, kind, in a transaction. Both find the day's rows the same way (whatever index
the entries table has). The roll-up's totals are checked against a direct sum over the day's entries.

Target: the bare statement's median time ÷ the roll-up's median time ≥ 0.5.
"""

import hashlib
import random
import statistics
import time
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from bench import harness
from bench.harness import Options

NAME = "rollups"
DESCRIPTION = "points roll-up of one day with 1,000,000 new entries vs a bare INSERT … SELECT … GROUP BY over them"

DAY_ENTRIES = 1_000_000
OTHER_ENTRIES = 1_000_000
DAYS_BEFORE = 30
MEMBER_SCALE = 34
MIN_RATIO = 0.5
ROUNDS = 3
PROGRAM_SLUG = "bench-rollups"
SEED = 2026
# (kind, share of the entries)
MIX = (("earn", 0.55), ("spend", 0.25), ("reverse", 0.05), ("adjust", 0.05), ("expire", 0.05), ("release", 0.03))
# the rest: transfers
COMPANY_SHARE = 0.1  # of the entries, on company accounts

BARE_TABLE = "bench_rollup_bare"
BARE_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} "
    "(day date NOT NULL, account_id bigint NOT NULL, kind varchar(10) NOT NULL, points bigint NOT NULL, entries int)"
)
BARE_INSERT = f"""
INSERT INTO {BARE_TABLE} (day, account_id, kind, points, entries)
SELECT %(day)s::date, account_id, kind, SUM(available_delta + pending_delta), COUNT(*)
FROM loyalty_pointsentry
WHERE created_at >= (%(day)s::date::timestamp AT TIME ZONE %(zone)s)
    AND created_at < ((%(day)s::date + 1)::timestamp AT TIME ZONE %(zone)s)
GROUP BY account_id, kind
"""
DIRECT_TOTALS = """
SELECT COUNT(*) FILTER (WHERE kind NOT IN ('release', 'transfer')),
    COALESCE(SUM(available_delta + pending_delta) FILTER (WHERE kind = 'earn'), 0)
FROM loyalty_pointsentry
WHERE created_at >= (%(day)s::date::timestamp AT TIME ZONE %(zone)s)
    AND created_at < ((%(day)s::date + 1)::timestamp AT TIME ZONE %(zone)s)
"""


# The Django side (run in child processes by harness.django_call) ------------------------------------------------


def build(*, day_entries: int, other_entries: int, days_before: int) -> dict:
    """The program, its accounts and entries, written once; later calls find them and return the same facts."""
    from django.db import connection, transaction
    from django.utils import timezone

    from bench.ledger import vacuum_analyze
    from loyalty.models import PointsAccount, PointsEntry

    started = time.monotonic()
    built = False
    with transaction.atomic():
        program, _ = harness.bench_program(PROGRAM_SLUG, "Benchmark: roll-ups", started_days_ago=400)
        entries = PointsEntry.objects.filter(account__program=program)
        present = entries.count()
        if present == 0:
            day = timezone.localdate() - timedelta(days=1)
            written = write_entries(program.pk, day, day_entries=day_entries, other_entries=other_entries,
                                    days_before=days_before)  # fmt: skip
            print(
                f"wrote {written['accounts']:,} accounts and {written['entries']:,} entries with COPY in "
                f"{time.monotonic() - started:.1f} s",
                flush=True,
            )
            built = True
        elif present != day_entries + other_entries:
            raise RuntimeError(
                f"Program {PROGRAM_SLUG} has {present:,} entries, not {day_entries + other_entries:,}: drop the "
                f"database {connection.settings_dict['NAME']} and run again."
            )
    if built:
        vacuum_analyze(PointsAccount, PointsEntry)
    day = _newest_day(program.pk)
    return {
        "program_id": program.pk,
        "day": day.isoformat(),
        "built": built,
        "build_seconds": round(time.monotonic() - started, 1),
        "entries_in_database": PointsEntry.objects.count(),
        "entries_on_the_day": _direct_totals(day)[0],
        "accounts": PointsAccount.objects.filter(program=program).count(),
    }


def _newest_day(program_id: int) -> date:
    from django.db.models import Max
    from django.utils import timezone

    from loyalty.models import PointsEntry

    newest = PointsEntry.objects.filter(account__program=program_id).aggregate(at=Max("created_at"))["at"]
    return timezone.localdate(newest)


def write_entries(program_id: int, day: date, *, day_entries: int, other_entries: int, days_before: int) -> dict:
    """COPY the accounts (one per member, one per partner) and the entries: `day_entries` on the local `day`,
    `other_entries` over the `days_before` days before it, in time order."""
    from django.db import connection
    from django.utils import timezone

    from bench.ledger import allocate_ids, copy_rows
    from loyalty.models import PointsAccount, PointsEntry
    from partners.models import Member

    members = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    partners = sorted(set(Member.objects.values_list("partner_id", flat=True)))
    if not members:
        raise RuntimeError("No members: seed the demo channel first.")
    rng = random.Random(SEED)

    def start_of(d: date) -> float:
        return timezone.make_aware(datetime.combine(d, datetime.min.time())).timestamp()

    times = sorted(
        rng.uniform(start_of(day - timedelta(days=days_before)), start_of(day)) for _ in range(other_entries)
    )
    times += sorted(rng.uniform(start_of(day), start_of(day + timedelta(days=1))) for _ in range(day_entries))
    with connection.cursor() as cursor:
        account_ids = allocate_ids(cursor, PointsAccount, len(members) + len(partners))
        entry_ids = allocate_ids(cursor, PointsEntry, len(times))
        now = timezone.now()
        holders = [(m, None) for m in members] + [(None, p) for p in partners]
        copy_rows(
            cursor,
            PointsAccount,
            ["id", "program", "member", "partner", "available", "pending", "lifetime_earned", "redeemed", "expired"]
            + ["created_at", "updated_at"],
            (
                (account_ids[i], program_id, member, partner, 0, 0, 0, 0, 0, now, now)
                for i, (member, partner) in enumerate(holders)
            ),
        )
        kinds = [kind for kind, _ in MIX] + ["transfer"]
        weights = [share for _, share in MIX] + [1 - sum(share for _, share in MIX)]
        last_earn: dict[int, int] = {}

        def rows():
            for n, at in enumerate(times):
                if rng.random() < COMPANY_SHARE:
                    account = account_ids[len(members) + rng.randrange(len(partners))]
                else:
                    account = account_ids[rng.randrange(len(members))]
                kind = rng.choices(kinds, weights)[0]
                if kind == "reverse" and account not in last_earn:
                    kind = "earn"
                points = rng.randint(1, 400)
                available, pending, source_type, source_id, reverses = -points, 0, "bench", "", None
                details = "{}"
                if kind == "earn":
                    available, last_earn[account] = points, entry_ids[n]
                    if rng.random() < 0.1:
                        available, pending = 0, points
                    if rng.random() < 0.2:
                        source_type, source_id = "claim", f"claim:{rng.randint(1, 10**6)}:{rng.randint(1, 10**7)}"
                        # the product line, as the engine writes it
                        details = f'{{"product_line_id": {rng.randint(1, 5)}}}'
                elif kind == "reverse":
                    reverses = last_earn[account]
                    details = '{"reverses_kind": "earn"}'  # as the ledger writes a reversal
                elif kind == "adjust" and rng.random() < 0.5:
                    available = points
                elif kind == "release":
                    available, pending = points, -points
                key = f"bench-rollups:{entry_ids[n]}"
                yield (
                    entry_ids[n], account, kind, available, pending, key, hashlib.sha256(key.encode()).hexdigest(),
                    source_type, source_id, "Benchmark entry", details, reverses,
                    datetime.fromtimestamp(at, tz=now.tzinfo),
                )  # fmt: skip

        copy_rows(
            cursor,
            PointsEntry,
            ["id", "account", "kind", "available_delta", "pending_delta", "idempotency_key", "fingerprint"]
            + ["source_type", "source_id", "explanation", "details", "reverses", "created_at"],
            rows(),
        )
    return {"accounts": len(holders), "entries": len(times)}


def _direct_totals(day: date) -> tuple[int, int]:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(DIRECT_TOTALS, {"day": day, "zone": settings.TIME_ZONE})
        counted, issued = cursor.fetchone()
    return counted, int(issued)


def measure(*, day: str, rounds: int) -> dict:
    """Time the roll-up of `day` and the bare statement `rounds` times each, alternating; check the roll-up's
    totals against a direct sum over the day's entries."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.db.models import Sum

    from analytics.models import PointsDay
    from analytics.rollups import rollup_days

    day = date.fromisoformat(day)
    params = {"day": day, "zone": settings.TIME_ZONE}
    with connection.cursor() as cursor:
        cursor.execute(BARE_CREATE)

    def bare() -> float:
        clock = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {BARE_TABLE} WHERE day = %s", [day])
            cursor.execute(BARE_INSERT, params)
        return time.perf_counter() - clock

    def rollup() -> float:
        clock = time.perf_counter()
        rollup_days(first=day, last=day, tables=["points"])
        return time.perf_counter() - clock

    bare(), rollup()  # unmeasured: the day's pages in the cache for both alike
    times = {"bare": [], "rollup": []}
    for n in range(rounds):
        order = (("bare", bare), ("rollup", rollup)) if n % 2 == 0 else (("rollup", rollup), ("bare", bare))
        for name, run_once in order:
            times[name].append(run_once())
    counted, issued = _direct_totals(day)
    totals = PointsDay.objects.filter(day=day).aggregate(entries=Sum("entries"), issued=Sum("issued"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {BARE_TABLE} WHERE day = %s", [day])
        bare_rows = cursor.fetchone()[0]
    return {
        "day": day.isoformat(),
        "bare_seconds": times["bare"],
        "rollup_seconds": times["rollup"],
        "bare_median": statistics.median(times["bare"]),
        "rollup_median": statistics.median(times["rollup"]),
        "bare_rows": bare_rows,
        "rollup_rows": PointsDay.objects.filter(day=day).count(),
        "entries_counted": counted,
        "rollup_entries": totals["entries"] or 0,
        "issued_direct": issued,
        "rollup_issued": totals["issued"] or 0,
    }


# The benchmark --------------------------------------------------------------------------------------------------


def run(
    options: Options,
    *,
    day_entries: int = DAY_ENTRIES,
    other_entries: int = OTHER_ENTRIES,
    member_scale: int = MEMBER_SCALE,
    rounds: int = ROUNDS,
) -> bool:
    """Run the benchmark, print the table, write bench/results/rollups.json; True when the target is met."""
    started = time.monotonic()
    url = harness.sibling_database(options.database_url, "rollups")
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(f"-- data: database {_name(url)}", flush=True)
    seed_seconds = harness.prepare_channel(url, member_scale, label="[rollups] ")
    facts = harness.django_call(
        url,
        "bench.rollups:build",
        {"day_entries": day_entries, "other_entries": other_entries, "days_before": DAYS_BEFORE},
        label="   ",
    )
    print(
        f"   program {facts['program_id']}: {facts['accounts']:,} accounts, {facts['entries_in_database']:,} entries "
        f"in all, {facts['entries_on_the_day']:,} counted on {facts['day']}",
        flush=True,
    )
    print(f"-- {rounds} rounds of each, alternating", flush=True)
    load_average = harness.report_load("")
    measured = harness.django_call(url, "bench.rollups:measure", {"day": facts["day"], "rounds": rounds})
    ratio = measured["bare_median"] / measured["rollup_median"] if measured["rollup_median"] else 0.0
    failures = []
    if ratio < MIN_RATIO:
        failures.append(f"the roll-up at {ratio:.2f} of the bare statement's speed, below {MIN_RATIO}")
    if measured["rollup_entries"] != measured["entries_counted"]:
        failures.append(f"{measured['rollup_entries']:,} entries rolled up, {measured['entries_counted']:,} on the day")
    if measured["rollup_issued"] != measured["issued_direct"]:
        failures.append(f"{measured['rollup_issued']:,} points issued rolled up, {measured['issued_direct']:,} direct")
    passed = not failures

    table = harness.Table(["statement", "median s", "runs s", "rows written", "result"])
    table.add(
        "bare INSERT … SELECT … GROUP BY",
        f"{measured['bare_median']:.3f}",
        " ".join(f"{s:.3f}" for s in measured["bare_seconds"]),
        f"{measured['bare_rows']:,}",
        "",
    )
    table.add(
        "rollup_days(points)",
        f"{measured['rollup_median']:.3f}",
        " ".join(f"{s:.3f}" for s in measured["rollup_seconds"]),
        f"{measured['rollup_rows']:,}",
        f"{ratio:.2f} of bare (>= {MIN_RATIO}): {'PASS' if passed else 'FAIL'}",
    )
    print()
    print(table.render())
    for failure in failures:
        print(f"  {failure}")
    print(flush=True)
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed, options),
            "load_average_at_start": load_average,
            "targets": {"min_ratio_to_bare_sql": MIN_RATIO, "totals": "equal to a direct sum over the day"},
            "data": {**facts, "database": _name(url), "seed_seconds": round(seed_seconds, 1)},
            "measured": measured,
            "ratio": round(ratio, 3),
            "failures": failures,
        },
    )
    print(
        f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.1f} s)",
        flush=True,
    )
    return passed


def _name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")
