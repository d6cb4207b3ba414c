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

Big files are written without holding them in memory: `xlsx_write` writes an XLSX file in xlsxwriter's constant
memory mode, and a CSV file PostgreSQL writes itself (`COPY (…) TO STDOUT WITH CSV`) gets the cells CsvWriter would
write when each column of the query is wrapped in `csv_sql_cell` (the rule in SQL: `SafeTextSQL`).

Reading uploads (csv.reader, openpyxl) is not writing and happens where the upload is parsed.
"""

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import xlsxwriter
from django.db.models import Func, TextField, Value
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


# CSV written by PostgreSQL (COPY … TO STDOUT WITH CSV) -----------------------------------------------------------

# The kinds of column csv_sql_cell knows, and the to_char formats that write dates and times as CsvWriter does.
SQL_TEXT, SQL_NUMBER, SQL_DATE, SQL_DATETIME = "text", "number", "date", "datetime"
CSV_SQL_FORMATS = {SQL_DATE: "YYYY-MM-DD", SQL_DATETIME: "YYYY-MM-DD HH24:MI"}


def _sql_literal(character: str) -> str:
    return "'" + character.replace("'", "''") + "'" if character.isprintable() else f"chr({ord(character)})"


_SQL_FORMULA_STARTS = ", ".join(_sql_literal(character) for character in FORMULA_STARTS)


class SafeTextSQL(Func):
    """`safe_text` in SQL: the text with a single quote in front when it starts like a formula (the same first
    characters, FORMULA_STARTS); NULL stays NULL (an empty cell)."""

    arity = 1
    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        quote = f"CASE WHEN left({sql}, 1) IN ({_SQL_FORMULA_STARTS}) THEN '''' ELSE '' END"
        return f"({quote} || {sql})", (*params, *params)


def csv_sql_cell(expression, kind: str):
    """The expression whose text PostgreSQL's CSV output writes as CsvWriter would write the value: text under the
    cell rule, a date as YYYY-MM-DD, a datetime (already in local time, without a zone) as YYYY-MM-DD HH:MM, a
    number as it is (PostgreSQL writes a numeric plainly, never "1E+3")."""
    if kind == SQL_TEXT:
        return SafeTextSQL(expression)
    if kind in CSV_SQL_FORMATS:
        return Func(expression, Value(CSV_SQL_FORMATS[kind]), function="to_char", output_field=TextField())
    if kind == SQL_NUMBER:
        return expression
    raise ValueError(f"No CSV cell for a column of kind {kind!r}.")


# XLSX -----------------------------------------------------------------------------------------------------------

# No guessing from text: a string never becomes a number, a formula or a link.
_XLSX_OPTIONS = {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}


def xlsx_bytes(
    rows: Iterable[Iterable[Cell]], *, header: Sequence[str], sheet_name: str, widths: Sequence[int] = ()
) -> bytes:
    """An XLSX file of one sheet: a bold, frozen header with filters, then the rows with typed cells (numbers as
    numbers, dates as dates, text as text under the cell rule). `widths` are the columns' widths, in characters."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {**_XLSX_OPTIONS, "in_memory": True})
    _write_sheet(workbook, rows, header=header, sheet_name=sheet_name, widths=widths)
    workbook.close()
    return buffer.getvalue()


def xlsx_write(
    target, rows: Iterable[Iterable[Cell]], *, header: Sequence[str], sheet_name: str, widths: Sequence[int] = ()
) -> int:
    """The file xlsx_bytes makes, written to `target` (a path or a binary file) in constant memory: each row goes
    out to a temporary file as the next begins (xlsxwriter's constant_memory mode, texts inline rather than in a
    shared table), so a million rows take no more memory than ten. Returns the number of rows written."""
    workbook = xlsxwriter.Workbook(target, {**_XLSX_OPTIONS, "constant_memory": True})
    count = _write_sheet(workbook, rows, header=header, sheet_name=sheet_name, widths=widths)
    workbook.close()
    return count


def _write_sheet(workbook, rows, *, header: Sequence[str], sheet_name: str, widths: Sequence[int]) -> int:
    sheet = workbook.add_worksheet(sheet_name)
    formats = {
        "header": workbook.add_format({"bold": True}),
        "quoted": workbook.add_format({"quote_prefix": True}),
        "datetime": workbook.add_format({"num_format": XLSX_DATETIME_FORMAT}),
        "date": workbook.add_format({"num_format": XLSX_DATE_FORMAT}),
    }
    for column, width in enumerate(widths):
        sheet.set_column(column, column, width)
    for column, heading in enumerate(header):
        sheet.write_string(0, column, str(heading), formats["header"])
    last_row = 0
    for last_row, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            _xlsx_cell(sheet, last_row, column, value, formats)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, last_row, max(len(header) - 1, 0))
    return last_row


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
