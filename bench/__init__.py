"""Benchmarks: `make bench` (python -m bench [names...]). See bench/__main__.py for the options and
bench/harness.py for the building blocks (database, gunicorn on loopback, sessions, wrk, results)."""
