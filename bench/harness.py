"""Building blocks for benchmarks: a database with the demo data, a gunicorn server on loopback, signed-in
sessions and query counts (bench.probe), the wrk load generator, and the results table and file.

Everything Django runs in child processes with DJANGO_SETTINGS_MODULE=bench.settings and the DATABASE_URL
given, so one benchmark can look at several databases (scale 1 and the big scale) and the benchmark process
itself never opens a database connection that would skew the figures.
"""

import http.client
import importlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = BASE_DIR / "bench" / "results"
SETTINGS_MODULE = "bench.settings"
LOOPBACK = "127.0.0.1"


class BenchError(Exception):
    """The benchmark cannot run (missing tool, server that does not start, broken page); the message says why."""


@dataclass(frozen=True)
class Options:
    database_url: str
    duration: int = 10  # seconds of measured load per URL
    warmup: int = 2  # seconds of unmeasured load per URL first
    scale: int = 334  # seed_demo --scale for the big database (334 ≈ 100,000 members)
    workers: int = 2  # gunicorn sync workers
    threads: int = 2  # wrk threads
    connections: int = 4  # wrk connections: the concurrent clients


# Databases ---------------------------------------------------------------------------------------------------


def django_env(database_url: str) -> dict[str, str]:
    """The environment for a Django child process: bench settings against `database_url`."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    env["DATABASE_URL"] = database_url
    env.setdefault("TESTING", "true")  # allows the settings' development defaults; `make bench` sets it too
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BASE_DIR), env.get("PYTHONPATH")]))
    return env


def sibling_database(database_url: str, suffix: str) -> str:
    """The URL of database `<name>_<suffix>` on the same server."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path=f"/{name}_{suffix}"))


def ensure_database(database_url: str) -> bool:
    """Create the URL's database when the server does not have it yet; True if it was created."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def prepare_database(database_url: str, scale: int, *, label: str = "") -> float:
    """Create the database if needed, migrate it and load the demo data at `scale` (quick when already there).
    Prints seed_demo's progress as it goes; returns the seconds the seeding took."""
    if ensure_database(database_url):
        print(f"{label}created database {urlsplit(database_url).path.lstrip('/')}", flush=True)
    env = django_env(database_url)
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, cwd=BASE_DIR, check=True)
    started = time.monotonic()
    process = subprocess.Popen(
        [*manage, "seed_demo", "--scale", str(scale)], env=env, cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
    )
    for line in process.stdout:
        print(f"{label}{line.rstrip()}", flush=True)
    if process.wait() != 0:
        raise BenchError(f"seed_demo --scale {scale} failed (exit code {process.returncode}).")
    return time.monotonic() - started


def prepare_channel(database_url: str, scale: int, *, label: str = "") -> float:
    """Like prepare_database, but only the demo channel (partners.demo: partners, people, demo logins), without
    seed_demo's demo program: for benchmarks that build their own program. Returns the seconds the seeding took."""
    if ensure_database(database_url):
        print(f"{label}created database {urlsplit(database_url).path.lstrip('/')}", flush=True)
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--no-input", "-v", "0"], env=django_env(database_url), cwd=BASE_DIR, check=True
    )
    return django_call(database_url, "bench.harness:seed_channel", {"scale": scale}, label=label)


def seed_channel(*, scale: int) -> float:
    """The Django side of prepare_channel."""
    from partners import demo

    report = demo.seed_demo(scale=scale, progress=lambda line: print(line, flush=True))
    if report.nothing_to_do:
        print(f"Demo channel: all {scale} block(s) already present ({report.seconds:.1f} s).", flush=True)
    else:
        rows = ", ".join(f"{count:,} {table}" for table, count in report.rows.items() if count)
        print(f"Demo channel: created {rows} in {report.seconds:.1f} s.", flush=True)
    return report.seconds


def bench_program(slug: str, name: str, *, started_days_ago: int, expiry_months: int | None = 24):
    """(program, created): a benchmark's own program, made by its first run and found by its slug later."""
    from django.utils import timezone

    from loyalty.models import Program

    starts_on = timezone.localdate() - timedelta(days=started_days_ago)
    return Program.objects.get_or_create(
        slug=slug, defaults={"name": name, "starts_on": starts_on, "expiry_months": expiry_months}
    )


# Django side: sessions and query counts (run in bench.probe) --------------------------------------------------


def probe(database_url: str, *, pages: list[dict], sessions: list[str] = ()) -> dict:
    """Run bench.probe against `database_url`: each page's status and query count as its user sees it, and a
    session cookie for each demo login named in `sessions`. See bench/probe.py for the answer's shape."""
    request = json.dumps({"pages": pages, "sessions": list(sessions)})
    result = subprocess.run(
        [sys.executable, "-m", "bench.probe"],
        input=request,
        capture_output=True,
        text=True,
        env=django_env(database_url),
        cwd=BASE_DIR,
        timeout=300,
    )
    if result.returncode != 0:
        raise BenchError(f"bench.probe failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


# Django side: any function, in a child process -----------------------------------------------------------------

RESULT_MARKER = "BENCH-RESULT "
_CHILD_COMMAND = "import sys; from bench.harness import child_main; sys.exit(child_main(sys.argv[1]))"


def django_call_start(database_url: str, target: str, payload: dict | None = None) -> subprocess.Popen:
    """Start `target` ("bench.ledger:build") in a child process with Django set up against `database_url`; the
    function receives `payload` as keyword arguments and returns something JSON can carry. Collect the answer
    with django_call_finish; start several before collecting any to run them at the same time."""
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by django_call_finish)
    process = subprocess.Popen(
        [sys.executable, "-c", _CHILD_COMMAND, target],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=django_env(database_url),
        cwd=BASE_DIR,
    )
    process.error_output = errors
    process.stdin.write(json.dumps(payload or {}))
    process.stdin.close()
    return process


def django_call_finish(process: subprocess.Popen, *, label: str = "", timeout: float = 3600) -> Any:
    """Wait for a django_call_start child: echo what it prints (prefixed with `label`) and return its answer.
    Raises BenchError with the child's error output when it fails or outlives `timeout` seconds."""
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        process.kill()

    timer = threading.Timer(timeout, stop)
    timer.start()
    answer, found = None, False
    try:
        for line in process.stdout:
            if line.startswith(RESULT_MARKER):
                answer, found = json.loads(line[len(RESULT_MARKER) :]), True
            else:
                print(f"{label}{line.rstrip()}", flush=True)
        process.wait()
    finally:
        timer.cancel()
    process.error_output.seek(0)
    error = process.error_output.read().decode(errors="replace")[-4000:]
    process.error_output.close()
    if process.returncode != 0 or not found:
        why = f"was stopped after {timeout:.0f} s" if stopped.is_set() else f"failed (exit code {process.returncode})"
        raise BenchError(f"{process.args[-1]} {why}:\n{error}")
    return answer


def django_call(database_url: str, target: str, payload: dict | None = None, *, label: str = "", timeout=3600) -> Any:
    """Run `target` in a Django child process against `database_url` and return its answer (see
    django_call_start)."""
    return django_call_finish(django_call_start(database_url, target, payload), label=label, timeout=timeout)


def child_main(target: str) -> int:
    """The child side of django_call: read the keyword arguments on stdin, set Django up, call the function and
    write its answer on stdout after RESULT_MARKER."""
    import django

    payload = json.load(sys.stdin)
    django.setup()
    module, function = target.split(":")
    answer = getattr(importlib.import_module(module), function)(**payload)
    sys.stdout.flush()
    sys.stdout.write(RESULT_MARKER + json.dumps(answer, default=_jsonable) + "\n")
    sys.stdout.flush()
    return 0


# The server ----------------------------------------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def fetch(url: str, *, cookie: str = "", timeout: float = 10.0) -> tuple[int, bytes]:
    """GET `url` once without following redirects: (status, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/", headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_form(url: str, fields: dict[str, str], *, cookie: str = "", timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """POST `fields` form-encoded to `url` once without following redirects: (status, headers, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {})}
    try:
        connection.request("POST", parts.path or "/", body=urlencode(fields), headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class Server:
    """gunicorn serving the app (bench settings) on a free loopback port; a context manager that waits until
    the server answers and stops it, and only it, on exit.

        with Server(database_url, workers=2) as server:
            fetch(server.url + "/bench/bare/")
    """

    ready_path = "/bench/bare/"

    def __init__(self, database_url: str, *, workers: int = 2, start_timeout: float = 30.0):
        self.database_url = database_url
        self.workers = workers
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115

    def __enter__(self) -> "Server":
        command = [
            sys.executable, "-m", "gunicorn", "loyalty.wsgi:application",
            "--bind", f"{LOOPBACK}:{self.port}",
            "--workers", str(self.workers),
            "--worker-class", "sync",
            "--log-level", "warning",
            "--error-logfile", "-",
            "--chdir", str(BASE_DIR),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, env=django_env(self.database_url), cwd=BASE_DIR, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited with code {self.process.returncode}:\n{self.output()}")
            try:
                status, _ = fetch(self.url + self.ready_path, timeout=2)
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                return
            raise BenchError(f"gunicorn answered {self.ready_path} with HTTP {status}:\n{self.output()}")
        raise BenchError(f"gunicorn did not answer within {self.start_timeout:.0f} s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # gunicorn's graceful shutdown stops its workers
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


# The load generator ---------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx responses plus socket errors
    seconds: float


def ensure_wrk() -> str:
    """The path of wrk; installs the Debian package when missing and running as root."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() != 0:
        raise BenchError("The load generator wrk is not installed. Install it: sudo apt-get install wrk")
    print("The load generator wrk is not installed; installing it: apt-get install -y wrk", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True)
    path = shutil.which("wrk")
    if not path:
        raise BenchError("apt-get did not install wrk; install it by hand: apt-get install wrk")
    return path


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> LoadResult:
    """Read requests per second, the 50th and 99th latency percentiles and the error counts from
    `wrk --latency` output."""

    def percentile(p: str) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        if not found:
            raise BenchError(f"wrk output has no {p}% latency:\n{output}")
        return _ms(*found.groups())

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m)", output, re.MULTILINE)
    if not rate or not total:
        raise BenchError(f"Cannot read wrk's output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return LoadResult(
        requests_per_second=float(rate.group(1)),
        p50_ms=percentile("50"),
        p99_ms=percentile("99"),
        requests=int(total.group(1)),
        errors=(int(errors.group(1)) if errors else 0) + (sum(map(int, sockets.groups())) if sockets else 0),
        seconds=_ms(total.group(2), total.group(3)) / 1000,
    )


def run_wrk(url: str, *, seconds: int, threads: int = 2, connections: int = 4, cookie: str = "") -> LoadResult:
    """Drive `url` with wrk for `seconds` (the run is bounded in time) and return what it measured."""
    if urlsplit(url).hostname != LOOPBACK:
        raise BenchError(f"Benchmarks run on loopback only, not {url}.")
    command = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    try:
        result = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {seconds + 30} s") from exc
    if result.returncode != 0:
        raise BenchError(f"wrk failed (exit code {result.returncode}):\n{result.stderr or result.stdout}")
    return parse_wrk(result.stdout)


# Scripted load: wrk with a Lua script (bench/lua/) that reports its own summary -------------------------------

LUA_DIR = BASE_DIR / "bench" / "lua"
WRK_SUMMARY_MARKER = "BENCH-WRK "


@dataclass
class ScriptedLoad:
    """What a bench/lua script's done() reported: counts, latency percentiles, and its own extra figures."""

    requests: int  # responses received
    seconds: float
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors (connect, read, write, timeout) and HTTP statuses above 399, as wrk counts them
    extra: dict = field(default_factory=dict)


def parse_wrk_summary(output: str) -> ScriptedLoad:
    """Read the summary line a bench/lua script's done() prints (WRK_SUMMARY_MARKER + JSON)."""
    lines = [line for line in output.splitlines() if line.startswith(WRK_SUMMARY_MARKER)]
    if not lines:
        raise BenchError(f"wrk printed no summary line ({WRK_SUMMARY_MARKER.strip()}):\n{output}")
    data = json.loads(lines[-1][len(WRK_SUMMARY_MARKER) :])
    seconds = data.pop("duration_us") / 1e6
    latency = data.pop("latency_us")
    errors = data.pop("errors")
    requests = data.pop("requests")
    return ScriptedLoad(
        requests=requests,
        seconds=seconds,
        requests_per_second=requests / seconds if seconds else 0.0,
        p50_ms=latency["p50"] / 1000,
        p95_ms=latency["p95"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        errors=sum(errors.values()),
        extra={"error_kinds": errors, **data},
    )


def run_wrk_script(
    url: str,
    *,
    script: str,
    seconds: int,
    threads: int = 2,
    connections: int = 4,
    script_args: tuple[str, ...] = (),
) -> ScriptedLoad:
    """Drive `url` with wrk and bench/lua/<script> for `seconds`; the script's done() reports the figures."""
    if urlsplit(url).hostname != LOOPBACK:
        raise BenchError(f"Benchmarks run on loopback only, not {url}.")
    command = [
        ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(LUA_DIR / script), url, *(["--", *script_args] if script_args else []),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {seconds + 30} s") from exc
    if result.returncode != 0:
        raise BenchError(f"wrk failed (exit code {result.returncode}):\n{result.stderr or result.stdout}")
    return parse_wrk_summary(result.stdout)


# CPU accounting (Linux /proc; elsewhere the figures are 0) --------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far; 0.0 when it is gone or /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The direct children of process `pid` (a gunicorn master's workers)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return children


def postgres_backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL client backends connected to the URL's database, when the server runs on this machine
    (found by their process titles, "postgres: ... <user> <database> <client> ...", without connecting)."""
    name = urlsplit(database_url).path.lstrip("/")
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
        except OSError:
            continue
        if words[:1] == ["postgres:"] and name in words[2:5]:
            pids.append(int(cmdline.parent.name))
    return pids


class CpuMeter:
    """CPU seconds used by a set of processes between start() and stop() (processes present at both moments)."""

    def __init__(self, pids) -> None:
        self.pids = pids  # a callable returning the pids to watch
        self.seconds = 0.0

    def start(self) -> None:
        self._before = {pid: cpu_seconds(pid) for pid in self.pids()}

    def stop(self) -> float:
        after = {pid: cpu_seconds(pid) for pid in self.pids()}
        self.seconds = sum(after[pid] - before for pid, before in self._before.items() if pid in after)
        return self.seconds


# Results -------------------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A plain-text table: columns right-aligned except the first and the last."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells) -> None:
        self.rows.append([str(cell) for cell in cells])

    def render(self) -> str:
        widths = [max(len(row[i]) for row in [self.columns, *self.rows]) for i in range(len(self.columns))]
        last = len(self.columns) - 1

        def line(cells: list[str]) -> str:
            return "  ".join(
                cell.ljust(widths[i]) if i in (0, last) else cell.rjust(widths[i]) for i, cell in enumerate(cells)
            ).rstrip()

        rule = "  ".join("-" * width for width in widths)
        return "\n".join([line(self.columns), rule, *(line(row) for row in self.rows)])


def results_header(name: str, passed: bool, options=None, omit: tuple[str, ...] = ("database_url",)) -> dict:
    """The fields every results file starts with: which benchmark, when, whether it passed, with what options."""
    header = {"benchmark": name, "finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "passed": passed}
    if options is not None:
        header["options"] = {k: v for k, v in asdict(options).items() if k not in omit}
    return header


def write_results(name: str, data: dict) -> Path:
    """Write a benchmark's figures to bench/results/<name>.json (git-ignored)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    return path


def report_load(context: str) -> tuple[float, float, float]:
    """Print the load average (1, 5, 15 min) before a measurement, with a warning when other processes
    compete for the CPU; returns it for the results file."""
    averages = os.getloadavg()
    print(f"   load average {averages[0]:.2f} {averages[1]:.2f} {averages[2]:.2f} {context}".rstrip(), flush=True)
    if averages[0] > (os.cpu_count() or 1) / 2:
        print(
            f"   warning: load average {averages[0]:.1f} on {os.cpu_count()} cores: other processes compete for "
            "the CPU, so the figures will be lower than on an idle machine",
            flush=True,
        )
    return averages


def _jsonable(value):
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
