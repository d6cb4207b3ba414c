"""The back office's sell-out imports: sources with their column mapping, partner aliases (list and CSV upload),
the upload page with its mapping step, the progress page polled with htmx, the errors download, permissions and
pinned query counts."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from bench.sellout import MAPPING as SELLOUT_MAPPING
from loyalty.common.storage import private_storage
from loyalty.constants import ImportStatus
from loyalty.models import PartnerAlias, PointsAccount, SaleLine, SalesImport, SalesSource
from loyalty.services.sellout import mapping as sellout_mapping
from tests.helpers import messages_of
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]

SOURCES = reverse("admin:loyalty_salessource_changelist")
IMPORTS = reverse("admin:loyalty_salesimport_changelist")
UPLOAD = reverse("admin:loyalty_salesimport_add")
ALIASES = reverse("admin:loyalty_partneralias_changelist")
# The most queries each page may make; the lists' bounds hold at 3 rows and at 30.
CHANGELIST_QUERIES = {"salessource": 7, "salesimport": 7, "partneralias": 7}
PROGRESS_QUERIES = 4
UPLOAD_PAGE_QUERIES = 5

DAY = (timezone.localdate() - timedelta(days=3)).isoformat()
# The sell-out benchmark's file layout, without its returns column.
MAPPING = {field: heading for field, heading in SELLOUT_MAPPING.items() if field != "returns_external_id"}
HEADER = ";".join(MAPPING.values())
# A distributor's own headings, which suggest_mapping does not all recognise.
ODD_HEADER = "Pos;Kunde;Verkaeufer;Artikel;Menge;Betrag;Rechnung;Datum"


class World:
    def __init__(self):
        self.program = ProgramFactory(name="Aqua Rewards")
        RuleFactory(program=self.program, value=Decimal(10))
        self.member = MemberFactory(partner__legal_id="VAT-1", partner__name="Aqua Dealer")
        self.product = ProductFactory(sku="AQ-1")
        self.source = SalesSource.objects.create(
            program=self.program, name="Distributor feed", code="dist", column_mapping=MAPPING
        )

    def line(self, ext, *, qty="2", sku="AQ-1", partner="VAT-1") -> str:
        return ";".join([ext, partner, f"M{self.member.pk}", sku, qty, "100.00", "INV-1", DAY])

    def file(self, lines, *, header=HEADER, name="week-47.csv") -> SimpleUploadedFile:
        return SimpleUploadedFile(name, "\n".join([header, *lines]).encode())


@pytest.fixture
def world():
    return World()


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def progress_url(sales_import) -> str:
    return reverse("admin:loyalty_salesimport_change", args=[sales_import.pk])


def upload(client, world, lines, capture, **kwargs):
    with capture(execute=True):
        return client.post(UPLOAD, {"source": world.source.pk, "file": world.file(lines, **kwargs)})


# Access -----------------------------------------------------------------------------------------------------------


def test_partner_staff_are_sent_to_the_admin_login(partner_staff_client, world):
    for url in (SOURCES, IMPORTS, UPLOAD, ALIASES):
        response = partner_staff_client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_an_account_manager_marked_as_staff_by_mistake_is_refused(am_staff_client, world):
    sales_import = SalesImport.objects.create(
        source=world.source, file="imports/x.csv", original_name="x.csv", uploaded_by=ProgramManagerFactory()
    )
    urls = [
        SOURCES,
        IMPORTS,
        UPLOAD,
        ALIASES,
        progress_url(sales_import),
        reverse("admin:loyalty_salesimport_errors", args=[sales_import.pk]),
        reverse("admin:loyalty_salessource_upload_aliases", args=[world.source.pk]),
    ]
    for url in urls:
        assert am_staff_client.get(url).status_code == 403, url
    response = am_staff_client.post(UPLOAD, {"source": world.source.pk, "file": world.file([world.line("L1")])})
    assert response.status_code == 403
    assert SalesImport.objects.count() == 1


# Sources ----------------------------------------------------------------------------------------------------------


def test_the_source_list_shows_the_mapping_state_aliases_and_last_file(pm_client, world):
    SalesSource.objects.create(program=world.program, name="ERP", code="erp")
    SalesSource.objects.create(program=world.program, name="Half", code="half", column_mapping={"sku": "SKU"})
    PartnerAlias.objects.create(source=world.source, code="C-1", partner=world.member.partner)
    body = text(pm_client.get(SOURCES))
    assert "Complete" in body
    assert "Not set yet" in body
    assert "Missing: External line id, Partner (legal id or the source&#x27;s customer code)" in body
    assert f'<a href="{ALIASES}?source__id__exact={world.source.pk}">1</a>' in body


@pytest.mark.parametrize("model", ["salessource", "salesimport", "partneralias"])
@pytest.mark.parametrize("rows", [3, 30])
def test_the_lists_cost_the_same_few_queries_at_any_size(pm_client, world, django_assert_max_num_queries, model, rows):
    for index in range(rows):
        source = SalesSource.objects.create(program=world.program, name=f"Feed {index}", code=f"feed-{index}")
        PartnerAlias.objects.create(source=source, code=f"C-{index}", partner=PartnerFactory())
        SalesImport.objects.create(
            source=source, file="imports/x.csv", original_name=f"{index}.csv", uploaded_by=ProgramManagerFactory()
        )
    with django_assert_max_num_queries(CHANGELIST_QUERIES[model]):
        response = pm_client.get(reverse(f"admin:loyalty_{model}_changelist"))
    assert response.status_code == 200


def source_data(program, **fields) -> dict:
    data = {
        "program": program.pk,
        "name": "ERP",
        "code": "erp",
        "distributor": "",
        "delimiter": ";",
        "date_format": "%d.%m.%Y",
        **{f"map_{name}": "" for name in sellout_mapping.OUR_FIELDS},
        "_save": "Save",
    }
    data.update(fields)
    return data


def test_a_new_source_may_leave_its_mapping_for_the_first_upload(pm_client, world):
    response = pm_client.post(reverse("admin:loyalty_salessource_add"), source_data(world.program))
    assert response.status_code == 302
    source = SalesSource.objects.get(code="erp")
    assert (source.column_mapping, source.delimiter, source.date_format) == ({}, ";", "%d.%m.%Y")


def test_the_mapping_is_edited_on_the_source_and_saved_through_the_service(pm_client, world):
    fields = {f"map_{name}": column for name, column in MAPPING.items()}
    fields["map_amount"] = "Net amount"
    response = pm_client.post(reverse("admin:loyalty_salessource_add"), source_data(world.program, **fields))
    assert response.status_code == 302
    assert SalesSource.objects.get(code="erp").column_mapping == {**MAPPING, "amount": "Net amount"}


def test_an_incomplete_or_doubled_mapping_is_refused_by_field_and_nothing_is_saved(pm_client, world):
    fields = {"map_external_id": "Line", "map_sku": "Line"}
    response = pm_client.post(reverse("admin:loyalty_salessource_add"), source_data(world.program, **fields))
    errors = response.context["adminform"].form.errors
    assert "Choose the column for “Amount”: it is required." in errors["map_amount"]
    assert any("is chosen for both “External line id” and “SKU”" in e for e in errors["map_sku"])
    assert not SalesSource.objects.filter(code="erp").exists()


def test_the_source_page_offers_the_headings_of_the_last_uploaded_file(pm_client, world):
    sales_import = SalesImport(source=world.source, original_name="week-46.csv", uploaded_by=ProgramManagerFactory())
    sales_import.file.save("week-46.csv", ContentFile(f"{HEADER};Comment\nL1;x\n".encode()), save=False)
    sales_import.save()
    response = pm_client.get(reverse("admin:loyalty_salessource_change", args=[world.source.pk]))
    body = text(response)
    assert '<option value="Comment"></option>' in body
    assert 'list="source-headings"' in body
    assert 'name="map_sku" value="SKU"' in body
    assert "come from week-46.csv" in body
    assert 'name="code"' not in body  # the code never changes


# Aliases ----------------------------------------------------------------------------------------------------------


def alias_upload(client, source, content: str):
    url = reverse("admin:loyalty_salessource_upload_aliases", args=[source.pk])
    return client.post(url, {"file": SimpleUploadedFile("aliases.csv", content.encode())})


def test_aliases_are_added_and_moved_from_a_csv(pm_client, world):
    other = PartnerFactory(legal_id="VAT-2")
    PartnerAlias.objects.create(source=world.source, code="C-2", partner=world.member.partner)
    response = alias_upload(pm_client, world.source, "alias,legal_id\nC-1,VAT-1\nC-2,vat-2\n\nC-3,VAT-1\n")
    assert response.status_code == 302
    assert messages_of(response) == ["Distributor feed: 2 aliases added, 1 moved to another partner, 0 already there."]
    aliases = dict(PartnerAlias.objects.values_list("code", "partner__legal_id"))
    assert aliases == {"C-1": "VAT-1", "C-2": "VAT-2", "C-3": "VAT-1"}
    assert other.pk == PartnerAlias.objects.get(code="C-2").partner_id


def test_an_alias_file_with_a_wrong_line_saves_nothing_and_lists_every_wrong_line(pm_client, world):
    response = alias_upload(pm_client, world.source, "C-1;VAT-1\nC-2;VAT-404\nC-3\nC-1;VAT-9\n")
    body = text(response)
    assert "Line 2: no partner has the legal id “VAT-404”." in body
    assert "Line 3: needs an alias and a legal id." in body
    assert "Line 4: no partner has the legal id “VAT-9”." in body
    assert "Nothing was saved: 3 lines" in body
    assert not PartnerAlias.objects.exists()


def test_a_binary_alias_file_is_refused(pm_client, world):
    url = reverse("admin:loyalty_salessource_upload_aliases", args=[world.source.pk])
    response = pm_client.post(url, {"file": SimpleUploadedFile("a.csv", b"\x00\x01\x02PK")})
    assert "not a text (CSV) file" in text(response)
    assert not PartnerAlias.objects.exists()


def test_aliases_are_listed_and_searched(pm_client, world):
    PartnerAlias.objects.create(source=world.source, code="C-1", partner=world.member.partner)
    PartnerAlias.objects.create(source=world.source, code="C-2", partner=PartnerFactory(name="Other Ltd"))
    response = pm_client.get(ALIASES, {"q": "aqua dealer"})
    assert [alias.code for alias in response.context["cl"].result_list] == ["C-1"]
    assert "VAT-1" in text(response)


# Uploading --------------------------------------------------------------------------------------------------------


def test_the_upload_page_asks_for_the_source_and_the_file(pm_client, world, django_assert_max_num_queries):
    with django_assert_max_num_queries(UPLOAD_PAGE_QUERIES):
        response = pm_client.get(UPLOAD, {"source": world.source.pk})
    body = text(response)
    assert f'<option value="{world.source.pk}" selected>Distributor feed</option>' in body
    assert 'type="file" name="file"' in body
    assert "Upload a sell-out file" in text(pm_client.get(IMPORTS))


def test_without_a_source_the_upload_page_says_what_to_do_first(pm_client):
    assert "There is no sales source yet" in text(pm_client.get(UPLOAD))


def test_a_file_matching_the_saved_mapping_is_imported_at_once(pm_client, world, django_capture_on_commit_callbacks):
    response = upload(
        pm_client, world, [world.line("L1"), world.line("L2", sku="NOPE")], django_capture_on_commit_callbacks
    )
    sales_import = SalesImport.objects.get()
    assert response["Location"] == progress_url(sales_import)
    sales_import.refresh_from_db()
    assert (sales_import.status, sales_import.new_lines, sales_import.error_rows) == (ImportStatus.DONE, 1, 1)
    assert (sales_import.original_name, sales_import.uploaded_by.email) == ("week-47.csv", "pm@maker.example")
    assert PointsAccount.objects.get(member=world.member).available == 20


def test_a_file_with_new_columns_asks_for_the_mapping_prefilled(pm_client, world):
    lines = [world.line("L1")]
    response = pm_client.post(UPLOAD, {"source": world.source.pk, "file": world.file(lines, header=ODD_HEADER)})
    assert response.status_code == 200
    mapping = response.context["mapping"]
    assert mapping.header == ODD_HEADER.split(";")
    assert mapping.initial == sellout_mapping.suggest_mapping(ODD_HEADER.split(";"))
    body = text(response)
    assert "Map the columns of week-47.csv" in body
    assert "SKU *" in body
    assert not SalesImport.objects.exists()
    pending = pm_client.session["sales_import_pending"]
    assert private_storage().exists(pending["path"])


def test_the_mapping_step_saves_the_mapping_on_the_source_and_starts_the_import(
    pm_client, world, django_capture_on_commit_callbacks
):
    pm_client.post(UPLOAD, {"source": world.source.pk, "file": world.file([world.line("L1")], header=ODD_HEADER)})
    pending = pm_client.session["sales_import_pending"]
    chosen = dict(zip(MAPPING, ODD_HEADER.split(";"), strict=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = pm_client.post(UPLOAD, {"token": pending["token"], **chosen})
    sales_import = SalesImport.objects.get()
    assert response["Location"] == progress_url(sales_import)
    world.source.refresh_from_db()
    assert world.source.column_mapping == chosen
    sales_import.refresh_from_db()
    assert (sales_import.status, sales_import.new_lines, sales_import.original_name) == (
        ImportStatus.DONE,
        1,
        "week-47.csv",
    )
    assert not private_storage().exists(pending["path"])
    assert "sales_import_pending" not in pm_client.session


def test_a_mapping_without_a_required_column_is_refused_and_nothing_changes(pm_client, world):
    pm_client.post(UPLOAD, {"source": world.source.pk, "file": world.file([world.line("L1")], header=ODD_HEADER)})
    pending = pm_client.session["sales_import_pending"]
    chosen = dict(zip(MAPPING, ODD_HEADER.split(";"), strict=True))
    chosen["sku"] = ""
    response = pm_client.post(UPLOAD, {"token": pending["token"], **chosen})
    assert response.status_code == 200
    assert "This field is required." in str(response.context["mapping"].errors["sku"])
    world.source.refresh_from_db()
    assert world.source.column_mapping == MAPPING
    assert not SalesImport.objects.exists()
    assert private_storage().exists(pending["path"])  # still waiting for a corrected mapping


def test_a_stale_mapping_step_asks_to_upload_again(pm_client, world):
    response = pm_client.post(UPLOAD, {"token": "forged", **MAPPING})
    assert response["Location"] == UPLOAD
    assert messages_of(response) == ["The uploaded file is no longer waiting here: upload it again."]
    world.source.refresh_from_db()
    assert world.source.column_mapping == MAPPING


def test_an_unreadable_file_is_refused_on_the_upload_form(pm_client, world):
    response = pm_client.post(UPLOAD, {"source": world.source.pk, "file": SimpleUploadedFile("e.csv", b"\n \n")})
    assert response.status_code == 200
    assert "The file is empty." in " ".join(response.context["form"].errors["file"])
    assert not SalesImport.objects.exists()


# Progress ---------------------------------------------------------------------------------------------------------


def running_import(world, **fields) -> SalesImport:
    values = {"status": ImportStatus.RUNNING, "total_rows": 250, "processed_rows": 100, "new_lines": 98, **fields}
    return SalesImport.objects.create(
        source=world.source, file="imports/x.csv", original_name="week-47.csv", uploaded_by=ProgramManagerFactory(),
        started_at=timezone.now(), **values,
    )  # fmt: skip


def test_a_running_import_polls_every_second_with_a_progress_bar(pm_client, world):
    sales_import = running_import(world)
    body = text(pm_client.get(progress_url(sales_import)))
    assert f'hx-get="{progress_url(sales_import)}" hx-trigger="every 1s" hx-swap="outerHTML"' in body
    assert 'role="progressbar" aria-label="Lines processed" aria-valuenow="40" aria-valuemin="0"' in body
    assert 'width="40%" height="100%" aria-hidden="true" focusable="false"></svg>' in body
    assert '<span class="progress-text">40 %</span>' in body
    assert "<strong>100</strong> of 250 lines" in body
    assert "htmx.min.js" in body


def test_an_htmx_poll_renders_only_the_progress(pm_client, world, django_assert_max_num_queries):
    sales_import = running_import(world)
    with django_assert_max_num_queries(PROGRESS_QUERIES):
        response = pm_client.get(progress_url(sales_import), headers={"HX-Request": "true"})
    body = text(response).strip()
    assert body.startswith('<div id="import-progress" hx-get=')
    assert "<html" not in body


def test_a_finished_import_stops_polling_and_shows_the_result_and_the_first_errors(pm_client, world):
    errors = [
        {"line": n, "column": "SKU", "value": f"X{n}", "reason": "is not a SKU of the catalogue"} for n in range(2, 32)
    ]
    sales_import = running_import(
        world, status=ImportStatus.DONE, processed_rows=250, error_rows=30, errors=errors,
        message="250 lines: 220 new, 0 already imported, 30 with errors; 4,400 points posted.",
    )  # fmt: skip
    response = pm_client.get(progress_url(sales_import), headers={"HX-Request": "true"})
    body = text(response)
    assert "hx-trigger" not in body
    assert 'aria-valuenow="100"' in body
    assert "250 lines: 220 new, 0 already imported, 30 with errors; 4,400 points posted." in body
    assert "The first 20 errors" in body
    assert "<td>2</td><td>SKU</td><td>X2</td><td>is not a SKU of the catalogue</td>" in body
    assert "<td>22</td>" not in body
    assert reverse("admin:loyalty_salesimport_errors", args=[sales_import.pk]) in body
    assert "Download all errors (CSV)" in body


def test_a_failed_import_says_why(pm_client, world):
    sales_import = running_import(world, status=ImportStatus.FAILED, message="The file's first line is empty.")
    body = text(pm_client.get(progress_url(sales_import)))
    assert "The import failed" in body
    assert '<li class="error" id="import-message">The file&#x27;s first line is empty.</li>' in body
    assert "bg-danger" in body


def test_all_errors_download_as_a_streamed_csv(pm_client, world, django_capture_on_commit_callbacks):
    upload(
        pm_client, world, [world.line("L1", sku="NOPE"), world.line("L2", qty="x")], django_capture_on_commit_callbacks
    )
    sales_import = SalesImport.objects.get()
    response = pm_client.get(reverse("admin:loyalty_salesimport_errors", args=[sales_import.pk]))
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="sales-import-{sales_import.pk}-errors.csv"'
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "line,column,value,reason",
        "2,SKU,NOPE,is not a SKU of the catalogue",
        "3,Qty,x,is not a number",
    ]


def test_the_import_list_shows_progress_and_counts(pm_client, world):
    running_import(world)
    running_import(world, status=ImportStatus.DONE, processed_rows=250, new_lines=240, duplicate_lines=5, error_rows=5)
    body = text(pm_client.get(IMPORTS))
    assert "Running, 40 %" in body
    assert "Done" in body
    assert "240 / 5 / 5" in body


def test_an_import_is_never_edited_or_deleted(pm_client, world):
    sales_import = running_import(world)
    assert pm_client.post(progress_url(sales_import), {"status": "done"}).status_code == 200
    delete = reverse("admin:loyalty_salesimport_delete", args=[sales_import.pk])
    assert pm_client.post(delete, {"post": "yes"}).status_code == 403
    sales_import.refresh_from_db()
    assert sales_import.status == ImportStatus.RUNNING
    assert SaleLine.objects.count() == 0
