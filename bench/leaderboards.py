"""The leaderboards benchmark (issue #12): a leaderboard page of a program with 100,000 members and 5,000,000 events
next to the same page of a program with 1,000 members, and the database time of a quiz submission and of a
challenge's progress update.

Data (database <name>_leaderboards): the demo channel at scale 334 (partners.demo: 100,200 people), then two
programs, each built once (re-runs reuse them; a new program period rebuilds them):
- "bench-leaderboards-1k": the first 1,000 people (by id) and 50,000 events;
- "bench-leaderboards-100k": the first 100,000 people and 5,000,000 events;
each event a sale of 1 to 5 units by one of the people, drawn with PostgreSQL's random() (setseed: the same data
every time) by generate_series into a temporary table. From it, one INSERT ... SELECT ... GROUP BY each writes the rows
the incremental services (loyalty.services.challenges.record_event, loyalty.services.standings.standings_add) would
have raised event by event: a running individual challenge with one goal of 200 units (progress, score, halfway and
completion), and the period's standings (10 points per unit: each person's row, as if every partner paid its people,
and each company's row with its active members and points per active member). tests/test_bench_leaderboards.py checks
on a few events that the services give the same rows.

Measured in one process with Django's test client (the whole view: middleware, session, templates), signed in as a
person ranked in the middle of each program, sizes interleaved round after round: the period's leaderboard of people,
the period's leaderboard of companies per active member, and the challenge's page with its leaderboard: each page's
query count (must be the same at both sizes) and median time (the 100,000 one at most 1.5 times the 1,000 one, measured
in the same run). Then, in a transaction rolled back after each sample (so that every sample starts from the same data;
on-commit work such as notifications is left out), the database time of loyalty.services.training.submit_attempt (a
10-question quiz passed, paid through the rules) and of loyalty.services.challenges.record_event (a sale counted for the
running challenge), summed over their statements by a connection execute_wrapper: each under 20 ms (median).
"""

import inspect
import statistics
import time
import uuid
from urllib.parse import urlsplit

from bench import harness
from bench.harness import Options

NAME = "leaderboards"
DESCRIPTION = "leaderboard pages with 100,000 members and 5,000,000 events vs 1,000; quiz and progress DB time"

MEMBER_SCALE = 334  # demo channel blocks: 100,200 people
SIZES = {"1k": (1_000, 50_000), "100k": (100_000, 5_000_000)}  # name: (members, events)
SLUG = "bench-leaderboards-{}"
MAX_TIME_RATIO = 1.5
MAX_DB_MS = 20.0
GOAL_UNITS = 200
POINTS_PER_UNIT = 10
MAX_UNITS_PER_EVENT = 5
SEED = 0.42
CHALLENGE_CODE = "bench-leaderboard"
LINE_CODE = "bench-leaderboard"
QUESTIONS = 10
CHOICES = 4
WARMUP_REQUESTS = 3
PAGES = {
    "people": "{board}",
    "companies per member": "{board}?board=companies&per_member=1",
    "challenge": "{challenge}",
}


# The Django side: data (run in child processes by harness.django_call) -------------------------------------------


def _catalogue_and_rules(program):
    """The product, rules, challenge and quiz of a benchmark program (made once)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from loyalty.constants import Formula, GoalMetric, RuleEvent, RuleStatus
    from loyalty.models import (
        Challenge,
        ChallengeGoal,
        Course,
        IncentiveRule,
        Module,
        Product,
        ProductLine,
        QuizChoice,
        QuizQuestion,
    )

    now = timezone.now()
    line, _ = ProductLine.objects.get_or_create(code=LINE_CODE, defaults={"name": "Benchmark softeners"})
    product, _ = Product.objects.get_or_create(sku="BENCH-LB-1", defaults={"name": "Benchmark softener", "line": line})
    for code, event, formula, value in (
        ("bench-units", RuleEvent.SALE_LINE, Formula.PER_UNIT, POINTS_PER_UNIT),
        ("bench-training", RuleEvent.TRAINING_PASSED, Formula.FIXED, 50),
    ):
        IncentiveRule.objects.get_or_create(
            program=program,
            code=code,
            version=1,
            defaults={
                "name": code,
                "status": RuleStatus.PUBLISHED,
                "event": event,
                "formula": formula,
                "value": Decimal(value),
                "effective_from": now - timedelta(days=3650),
            },
        )
    challenge, created = Challenge.objects.get_or_create(
        program=program,
        code=CHALLENGE_CODE,
        defaults={
            "name": "Benchmark sprint",
            "description": "Sell 200 units.",
            "starts_at": now - timedelta(days=30),
            "ends_at": now + timedelta(days=3650),
            "is_published": True,
            "started_notified_at": now,
        },
    )
    if created:
        ChallengeGoal.objects.create(challenge=challenge, metric=GoalMetric.UNITS_SOLD, target=GOAL_UNITS)
    course, created = Course.objects.get_or_create(
        program=program, title="Benchmark course", defaults={"is_published": True}
    )
    if created:
        module = Module.objects.create(course=course, title="Benchmark module", body="Read this.", pass_percent=80)
        for n in range(QUESTIONS):
            question = QuizQuestion.objects.create(module=module, text=f"Question {n + 1}?", position=n)
            QuizChoice.objects.bulk_create(
                QuizChoice(question=question, text=f"Answer {c + 1}", is_correct=c == 0, position=c)
                for c in range(CHOICES)
            )
    return challenge, product


_PEOPLE = """
CREATE TEMPORARY TABLE bench_lb_people ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY m.id) AS idx, m.id AS member_id, m.partner_id
FROM partners_member m WHERE m.id = ANY(%(members)s)
"""
_EVENTS = """
CREATE TEMPORARY TABLE bench_lb_events ON COMMIT DROP AS
SELECT (1 + floor(random() * %(count)s))::bigint AS idx, (1 + floor(random() * %(units)s))::int AS quantity
FROM generate_series(1, %(events)s)
"""
_UNITS = """
CREATE TEMPORARY TABLE bench_lb_units ON COMMIT DROP AS
SELECT p.member_id, p.partner_id, sum(e.quantity) AS units
FROM bench_lb_events e JOIN bench_lb_people p USING (idx) GROUP BY p.member_id, p.partner_id
"""
# What record_event leaves for one goal of `target` units: progress {goal: units}, the score rounded down to cents
# (below 100 until the goal is reached), halfway at 50, completed at 100; normalised = score for a person.
_ENTRIES = """
INSERT INTO loyalty_challengeentry (challenge_id, partner_id, member_id, progress, score, normalised, active_members,
    halfway_at, completed_at, updated_at)
SELECT %(challenge)s, partner_id, member_id, jsonb_build_object(%(goal)s::text, units), s.score, s.score, 1,
    CASE WHEN s.score >= 50 THEN now() END, CASE WHEN units >= %(target)s THEN now() END, now()
FROM bench_lb_units
CROSS JOIN LATERAL (SELECT CASE WHEN units >= %(target)s THEN 100
    ELSE LEAST(trunc(units * 100.0 / %(target)s, 2), 99.99) END AS score) AS s
"""
# What standings_add leaves: each person's points, and each company's with its active members.
_STANDINGS = """
WITH people AS (
    INSERT INTO loyalty_periodstanding (program_id, period_start, partner_id, member_id, points, normalised,
        active_members)
    SELECT %(program)s, %(period)s, partner_id, member_id, units * %(per_unit)s, units * %(per_unit)s, 1
    FROM bench_lb_units
)
INSERT INTO loyalty_periodstanding (program_id, period_start, partner_id, member_id, points, normalised,
    active_members)
SELECT %(program)s, %(period)s, partner_id, NULL, points, ROUND(points::numeric / active, 4), active
FROM (
    SELECT u.partner_id, sum(u.units) * %(per_unit)s AS points,
        GREATEST((SELECT count(*) FROM partners_member a WHERE a.partner_id = u.partner_id AND a.status = 'active'),
            1) AS active
    FROM bench_lb_units u GROUP BY u.partner_id
) AS c
"""


def write_rows(
    *, program, challenge, member_ids: list[int], events: int, seed: float = SEED, keep_events: bool = False
) -> dict:
    """Draw `events` sales among `member_ids` and write the challenge entries and the period standings they make, in
    the caller's transaction. Returns the row counts. `keep_events`: leave the temporary tables (bench_lb_events,
    bench_lb_people) until the transaction ends, for a test to replay the same events through the services."""
    from django.db import connection

    from loyalty.selectors.leaderboards import current_period_start

    goal = challenge.goals.get()
    params = {
        "members": member_ids,
        "count": len(member_ids),
        "units": MAX_UNITS_PER_EVENT,
        "events": events,
        "challenge": challenge.pk,
        "goal": goal.pk,
        "target": GOAL_UNITS,
        "program": program.pk,
        "period": current_period_start(program=program),
        "per_unit": POINTS_PER_UNIT,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed])
        for statement in (_PEOPLE, _EVENTS, _UNITS):
            cursor.execute(statement, params)
        cursor.execute(_ENTRIES, params)
        entries = cursor.rowcount
        cursor.execute(_STANDINGS, params)
        companies = cursor.rowcount
        cursor.execute("SELECT count(*), coalesce(sum(units), 0) FROM bench_lb_units")
        people, units = cursor.fetchone()
        for table in ("bench_lb_units",) if keep_events else ("bench_lb_units", "bench_lb_events", "bench_lb_people"):
            cursor.execute(f"DROP TABLE {table}")
    return {"entries": entries, "standings_people": people, "standings_companies": companies, "units": int(units)}


def build(*, size: str, members: int, events: int, analyze: bool = True) -> dict:
    """The program of `size` with its rows, written once for the current program period; later calls find them.
    `analyze`: VACUUM ANALYZE the tables after writing (outside a transaction only)."""
    from django.db import transaction

    from loyalty.models import ChallengeEntry, PeriodStanding
    from loyalty.selectors.leaderboards import current_period_start
    from partners.models import Member

    started = time.monotonic()
    with transaction.atomic():
        program, _ = harness.bench_program(SLUG.format(size), f"Benchmark: leaderboards {size}", started_days_ago=400)
        challenge, _ = _catalogue_and_rules(program)
        period = current_period_start(program=program)
        standings = PeriodStanding.objects.filter(program=program)
        built = False
        if not standings.filter(period_start=period).exists():  # first run, or a new period: (re)build
            standings.delete()
            ChallengeEntry.objects.filter(challenge=challenge).delete()
            member_ids = list(Member.objects.order_by("pk").values_list("pk", flat=True)[:members])
            if len(member_ids) < members:
                raise RuntimeError(f"{len(member_ids):,} people, need {members:,}: seed a bigger demo channel.")
            written = write_rows(program=program, challenge=challenge, member_ids=member_ids, events=events)
            built = True
            print(
                f"{size}: {events:,} events of {members:,} people -> {written['entries']:,} challenge entries, "
                f"{written['standings_people']:,} + {written['standings_companies']:,} standings "
                f"in {time.monotonic() - started:.1f} s",
                flush=True,
            )
    if built and analyze:
        from bench.ledger import vacuum_analyze

        vacuum_analyze(ChallengeEntry, PeriodStanding)
    people = standings.filter(period_start=period, member__isnull=False).count()
    return {
        "size": size,
        "program_id": program.pk,
        "challenge_id": challenge.pk,
        "built": built,
        "build_seconds": round(time.monotonic() - started, 1),
        "members": people,
        "companies": standings.filter(period_start=period, member__isnull=True).count(),
        "entries": ChallengeEntry.objects.filter(challenge=challenge).count(),
        "events": events,
    }


# The Django side: measures ----------------------------------------------------------------------------------------


class DatabaseTime:
    """A connection execute_wrapper: the time spent in the statements run inside it, and their number."""

    def __init__(self):
        self.seconds = 0.0
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1

    @property
    def ms(self) -> float:
        return self.seconds * 1000


def middle_member(program):
    """An active person ranked in the middle of the program period's board of people."""
    from loyalty.models import PeriodStanding
    from loyalty.selectors.leaderboards import current_period_start
    from partners.constants import MemberStatus, PartnerStatus

    rows = PeriodStanding.objects.filter(
        program=program, period_start=current_period_start(program=program), member__isnull=False
    )
    middle = rows.count() // 2
    for row in rows.select_related("member__partner").order_by("-points", "pk")[middle : middle + 500]:
        if row.member.status == MemberStatus.ACTIVE and row.member.partner.status == PartnerStatus.ACTIVE:
            return row.member
    raise RuntimeError(f"No active person near the middle of {program.slug}'s board.")


def _signed_in_client(*, program, member, host: str):
    from django.test import Client

    client = Client(HTTP_HOST=host)
    client.force_login(member.user)
    session = client.session
    session["program_id"] = program.pk
    session.save()
    return client


def measure_pages(*, sizes: list[str], rounds: int, host: str = harness.LOOPBACK) -> dict:
    """Each page of each size: its query count, whether the viewer is on its board, and its time per request (median
    of `rounds`, the sizes and pages taking turns)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from loyalty.models import Challenge, Program

    targets = {}
    for size in sizes:
        program = Program.objects.get(slug=SLUG.format(size))
        challenge = Challenge.objects.get(program=program, code=CHALLENGE_CODE)
        member = middle_member(program)
        client = _signed_in_client(program=program, member=member, host=host)
        urls = {"board": reverse("leaderboard"), "challenge": reverse("challenge_detail", args=[challenge.pk])}
        for page, pattern in PAGES.items():
            targets[(size, page)] = (client, pattern.format(**urls))
    results = {key: {"times_ms": [], "db_ms": []} for key in targets}
    for (size, page), (client, url) in targets.items():
        for _ in range(WARMUP_REQUESTS):
            client.get(url)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        html = response.content.decode()
        results[(size, page)].update(
            status=response.status_code,
            queries=len(captured),
            viewer_on_board='data-testid="board-me"' in html,
            rank_text=_rank_text(html),
        )
    for _ in range(rounds):
        for key, (client, url) in targets.items():
            timer = DatabaseTime()
            with connection.execute_wrapper(timer):
                started = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
            results[key]["times_ms"].append(elapsed * 1000)
            results[key]["db_ms"].append(timer.ms)
    return {
        f"{size}|{page}": {
            **{k: v for k, v in figures.items() if k not in ("times_ms", "db_ms")},
            "median_ms": round(statistics.median(figures["times_ms"]), 3) if figures["times_ms"] else None,
            "median_db_ms": round(statistics.median(figures["db_ms"]), 3) if figures["db_ms"] else None,
            "requests": len(figures["times_ms"]),
        }
        for (size, page), figures in results.items()
    }


def _rank_text(html: str) -> str:
    import re

    found = re.search(r'data-testid="board-summary">\s*(.*?)\s*</p>', html, re.S)
    return re.sub(r"\s+", " ", found.group(1)) if found else ""


def _timed_in_rollback(work) -> DatabaseTime:
    """Run `work(timer)` in a transaction rolled back afterwards; returns the timer it filled."""
    from django.db import transaction

    timer = DatabaseTime()
    with transaction.atomic():
        work(timer)
        transaction.set_rollback(True)
    return timer


def measure_writes(*, size: str, samples: int) -> dict:
    """The database time of a quiz submission and of a challenge's progress update, `samples` of each, each by another
    active person of the program, each rolled back."""
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from loyalty.models import Challenge, ChallengeEntry, Module, Product, Program
    from partners.constants import MemberStatus, PartnerStatus
    from partners.models import Member

    program = Program.objects.get(slug=SLUG.format(size))
    challenge = Challenge.objects.get(program=program, code=CHALLENGE_CODE)
    in_program = ChallengeEntry.objects.filter(challenge=challenge).values("member_id")
    people = list(
        Member.objects.filter(pk__in=in_program, status=MemberStatus.ACTIVE, partner__status=PartnerStatus.ACTIVE)
        .select_related("partner__region", "role", "user")
        .order_by("pk")[:samples]
    )
    figures = {"quiz": {"available": True}, "progress": {"available": True}}
    try:
        from loyalty.services.training import start_attempt, submit_attempt

        module = Module.objects.get(course__program=program, title="Benchmark module")
        answers = {
            question.pk: [choice.pk for choice in question.choices.all() if choice.is_correct]
            for question in module.questions.prefetch_related("choices")
        }
    except ImportError as exc:
        figures["quiz"] = {"available": False, "why": str(exc)}
    else:
        quiz = []
        for member in people:

            def submit(timer, member=member):
                attempt = start_attempt(member=member, module=module)
                with connection.execute_wrapper(timer):
                    done = submit_attempt(member=member, attempt_id=attempt.pk, answers=answers)
                timer.passed = done.status == "passed"

            quiz.append(_timed_in_rollback(submit))
        figures["quiz"].update(_summary(quiz), passed=sum(getattr(t, "passed", False) for t in quiz))
    try:
        from loyalty.engine.facts import sale_event
        from loyalty.services.challenges import record_event
        from loyalty.services.earning import post_event
    except ImportError as exc:
        figures["progress"] = {"available": False, "why": str(exc)}
    else:
        product = Product.objects.get(sku="BENCH-LB-1")
        # record_event pays a completion through earning.post_event, which its caller gives it.
        extra = {"post_event": post_event} if "post_event" in inspect.signature(record_event).parameters else {}
        progress = []
        for member in people:

            def count(timer, member=member):
                event = sale_event(
                    program=program,
                    source_key=f"bench-progress:{uuid.uuid4().hex}",
                    partner=member.partner,
                    product=product,
                    quantity=Decimal(1),
                    amount=Decimal("100.00"),
                    occurred_on=timezone.localdate(),
                    actor=member,
                )
                with connection.execute_wrapper(timer):
                    timer.raised = len(record_event(program=program, event=event, **extra))

            progress.append(_timed_in_rollback(count))
        figures["progress"].update(_summary(progress), raised=sum(getattr(t, "raised", 0) for t in progress))
    return figures


def _summary(timers: list[DatabaseTime]) -> dict:
    values = [t.ms for t in timers]
    return {
        "samples": len(values),
        "median_db_ms": round(statistics.median(values), 3) if values else None,
        "max_db_ms": round(max(values), 3) if values else None,
        "queries": statistics.median([t.queries for t in timers]) if timers else None,
    }


# The benchmark ------------------------------------------------------------------------------------------------------


def measure(database_url: str, *, sizes: dict = SIZES, rounds: int = 30, samples: int = 21, label: str = "   ") -> dict:
    """Build (or find) both programs in the seeded database and take every measure: the figures `report` judges."""
    built = {
        size: harness.django_call(
            database_url, "bench.leaderboards:build", {"size": size, "members": m, "events": e}, label=label
        )
        for size, (m, e) in sizes.items()
    }
    for facts in built.values():
        print(
            f"   {facts['size']}: {facts['members']:,} people and {facts['companies']:,} companies on the period's "
            f"board, {facts['entries']:,} challenge entries ({'built' if facts['built'] else 'reused'})",
            flush=True,
        )
    load = {"pages": harness.report_load("before the pages")}
    pages = harness.django_call(
        database_url, "bench.leaderboards:measure_pages", {"sizes": list(sizes), "rounds": rounds}, label=label
    )
    load["writes"] = harness.report_load("before the quiz and progress updates")
    big = list(sizes)[-1]
    writes = harness.django_call(
        database_url, "bench.leaderboards:measure_writes", {"size": big, "samples": samples}, label=label
    )
    return {"built": built, "pages": pages, "writes": writes, "sizes": list(sizes), "load_average": load}


def report(figures: dict) -> tuple[bool, list]:
    """Print the figures and the verdicts; returns (passed, checks)."""
    small, big = figures["sizes"][0], figures["sizes"][-1]
    pages, writes = figures["pages"], figures["writes"]
    table = harness.Table(
        ["page", f"queries {small}", f"queries {big}", f"ms {small}", f"ms {big}", f"DB ms {small}", f"DB ms {big}"]
        + ["viewer's rank"]
    )
    checks = []
    ratios = {}
    for page in PAGES:
        a, b = pages[f"{small}|{page}"], pages[f"{big}|{page}"]
        ratio = b["median_ms"] / a["median_ms"] if a["median_ms"] else float("inf")
        ratios[page] = round(ratio, 3)
        table.add(
            page, a["queries"], b["queries"], f"{a['median_ms']:.1f}", f"{b['median_ms']:.1f}",
            f"{a['median_db_ms']:.1f}", f"{b['median_db_ms']:.1f}", f"{a['rank_text']} | {b['rank_text']}",
        )  # fmt: skip
        shown = a["status"] == b["status"] == 200 and a["viewer_on_board"] and b["viewer_on_board"]
        checks.append(
            (f"{page}: queries {big} = {small}", f"{b['queries']} vs {a['queries']}", "equal",
             a["queries"] == b["queries"] and shown)
        )  # fmt: skip
        checks.append(
            (f"{page}: time {big} / {small}", f"{ratio:.2f}", f"<= {MAX_TIME_RATIO}", ratio <= MAX_TIME_RATIO)
        )
    for name, label in (("quiz", "quiz submission (submit_attempt)"), ("progress", "progress update (record_event)")):
        measured = writes[name]
        if not measured.get("available"):
            checks.append((f"{label} DB time", f"not measured: {measured.get('why')}", f"< {MAX_DB_MS} ms", False))
            continue
        ok = measured["median_db_ms"] is not None and measured["median_db_ms"] < MAX_DB_MS
        checks.append(
            (f"{label} DB time", f"{measured['median_db_ms']:.2f} ms (max {measured['max_db_ms']:.2f}, "
             f"{measured['queries']:.0f} statements)", f"< {MAX_DB_MS:.0f} ms", ok)
        )  # fmt: skip
    verdicts = harness.Table(["target", "measured", "wanted", "result"])
    for name, measured, wanted, ok in checks:
        verdicts.add(name, measured, wanted, "PASS" if ok else "FAIL")
    print()
    print(table.render())
    print(
        f"  ms: median time of a request through Django's test client; DB ms: the part spent in database statements; "
        f"quiz passed {writes['quiz'].get('passed', 0)}/{writes['quiz'].get('samples', 0)}, progress raised "
        f"{writes['progress'].get('raised', 0)} entries in {writes['progress'].get('samples', 0)} updates"
    )
    print()
    print(verdicts.render(), flush=True)
    figures["ratios"] = ratios
    return all(ok for *_, ok in checks), checks


def run(options: Options) -> bool:
    started = time.monotonic()
    url = harness.sibling_database(options.database_url, NAME)
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(f"-- data: database {urlsplit(url).path.lstrip('/')}", flush=True)
    seed_seconds = harness.prepare_channel(url, MEMBER_SCALE, label=f"[{NAME}] ")
    figures = measure(url, rounds=max(10, options.duration * 3))
    passed, checks = report(figures)
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed, options),
            "targets": {"max_time_ratio": MAX_TIME_RATIO, "max_db_ms": MAX_DB_MS},
            **figures,
            "seed_seconds": round(seed_seconds, 1),
            "checks": [{"target": n, "measured": m, "wanted": w, "passed": ok} for n, m, w, ok in checks],
        },
    )
    print(f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.0f} s)")
    return passed
