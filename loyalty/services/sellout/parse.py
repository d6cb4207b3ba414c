"""Parsing sell-out rows: the cells of each row (as formats.open_table streams them) into a typed sale Line, or
the reasons the row is refused, with its line number and column. Pure: no database, no files.

What is checked here: the external id (present, at most 80 characters, no control characters, not twice in the
file, compared by its matching key), partner and SKU present, the quantity (a number, not 0, at most 3 decimals,
under 10^9; negative: a return), the amount (a number under 10^12, rounded half up to cents), the invoice date (by
the source's format, not in the future, not before 2000), the invoice number (at most 60 characters) and that only
returns name a returned line. Whether the partner, member and SKU exist is match.py's job. The matching keys of
the external id, invoice number and returned line (loyalty.common.keys) are computed here, once per line, for the
COPY and the lookups that follow.

The rows come from a file (strings, or XLSX's typed cells, in the columns the source's mapping names) or from the
API (SaleRow: typed values in the order of ROW_COLUMNS); either way the same checks apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from loyalty.common.keys import matching_key
from loyalty.services.sellout.errors import Issues, LineCode, Refusal
from loyalty.services.sellout.formats import CsvLineError, parse_date, parse_decimal

MAX_QUANTITY = Decimal(10) ** 9
MAX_AMOUNT = Decimal(10) ** 12
CENT = Decimal("0.01")
_BAD_ID = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(slots=True)
class Line:
    """One good row of the file. match.py fills in the facts, the run the shares (what the line pays)."""

    line: int
    external_id: str
    partner: str
    member: str
    sku: str
    quantity: Decimal
    amount: Decimal
    invoice_number: str
    invoice_date: date
    returns_external_id: str
    # Matching keys of external_id, invoice_number and returns_external_id (derived: left out of comparisons).
    external_key: str = field(default="", compare=False)
    invoice_key: str = field(default="", compare=False)
    returns_key: str = field(default="", compare=False)
    paid_quantity: Decimal | None = field(default=None, compare=False)  # set by write.py: what the line pays for
    partner_facts: tuple | None = None  # match.PartnerFacts
    member_facts: tuple | None = None  # match.MemberFacts
    product_facts: tuple | None = None  # match.ProductFacts
    shares: tuple = ()


class SaleRow(NamedTuple):
    """One sale line as values rather than a file's cells (what the API receives): a row LineParser reads with
    the columns ROW_COLUMNS. Quantities and amounts may be Decimals or text, the date a date or text."""

    external_id: str
    partner: str
    member: str
    sku: str
    quantity: Decimal | str
    amount: Decimal | str
    invoice_number: str
    invoice_date: date | str
    returns_external_id: str


ROW_COLUMNS = {name: position for position, name in enumerate(SaleRow._fields)}


def columns_of(header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """{our field: its column's position in the file}, from the file's header and the source's mapping."""
    return {name: header.index(column) for name, column in mapping.items() if column}


class LineParser:
    """Parses the rows of one file, batch after batch: it remembers the external ids seen (a second line with one
    is refused) and the quantities and dates already read (files repeat them)."""

    def __init__(
        self,
        *,
        columns: dict[str, int],
        today: date,
        decimal_comma: bool = False,
        date_format: str = "",
        unit: str = "file",
    ):
        self.columns = columns
        self.unit = unit  # what the lines come in, for the reasons: "file", "batch"
        self.width = max(columns.values()) + 1
        self.today = today
        self.decimal_comma = decimal_comma
        self.date_format = date_format
        self.seen: set[str] = set()  # external ids' matching keys
        self._quantities: dict[str, Decimal | str] = {}
        self._dates: dict[str, date | str] = {}

    def parse(self, rows: list[tuple[int, list]], issues: Issues) -> list[Line]:
        """The good rows as Lines; each bad one goes to `issues` (one entry per bad cell)."""
        columns, width = self.columns, self.width
        get = columns.get
        i_ext, i_partner, i_member = columns["external_id"], columns["partner"], get("member")
        i_sku, i_qty, i_amount = columns["sku"], columns["quantity"], columns["amount"]
        i_invoice, i_date, i_returns = get("invoice_number"), columns["invoice_date"], get("returns_external_id")
        decimal_comma, date_format = self.decimal_comma, self.date_format
        quantities, dates, seen = self._quantities, self._dates, self.seen
        latest = self.today + timedelta(days=1)
        repeated = f"appears more than once in this {self.unit}: only its first line is imported"
        lines = []
        for number, cells in rows:
            if isinstance(cells, CsvLineError):
                issues.row(number, "", "", f"The line cannot be read as CSV: {cells}.", LineCode.UNREADABLE)
                continue
            if len(cells) < width:
                if any(_text(c) for c in cells):
                    issues.row(
                        number,
                        "",
                        "",
                        f"The line has {len(cells)} values; the columns mapped need {width} (a missing separator?).",
                        LineCode.UNREADABLE,
                    )
                    continue
                cells = list(cells) + [""] * (width - len(cells))
            problems = []
            external_id = _text(cells[i_ext])
            external_key = matching_key(external_id)
            if not external_key:
                problems.append(("external_id", external_id, "is missing", LineCode.MISSING))
            elif max(len(external_id), len(external_key)) > 80 or (
                not external_id.isprintable() and _BAD_ID.search(external_id)
            ):
                reason = "must be at most 80 characters, without control characters"
                problems.append(("external_id", external_id, reason, LineCode.TOO_LONG))
            elif external_key in seen:
                problems.append(("external_id", external_id, repeated, LineCode.REPEATED))
            else:
                seen.add(external_key)
            partner = _text(cells[i_partner])
            if not partner:
                problems.append(("partner", "", "is missing", LineCode.MISSING))
            member = _text(cells[i_member]) if i_member is not None else ""
            sku = _text(cells[i_sku])
            if not sku:
                problems.append(("sku", "", "is missing", LineCode.MISSING))
            raw = cells[i_qty]
            quantity = quantities.get(raw) if isinstance(raw, str) else None
            if quantity is None:
                quantity = _quantity(raw, decimal_comma)
                if isinstance(raw, str) and len(quantities) < 10_000:
                    quantities[raw] = quantity
            if isinstance(quantity, str):
                problems.append(("quantity", _text(raw), quantity, quantity.code))
            raw = cells[i_amount]
            try:
                amount = parse_decimal(raw, decimal_comma=decimal_comma)
                if abs(amount) >= MAX_AMOUNT:  # before rounding: rounding a huge number to cents is an error
                    problems.append(("amount", _text(raw), "is too large", LineCode.TOO_LARGE))
                elif amount.as_tuple().exponent < -2:
                    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
            except ValueError as exc:
                problems.append(("amount", _text(raw), str(exc), LineCode.INVALID_NUMBER))
            raw = cells[i_date]
            day = dates.get(raw) if isinstance(raw, str) else None
            if day is None:
                try:
                    day = parse_date(raw, date_format=date_format)
                    if day > latest:
                        day = Refusal("is in the future", LineCode.IN_FUTURE)
                    elif day.year < 2000:
                        day = Refusal("is before 2000", LineCode.TOO_OLD)
                except ValueError as exc:
                    day = Refusal(str(exc), LineCode.INVALID_DATE)
                if isinstance(raw, str) and len(dates) < 100_000:
                    dates[raw] = day
            if isinstance(day, str):
                problems.append(("invoice_date", _text(raw), day, day.code))
            invoice = _text(cells[i_invoice]) if i_invoice is not None else ""
            invoice_key = matching_key(invoice)
            if max(len(invoice), len(invoice_key)) > 60:
                problems.append(("invoice_number", invoice, "must be at most 60 characters", LineCode.TOO_LONG))
            returns_id = _text(cells[i_returns]) if i_returns is not None else ""
            if returns_id and not isinstance(quantity, str) and quantity > 0:
                reason = "is only for returns (a negative quantity)"
                problems.append(("returns_external_id", returns_id, reason, LineCode.NOT_A_RETURN))
            if problems:
                issues.rows += 1
                for name, value, reason, code in problems:
                    issues.add(number, name, value, reason, code)
                continue
            lines.append(
                Line(number, external_id, partner, member, sku, quantity, amount, invoice, day, returns_id,
                     external_key, invoice_key, matching_key(returns_id))
            )  # fmt: skip
        return lines


def _text(value) -> str:
    """A cell as stripped text (an XLSX whole number without its ".0")."""
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _quantity(raw, decimal_comma: bool) -> Decimal | Refusal:
    """The quantity, or the reason it is refused."""
    try:
        quantity = parse_decimal(raw, decimal_comma=decimal_comma)
    except ValueError as exc:
        return Refusal(str(exc), LineCode.INVALID_NUMBER)
    if quantity == 0:
        return Refusal("is zero", LineCode.ZERO)
    if abs(quantity) >= MAX_QUANTITY:  # before rounding: rounding a huge number to thousandths is an error
        return Refusal("is too large", LineCode.TOO_LARGE)
    if quantity.as_tuple().exponent < -3 and quantity != quantity.quantize(Decimal("0.001")):
        return Refusal("has more than 3 decimals", LineCode.TOO_MANY_DECIMALS)
    return quantity
