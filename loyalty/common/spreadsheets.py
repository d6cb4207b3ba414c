"""Every CSV and XLSX file the product writes is written here, with one cell rule against spreadsheet formula
injection ("CSV injection", OWASP): a text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
would run as a formula when the file is opened in a spreadsheet, so it is neutralised.

- CSV: such a text gets a single quote in front (OWASP's rule): `=HYPERLINK(…)` is written `'=HYPERLINK(…)`. The
  rule cannot tell a formula from harmless text, so a phone number "+49 30 1234" is written "'+49 30 1234" and a
  text "-5" is written "'-5" too: that is what OWASP prescribes, and a spreadsheet shows the value as text.
- XLSX: every text is written as a string cell, never as a formula; one that starts like a formula also gets the
  cell's quote-prefix flag (what Excel stores when someone types the single quote), so the value stays exactly as
  it was and editing the cell never turns it into a formula.
- Numbers (int, Decimal) are written as numbers and never neutralised: a negative amount stays a number. Money
  goes out as a plain amount ("1450.00", no symbol, no grouping) with the currency in a column of its own, so that
  an accountant's spreadsheet can add it up; formatted money ("€1,450.00") is for pages, not files.

Reading uploads (csv.reader, openpyxl) is not writing and happens where the upload is parsed.
"""

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import xlsxwriter
from django.utils.functional import Promise

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_DATETIME_FORMAT = "%Y-%m-%d %H:%M"
XLSX_DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
XLSX_DATE_FORMAT = "yyyy-mm-dd"
BOM = "\ufeff"

type Cell = str | int | Decimal | date | datetime | None


def safe_text(text: str) -> str:
    """`text` with a single quote in front when a spreadsheet would read it as a formula (see the module)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def starts_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)


# CSV ------------------------------------------------------------------------------------------------------------


class CsvWriter:
    """csv.writer's writerow/writerows with the cell rule: text neutralised, numbers and dates as plain values.
    Datetimes are written as "YYYY-MM-DD HH:MM" in the time zone they carry (convert to local time first)."""

    def __init__(self, file, **fmtparams):
        self._writer = csv.writer(file, **fmtparams)

    def writerow(self, row: Iterable[Cell]) -> Any:
        return self._writer.writerow([_csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Cell]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_lines(rows: Iterable[Iterable[Cell]], *, header: Sequence[str] = (), bom: bool = False) -> Iterator[str]:
    """The CSV text line by line (for a StreamingHttpResponse): the header if any, then one line per row. `bom`
    puts a UTF-8 byte order mark in front, so that spreadsheet programs read the file as UTF-8."""
    writer = CsvWriter(_Echo())
    prefix = BOM if bom else ""
    if header:
        yield prefix + writer.writerow(header)
        prefix = ""
    for row in rows:
        yield prefix + writer.writerow(row)
        prefix = ""
    if prefix:  # no header and no rows: the file is the mark alone
        yield prefix


class _Echo:
    """A file whose write() returns what it was given: csv.writer's writerow then returns the line."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value: Cell) -> Cell:
    if isinstance(value, Promise):  # a lazily translated heading
        value = str(value)
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, datetime):
        return value.strftime(CSV_DATETIME_FORMAT)
    if isinstance(value, Decimal):
        return f"{value:f}"  # never "1E+3"
    return value


# XLSX -----------------------------------------------------------------------------------------------------------


def xlsx_bytes(
    rows: Iterable[Iterable[Cell]], *, header: Sequence[str], sheet_name: str, widths: Sequence[int] = ()
) -> bytes:
    """An XLSX file of one sheet: a bold, frozen header with filters, then the rows with typed cells (numbers as
    numbers, dates as dates, text as text under the cell rule). `widths` are the columns' widths, in characters."""
    buffer = io.BytesIO()
    # No guessing from text: a string never becomes a number, a formula or a link.
    options = {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}
    workbook = xlsxwriter.Workbook(buffer, options)
    sheet = workbook.add_worksheet(sheet_name)
    formats = {
        "header": workbook.add_format({"bold": True}),
        "quoted": workbook.add_format({"quote_prefix": True}),
        "datetime": workbook.add_format({"num_format": XLSX_DATETIME_FORMAT}),
        "date": workbook.add_format({"num_format": XLSX_DATE_FORMAT}),
    }
    for column, heading in enumerate(header):
        sheet.write_string(0, column, str(heading), formats["header"])
    last_row = 0
    for last_row, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            _xlsx_cell(sheet, last_row, column, value, formats)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, last_row, max(len(header) - 1, 0))
    for column, width in enumerate(widths):
        sheet.set_column(column, column, width)
    workbook.close()
    return buffer.getvalue()


def _xlsx_cell(sheet, row: int, column: int, value: Cell, formats: dict) -> None:
    if isinstance(value, Promise):
        value = str(value)
    if value is None:
        sheet.write_blank(row, column, None)
    elif isinstance(value, str):
        quoted = formats["quoted"] if starts_like_formula(value) else None
        sheet.write_string(row, column, value, quoted)
    elif isinstance(value, datetime):  # a spreadsheet has no time zones: the time as the caller localised it
        sheet.write_datetime(row, column, value.replace(tzinfo=None), formats["datetime"])
    elif isinstance(value, date):
        sheet.write_datetime(row, column, datetime(value.year, value.month, value.day), formats["date"])
    elif isinstance(value, bool):
        sheet.write_boolean(row, column, value)
    elif isinstance(value, int | Decimal):
        sheet.write_number(row, column, value)
    else:
        raise TypeError(f"No spreadsheet cell for {type(value).__name__}: convert it to text or a number first.")
