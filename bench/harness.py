"""Building blocks for benchmarks: a database with the demo data, a gunicorn server on loopback, signed-in
sessions and query counts (bench.probe), the wrk load generator, and the results table and file.

Everything Django runs in child processes with DJANGO_SETTINGS_MODULE=bench.settings and the DATABASE_URL
given, so one benchmark can look at several databases (scale 1 and the big scale) and the benchmark process
itself never opens a database connection that would skew the figures.
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


def write_results(name: str, data: dict) -> Path:
    """Write a benchmark's figures to bench/results/<name>.json (git-ignored)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value):
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
