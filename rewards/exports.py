"""The supplier file: one row per order line to ship, as CSV (streamed) or XLSX (built in memory).

Values go out as they are: the csv module quotes what needs quoting, and every text cell of the XLSX is
written as a string (never a formula), with xlsxwriter escaping control characters.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime

import xlsxwriter
from django.db.models import QuerySet
from django.utils import timezone

from rewards.constants import SHIPPED_KINDS, OrderStatus
from rewards.models import RedemptionLine

SUPPLIER_COLUMNS = (
    "Order",
    "Order date",
    "SKU",
    "Reward",
    "Quantity",
    "Recipient",
    "Street",
    "Postcode",
    "City",
    "Country",
    "Phone",
    "Member e-mail",
    "Partner",
)
# Orders that may go to the supplier: approved ones, and fulfilled ones sent again.
EXPORTABLE_STATUSES = (OrderStatus.APPROVED, OrderStatus.FULFILLED)
DATE_FORMAT = "%Y-%m-%d %H:%M"
SHEET_NAME = "Supplier file"

Row = tuple[int, datetime, str, str, int, str, str, str, str, str, str, str, str]


def supplier_lines(order_ids: Iterable[int]) -> QuerySet[RedemptionLine]:
    """The lines of these orders that ship to an address, in order and line order."""
    return (
        RedemptionLine.objects.filter(order_id__in=list(order_ids), reward__kind__in=SHIPPED_KINDS)
        .select_related("order__member__user", "order__member__partner", "reward")
        .order_by("order_id", "id")
    )


def supplier_rows(lines: QuerySet[RedemptionLine]) -> Iterator[Row]:
    """One row per line, read in chunks so a big file never holds every line in memory."""
    for line in lines.iterator(chunk_size=2000):
        order = line.order
        yield (
            order.pk,
            timezone.localtime(order.created_at),
            line.reward.sku,
            line.reward.name,
            line.quantity,
            order.delivery_name,
            order.delivery_street,
            order.delivery_postcode,
            order.delivery_city,
            order.delivery_country,
            order.delivery_phone,
            order.member.user.email,
            order.member.partner.name,
        )


class _Echo:
    """A file-like object whose write() returns what it was given, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def csv_stream(rows: Iterable[Row]) -> Iterator[str]:
    """The CSV file, line by line: a UTF-8 byte order mark (so spreadsheet programs read it as UTF-8),
    the header, then one line per row."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(SUPPLIER_COLUMNS)
    for row in rows:
        yield writer.writerow([value.strftime(DATE_FORMAT) if isinstance(value, datetime) else value for value in row])


def xlsx_bytes(rows: Iterable[Row]) -> bytes:
    """The XLSX file: one sheet, a bold frozen header with filters, dates as dates, text as text."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = workbook.add_worksheet(SHEET_NAME)
    header = workbook.add_format({"bold": True})
    date = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    sheet.write_row(0, 0, SUPPLIER_COLUMNS, header)
    last_row = 0
    for last_row, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            if isinstance(value, datetime):
                sheet.write_datetime(last_row, column, value.replace(tzinfo=None), date)
            elif isinstance(value, int):
                sheet.write_number(last_row, column, value)
            else:
                sheet.write_string(last_row, column, value)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, last_row, len(SUPPLIER_COLUMNS) - 1)
    sheet.set_column(0, 0, 8)
    sheet.set_column(1, 1, 17)
    sheet.set_column(2, len(SUPPLIER_COLUMNS) - 1, 18)
    workbook.close()
    return buffer.getvalue()
