"""Exports through the HTTP endpoint (/exports/<kind>/?format=csv|xlsx&<the list's filters>): what the CSV and XLSX
files hold, that PostgreSQL's CSV equals what the Python writer writes for the same rows, that text starting like a
formula is neutralised in both, the list filters and bad input (the query count of a download:
test_exports_query_counts.py)."""

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import exports
from analytics.models import SalesDay
from analytics.routers import reads_alias
from loyalty.common.spreadsheets import BOM, csv_lines
from loyalty.constants import ClaimStatus
from loyalty.models import PointsEntry, Program, SalesClaim
from loyalty.services import ledger
from loyalty.services.activity import members_who_claimed, members_who_earned
from rewards.activity import members_who_redeemed
from tests.analytics.exports_world import FORMULA, build_world, statement_account
from tests.helpers import messages_of
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.django_db

KINDS = ["statement", "claims", "orders", "partners", "members", "sales", "campaigns"]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, made once for the module and rolled back when the module is done; each test runs in a savepoint
    inside it."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


def download(client, kind: str, file_format: str = "csv", headers=None, **params) -> bytes:
    response = client.get(f"/exports/{kind}/", {"format": file_format, **params}, headers=headers)
    assert response.status_code == 200, (response.status_code, messages_of(response))
    assert response["Cache-Control"] == "private, no-store"
    return b"".join(response.streaming_content)  # the test client closes the response once it is read


def csv_of(data: bytes) -> list[list[str]]:
    text = data.decode()
    assert text.startswith(BOM)
    return list(csv.reader(io.StringIO(text.removeprefix(BOM))))


def sheet_of(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data)).active


def local_minute(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def viewer_of(world, kind):
    """Who exports each list in the content tests: the member their statement, the program manager the rest."""
    return world.rep.user if kind == "statement" else world.pm


# What the files hold -------------------------------------------------------------------------------------------


def test_the_statement_csv_holds_the_members_entries_newest_first_as_the_page_shows_them(client, world):
    client.force_login(world.rep.user)
    account = statement_account(world, world.rep)
    entries = {entry.kind + str(entry.points): entry for entry in PointsEntry.objects.filter(account=account)}

    rows = csv_of(download(client, "statement"))

    spend, pending, formula, welcome = entries["spend-100"], entries["earn25"], entries["earn40"], entries["earn500"]
    expires = timezone.localdate(welcome.expires_at).isoformat()
    assert rows == [
        ["Entry", "Date", "Kind", "What happened", "AquaPoints", "Pending until", "Expires", "Claim"],
        [str(spend.pk), local_minute(spend.created_at), "Spent", spend.explanation, "-100", "", "", ""],
        [str(pending.pk), local_minute(pending.created_at), "Earned", "Earned", "25",
         timezone.localdate(pending.available_at).isoformat(), expires, ""],
        [str(formula.pk), local_minute(formula.created_at), "Earned", "'" + FORMULA, "40", "", expires, ""],
        [str(welcome.pk), local_minute(welcome.created_at), "Earned", "Welcome bonus 0", "500", "", expires, ""],
    ]  # fmt: skip


def test_a_claim_entry_names_its_claim_in_the_statement(client, world):
    claim = SalesClaim.objects.get(member=world.rep)
    line = claim.lines.get()
    account = statement_account(world, world.rep)
    ledger.earn(account=account, points=60, key="claim-line", source_type="claim", source_id=line.source_key)
    client.force_login(world.rep.user)

    rows = csv_of(download(client, "statement"))

    assert rows[1][3:] == ["Earned", "60", "", rows[1][6], str(claim.pk)]


def test_the_claims_export_has_every_column_of_the_list_and_more(client, world):
    client.force_login(world.pm)
    claim = SalesClaim.objects.get(member=world.rep)

    rows = csv_of(download(client, "claims"))

    assert rows[0] == [
        "Claim", "Sent", "Invoice", "Invoice date", "Member", "Partner", "Lines", "Amount", "Currency", "Status",
        "Rejection reason", "Rejection note", "Decided",
    ]  # fmt: skip
    assert rows[3] == [
        str(claim.pk), local_minute(claim.created_at), "'" + claim.invoice_number, claim.invoice_date.isoformat(),
        "'+Rita Rep", "'@North Water", "1", "300.00", "EUR", "Waiting for review", "", "", "",
    ]  # fmt: skip
    assert [row[0] for row in rows[1:]] == [
        str(pk) for pk in SalesClaim.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    ]


def test_the_partners_export_has_the_programs_figures(client, world):
    SalesDay.objects.create(
        day=timezone.localdate(), program_id=world.program.pk, partner_id=world.north.pk, role_id=0,
        region_id=world.north.region_id, product_line_id=1, amount=Decimal("1200.40"), units=1, lines=1,
    )  # fmt: skip
    SalesDay.objects.create(
        day=timezone.localdate().replace(month=1, day=1) - timedelta(days=1), program_id=world.program.pk,
        partner_id=world.north.pk, role_id=0, region_id=world.north.region_id, product_line_id=1,
        amount=Decimal("99"), units=1, lines=1,
    )  # fmt: skip
    client.force_login(world.pm)

    rows = csv_of(download(client, "partners"))

    north = next(row for row in rows if row[0] == str(world.north.pk))
    assert rows[0][6:] == ["Account manager", "Tier", "Members", "Company points", "Sales this year", "Currency"]
    assert north[1:] == [
        "'@North Water", world.north.legal_id, "Dealer", "Active", "North Sea", "Anna Manager", "", "2", "300",
        "1200.40", "EUR",
    ]  # fmt: skip


def test_the_members_export_has_their_points_in_the_program(client, world):
    client.force_login(world.owner.user)

    rows = csv_of(download(client, "members"))

    rep = next(row for row in rows if row[0] == str(world.rep.pk))
    assert rep[1:] == [
        "'+Rita Rep", world.rep.user.email, "'@North Water", "Sales rep", "Active",
        local_minute(world.rep.joined_at), "440", "565",
    ]  # fmt: skip


def test_the_sales_and_campaign_exports_hold_amounts_and_reach(client, world):
    client.force_login(world.pm)

    sales = csv_of(download(client, "sales"))
    campaigns = csv_of(download(client, "campaigns"))

    assert sales[-1][1:] == [
        (timezone.localdate() - timedelta(days=5)).isoformat(), "'-S0-0", "'@North Water", "'+Rita Rep",
        sales[-1][5], "AquaSoft 0", sales[-1][7], "2.000", "1450.50", "EUR", "30", "Distributor feed", "L0-0",
    ]  # fmt: skip
    # acting as the campaign's reach counts it: earned, claimed or ordered within its days after the sending
    sent, program_id = world.campaign.sent_at, world.program.pk
    window = {"program_id": program_id, "since": sent, "until": sent + timedelta(days=world.campaign.acted_within_days)}
    did = {
        *members_who_earned(**window).values_list("account__member_id", flat=True),
        *members_who_claimed(**window).values_list("member_id", flat=True),
        *members_who_redeemed(**window).values_list("member_id", flat=True),
    }
    acted = str(sum(1 for member in (world.rep, world.south_rep, world.east_rep) if member.pk in did))
    assert campaigns[0][-1] == "Acted"
    assert [row[3:] for row in campaigns[1:]] == [
        ["E-mail", "Sales rep", "3", "0", "1", "0", acted],
        ["Inbox", "Sales rep", "3", "0", "0", "0", acted],
    ]
    assert acted != "0"  # the world's people earned after the campaign was sent
    assert campaigns[1][:3] == [str(world.campaign.pk), "'-Spring push", local_minute(world.campaign.sent_at)]


@pytest.mark.parametrize("kind", KINDS)
def test_postgres_csv_is_what_the_python_writer_writes_for_the_same_rows(client, world, kind):
    viewer = viewer_of(world, kind)
    client.force_login(viewer)
    rows = exports.export_rows(kind=kind, viewer=viewer, program=world.program, filters={})
    python = "".join(csv_lines(rows.typed(), header=rows.header, bom=True)).encode()

    postgres = download(client, kind)

    assert csv_of(postgres) == csv_of(python)
    assert len(csv_of(postgres)) > 1


def _plain(value):
    """A typed value as openpyxl reads it back from the sheet."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        return value.replace(second=0, microsecond=0)
    return value


def _minute(value):
    return value.replace(second=0, microsecond=0) if isinstance(value, datetime) else value


@pytest.mark.parametrize("kind", KINDS)
def test_the_xlsx_holds_the_same_rows_typed(client, world, kind):
    viewer = viewer_of(world, kind)
    client.force_login(viewer)
    rows = exports.export_rows(kind=kind, viewer=viewer, program=world.program, filters={})
    expected = [[_plain(value) for value in row] for row in rows.typed()]

    sheet = sheet_of(download(client, kind, "xlsx"))

    values = [[_minute(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    assert sheet.title == str(exports.EXPORTS[kind].title)
    assert list(values[0]) == rows.header
    assert [list(row) for row in values[1:]] == expected


def test_formula_like_text_is_neutralised_in_the_csv_and_kept_as_quoted_text_in_the_xlsx(client, world):
    client.force_login(world.pm)

    claims_csv = csv_of(download(client, "claims"))
    sheet = sheet_of(download(client, "claims", "xlsx"))

    rep_row = next(row for row in claims_csv if row[4] == "'+Rita Rep")
    assert rep_row[2].startswith("'=INV-") and rep_row[5] == "'@North Water"
    cells = next(row for row in sheet.iter_rows(min_row=2) if row[4].value == "+Rita Rep")
    assert [cells[n].value[:5] for n in (2, 4, 5)] == ["=INV-", "+Rita", "@Nort"]
    assert all(cells[n].data_type == "s" and cells[n].quotePrefix for n in (2, 4, 5))
    assert not cells[9].quotePrefix  # "Waiting for review" is plain text


def test_headings_and_labels_are_in_the_readers_language(client, world):
    client.force_login(world.pm)

    rows = csv_of(download(client, "claims"))
    german = csv_of(download(client, "claims", headers={"accept-language": "de"}))

    assert rows[0][0] == "Claim" and rows[1][9] == "Waiting for review"
    assert german[0][0] == "Meldung" and german[1][9] == "Wartet auf Prüfung"


# The list filters ----------------------------------------------------------------------------------------------


def test_the_claims_export_takes_the_lists_status_filter(client, world):
    rejected = SalesClaim.objects.get(member=world.south_rep)
    SalesClaim.objects.filter(pk=rejected.pk).update(status=ClaimStatus.REJECTED)
    client.force_login(world.pm)

    only_rejected = csv_of(download(client, "claims", status="rejected"))
    any_status = csv_of(download(client, "claims", status="no-such-status"))

    assert [row[0] for row in only_rejected[1:]] == [str(rejected.pk)]
    assert len(any_status) == 4  # an unknown status is ignored, as on the list page


def test_the_sales_export_takes_a_partner_and_invoice_days(client, world):
    client.force_login(world.am)
    day = (timezone.localdate() - timedelta(days=5)).isoformat()

    south = csv_of(download(client, "sales", partner=world.south.pk, **{"from": day, "to": day}))
    before = client.get("/exports/sales/", {"format": "csv", "to": (timezone.localdate() - timedelta(days=6))})

    assert [row[3] for row in south[1:]] == ["South Pumps"]
    assert before.status_code == 302 and messages_of(before) == [
        "Nothing to export: the list is empty with these filters."
    ]


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-03-10", "2026-03-01", "The range is reversed"),
        (None, "2999-01-01", "The range ends in the future"),
        ("2001-01-01", "2020-01-01", "is longer than 10 years"),
        ("yesterday", None, "Enter a valid date."),
    ],
)
def test_a_bad_range_of_invoice_days_gets_a_clear_message(client, world, first, last, message):
    client.force_login(world.pm)
    params = {name: value for name, value in (("from", first), ("to", last)) if value}

    response = client.get("/exports/sales/", {"format": "csv", **params}, headers={"referer": "/claims/"})

    assert response.status_code == 302 and response["Location"] == "/claims/"
    assert message in messages_of(response)[0]


def test_the_members_export_of_one_partner_of_the_portfolio(client, world):
    client.force_login(world.am)

    rows = csv_of(download(client, "members", partner=world.south.pk))

    assert [row[0] for row in rows[1:]] == [str(world.south_rep.pk)]


# Bad requests ----------------------------------------------------------------------------------------------------


def test_an_unknown_export_is_not_found(client, world):
    client.force_login(world.pm)

    assert client.get("/exports/salaries/", {"format": "csv"}).status_code == 404


@pytest.mark.parametrize("file_format", ["", "pdf", "CSV"])
def test_a_wrong_file_format_goes_back_with_a_clear_message(client, world, file_format):
    client.force_login(world.pm)

    response = client.get("/exports/claims/", {"format": file_format}, headers={"referer": "http://testserver/claims/"})

    assert response.status_code == 302 and response["Location"] == "http://testserver/claims/"
    assert messages_of(response) == ["Choose a CSV or an XLSX file."]


def test_a_referer_of_another_site_is_not_followed(client, world):
    client.force_login(world.pm)

    response = client.get("/exports/claims/", {"format": "doc"}, headers={"referer": "https://evil.example/"})

    assert response["Location"] == "/exports/"


def test_an_empty_list_gives_a_message_and_no_file(client, world):
    newcomer = MemberFactory(partner=world.south)
    client.force_login(newcomer.user)

    response = client.get("/exports/claims/", {"format": "xlsx"}, headers={"referer": "/claims/"})
    statement = client.get("/exports/statement/", {"format": "csv"})

    assert response.status_code == 302 and response["Location"] == "/claims/"
    assert messages_of(response) == ["Nothing to export: the list is empty with these filters."]
    assert statement.status_code == 302 and statement["Location"] == "/exports/"


def test_without_a_program_there_is_nothing_to_export(client, world):
    Program.objects.filter(pk=world.program.pk).update(is_active=False)  # the shared world's object stays as it is
    client.force_login(world.pm)

    response = client.get("/exports/claims/", {"format": "csv"})

    assert response.status_code == 302
    assert messages_of(response) == ["No program is running, so there is nothing to export yet."]


def test_signing_in_is_required(client, world):
    response = client.get("/exports/claims/", {"format": "csv"})

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# Query counts (how many: test_exports_query_counts.py) -------------------------------------------------------------


def test_the_csv_is_copied_by_postgres_in_one_statement(client, world):
    client.force_login(world.pm)

    with CaptureQueriesContext(connection) as queries:
        download(client, "claims")

    copies = [query["sql"] for query in queries if query["sql"].startswith("COPY (")]
    assert len(copies) == 1 and copies[0].endswith("TO STDOUT WITH (FORMAT csv)")
    assert reads_alias() == "default"


# The buttons on the list pages -----------------------------------------------------------------------------------


def test_the_statement_page_links_its_account_as_csv_and_xlsx(client, world):
    account = statement_account(world, world.rep)
    client.force_login(world.rep.user)

    html = client.get("/points/").content.decode()

    assert f'href="/exports/statement/?account={account.pk}&amp;format=csv"' in html
    assert f'href="/exports/statement/?account={account.pk}&amp;format=xlsx"' in html


def test_the_claims_and_orders_lists_link_their_exports_with_the_filters_they_show(client, world):
    client.force_login(world.pm)

    claims = client.get("/claims/", {"status": "submitted", "page": "1"}).content.decode()
    partial = client.get("/claims/", {"status": "submitted"}, headers={"HX-Request": "true"}).content.decode()
    orders = client.get("/rewards/orders/").content.decode()

    assert 'href="/exports/claims/?status=submitted&amp;format=xlsx"' in claims
    assert 'href="/exports/claims/?status=submitted&amp;format=csv"' in partial  # refreshed with the table
    assert 'href="/exports/orders/?format=csv"' in orders


def test_an_empty_list_shows_no_export_buttons(client, world):
    client.force_login(MemberFactory(partner=world.south).user)

    assert "/exports/claims/" not in client.get("/claims/").content.decode()


def test_a_sent_campaigns_reach_links_its_results(client, world):
    client.force_login(world.pm)

    html = client.get(f"/admin/communications/campaign/{world.campaign.pk}/change/").content.decode()

    assert f'href="/exports/campaigns/?campaign={world.campaign.pk}&amp;format=csv"' in html
