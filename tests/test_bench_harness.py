import os
import shutil

import pytest

from bench import harness

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:47667/bench/bare/
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.08ms    2.92ms  32.61ms   96.70%
    Req/Sec   687.71    165.46   808.00     95.24%
  Latency Distribution
     50%  812.00us
     75%    2.72ms
     90%    3.45ms
     99%    1.20s
  1439 requests in 1.10s, 438.45KB read
Requests/sec:   1309.49
Transfer/sec:    398.99KB
"""


def test_parse_wrk_reads_throughput_and_latency_percentiles_in_milliseconds():
    result = harness.parse_wrk(WRK_OUTPUT)

    assert result.requests_per_second == 1309.49
    assert result.p50_ms == pytest.approx(0.812)
    assert result.p99_ms == 1200.0
    assert result.requests == 1439
    assert result.seconds == pytest.approx(1.1)
    assert result.errors == 0


def test_parse_wrk_counts_error_responses_and_socket_errors():
    output = WRK_OUTPUT.replace(
        "Requests/sec:",
        "  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 7\nRequests/sec:",
    )

    assert harness.parse_wrk(output).errors == 10


def test_parse_wrk_refuses_output_without_a_latency_distribution():
    with pytest.raises(harness.BenchError, match="no 99% latency"):
        harness.parse_wrk(WRK_OUTPUT.replace("     99%    1.20s\n", ""))


def test_sibling_database_keeps_the_server_and_renames_the_database():
    assert (
        harness.sibling_database("postgres://postgres@127.0.0.1:5432/h_bench", "scale1")
        == "postgres://postgres@127.0.0.1:5432/h_bench_scale1"
    )
    socket_url = "postgres://postgres@%2Ftmp%2Fpg:5432/postgres?sslmode=disable"
    assert harness.sibling_database(socket_url, "scale1") == (
        "postgres://postgres@%2Ftmp%2Fpg:5432/postgres_scale1?sslmode=disable"
    )


def test_load_runs_only_on_loopback():
    with pytest.raises(harness.BenchError, match="loopback only"):
        harness.run_wrk("http://example.com/", seconds=1)


def test_table_aligns_numbers_right_and_names_left():
    table = harness.Table(["page", "req/s", "result"])
    table.add("bare view", "5,650", "")
    table.add("home", "815", "PASS")

    assert table.render().splitlines() == [
        "page       req/s  result",
        "---------  -----  ------",
        "bare view  5,650",
        "home         815  PASS",
    ]


def test_server_serves_the_bare_view_and_the_login_page_on_loopback_and_stops():
    # The bare view and the signed-out login page need no data, so any reachable DATABASE_URL will do.
    with harness.Server(os.environ["DATABASE_URL"], workers=1) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert harness.fetch(server.url + "/bench/bare/") == (200, b"ok")
        status, body = harness.fetch(server.url + "/accounts/login/")
        assert status == 200
        assert b'name="password"' in body
        process = server.process

    assert process.poll() is not None


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_wrk_drives_the_bare_view_for_the_time_given():
    with harness.Server(os.environ["DATABASE_URL"], workers=1) as server:
        result = harness.run_wrk(server.url + "/bench/bare/", seconds=1, threads=1, connections=2)

    assert result.requests > 0
    assert result.errors == 0
    assert 0 < result.p50_ms <= result.p99_ms
    assert 0.9 < result.seconds < 5
