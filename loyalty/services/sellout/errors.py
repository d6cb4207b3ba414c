"""The refused lines of a sell-out import: each batch's problems (Issues), the run's record of all of them
(ErrorLog: the first ones on the import, every one in a CSV file) and that CSV's download (errors_csv).

An error is {"line", "column", "value", "reason", "code"}: the file's line number (the header is line 1; for lines
sent through the API, the line's index in its batch), the heading of the column at fault (as the source's file names
it; the field's name for the API), the value as read (at most 200 characters), why, and why for machines (a
LineCode: the API's per-line results show it). The CSV (line, column, value, reason) is written by
loyalty.common.spreadsheets: the file's own text (values, headings) never runs as a formula.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator

from django.core.files.base import File
from django.core.files.storage import default_storage

from loyalty.common.spreadsheets import CsvWriter, csv_lines
from loyalty.models import SalesImport

ERRORS_DIR = "imports/errors"
COLUMNS = ["line", "column", "value", "reason"]


class LineCode:
    """Why a line is refused, for machines (the `code` of each error; the reason's wording is for people)."""

    UNREADABLE = "unreadable"  # not a CSV line, or too few values
    MISSING = "missing"
    TOO_LONG = "too_long"
    REPEATED = "repeated"  # the external id came earlier in the same file or batch
    INVALID_NUMBER = "invalid_number"
    ZERO = "zero"
    TOO_MANY_DECIMALS = "too_many_decimals"
    TOO_LARGE = "too_large"
    INVALID_DATE = "invalid_date"
    IN_FUTURE = "in_future"
    TOO_OLD = "too_old"
    NOT_A_RETURN = "not_a_return"  # names a returned line but is not a return
    UNKNOWN_PARTNER = "unknown_partner"
    PARTNER_NOT_ALLOWED = "partner_not_allowed"  # not the distributor a client reports for, nor one of its dealers
    UNKNOWN_SKU = "unknown_sku"
    UNKNOWN_MEMBER = "unknown_member"
    MEMBER_ELSEWHERE = "member_elsewhere"  # a member of another partner
    MEMBER_LEFT = "member_left"
    RETURN_UNMATCHED = "return_unmatched"  # no original line to take back from
    RETURN_MISMATCH = "return_mismatch"  # the original is a return, or of another partner or SKU
    RETURN_TOO_MUCH = "return_too_much"
    ALREADY_SPENT = "already_spent"  # a return posted, but part of what it takes back was spent (not an error row)


class Refusal(str):
    """The reason a value is refused (the text people read) with its LineCode."""

    code: str

    def __new__(cls, reason: str, code: str) -> Refusal:
        refusal = super().__new__(cls, reason)
        refusal.code = code
        return refusal


class Issues:
    """The problems found in one batch: error entries and the number of bad rows (a row may have several)."""

    def __init__(self, headings: dict[str, str]):
        self.headings = headings  # our field -> the file's heading, to name the column as the file does
        self.items: list[dict] = []
        self.rows = 0

    def add(self, line: int, name: str, value, reason: str, code: str) -> None:
        value = "" if value is None else str(value)[:200]
        column = self.headings.get(name, name)
        self.items.append({"line": line, "column": column, "value": value, "reason": str(reason), "code": code})

    def row(self, line: int, name: str, value, reason: str, code: str) -> None:
        """A row refused for one reason."""
        self.rows += 1
        self.add(line, name, value, reason, code)


class ErrorLog:
    """Every error of one run: the first `limit` in `items` (stored on the import), all of them in a temporary
    CSV file, kept in private storage for errors_csv when `items` is not all of them."""

    def __init__(self, *, limit: int):
        self.limit = limit
        self.items: list[dict] = []
        self._file = tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = CsvWriter(self._file)
        self._writer.writerow(COLUMNS)

    def add(self, items: list[dict]) -> None:
        """A batch's errors in line order (they are found phase by phase)."""
        for error in sorted(items, key=lambda error: error["line"]):
            self._writer.writerow([error["line"], error["column"], error["value"], error["reason"]])
            if len(self.items) < self.limit:
                self.items.append(error)

    def store(self, sales_import: SalesImport) -> bool:
        """Keep the whole list for errors_csv when `items` may not be all of it; True when it was kept."""
        if len(self.items) < self.limit:
            return False
        name = _errors_name(sales_import)
        self._file.flush()
        self._file.seek(0)
        storage = _errors_storage()
        storage.delete(name)
        storage.save(name, File(io.BytesIO(self._file.read().encode("utf-8"))))
        return True

    def close(self) -> None:
        self._file.close()


def errors_discard(sales_import: SalesImport) -> None:
    """Delete a stored list of the import's errors (from an earlier run of it), if any."""
    _errors_storage().delete(_errors_name(sales_import))


def errors_csv(sales_import: SalesImport) -> Iterator[str]:
    """Every refused line as CSV text lines (line, column, value, reason), header first."""
    name, storage = _errors_name(sales_import), _errors_storage()
    if storage.exists(name):
        with storage.open(name, "rb") as stored:
            yield from io.TextIOWrapper(stored, encoding="utf-8", newline="")
        return
    rows = (
        [error.get("line"), error.get("column"), str(error.get("value", "")), error.get("reason")]
        for error in sales_import.errors or []
    )
    yield from csv_lines(rows, header=COLUMNS)


def _errors_storage():
    """The full error lists quote the files' values (customer codes, e-mails): private storage, no URL."""
    try:
        from loyalty.common.storage import private_storage
    except ImportError:  # pragma: no cover - the private storage came with the claims
        return default_storage
    return private_storage()


def _errors_name(sales_import: SalesImport) -> str:
    return f"{ERRORS_DIR}/sales-import-{sales_import.pk}.csv"
