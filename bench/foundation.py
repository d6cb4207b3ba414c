"""The foundation benchmark: the member home page and the team page under load, next to a bare Django view.

gunicorn (sync workers, database connections kept open by CONN_MAX_AGE) serves bench.settings on loopback
against the demo data at --scale (334 ≈ 100,000 members). wrk drives each URL with 4 concurrent clients
holding signed-in sessions: a sales rep for the home page, and the flagship partner's owner for the team
page, whose team grows with the scale (about 2,000 people at scale 334, so the page paginates). Query
counts come from the test client, on a scale-1 database and on the big one.

Targets: each page at least 0.15 of the bare view's throughput, p99 under 25 ms, and the same query count at
scale 1 and at the big scale.
"""

import os
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from bench import harness
from bench.harness import BenchError, Options

NAME = "foundation"
DESCRIPTION = "member home page and team page vs a bare view, 4 signed-in clients, ~100,000 members"

MIN_RATIO = 0.15
MAX_P99_MS = 25.0


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    who: str | None  # the demo login (partners.demo.demo_logins) that requests it; None: signed out


BARE = Page("bare view", "/bench/bare/", None)
PAGES = (
    Page("home", "/", "Sales rep"),
    Page("team", "/team/", "Partner owner"),
)


@dataclass
class PageResult:
    page: Page
    queries_small: int | None = None
    queries_big: int | None = None
    load: harness.LoadResult | None = None
    ratio: float | None = None
    failures: list[str] | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def run(options: Options, pages: tuple[Page, ...] = PAGES) -> bool:
    """Run the benchmark, print the table, write bench/results/foundation.json; True when every target is met."""
    started = time.monotonic()
    small_url, big_url = harness.sibling_database(options.database_url, "scale1"), options.database_url
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(f"-- data: scale 1 in database {_name(small_url)}, scale {options.scale} in {_name(big_url)}", flush=True)
    seed_small = harness.prepare_database(small_url, 1, label="[scale 1] ")
    seed_big = harness.prepare_database(big_url, options.scale, label=f"[scale {options.scale}] ")

    print("-- query counts (test client, second request of each page)", flush=True)
    specs = [{"path": page.path, "who": page.who} for page in (BARE, *pages)]
    small = harness.probe(small_url, pages=specs)
    big = harness.probe(big_url, pages=specs, sessions=sorted({page.who for page in pages if page.who}))
    for scale, facts in ((1, small["facts"]), (options.scale, big["facts"])):
        teams = ", ".join(f"{who} {size:,}" for who, size in facts["team_size"].items())
        print(f"   scale {scale}: {facts['members']:,} members at {facts['partners']:,} partners; team sizes: {teams}")
    results = [PageResult(page) for page in (BARE, *pages)]
    for result, at_small, at_big in zip(results, small["pages"], big["pages"], strict=True):
        result.queries_small, result.queries_big = at_small["queries"], at_big["queries"]
        errors = [f"scale {n}: {p['error']}" for n, p in ((1, at_small), (options.scale, at_big)) if p["error"]]
        if errors:
            result.failures = [f"does not answer 200 ({'; '.join(errors)})"]
    if not results[0].passed:
        raise BenchError(f"The bare view fails: {results[0].failures}")

    cookies = big["sessions"]
    load_average = os.getloadavg()
    print(
        f"-- load: {options.connections} clients, {options.duration} s per URL after {options.warmup} s warm-up; "
        f"gunicorn {options.workers} sync workers; load average {load_average[0]:.2f}",
        flush=True,
    )
    if load_average[0] > (os.cpu_count() or 1) / 2:
        print(
            f"   warning: load average {load_average[0]:.1f} on {os.cpu_count()} cores before the run: other "
            "processes compete for the CPU, so every figure will be lower than on an idle machine",
            flush=True,
        )
    harness.ensure_wrk()
    with harness.Server(big_url, workers=options.workers) as server:
        runnable = [r for r in results if r.passed]
        for result in runnable:  # through gunicorn, each page must answer 200 to its session, not redirect
            status, _ = harness.fetch(server.url + result.page.path, cookie=cookies.get(result.page.who, ""))
            if status != 200:
                result.failures = [f"answers HTTP {status} through gunicorn"]
        runnable = [r for r in runnable if r.passed]
        for phase, seconds in (("warm-up", options.warmup), ("measure", options.duration)):
            for result in runnable if seconds > 0 else []:
                load = harness.run_wrk(
                    server.url + result.page.path,
                    seconds=seconds,
                    threads=options.threads,
                    connections=options.connections,
                    cookie=cookies.get(result.page.who, ""),
                )
                if phase == "measure":
                    result.load = load
                    print(
                        f"   {result.page.name}: {load.requests_per_second:,.0f} req/s, p99 {load.p99_ms:.1f} ms",
                        flush=True,
                    )

    bare = results[0].load
    results[0].ratio = 1.0
    for result in results[1:]:
        _judge(result, bare, options)
    _print(results, options)
    passed = all(r.passed for r in results)
    data = {
        "scale_1": {**small["facts"], "database": _name(small_url), "seed_seconds": round(seed_small, 1)},
        f"scale_{options.scale}": {**big["facts"], "database": _name(big_url), "seed_seconds": round(seed_big, 1)},
    }
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed, options),
            "load_average_at_start": load_average[0],
            "targets": {"min_ratio_to_bare": MIN_RATIO, "max_p99_ms": MAX_P99_MS, "same_query_count": True},
            "data": data,
            "pages": [
                {
                    **asdict(r.page),
                    "queries_scale_1": r.queries_small,
                    f"queries_scale_{options.scale}": r.queries_big,
                    **(asdict(r.load) if r.load else {}),
                    "ratio_to_bare": round(r.ratio, 3) if r.ratio is not None else None,
                    "passed": r.passed,
                    "failures": r.failures or [],
                }
                for r in results
            ],
        },
    )
    print(f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {_elapsed(started)})", flush=True)
    return passed


def _judge(result: PageResult, bare: harness.LoadResult, options: Options) -> None:
    failures = list(result.failures or [])
    if result.load is not None:
        result.ratio = result.load.requests_per_second / bare.requests_per_second
        if result.ratio < MIN_RATIO:
            failures.append(f"throughput {result.ratio:.2f} of the bare view's, below {MIN_RATIO}")
        if result.load.p99_ms >= MAX_P99_MS:
            failures.append(f"p99 {result.load.p99_ms:.1f} ms, not under {MAX_P99_MS:.0f} ms")
        if result.load.errors:
            failures.append(f"{result.load.errors} failed requests under load")
    if result.queries_small != result.queries_big:
        failures.append(f"{result.queries_small} queries at scale 1 but {result.queries_big} at scale {options.scale}")
    result.failures = failures


def _print(results: list[PageResult], options: Options) -> None:
    target = f">={MIN_RATIO} bare, p99<{MAX_P99_MS:.0f}ms, same queries"
    table = harness.Table(
        [
            "page",
            "req/s",
            "p50 ms",
            "p99 ms",
            "queries@scale1",
            f"queries@scale{options.scale}",
            "vs bare",
            "target",
            "result",
        ]
    )
    for r in results:
        load = r.load
        reference = r.page is BARE
        table.add(
            f"{r.page.name} {r.page.path}",
            f"{load.requests_per_second:,.0f}" if load else "-",
            f"{load.p50_ms:.1f}" if load else "-",
            f"{load.p99_ms:.1f}" if load else "-",
            r.queries_small,
            r.queries_big,
            "1.00" if reference else (f"{r.ratio:.2f}" if r.ratio is not None else "-"),
            "reference" if reference else target,
            "" if reference else ("PASS" if r.passed else "FAIL"),
        )
    print()
    print(table.render())
    for r in results:
        for failure in r.failures or []:
            print(f"  {r.page.name}: {failure}")
    print(flush=True)


def _name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")


def _elapsed(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"
