"""`python -m bench [name ...] [--duration S] [--scale N] ...`: run all benchmarks, or those named.

Runs against the database in DATABASE_URL (`make bench` starts an embedded PostgreSQL in .pgdata/bench);
each benchmark creates and seeds what it needs there, and re-runs reuse the data. Exit code 1 when a
benchmark misses a target. Results are printed and written to bench/results/<name>.json.
"""

import argparse
import importlib
import os
import sys

from bench.harness import BenchError, Options

# name -> module with NAME, DESCRIPTION and run(options) -> bool
BENCHMARKS = {
    "foundation": "bench.foundation",
    "checkout": "bench.checkout",
    "ledger": "bench.ledger",
    "statement": "bench.statement",
    "sellout": "bench.sellout",
    "communications": "bench.communications",
    "leaderboards": "bench.leaderboards",
    "rollups": "bench.rollups",
    "exports": "bench.exports",
    "dashboards": "bench.dashboards",
    "api": "bench.api",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="name", help=f"default: all ({', '.join(BENCHMARKS)})")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--duration", type=int, default=Options.duration, help="seconds of measured load per URL")
    parser.add_argument("--warmup", type=int, default=Options.warmup, help="seconds of unmeasured load per URL first")
    parser.add_argument("--scale", type=int, default=Options.scale, help="seed_demo --scale of the big database")
    parser.add_argument("--workers", type=int, default=Options.workers, help="gunicorn sync workers")
    parser.add_argument("--connections", type=int, default=Options.connections, help="concurrent clients (wrk -c)")
    parser.add_argument("--threads", type=int, default=Options.threads, help="wrk threads (wrk -t)")
    args = parser.parse_args(argv)

    if args.list:
        for name, module in BENCHMARKS.items():
            print(f"{name:<15} {importlib.import_module(module).DESCRIPTION}")
        return 0
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url:
        parser.error("DATABASE_URL is not set: run `make bench`, or set DATABASE_URL=postgres://user@host:5432/dbname")
    if args.duration < 1 or args.scale < 1 or args.workers < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --scale, --workers, --connections and --threads must be at least 1")
    if args.threads > args.connections:
        parser.error("--threads cannot exceed --connections (wrk gives each thread at least one connection)")
    options = Options(
        database_url=database_url,
        duration=args.duration,
        warmup=max(args.warmup, 0),
        scale=args.scale,
        workers=args.workers,
        threads=args.threads,
        connections=args.connections,
    )

    passed = True
    for name in args.names or list(BENCHMARKS):
        try:
            passed = importlib.import_module(BENCHMARKS[name]).run(options) and passed
        except BenchError as exc:
            print(f"{name}: cannot run: {exc}", file=sys.stderr, flush=True)
            passed = False
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
