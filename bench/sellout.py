"""The sell-out import benchmark: 1,000,000 lines imported end to end, next to COPY of the same file.

Data (database <name>_sellout): seed_demo at scale 34 (~2,000 partners, ~10,000 members), then a program
"bench-sellout" with tiers for a third of the partners, 6 product lines of ~200 SKUs and 8 rules of different
kinds (per unit by line, per amount, fixed for a product, a multiplier campaign, a split between roles, a cap
per member and month, a budget). Each run adds a new sales source (so its external ids are new), with
customer codes (aliases) for a third of the partners, and writes a 1,000,000-line CSV in a temporary
directory the way a European distributor's ERP would: semicolons, decimal commas ("1.234,56"), dates as
31.12.2026, members by e-mail or member code, ~1 % returns of earlier lines, ~200 bad lines.

Measured, each in its own process (the import's peak memory is that process's ru_maxrss, Django included):
1. services.sellout.run.import_run on the file: parse, validate, match, evaluate the rules, store the lines and
   post to the ledger with balances (one entry per account), in one transaction, batches of 50,000 lines
   pipelined (Python checks batch N+1 while the database writes batch N), then the partners' tiers;
2. COPY of the same file (psycopg cursor.copy, CSV) into a scratch table of text columns, committed: the median
   of three runs;
3. import_run of the same file again (a second import): must post nothing, in a fraction of the time;
4. the floor: the same sale lines written by the database alone (INSERT ... SELECT into a clone of the table);
5. the issue's anchor, re-measured: a bare prototype (csv.reader, partners and SKUs looked up in dicts, the rules'
   per-unit / per-amount / fixed values matched once per SKU, results COPYed by a writer thread into a table with
   no index; no validation, members, caps, budgets, returns, idempotency, ledger or tiers);
6. loyalty.selectors.ledger.ledger_problems() over the whole database: must be empty.

Targets: import rate at least 0.33 of the COPY rate, peak memory under 500 MB, the re-run at most half the
first run's time and posting nothing, the books balanced.
"""

import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from bench import harness
from bench.harness import Options

NAME = "sellout"
DESCRIPTION = "1,000,000 sell-out lines imported end to end (rules, ledger) vs COPY of the same file"

LINES = 1_000_000
SCALE = 34  # seed_demo blocks: ~2,040 partners and ~10,200 members for 1,000,000 lines a year
MIN_RATIO = 0.33
COPY_RUNS = 3
MAX_PEAK_MB = 500
MAX_RERUN_FRACTION = 0.5
FLOOR_SAMPLE = LINES  # all of the import's lines re-written by the server alone: the same work as the import's
PROGRAM_SLUG = "bench-sellout"
RETURN_SHARE = 0.01
BAD_LINES = 200
HEADER = "Line;Customer;Rep;SKU;Qty;Amount;Invoice;Date;Returns"
MAPPING = {
    "external_id": "Line",
    "partner": "Customer",
    "member": "Rep",
    "sku": "SKU",
    "quantity": "Qty",
    "amount": "Amount",
    "invoice_number": "Invoice",
    "invoice_date": "Date",
    "returns_external_id": "Returns",
}
PRODUCT_LINES = [  # code, name, SKUs, price range
    ("softeners", "Water softeners", 40, (300, 2400)),
    ("ro", "Reverse osmosis", 30, (200, 1800)),
    ("filters", "Filters", 50, (20, 300)),
    ("cartridges", "Cartridges", 40, (8, 60)),
    ("accessories", "Accessories", 30, (5, 90)),
    ("launch", "New launches", 10, (150, 900)),
]


# The Django side (child processes) -------------------------------------------------------------------------


def build() -> dict:
    """The program, catalogue, tiers and rules (once), and a new source with customer codes (each run)."""
    from django.db import transaction
    from django.utils import timezone

    from loyalty.constants import CapPeriod, Formula, RuleStatus
    from loyalty.models import (
        IncentiveRule,
        PartnerAlias,
        PartnerTier,
        Product,
        ProductLine,
        SalesSource,
        Tier,
    )
    from partners.constants import MemberStatus
    from partners.models import Member, Partner, Role, User

    today = timezone.localdate()
    with transaction.atomic():
        program, created = harness.bench_program(PROGRAM_SLUG, "Benchmark: sell-out", started_days_ago=730)
        if created:
            rng = random.Random(7)
            lines = {}
            for code, name, count, _ in PRODUCT_LINES:
                line, _ = ProductLine.objects.get_or_create(code=f"bench-{code}", defaults={"name": f"Bench {name}"})
                lines[code] = line
                Product.objects.bulk_create(
                    [
                        Product(sku=f"B-{code[:3].upper()}-{n:03d}", name=f"{name} model {n}", line=line)
                        for n in range(count)
                    ],
                    ignore_conflicts=True,
                )
            tiers = [
                Tier.objects.create(program=program, name=name, rank=rank, threshold=Decimal(rank * 50_000),
                                    multiplier=Decimal(multiplier))
                for rank, (name, multiplier) in enumerate([("Silver", "1.00"), ("Gold", "1.10"), ("Platinum", "1.25")])
            ]  # fmt: skip
            partners = list(Partner.objects.order_by("pk").values_list("pk", flat=True))
            PartnerTier.objects.bulk_create(
                [
                    PartnerTier(program=program, partner_id=pk, tier=rng.choice(tiers[1:]), since=today,
                                held_until=today + timedelta(days=90))
                    for pk in partners if rng.random() < 0.33
                ]
            )  # fmt: skip
            effective = timezone.now() - timedelta(days=3650)
            flagship = Product.objects.get(sku="B-SOF-000")
            launch = list(Product.objects.filter(line=lines["launch"]))

            def rule(code, name, formula, value, *, line_codes=(), products=(), **extra):
                created = IncentiveRule.objects.create(
                    program=program, code=code, name=name, formula=formula, value=Decimal(value),
                    status=RuleStatus.PUBLISHED, effective_from=effective, **extra,
                )  # fmt: skip
                created.product_lines.set([lines[c] for c in line_codes])
                created.products.set(products)
                return created

            rule("softeners-per-unit", "Softeners", Formula.PER_UNIT, "10", line_codes=["softeners"])
            rule("ro-per-unit", "Reverse osmosis", Formula.PER_UNIT, "15", line_codes=["ro"])
            rule("filters-per-amount", "Filters turnover", Formula.PER_AMOUNT, "0.5", line_codes=["filters"])
            rule("flagship-fixed", "Flagship bonus", Formula.FIXED, "50", products=[flagship], priority=200)
            rule(
                "spring-campaign", "Spring campaign", Formula.MULTIPLIER, "1.5", line_codes=["softeners"],
                valid_from=today - timedelta(days=120), valid_until=today - timedelta(days=30),
            )  # fmt: skip
            rule(
                "cartridges-split", "Cartridges team split", Formula.PER_UNIT, "8", line_codes=["cartridges"],
                shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 30}],
            )  # fmt: skip
            rule(
                "accessories-capped", "Accessories (capped)", Formula.PER_UNIT, "5", line_codes=["accessories"],
                cap_points=200, cap_period=CapPeriod.MONTH,
            )  # fmt: skip
            rule("launch-budget", "Launch bonus", Formula.FIXED, "20", products=launch, budget_points=500_000)
        code = f"bench-{datetime.now(UTC):%Y%m%d%H%M%S}"
        source = SalesSource.objects.create(
            program=program, name=f"Benchmark feed {code}", code=code, column_mapping=MAPPING, delimiter=";",
            decimal_comma=True, date_format="%d.%m.%Y",
        )  # fmt: skip
        partners = list(Partner.objects.order_by("pk").values_list("pk", flat=True))
        PartnerAlias.objects.bulk_create(
            [PartnerAlias(source=source, code=f"C{pk:07d}", partner_id=pk) for pk in partners[::3]]
        )
        user, _ = User.objects.get_or_create(email="bench-sellout@example.com", defaults={"is_staff": True})
    members = Member.objects.exclude(status=MemberStatus.LEFT).values_list("pk", "partner_id", "user__email")
    return {
        "program_id": program.pk,
        "source_id": source.pk,
        "user_id": user.pk,
        "partners": Partner.objects.count(),
        "members": members.count(),
        "roles": Role.objects.count(),
        "rules": IncentiveRule.objects.filter(program=program).count(),
        "products": Product.objects.filter(sku__startswith="B-").count(),
    }


def write_file(*, path: str, source_id: int, lines: int) -> dict:
    """The sell-out file: deterministic, local formats, ~1 % returns, ~200 bad lines."""
    from django.utils import timezone

    from loyalty.models import PartnerAlias, Product
    from partners.constants import MemberStatus
    from partners.models import Member, Partner

    rng = random.Random(2026)
    today = timezone.localdate()
    aliases = dict(PartnerAlias.objects.filter(source_id=source_id).values_list("partner_id", "code"))
    partners = [
        (pk, aliases.get(pk, legal)) for pk, legal in Partner.objects.order_by("pk").values_list("pk", "legal_id")
    ]
    staff: dict[int, list[str]] = {}
    for pk, partner_id, email in Member.objects.exclude(status=MemberStatus.LEFT).values_list(
        "pk", "partner_id", "user__email"
    ):
        staff.setdefault(partner_id, []).append(email if pk % 2 else f"M{pk}")
    prices = {code: price for code, _, _, price in PRODUCT_LINES}
    products = [
        (sku, prices[code.removeprefix("bench-")])
        for sku, code in Product.objects.filter(sku__startswith="B-").values_list("sku", "line__code")
    ]
    weights = [max(1, int(rng.paretovariate(1.2) * 10)) for _ in partners]  # a few big partners, many small
    days = [(today - timedelta(days=n)).strftime("%d.%m.%Y") for n in range(365)]
    recent: list[tuple[str, int, str, str, str, str]] = []  # positive lines that may be returned
    bad_every = max(lines // BAD_LINES, 1)
    written = returns = bad = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        batch = []
        partner_choices = rng.choices(range(len(partners)), weights=weights, k=lines)
        for n in range(lines):
            ext = f"{n + 1:08d}"
            if recent and rng.random() < RETURN_SHARE:
                original_ext, quantity, customer, rep, sku, invoice = recent.pop(rng.randrange(len(recent)))
                back = rng.randint(1, quantity)
                amount = _comma(Decimal(-back * 10))
                batch.append(f"R{ext};{customer};{rep};{sku};-{back};{amount};{invoice};{days[0]};{original_ext}\n")
                returns += 1
                continue
            partner_pk, customer = partners[partner_choices[n]]
            people = staff.get(partner_pk)
            rep = rng.choice(people) if people and rng.random() < 0.8 else ""
            sku, (low, high) = rng.choice(products)
            quantity = rng.choice((1, 1, 1, 2, 2, 3, 4, 5, 10))
            amount = _comma(Decimal(rng.randint(low * 100, high * 100)) / 100 * quantity)
            invoice = f"INV-{n // 4:07d}"
            day = rng.choice(days)
            is_bad = n % bad_every == bad_every // 2
            if is_bad:
                bad += 1
                kind = bad % 3
                sku = "UNKNOWN-SKU" if kind == 0 else sku
                day = "31/12/2026" if kind == 1 else day
                quantity = 0 if kind == 2 else quantity
            batch.append(f"{ext};{customer};{rep};{sku};{quantity};{amount};{invoice};{day};\n")
            if not is_bad and len(recent) < 5000 and rng.random() < 0.05:
                recent.append((ext, quantity, customer, rep, sku, invoice))
            if len(batch) >= 10_000:
                out.writelines(batch)
                written += len(batch)
                batch = []
        out.writelines(batch)
        written += len(batch)
    return {"lines": written, "returns": returns, "bad": bad, "bytes": os.path.getsize(path)}


def _comma(amount: Decimal) -> str:
    """1234.5 -> "1.234,50" (German style)."""
    text = f"{amount:,.2f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def import_file(*, path: str, source_id: int, user_id: int) -> dict:
    """import_run of the file as a new import of the source; wall time, peak RSS, counts, phase seconds."""
    import resource

    from django.core.files import File

    from loyalty.models import SalesImport
    from loyalty.services.sellout.run import import_run

    with open(path, "rb") as handle:
        sales_import = SalesImport(source_id=source_id, original_name=Path(path).name, uploaded_by_id=user_id)
        sales_import.file.save(Path(path).name, File(handle), save=False)
        sales_import.save()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats: dict = {}
    started = time.perf_counter()
    sales_import = import_run(sales_import.pk, stats=stats)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sales_import.file.delete(save=False)
    return {
        "import_id": sales_import.pk,
        "status": sales_import.status,
        "message": sales_import.message,
        "seconds": seconds,
        "lines": sales_import.processed_rows,
        "new_lines": sales_import.new_lines,
        "duplicate_lines": sales_import.duplicate_lines,
        "error_rows": sales_import.error_rows,
        "points_posted": sales_import.points_posted,
        "entries": stats.pop("entries", 0),
        "phases": {phase: round(value, 2) for phase, value in stats.items()},
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak, 1),
    }


def copy_file(*, path: str) -> dict:
    """COPY the same file into a scratch table (text columns, no index), committed, COPY_RUNS times (a fresh table
    each time); the median is the limit (one COPY of a second or two varies by half from run to run here)."""
    from django.db import connection, transaction

    columns = ", ".join(f"c{n} text" for n in range(len(HEADER.split(";"))))
    statement = "COPY bench_sellout_copy FROM STDIN WITH (FORMAT csv, DELIMITER ';', HEADER true)"
    runs = []
    for _ in range(COPY_RUNS):
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_sellout_copy")
            cursor.execute(f"CREATE TABLE bench_sellout_copy ({columns})")
        started = time.perf_counter()
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            open(path, "rb") as handle,
            cursor.copy(statement) as copy,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        runs.append(time.perf_counter() - started)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM bench_sellout_copy")
            rows = cursor.fetchone()[0]
            cursor.execute("DROP TABLE bench_sellout_copy")
    return {"rows": rows, "seconds": statistics.median(runs), "runs": [round(run, 3) for run in runs]}


def bare_prototype(*, path: str, source_id: int) -> dict:
    """The issue's anchor ("a bare prototype that matched the rules in Python and wrote its results with COPY"),
    measured on today's machine: the least Python any import of this file needs. Not the product: it checks
    nothing, and drops what it cannot read."""
    import csv
    import queue
    import sys
    import threading

    from django.db import connection

    from loyalty.constants import Formula
    from loyalty.models import PartnerAlias, Product, SalesSource
    from loyalty.services.earning import published_rules
    from partners.models import Partner

    source = SalesSource.objects.select_related("program").get(pk=source_id)
    rules = published_rules(source.program)
    partners = dict(Partner.objects.values_list("legal_id", "pk"))
    partners.update(PartnerAlias.objects.filter(source=source).values_list("code", "partner_id"))
    products = {sku: (pk, line_id) for sku, pk, line_id in Product.objects.values_list("sku", "pk", "line_id")}
    per_sku: dict[tuple[int, int], tuple[Decimal, Decimal, Decimal]] = {}

    def values(product: tuple[int, int]) -> tuple[Decimal, Decimal, Decimal]:
        unit = amount = fixed = Decimal(0)
        for rule in rules:
            if rule.matches_product(*product):
                if rule.formula == Formula.PER_UNIT:
                    unit += rule.value
                elif rule.formula == Formula.PER_AMOUNT:
                    amount += rule.value
                elif rule.formula == Formula.FIXED:
                    fixed += rule.value
        return unit, amount, fixed

    handoff: queue.Queue = queue.Queue(maxsize=2)

    def write() -> None:  # in its own thread, so on its own connection (Django's are per thread)
        try:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS bench_bare_results")
                cursor.execute(
                    "CREATE TABLE bench_bare_results (external_id text, partner_id int, product_id int, "
                    "quantity int, amount numeric, points bigint)"
                )
                with cursor.copy("COPY bench_bare_results FROM STDIN") as copy:
                    while (rows := handoff.get()) is not None:
                        copy.write("".join(rows))
                cursor.execute("DROP TABLE bench_bare_results")
        finally:
            connection.close()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    started = time.perf_counter()
    writer = threading.Thread(target=write)
    writer.start()
    lines = 0
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter=";")
            next(reader)
            rows = []
            for external_id, customer, _rep, sku, quantity, amount, *_ in reader:
                partner_id, product = partners.get(customer), products.get(sku)
                if partner_id is None or product is None:
                    continue
                plan = per_sku.get(product)
                if plan is None:
                    plan = per_sku[product] = values(product)
                try:
                    units, money = int(quantity), Decimal(amount.replace(".", "").replace(",", "."))
                except (ValueError, ArithmeticError):
                    continue
                points = int(plan[0] * units + plan[1] * money + plan[2])
                rows.append(f"{external_id}\t{partner_id}\t{product[0]}\t{units}\t{money}\t{points}\n")
                lines += 1
                if len(rows) >= 50_000:
                    handoff.put(rows)
                    rows = []
            handoff.put(rows)
    finally:
        handoff.put(None)
        writer.join()
        sys.setswitchinterval(interval)
    seconds = time.perf_counter() - started
    return {"lines": lines, "seconds": seconds}


def floor(*, import_id: int, sample: int) -> dict:
    """What writing the import's sale lines costs the database alone: `sample` of them copied by INSERT ... SELECT
    (no Python, no parsing) into a clone of loyalty_saleline with the same columns, indexes and checks, committed.
    The lines/s this gives is the most any import storing these rows could reach here (the ledger entries are one
    per account and import, a rounding error next to the lines)."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_floor_saleline")
        cursor.execute("CREATE TABLE bench_floor_saleline (LIKE loyalty_saleline INCLUDING ALL)")
        try:
            started = time.perf_counter()
            with transaction.atomic():
                cursor.execute(
                    "INSERT INTO bench_floor_saleline SELECT * FROM loyalty_saleline WHERE sales_import_id = %s "
                    "ORDER BY id LIMIT %s",
                    [import_id, sample],
                )
                lines = cursor.rowcount
            seconds = time.perf_counter() - started
        finally:
            cursor.execute("DROP TABLE IF EXISTS bench_floor_saleline")
    return {"sample": lines, "seconds": seconds, "lines_per_second": lines / seconds}


def audit() -> dict:
    from django.db import connection

    from loyalty.models import PointsEntry
    from loyalty.selectors.ledger import ledger_problems

    started = time.perf_counter()
    problems = ledger_problems()
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
    return {"problems": problems[:20], "count": len(problems), "seconds": seconds,
            "entries": PointsEntry.objects.count(), "database_bytes": size}  # fmt: skip


# The benchmark -----------------------------------------------------------------------------------------------


def run(options: Options, lines: int = LINES) -> bool:
    started = time.monotonic()
    url = harness.sibling_database(options.database_url, "sellout")
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(f"-- data: database {_name(url)}", flush=True)
    seed_seconds = harness.prepare_database(url, SCALE, label="[sellout] ")
    with tempfile.TemporaryDirectory(prefix="bench-sellout-") as directory:
        previous_media = os.environ.get("MEDIA_ROOT")
        os.environ["MEDIA_ROOT"] = str(Path(directory) / "media")  # the stored upload stays out of the repo
        try:
            facts = harness.django_call(url, "bench.sellout:build", label="   ")
            print(
                f"   {facts['partners']:,} partners, {facts['members']:,} members, {facts['products']} SKUs, "
                f"{facts['rules']} rules; new source {facts['source_id']}",
                flush=True,
            )
            path = str(Path(directory) / "sellout.csv")
            file_facts = harness.django_call(
                url, "bench.sellout:write_file", {"path": path, "source_id": facts["source_id"], "lines": lines}
            )
            print(
                f"   wrote {file_facts['lines']:,} lines ({file_facts['bytes'] / 1e6:,.0f} MB; "
                f"{file_facts['returns']:,} returns, {file_facts['bad']} bad lines)",
                flush=True,
            )
            payload = {"path": path, "source_id": facts["source_id"], "user_id": facts["user_id"]}
            load_first = harness.report_load("before the import")
            first = harness.django_call(url, "bench.sellout:import_file", payload, label="   ")
            print(f"   import: {first['seconds']:.1f} s, {first['message']}", flush=True)
            load_copy = harness.report_load("before COPY")
            copied = harness.django_call(url, "bench.sellout:copy_file", {"path": path})
            print(
                f"   COPY: {copied['rows']:,} rows in {copied['seconds']:.2f} s (median of {copied['runs']} s)",
                flush=True,
            )
            bare = harness.django_call(
                url, "bench.sellout:bare_prototype", {"path": path, "source_id": facts["source_id"]}
            )
            print(f"   bare prototype: {bare['lines']:,} lines in {bare['seconds']:.1f} s", flush=True)
            load_second = harness.report_load("before the re-run")
            second = harness.django_call(url, "bench.sellout:import_file", payload, label="   ")
            print(f"   re-run: {second['seconds']:.1f} s, {second['message']}", flush=True)
        finally:
            if previous_media is None:
                os.environ.pop("MEDIA_ROOT", None)
            else:
                os.environ["MEDIA_ROOT"] = previous_media
    print("-- floor: the import's rows written by the server alone into clones of the tables", flush=True)
    floor = harness.django_call(url, "bench.sellout:floor", {"import_id": first["import_id"], "sample": FLOOR_SAMPLE})
    print(f"   {floor}", flush=True)
    print("-- ledger_problems() over the whole database", flush=True)
    checked = harness.django_call(url, "bench.sellout:audit")

    import_rate = first["lines"] / first["seconds"]
    copy_rate = copied["rows"] / copied["seconds"]
    ratio = import_rate / copy_rate
    rerun_fraction = second["seconds"] / first["seconds"]
    peak = first["peak_rss_mb"]
    checks = [
        ("import vs COPY", f"{ratio:.3f}", f">= {MIN_RATIO}", ratio >= MIN_RATIO),
        ("import peak memory", f"{peak:,.0f} MB", f"< {MAX_PEAK_MB} MB", peak < MAX_PEAK_MB),
        ("re-run time / first", f"{rerun_fraction:.2f}", f"<= {MAX_RERUN_FRACTION}",
         rerun_fraction <= MAX_RERUN_FRACTION),
        ("re-run posts nothing", f"{second['new_lines']} new, {second['points_posted']} points", "0 new",
         second["new_lines"] == 0 and second["points_posted"] == 0),
        ("first run imports", f"{first['status']}, {first['new_lines']:,} new", "done",
         first["status"] == "done" and first["new_lines"] > 0),
        ("ledger_problems()", f"{checked['count']} problems", "none", checked["count"] == 0),
    ]  # fmt: skip
    table = harness.Table(["measure", "lines", "seconds", "rows/s", "notes"])
    table.add("import_run", f"{first['lines']:,}", f"{first['seconds']:.1f}", f"{import_rate:,.0f}",
              f"{first['entries']:,} entries, peak RSS {first['peak_rss_mb']:,.0f} MB (ru_maxrss)")  # fmt: skip
    table.add("COPY (scratch)", f"{copied['rows']:,}", f"{copied['seconds']:.2f}", f"{copy_rate:,.0f}",
              f"text columns; median of {COPY_RUNS}")  # fmt: skip
    rerun_rate = second["lines"] / second["seconds"]
    table.add("re-run", f"{second['lines']:,}", f"{second['seconds']:.1f}", f"{rerun_rate:,.0f}",
              f"{second['new_lines']} new, {second['duplicate_lines']:,} already imported")  # fmt: skip
    bare_rate = bare["lines"] / bare["seconds"]
    bare_note = f"{bare_rate / copy_rate:.3f} of COPY: the issue's anchor, re-measured (checks nothing, no ledger)"
    table.add("bare prototype", f"{bare['lines']:,}", f"{bare['seconds']:.1f}", f"{bare_rate:,.0f}", bare_note)
    floor_rate = floor["lines_per_second"]
    floor_note = "the import's sale lines INSERTed by the server into a clone (same indexes)"
    table.add("floor: rows alone", f"{floor['sample']:,}", f"{floor['sample'] / floor_rate:.1f}",
              f"{floor_rate:,.0f}", floor_note)  # fmt: skip
    verdicts = harness.Table(["target", "measured", "wanted", "result"])
    for name, measured, wanted, ok in checks:
        verdicts.add(name, measured, wanted, "PASS" if ok else "FAIL")
    print()
    print(table.render())
    print()
    print(verdicts.render())
    print(
        f"   floor: {floor_rate:,.0f} lines/s = {floor_rate / copy_rate:.3f} of COPY: the sale lines alone, written "
        "by the server (no Python), into a clone of their table"
    )
    print(f"   import phases (s): {first['phases']}")
    print(f"   re-run phases (s): {second['phases']}")
    print(f"   ledger_problems() took {checked['seconds']:.1f} s over {checked['entries']:,} entries", flush=True)
    print(
        f"   database {_name(url)} is {checked['database_bytes'] / 1e9:.1f} GB: each run adds a new source of "
        f"{lines:,} lines (~1.2 GB per million); drop the database to start afresh",
        flush=True,
    )
    passed = all(ok for *_, ok in checks)
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed, options),
            "load_average": {"import": load_first, "copy": load_copy, "rerun": load_second},
            "targets": {
                "min_ratio_to_copy": MIN_RATIO,
                "max_peak_rss_mb": MAX_PEAK_MB,
                "max_rerun_fraction": MAX_RERUN_FRACTION,
                "ledger_problems": "none",
            },
            "data": {**facts, **file_facts, "database": _name(url), "seed_seconds": round(seed_seconds, 1)},
            "import": {**first, "rows_per_second": round(import_rate)},
            "copy": {**copied, "rows_per_second": round(copy_rate)},
            "ratio": round(ratio, 4),
            "rerun": {**second, "fraction_of_first": round(rerun_fraction, 3)},
            "audit": checked,
            "floor": {**floor, "ratio_to_copy": round(floor_rate / copy_rate, 4)},
            "bare_prototype": {
                **bare,
                "rows_per_second": round(bare_rate),
                "ratio_to_copy": round(bare_rate / copy_rate, 4),
            },
            "checks": [{"target": n, "measured": m, "wanted": w, "passed": ok} for n, m, w, ok in checks],
            "memory_measure": "ru_maxrss of the import's own process (Django included), in MB",
        },
    )
    print(f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.0f} s)")
    return passed


def _name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")
