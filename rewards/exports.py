"""The supplier file: one row per order line to ship, as CSV (streamed) or XLSX (built in memory).

Both are written by loyalty.common.spreadsheets, whose cell rule keeps the members' address text from running as
a formula in the supplier's spreadsheet (a phone number "+49 30 1" goes out as "'+49 30 1" in the CSV).
"""

from collections.abc import Iterable, Iterator
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from loyalty.common import spreadsheets
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
SHEET_NAME = "Supplier file"
COLUMN_WIDTHS = (8, 17) + (18,) * (len(SUPPLIER_COLUMNS) - 2)

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


def csv_stream(rows: Iterable[Row]) -> Iterator[str]:
    """The CSV file, line by line: a UTF-8 byte order mark (so spreadsheet programs read it as UTF-8),
    the header, then one line per row."""
    return spreadsheets.csv_lines(rows, header=SUPPLIER_COLUMNS, bom=True)


def xlsx_bytes(rows: Iterable[Row]) -> bytes:
    """The XLSX file: one sheet, a bold frozen header with filters, dates as dates, text as text."""
    return spreadsheets.xlsx_bytes(rows, header=SUPPLIER_COLUMNS, sheet_name=SHEET_NAME, widths=COLUMN_WIDTHS)
