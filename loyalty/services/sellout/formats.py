"""Reading sell-out files: CSV (encoding and delimiter detected) or XLSX, and numbers and dates in local formats.

`open_table(file, name=..., delimiter=...)` checks what can be checked on the whole file before anything is
posted (empty, binary, undecodable, a single column, an old .xls) and raises ApplicationError with a message a
program manager can act on; its `rows()` then streams `(line number, cells)` with the header as line 1, so
memory stays flat however big the file is. CSV cells are strings; XLSX cells keep Excel's types (numbers,
dates), and `parse_decimal` / `parse_date` accept both.

CSV in UTF-8 (with or without BOM), UTF-16 with BOM or Windows-1252, delimiter from the source or detected
(; , tab |); XLSX: the first sheet, read-only. Numbers as the source says: 1,234.56 or, with `decimal_comma`,
1.234,56 (also 1 234,56, a trailing minus 12-, parentheses); dates by the source's `date_format` (e.g.
%d.%m.%Y), else ISO or 31.12.2026; an ambiguous 01/02/2026 is refused.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from loyalty.common.errors import ApplicationError
from loyalty.error_codes import ErrorCode

SAMPLE_BYTES = 64 * 1024
CHUNK_BYTES = 1024 * 1024
DELIMITERS = (";", ",", "\t", "|")
DELIMITER_NAMES = {";": "semicolons", ",": "commas", "\t": "tabs", "|": "vertical bars"}
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls, or an encrypted .xlsx
CSV_FIELD_LIMIT = 1024 * 1024

# Control characters other than tab, CR and LF never appear in a text export; in a "Windows-1252" reading
# they betray a binary file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FileProblem(ApplicationError):
    """The whole file cannot be read: nothing from it may be posted."""

    def __init__(self, message: str, code: str = ErrorCode.BAD_FILE):
        super().__init__(message, code)


# Opening ---------------------------------------------------------------------------------------------------


@dataclass
class TableFile:
    """A readable table: its header, the format found, and a stream of its rows."""

    kind: str  # "csv" or "xlsx"
    header: list[str]
    encoding: str = ""
    delimiter: str = ""
    data_lines: int | None = None  # lines below the header (counted when the file was checked), None: unknown
    _rows: Iterator = field(default=iter(()), repr=False)
    _closers: list = field(default_factory=list, repr=False)

    def rows(self) -> Iterator[tuple[int, list]]:
        """(line number, cells) for every line below the header, blank lines skipped; line 1 is the header."""
        return self._rows

    def close(self) -> None:
        for closer in self._closers:
            closer()
        self._closers = []

    def __enter__(self) -> TableFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_table(file, *, name: str = "", delimiter: str = "", check_whole_file: bool = False) -> TableFile:
    """Open a seekable binary file as a table. `delimiter` empty: detect it. `check_whole_file`: decode the
    whole CSV once first (fast) so that a bad byte far down refuses the file before anything is posted, and
    count its lines for the progress bar."""
    stream = _binary(file)
    stream.seek(0)
    head = stream.read(SAMPLE_BYTES)
    stream.seek(0)
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise FileProblem("The file is empty.", ErrorCode.EMPTY_FILE)
    if head.startswith(XLSX_MAGIC) or name.lower().endswith((".xlsx", ".xlsm")):
        return _open_xlsx(stream, head)
    if head.startswith(OLE_MAGIC) or name.lower().endswith(".xls"):
        raise FileProblem(
            "This is an old Excel (.xls) file or a password-protected workbook: save it as .xlsx or as CSV "
            "and upload that.",
            ErrorCode.XLS_NOT_SUPPORTED,
        )
    return _open_csv(stream, head, delimiter=delimiter, check_whole_file=check_whole_file)


def _binary(file):
    """The binary file object behind a Django File / UploadedFile / FieldFile, or the object itself."""
    inner = getattr(file, "file", None)
    if inner is not None and hasattr(inner, "read") and hasattr(inner, "seek"):
        file = inner
    if isinstance(file, io.TextIOBase):
        raise TypeError("open_table needs a binary file")
    return file


# CSV -------------------------------------------------------------------------------------------------------


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252 when that reads as plain text."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise FileProblem(
            "This is not a text (CSV) file: it contains binary data. If it is a spreadsheet, upload it as .xlsx "
            "or save it as CSV UTF-8.",
            ErrorCode.BINARY_FILE,
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = sample.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise _undecodable(sample, exc.start, "UTF-8 or Windows-1252") from None
    if (found := _CONTROL.search(text)) is not None:
        raise _undecodable(sample, found.start(), "UTF-8 or Windows-1252")
    return "cp1252"


def _undecodable(data: bytes, position: int, what: str, line_offset: int = 0) -> FileProblem:
    line = line_offset + data.count(b"\n", 0, position) + 1
    bad = data[position : position + 4].hex(" ")
    return FileProblem(
        f"The file cannot be read as text ({what}): line {line:,} has bytes that are not text in that encoding "
        f"({bad}). Save it again as “CSV UTF-8” and upload it again; nothing was imported.",
        ErrorCode.BAD_ENCODING,
    )


def detect_delimiter(header_line: str) -> str:
    """The candidate that splits the header line most often (outside quotes); "" when none does."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ""


def _first_line(text: str) -> str:
    return text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""


def _open_csv(stream, head: bytes, *, delimiter: str, check_whole_file: bool) -> TableFile:
    encoding = detect_encoding(head)
    data_lines = None
    if check_whole_file:
        data_lines = _check_decodes(stream, encoding)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    header_line = _first_line(text)
    found = detect_delimiter(header_line)
    if delimiter:
        if found and found != delimiter and delimiter not in header_line:
            raise FileProblem(
                f"This source's files are separated by {DELIMITER_NAMES.get(delimiter, repr(delimiter))}, but "
                f"this file's header uses {DELIMITER_NAMES[found]}: save it with "
                f"{DELIMITER_NAMES.get(delimiter, repr(delimiter))}, or clear the source's delimiter so that it "
                "is detected.",
                ErrorCode.WRONG_DELIMITER,
            )
    else:
        delimiter = found
    if not delimiter:
        raise FileProblem(
            f"The file has a single column (“{header_line[:60]}”): its columns are separated by a character "
            "we do not recognise. Save it as CSV with commas or semicolons between the columns.",
            ErrorCode.SINGLE_COLUMN,
        )
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    stream.seek(0)
    reader_text = io.TextIOWrapper(
        io.BufferedReader(_Unclosable(stream), CHUNK_BYTES), encoding=encoding, errors="strict", newline=""
    )
    reader = csv.reader(reader_text, delimiter=delimiter, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem("The file is empty.", ErrorCode.EMPTY_FILE) from None
    except UnicodeDecodeError as exc:
        raise _undecodable(head, exc.start, _encoding_name(encoding)) from None
    header = [cell.strip().lstrip("\ufeff").strip() for cell in header]
    return TableFile(
        kind="csv",
        header=header,
        encoding=encoding,
        delimiter=delimiter,
        data_lines=data_lines,
        _rows=_csv_rows(reader),
    )


def _encoding_name(encoding: str) -> str:
    return {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252"}.get(
        encoding, encoding
    )


def _check_decodes(stream, encoding: str) -> int:
    """Decode the whole file once (fast: no parsing) and count its lines below the header."""
    decoder = codecs.getincrementaldecoder(encoding)()
    stream.seek(0)
    lines, offset, last = 0, 0, b""
    while chunk := stream.read(CHUNK_BYTES):
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise _undecodable(chunk, exc.start, _encoding_name(encoding), line_offset=lines) from None
        if encoding == "cp1252" and (found := _CONTROL.search(text)) is not None:
            raise _undecodable(chunk, found.start(), _encoding_name(encoding), line_offset=lines)
        lines += text.count("\n")
        offset += len(chunk)
        last = chunk
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FileProblem(
            f"The file ends in the middle of a character ({_encoding_name(encoding)}): it was cut off or saved "
            "in another encoding. Save it again as “CSV UTF-8”; nothing was imported.",
            ErrorCode.BAD_ENCODING,
        ) from None
    stream.seek(0)
    if last and not last.endswith(b"\n"):
        lines += 1  # the last line has no line break
    return max(lines - 1, 0)


class _Unclosable(io.RawIOBase):
    """Lets TextIOWrapper read a stream it must not close (the caller owns the file)."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _csv_rows(reader) -> Iterator[tuple[int, list]]:
    previous_end = reader.line_num
    while True:
        try:
            for cells in reader:  # a plain loop: this runs once per line of files of millions of lines
                line = previous_end + 1
                previous_end = reader.line_num
                if cells and (len(cells) > 1 or cells[0].strip()):
                    yield line, cells
            return
        except csv.Error as exc:  # the reader goes on with the next line
            line = previous_end + 1
            previous_end = reader.line_num
            yield line, CsvLineError(str(exc))


class CsvLineError(str):
    """In place of a line's cells: why the CSV reader could not split it."""


# XLSX ------------------------------------------------------------------------------------------------------


def _open_xlsx(stream, head: bytes) -> TableFile:
    import zipfile

    try:
        from openpyxl import load_workbook
    except ImportError:  # pragma: no cover - openpyxl is in requirements.txt
        raise FileProblem("Excel files cannot be read here: upload CSV.", ErrorCode.XLSX_UNSUPPORTED) from None
    stream.seek(0)
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileProblem(
            f"The file is not a readable Excel workbook (.xlsx): {exc}. Open it in Excel and save it again, or "
            "save it as CSV.",
            ErrorCode.BAD_XLSX,
        ) from None
    sheet = workbook.worksheets[0] if workbook.worksheets else None
    if sheet is None:
        workbook.close()
        raise FileProblem("The workbook has no sheet.", ErrorCode.EMPTY_FILE)
    rows = sheet.iter_rows(values_only=True)
    header, header_row = None, 0
    for number, values in enumerate(rows, start=1):
        if any(v is not None and str(v).strip() for v in values):
            header, header_row = values, number
            break
    if header is None:
        workbook.close()
        raise FileProblem("The file is empty: its first sheet has no data.", ErrorCode.EMPTY_FILE)
    while header and header[-1] is None:
        header = header[:-1]
    max_row = sheet.max_row
    return TableFile(
        kind="xlsx",
        header=[str(v).strip() if v is not None else "" for v in header],
        data_lines=max(max_row - header_row, 0) if max_row else None,
        _rows=_xlsx_rows(rows, header_row, len(header)),
        _closers=[workbook.close],
    )


def _xlsx_rows(rows, header_row: int, width: int) -> Iterator[tuple[int, list]]:
    """Rows padded to the header's width (a sheet's row stops at its last filled cell)."""
    for number, values in enumerate(rows, start=header_row + 1):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        cells = list(values)
        if len(cells) < width:
            cells += [None] * (width - len(cells))
        yield number, cells


# Values ----------------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_POINT_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_COMMA_PLAIN = re.compile(r"\d+(?:,\d+)?|,\d+")
_COMMA_GROUPED = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")
# The usual forms, recognised with one regular expression each (a sell-out file has millions of numbers).
_USUAL_COMMA = re.compile(r"-?(?:\d+|\d{1,3}(?:\.\d{3})+)(?:,\d+)?")
_USUAL_POINT = re.compile(r"-?(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?")
_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009'’")
_MINUSES = ("-", "\u2212", "\u2013")


def parse_decimal(value, *, decimal_comma: bool = False) -> Decimal:
    """A number as written in the file: 1234.56, 1,234.56 (or 1.234,56 and 1 234,56 with `decimal_comma`),
    a minus before or after it (SAP writes 12-) or parentheses. Raises ValueError with the reason."""
    if value.__class__ is str:
        if decimal_comma:
            if _USUAL_COMMA.fullmatch(value):
                return Decimal(value.replace(".", "").replace(",", "."))
        elif _USUAL_POINT.fullmatch(value):
            return Decimal(value.replace(",", ""))
    if isinstance(value, bool):
        raise ValueError("is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("is not a number")
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError("is not a number")
    text = value.strip()
    if not text:
        raise ValueError("is empty")
    if _PLAIN.fullmatch(text) and not decimal_comma:
        return Decimal(text)
    negative = False
    if text[0] in _MINUSES:
        negative, text = True, text[1:]
    elif text[-1] in _MINUSES:
        negative, text = True, text[:-1]
    elif text[0] == "(" and text[-1] == ")":
        negative, text = True, text[1:-1]
    elif text[0] == "+":
        text = text[1:]
    text = text.translate(_SPACES)
    if decimal_comma:
        if _COMMA_PLAIN.fullmatch(text):
            number = text.replace(",", ".")
        elif _COMMA_GROUPED.fullmatch(text):
            number = text.replace(".", "").replace(",", ".")
        elif _PLAIN.fullmatch(text) or _POINT_GROUPED.fullmatch(text):
            raise ValueError("is written with a decimal point, but this source writes numbers like 1.234,56")
        else:
            raise ValueError("is not a number (this source writes numbers like 1.234,56)")
    else:
        if _PLAIN.fullmatch(text):
            number = text
        elif _POINT_GROUPED.fullmatch(text):
            number = text.replace(",", "")
        elif _COMMA_PLAIN.fullmatch(text) or _COMMA_GROUPED.fullmatch(text):
            raise ValueError(
                "is written with a decimal comma, but this source writes numbers like 1,234.56 "
                "(set “decimal comma” on the source if its files use 1.234,56)"
            )
        else:
            raise ValueError("is not a number")
    try:
        result = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the patterns above only let digits through
        raise ValueError("is not a number") from None
    return -result if negative else result


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_DOTTED = re.compile(r"\d{1,2}\.\d{1,2}\.\d{4}")
_AMBIGUOUS = re.compile(r"\d{1,2}[/-]\d{1,2}[/-]\d{2,4}")


def parse_date(value, *, date_format: str = "") -> date:
    """A date as written in the file: the source's `date_format` (e.g. %d.%m.%Y), else ISO 2026-12-31 or
    31.12.2026. An Excel date cell is taken as it is. Raises ValueError with the reason."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("is a number, not a date (format the column as a date in the workbook)")
    if not isinstance(value, str):
        raise ValueError("is not a date")
    text = value.strip()
    if not text:
        raise ValueError("is empty")
    if date_format:
        try:
            return datetime.strptime(text, date_format).date()
        except ValueError:
            example = date(2026, 12, 31).strftime(date_format)
            raise ValueError(f"is not a date in this source's format (like {example})") from None
    if _ISO.fullmatch(text) or _ISO.fullmatch(text[:10]) and text[10:11] in ("T", " "):
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise ValueError("is not a valid date") from None
    if _DOTTED.fullmatch(text):
        try:
            return datetime.strptime(text, "%d.%m.%Y").date()
        except ValueError:
            raise ValueError("is not a valid date") from None
    if _AMBIGUOUS.fullmatch(text):
        raise ValueError(
            "is ambiguous (day/month or month/day?): set the source's date format, e.g. %d/%m/%Y or %m/%d/%Y"
        )
    raise ValueError("is not a date (write 2026-12-31, 31.12.2026, or set the source's date format)")
