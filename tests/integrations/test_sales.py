"""The sell-out API (loyalty.api.sales): batches of sale lines through the file import's engine, per-line results,
idempotency per line and per request, the distributor-bound client, and the imports' status."""

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.utils import timezone

from bench.sellout import HEADER, MAPPING
from loyalty.common.events import domain_event
from loyalty.constants import ClaimStatus, ImportStatus
from loyalty.lock_objects import sales_paid_lock
from loyalty.models import PointsAccount, PointsEntry, SaleLine, SalesImport, SalesSource
from loyalty.selectors.ledger import ledger_problems
from loyalty.services.sellout import run as imports
from loyalty.services.sellout.parse import SaleRow
from partners.constants import PartnerKind
from tests.integrations.helpers import problem
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory

BATCHES = "/api/v1/sales/batches/"
IMPORTS = "/api/v1/sales/imports/"
DAY = timezone.localdate() - timedelta(days=10)
ISO = DAY.isoformat()


def import_url(pk: int) -> str:
    return f"{IMPORTS}{pk}/"


class World:
    """A program paying 10 points a unit, a member at a partner, the SKU AQ-1, a sales source, and clients."""

    def __init__(self, machine):
        self.machine = machine
        self.program = ProgramFactory()
        self.rule = RuleFactory(program=self.program, name="Softeners", value=Decimal(10))
        self.member = MemberFactory()
        self.partner = self.member.partner
        self.product = ProductFactory(sku="AQ-1")
        self.source = SalesSource.objects.create(
            program=self.program, name="ERP feed", code="erp", column_mapping=MAPPING
        )
        self.http, self.client = self.api()

    def api(self, **fields):
        """(an APIClient, its ApiClient) of this program, recording under the world's source unless told."""
        fields = {"program": self.program, "sales_source": self.source, **fields}
        return self.machine(**fields)

    def line(self, ext, qty="10", amount="100.00", *, partner=None, member=None, sku="AQ-1", invoice="INV-1",
             day=ISO, returns=None) -> dict:  # fmt: skip
        line = {
            "external_id": ext,
            "partner": self.partner.legal_id if partner is None else partner,
            "member": f"M{self.member.pk}" if member is None else member,
            "sku": sku,
            "quantity": qty,
            "amount": amount,
            "invoice_number": invoice,
            "invoice_date": day,
        }
        if returns is not None:
            line["returns_external_id"] = returns
        return line

    def post(self, lines, *, http=None, **headers):
        return (http or self.http).post(BATCHES, {"lines": lines}, format="json", **headers)

    def upload_and_run(self, lines: list[str]) -> SalesImport:
        """The file import of CSV lines (HEADER's columns), run at once."""
        data = "\n".join([HEADER, *lines]).encode()
        upload = SimpleUploadedFile("sales.csv", data)
        started = imports.import_start(source=self.source, uploaded_file=upload, user=ProgramManagerFactory())
        return imports.import_run(started.pk)

    def csv_line(self, ext, qty="10", amount="100.00", invoice="INV-1") -> str:
        return ";".join([ext, self.partner.legal_id, f"M{self.member.pk}", "AQ-1", qty, amount, invoice, ISO, ""])

    def balance(self, member=None) -> int:
        account = PointsAccount.objects.filter(program=self.program, member=member or self.member).first()
        return account.available if account else 0


@pytest.fixture
def world(db, machine, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    return World(machine)


@pytest.fixture
def finished():
    """The "import.finished" events published during the test: [(program id, data), ...]."""
    seen = []

    def receiver(sender, event_type, program_id, data, **kwargs):
        if event_type == "import.finished":
            seen.append((program_id, data))

    domain_event.connect(receiver, dispatch_uid="test_sales_finished")
    yield seen
    domain_event.disconnect(dispatch_uid="test_sales_finished")


def nothing_changed(world) -> tuple:
    return SalesImport.objects.count(), SaleLine.objects.count(), PointsEntry.objects.count(), world.balance()


# A batch ------------------------------------------------------------------------------------------------------------


def test_a_batch_says_what_became_of_each_line_in_order(world):
    world.post([world.line("OLD-1")])
    other = MemberFactory()
    lines = [
        world.line("L1"),  # 10 × 10 = 100 points
        world.line("L2", sku="NOPE"),
        world.line("L3", qty="0", day=(timezone.localdate() + timedelta(days=5)).isoformat()),
        world.line("old-1"),  # OLD-1 by its matching key: imported before
        world.line("L5", member=f"M{other.pk}"),
        world.line("L1", qty="1"),  # the same external id again in the batch
        world.line("L7", qty="2", amount="20", member=""),  # the partner's account: 20 points
    ]

    response = world.post(lines)

    assert response.status_code == 201, response.content
    body = response.json()
    imported = SalesImport.objects.get(pk=body["import_id"])
    assert response["Location"] == import_url(imported.pk)
    assert body["results"] == [
        {"index": 0, "external_id": "L1", "result": "accepted", "points": 100},
        {"index": 1, "external_id": "L2", "result": "error",
         "errors": [{"field": "sku", "code": "unknown_sku", "reason": "is not a SKU of the catalogue"}]},
        {"index": 2, "external_id": "L3", "result": "error",
         "errors": [{"field": "quantity", "code": "zero", "reason": "is zero"},
                    {"field": "invoice_date", "code": "in_future", "reason": "is in the future"}]},
        {"index": 3, "external_id": "old-1", "result": "duplicate"},
        {"index": 4, "external_id": "L5", "result": "error",
         "errors": [{"field": "member", "code": "member_elsewhere",
                     "reason": "is the member code of someone at another partner"}]},
        {"index": 5, "external_id": "L1", "result": "error",
         "errors": [{"field": "external_id", "code": "repeated",
                     "reason": "appears more than once in this batch: only its first line is imported"}]},
        {"index": 6, "external_id": "L7", "result": "accepted", "points": 20},
    ]  # fmt: skip
    assert {key: body[key] for key in ("import_id", "status", "accepted", "duplicates", "errors", "points")} == {
        "import_id": imported.pk, "status": "done", "accepted": 2, "duplicates": 1, "errors": 4, "points": 120,
    }  # fmt: skip
    assert body["message"] == "7 lines: 2 new, 1 already imported, 4 with errors; 120 points posted."
    assert (imported.source, imported.status, imported.uploaded_by, imported.original_name) == (
        world.source, ImportStatus.DONE, world.client.created_by, f"API batch from {world.client.name}"
    )  # fmt: skip
    assert (imported.total_rows, imported.new_lines, imported.duplicate_lines, imported.error_rows) == (7, 2, 1, 4)
    assert sorted(SaleLine.objects.filter(sales_import=imported).values_list("external_id", "points")) == [
        ("L1", 100), ("L7", 20)
    ]  # fmt: skip
    assert world.balance() == 200  # OLD-1's 100 and L1's 100
    assert PointsAccount.objects.get(program=world.program, partner=world.partner).available == 20
    assert ledger_problems() == []


def test_numbers_may_be_json_numbers_and_amounts_are_rounded_to_cents(world):
    response = world.post([world.line("L1", qty=2.5, amount=99.995)])

    assert response.json()["results"] == [{"index": 0, "external_id": "L1", "result": "accepted", "points": 25}]
    line = SaleLine.objects.get()
    assert (line.quantity, line.amount) == (Decimal("2.5"), Decimal("100.00"))


def test_numbers_in_exponent_notation_are_numbers(world):
    body = world.post([world.line("L1", qty="1E+1", amount="1e2")]).json()

    assert body["results"] == [{"index": 0, "external_id": "L1", "result": "accepted", "points": 100}]
    line = SaleLine.objects.get()
    assert (line.quantity, line.amount) == (10, 100)


def test_values_out_of_range_are_refused_line_by_line_with_the_file_imports_reasons(world):
    lines = [
        world.line("X" * 81),
        world.line("L2", qty="1.2345"),
        world.line("L3", qty="1e12"),
        world.line("L4", amount="1e13"),
        world.line("L5", day="1999-12-31"),
        world.line("L6", invoice="I" * 61),
        world.line("L7", returns="L1"),
    ]

    body = world.post(lines).json()

    assert [(r["index"], [(e["field"], e["code"]) for e in r["errors"]]) for r in body["results"]] == [
        (0, [("external_id", "too_long")]),
        (1, [("quantity", "too_many_decimals")]),
        (2, [("quantity", "too_large")]),
        (3, [("amount", "too_large")]),
        (4, [("invoice_date", "too_old")]),
        (5, [("invoice_number", "too_long")]),
        (6, [("returns_external_id", "not_a_return")]),
    ]
    assert (SaleLine.objects.count(), world.balance()) == (0, 0)


def test_the_same_batch_twice_is_all_duplicates_the_second_time_and_pays_once(world):
    lines = [world.line("L1"), world.line("L2", qty="3")]
    first = world.post(lines).json()

    second = world.post(lines).json()

    assert [r["result"] for r in first["results"]] == ["accepted", "accepted"]
    assert [r["result"] for r in second["results"]] == ["duplicate", "duplicate"]
    assert (second["accepted"], second["duplicates"], second["points"]) == (0, 2, 0)
    assert second["import_id"] != first["import_id"]
    assert world.balance() == 130
    assert SaleLine.objects.count() == 2
    assert ledger_problems() == []


def test_a_batch_after_a_file_of_the_same_lines_posts_nothing_and_a_file_after_a_batch_neither(world):
    filed = world.upload_and_run([world.csv_line("F1"), world.csv_line("F2", qty="2")])
    assert (filed.status, filed.new_lines) == (ImportStatus.DONE, 2)

    body = world.post([world.line("F1"), world.line("F2", qty="2"), world.line("A3", qty="1")]).json()
    again = world.upload_and_run([world.csv_line("F1"), world.csv_line("A3", qty="1")])

    assert [r["result"] for r in body["results"]] == ["duplicate", "duplicate", "accepted"]
    assert (again.new_lines, again.duplicate_lines, again.points_posted) == (0, 2, 0)
    assert world.balance() == 130
    assert ledger_problems() == []


def test_a_return_takes_back_what_its_line_paid(world):
    world.post([world.line("L1", qty="4", amount="400.00")])

    body = world.post([world.line("R1", qty="-1", amount="-100.00", returns="L1")]).json()

    assert body["results"] == [{"index": 0, "external_id": "R1", "result": "accepted", "points": -10}]
    returned = SaleLine.objects.get(external_id="R1")
    assert returned.returns_line == SaleLine.objects.get(external_id="L1")
    assert world.balance() == 30
    refused = world.post([world.line("R2", qty="-9", amount="-900.00", returns="L1")]).json()
    assert refused["results"][0]["errors"] == [
        {"field": "quantity", "code": "return_too_much",
         "reason": "returns more than is left to return of the original line (3 of it)"}
    ]  # fmt: skip
    assert world.balance() == 30
    assert ledger_problems() == []


def test_a_line_confirms_the_partners_waiting_claim_of_its_invoice_and_the_sale_pays_once(world):
    from loyalty.services import claims

    waiting = claims.claim_submit(
        member=world.member,
        program=world.program,
        invoice_number="INV-88",
        invoice_date=DAY,
        document=SimpleUploadedFile("invoice.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"),
        lines=[(world.product, Decimal(10), Decimal("1000.00"))],
        colleagues=[],
    )
    assert waiting.status == ClaimStatus.SUBMITTED

    body = world.post([world.line("L8", invoice="INV-88")]).json()

    waiting.refresh_from_db()
    assert waiting.status == ClaimStatus.APPROVED
    assert body["results"] == [{"index": 0, "external_id": "L8", "result": "accepted", "points": 0}]  # the claim paid
    assert world.balance() == 100
    assert ledger_problems() == []


def test_a_client_bound_to_a_distributor_reports_only_its_own_and_its_dealers_lines(world):
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    dealer = PartnerFactory(parent=distributor)
    world.partner.parent = distributor
    world.partner.save()
    stranger = PartnerFactory()
    http, _ = world.api(distributor=distributor)

    body = world.post(
        [
            world.line("L1"),
            world.line("L2", partner=dealer.legal_id, member=""),
            world.line("L3", partner=distributor.legal_id, member=""),
            world.line("L4", partner=stranger.legal_id, member=""),
        ],
        http=http,
    ).json()

    assert [r["result"] for r in body["results"]] == ["accepted", "accepted", "accepted", "error"]
    assert body["results"][3]["errors"] == [
        {"field": "partner", "code": "partner_not_allowed",
         "reason": "is neither the distributor this client reports for nor one of its dealers"}
    ]  # fmt: skip
    assert not SaleLine.objects.filter(partner=stranger).exists()
    assert not PointsAccount.objects.filter(partner=stranger).exists()


def test_an_unbound_client_reports_any_partners_lines(world):
    stranger = PartnerFactory()

    body = world.post([world.line("L1", partner=stranger.legal_id, member="")]).json()

    assert body["results"][0]["result"] == "accepted"


# Refused requests ---------------------------------------------------------------------------------------------------


def test_a_thousand_and_one_lines_are_400_on_lines_and_change_nothing(world):
    before = nothing_changed(world)

    body = problem(world.post([world.line(f"L{n}") for n in range(1001)]), 400, "invalid")

    assert body["errors"] == [
        {"field": "lines", "code": "max_length", "reason": "Ensure this field has no more than 1000 elements."}
    ]
    assert nothing_changed(world) == before


def test_a_thousand_lines_are_taken(world):
    body = world.post([world.line(f"L{n}", qty="1") for n in range(1000)]).json()

    assert (body["accepted"], body["points"]) == (1000, 10_000)


@pytest.mark.parametrize(
    "payload, field, code",
    [
        ({"lines": []}, "lines", "empty"),
        ({}, "lines", "required"),
        ({"lines": "L1"}, "lines", "not_a_list"),
        (
            {
                "lines": [
                    {"external_id": "L0", "partner": "P", "sku": "S", "quantity": 1, "amount": 1, "invoice_date": ISO},
                    {"external_id": "L1"},
                ]
            },
            "lines.1.partner",
            "required",
        ),
        ("line", "non_field_errors", "invalid"),
    ],
)
def test_no_lines_or_a_malformed_body_is_400(world, payload, field, code):
    before = nothing_changed(world)

    body = problem(world.http.post(BATCHES, payload, format="json"), 400, "invalid")

    assert (field if field != "non_field_errors" else "", code) in [(e["field"], e["code"]) for e in body["errors"]]
    assert nothing_changed(world) == before


@pytest.mark.parametrize(
    "change, field, code",
    [
        ({"quantity": "ten"}, "quantity", "invalid"),
        ({"quantity": True}, "quantity", "invalid"),
        ({"quantity": "NaN"}, "quantity", "invalid"),
        ({"amount": None}, "amount", "null"),
        ({"invoice_date": "30.11.2026"}, "invoice_date", "invalid"),
        ({"invoice_date": "2026-02-30"}, "invoice_date", "invalid"),
        ({"sku": ["AQ-1"]}, "sku", "invalid"),
        ({"external_id": ""}, "external_id", "blank"),
        ({"colour": "blue"}, "colour", "unknown_field"),
    ],
)
def test_wrong_types_unknown_and_blank_fields_are_400_with_the_line_and_field_and_change_nothing(
    world, change, field, code
):
    before = nothing_changed(world)

    body = problem(world.post([world.line("L0"), {**world.line("L1"), **change}]), 400, "invalid")

    assert [(e["field"], e["code"]) for e in body["errors"]] == [(f"lines.1.{field}", code)]
    assert nothing_changed(world) == before


def test_text_no_database_can_store_is_400(world):
    good, bad = json.dumps(world.line("L0")), json.dumps(world.line("L1")).replace('"AQ-1"', '"AQ-\\ud800"')

    response = world.http.post(BATCHES, data=f'{{"lines": [{good}, {bad}]}}', content_type="application/json")

    body = problem(response, 400, "invalid")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("lines.1.sku", "invalid")]
    assert SalesImport.objects.count() == 0


def test_malformed_json_is_400(world):
    response = world.http.post(BATCHES, data='{"lines": [', content_type="application/json")

    problem(response, 400, "malformed")
    assert SalesImport.objects.count() == 0


def test_a_client_without_a_sales_source_is_refused_with_no_sales_source(world):
    http, _ = world.api(sales_source=None)
    elsewhere = SalesSource.objects.create(program=ProgramFactory(), name="Other", code="other")
    http_elsewhere, _ = world.api(sales_source=elsewhere)

    body = problem(world.post([world.line("L1")], http=http), 422, "no_sales_source")
    problem(world.post([world.line("L1")], http=http_elsewhere), 422, "no_sales_source")

    assert "no sales source" in body["detail"]
    assert (SalesImport.objects.count(), SaleLine.objects.count()) == (0, 0)


@pytest.mark.parametrize("scopes", [[], ["balances:read", "events:write"]])
def test_a_client_without_sales_write_is_refused_and_changes_nothing(world, scopes):
    http, _ = world.api(scopes=scopes)

    problem(world.post([world.line("L1")], http=http), 403, "missing_scope")
    problem(http.get(IMPORTS), 403, "missing_scope")

    assert SalesImport.objects.count() == 0


@pytest.mark.parametrize("factory", [MemberFactory, OwnerFactory])
def test_people_may_not_report_sales_or_read_imports(world, person_api, factory):
    member = factory(partner=world.partner)
    http = person_api(member.user)
    imported = world.post([world.line("L1")]).json()["import_id"]

    problem(world.post([world.line("L2")], http=http), 403, "forbidden")
    problem(http.get(IMPORTS), 403, "forbidden")
    problem(http.get(import_url(imported)), 403, "forbidden")
    assert SalesImport.objects.count() == 1


def test_the_same_idempotency_key_replays_the_first_answer_and_imports_once(world):
    lines = [world.line("L1")]
    first = world.post(lines, HTTP_IDEMPOTENCY_KEY="batch-0001")

    again = world.post(lines, HTTP_IDEMPOTENCY_KEY="batch-0001")
    other_body = world.post([world.line("L2")], HTTP_IDEMPOTENCY_KEY="batch-0001")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    problem(other_body, 422, "idempotency_key_reused")
    assert SalesImport.objects.count() == 1
    assert world.balance() == 100


def test_an_unexpected_failure_is_503_posts_nothing_and_leaves_a_failed_import(world, monkeypatch, finished):
    def broken(self, batch):
        raise RuntimeError("database went away")

    monkeypatch.setattr(imports._Run, "_write", broken)

    body = problem(world.post([world.line("L1")]), 503, "import_failed")

    imported = SalesImport.objects.get()
    assert imported.status == ImportStatus.FAILED
    assert body["detail"] == imported.message
    assert "Nothing of it was posted" in imported.message
    assert (SaleLine.objects.count(), world.balance()) == (0, 0)
    assert [data["status"] for _, data in finished] == ["failed"]


@pytest.mark.django_db(transaction=True)
def test_a_batch_waits_for_another_import_of_the_program_at_most_a_while_then_is_503_busy(machine, monkeypatch):
    world = World(machine)
    monkeypatch.setattr(imports, "BATCH_LOCK_WAIT_MS", 100)
    holding, release = threading.Event(), threading.Event()

    def another_import():
        try:
            with transaction.atomic():
                sales_paid_lock(world.program.pk, exclusive=True)
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    other = threading.Thread(target=another_import)
    other.start()
    try:
        assert holding.wait(30)
        response = world.post([world.line("L1")])
    finally:
        release.set()
        other.join(30)

    problem(response, 503, "import_busy")
    assert response["Retry-After"] == "5"
    assert SalesImport.objects.count() == 0
    assert world.post([world.line("L1")]).status_code == 201  # once the other import has finished


# The import's status ------------------------------------------------------------------------------------------------


def test_an_import_shows_its_status_counts_and_first_errors(world):
    imported = world.post([world.line("L1"), world.line("L2", sku="NOPE")]).json()["import_id"]

    response = world.http.get(import_url(imported))

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("id", "status", "lines", "processed_lines", "percent_done", "new_lines",
                                       "duplicate_lines", "error_rows", "points")} == {
        "id": imported, "status": "done", "lines": 2, "processed_lines": 2, "percent_done": 100, "new_lines": 1,
        "duplicate_lines": 0, "error_rows": 1, "points": 100,
    }  # fmt: skip
    assert body["errors"] == [
        {"line": 1, "field": "sku", "code": "unknown_sku", "value": "NOPE", "reason": "is not a SKU of the catalogue"}
    ]
    assert body["message"] == "2 lines: 1 new, 0 already imported, 1 with errors; 100 points posted."
    assert body["finished_at"] is not None


def test_a_file_import_of_the_source_shows_too_with_its_line_numbers_and_column_headings(world):
    filed = world.upload_and_run([world.csv_line("F1"), world.csv_line("F2", qty="x")])

    body = world.http.get(import_url(filed.pk)).json()

    assert (body["name"], body["new_lines"]) == ("sales.csv", 1)
    assert body["errors"] == [
        {"line": 3, "field": "Qty", "code": "invalid_number", "value": "x", "reason": "is not a number"}
    ]


def test_another_sources_import_is_404_and_not_listed(world):
    mine = world.post([world.line("L1")]).json()["import_id"]
    other_source = SalesSource.objects.create(program=world.program, name="Distributor", code="dist")
    other_http, _ = world.api(sales_source=other_source)
    theirs = world.post([world.line("D1")], http=other_http).json()["import_id"]
    no_source_http, _ = world.api(sales_source=None)

    problem(world.http.get(import_url(theirs)), 404, "not_found")
    problem(other_http.get(import_url(mine)), 404, "not_found")
    problem(no_source_http.get(import_url(mine)), 404, "not_found")
    problem(world.http.get(import_url(999_999)), 404, "not_found")
    assert [row["id"] for row in world.http.get(IMPORTS).json()["results"]] == [mine]
    assert [row["id"] for row in other_http.get(IMPORTS).json()["results"]] == [theirs]
    assert no_source_http.get(IMPORTS).json()["results"] == []


def test_the_list_is_newest_first_in_pages(world):
    made = [world.post([world.line(f"L{n}")]).json()["import_id"] for n in range(3)]

    first = world.http.get(IMPORTS, {"limit": 2}).json()
    second = world.http.get(first["next"]).json()

    assert [row["id"] for row in first["results"] + second["results"]] == made[::-1]
    assert first["results"][0]["name"] == f"API batch from {world.client.name}"
    assert "errors" not in first["results"][0]


@pytest.mark.parametrize("count", [3, 12])
def test_the_list_costs_the_same_queries_for_3_or_12_imports(world, django_assert_num_queries, count):
    user = ProgramManagerFactory()
    SalesImport.objects.bulk_create(
        SalesImport(source=world.source, original_name=f"f{n}.csv", uploaded_by=user) for n in range(count)
    )
    world.http.get(IMPORTS)  # the key's first use is recorded (then at most once a minute)

    with django_assert_num_queries(3):  # the key with its client, the client's sales source, the page
        response = world.http.get(IMPORTS)

    assert len(response.json()["results"]) == count


# The domain event ---------------------------------------------------------------------------------------------------


def test_every_import_publishes_import_finished_once_in_its_transaction(world, finished):
    body = world.post([world.line("L1"), world.line("L2", sku="NOPE")]).json()
    filed = world.upload_and_run([world.csv_line("F1"), world.csv_line("L1")])
    empty = world.upload_and_run([])

    assert finished == [
        (world.program.pk, {"import_id": body["import_id"], "source_id": world.source.pk, "status": "done",
                            "lines": 2, "new_lines": 1, "duplicate_lines": 0, "error_rows": 1, "points": 100}),
        (world.program.pk, {"import_id": filed.pk, "source_id": world.source.pk, "status": "done",
                            "lines": 2, "new_lines": 1, "duplicate_lines": 1, "error_rows": 0, "points": 100}),
        (world.program.pk, {"import_id": empty.pk, "source_id": world.source.pk, "status": "failed",
                            "lines": 0, "new_lines": 0, "duplicate_lines": 0, "error_rows": 0, "points": 0}),
    ]  # fmt: skip
    imports.import_run(filed.pk)  # a finished import run again: nothing more
    assert len(finished) == 3


@pytest.mark.django_db(transaction=True)
def test_a_file_import_run_by_its_writer_thread_publishes_import_finished_once_with_its_lines(machine, finished):
    world = World(machine)  # no test transaction: the import's batches are written by a second connection

    filed = world.upload_and_run([world.csv_line("F1"), world.csv_line("F2")])

    assert (filed.status, filed.new_lines) == (ImportStatus.DONE, 2)
    assert [(data["import_id"], data["status"], data["points"]) for _, data in finished] == [(filed.pk, "done", 200)]


def test_import_finished_is_not_published_when_the_import_rolls_back(world, finished):
    with pytest.raises(RuntimeError), transaction.atomic():
        imports.import_lines(
            source=world.source,
            rows=[SaleRow("L1", world.partner.legal_id, "", "AQ-1", Decimal(1), Decimal(1), "", DAY, "")],
            by=world.client.created_by,
        )
        published = len(finished)
        raise RuntimeError("the caller's transaction fails")
    assert published == 1  # published inside the transaction, which the listeners share
    assert SalesImport.objects.count() == 0


# Telling members and evaluating tiers: once for the batches of a minute, not per batch ------------------------------


def test_the_batches_of_a_minute_tell_each_member_once_and_evaluate_the_tiers_once(
    world, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    evaluated = []
    monkeypatch.setattr(imports, "tiers_evaluate_all", lambda *, program: evaluated.append(program.pk))
    with django_capture_on_commit_callbacks() as queued:
        assert world.post([world.line("F-1", qty="2")]).status_code == 201
        assert world.post([world.line("F-2", qty="3", invoice="INV-2")]).status_code == 201

    assert len(queued) == 1  # the first batch schedules the follow-up; the second finds it scheduled
    assert evaluated == [] and not mailoutbox  # nobody told, no tiers evaluated per batch
    assert imports.api_imports_follow_up(world.source.pk) == 2
    assert imports.api_imports_follow_up(world.source.pk) == 0  # done once

    assert evaluated == [world.program.pk]
    assert SalesImport.objects.filter(source=world.source, followed_up_at__isnull=False).count() == 2
    deliveries = world.member.deliveries.filter(kind="points_imported")  # on each of the member's channels
    first, last = SalesImport.objects.filter(source=world.source).order_by("pk").values_list("pk", flat=True)
    assert set(deliveries.values_list("source_key", flat=True)) == {f"sales_import:{first}-{last}"}
    assert all("50" in d.body for d in deliveries)  # one message for both batches: 20 + 30 points
