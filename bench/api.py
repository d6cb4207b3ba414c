"""The API benchmark (issue #15): sell-out lines posted through the API next to the file import of the same lines, and
one activity event and one balance read under load next to a bare view.

Data (database <name>_api): the demo channel at bench.sellout's scale (partners.demo: ~2,000 partners, ~10,000
members) and bench.sellout.build()'s program "bench-sellout" (tiers, 6 product lines of ~200 SKUs, 8 rules of
different kinds), made once. Each run then copies that program twice, "bench-api-file-<run>" for the file import and
"bench-api-<run>" for the API (the same settings, tiers, partners' tiers and rules, so both pay alike; the API's also
with a rule paying the custom event "bench-activity"), each with a new sales source with the same customer codes; the
API's has CLIENTS machine clients (sales:write, events:write, balances:read, a rate limit far above what they send).
Two programs, new each run, so that neither finds the other's sales, or an earlier run's, already paid (one sale
pays once per program) and both pay in full. bench.sellout.write_file writes the file; the API's batches are the same
lines read back from it (write_batches): amounts and dates in JSON's formats, a line whose date the file spells
wrongly sent with a date in the future (refused line by line as the file's is: a malformed date in JSON would refuse
the whole batch), BATCH_LINES lines a request.

Background work (Broker): as in production, Celery has a broker (a Redis of the benchmark's own), so the API
batches' follow-up (members told, tiers evaluated: run.api_imports_follow_up) is queued for a worker, not run after
every batch inline. No worker runs: the follow-up is run once after the first pass, timed, and its time added to the
API's (the file import's time includes the same work).

Measured:
1. Ingestion: the file through bench.sellout.import_file (import_run), then the same lines POSTed to
   /api/v1/sales/batches/ by CLIENTS threads (http.client, bodies prepared beforehand, the client's CPU measured)
   against gunicorn (bench settings, `ingest_workers` sync workers) on loopback. Each thread takes the first batch
   not taken yet whose returns' lines have been answered (an ERP sends a credit note after its invoice), so that the
   outcome does not depend on the threads' timing. The rate is lines over the time from the first request to the
   last answer plus the follow-up's. Then every batch is sent again with a new Idempotency-Key: the lines' external
   ids must catch every one (no line accepted, the source's sale lines and the program's points unchanged), and
   loyalty.selectors.ledger.ledger_problems() must find nothing.
2. One batch profiled in-process (Django's test client, cProfile): where a batch's time goes; and one event, one
   balance read and the bare view in-process: their time, queries and database time.
3. gunicorn (--workers) under wrk with WRK_CONNECTIONS connections, each for --duration after --warmup: the bare view
   (/bench/bare/), POST /api/v1/events/ (bench/lua/api_events.lua: a custom event of one of EVENT_MEMBERS members a
   request, a new external id and Idempotency-Key each, every answer a 201), and GET /api/v1/members/<id>/balance/
   (bench/lua/api_get.lua) of a member with an account; the CPU the workers, the database and wrk used.

Targets (the issue's): API lines/s at least MIN_INGEST_RATIO of the file import's; nothing posted twice when every
batch is sent twice; events at least MIN_EVENT_RATIO and balance reads at least MIN_BALANCE_RATIO of the bare view's
requests per second, without failed requests.

Sizes: run(options, lines=20_000) for a quick check (`python -m bench api` runs LINES).
"""

import cProfile
import csv
import gc
import http.client
import json
import os
import pstats
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench import harness, sellout
from bench.harness import BenchError, Options

NAME = "api"
DESCRIPTION = "1,000,000 sell-out lines through the API (4 clients) vs the file import; events and balances vs bare"

LINES = 1_000_000
BATCH_LINES = 1_000
CLIENTS = 4  # concurrent senders of batches
WRK_CONNECTIONS = 8
MIN_INGEST_RATIO = 0.7
MIN_EVENT_RATIO = 0.15
MIN_BALANCE_RATIO = 0.25
PROGRAM_SLUG = "bench-api"
EVENT_NAME = "bench-activity"
EVENT_POINTS = 10
EVENT_MEMBERS = 100  # the members the events rotate through (a learning system reports for many people)
REQUESTS_PER_MINUTE = 100_000_000  # the clients' rate limit: never reached
BAD_DATE = "2999-12-31"  # a file line's unreadable date, in the API: in the future, refused line by line
BATCHES_PATH = "/api/v1/sales/batches/"
EVENTS_PATH = "/api/v1/events/"
BALANCE_PATH = "/api/v1/members/{member}/balance/"
BARE_PATH = "/bench/bare/"
RETRIES = 5  # a batch answered 409, 429 or 503 is sent again (same key) after Retry-After, this many times
BATCH_TIMEOUT = 300  # seconds a batch's answer may take
PROFILE_TOP = 12  # functions listed in the profile by their own time


# The Django side: data (child processes, harness.django_call) -----------------------------------------------------


def build(*, clients: int = CLIENTS, event_members: int = EVENT_MEMBERS) -> dict:
    """bench.sellout's program, catalogue and rules (bench.sellout.build, made once), and each run two fresh copies of
    that program, one for the file import and one for the API, each with a source with the same customer codes, and
    `clients` machine clients of the API's source with a key each. Returns bench.sellout's facts (its program and
    source: the template) plus the copies' programs and sources, the keys and the members events are posted for."""
    from django.db import transaction
    from django.utils import timezone

    from integrations.constants import Scope
    from integrations.keys import key_issue
    from integrations.models import ApiClient
    from loyalty.models import Program, SalesSource
    from partners.constants import MemberStatus, PartnerStatus
    from partners.models import Member, User

    facts = sellout.build()
    code = f"{timezone.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:4]}"
    with transaction.atomic():
        original = Program.objects.get(pk=facts["program_id"])
        template = SalesSource.objects.get(pk=facts["source_id"])
        file_source = _copy_source(template, _copy_program(original, f"{PROGRAM_SLUG}-file-{code}"), code)
        source = _copy_source(template, _copy_program(original, f"{PROGRAM_SLUG}-{code}", event_rule=True), code)
        user = User.objects.get(pk=facts["user_id"])
        keys = []
        for n in range(clients):
            client = ApiClient.objects.create(
                name=f"Benchmark ERP {code} #{n + 1}",
                program=source.program,
                scopes=[Scope.SALES_WRITE, Scope.EVENTS_WRITE, Scope.BALANCES_READ],
                sales_source=source,
                requests_per_minute=REQUESTS_PER_MINUTE,
                created_by=user,
            )
            keys.append(key_issue(client=client, by=user).secret)
    members = list(
        Member.objects.filter(status=MemberStatus.ACTIVE, user__is_active=True, partner__status=PartnerStatus.ACTIVE)
        .order_by("pk")[:event_members]
        .values_list("pk", flat=True)
    )
    if not members:
        raise RuntimeError("No active members: seed the demo channel first.")
    return {
        **facts,
        "template_program_id": facts["program_id"],
        "file_program_id": file_source.program_id,
        "file_source_id": file_source.pk,
        "program_id": source.program_id,
        "source_id": source.pk,
        "aliases": file_source.partner_aliases.count(),
        "keys": keys,
        "event_members": members,
    }


def _copy_source(template, program, code: str):
    """A new source of `program` like `template` (its column mapping and formats) with its customer codes."""
    from loyalty.models import PartnerAlias

    source = type(template).objects.get(pk=template.pk)
    source.pk = source.id = None
    source._state.adding = True
    source.program, source.code, source.name = program, code, f"Benchmark feed {program.slug}"
    source.save()
    PartnerAlias.objects.bulk_create(
        PartnerAlias(source=source, code=alias, partner_id=partner)
        for alias, partner in PartnerAlias.objects.filter(source=template).values_list("code", "partner_id")
    )
    return source


def _copy_program(original, slug: str, *, event_rule: bool = False):
    """A copy of `original` (bench-sellout) named `slug`: its settings, tiers, partners' tiers and rules (with their
    products, product lines, tiers, roles, regions and partners; budgets unused, caps unused as every rule usage is
    the program's), and with `event_rule` a rule paying EVENT_POINTS for the custom event EVENT_NAME. Each run
    copies afresh, so that the same lines pay in full again (one sale pays once per program)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from loyalty.constants import Formula, RuleEvent, RuleStatus
    from loyalty.models import IncentiveRule, PartnerTier, Tier

    program = type(original).objects.get(pk=original.pk)
    program.pk = program.id = None
    program._state.adding = True
    program.slug, program.name = slug, f"Benchmark: {slug}"
    program.save()
    tiers = {}
    for tier in Tier.objects.filter(program=original).order_by("rank"):
        old = tier.pk
        tier.pk = tier.id = None
        tier._state.adding = True
        tier.program = program
        tier.save()
        tiers[old] = tier
    PartnerTier.objects.bulk_create(
        PartnerTier(program=program, partner_id=row.partner_id, tier=tiers[row.tier_id], since=row.since,
                    held_until=row.held_until, metric_value=row.metric_value, evaluated_at=row.evaluated_at)
        for row in PartnerTier.objects.filter(program=original)
    )  # fmt: skip
    many = ("roles", "tiers", "regions", "product_lines", "products", "named_partners")
    for rule in IncentiveRule.objects.filter(program=original).prefetch_related(*many).order_by("pk"):
        related = {name: list(getattr(rule, name).all()) for name in many}
        rule.pk = rule.id = None
        rule._state.adding = True
        rule.program, rule.budget_used = program, 0
        rule.save()
        for name, rows in related.items():
            if name == "tiers":
                rows = [tiers[row.pk] for row in rows]
            getattr(rule, name).set(rows)
    if event_rule:
        IncentiveRule.objects.create(
            program=program, code="bench-api-activity", name="Benchmark activity", event=RuleEvent.CUSTOM,
            custom_event=EVENT_NAME, formula=Formula.FIXED, value=Decimal(EVENT_POINTS), status=RuleStatus.PUBLISHED,
            effective_from=timezone.now() - timedelta(days=3650),
        )  # fmt: skip
    return program


def snapshot(*, source_id: int, program_id: int) -> dict:
    """What the API's source and program hold: sale lines, imports and their outcome, the points in the ledger, and
    how long the imports held the program's import lock (from an import's creation, right after the lock is taken,
    to its outcome, recorded just before its transaction commits)."""
    from django.db.models import Count, F, Sum

    from loyalty.models import PointsEntry, SaleLine, SalesImport

    imports = SalesImport.objects.filter(source_id=source_id).aggregate(
        imports=Count("pk"), new=Sum("new_lines"), duplicates=Sum("duplicate_lines"), errors=Sum("error_rows"),
        points=Sum("points_posted"), locked=Sum(F("finished_at") - F("created_at")),
    )  # fmt: skip
    locked = imports.pop("locked")
    ledger = PointsEntry.objects.filter(account__program_id=program_id).aggregate(
        entries=Count("pk"), available=Sum("available_delta"), pending=Sum("pending_delta")
    )
    return {
        "sale_lines": SaleLine.objects.filter(source_id=source_id).count(),
        **{key: value or 0 for key, value in imports.items()},
        **{f"ledger_{key}": value or 0 for key, value in ledger.items()},
        "locked_seconds": locked.total_seconds() if locked else 0.0,
    }


def balance_member(*, program_id: int) -> int:
    """A member with a points account in the API's program (the one with the most entries of the first hundred)."""
    from django.db.models import Count

    from loyalty.models import PointsAccount

    account = (
        PointsAccount.objects.filter(program_id=program_id, member__isnull=False)
        .order_by("pk")[:100]
        .values_list("pk", flat=True)
    )
    best = (
        PointsAccount.objects.filter(pk__in=list(account))
        .annotate(n=Count("entries"))
        .order_by("-n", "pk")
        .values_list("member_id", flat=True)
        .first()
    )
    if best is None:
        raise RuntimeError("No member has an account in the API's program: did the ingestion post anything?")
    return best


def events_posted(*, program_id: int, run_id: str) -> dict:
    """The custom events of run `run_id` the ledger holds (their entries and the events they are of)."""
    from django.db.models import Count

    from loyalty.models import PointsEntry
    from loyalty.services.external_events import CUSTOM_EVENT_SOURCE

    entries = PointsEntry.objects.filter(
        account__program_id=program_id, source_type=CUSTOM_EVENT_SOURCE, source_id__contains=f":{run_id}-"
    )
    return entries.aggregate(entries=Count("pk"), events=Count("source_id", distinct=True))


def follow_up(*, source_id: int) -> dict:
    """What a worker does for the API's batches FOLLOW_UP_SECONDS after the first (run.api_imports_follow_up: the
    members told once, the tiers evaluated once), timed."""
    from loyalty.services.sellout.run import api_imports_follow_up

    started = time.perf_counter()
    imports = api_imports_follow_up(source_id)
    return {"imports": imports, "seconds": time.perf_counter() - started}


def profile_batch(*, key: str, body_path: str, offset: int, length: int, prefix: str) -> dict:
    """One batch through Django's test client, as the clients send it: once to warm up, once timed plainly (its
    database time and garbage collection too), then once under cProfile (the cumulative seconds of the steps of a
    request, the functions with the most own time). Each time the batch's lines go under new external ids and
    invoice numbers (`prefix`), so they are new sales that pay in full."""
    from django.db import connection
    from django.test import Client

    from bench.leaderboards import DatabaseTime

    with open(body_path, "rb") as handle:
        handle.seek(offset)
        lines = json.loads(handle.read(length))["lines"]
    client = Client(raise_request_exception=False, HTTP_HOST=harness.LOOPBACK, HTTP_AUTHORIZATION=f"Bearer {key}")

    def post(tag: str):
        body = json.dumps({"lines": [_renamed(line, f"{prefix}{tag}-") for line in lines]})
        response = client.post(
            BATCHES_PATH, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"{prefix}{tag}"
        )
        if response.status_code != 201:
            raise RuntimeError(f"The profiled batch answered {response.status_code}: {response.content[:500]!r}")
        return response

    post("warm")
    timer, collector = DatabaseTime(), _GcTime()
    with connection.execute_wrapper(timer), collector:
        started = time.perf_counter()
        answer = post("plain").json()
        plain = time.perf_counter() - started
    profiler = cProfile.Profile()
    profiler.enable()
    started = time.perf_counter()
    post("profiled")
    profiled = time.perf_counter() - started
    profiler.disable()
    stats = pstats.Stats(profiler)
    return {
        "lines": len(lines),
        "seconds": plain,
        "db_seconds": timer.seconds,
        "queries": timer.queries,
        "gc_seconds": collector.seconds,
        "gc_collections": collector.collections,
        "accepted": answer["accepted"],
        "errors": answer["errors"],
        "profiled_seconds": profiled,
        "steps": _steps(stats),
        "top": _top(stats),
    }


class _GcTime:
    """The time the garbage collector ran while inside (gc.callbacks), and how many collections."""

    def __init__(self):
        self.seconds, self.collections, self._started = 0.0, 0, 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info) -> None:
        gc.callbacks.remove(self)


def profile_requests(*, key: str, member: int, event_members: list[int], rounds: int = 30) -> dict:
    """One custom event and one balance read through Django's test client, as wrk sends them (after `rounds`
    unmeasured each): the median time, the database's part and the queries of each, and the bare view's time."""
    from django.db import connection
    from django.test import Client

    from bench.leaderboards import DatabaseTime

    client = Client(raise_request_exception=False, HTTP_HOST=harness.LOOPBACK, HTTP_AUTHORIZATION=f"Bearer {key}")
    run_id = f"profile-{uuid.uuid4().hex[:8]}"
    sent = [0]

    def event():
        sent[0] += 1
        external_id = f"{run_id}-{sent[0]}"
        body = {"external_id": external_id, "type": "custom", "member": event_members[sent[0] % len(event_members)],
                "name": EVENT_NAME, "facts": {"quantity": 1}}  # fmt: skip
        return client.post(EVENTS_PATH, json.dumps(body), content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY=external_id)  # fmt: skip

    requests = {
        "bare view": (lambda: client.get(BARE_PATH), 200),
        "event": (event, 201),
        "balance": (lambda: client.get(BALANCE_PATH.format(member=member)), 200),
    }
    answer = {}
    for label, (send, wanted) in requests.items():
        for _ in range(rounds):
            send()
        times, db, queries = [], [], []
        for _ in range(rounds):
            timer = DatabaseTime()
            with connection.execute_wrapper(timer):
                started = time.perf_counter()
                status = send().status_code
                times.append(time.perf_counter() - started)
            if status != wanted:
                raise RuntimeError(f"{label} answered {status}, not {wanted}")
            db.append(timer.seconds)
            queries.append(timer.queries)
        answer[label] = {
            "ms": round(statistics.median(times) * 1000, 2),
            "db_ms": round(statistics.median(db) * 1000, 2),
            "queries": max(queries),
        }
    return answer


def _renamed(line: dict, prefix: str) -> dict:
    line = dict(line)
    for name in ("external_id", "invoice_number", "returns_external_id"):
        if line.get(name):
            line[name] = prefix + line[name]
    return line


# The steps of a batch's request, in the order they run: (label, file path ending, function name). Their cumulative
# times under cProfile (a step's time includes the steps nested in it: the import's parts are inside import_lines).
PROFILE_STEPS = (
    ("request, all of it (ApiView.dispatch)", "rest_framework/views.py", "dispatch"),
    ("authentication (key lookup)", "integrations/api/authentication.py", "authenticate"),
    ("idempotency: claim the key", "integrations/idempotency.py", "begin"),
    ("JSON parsing", "rest_framework/parsers.py", "parse"),
    ("input validation (DRF serializer)", "rest_framework/serializers.py", "is_valid"),
    ("import_lines: the engine, all of it", "loyalty/services/sellout/run.py", "import_lines"),
    ("  parse (LineParser)", "loyalty/services/sellout/parse.py", "parse"),
    ("  match partners, members, SKUs", "loyalty/services/sellout/match.py", "match"),
    ("  prepare: parse + match + evaluate", "loyalty/services/sellout/run.py", "_prepare"),
    ("  write: lines, claims, challenges, returns", "loyalty/services/sellout/run.py", "_write"),
    ("    insert the sale lines (COPY)", "loyalty/services/sellout/write.py", "insert"),
    ("    returns", "loyalty/services/sellout/returns.py", "returns_post"),
    ("  ledger: entries and balances", "loyalty/services/ledger_bulk.py", "finish"),
    ("  record the outcome, import.finished", "loyalty/services/sellout/run.py", "_finish"),
    ("  each line's outcome", "loyalty/services/sellout/run.py", "outcomes"),
    ("  after the run (follow-up, waiting claims)", "loyalty/services/sellout/run.py", "_after_run"),
    ("    members told (digest)", "loyalty/services/sellout/run.py", "notify_imports_digest"),
    ("    tiers evaluated", "loyalty/services/tiers.py", "tiers_evaluate_all"),
    ("    waiting claims approved", "loyalty/services/claims.py", "claims_auto_approve_waiting"),
    ("the answer: Output serializer", "rest_framework/serializers.py", "data"),
    ("the answer: JSON rendering", "rest_framework/renderers.py", "render"),
    ("idempotency: store the outcome", "integrations/idempotency.py", "finish"),
)


def _steps(stats: pstats.Stats) -> list[dict]:
    found = {}
    for (path, _, function), (_, _, _, cumulative, _) in stats.stats.items():
        for label, ending, name in PROFILE_STEPS:
            if function == name and path.endswith(ending):
                found[label] = max(found.get(label, 0.0), cumulative)
    return [{"step": label, "seconds": round(found[label], 4)} for label, _, _ in PROFILE_STEPS if label in found]


def _top(stats: pstats.Stats) -> list[dict]:
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:PROFILE_TOP]
    return [
        {"function": f"{Path(path).parent.name}/{Path(path).name}:{line} {function}", "calls": calls,
         "own_seconds": round(own, 4), "cumulative_seconds": round(cumulative, 4)}
        for (path, line, function), (_, calls, own, cumulative, _) in rows
    ]  # fmt: skip


# The client side: the batches -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One request's body in the batches file: where it is, how many lines, the earlier batches it waits for."""

    offset: int
    length: int
    lines: int
    needs: tuple[int, ...] = ()


def json_amount(text: str) -> str:
    """The file's "1.234,56" as JSON's "1234.56" (the sign kept); anything else as it is."""
    return text.replace(".", "").replace(",", ".")


def json_date(text: str) -> str:
    """The file's 31.12.2026 as 2026-12-31; a date the file spells otherwise (its bad lines) as BAD_DATE."""
    day, month, year = (text.split(".") + ["", "", ""])[:3]
    if len(day) == 2 and len(month) == 2 and len(year) == 4 and (day + month + year).isdigit():
        return f"{year}-{month}-{day}"
    return BAD_DATE


def api_line(cells: list[str]) -> dict:
    """A line of bench.sellout's file (its HEADER's columns) as a line of POST /api/v1/sales/batches/."""
    external_id, partner, member, sku, quantity, amount, invoice, day, returns = cells
    line = {"external_id": external_id, "partner": partner, "sku": sku, "quantity": quantity,
            "amount": json_amount(amount), "invoice_date": json_date(day)}  # fmt: skip
    if member:
        line["member"] = member
    if invoice:
        line["invoice_number"] = invoice
    if returns:
        line["returns_external_id"] = returns
    return line


def write_batches(*, csv_path: str, out_path: str, batch_lines: int = BATCH_LINES) -> list[Batch]:
    """The file's lines as request bodies ({"lines": [...]}, `batch_lines` each) one after the other in `out_path`;
    each batch knows the earlier batches holding lines its returns return."""
    batches: list[Batch] = []
    batch_of: dict[str, int] = {}  # a line's external id -> its batch
    with open(csv_path, encoding="utf-8", newline="") as source, open(out_path, "wb") as out:
        reader = csv.reader(source, delimiter=";")
        if next(reader) != sellout.HEADER.split(";"):
            raise BenchError(f"{csv_path} is not a file of bench.sellout (its header differs).")
        lines: list[dict] = []
        needs: set[int] = set()

        def flush() -> None:
            body = json.dumps({"lines": lines}, separators=(",", ":"), ensure_ascii=False).encode()
            batches.append(Batch(out.tell(), len(body), len(lines), tuple(sorted(needs))))
            out.write(body)
            lines.clear()
            needs.clear()

        for cells in reader:
            line = api_line(cells)
            index = len(batches)
            returned = batch_of.get(line.get("returns_external_id", ""))
            if returned is not None and returned < index:
                needs.add(returned)
            batch_of[line["external_id"]] = index
            lines.append(line)
            if len(lines) >= batch_lines:
                flush()
        if lines:
            flush()
    return batches


@dataclass
class Sent:
    """What posting the batches once gave: the lines' outcomes summed, and the requests' times."""

    seconds: float = 0.0
    batches: int = 0
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    errors: int = 0
    points: int = 0
    retries: int = 0
    waits: int = 0  # batches sent after a later one: they waited for an earlier batch (their returns' lines)
    failed: list = field(default_factory=list)  # (batch, status, body) of batches without a 201
    latencies_ms: list = field(default_factory=list)
    client_cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


def _post(base_url: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=BATCH_TIMEOUT)
    try:
        connection.request("POST", BATCHES_PATH, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def send_batches(
    base_url: str, *, keys: list[str], path: str, batches: list[Batch], run_id: str, clients: int = CLIENTS
) -> Sent:
    """POST every batch of the batches file at `path` to the server at `base_url` with `clients` threads (client n
    with keys[n % len(keys)]), each batch with the Idempotency-Key "<run_id>-<batch>". Each thread takes the first
    batch not taken yet whose returns' lines have been answered (a batch waiting for an earlier one is passed over
    until then)."""
    sent = Sent()
    condition = threading.Condition()
    done = [False] * len(batches)
    waiting = list(range(len(batches)))  # not taken yet, in order
    lock = threading.Lock()

    def take() -> int | None:
        """The first batch not taken whose returns' batches are answered (None: no batch left), waiting if need be."""
        with condition:
            while waiting:
                for position, index in enumerate(waiting):
                    if all(done[i] for i in batches[index].needs):
                        if position:
                            sent.waits += 1
                        return waiting.pop(position)
                condition.wait()
            return None

    def client(n: int) -> None:
        key = keys[n % len(keys)]
        with open(path, "rb") as handle:
            while (index := take()) is not None:
                batch = batches[index]
                handle.seek(batch.offset)
                body = handle.read(batch.length)
                headers = {
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"{run_id}-{index}",
                }
                try:
                    outcome = _send(base_url, body, headers)
                finally:
                    with condition:
                        done[index] = True
                        condition.notify_all()
                with lock:
                    _count(sent, index, batch, *outcome)

    threads = [threading.Thread(target=client, args=(n,), name=f"bench-api-client-{n}") for n in range(clients)]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    sent.client_cpu_seconds = cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    return sent


def _send(base_url: str, body: bytes, headers: dict) -> tuple[int, bytes, float, int]:
    """(status, body, seconds, retries): sent again after Retry-After while the answer is 409, 429 or 503."""
    retries = 0
    while True:
        started = time.perf_counter()
        try:
            status, answer_headers, answer = _post(base_url, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            return 0, f"{type(exc).__name__}: {exc}".encode(), time.perf_counter() - started, retries
        if status not in (409, 429, 503) or retries >= RETRIES:
            return status, answer, time.perf_counter() - started, retries
        retries += 1
        time.sleep(float(answer_headers.get("Retry-After", "1") or 1))


def _count(sent: Sent, index: int, batch: Batch, status: int, answer: bytes, seconds: float, retries: int) -> None:
    sent.batches += 1
    sent.retries += retries
    sent.latencies_ms.append(seconds * 1000)
    if status != 201:
        sent.failed.append((index, status, answer[:300].decode(errors="replace")))
        return
    data = json.loads(answer)
    sent.lines += batch.lines
    sent.accepted += data["accepted"]
    sent.duplicates += data["duplicates"]
    sent.errors += data["errors"]
    sent.points += data["points"]
    if len(data["results"]) != batch.lines:
        sent.failed.append((index, status, f"{len(data['results'])} results for {batch.lines} lines"))


# The load generator's side ---------------------------------------------------------------------------------------


class _NewProcessesMeter(harness.CpuMeter):
    """harness.CpuMeter that also counts the processes started meanwhile, whole (a gunicorn worker's database
    backend is opened by its first request, after start())."""

    def stop(self) -> float:
        after = {pid: harness.cpu_seconds(pid) for pid in self.pids()}
        self.seconds = sum(used - self._before.get(pid, 0.0) for pid, used in after.items())
        return self.seconds


def _metered(server: harness.Server, database_url: str, run) -> tuple:
    """run() with the CPU seconds the gunicorn workers, the database's backends and the load generator (a wrk
    child process, waited for by run) used meanwhile."""
    app = _NewProcessesMeter(lambda: harness.child_pids(server.process.pid))
    db = _NewProcessesMeter(lambda: harness.postgres_backend_pids(database_url))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    app.start()
    db.start()
    result = run()
    cpu = {"app": round(app.stop(), 2), "db": round(db.stop(), 2)}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu["wrk"] = round(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 2)
    return result, cpu


def _settle(server: harness.Server, database_url: str, *, limit: float = 60.0) -> None:
    """Wait until the workers and their database backends are idle (requests wrk gave up on may still run)."""

    def busy() -> float:
        pids = harness.child_pids(server.process.pid) + harness.postgres_backend_pids(database_url)
        return sum(harness.cpu_seconds(pid) for pid in pids)

    deadline = time.monotonic() + limit
    before = busy()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        after = busy()
        if after - before < 0.05:
            return
        before = after


def _request(url: str, *, method: str = "GET", key: str, body: bytes = b"") -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {key}"}
    if body:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, parts.path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def load(url: str, facts: dict, balance_of: int, options: Options, directory: str) -> dict:
    """gunicorn under wrk: the bare view, the custom events, the balance reads (each once first: it must answer as
    expected). Returns the figures and CPU seconds per URL and the run id of the measured events."""
    harness.ensure_wrk()
    key = facts["keys"][0]
    members_file = Path(directory) / "members.txt"
    members_file.write_text("".join(f"{pk}\n" for pk in facts["event_members"]))
    run_id = uuid.uuid4().hex[:10]  # the events' external ids: "<run_id><phase>-<thread>-<n>"
    balance_path = BALANCE_PATH.format(member=balance_of)
    threads = min(options.threads, WRK_CONNECTIONS)
    results = {}
    with harness.Server(url, workers=options.workers, start_timeout=60) as server:
        event = json.dumps({"external_id": f"check-{run_id}", "type": "custom", "member": facts["event_members"][0],
                            "name": EVENT_NAME}).encode()  # fmt: skip
        for method, path, body, wanted in (("POST", EVENTS_PATH, event, 201), ("GET", balance_path, b"", 200)):
            status, answer = _request(server.url + path, method=method, key=key, body=body)
            if status != wanted:
                raise BenchError(f"{method} {path} answers {status}, not {wanted}: {answer[:500]!r}")
        for phase, seconds in (("warm-up", options.warmup), ("measure", options.duration)):
            targets = {
                "bare view": (BARE_PATH, "summary.lua", ()),
                "event": (EVENTS_PATH, "api_events.lua", (key, run_id + phase[0], str(members_file), EVENT_NAME)),
                "balance": (balance_path, "api_get.lua", (key,)),
            }
            for label, (path, script, args) in targets.items() if seconds > 0 else ():
                measured, cpu = _metered(
                    server,
                    url,
                    lambda path=path, script=script, args=args, seconds=seconds: harness.run_wrk_script(
                        server.url + path,
                        script=script,
                        seconds=seconds,
                        threads=threads,
                        connections=WRK_CONNECTIONS,
                        script_args=args,
                    ),
                )
                _settle(server, url)
                if phase == "measure":
                    results[label] = {"load": measured, "cpu": cpu}
                    extra = measured.extra
                    print(
                        f"   {label}: {measured.requests_per_second:,.1f} req/s, p50 {measured.p50_ms:.1f} ms, "
                        f"p99 {measured.p99_ms:.1f} ms, {measured.errors} failed"
                        + (f", {extra['ok']:,} answered {extra['wanted']}" if "ok" in extra else ""),
                        flush=True,
                    )
    return {"results": results, "run_id": run_id + "m"}


class Broker:
    """A Redis of its own on a free loopback port as Celery's broker (CELERY_BROKER_URL, for the Django processes
    started meanwhile), as in production: background work (the API batches' follow-up, e-mails, webhooks) is queued,
    not run inline in the request. No worker runs it; the sales follow-up is run once and timed (follow_up). Without
    redis-server everything runs inline (the settings' default), the follow-up after every batch; said so."""

    def __init__(self, start_timeout: float = 10.0):
        self.url = ""
        self.process: subprocess.Popen | None = None
        self.start_timeout = start_timeout
        self._previous: str | None = None

    def describe(self) -> str:
        if self.url:
            return f"broker: a private Redis at {self.url} (queued tasks are not run)"
        return (
            "broker: none (redis-server is not installed): background work runs inline, the API batches' follow-up "
            "after every batch instead of once a minute, which lowers the API's figure"
        )

    def __enter__(self) -> "Broker":
        path = shutil.which("redis-server")
        if not path:
            return self
        port = harness.free_port()
        self.process = subprocess.Popen(
            [path, "--port", str(port), "--bind", harness.LOOPBACK, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with socket.create_connection((harness.LOOPBACK, port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError("redis-server did not start for the benchmark's broker.")
            time.sleep(0.05)
        self.url = f"redis://{harness.LOOPBACK}:{port}/0"
        self._previous = os.environ.get("CELERY_BROKER_URL")
        os.environ["CELERY_BROKER_URL"] = self.url
        return self

    def __exit__(self, *exc_info) -> None:
        if self.url:
            if self._previous is None:
                os.environ.pop("CELERY_BROKER_URL", None)
            else:
                os.environ["CELERY_BROKER_URL"] = self._previous
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# The benchmark ------------------------------------------------------------------------------------------------------


def _ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    options: Options,
    *,
    lines: int = LINES,
    batch_lines: int = BATCH_LINES,
    clients: int = CLIENTS,
    ingest_workers: int | None = None,
    scale: int = sellout.SCALE,
) -> bool:
    """Run the benchmark, print the tables, write bench/results/api.json; True when every target is met.
    `ingest_workers`: gunicorn's workers for the ingestion (default: one per client)."""
    started = time.monotonic()
    ingest_workers = ingest_workers or clients
    url = harness.sibling_database(options.database_url, "api")
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(
        f"-- data: database {_name(url)}, demo channel at scale {scale}; {lines:,} lines, {batch_lines:,} a batch",
        flush=True,
    )
    seed_seconds = harness.prepare_channel(url, scale, label="[api] ")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as directory, Broker() as broker:
        previous_media = os.environ.get("MEDIA_ROOT")
        os.environ["MEDIA_ROOT"] = str(Path(directory) / "media")  # the file import's upload stays out of the repo
        try:
            print(f"   {broker.describe()}", flush=True)
            broker_url = broker.url
            facts = harness.django_call(url, "bench.api:build", {"clients": clients}, label="   ")
            print(
                f"   {facts['partners']:,} partners, {facts['members']:,} members, {facts['products']} SKUs, "
                f"{facts['rules']} rules; file source {facts['file_source_id']} (program {facts['file_program_id']}), "
                f"API source {facts['source_id']} (program {facts['program_id']}, {clients} clients)",
                flush=True,
            )
            csv_path = str(Path(directory) / "sellout.csv")
            file_facts = harness.django_call(
                url,
                "bench.sellout:write_file",
                {"path": csv_path, "source_id": facts["file_source_id"], "lines": lines},
            )
            bodies = str(Path(directory) / "batches.jsonl")
            clock = time.perf_counter()
            batches = write_batches(csv_path=csv_path, out_path=bodies, batch_lines=batch_lines)
            print(
                f"   wrote {file_facts['lines']:,} lines ({file_facts['bytes'] / 1e6:,.0f} MB; "
                f"{file_facts['returns']:,} returns, {file_facts['bad']} bad lines) and the same as "
                f"{len(batches):,} request bodies "
                f"({os.path.getsize(bodies) / 1e6:,.0f} MB, {time.perf_counter() - clock:.1f} s)",
                flush=True,
            )
            print("-- the file import (bench.sellout.import_file)", flush=True)
            load_file = harness.report_load("before the file import")
            payload = {"path": csv_path, "source_id": facts["file_source_id"], "user_id": facts["user_id"]}
            imported = harness.django_call(url, "bench.sellout:import_file", payload, label="   ")
            print(f"   file import: {imported['seconds']:.1f} s, {imported['message']}", flush=True)
            print(f"-- the API: {clients} clients, gunicorn {ingest_workers} sync workers", flush=True)
            load_api = harness.report_load("before the API ingestion")
            before = harness.django_call(url, "bench.api:snapshot", _ids(facts))
            run_id = uuid.uuid4().hex[:10]
            with harness.Server(url, workers=ingest_workers, start_timeout=60) as server:
                first, first_cpu = _metered(
                    server,
                    url,
                    lambda: send_batches(
                        server.url, keys=facts["keys"], path=bodies, batches=batches, run_id=f"{run_id}-1",
                        clients=clients,
                    ),
                )  # fmt: skip
                _report_sent("first", first, first_cpu)
                followed = harness.django_call(url, "bench.api:follow_up", {"source_id": facts["source_id"]})
                print(
                    f"   the follow-up of {followed['imports']:,} batches (a worker's, once a minute in "
                    f"production: members told, tiers evaluated): {followed['seconds']:.1f} s",
                    flush=True,
                )
                after_first = harness.django_call(url, "bench.api:snapshot", _ids(facts))
                locked_first = after_first["locked_seconds"] - before["locked_seconds"]
                print(
                    f"   the program's import lock was held {locked_first:.1f} s of the {first.seconds:.1f} s "
                    f"({locked_first / first.seconds:.0%}; {after_first['ledger_entries'] - before['ledger_entries']:,}"
                    " ledger entries written: one per account and batch)",
                    flush=True,
                )
                second, second_cpu = _metered(
                    server,
                    url,
                    lambda: send_batches(
                        server.url, keys=facts["keys"], path=bodies, batches=batches, run_id=f"{run_id}-2",
                        clients=clients,
                    ),
                )  # fmt: skip
                _report_sent("again", second, second_cpu)
            after_second = harness.django_call(url, "bench.api:snapshot", _ids(facts))
            print("-- one batch profiled in-process (Django's test client)", flush=True)
            profile = harness.django_call(
                url,
                "bench.api:profile_batch",
                {"key": facts["keys"][0], "body_path": bodies, "offset": batches[0].offset,
                 "length": batches[0].length, "prefix": f"profile-{run_id}-"},
            )  # fmt: skip
            print("-- load: gunicorn, wrk", flush=True)
            load_wrk = harness.report_load("before the load")
            balance_of = harness.django_call(url, "bench.api:balance_member", {"program_id": facts["program_id"]})
            requests = harness.django_call(
                url,
                "bench.api:profile_requests",
                {"key": facts["keys"][0], "member": balance_of, "event_members": facts["event_members"]},
            )
            loaded = load(url, facts, balance_of, options, directory)
        finally:
            if previous_media is None:
                os.environ.pop("MEDIA_ROOT", None)
            else:
                os.environ["MEDIA_ROOT"] = previous_media
    events = harness.django_call(
        url, "bench.api:events_posted", {"program_id": facts["program_id"], "run_id": loaded["run_id"]}
    )
    print("-- ledger_problems() over the whole database", flush=True)
    audit = harness.django_call(url, "bench.sellout:audit")

    file_rate = imported["lines"] / imported["seconds"]
    api_seconds = first.seconds + followed["seconds"]  # the file import's time includes its members told and tiers
    api_rate = first.lines / api_seconds if api_seconds else 0.0
    ratio = api_rate / file_rate if file_rate else 0.0
    throughput = loaded["results"]
    bare, event, balance = (throughput[k]["load"] for k in ("bare view", "event", "balance"))
    event_ratio = event.requests_per_second / bare.requests_per_second
    balance_ratio = balance.requests_per_second / bare.requests_per_second
    new_in_first = after_first["sale_lines"] - before["sale_lines"]
    again = {
        "accepted": second.accepted,
        "new sale lines": after_second["sale_lines"] - after_first["sale_lines"],
        "new points": after_second["points"] - after_first["points"],
        "ledger change": (after_second["ledger_available"] + after_second["ledger_pending"])
        - (after_first["ledger_available"] + after_first["ledger_pending"]),
    }
    event_failures = event.errors + event.extra.get("failed", 0)
    checks = [
        ("API lines/s vs file import", f"{ratio:.3f}", f">= {MIN_INGEST_RATIO}", ratio >= MIN_INGEST_RATIO),
        ("every batch answered 201", f"{len(first.failed)} + {len(second.failed)} failed",
         "0 failed", not first.failed and not second.failed and first.lines == second.lines == file_facts["lines"]),
        ("first pass: lines like the file's",
         f"{first.accepted:,} accepted, {first.errors:,} errors, {first.points:,} points (file: "
         f"{imported['new_lines']:,} new, {imported['error_rows']:,} errors, {imported['points_posted']:,} points)",
         "same counts", first.accepted == imported["new_lines"] and first.errors == imported["error_rows"]),
        ("sent twice: nothing posted twice",
         ", ".join(f"{v:,} {k}" for k, v in again.items()) + f"; {second.duplicates:,} duplicates",
         "all 0; duplicates = accepted",
         not any(again.values()) and second.duplicates == first.accepted and second.errors == first.errors),
        ("ledger_problems()", f"{audit['count']} problems", "none", audit["count"] == 0),
        (f"event req/s vs bare, {WRK_CONNECTIONS} clients",
         f"{event_ratio:.3f}" + (f" ({event_failures} failed)" if event_failures else ""),
         f">= {MIN_EVENT_RATIO}", event_ratio >= MIN_EVENT_RATIO and not event_failures),
        ("events posted = 201 answers", f"{events['events']:,} posted, {event.extra.get('ok', 0):,} answered",
         "equal or in flight", 0 <= events["events"] - event.extra.get("ok", 0) <= WRK_CONNECTIONS),
        (f"balance req/s vs bare, {WRK_CONNECTIONS} clients",
         f"{balance_ratio:.3f}" + (f" ({balance.errors} failed)" if balance.errors else ""),
         f">= {MIN_BALANCE_RATIO}", balance_ratio >= MIN_BALANCE_RATIO and not balance.errors),
    ]  # fmt: skip
    table = harness.Table(["measure", "lines/requests", "seconds", "per second", "notes"])
    table.add(
        "file import (import_run)", f"{imported['lines']:,}", f"{imported['seconds']:.1f}", f"{file_rate:,.0f}",
        f"{imported['new_lines']:,} new, {imported['error_rows']:,} errors, {imported['points_posted']:,} points; "
        f"{imported['entries']:,} ledger entries",
    )  # fmt: skip
    for label, sent, cpu in (("API batches", first, first_cpu), ("API batches again", second, second_cpu)):
        table.add(
            f"{label} ({clients} clients)", f"{sent.lines:,}", f"{sent.seconds:.1f}", f"{sent.rate:,.0f}",
            f"{sent.accepted:,} accepted, {sent.duplicates:,} duplicate, {sent.errors:,} errors, {sent.points:,} "
            f"points; batch p50 {_ms(sent.latencies_ms, 0.5):,.0f} ms; CPU s: client {sent.client_cpu_seconds:.1f}, "
            f"app {cpu['app']:.1f}, db {cpu['db']:.1f}",
        )  # fmt: skip
    table.add(
        "API: + the follow-up", "", f"{followed['seconds']:.1f}", "",
        f"{followed['imports']:,} batches: members told, tiers evaluated (a worker's, once a minute)",
    )  # fmt: skip
    table.add(
        "API: answers + follow-up", f"{first.lines:,}", f"{api_seconds:.1f}", f"{api_rate:,.0f}",
        f"the rate compared; {after_first['ledger_entries'] - before['ledger_entries']:,} ledger entries; the "
        f"program's import lock held {locked_first:.1f} s",
    )  # fmt: skip
    for label, key in (("bare view", "bare view"), ("event POST", "event"), ("balance GET", "balance")):
        measured, cpu = throughput[key]["load"], throughput[key]["cpu"]
        table.add(
            f"{label} ({WRK_CONNECTIONS} connections)", f"{measured.requests:,}", f"{measured.seconds:.1f}",
            f"{measured.requests_per_second:,.1f}",
            f"p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms, {measured.errors} failed; CPU ms a "
            f"request: app {_per(cpu['app'], measured.requests)}, db {_per(cpu['db'], measured.requests)}",
        )  # fmt: skip
    verdicts = harness.Table(["target", "measured", "wanted", "result"])
    for name, measured, wanted, ok in checks:
        verdicts.add(name, measured, wanted, "PASS" if ok else "FAIL")
    steps = harness.Table(["one batch, in-process under cProfile", "seconds", "share"])
    total = profile["steps"][0]["seconds"] if profile["steps"] else 0.0
    for step in profile["steps"]:
        steps.add(step["step"], f"{step['seconds']:.3f}", f"{step['seconds'] / total:.0%}" if total else "-")
    print()
    print(table.render())
    print(
        f"   ratios: API {api_rate:,.0f} lines/s / file {file_rate:,.0f} lines/s = {ratio:.3f}; event "
        f"{event.requests_per_second:,.1f} / bare {bare.requests_per_second:,.1f} req/s = {event_ratio:.3f}; balance "
        f"{balance.requests_per_second:,.1f} / bare = {balance_ratio:.3f}"
    )
    print(f"   file import phases (s): {imported['phases']}")
    print(
        f"   one batch in-process: {profile['seconds'] * 1000:,.0f} ms ({profile['lines']:,} lines, "
        f"{profile['accepted']:,} accepted, {profile['errors']} errors; {profile['queries']} queries, "
        f"{profile['db_seconds'] * 1000:,.0f} ms in the database, {profile['gc_seconds'] * 1000:,.0f} ms in "
        f"{profile['gc_collections']} garbage collections); under cProfile {profile['profiled_seconds']:.2f} s:"
    )
    print(steps.render())
    print("   most own time under cProfile:")
    for row in profile["top"]:
        print(f"     {row['own_seconds']:7.3f} s {row['calls']:>8,} calls  {row['function']}")
    print(
        "   one request in-process (median of 30; Django's test client): "
        + "; ".join(
            f"{label} {r['ms']:.2f} ms, {r['queries']} queries, {r['db_ms']:.2f} ms in the database"
            for label, r in requests.items()
        )
    )
    print()
    print(verdicts.render(), flush=True)
    passed = all(ok for *_, ok in checks)
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed, options),
            "load_average": {"file": load_file, "api": load_api, "wrk": load_wrk},
            "targets": {
                "min_ingest_ratio": MIN_INGEST_RATIO,
                "min_event_ratio": MIN_EVENT_RATIO,
                "min_balance_ratio": MIN_BALANCE_RATIO,
                "sent_twice": "nothing posted",
                "ledger_problems": "none",
            },
            "sizes": {
                "lines": lines,
                "batch_lines": batch_lines,
                "clients": clients,
                "ingest_workers": ingest_workers,
                "wrk_connections": WRK_CONNECTIONS,
                "scale": scale,
            },  # fmt: skip
            "data": {
                **{k: v for k, v in facts.items() if k not in ("keys", "event_members")},
                **file_facts,
                "batches": len(batches),
                "event_members": len(facts["event_members"]),
                "balance_member": balance_of,
                "database": _name(url),
                "seed_seconds": round(seed_seconds, 1),
            },
            "file_import": {**imported, "lines_per_second": round(file_rate)},
            "api": {
                "first": {**_sent_json(first), "cpu": first_cpu},
                "again": {**_sent_json(second), "cpu": second_cpu},
                "snapshots": {"before": before, "after_first": after_first, "after_again": after_second},
                "new_sale_lines": new_in_first,
                "follow_up": followed,
                "seconds_with_follow_up": round(api_seconds, 2),
                "lines_per_second": round(api_rate),
                "import_lock_held_seconds": round(locked_first, 2),
                "broker": broker_url,
            },
            "ratio": round(ratio, 4),
            "profile": profile,
            "requests_in_process": requests,
            "throughput": {key: {**asdict(value["load"]), "cpu": value["cpu"]} for key, value in throughput.items()},
            "event_ratio": round(event_ratio, 4),
            "balance_ratio": round(balance_ratio, 4),
            "events_posted": events,
            "audit": audit,
            "checks": [{"target": n, "measured": m, "wanted": w, "passed": ok} for n, m, w, ok in checks],
        },
    )
    print(f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.0f} s)")
    return passed


def _per(seconds: float, requests: int) -> str:
    return f"{1000 * seconds / requests:.2f}" if requests else "-"


def _ids(facts: dict) -> dict:
    return {"source_id": facts["source_id"], "program_id": facts["program_id"]}


def _report_sent(label: str, sent: Sent, cpu: dict) -> None:
    print(
        f"   {label}: {sent.lines:,} lines in {sent.batches:,} batches in {sent.seconds:.1f} s = {sent.rate:,.0f} "
        f"lines/s; {sent.accepted:,} accepted, {sent.duplicates:,} duplicate, {sent.errors:,} errors, "
        f"{sent.points:,} points; {len(sent.failed)} failed, {sent.retries} retries, {sent.waits} sent out of "
        f"order; batch p50 {_ms(sent.latencies_ms, 0.5):,.0f} ms p95 {_ms(sent.latencies_ms, 0.95):,.0f} ms; "
        f"CPU s: client {sent.client_cpu_seconds:.1f}, app {cpu['app']:.1f}, db {cpu['db']:.1f}",
        flush=True,
    )
    for index, status, body in sent.failed[:3]:
        print(f"     batch {index}: HTTP {status} {body}", flush=True)


def _sent_json(sent: Sent) -> dict:
    data = asdict(sent)
    latencies = data.pop("latencies_ms")
    data["failed"] = data["failed"][:20]
    data["lines_per_second"] = round(sent.rate)
    data["batch_ms"] = {
        "p50": round(_ms(latencies, 0.5), 1),
        "p95": round(_ms(latencies, 0.95), 1),
        "max": round(max(latencies, default=0.0), 1),
        "mean": round(statistics.fmean(latencies), 1) if latencies else 0.0,
    }
    return data


def _name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")
