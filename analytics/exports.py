"""Exports: every list a person can see, as a CSV or an XLSX file (issue #14).

Each export is ONE SQL query: the list's own queryset (its selector, scoped by partners.visibility, filtered as the
list page filters it), with one annotated column per cell. An account manager never gets a row outside their
portfolio and a member only their own rows, because the rows are the selector's.

- CSV is written by PostgreSQL: `COPY (<query>) TO STDOUT WITH (FORMAT csv)`, each column wrapped in
  loyalty.common.spreadsheets.csv_sql_cell (the one cell rule, in SQL), so the file holds what CsvWriter would write
  (text that starts like a formula gets a quote; ISO dates, "YYYY-MM-DD HH:MM" local times, plain decimals). The
  header line is written by the helper (headings are translated text), with a UTF-8 byte order mark in front so
  spreadsheet programs read the file as UTF-8. The rows are streamed as PostgreSQL sends them, in 64 KiB pieces.
- XLSX is written by spreadsheets.xlsx_write in constant memory from the same query, read through a server-side
  cursor in chunks.

Datetimes are converted to the reader's local time in SQL (the active time zone), and both files show the same
local times; money is a plain amount with the currency in a column of its own.

Reads go to the read replica when one is configured (analytics.routers.reads_alias).
"""

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import IO, Any

from django.db import connections
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    DateField,
    DateTimeField,
    DecimalField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Concat, NullIf, Substr
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.error_codes import ErrorCode
from analytics.models import SalesDay
from communications.constants import Channel, Kind
from communications.models import Campaign, Delivery
from loyalty.common import spreadsheets
from loyalty.common.errors import ApplicationError
from loyalty.common.spreadsheets import SQL_DATE as DATE
from loyalty.common.spreadsheets import SQL_DATETIME as DATETIME
from loyalty.common.spreadsheets import SQL_NUMBER as NUMBER
from loyalty.common.spreadsheets import SQL_TEXT as TEXT
from loyalty.constants import ClaimStatus, EntryKind, EntrySource, RejectionReason
from loyalty.models import PartnerTier, PointsAccount, PointsEntry, Program, SaleLine, SalesClaim
from loyalty.selectors.claims import claim_list
from loyalty.selectors.ledger import accounts_for, statement
from partners import selectors as partner_selectors
from partners.constants import MemberStatus, PartnerKind, PartnerStatus
from partners.visibility import Viewer, company_partners_for, members_for, partners_for, viewer_for
from rewards.constants import OrderStatus, PaidBy
from rewards.models import RedemptionOrder
from rewards.selectors import order_list

CSV, XLSX = "csv", "xlsx"
FORMATS = (CSV, XLSX)
CONTENT_TYPES = {
    CSV: "text/csv; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# The CSV stream is handed on in pieces of about this many bytes (one row per piece would cost a write each).
STREAM_PIECE = 64 * 1024
# Rows read per round trip when writing an XLSX file (a server-side cursor).
XLSX_CHUNK = 2000
# A background export records its progress every this many rows.
PROGRESS_EVERY = 5000
PAID_BY_SHORT = {PaidBy.MEMBER: gettext_lazy("Own points"), PaidBy.COMPANY: gettext_lazy("Company account")}


@dataclass(frozen=True)
class Column:
    """One column of a file: its heading, the value (a field path or an expression over the list's rows) and its kind
    (TEXT, NUMBER, DATE or DATETIME: a datetime is shown in local time), and its width in an XLSX sheet."""

    heading: Any
    value: Any
    kind: str = TEXT
    width: int = 16

    @property
    def expression(self):
        return F(self.value) if isinstance(self.value, str) else self.value


@dataclass(frozen=True)
class Rows:
    """What one export writes: the list's queryset (scoped and filtered) and its columns."""

    queryset: QuerySet
    columns: list[Column]
    name: str  # the file's name without the extension
    title: str = ""  # the list's name in the reader's language (the XLSX sheet's)

    @property
    def header(self) -> list[str]:
        return [str(column.heading) for column in self.columns]

    @property
    def names(self) -> list[str]:
        return [f"export_{number}" for number in range(len(self.columns))]

    def typed(self) -> QuerySet:
        """The rows as tuples of typed values (numbers, dates, local datetimes without a zone, text)."""
        cells = {name: column.expression for name, column in zip(self.names, self.columns, strict=True)}
        return self.queryset.annotate(**cells).values_list(*self.names)

    def as_csv_text(self) -> QuerySet:
        """The rows with each cell as the text the CSV file holds (the cell rule applied in SQL)."""
        cells = {
            name: spreadsheets.csv_sql_cell(column.expression, column.kind)
            for name, column in zip(self.names, self.columns, strict=True)
        }
        return self.queryset.annotate(**cells).values_list(*self.names)


@dataclass(frozen=True)
class Export:
    """One list that can be exported: its name in URLs (`kind`), its title, who may export it, and its rows for a
    viewer, a program and the list's filters (plain values, as export_forms cleans them)."""

    kind: str
    title: Any
    allowed: Callable[[Viewer], bool]
    rows: Callable[..., Rows]
    needs_program: bool = True


# Expressions -----------------------------------------------------------------------------------------------------


def local(expression) -> Func:
    """A timestamp in the reader's local time, without a zone (what both files show)."""
    zone = timezone.get_current_timezone_name()
    return Func(Value(zone), expression, function="timezone", output_field=DateTimeField())


def local_day(expression) -> Cast:
    return Cast(local(expression), DateField())


def label(field_name: str, choices) -> Case:
    """The label of a choice field in the active language (an unknown code as it is)."""
    whens = [When(**{field_name: value}, then=Value(str(text))) for value, text in choices]
    return Case(*whens, default=F(field_name), output_field=CharField())


def _money_currency(program: Program | None) -> Value:
    return Value(program.money_currency if program else "", output_field=CharField())


def _refused(message: str, code: ErrorCode) -> ApplicationError:
    return ApplicationError(message, code=code)


def _not_visible() -> ApplicationError:
    return _refused(_("There is nothing of that kind for you to export."), ErrorCode.EXPORT_NOT_VISIBLE)


def _visible_partner(viewer: Viewer, partner_id: int | None):
    """The partner of a `partner` filter, when the viewer may see it (a refusal, never a leak, otherwise)."""
    if partner_id is None:
        return None
    partner = partners_for(viewer).filter(pk=partner_id).first()
    if partner is None:
        raise _not_visible()
    return partner


# The lists ----------------------------------------------------------------------------------------------------


def statement_rows(viewer: Viewer, program: Program, filters: dict) -> Rows:
    """One account's entries, newest first, as the statement page shows them (loyalty.views.ledger): the viewer's
    own account, or the `account` given when the viewer may see it."""
    visible = accounts_for(viewer).filter(program=program)
    account_id = filters.get("account")
    if account_id is not None:
        account = visible.filter(pk=account_id).first()
        if account is None:
            raise _not_visible()
    elif viewer.member is not None:
        account = visible.filter(member=viewer.member).first()
        if account is None:  # no account yet: no points yet, nothing to export
            return Rows(PointsEntry.objects.none(), _statement_columns(program), "statement")
    else:
        raise _refused(_("Open a statement from a partner's page to export it."), ErrorCode.EXPORT_NOT_VISIBLE)
    return Rows(statement(account=account), _statement_columns(program), f"statement-{account.pk}")


def _statement_columns(program: Program) -> list[Column]:
    kind = label("kind", EntryKind.choices)
    adds = Q(available_delta__gt=0) | Q(pending_delta__gt=0)
    claim_id = Case(
        When(
            Q(source_type=EntrySource.CLAIM, source_id__regex=r"^[^:]*:[0-9]+:[^:]*$"),
            then=Cast(Func(F("source_id"), Value(":"), Value(2), function="split_part"), BigIntegerField()),
        ),
        output_field=BigIntegerField(),
    )
    return [
        Column(_("Entry"), "id", NUMBER, 10),
        Column(_("Date"), local(F("created_at")), DATETIME, 17),
        Column(_("Kind"), kind, TEXT, 14),
        Column(_("What happened"), Coalesce(NullIf(F("explanation"), Value("")), kind), TEXT, 50),
        Column(
            capfirst(program.currency_name or _("Points")),
            Case(When(~Q(available_delta=0), then=F("available_delta")), default=F("pending_delta")),
            NUMBER,
            10,
        ),
        Column(
            _("Pending until"),
            Case(When(~Q(pending_delta=0), then=local_day(F("available_at"))), output_field=DateField()),
            DATE,
            13,
        ),
        Column(_("Expires"), Case(When(adds, then=local_day(F("expires_at"))), output_field=DateField()), DATE, 13),
        Column(_("Claim"), claim_id, NUMBER, 10),
    ]


def claim_rows(viewer: Viewer, program: Program, filters: dict) -> Rows:
    """The claims list (loyalty.views.claims.claim_list): the viewer's claims of the program, newest first."""
    claims = claim_list(viewer=viewer, program=program, status=filters.get("status", ""))
    columns = [
        Column(_("Claim"), "id", NUMBER, 10),
        Column(_("Sent"), local(F("created_at")), DATETIME, 17),
        Column(_("Invoice"), "invoice_number", TEXT, 16),
        Column(_("Invoice date"), "invoice_date", DATE, 13),
        Column(_("Member"), "member__user__full_name", TEXT, 24),
        Column(_("Partner"), "partner__name", TEXT, 28),
        Column(_("Lines"), "line_count", NUMBER, 8),
        Column(_("Amount"), "total_amount", NUMBER, 12),
        Column(_("Currency"), "program__money_currency", TEXT, 9),
        Column(_("Status"), label("status", ClaimStatus.choices), TEXT, 18),
        Column(_("Rejection reason"), label("rejection_reason", RejectionReason.choices), TEXT, 24),
        Column(_("Rejection note"), "rejection_text", TEXT, 40),
        Column(_("Decided"), local(F("decided_at")), DATETIME, 17),
    ]
    return Rows(claims, columns, "claims")


def order_rows(viewer: Viewer, program: Program | None, filters: dict) -> Rows:
    """The orders list (rewards.views.order_list): the viewer's reward orders, newest first."""
    orders = order_list(viewer=viewer, status=filters.get("status", ""))
    columns = [
        Column(_("Order"), "id", NUMBER, 10),
        Column(_("Date"), local(F("created_at")), DATETIME, 17),
        Column(_("Member"), "member__user__full_name", TEXT, 24),
        Column(_("Partner"), "member__partner__name", TEXT, 28),
        Column(_("Paid with"), label("paid_by", PAID_BY_SHORT.items()), TEXT, 16),
        Column(_("Status"), label("status", OrderStatus.choices), TEXT, 20),
        Column(_("Items"), "line_count", NUMBER, 8),
        Column(_("Points"), "total_points", NUMBER, 10),
        Column(_("Carrier"), "carrier", TEXT, 14),
        Column(_("Tracking number"), "tracking_number", TEXT, 20),
    ]
    return Rows(orders, columns, "orders")


def partner_rows(viewer: Viewer, program: Program, filters: dict) -> Rows:
    """The partners list (partners.views.partner_list) with the program's figures: current tier, the company
    account's balance, the current team size and this year's sales through the program (the daily roll-up)."""
    partners = partner_selectors.partner_list(
        viewer=viewer,
        search=filters.get("search", ""),
        status=filters.get("status", ""),
        kind=filters.get("kind", ""),
        region=filters.get("region", ""),
    )
    tier = PartnerTier.objects.filter(program=program, partner=OuterRef("pk")).values("tier__name")[:1]
    balance = PointsAccount.objects.filter(program=program, partner=OuterRef("pk")).values("available")[:1]
    year_start = timezone.localdate().replace(month=1, day=1)
    sales = (
        SalesDay.objects.filter(program_id=program.pk, partner_id=OuterRef("pk"), day__gte=year_start)
        .order_by()
        .values("partner_id")
        .annotate(amount=Sum("amount"))
        .values("amount")
    )
    money = DecimalField(max_digits=16, decimal_places=2)
    columns = [
        Column(_("Partner"), "id", NUMBER, 10),
        Column(_("Name"), "name", TEXT, 30),
        Column(_("Legal id"), "legal_id", TEXT, 16),
        Column(_("Type"), label("kind", PartnerKind.choices), TEXT, 16),
        Column(_("Status"), label("status", PartnerStatus.choices), TEXT, 14),
        Column(_("Region"), "region__name", TEXT, 16),
        Column(_("Account manager"), "account_manager__full_name", TEXT, 22),
        Column(_("Tier"), Subquery(tier, output_field=CharField()), TEXT, 12),
        Column(_("Members"), "members_count", NUMBER, 10),
        Column(_("Company points"), Coalesce(Subquery(balance, output_field=BigIntegerField()), Value(0)), NUMBER, 14),
        Column(
            _("Sales this year"),
            Coalesce(Subquery(sales, output_field=money), Value(0), output_field=money),
            NUMBER,
            16,
        ),
        Column(_("Currency"), _money_currency(program), TEXT, 9),
    ]
    return Rows(partners, columns, "partners")


def member_rows(viewer: Viewer, program: Program, filters: dict) -> Rows:
    """The team list (partners.views.team, and a partner's page for managers): people with their role, status and
    points in the program; an owner's own team, a manager's portfolio (or one `partner` of it)."""
    partner = viewer.partner if viewer.is_owner else _visible_partner(viewer, filters.get("partner"))
    members = partner_selectors.team_list(
        viewer=viewer,
        partner=partner,
        search=filters.get("search", ""),
        status=filters.get("status", ""),
        role=filters.get("role", ""),
    ).prefetch_related(None)
    account = PointsAccount.objects.filter(program=program, member=OuterRef("pk"))
    columns = [
        Column(_("Member"), "id", NUMBER, 10),
        Column(_("Name"), "user__full_name", TEXT, 24),
        Column(_("E-mail"), "user__email", TEXT, 30),
        Column(_("Partner"), "partner__name", TEXT, 28),
        Column(_("Role"), "role__name", TEXT, 16),
        Column(_("Status"), label("status", MemberStatus.choices), TEXT, 16),
        Column(_("Joined"), local(F("joined_at")), DATETIME, 17),
        Column(
            _("Points available"),
            Coalesce(Subquery(account.values("available")[:1], output_field=BigIntegerField()), Value(0)),
            NUMBER,
            12,
        ),
        Column(
            _("Points earned in all"),
            Coalesce(Subquery(account.values("lifetime_earned")[:1], output_field=BigIntegerField()), Value(0)),
            NUMBER,
            12,
        ),
    ]
    return Rows(members, columns, f"members-{partner.pk}" if partner else "members")


def sale_lines_for(viewer) -> QuerySet[SaleLine]:
    """Sell-out lines the viewer may see: every line of the partners whose company data they see (owners, managers),
    else their own lines only."""
    viewer = viewer_for(viewer)
    if viewer.sees_company:
        return SaleLine.objects.filter(partner__in=company_partners_for(viewer))
    if viewer.member is not None:
        return SaleLine.objects.filter(partner_id=viewer.member.partner_id, member=viewer.member)
    return SaleLine.objects.none()


def sale_rows(viewer: Viewer, program: Program, filters: dict) -> Rows:
    """Sell-out lines of the program (the lines behind the statement's import entries), newest invoice first,
    optionally of one `partner` and invoice days `date_from`..`date_to`."""
    lines = sale_lines_for(viewer).filter(source__program=program)
    partner = _visible_partner(viewer, filters.get("partner"))
    if partner is not None:
        lines = lines.filter(partner=partner)
    if filters.get("date_from"):
        lines = lines.filter(invoice_date__gte=date.fromisoformat(filters["date_from"]))
    if filters.get("date_to"):
        lines = lines.filter(invoice_date__lte=date.fromisoformat(filters["date_to"]))
    columns = [
        Column(_("Line"), "id", NUMBER, 10),
        Column(_("Invoice date"), "invoice_date", DATE, 13),
        Column(_("Invoice"), "invoice_number", TEXT, 16),
        Column(_("Partner"), "partner__name", TEXT, 28),
        Column(_("Member"), "member__user__full_name", TEXT, 24),
        Column(_("SKU"), "product__sku", TEXT, 14),
        Column(_("Product"), "product__name", TEXT, 30),
        Column(_("Product line"), "product__line__name", TEXT, 18),
        Column(_("Quantity"), "quantity", NUMBER, 10),
        Column(_("Amount"), "amount", NUMBER, 12),
        Column(_("Currency"), _money_currency(program), TEXT, 9),
        Column(_("Points"), "points", NUMBER, 10),
        Column(_("Source"), "source__name", TEXT, 20),
        Column(_("Line id at the source"), "external_id", TEXT, 20),
    ]
    return Rows(lines.order_by("-invoice_date", "-id"), columns, "sales")


CAMPAIGN_KEY_PREFIX = "campaign:"  # communications.campaigns.source_key


def campaign_rows(viewer: Viewer, program: Program, filters: dict) -> Rows:
    """Campaign results: per campaign of the program (or the one `campaign`), channel and role, the messages sent,
    delivered, opened and clicked, as the campaign's reach shows them (communications.campaigns.campaign_reach),
    counted over the members the viewer may see (an account manager: their portfolio's people)."""
    if filters.get("campaign") is not None:  # one campaign, from its page (whichever program the site shows)
        campaigns = Campaign.objects.filter(pk=filters["campaign"])
    else:
        campaigns = Campaign.objects.filter(program=program)
    keys = campaigns.annotate(key=Concat(Value(CAMPAIGN_KEY_PREFIX), Cast("pk", CharField()))).values("key")
    campaign_id = Cast(Substr("source_key", len(CAMPAIGN_KEY_PREFIX) + 1), BigIntegerField())
    campaign = Campaign.objects.filter(pk=OuterRef("campaign_id"))
    deliveries = (
        Delivery.objects.filter(kind=Kind.CAMPAIGN, source_key__in=keys, member__in=members_for(viewer))
        .annotate(campaign_id=campaign_id, role_name=F("member__role__name"), role_order=F("member__role__sort_order"))
        .alias(
            campaign_program=Subquery(campaign.values("program_id")[:1]),
            campaign_sent=Subquery(campaign.values("sent_at")[:1]),
            campaign_until=Subquery(campaign.values("sent_at")[:1])
            + Subquery(campaign.values("acted_within_days")[:1]) * Value(timedelta(days=1)),
        )
        .values("campaign_id", "channel", "role_name", "role_order")
        .annotate(
            sent=_count(Q(sent_at__isnull=False) | Q(channel=Channel.INBOX)),
            delivered=_count(Q(delivered_at__isnull=False)),
            opened=_count(Q(opened_at__isnull=False) | Q(read_at__isnull=False)),
            clicked=_count(Q(clicked_at__isnull=False)),
            acted=_count(_acted_after_campaign()),
        )
        .order_by("-campaign_id", "channel", "role_order", "role_name")
    )
    columns = [
        Column(_("Campaign"), "campaign_id", NUMBER, 10),
        Column(_("Name"), Subquery(campaign.values("name")[:1], output_field=CharField()), TEXT, 30),
        Column(
            _("Sent on"),
            local(Subquery(campaign.values("sent_at")[:1], output_field=DateTimeField())),
            DATETIME,
            17,
        ),
        Column(_("Channel"), label("channel", Channel.choices), TEXT, 10),
        Column(_("Role"), "role_name", TEXT, 16),
        Column(_("Messages sent"), "sent", NUMBER, 10),
        Column(_("Delivered"), "delivered", NUMBER, 10),
        Column(_("Opened"), "opened", NUMBER, 10),
        Column(_("Clicked"), "clicked", NUMBER, 10),
        Column(_("Acted"), "acted", NUMBER, 10),
    ]
    return Rows(deliveries, columns, "campaigns")


def _acted_after_campaign() -> Q:
    """The member of a delivery earned, claimed or ordered a reward in the campaign's program within its
    acted_within_days of its sending: what communications.campaigns counts as acting (campaign_reach), over the
    aliases campaign_program, campaign_sent and campaign_until."""
    window = {"created_at__gte": OuterRef("campaign_sent"), "created_at__lt": OuterRef("campaign_until")}
    earned = PointsEntry.objects.filter(
        kind=EntryKind.EARN, account__program_id=OuterRef("campaign_program"), account__member_id=OuterRef("member_id"),
        **window,
    )  # fmt: skip
    who = {"program_id": OuterRef("campaign_program"), "member_id": OuterRef("member_id")}
    claimed = SalesClaim.objects.filter(**who, **window)
    ordered = RedemptionOrder.objects.filter(**who, **window)
    return Q(Exists(earned)) | Q(Exists(claimed)) | Q(Exists(ordered))


def _count(condition: Q) -> Count:
    return Count("pk", filter=condition)


EXPORTS: dict[str, Export] = {
    export.kind: export
    for export in (
        Export("statement", gettext_lazy("Points statement"), lambda v: v.in_program, statement_rows),
        Export("claims", gettext_lazy("Sales claims"), lambda v: v.in_program, claim_rows),
        Export("orders", gettext_lazy("Reward orders"), lambda v: v.in_program, order_rows, needs_program=False),
        Export("partners", gettext_lazy("Partners"), lambda v: v.sees_company, partner_rows),
        Export("members", gettext_lazy("Members"), lambda v: v.sees_others, member_rows),
        Export("sales", gettext_lazy("Sales lines"), lambda v: v.in_program, sale_rows),
        Export("campaigns", gettext_lazy("Campaign results"), lambda v: v.is_manager, campaign_rows),
    )
}


def export_rows(*, kind: str, viewer, program: Program | None, filters: dict) -> Rows:
    """The rows of export `kind` for the viewer: ApplicationError EXPORT_NOT_VISIBLE when there is no such export
    or not for this viewer (or a filter names something they may not see), EXPORT_NO_PROGRAM without a program."""
    viewer = viewer_for(viewer)
    export = EXPORTS.get(kind)
    if export is None or not export.allowed(viewer):
        raise _not_visible()
    if export.needs_program and program is None:
        raise _refused(_("No program is running, so there is nothing to export yet."), ErrorCode.EXPORT_NO_PROGRAM)
    return replace(export.rows(viewer, program, filters), title=str(export.title))


# Counting and writing ---------------------------------------------------------------------------------------------


def count_up_to(rows: Rows, limit: int, *, using: str) -> int:
    """How many rows the export has, counting no further than `limit` (a bounded cost for any size). The list's own
    queryset is counted, without the export's columns: only its ids are read."""
    return rows.queryset.using(using).order_by()[:limit].count()


def estimated_rows(rows: Rows, *, using: str) -> int:
    """How many rows the planner expects the export to have (EXPLAIN: no row is read)."""
    sql, params = rows.typed().using(using).order_by().query.get_compiler(using=using).as_sql()
    with connections[using].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def count_all(rows: Rows, *, using: str) -> int:
    return rows.queryset.using(using).order_by().count()


def copy_statement(rows: Rows, *, using: str) -> str:
    """`COPY (<the export's query>) TO STDOUT WITH (FORMAT csv)`, its parameters bound (COPY takes none)."""
    connection = connections[using]
    sql, params = rows.as_csv_text().using(using).query.get_compiler(using=using).as_sql()
    return f"COPY ({connection.ops.compose_sql(sql, params)}) TO STDOUT WITH (FORMAT csv)"


def csv_head(rows: Rows) -> bytes:
    """The file's first bytes: the byte order mark and the header line, written by the spreadsheet helper."""
    return "".join(spreadsheets.csv_lines([], header=rows.header, bom=True)).encode()


def copy_rows(rows: Rows, *, using: str) -> Iterator[memoryview]:
    """The CSV lines PostgreSQL writes, one row each (PostgreSQL sends a row per message), as psycopg hands them
    over: each is valid until the next is read."""
    with connections[using].cursor() as cursor, cursor.copy(copy_statement(rows, using=using)) as copy:
        yield from copy


def csv_stream(rows: Rows, *, using: str) -> Iterator[bytes]:
    """The whole CSV file in pieces of about STREAM_PIECE bytes, for a StreamingHttpResponse."""
    piece = bytearray(csv_head(rows))
    for line in copy_rows(rows, using=using):
        piece += line
        if len(piece) >= STREAM_PIECE:
            yield bytes(piece)
            piece.clear()
    if piece:
        yield bytes(piece)


def write_csv(file: IO[bytes], rows: Rows, *, using: str, progress: Callable[[int], None] | None = None) -> int:
    """Write the CSV file to `file`; `progress(rows_written)` is called every PROGRESS_EVERY rows. Returns the rows."""
    file.write(csv_head(rows))
    count = 0
    for count, line in enumerate(copy_rows(rows, using=using), start=1):
        file.write(line)
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count)
    return count


def typed_rows(rows: Rows, *, using: str) -> Iterator[tuple]:
    return rows.typed().using(using).iterator(chunk_size=XLSX_CHUNK)


def write_xlsx(target, rows: Rows, *, using: str, progress: Callable[[int], None] | None = None) -> int:
    """Write the XLSX file to `target` (a path or a binary file) in constant memory. Returns the rows written."""
    values: Iterable[tuple] = typed_rows(rows, using=using)
    if progress is not None:
        values = _counted(values, progress)
    widths = [column.width for column in rows.columns]
    return spreadsheets.xlsx_write(target, values, header=rows.header, sheet_name=sheet_name(rows), widths=widths)


def sheet_name(rows: Rows) -> str:
    """The sheet's name: the list's, without the characters a sheet name may not have, at most 31 long."""
    return re.sub(r"[\[\]:*?/\\]", " ", rows.title or rows.name).strip()[:31] or "Export"


def _counted(values: Iterable[tuple], progress: Callable[[int], None]) -> Iterator[tuple]:
    count = 0
    for count, row in enumerate(values, start=1):
        yield row
        if count % PROGRESS_EVERY == 0:
            progress(count)


def file_name(rows: Rows, file_format: str, *, today: date | None = None) -> str:
    return f"{rows.name}-{(today or timezone.localdate()).isoformat()}.{file_format}"
