"""The data builders and result readers of the checkout, ledger and statement benchmarks, at tiny sizes (no
timing is asserted: the figures come from `python -m bench`)."""

import shutil
import subprocess
import time
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from django.db import connection
from django.test import Client
from psycopg.conninfo import make_conninfo

from bench import checkout, harness, ledger, statement
from loyalty.models import PointsAccount, PointsAllocation, PointsEntry, PointsLot
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger as ledger_service
from rewards.models import RedemptionOrder
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory, PartnerFactory

DAY = 86_400.0


def write(rows: ledger.LedgerRows) -> dict:
    with connection.cursor() as cursor:
        return rows.write(cursor)


def new_rows(program_id: int) -> ledger.LedgerRows:
    return ledger.LedgerRows(program_id=program_id, expiry=timedelta(days=730), key_prefix="test")


def rows_with_lots(*points: int, **holder: int) -> tuple[ledger.LedgerRows, int]:
    """The rows of a new program's one account (member_id= or partner_id=) that earns `points`, a day apart."""
    rows = new_rows(ProgramFactory().pk)
    account = rows.add_account(**holder)
    for day, earned in enumerate(points, 1):
        rows.earn(account, earned, day * DAY)
    return rows, account


# bench.ledger.LedgerRows --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ledger_rows_spend_from_the_soonest_to_expire_lot_first_and_the_books_balance():
    rows, account = rows_with_lots(100, 50, member_id=MemberFactory().pk)
    rows.spend(account, 120, 3 * DAY)

    written = write(rows)

    assert {k: written[k] for k in ("accounts", "entries", "lots", "allocations")} == {
        "accounts": 1,
        "entries": 3,
        "lots": 2,
        "allocations": 2,
    }
    stored = PointsAccount.objects.get()
    assert (stored.available, stored.pending, stored.lifetime_earned, stored.redeemed) == (30, 0, 150, 120)
    assert list(PointsLot.objects.order_by("pk").values_list("points", "remaining")) == [(100, 0), (50, 30)]
    first, second = PointsLot.objects.order_by("pk")
    assert list(PointsAllocation.objects.order_by("pk").values_list("lot", "points")) == [
        (first.pk, 100),
        (second.pk, 20),
    ]
    assert list(PointsEntry.objects.order_by("pk").values_list("kind", "available_delta")) == [
        ("earn", 100),
        ("earn", 50),
        ("spend", -120),
    ]
    assert ledger_problems() == []


@pytest.mark.django_db
def test_ledger_rows_are_data_the_ledger_service_goes_on_from():
    rows, _ = rows_with_lots(40, 40, partner_id=PartnerFactory().pk)
    write(rows)

    ledger_service.spend(account=PointsAccount.objects.get(), points=50, key="after-the-copy")

    assert PointsAccount.objects.get().available == 30
    assert list(PointsLot.objects.order_by("pk").values_list("remaining", flat=True)) == [0, 30]
    assert ledger_problems() == []


def test_ledger_rows_refuse_what_the_ledger_would_refuse():
    rows = new_rows(1)
    account = rows.add_account(member_id=1)
    rows.earn(account, 10, 5 * DAY)

    with pytest.raises(ValueError, match="cannot spend 11 of 10"):
        rows.spend(account, 11, 6 * DAY)
    with pytest.raises(ValueError, match="time order"):
        rows.earn(account, 10, 4 * DAY)
    with pytest.raises(ValueError, match="adds points"):
        rows.earn(account, 0, 6 * DAY)
    with pytest.raises(ValueError, match="member or to a partner"):
        rows.add_account(member_id=1, partner_id=2)
    assert len(rows) == 1


# bench.statement ----------------------------------------------------------------------------------------------


def own_entries(rows: ledger.LedgerRows) -> list[tuple]:
    texts = list(rows.texts)
    return [
        (rows.entry_delta[i], rows.entry_at[i], texts[rows.entry_text[i]])
        for i in range(len(rows))
        if rows.entry_account[i] == 0
    ]


def test_statement_rows_give_the_member_the_same_entries_in_a_small_and_a_big_database():
    now = 1_800_000_000.0
    alone = statement.ledger_rows(1, 10, [], total_entries=40, target=40, now=now)
    crowded = statement.ledger_rows(1, 10, [11, 12, 13], total_entries=100, target=40, now=now)

    assert len(alone) == 40
    assert len(crowded) == 100
    assert own_entries(crowded) == own_entries(alone)
    assert sorted(crowded.entry_account.tolist().count(n) for n in range(4)) == [20, 20, 20, 40]
    assert {kind for kind, *_ in own_entries(alone) if kind < 0}, "the member spends too"


def test_statement_rows_interleave_the_member_with_the_others_in_time_order():
    crowded = statement.ledger_rows(1, 10, list(range(11, 21)), total_entries=1_000, target=100, now=2e9)
    own = [i for i in range(len(crowded)) if crowded.entry_account[i] == 0]

    assert crowded.entry_at.tolist() == sorted(crowded.entry_at)
    assert own[0] < 50 and own[-1] > 950, "the member's entries lie across the whole table"


@pytest.mark.django_db
def test_statement_rows_written_keep_every_ledger_invariant():
    program = ProgramFactory()
    members = [MemberFactory().pk for _ in range(4)]

    written = write(statement.ledger_rows(program.pk, members[0], members[1:], total_entries=300, target=60))

    assert written["entries"] == PointsEntry.objects.count() == 300
    assert PointsEntry.objects.filter(account__member=members[0]).count() == 60
    assert ledger_problems() == []


# bench.ledger: the raw SQL and the service workers ----------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("pgbench") is None, reason="pgbench is not installed (apt-get install postgresql-client)"
)
@pytest.mark.django_db(transaction=True)
def test_pgbench_script_spends_one_point_and_keeps_the_books_balanced(tmp_path):
    program = ProgramFactory()
    rows = new_rows(program.pk)
    for _ in range(3):
        account = rows.add_account(member_id=MemberFactory().pk)
        rows.earn(account, 5, 1 * DAY)
        rows.earn(account, 5, 2 * DAY)
    first, last = write(rows)["account_ids"]
    script = tmp_path / "spend.sql"
    script.write_text(ledger.pgbench_script())
    db = connection.settings_dict
    # A libpq connection string, not a URL: HOST may be the embedded server's socket directory (a path).
    url = make_conninfo(
        host=db["HOST"] or "localhost", port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )  # fmt: skip
    command = ["pgbench", "--no-vacuum", "-c", "2", "-t", "6", "-f", str(script), "-D", f"lo={first}"]
    command += ["-D", f"hi={last}", "-D", "tag=42", url]

    result = subprocess.run(command, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert ledger.parse_pgbench(result.stdout).transactions == 12
    assert PointsEntry.objects.filter(idempotency_key__startswith="bench-pgbench:42:", kind="spend").count() == 12
    assert sum(PointsAccount.objects.values_list("available", flat=True)) == 30 - 12
    assert ledger_problems() == []


@pytest.mark.django_db
def test_spend_worker_posts_one_entry_per_spend_it_reports():
    program = ProgramFactory()
    rows = new_rows(program.pk)
    for _ in range(2):
        rows.earn(rows.add_account(member_id=MemberFactory().pk), 10_000, 1 * DAY)
    first, last = write(rows)["account_ids"]
    now = time.time()

    answer = ledger.spend_worker(first=first, last=last, start_at=now, end_at=now + 0.3, run="t1", worker=3)

    assert answer["done"] > 0
    assert answer["failed"] == 0
    assert answer["counted"] <= answer["done"]
    checked = ledger.check(program_id=program.pk, service_runs=["t1"], pgbench_tags=[])
    assert checked["service_entries"] == {"t1": answer["done"]}
    assert checked["problems"] == []


PGBENCH_OUTPUT = """\
pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: /tmp/spend.sql
scaling factor: 1
query mode: simple
number of clients: 4
number of threads: 4
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 1674
number of failed transactions: 0 (0.000%)
latency average = 7.131 ms
initial connection time = 19.119 ms
tps = 560.950600 (without initial connection time)
"""


def test_parse_pgbench_reads_transactions_tps_and_latency():
    assert ledger.parse_pgbench(PGBENCH_OUTPUT) == ledger.PgbenchResult(
        transactions=1674, failed=0, tps=560.9506, latency_ms=7.131, seconds=3.0
    )


def test_parse_pgbench_refuses_output_without_tps():
    with pytest.raises(harness.BenchError, match="tps"):
        ledger.parse_pgbench(PGBENCH_OUTPUT.replace("tps = ", "tps: "))


# bench.checkout and the wrk summary ------------------------------------------------------------------------------

WRK_SUMMARY = (
    'BENCH-WRK {"requests":15,"duration_us":4076244,"bytes":8145,"errors":{"connect":0,"read":1,"write":0,'
    '"timeout":2,"status":3},"latency_us":{"p50":25791,"p95":40694,"p99":50001,"max":60000,"mean":24929.3},'
    '"issued":32,"answered":15,"ok":12,"failures":{"403":3},"failure_sample":"403  Forbidden"}'
)


def test_parse_wrk_summary_reads_the_lua_scripts_line():
    load = harness.parse_wrk_summary("Running 4s test @ http://127.0.0.1:1/\n" + WRK_SUMMARY + "\n")

    assert load.requests == 15
    assert load.seconds == pytest.approx(4.076244)
    assert load.requests_per_second == pytest.approx(15 / 4.076244)
    assert (load.p50_ms, load.p95_ms, load.p99_ms, load.max_ms) == (25.791, 40.694, 50.001, 60.0)
    assert load.errors == 6
    assert load.extra["ok"] == 12
    assert load.extra["failures"] == {"403": 3}


def test_parse_wrk_summary_refuses_output_without_the_line():
    with pytest.raises(harness.BenchError, match="no summary line"):
        harness.parse_wrk_summary("Requests/sec: 3.68\n")


@pytest.mark.django_db
def test_checkout_build_signs_members_in_with_tokens_that_pass_csrf_and_verify_finds_the_orders():
    MemberFactory.create_batch(checkout.CLIENTS)

    facts = checkout.build(members=checkout.CLIENTS, free_codes=30, points_min=1_000, points_grant=5_000)

    assert facts["members"] == len(facts["credentials"]) == checkout.CLIENTS
    assert facts["codes_free"] == 30
    assert facts["probe"]["status"] == 302
    assert facts["probe"]["location"].startswith("/rewards/orders/")
    cookie, token = facts["credentials"][1]
    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    client.cookies = SimpleCookie(cookie)
    response = client.post(facts["path"], {"quantity": 1, "checkout_key": "run00001-0-1", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"].startswith("/rewards/orders/")

    ordered = int(response["Location"].split("/")[-2])
    checked = checkout.verify(reward_id=facts["reward_id"], runs=[{"run": "run00001", "ok_ids": [ordered]}])

    assert checked["runs"] == [
        {
            "run": "run00001",
            "orders": 1,
            "answered_ok": 1,
            "ok_but_missing": [],
            "not_answered": 0,
            "not_fulfilled": 0,
            "spend_mismatch": 0,
        }
    ]
    assert RedemptionOrder.objects.count() == 3  # the probe's two and this one
    assert checked["codes_assigned"] == checked["units_ordered"] == 3
    assert checked["line_problems"] == checked["duplicate_codes"] == checked["ledger_problems"] == []
