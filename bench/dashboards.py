"""The dashboards benchmark (issue #14): the program managers' dashboard (the admin index), an account manager's
portfolio of 60 partners (/portfolio/) and a partner owner's company dashboard (/company/overview/), with 10,000,000
ledger entries in the database next to the same pages with 10,000; and the three under load next to a bare view.

The data: two databases, <name>_dashboards10k and <name>_dashboards10m (named after their entry counts), each with the
demo channel at scale 34 (partners.demo: 10,200 memberships at 2,040 partners) and a program whose ledger alone
differs in size. In each, written once with COPY (re-runs reuse it):
- an account for every active member and every active partner (9,049; at 10,000,000 entries about 1,100 each); the
  entries spread evenly over the last SPAN_DAYS in time order, each on a random account (a tenth on company
  accounts): earns of 20 to 400 points, each with its lot expiring two years later, and spends (three in ten where
  the account has points) taking the points from the soonest-to-expire lots with their allocations, as
  loyalty.services.ledger does (bench.ledger.LedgerRows: the balances are the sums of the entries);
- a sell-out line for half of the earns (the account's partner and member, one of six products in three product
  lines, invoiced on the entry's day), so that the sales roll-up grows with the ledger as in a real program;
- three tiers with a tier for three partners in four, one sales source;
and then every day's roll-ups (analytics.rollups.rollup_days, all tables) and every partner's health for today
(analytics.health.health_refresh), as the periodic task does. The demo account manager ("Account
manager") looks after exactly PORTFOLIO_PARTNERS partners (their first ones by id, the flagship among them; the rest
of theirs go to the second account manager, or others' are taken when they have too few).

Measured:
- Each dashboard through Django's test client (the whole view: middleware, session, templates), signed in as the
  demo login it is for, the benchmark's program chosen (the session's program; ?program= on the admin index): its
  query count at both sizes (must be the same) and its median time over the rounds, the sizes taking turns in
  PASSES passes (the 10,000,000 one at most MAX_TIME_RATIO times the 10,000 one).
- gunicorn (bench settings, --workers sync workers) on the 10,000,000 database driven by wrk with --connections
  concurrent clients for --duration seconds each after --warmup: the bare view (/bench/bare/), then each dashboard
  with its signed-in session (each URL once first: it must answer 200; the server left to finish what wrk gave up on
  before the next URL): each dashboard at least MIN_BARE_RATIO of the bare view's requests per second, without failed
  requests.
"""

import http.client
import math
import random
import statistics
import time
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bench import harness
from bench.harness import BenchError, Options

NAME = "dashboards"
DESCRIPTION = "admin, portfolio (60 partners) and company dashboards at 10,000,000 entries vs 10,000; vs a bare view"

BIG_ENTRIES = 10_000_000
SMALL_ENTRIES = 10_000
MEMBER_SCALE = 34  # demo channel blocks: 10,200 memberships at 2,040 partners, in both databases
PORTFOLIO_PARTNERS = 60  # the demo account manager's portfolio
MAX_TIME_RATIO = 1.5
MIN_BARE_RATIO = 0.1
PASSES = 3  # the sizes take turns this many times (each pass a child process per database)
WARMUP_REQUESTS = 3
PROGRAM_SLUG = "bench-dashboards"
SEED = 2026
SPAN_DAYS = 720  # entries over the last 720 days: this year and last for the sales comparisons
EXPIRY = timedelta(days=730)  # the lots expire two years after their earn (none has yet)
COMPANY_SHARE = 0.1  # of the entries, on company accounts
SPEND_SHARE = 0.3  # of the entries on an account with points
SALE_SHARE = 0.5  # of the earns, with a sell-out line
EURO_CENTS_PER_POINT = 250  # a sale line's amount: 2.50 per point earned
EARN_TEXTS = ("Sale: WS-200 water softener", "Sale: filter cartridges", "Installation bonus", "Quarterly target")
SPEND_TEXTS = ("Order: e-voucher 25 EUR", "Order: branded jacket", "Order: charity donation")
LINES = (
    ("bench-softeners", "Benchmark softeners"),
    ("bench-filters", "Benchmark filters"),
    ("bench-service", "Benchmark service kits"),
)
PRODUCTS_PER_LINE = 2
TIERS = ("Bronze", "Silver", "Gold")
SOURCE_CODE = "bench-dashboards"
STATUS_TIMEOUT = 120  # seconds the one request before a dashboard's load may take
BUILD_TIMEOUT = 4 * 3600  # seconds a database's build may take (the roll-ups of 720 days of a big ledger included)


@dataclass(frozen=True)
class Dashboard:
    key: str
    path: str  # may name {program}
    who: str  # the demo login (partners.demo.demo_logins) it is for
    marker: str  # text the page shows when it shows the dashboard (not a redirect or an empty page)


BARE_PATH = "/bench/bare/"
DASHBOARDS = (
    Dashboard("program manager", "/admin/?program={program}", "Program manager", 'id="liability-value"'),
    Dashboard("account manager", "/portfolio/", "Account manager", 'data-testid="portfolio-row"'),
    Dashboard("owner", "/company/overview/", "Partner owner", 'data-testid="kpi-sales"'),
)


# The Django side: data (run in child processes by harness.django_call) -------------------------------------------


def catalogue(program) -> dict:
    """The program's product lines, products, tiers (with a tier for three partners in four) and sales source: made
    once. Returns the product ids and the source id."""
    from decimal import Decimal

    from django.utils import timezone

    from loyalty.models import PartnerTier, Product, ProductLine, SalesSource, Tier
    from partners.constants import PartnerStatus
    from partners.models import Partner

    products = []
    for code, name in LINES:
        line, _ = ProductLine.objects.get_or_create(code=code, defaults={"name": name})
        for n in range(PRODUCTS_PER_LINE):
            sku = f"BENCH-DB-{code.upper()}-{n + 1}"
            product, _ = Product.objects.get_or_create(sku=sku, defaults={"name": f"{name} {n + 1}", "line": line})
            products.append(product.pk)
    tiers = [
        Tier.objects.get_or_create(program=program, rank=rank, defaults={"name": name, "threshold": 10_000 * rank})[0]
        for rank, name in enumerate(TIERS)
    ]
    if not PartnerTier.objects.filter(program=program).exists():
        today = timezone.localdate()
        active = Partner.objects.filter(status=PartnerStatus.ACTIVE).order_by("pk").values_list("pk", flat=True)
        PartnerTier.objects.bulk_create(
            PartnerTier(
                program=program,
                partner_id=pk,
                tier=tiers[pk % 4 - 1],
                since=today - timedelta(days=100),
                held_until=today + timedelta(days=265),
                metric_value=Decimal(10_000 * (pk % 4 - 1)),
            )
            for pk in active
            if pk % 4
        )
    source, _ = SalesSource.objects.get_or_create(
        program=program, code=SOURCE_CODE, defaults={"name": "Benchmark sell-out feed"}
    )
    return {"products": products, "source": source.pk}


def assign_portfolio(*, partners: int) -> int:
    """Make the demo account manager look after exactly `partners` partners: their first ones by id (the rest go to
    the second demo account manager), or, with too few, theirs and the first others by id. Returns how many they
    have."""
    from partners.demo import ACCOUNT_MANAGERS
    from partners.models import Partner, User

    manager = User.objects.get(email=ACCOUNT_MANAGERS[0][1])
    mine = list(Partner.objects.filter(account_manager=manager).order_by("pk").values_list("pk", flat=True))
    if len(mine) > partners:
        other = User.objects.get(email=ACCOUNT_MANAGERS[1][1])
        Partner.objects.filter(pk__in=mine[partners:]).update(account_manager=other)
    elif len(mine) < partners:
        more = Partner.objects.exclude(pk__in=mine).order_by("pk").values_list("pk", flat=True)[: partners - len(mine)]
        Partner.objects.filter(pk__in=list(more)).update(account_manager=manager)
    return Partner.objects.filter(account_manager=manager).count()


class SaleRows:
    """Sell-out lines paid by earns of a LedgerRows: the earn entry each stands for, its product and points."""

    def __init__(self):
        self.entry, self.product, self.points = array("q"), array("q"), array("q")

    def __len__(self) -> int:
        return len(self.entry)

    def add(self, entry: int, product: int, points: int) -> None:
        self.entry.append(entry)
        self.product.append(product)
        self.points.append(points)


def plan_rows(
    *,
    program_id: int,
    members: list[tuple[int, int]],
    partners: list[int],
    products: list[int],
    entries: int,
    now: float,
    span_days: int = SPAN_DAYS,
    seed: int = SEED,
):
    """The ledger (bench.ledger.LedgerRows) and the sale lines of `entries` entries on the accounts of `members`
    ((member id, partner id)) and of `partners`, in time order over the `span_days` days before `now` (POSIX time).
    Returns (ledger rows, sale rows, the partner of each account)."""
    from bench.ledger import LedgerRows

    if not members:
        raise RuntimeError("No active members: seed the demo channel first.")
    rows = LedgerRows(program_id=program_id, expiry=EXPIRY, key_prefix=PROGRAM_SLUG)
    account_partner = array("q")
    member_accounts = []
    for member, partner in members:
        member_accounts.append(rows.add_account(member_id=member))
        account_partner.append(partner)
    company_accounts = []
    for partner in partners:
        company_accounts.append(rows.add_account(partner_id=partner))
        account_partner.append(partner)
    sales = SaleRows()
    rng = random.Random(seed)
    draw = rng.random
    start = now - span_days * 86_400
    step = (span_days * 86_400 - 3_600) / max(entries, 1)
    available = rows.available
    n_members, n_companies = len(member_accounts), len(company_accounts)
    for n in range(entries):
        at = start + n * step
        if n_companies and draw() < COMPANY_SHARE:
            account = company_accounts[int(draw() * n_companies)]
        else:
            account = member_accounts[int(draw() * n_members)]
        balance = available[account]
        if balance and draw() < SPEND_SHARE:
            rows.spend(account, min(balance, 50 + int(draw() * 351)), at, SPEND_TEXTS[n % len(SPEND_TEXTS)])
            continue
        points = 20 + int(draw() * 381)
        entry = rows.earn(account, points, at, EARN_TEXTS[n % len(EARN_TEXTS)])
        if draw() < SALE_SHARE:
            sales.add(entry, products[n % len(products)], points)
    return rows, sales, account_partner


def write_sales(cursor, *, rows, sales: SaleRows, account_partner, written: dict, source_id: int) -> int:
    """COPY the sale lines of `sales` (after rows.write: `written` is what it returned), invoiced on their entry's
    day in the site's zone, fully paid."""
    from zoneinfo import ZoneInfo

    from django.conf import settings

    from bench.ledger import copy_rows
    from loyalty.models import SaleLine

    zone = ZoneInfo(settings.TIME_ZONE)
    first_entry = written["entry_ids"][0] if written["entry_ids"] else 0

    def lines():
        for i, entry in enumerate(sales.entry):
            account = rows.entry_account[entry]
            member = rows.holders[account][0]
            points = sales.points[i]
            cents = points * EURO_CENTS_PER_POINT
            external = f"{SOURCE_CODE}-{first_entry + entry}"
            invoice = f"INV-{first_entry + entry}"
            yield (
                source_id, external, external.lower(), account_partner[account], member, sales.product[i],
                1 + points % 5, f"{cents // 100}.{cents % 100:02d}", invoice, invoice.lower(),
                datetime.fromtimestamp(rows.entry_at[entry], zone).date(), points, 1 + points % 5, "",
            )  # fmt: skip

    return copy_rows(
        cursor,
        SaleLine,
        ["source", "external_id", "external_key", "partner", "member", "product", "quantity", "amount"]
        + ["invoice_number", "invoice_key", "invoice_date", "points", "paid_quantity", "postings"],
        lines(),
    )


def write_data(*, program, entries: int, span_days: int = SPAN_DAYS, now: float | None = None) -> dict:
    """Plan and COPY the ledger and the sale lines of `program` (its catalogue made first), in the caller's
    transaction: the accounts of the active members and partners, `entries` entries, their lots and allocations, and
    the sale lines. Returns the row counts and the seconds each step took."""
    from django.db import connection

    from partners.constants import MemberStatus, PartnerStatus
    from partners.models import Member, Partner

    clock = time.monotonic()
    made = catalogue(program)
    members = list(Member.objects.filter(status=MemberStatus.ACTIVE).order_by("pk").values_list("pk", "partner_id"))
    partners = list(Partner.objects.filter(status=PartnerStatus.ACTIVE).order_by("pk").values_list("pk", flat=True))
    rows, sales, account_partner = plan_rows(
        program_id=program.pk,
        members=members,
        partners=partners,
        products=made["products"],
        entries=entries,
        now=now if now is not None else datetime.now(UTC).timestamp(),
        span_days=span_days,
    )
    planned = time.monotonic()
    print(
        f"planned {len(rows):,} entries and {len(sales):,} sale lines on {len(rows.holders):,} accounts in "
        f"{planned - clock:.1f} s; writing them with COPY",
        flush=True,
    )
    with connection.cursor() as cursor:
        written = rows.write(cursor)
        ledger = time.monotonic()
        lines = write_sales(
            cursor, rows=rows, sales=sales, account_partner=account_partner, written=written, source_id=made["source"]
        )
    done = time.monotonic()
    return {
        "accounts": written["accounts"],
        "entries": written["entries"],
        "lots": written["lots"],
        "allocations": written["allocations"],
        "sale_lines": lines,
        "plan_seconds": round(planned - clock, 1),
        "ledger_copy_seconds": round(ledger - planned, 1),
        "sales_copy_seconds": round(done - ledger, 1),
    }


def build_rollups(*, program, span_days: int = SPAN_DAYS, label: str = "") -> dict:
    """Sum every day of the span not summed yet (each roll-up table), up to today. Returns the days rebuilt and the
    seconds it took."""
    from django.utils import timezone

    from analytics.models import RollupDay
    from analytics.rollups import ALL, rollup_days

    clock = time.monotonic()
    today = timezone.localdate()
    first = max(program.starts_on, today - timedelta(days=span_days + 1))
    wanted = (today - first).days + 1
    summed = {
        name: set(RollupDay.objects.filter(rollup=name, day__range=(first, today)).values_list("day", flat=True))
        for name in ALL
    }
    missing = [
        first + timedelta(days=n)
        for n in range(wanted)
        if any(first + timedelta(days=n) not in days for days in summed.values())
    ]
    if not missing:
        return {"days": 0, "seconds": 0.0}

    def progress(day, report):
        done = (day - missing[0]).days + 1
        if done % 60 == 0:
            print(f"{label}roll-ups: {done:,} of {(today - missing[0]).days + 1:,} days", flush=True)

    rollup_days(first=missing[0], last=today, tables=ALL, progress=progress)
    return {"days": (today - missing[0]).days + 1, "seconds": round(time.monotonic() - clock, 1)}


def build(*, entries: int, portfolio_partners: int = PORTFOLIO_PARTNERS, span_days: int = SPAN_DAYS) -> dict:
    """The program with its ledger, sale lines and roll-ups, and the account manager's portfolio: written once, later
    calls find them. Returns the facts the report shows."""
    from django.db import connection, transaction

    from analytics.health import health_refresh
    from analytics.models import ClaimsDay, MembersDay, PointsDay, SalesDay
    from bench.ledger import vacuum_analyze
    from loyalty.models import PointsAccount, PointsAllocation, PointsEntry, PointsLot, SaleLine
    from partners.constants import MemberStatus
    from partners.demo import demo_logins
    from partners.models import Member

    started = time.monotonic()
    written = None
    with transaction.atomic():
        program, _ = harness.bench_program(PROGRAM_SLUG, "Benchmark: dashboards", started_days_ago=span_days + 30)
        portfolio = assign_portfolio(partners=portfolio_partners)
        present = PointsEntry.objects.filter(account__program=program).count()
        if present == 0:
            written = write_data(program=program, entries=entries, span_days=span_days)
            print(
                f"wrote {written['entries']:,} entries, {written['lots']:,} lots, {written['allocations']:,} "
                f"allocations on {written['accounts']:,} accounts in {written['ledger_copy_seconds']} s and "
                f"{written['sale_lines']:,} sale lines in {written['sales_copy_seconds']} s",
                flush=True,
            )
        elif present != entries:
            raise RuntimeError(
                f"Program {PROGRAM_SLUG} has {present:,} entries, not {entries:,}: drop the database "
                f"{connection.settings_dict['NAME']} and run again."
            )
    vacuumed = 0.0
    if written:
        clock = time.monotonic()
        vacuum_analyze(PointsAccount, PointsEntry, PointsLot, PointsAllocation, SaleLine)
        vacuumed = time.monotonic() - clock
    rollups = build_rollups(program=program, span_days=span_days)
    if rollups["days"]:
        vacuum_analyze(PointsDay, SalesDay, ClaimsDay, MembersDay)
        print(f"summed {rollups['days']:,} days of roll-ups in {rollups['seconds']} s", flush=True)
    clock = time.monotonic()  # the periodic task's second step: every partner's health scored for today
    scored = health_refresh(program=program)
    health_seconds = round(time.monotonic() - clock, 1)
    print(f"scored {scored:,} partners' health in {health_seconds} s", flush=True)
    owner = Member.objects.get(user__email=dict(demo_logins())["Partner owner"], status=MemberStatus.ACTIVE)
    return {
        "health_seconds": health_seconds,
        "program_id": program.pk,
        "built": written is not None,
        "build_seconds": round(time.monotonic() - started, 1),
        "written": written,
        "vacuum_seconds": round(vacuumed, 1),
        "rollups": rollups,
        "entries": PointsEntry.objects.filter(account__program=program).count(),
        "accounts": PointsAccount.objects.filter(program=program).count(),
        "open_lots": PointsLot.objects.filter(account__program=program, remaining__gt=0).count(),
        "sale_lines": SaleLine.objects.filter(source__program=program).count(),
        "points_day_rows": PointsDay.objects.filter(program_id=program.pk).count(),
        "sales_day_rows": SalesDay.objects.filter(program_id=program.pk).count(),
        "portfolio_partners": portfolio,
        "owner_team": Member.objects.filter(partner_id=owner.partner_id, status=MemberStatus.ACTIVE).count(),
    }


# The Django side: measures ----------------------------------------------------------------------------------------


def _signed_in(who: str, program_id: int, host: str):
    """A test client signed in as the demo login `who`, the program chosen in its session."""
    from django.test import Client

    from partners.demo import demo_logins
    from partners.models import User

    client = Client(raise_request_exception=False, HTTP_HOST=host)
    client.force_login(User.objects.get(email=dict(demo_logins())[who]))
    session = client.session
    session["program_id"] = program_id
    session.save()
    return client


def measure_pages(*, program_id: int, rounds: int, warmup: int = WARMUP_REQUESTS, host: str = harness.LOOPBACK) -> dict:
    """Each dashboard as its demo login: status, whether it shows the dashboard, the queries of one request (with the
    slowest three), then the time and database time of `rounds` requests, the dashboards taking turns (those that
    answered 200; a later answer that is not 200 is counted as failed and not timed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.leaderboards import DatabaseTime

    targets = {d.key: (_signed_in(d.who, program_id, host), d.path.format(program=program_id)) for d in DASHBOARDS}
    results = {}
    for dashboard in DASHBOARDS:
        client, path = targets[dashboard.key]
        for _ in range(warmup):
            client.get(path)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        queries = sorted(
            ({"ms": round(float(q["time"]) * 1000, 3), "sql": q["sql"][:300]} for q in captured.captured_queries),
            key=lambda q: -q["ms"],
        )
        results[dashboard.key] = {
            "path": path,
            "who": dashboard.who,
            "status": response.status_code,
            "location": response.get("Location", ""),
            "shown": dashboard.marker in response.content.decode(errors="replace"),
            "queries": len(queries),
            "slowest_queries": queries[:3],
            "times_ms": [],
            "db_ms": [],
            "failed": 0,
        }
    timed = {key: target for key, target in targets.items() if results[key]["status"] == 200}
    for _ in range(rounds):
        for key, (client, path) in timed.items():
            timer = DatabaseTime()
            with connection.execute_wrapper(timer):
                clock = time.perf_counter()
                response = client.get(path)
                elapsed = time.perf_counter() - clock
            if response.status_code != 200:
                results[key]["failed"] += 1
                continue
            results[key]["times_ms"].append(round(elapsed * 1000, 3))
            results[key]["db_ms"].append(round(timer.ms, 3))
    return results


def sessions(*, program_id: int) -> dict[str, str]:
    """A session cookie (Cookie header value) per dashboard, signed in as its demo login, the program chosen."""
    from django.conf import settings

    return {
        d.key: f"{settings.SESSION_COOKIE_NAME}="
        f"{_signed_in(d.who, program_id, harness.LOOPBACK).cookies[settings.SESSION_COOKIE_NAME].value}"
        for d in DASHBOARDS
    }


# The benchmark ------------------------------------------------------------------------------------------------------


def size_label(entries: int) -> str:
    """10,000 -> "10k", 10,000,000 -> "10M"."""
    if entries >= 1_000_000 and entries % 1_000_000 == 0:
        return f"{entries // 1_000_000}M"
    if entries >= 1_000 and entries % 1_000 == 0:
        return f"{entries // 1_000}k"
    return str(entries)


def _status(url: str, cookie: str) -> str:
    """GET `url` (its query string too) once: "" when it answers 200, else what went wrong."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=STATUS_TIMEOUT)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", target, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:  # a worker killed by gunicorn's timeout, a slow page
        return f"no answer ({type(exc).__name__}: {exc})"
    finally:
        connection.close()
    if response.status != 200:
        return f"HTTP {response.status} {response.getheader('Location', '')}".strip()
    return ""


def _settle(server, database_url: str, *, limit: float = 120.0) -> None:
    """Wait until the server's workers and their database backends are idle (a request wrk gave up on may still
    run), at most `limit` seconds, so that the next URL's load starts on an idle server."""

    def busy() -> float:
        return sum(
            harness.cpu_seconds(pid)
            for pid in harness.child_pids(server.process.pid) + harness.postgres_backend_pids(database_url)
        )

    deadline = time.monotonic() + limit
    before = busy()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        after = busy()
        if after - before < 0.05:
            return
        before = after


def measure(
    urls: dict[str, str], facts: dict[str, dict], *, rounds: int, passes: int = PASSES, label: str = "   "
) -> dict:
    """The pages of both databases: `passes` passes, the sizes taking turns (which goes first alternates), each pass
    `rounds` / `passes` requests per page after the warm-up; the times pooled over the passes."""
    per_pass = max(1, math.ceil(rounds / passes))
    sizes = list(urls)
    pooled: dict[str, dict] = {size: {} for size in sizes}
    for n in range(passes):
        for size in sizes if n % 2 == 0 else reversed(sizes):
            answer = harness.django_call(
                urls[size],
                "bench.dashboards:measure_pages",
                {"program_id": facts[size]["program_id"], "rounds": per_pass},
                label=label,
            )
            for key, page in answer.items():
                kept = pooled[size].setdefault(
                    key, {**page, "times_ms": [], "db_ms": [], "query_counts": [], "failed": 0}
                )
                kept["times_ms"] += page["times_ms"]
                kept["db_ms"] += page["db_ms"]
                kept["query_counts"].append(page["queries"])
                kept["failed"] += page["failed"]
                if page["status"] != 200 or not page["shown"]:
                    kept.update(status=page["status"], shown=page["shown"], location=page["location"])
    for pages in pooled.values():
        for page in pages.values():
            page["queries"] = max(page["query_counts"])
            page["median_ms"] = round(statistics.median(page["times_ms"]), 3) if page["times_ms"] else None
            page["median_db_ms"] = round(statistics.median(page["db_ms"]), 3) if page["db_ms"] else None
            page["requests"] = len(page["times_ms"])
    return pooled


def load(url: str, program_id: int, options: Options) -> tuple[dict, dict]:
    """gunicorn on the database at `url` under wrk: the bare view, then each dashboard with its session. Returns the
    figures per URL, and why a dashboard could not be loaded (it did not answer 200 to one request first)."""
    cookies = harness.django_call(url, "bench.dashboards:sessions", {"program_id": program_id})
    harness.ensure_wrk()
    targets = [("bare view", BARE_PATH, "")] + [
        (d.key, d.path.format(program=program_id), cookies[d.key]) for d in DASHBOARDS
    ]
    results, unavailable = {}, {}
    with harness.Server(url, workers=options.workers, start_timeout=60) as server:
        for key, path, cookie in targets:
            problem = _status(server.url + path, cookie)
            if problem and key == "bare view":
                raise BenchError(f"The bare view fails through gunicorn: {problem}\n{server.output()}")
            if problem:
                unavailable[key] = problem
                print(f"   {key}: {path} through gunicorn: {problem}; not loaded", flush=True)
                _settle(server, url)
        targets = [target for target in targets if target[0] not in unavailable]
        for phase, seconds in (("warm-up", options.warmup), ("measure", options.duration)):
            for key, path, cookie in targets if seconds > 0 else []:
                measured = harness.run_wrk(
                    server.url + path,
                    seconds=seconds,
                    threads=options.threads,
                    connections=options.connections,
                    cookie=cookie,
                )
                _settle(server, url)
                if phase == "measure":
                    results[key] = measured
                    print(
                        f"   {key}: {measured.requests_per_second:,.1f} req/s, p50 {measured.p50_ms:.1f} ms, "
                        f"p99 {measured.p99_ms:.1f} ms, {measured.errors} failed",
                        flush=True,
                    )
    return results, unavailable


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(
    pages: dict, throughput: dict, unavailable: dict, sizes: list[str], options: Options
) -> tuple[bool, list, dict]:
    """Print the figures and the verdicts; returns (passed, checks, ratios)."""
    small, big = sizes
    bare = throughput["bare view"]
    table = harness.Table(
        ["dashboard", f"queries {small}", f"queries {big}", f"ms {small}", f"ms {big}", f"{big}/{small}"]
        + [f"DB ms {big}", "req/s", "p99 ms", "vs bare"]
    )
    table.add("bare view", "", "", "", "", "", "", f"{bare.requests_per_second:,.1f}", f"{bare.p99_ms:.1f}", "1.00")
    checks, ratios = [], {}
    for dashboard in DASHBOARDS:
        a, b = pages[small][dashboard.key], pages[big][dashboard.key]
        timed = a["median_ms"] is not None and b["median_ms"] is not None
        ratio = b["median_ms"] / a["median_ms"] if timed and a["median_ms"] else None
        loaded = throughput.get(dashboard.key)
        vs_bare = loaded.requests_per_second / bare.requests_per_second if loaded and bare.requests_per_second else 0.0
        ratios[dashboard.key] = {"time": round(ratio, 3) if ratio else None, "vs_bare": round(vs_bare, 3)}
        table.add(
            f"{dashboard.key} {dashboard.path.split('?')[0]}", a["queries"], b["queries"], _ms(a["median_ms"]),
            _ms(b["median_ms"]), f"{ratio:.2f}" if ratio else "-", _ms(b["median_db_ms"]),
            f"{loaded.requests_per_second:,.1f}" if loaded else "-", _ms(loaded.p99_ms if loaded else None),
            f"{vs_bare:.3f}" if loaded else "-",
        )  # fmt: skip
        shown = all(p["status"] == 200 and p["shown"] and not p["failed"] for p in (a, b))
        same = len({*a["query_counts"], *b["query_counts"]}) == 1
        not_shown = "" if shown else f" (HTTP {a['status']}/{b['status']}, shown {a['shown']}/{b['shown']})"
        checks.append(
            (f"{dashboard.key}: queries {big} = {small}", f"{b['queries']} vs {a['queries']}{not_shown}", "equal",
             same and shown)
        )  # fmt: skip
        checks.append(
            (f"{dashboard.key}: time {big} / {small}", f"{ratio:.2f}" if ratio else "not timed",
             f"<= {MAX_TIME_RATIO}", ratio is not None and ratio <= MAX_TIME_RATIO)
        )  # fmt: skip
        errors = loaded.errors if loaded else 0
        measured = f"{vs_bare:.3f}" + (f" ({errors} failed requests)" if errors else "")
        if dashboard.key in unavailable:
            measured = f"not loaded: {unavailable[dashboard.key]}"
        checks.append(
            (f"{dashboard.key}: req/s vs bare, {options.connections} clients", measured, f">= {MIN_BARE_RATIO}",
             loaded is not None and vs_bare >= MIN_BARE_RATIO and not errors)
        )  # fmt: skip
    verdicts = harness.Table(["target", "measured", "wanted", "result"])
    for name, measured, wanted, ok in checks:
        verdicts.add(name, measured, wanted, "PASS" if ok else "FAIL")
    print()
    print(table.render())
    print(
        f"  ms: median time of a request through Django's test client ({pages[big][DASHBOARDS[0].key]['requests']} "
        f"per page and size); DB ms: the part spent in database statements; req/s and p99: gunicorn "
        f"({options.workers} sync workers) on the {big} database under wrk, {options.connections} clients"
    )
    for dashboard in DASHBOARDS:
        for query in pages[big][dashboard.key]["slowest_queries"][:1]:
            print(f"  {dashboard.key} at {big}: slowest query {query['ms']:.1f} ms: {query['sql'][:140]}")
    print()
    print(verdicts.render(), flush=True)
    return all(ok for *_, ok in checks), checks, ratios


def run(
    options: Options,
    *,
    big_entries: int = BIG_ENTRIES,
    small_entries: int = SMALL_ENTRIES,
    member_scale: int = MEMBER_SCALE,
    portfolio_partners: int = PORTFOLIO_PARTNERS,
    rounds: int | None = None,
    passes: int = PASSES,
) -> bool:
    """Run the benchmark, print the tables, write bench/results/dashboards.json; True when every target is met."""
    started = time.monotonic()
    sizes = {size_label(small_entries): small_entries, size_label(big_entries): big_entries}
    if len(sizes) != 2:
        raise BenchError("The two sizes must differ.")
    urls = {size: harness.sibling_database(options.database_url, f"dashboards{size.lower()}") for size in sizes}
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(
        "-- data: " + ", ".join(f"{entries:,} entries in {_name(urls[size])}" for size, entries in sizes.items())
        + f"; demo channel at scale {member_scale}; the account manager with {portfolio_partners} partners",
        flush=True,
    )  # fmt: skip
    seed = {size: harness.prepare_channel(urls[size], member_scale, label=f"[{size}] ") for size in sizes}
    facts = {}
    for size, entries in sizes.items():
        facts[size] = harness.django_call(
            urls[size],
            "bench.dashboards:build",
            {"entries": entries, "portfolio_partners": portfolio_partners},
            label=f"   [{size}] ",
            timeout=BUILD_TIMEOUT,
        )
        f = facts[size]
        print(
            f"   {_name(urls[size])}: {f['entries']:,} entries on {f['accounts']:,} accounts ({f['open_lots']:,} open "
            f"lots), {f['sale_lines']:,} sale lines; roll-ups {f['points_day_rows']:,} points and "
            f"{f['sales_day_rows']:,} sales rows; portfolio {f['portfolio_partners']} partners; owner's team "
            f"{f['owner_team']:,} ({'built' if f['built'] else 'reused'} in {f['build_seconds']} s)",
            flush=True,
        )
        if f["portfolio_partners"] != portfolio_partners:
            raise BenchError(f"The account manager has {f['portfolio_partners']} partners, not {portfolio_partners}.")
    rounds = rounds or max(10, options.duration * 3)
    print(f"-- the dashboards through the test client: {rounds} requests each per size, in {passes} passes", flush=True)
    load_average = {"pages": harness.report_load("before the pages")}
    pages = measure(urls, facts, rounds=rounds, passes=passes)
    small, big = list(sizes)
    print(
        f"-- load: gunicorn on {_name(urls[big])}, {options.connections} clients, {options.duration} s per URL after "
        f"{options.warmup} s warm-up",
        flush=True,
    )
    load_average["load"] = harness.report_load("before the load")
    throughput, unavailable = load(urls[big], facts[big]["program_id"], options)
    passed, checks, ratios = report(pages, throughput, unavailable, [small, big], options)
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed, options),
            "targets": {"same_query_count": True, "max_time_ratio": MAX_TIME_RATIO, "min_bare_ratio": MIN_BARE_RATIO},
            "sizes": sizes,
            "member_scale": member_scale,
            "data": {
                size: {**facts[size], "database": _name(urls[size]), "seed_seconds": round(seed[size], 1)}
                for size in sizes
            },
            "load_average": load_average,
            "pages": pages,
            "throughput": throughput,
            "not_loaded": unavailable,
            "ratios": ratios,
            "checks": [{"target": n, "measured": m, "wanted": w, "passed": ok} for n, m, w, ok in checks],
        },
    )
    print(f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.0f} s)")
    return passed


def _name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")
