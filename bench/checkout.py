"""The checkout benchmark: one-tap redemption (POST /rewards/<id>/redeem/) under load, next to the bare view.

gunicorn (--workers sync workers, database connections kept open) serves bench.settings on loopback. wrk with
bench/lua/redeem.lua keeps 16 clients busy: each request is a member signed in with their own session cookie
and CSRF token (rotating through up to 200 members, so concurrent requests are different people), posting
quantity=1 and a checkout key used once. The reward is an e-voucher with a pool of 100,000+ free codes: the
heavier path (an order, its line, a code taken with SKIP LOCKED, a ledger spend, and the automatic approval and
fulfilment with their events). A success is a 302 to /rewards/orders/<id>/; anything else is an error. The bare
view runs with the same 16 clients in the same run, for reference; so does the redemption with one client on a
fresh server (the service time without queueing, for reference). The CPU time the gunicorn workers, the
database's backends and wrk use per order is measured from /proc, to tell where the time goes.

After the load: the orders in the database must be exactly the successful requests (plus at most the requests
wrk had in flight when it stopped, which the server may still have finished), every order fulfilled with its
spend entry, every order line holding exactly its quantity of codes and no code twice, and
loyalty.selectors.ledger.ledger_problems() must find nothing.

The data (database <name>_checkout): the demo channel at scale 1 (partners.demo, without seed_demo's demo
program) for the members, then one program, chosen in each session, the reward, the code pool (topped up with
COPY when it runs low) and points for each member (ledger.earn). Re-runs reuse it.

Target: p95 under 50 ms, no errors, and every check above.
"""

import os
import resource
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench import harness
from bench.harness import BenchError, Options

NAME = "checkout"
DESCRIPTION = "one-tap redemption of a code reward through gunicorn, 16 signed-in clients, vs the bare view"

CLIENTS = 16
MAX_P95_MS = 50.0
MEMBERS = 200  # members the clients rotate through
FREE_CODES = 100_000  # the pool is topped up to this many free codes before each run
POINTS_PRICE = 100
POINTS_MIN = 1_000_000  # members below this get POINTS_GRANT more before the run
POINTS_GRANT = 10_000_000
PROGRAM_SLUG = "bench-checkout"
REWARD_SKU = "BENCH-EVOUCHER"


# The Django side (run in child processes by harness.django_call) ------------------------------------------------


def build(*, members: int, free_codes: int, points_min: int, points_grant: int) -> dict:
    """The program, the code reward, its pool and the members' points, created or topped up; sessions and CSRF
    tokens for the members; and one redemption through the test client, with its queries."""
    from django.db import connection, transaction
    from django.test import RequestFactory
    from django.utils import timezone

    from bench.ledger import copy_rows
    from loyalty.services import ledger
    from partners.constants import MemberStatus
    from partners.models import Member
    from rewards.constants import PaidBy, RewardKind
    from rewards.models import Reward, RewardCategory, VoucherCode

    started = time.monotonic()
    with transaction.atomic():
        program, _ = harness.bench_program(PROGRAM_SLUG, "Benchmark: checkout", started_days_ago=30, expiry_months=None)
        category, _ = RewardCategory.objects.get_or_create(slug="bench-vouchers", defaults={"name": "Benchmark"})
        reward, _ = Reward.objects.get_or_create(
            program=program,
            sku=REWARD_SKU,
            defaults={
                "category": category,
                "name": "E-voucher 10 EUR",
                "kind": RewardKind.VOUCHER,
                "points_price": POINTS_PRICE,
                "uses_codes": True,
                "paid_by": PaidBy.MEMBER,
            },
        )
        free = VoucherCode.objects.filter(reward=reward, order_line__isnull=True).count()
        total = VoucherCode.objects.filter(reward=reward).count()
        if free < free_codes:
            now = timezone.now()
            with connection.cursor() as cursor:
                copy_rows(
                    cursor,
                    VoucherCode,
                    ["reward", "code", "created_at"],
                    ((reward.pk, f"BENCH-{reward.pk}-{n:010d}", now) for n in range(total, total + free_codes - free)),
                )
                cursor.execute(f"ANALYZE {connection.ops.quote_name(VoucherCode._meta.db_table)}")
            print(f"added {free_codes - free:,} codes to the pool with COPY", flush=True)
    people = list(
        Member.objects.filter(status=MemberStatus.ACTIVE, user__is_active=True)
        .select_related("user")
        .order_by("pk")[:members]
    )
    if len(people) < CLIENTS:
        raise RuntimeError(f"Only {len(people)} active members: seed more demo data.")
    granted = 0
    for member in people:
        account = ledger.member_account(program=program, member=member)
        if account.available < points_min:
            ledger.earn(
                account=account,
                points=points_grant,
                key=f"bench-checkout:grant:{account.pk}:{account.lifetime_earned}",
                source_type="bench",
                explanation="Benchmark grant",
            )
            granted += 1
    if granted:
        print(f"granted {points_grant:,} points to {granted} members (ledger.earn)", flush=True)

    factory = RequestFactory()
    credentials = []
    for member in people:
        request = factory.get("/")
        token = _csrf_token(request)
        cookie = f"{_session_cookie(member.user, program.pk)}; csrftoken={request.META['CSRF_COOKIE']}"
        credentials.append([cookie, token])
    return {
        "program_id": program.pk,
        "reward_id": reward.pk,
        "path": f"/rewards/{reward.pk}/redeem/",
        "members": len(people),
        "codes_total": VoucherCode.objects.filter(reward=reward).count(),
        "codes_free": VoucherCode.objects.filter(reward=reward, order_line__isnull=True).count(),
        "credentials": credentials,
        "probe": _probe(people[0].user, reward.pk, program.pk),
        "build_seconds": round(time.monotonic() - started, 1),
    }


def _csrf_token(request) -> str:
    from django.middleware.csrf import get_token

    return get_token(request)  # sets request.META["CSRF_COOKIE"] to the secret the cookie carries


def _signed_in(user, program_id: int):
    """A test client signed in as `user`, with the benchmark's program chosen in the session (the member site
    shows the session's program; without one, the oldest active program)."""
    from django.test import Client

    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    client.force_login(user)
    session = client.session
    session["program_id"] = program_id
    session.save()
    return client


def _session_cookie(user, program_id: int) -> str:
    from django.conf import settings

    client = _signed_in(user, program_id)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _probe(user, reward_id: int, program_id: int) -> dict:
    """One redemption through the test client (after one unmeasured): status, redirect, and each query's time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _signed_in(user, program_id)
    path = f"/rewards/{reward_id}/redeem/"
    client.post(path, {"quantity": 1, "checkout_key": f"probe-{uuid.uuid4().hex}"})
    with CaptureQueriesContext(connection) as captured:
        clock = time.perf_counter()
        response = client.post(path, {"quantity": 1, "checkout_key": f"probe-{uuid.uuid4().hex}"})
        elapsed = time.perf_counter() - clock
    return {
        "status": response.status_code,
        "location": response.get("Location", ""),
        "ms": round(elapsed * 1000, 2),
        "queries": [{"ms": float(q["time"]) * 1000, "sql": q["sql"]} for q in captured.captured_queries],
    }


def verify(*, reward_id: int, runs: list[dict]) -> dict:
    """The checks after the load. `runs`: [{"run": id, "ok_ids": [order ids wrk saw]}, ...]."""
    from django.db import connection

    from loyalty.selectors.ledger import ledger_problems
    from rewards.constants import OrderStatus
    from rewards.models import RedemptionOrder

    answers = []
    for run in runs:
        orders = RedemptionOrder.objects.filter(checkout_key__regex=rf"^[0-9]+:{run['run']}-")
        found = {
            pk: (status, spend, total, delta)
            for pk, status, spend, total, delta in orders.values_list(
                "pk", "status", "spend_entry", "total_points", "spend_entry__available_delta"
            )
        }
        ok = set(run["ok_ids"])
        answers.append(
            {
                "run": run["run"],
                "orders": len(found),
                "answered_ok": len(ok),
                "ok_but_missing": sorted(ok - set(found))[:20],
                "not_answered": len(set(found) - ok),
                "not_fulfilled": sum(1 for status, *_ in found.values() if status != OrderStatus.FULFILLED),
                "spend_mismatch": sum(
                    1 for _, spend, total, delta in found.values() if spend is None or delta != -total
                ),
            }
        )
    with connection.cursor() as cursor:
        # Every line of the reward holds exactly its quantity of codes (none of these orders was cancelled).
        cursor.execute(
            """
            SELECT l.id, l.quantity, COUNT(c.id) FROM rewards_redemptionline l
            LEFT JOIN rewards_vouchercode c ON c.order_line_id = l.id
            WHERE l.reward_id = %s GROUP BY l.id HAVING COUNT(c.id) <> l.quantity
            """,
            [reward_id],
        )
        line_problems = [f"line {a}: quantity {b}, {c} codes" for a, b, c in cursor.fetchall()]
        cursor.execute(
            "SELECT code, COUNT(*) FROM rewards_vouchercode WHERE reward_id = %s GROUP BY code HAVING COUNT(*) > 1",
            [reward_id],
        )
        duplicate_codes = [code for code, _ in cursor.fetchall()]
        cursor.execute(
            "SELECT COUNT(*) FROM rewards_vouchercode WHERE reward_id = %s AND order_line_id IS NOT NULL", [reward_id]
        )
        assigned = cursor.fetchone()[0]
        cursor.execute(
            "SELECT COALESCE(SUM(quantity), 0) FROM rewards_redemptionline WHERE reward_id = %s", [reward_id]
        )
        units = cursor.fetchone()[0]
    return {
        "runs": answers,
        "line_problems": line_problems[:20],
        "duplicate_codes": duplicate_codes[:20],
        "codes_assigned": assigned,
        "units_ordered": units,
        "ledger_problems": ledger_problems()[:20],
    }


# The benchmark --------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    name: str
    path: str
    load: harness.ScriptedLoad
    successes: int
    rate: float  # successes per second
    errors: int
    cpu: dict | None = None  # CPU seconds of the gunicorn workers (app), PostgreSQL backends (db) and wrk
    failures: list[str] | None = None
    clients: int = CLIENTS

    def cpu_ms(self, part: str) -> float:
        """CPU milliseconds per request (per order for the checkout) in `part`: app, db or wrk."""
        return self.cpu[part] * 1000 / self.successes if self.cpu and self.successes else 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


def run(options: Options) -> bool:
    """Run the benchmark, print the table, write bench/results/checkout.json; True when every target is met."""
    started = time.monotonic()
    url = harness.sibling_database(options.database_url, "checkout")
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(f"-- data: database {_name(url)}", flush=True)
    seed_seconds = harness.prepare_channel(url, 1, label="[checkout] ")
    facts = harness.django_call(
        url,
        "bench.checkout:build",
        {"members": MEMBERS, "free_codes": FREE_CODES, "points_min": POINTS_MIN, "points_grant": POINTS_GRANT},
        label="   ",
    )
    probe = facts["probe"]
    print(
        f"   reward {facts['reward_id']} ({facts['codes_free']:,} free codes of {facts['codes_total']:,}), "
        f"{facts['members']} members; one redemption in-process: HTTP {probe['status']} {probe['location']}, "
        f"{len(probe['queries'])} queries, {probe['ms']:.1f} ms",
        flush=True,
    )
    for query in sorted(probe["queries"], key=lambda q: -q["ms"])[:3]:
        print(f"     {query['ms']:6.2f} ms  {query['sql'][:140]}", flush=True)
    if probe["status"] != 302 or not probe["location"].startswith("/rewards/orders/"):
        raise BenchError(f"The redemption does not place an order: HTTP {probe['status']} {probe['location']}")

    harness.ensure_wrk()
    print(
        f"-- load: {CLIENTS} clients, {options.duration} s per URL after {options.warmup} s warm-up; "
        f"gunicorn {options.workers} sync workers",
        flush=True,
    )
    load_average = harness.report_load("")
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-checkout-") as directory:
        credentials = Path(directory) / "credentials.tsv"
        credentials.write_text("".join(f"{cookie}\t{token}\n" for cookie, token in facts["credentials"]))

        def redeem(server: harness.Server, phase: str, seconds: int, clients: int) -> None:
            run_id = uuid.uuid4().hex[:8]
            ids_file = Path(directory) / f"orders-{run_id}.txt"
            threads = min(options.threads, clients)
            load, cpu = _metered(
                server,
                url,
                lambda: harness.run_wrk_script(
                    server.url + facts["path"],
                    script="redeem.lua",
                    seconds=seconds,
                    threads=threads,
                    connections=clients,
                    script_args=(str(credentials), run_id, str(ids_file), str(threads)),
                ),
            )
            ok_ids = [int(line) for line in ids_file.read_text().split()] if ids_file.exists() else []
            runs.append({"run": run_id, "phase": phase, "clients": clients, "load": load, "cpu": cpu, "ok_ids": ok_ids})
            print(
                f"   checkout, {phase}, {clients} client{'s' if clients > 1 else ''}: "
                f"{len(ok_ids) / load.seconds:,.0f} orders/s, p95 {load.p95_ms:.1f} ms",
                flush=True,
            )

        with harness.Server(url, workers=options.workers) as server:
            cookie, token = facts["credentials"][0]
            status, headers, body = harness.post_form(
                server.url + facts["path"],
                {"quantity": "1", "checkout_key": f"check-{uuid.uuid4().hex}", "csrfmiddlewaretoken": token},
                cookie=cookie,
            )
            if status != 302 or not headers.get("Location", "").startswith("/rewards/orders/"):
                raise BenchError(f"Through gunicorn the redemption answers HTTP {status} {headers.get('Location')}")
            bare = bare_cpu = None
            for seconds in (options.warmup, options.duration):  # warm-up, then the measured run
                if seconds > 0:
                    bare, bare_cpu = _metered(
                        server,
                        url,
                        lambda seconds=seconds: harness.run_wrk_script(
                            server.url + "/bench/bare/",
                            script="summary.lua",
                            seconds=seconds,
                            threads=options.threads,
                            connections=CLIENTS,
                        ),
                    )
            print(f"   bare view: {bare.requests_per_second:,.0f} req/s, p95 {bare.p95_ms:.1f} ms", flush=True)
            if options.warmup > 0:
                redeem(server, "warm-up", options.warmup, CLIENTS)
            redeem(server, "measure", options.duration, CLIENTS)
        # gunicorn has stopped: the requests it was still serving are finished or rolled back. A new server for
        # one client, the service time without queueing (wrk leaves the old one a queue of unanswered requests).
        with harness.Server(url, workers=options.workers) as server:
            if options.warmup > 0:
                redeem(server, "warm-up (one client)", options.warmup, 1)
            redeem(server, "one client", options.duration, 1)
    measured = {r["phase"]: r for r in runs}
    checkout, checkout_cpu = measured["measure"]["load"], measured["measure"]["cpu"]
    single, single_cpu = measured["one client"]["load"], measured["one client"]["cpu"]
    checks = harness.django_call(
        url,
        "bench.checkout:verify",
        {"reward_id": facts["reward_id"], "runs": [{"run": r["run"], "ok_ids": r["ok_ids"]} for r in runs]},
    )
    checks["phases"] = [r["phase"] for r in runs]

    bare_result = Measured(
        "bare view", "GET /bench/bare/", bare, bare.requests, bare.requests_per_second, bare.errors, cpu=bare_cpu
    )
    extra = checkout.extra
    errors = _errors(checkout)
    result = Measured(
        "checkout",
        f"POST {facts['path']}",
        checkout,
        extra["ok"],
        extra["ok"] / checkout.seconds,
        errors,
        cpu=checkout_cpu,
    )
    single_result = Measured(
        "checkout", f"POST {facts['path']}", single, single.extra["ok"], single.extra["ok"] / single.seconds,
        _errors(single), cpu=single_cpu, clients=1,
    )  # fmt: skip
    integrity = _integrity(runs, checks)
    failures = []
    if not result.successes:
        failures.append(f"no order placed within {checkout.seconds:.1f} s: every request took longer, or failed")
    if checkout.p95_ms >= MAX_P95_MS:
        failures.append(f"p95 {checkout.p95_ms:.1f} ms, not under {MAX_P95_MS:.0f} ms")
    if errors:
        kinds = {**{k: v for k, v in extra["error_kinds"].items() if v}, **extra["failures"]}
        failures.append(f"{errors} failed requests {kinds}, e.g. {extra['failure_sample'][:200]!r}")
    result.failures = failures + integrity
    _print(bare_result, result, single_result, checks)
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, result.passed, options, omit=("database_url", "connections")),
            "clients": CLIENTS,
            "load_average_at_start": load_average,
            "targets": {"max_p95_ms": MAX_P95_MS, "errors": 0, "orders_equal_successes": True, "ledger_problems": 0},
            "data": {
                **{k: v for k, v in facts.items() if k not in ("credentials", "probe")},
                "database": _name(url),
                "seed_seconds": round(seed_seconds, 1),
            },
            "probe": probe,
            "bare": asdict(bare_result),
            "checkout": asdict(result) | {"ratio_to_bare": result.rate / bare_result.rate},
            "checkout_one_client": asdict(single_result),
            "runs": [
                {"run": r["run"], "phase": r["phase"], "clients": r["clients"], "load": asdict(r["load"])}
                | {"cpu_seconds": r["cpu"], "successes": len(r["ok_ids"])}
                for r in runs
            ],
            "checks": checks,
        },
    )
    print(
        f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.1f} s)",
        flush=True,
    )
    return result.passed


def _errors(load: harness.ScriptedLoad) -> int:
    """Failed redemptions: socket errors, and answers other than a redirect to the new order (wrk's own count
    of HTTP errors is part of the latter)."""
    sockets = sum(count for kind, count in load.extra["error_kinds"].items() if kind != "status")
    return sockets + load.extra["answered"] - load.extra["ok"]


def _metered(server: harness.Server, database_url: str, run) -> tuple[harness.ScriptedLoad, dict]:
    """run() (a wrk run) with the CPU seconds the gunicorn workers, the database's backends and wrk used meanwhile."""
    app = harness.CpuMeter(lambda: harness.child_pids(server.process.pid))
    db = harness.CpuMeter(lambda: harness.postgres_backend_pids(database_url))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    app.start()
    db.start()
    load = run()
    app.stop()
    db.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk has ended and been waited for
    wrk = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return load, {"app": app.seconds, "db": db.seconds, "wrk": wrk, "seconds": load.seconds}


def _integrity(runs: list[dict], checks: dict) -> list[str]:
    failures = []
    for run, check in zip(runs, checks["runs"], strict=True):
        extra = run["load"].extra
        in_flight = extra["issued"] - extra["answered"]
        if check["ok_but_missing"]:
            failures.append(f"run {run['run']}: orders {check['ok_but_missing']} were answered but are not there")
        if check["not_answered"] > in_flight:
            failures.append(
                f"run {run['run']}: {check['not_answered']} orders nobody got an answer for, but only {in_flight} "
                "requests were in flight when wrk stopped"
            )
        if check["not_fulfilled"]:
            failures.append(f"run {run['run']}: {check['not_fulfilled']} orders not fulfilled")
        if check["spend_mismatch"]:
            failures.append(f"run {run['run']}: {check['spend_mismatch']} orders without a matching spend entry")
    if checks["line_problems"]:
        failures.append(f"order lines without exactly their quantity of codes: {checks['line_problems'][:3]}")
    if checks["duplicate_codes"]:
        failures.append(f"codes in the pool twice: {checks['duplicate_codes'][:3]}")
    if checks["codes_assigned"] != checks["units_ordered"]:
        failures.append(f"{checks['codes_assigned']:,} codes assigned for {checks['units_ordered']:,} units ordered")
    if checks["ledger_problems"]:
        failures.append(f"ledger problems: {checks['ledger_problems'][:3]}")
    return failures


def _print(bare: Measured, checkout: Measured, single: Measured, checks: dict) -> None:
    table = harness.Table(
        ["request", "clients", "per s", "p50 ms", "p95 ms", "p99 ms", "errors", "vs bare", "target", "result"]
    )
    for r, kind in ((bare, "reference"), (checkout, "judged"), (single, "service time")):
        table.add(
            f"{r.name} {r.path}",
            r.clients,
            f"{r.rate:,.0f}" + ("" if r is bare else " orders"),
            f"{r.load.p50_ms:.1f}",
            f"{r.load.p95_ms:.1f}",
            f"{r.load.p99_ms:.1f}",
            r.errors,
            "1.00" if r is bare else f"{r.rate / bare.rate:.3f}",
            f"p95<{MAX_P95_MS:.0f}ms, checks" if kind == "judged" else kind,
            ("PASS" if r.passed else "FAIL") if kind == "judged" else "",
        )
    print()
    print(table.render())
    measured = next(c for c, r in zip(checks["runs"], checks["phases"], strict=True) if r == "measure")
    print(
        f"  orders in the database {measured['orders']:,} = successful requests {measured['answered_ok']:,} "
        f"+ {measured['not_answered']} finished after wrk stopped; codes assigned {checks['codes_assigned']:,} = "
        f"units ordered {checks['units_ordered']:,}; ledger_problems(): "
        f"{'none' if not checks['ledger_problems'] else len(checks['ledger_problems'])}"
    )
    for r in (bare, checkout, single):
        if r.cpu and r.successes:
            busy = (r.cpu["app"] + r.cpu["db"] + r.cpu["wrk"]) / r.cpu["seconds"]
            print(
                f"  {r.name}, {r.clients} client{'s' if r.clients > 1 else ''}: CPU per "
                f"{'request' if r is bare else 'order'}: {r.cpu_ms('app'):.2f} ms in gunicorn, "
                f"{r.cpu_ms('db'):.2f} ms in PostgreSQL, {r.cpu_ms('wrk'):.2f} ms in wrk ({busy:.2f} of "
                f"{os.cpu_count()} cores busy with these)"
            )
    needed = CLIENTS / (MAX_P95_MS / 1000)
    print(
        f"  with {CLIENTS} clients always waiting, the mean response time is {CLIENTS} / throughput (Little's law): "
        f"p95 < {MAX_P95_MS:.0f} ms needs more than {needed:.0f} orders/s, at most "
        f"{(os.cpu_count() or 1) * 1000 / needed:.1f} ms of CPU per order on {os.cpu_count()} cores"
    )
    for failure in checkout.failures or []:
        print(f"  checkout: {failure}")
    print(flush=True)


def _name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")
