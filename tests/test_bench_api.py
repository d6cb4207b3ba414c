"""The API benchmark's own pieces at tiny size (no timing is asserted: the figures come from `python -m bench api`):
the file's lines become valid API batches, the senders keep a return after the sale it returns, the data builder's
clients post batches that the lines' external ids catch when sent again, and the wrk scripts send what the API
expects."""

import json
import shutil
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db.models import Sum
from rest_framework.test import APIClient

from bench import api, harness, sellout
from integrations.models import ApiClient
from loyalty.api.sales import SalesBatchView
from loyalty.models import IncentiveRule, PartnerAlias, PartnerTier, PointsEntry, Program, SaleLine, Tier
from loyalty.selectors.ledger import ledger_problems
from loyalty.services.external_events import CUSTOM_EVENT_SOURCE
from tests.partners.factories import MemberFactory, PartnerFactory

HEADER = sellout.HEADER + "\n"
ROWS = (
    "00000001;C0000001;anna@example.com;B-SOF-000;2;1.234,50;INV-0000000;31.12.2025;\n"
    "00000002;DE123;;B-FIL-001;1;12,00;;01.02.2026;\n"
    "00000003;DE123;M7;UNKNOWN-SKU;3;-0,50;INV-0000000;31/12/2026;\n"
    "R00000004;C0000001;anna@example.com;B-SOF-000;-1;-10,00;INV-0000000;02.02.2026;00000001\n"
    "00000005;DE123;;B-FIL-001;0;5,00;INV-0000001;03.02.2026;\n"
)


def test_the_files_amounts_and_dates_are_written_as_json_expects():
    assert api.json_amount("1.234.567,89") == "1234567.89"
    assert api.json_amount("-12,00") == "-12.00"
    assert Decimal(api.json_amount(sellout._comma(Decimal("-98765.4")))) == Decimal("-98765.40")
    assert api.json_date("31.12.2025") == "2025-12-31"
    # The file's bad dates: a date the engine refuses line by line (a malformed one would refuse the whole batch).
    assert api.json_date("31/12/2026") == api.BAD_DATE
    assert api.json_date("") == api.BAD_DATE


def test_a_files_line_becomes_an_api_line_without_empty_optional_fields():
    assert api.api_line(["7", "DE123", "", "B-1", "-1", "-10,00", "", "02.02.2026", "5"]) == {
        "external_id": "7",
        "partner": "DE123",
        "sku": "B-1",
        "quantity": "-1",
        "amount": "-10.00",
        "invoice_date": "2026-02-02",
        "returns_external_id": "5",
    }
    line = api.api_line(["8", "C1", "M7", "B-1", "2", "1,50", "INV-1", "01.02.2026", ""])
    assert (line["member"], line["invoice_number"]) == ("M7", "INV-1")


def test_the_batches_hold_every_line_in_order_and_know_the_batches_their_returns_need(tmp_path):
    path = tmp_path / "sellout.csv"
    path.write_text(HEADER + ROWS)

    batches = api.write_batches(csv_path=str(path), out_path=str(tmp_path / "bodies"), batch_lines=2)

    bodies = (tmp_path / "bodies").read_bytes()
    lines = [json.loads(bodies[b.offset : b.offset + b.length])["lines"] for b in batches]
    assert [b.lines for b in batches] == [2, 2, 1]
    assert [line["external_id"] for batch in lines for line in batch] == [
        "00000001", "00000002", "00000003", "R00000004", "00000005",
    ]  # fmt: skip
    assert [b.needs for b in batches] == [(), (0,), ()]  # the return in batch 1 returns a line of batch 0
    assert lines[1][0] == {
        "external_id": "00000003", "partner": "DE123", "member": "M7", "sku": "UNKNOWN-SKU", "quantity": "3",
        "amount": "-0.50", "invoice_number": "INV-0000000", "invoice_date": api.BAD_DATE,
    }  # fmt: skip
    # Every body is what the API's batch endpoint takes (its lines' own problems are for the engine to find).
    for body in lines:
        data = SalesBatchView.Input(data={"lines": body})
        assert data.is_valid(), data.errors


def test_the_batches_refuse_a_file_of_another_shape(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a;b\n1;2\n")

    with pytest.raises(harness.BenchError):
        api.write_batches(csv_path=str(path), out_path=str(tmp_path / "bodies"))


# A stand-in for the API on loopback: records what it is sent, answers like POST /api/v1/sales/batches/. -----------


class FakeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, busy_once: set[str] = frozenset(), delay: float = 0.0, event_status: int = 201):
        super().__init__((harness.LOOPBACK, 0), FakeHandler)
        self.event_status = event_status
        self.seen: list[dict] = []  # per request: headers, body, when it arrived and was answered
        self.busy_once = set(busy_once)  # Idempotency-Keys answered 503 the first time
        self.delay = delay
        self.lock = threading.Lock()

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.url = f"http://{harness.LOOPBACK}:{self.server_address[1]}"
        return self

    def __exit__(self, *exc_info):
        self.shutdown()
        self.server_close()


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status: int, data: dict, headers: dict = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with self.server.lock:
            self.server.seen.append({"path": self.path, "headers": dict(self.headers)})
        self._answer(200, {"available": 1})

    def do_POST(self):
        arrived = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = self.headers.get("Idempotency-Key", "")
        with self.server.lock:
            busy = key in self.server.busy_once
            self.server.busy_once.discard(key)
        if busy:
            self._answer(503, {"code": "import_busy"}, {"Retry-After": "0"})
            return
        time.sleep(self.server.delay)
        lines = body.get("lines", [])
        with self.server.lock:
            self.server.seen.append(
                {"path": self.path, "headers": dict(self.headers), "body": body, "arrived": arrived,
                 "answered": time.monotonic()}
            )  # fmt: skip
        if self.path == api.BATCHES_PATH:
            results = [{"index": n, "external_id": line["external_id"], "result": "accepted"} for n, line in
                       enumerate(lines)]  # fmt: skip
            self._answer(201, {"accepted": len(lines), "duplicates": 0, "errors": 0, "points": 10 * len(lines),
                               "results": results})  # fmt: skip
        else:
            self._answer(self.server.event_status, {"points": 10})


def test_the_senders_send_each_batch_once_and_a_return_only_after_the_batch_of_its_sale(tmp_path):
    rows = "".join(f"{n:08d};DE1;;B-1;1;1,00;;01.02.2026;\n" for n in range(1, 41))
    rows += "R00000041;DE1;;B-1;-1;-1,00;;01.02.2026;00000039\n"  # batch 4 returns a line of batch 3
    path = tmp_path / "sellout.csv"
    path.write_text(HEADER + rows)
    batches = api.write_batches(csv_path=str(path), out_path=str(tmp_path / "bodies"), batch_lines=10)
    assert [b.needs for b in batches] == [(), (), (), (), (3,)]

    with FakeApi(busy_once={"run-2"}, delay=0.05) as server:
        sent = api.send_batches(
            server.url, keys=["plk_a", "plk_b"], path=str(tmp_path / "bodies"), batches=batches, run_id="run",
            clients=4,
        )  # fmt: skip

    by_key = {request["headers"]["Idempotency-Key"]: request for request in server.seen}
    assert sorted(by_key) == ["run-0", "run-1", "run-2", "run-3", "run-4"]
    assert len(server.seen) == 5  # once each (the 503 is not recorded)
    assert by_key["run-4"]["arrived"] >= by_key["run-3"]["answered"]
    assert {request["headers"]["Authorization"] for request in server.seen} == {"Bearer plk_a", "Bearer plk_b"}
    assert (sent.batches, sent.lines, sent.accepted, sent.points, sent.retries, sent.failed) == (5, 41, 41, 410, 1, [])
    assert sent.seconds > 0 and len(sent.latencies_ms) == 5


def test_a_batch_without_an_answer_is_counted_as_failed(tmp_path):
    path = tmp_path / "sellout.csv"
    path.write_text(HEADER + ROWS)
    batches = api.write_batches(csv_path=str(path), out_path=str(tmp_path / "bodies"), batch_lines=5)

    nobody = f"http://{harness.LOOPBACK}:{harness.free_port()}"  # nothing listens there
    sent = api.send_batches(nobody, keys=["plk_a"], path=str(tmp_path / "bodies"), batches=batches, run_id="r")

    assert (sent.batches, sent.lines, len(sent.failed)) == (1, 0, 1)
    assert sent.failed[0][1] == 0  # no HTTP status: the connection was refused


# The wrk scripts -----------------------------------------------------------------------------------------------------

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


@needs_wrk
def test_the_events_script_posts_custom_events_of_the_members_with_new_external_ids(tmp_path):
    members = tmp_path / "members.txt"
    members.write_text("11\n12\n13\n")

    with FakeApi() as server:
        load = harness.run_wrk_script(
            server.url + api.EVENTS_PATH, script="api_events.lua", seconds=1, threads=2, connections=2,
            script_args=("plk_key", "run7", str(members), api.EVENT_NAME),
        )  # fmt: skip

    posted = [request for request in server.seen if request["path"] == api.EVENTS_PATH]
    assert load.requests > 0 and load.errors == 0
    assert load.extra["ok"] == load.requests and load.extra["failed"] == 0 and load.extra["wanted"] == 201
    assert len(posted) >= load.requests
    ids = [request["body"]["external_id"] for request in posted]
    assert len(set(ids)) == len(ids) and all(i.startswith("run7-") for i in ids)
    assert all(request["headers"]["Idempotency-Key"] == request["body"]["external_id"] for request in posted)
    assert {request["headers"]["Authorization"] for request in posted} == {"Bearer plk_key"}
    assert {request["body"]["member"] for request in posted} == {11, 12, 13}
    assert {(r["body"]["type"], r["body"]["name"], r["body"]["facts"]["quantity"]) for r in posted} == {
        ("custom", api.EVENT_NAME, 1)
    }


@needs_wrk
def test_the_events_script_counts_every_answer_but_201_as_failed(tmp_path):
    members = tmp_path / "members.txt"
    members.write_text("11\n")

    with FakeApi(event_status=200) as server:  # 200: what a dry run answers, not a posted event
        load = harness.run_wrk_script(
            server.url + api.EVENTS_PATH, script="api_events.lua", seconds=1, threads=1, connections=1,
            script_args=("plk_key", "run8", str(members), api.EVENT_NAME),
        )  # fmt: skip

    assert load.requests > 0 and load.extra["ok"] == 0
    assert load.extra["failed"] == load.requests and load.extra["failures"] == {"200": load.requests}
    assert load.extra["failure_sample"].startswith("200 ")


@needs_wrk
def test_the_get_script_sends_the_key(tmp_path):
    with FakeApi() as server:
        load = harness.run_wrk_script(
            server.url + "/api/v1/members/5/balance/", script="api_get.lua", seconds=1, threads=1, connections=1,
            script_args=("plk_key",),
        )  # fmt: skip

    assert load.requests > 0 and load.errors == 0
    assert {request["headers"]["Authorization"] for request in server.seen} == {"Bearer plk_key"}
    assert {request["path"] for request in server.seen} == {"/api/v1/members/5/balance/"}


# The Django side at tiny size ---------------------------------------------------------------------------------------


@pytest.fixture
def channel():
    """Three partners with two active people each (e-mail addresses the file names them by)."""
    for partner in PartnerFactory.create_batch(3):
        MemberFactory.create_batch(2, partner=partner)


@pytest.mark.django_db
def test_each_run_copies_the_sellout_program_for_the_file_and_for_the_api_with_the_same_customer_codes(channel):
    facts = api.build(clients=2, event_members=3)

    original = Program.objects.get(pk=facts["template_program_id"])
    for_file, for_api = Program.objects.get(pk=facts["file_program_id"]), Program.objects.get(pk=facts["program_id"])
    assert original.slug == sellout.PROGRAM_SLUG
    assert for_file.slug.startswith(f"{api.PROGRAM_SLUG}-file-") and for_api.slug.startswith(f"{api.PROGRAM_SLUG}-")
    assert {p.expiry_months for p in (original, for_file, for_api)} == {original.expiry_months}
    assert {p.starts_on for p in (original, for_file, for_api)} == {original.starts_on}

    def rules(of):
        return {
            (r.code, r.formula, r.value, r.cap_points, r.budget_points, r.budget_used,
             tuple(r.product_lines.values_list("pk")), tuple(r.products.values_list("pk")), r.valid_from,
             r.valid_until)
            for r in IncentiveRule.objects.filter(program=of).exclude(code="bench-api-activity")
        }  # fmt: skip

    assert rules(for_file) == rules(for_api) == rules(original) and len(rules(original)) == facts["rules"] == 8
    assert IncentiveRule.objects.get(program=for_api, code="bench-api-activity").custom_event == api.EVENT_NAME
    assert not IncentiveRule.objects.filter(program=for_file, code="bench-api-activity").exists()
    for copy in (for_file, for_api):
        assert list(Tier.objects.filter(program=copy).values_list("rank", "multiplier")) == list(
            Tier.objects.filter(program=original).values_list("rank", "multiplier")
        )
        assert set(PartnerTier.objects.filter(program=copy).values_list("partner", "tier__rank")) == set(
            PartnerTier.objects.filter(program=original).values_list("partner", "tier__rank")
        )
    aliases = set(PartnerAlias.objects.filter(source=facts["source_id"]).values_list("code", "partner"))
    assert aliases == set(PartnerAlias.objects.filter(source=facts["file_source_id"]).values_list("code", "partner"))
    assert len(aliases) == facts["aliases"] == 1  # bench.sellout codes one partner in three: the first of three
    clients = ApiClient.objects.filter(sales_source=facts["source_id"], program=for_api)
    assert clients.count() == len(facts["keys"]) == 2 and len(facts["event_members"]) == 3
    assert all(c.requests_per_minute == api.REQUESTS_PER_MINUTE for c in clients)
    # The next run makes new copies from the same template (bench.sellout names its source by the second).
    time.sleep(1.01 - time.time() % 1)
    again = api.build(clients=1, event_members=3)
    assert again["template_program_id"] == facts["template_program_id"]
    assert {again["program_id"], again["file_program_id"]}.isdisjoint({facts["program_id"], facts["file_program_id"]})


@pytest.mark.django_db
def test_a_batch_sent_twice_posts_once_and_the_snapshot_says_so(channel, tmp_path):
    facts = api.build(clients=1, event_members=3)
    # 2,000 lines: one bad line in ten (bench.sellout spreads its 200 bad lines over the file); the first 200 sent.
    sellout.write_file(path=str(tmp_path / "sellout.csv"), source_id=facts["file_source_id"], lines=2000)
    batch = api.write_batches(csv_path=str(tmp_path / "sellout.csv"), out_path=str(tmp_path / "bodies"),
                              batch_lines=200)[0]  # fmt: skip
    body = (tmp_path / "bodies").read_bytes()[batch.offset : batch.offset + batch.length]
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {facts['keys'][0]}")
    ids = {"source_id": facts["source_id"], "program_id": facts["program_id"]}

    first = http.post(api.BATCHES_PATH, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="a-0")
    after_first = api.snapshot(**ids)
    again = http.post(api.BATCHES_PATH, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="b-0")
    after_again = api.snapshot(**ids)

    assert first.status_code == again.status_code == 201
    first, again = first.json(), again.json()
    assert first["accepted"] > 0 and first["accepted"] + first["errors"] == 200
    assert (again["accepted"], again["duplicates"], again["errors"]) == (0, first["accepted"], first["errors"])
    posted = ("sale_lines", "new", "points", "ledger_entries", "ledger_available", "ledger_pending")
    assert {k: after_first[k] for k in posted} == {k: after_again[k] for k in posted}
    assert (after_again["imports"], after_again["duplicates"]) == (2, first["accepted"])
    assert after_first["sale_lines"] == SaleLine.objects.filter(source=facts["source_id"]).count() > 0
    assert (
        after_first["ledger_available"]
        == PointsEntry.objects.filter(account__program=facts["program_id"]).aggregate(total=Sum("available_delta"))[
            "total"
        ]
    )
    assert ledger_problems() == []
    assert api.balance_member(program_id=facts["program_id"]) in facts["event_members"] + list(
        SaleLine.objects.filter(source=facts["source_id"]).values_list("member", flat=True)
    )
    # The worker's follow-up covers both batches (the one each batch schedules after commit never runs in a test).
    assert api.follow_up(source_id=facts["source_id"])["imports"] == 2
    assert api.follow_up(source_id=facts["source_id"])["imports"] == 0


@pytest.mark.django_db
@pytest.mark.urls("bench.urls")
def test_the_profiles_of_a_batch_an_event_and_a_balance_read_measure_what_they_send(channel, tmp_path):
    facts = api.build(clients=1, event_members=3)
    sellout.write_file(path=str(tmp_path / "sellout.csv"), source_id=facts["file_source_id"], lines=2000)
    batch = api.write_batches(csv_path=str(tmp_path / "sellout.csv"), out_path=str(tmp_path / "bodies"),
                              batch_lines=50)[0]  # fmt: skip
    lines_before = SaleLine.objects.filter(source=facts["source_id"]).count()

    profile = api.profile_batch(
        key=facts["keys"][0], body_path=str(tmp_path / "bodies"), offset=batch.offset, length=batch.length,
        prefix="p1-",
    )  # fmt: skip
    member = api.balance_member(program_id=facts["program_id"])
    requests = api.profile_requests(key=facts["keys"][0], member=member, event_members=facts["event_members"], rounds=2)

    # Three batches of new lines: warm-up, timed, profiled.
    assert SaleLine.objects.filter(source=facts["source_id"]).count() == lines_before + 3 * profile["accepted"]
    assert profile["lines"] == 50 and profile["accepted"] + profile["errors"] == 50
    assert profile["queries"] > 0 and 0 < profile["db_seconds"] < profile["seconds"]
    steps = [step["step"] for step in profile["steps"]]
    assert steps[0] == api.PROFILE_STEPS[0][0] and "import_lines: the engine, all of it" in steps
    assert profile["top"] and all(row["own_seconds"] >= 0 for row in profile["top"])
    assert set(requests) == {"bare view", "event", "balance"}
    assert requests["bare view"]["queries"] == 0 and requests["balance"]["queries"] > 0
    # Four events were posted (two to warm up, two timed), each paying the benchmark's custom event rule.
    events = PointsEntry.objects.filter(source_type=CUSTOM_EVENT_SOURCE, account__program=facts["program_id"])
    assert events.values("source_id").distinct().count() == 4
    assert api.events_posted(program_id=facts["program_id"], run_id="none") == {"entries": 0, "events": 0}
