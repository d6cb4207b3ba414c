"""Importing the product catalogue from a CSV file (or an .xlsx workbook): columns sku, name, line, launch_date,
active.

All or nothing: every row is checked first and every bad one is reported (line number, column, value,
reason); if any row is bad, nothing is written. The catalogue is reference data that rules, claims and sell-out
imports point at, so a half-applied file (some SKUs moved to a new line, others not) would be worse than none;
the file is fixed and uploaded again, which is safe because the import is an upsert by SKU.

- `sku` (required): the key. An existing product is updated, a new one created. A SKU twice in one file is an
  error on its second line. SKUs are matched by their matching keys (loyalty.common.keys: case, spaces, dashes
  and invisible characters aside); an existing product keeps the SKU as it was first typed.
- `name` (required).
- `line` (required): an existing product line's code or name (either, case-insensitive); a line that does not
  exist yet is created with this name and a code made from it.
- `launch_date` (optional): 2026-12-31 or 31.12.2026; empty clears it.
- `active` (optional): yes/no, true/false, 1/0, y/n; empty means yes.
Other columns are ignored. Column headings are matched case-insensitively.

Writing is one statement per table (INSERT ... ON CONFLICT (sku_key) DO UPDATE), so two uploads at once cannot
create a SKU twice, and a file of thousands of rows costs a handful of queries.
"""

from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext

from loyalty.common.errors import ApplicationError
from loyalty.common.keys import matching_key
from loyalty.error_codes import ErrorCode
from loyalty.models import Product, ProductLine
from loyalty.services.sellout.formats import CsvLineError, FileProblem, open_table, parse_date

COLUMNS = ("sku", "name", "line", "launch_date", "active")
REQUIRED_COLUMNS = ("sku", "name", "line")
MAX_ROWS = 20_000
MAX_BYTES = 10 * 1024 * 1024
TRUE_WORDS = {"yes", "y", "true", "t", "1", "active", "ja", "oui", "si", "sí"}
FALSE_WORDS = {"no", "n", "false", "f", "0", "inactive", "nein", "non"}


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        shown = f" “{self.value}”" if self.value else ""
        return f"{where}:{shown} {self.reason}"


@dataclass
class ProductImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    lines_created: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def written(self) -> bool:
        return self.ok and not self.dry_run


@dataclass
class _Row:
    line: int
    sku: str
    name: str
    line_value: str
    launch_date: date | None
    is_active: bool


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an Excel number cell, e.g. a numeric SKU
    return str(value).strip()


def _parse_active(value) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if not text or text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError("is not yes or no")


def _check_size(uploaded_file) -> None:
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > MAX_BYTES:
        raise FileProblem(
            f"The file is {size / 1024 / 1024:.1f} MB; the limit is {MAX_BYTES // 1024 // 1024} MB.", "too_big"
        )


def _columns(header: list[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, heading in enumerate(header):
        key = heading.strip().lower().replace(" ", "_").replace("-", "_")
        if key in COLUMNS and key not in positions:
            positions[key] = index
    missing = [column for column in REQUIRED_COLUMNS if column not in positions]
    if missing:
        found = ", ".join(h for h in header if h) or "none"
        raise FileProblem(
            f"The file has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}. The first line must "
            f"name the columns: {', '.join(COLUMNS)} (found: {found}).",
            "missing_columns",
        )
    return positions


LENGTH_LIMITS = {"sku": 60, "name": 200, "line": 120}  # Product.sku, Product.name, ProductLine.name


def _check_row(number: int, cell) -> tuple[_Row | None, list[RowError]]:
    """One data line: the row, or the reasons it is bad (every one of them)."""
    errors = []
    values = {column: _text(cell(column)) for column in ("sku", "name", "line")}
    for column, value in values.items():
        if not value:
            errors.append(RowError(number, column, "", "is required"))
        elif len(value) > LENGTH_LIMITS[column]:
            errors.append(RowError(number, column, value[:60], f"is longer than {LENGTH_LIMITS[column]} characters"))
    launch = None
    raw_launch = cell("launch_date")
    if _text(raw_launch):
        try:
            launch = parse_date(raw_launch.strip() if isinstance(raw_launch, str) else raw_launch)
        except ValueError as exc:
            errors.append(RowError(number, "launch_date", _text(raw_launch), str(exc)))
    is_active = True
    try:
        is_active = _parse_active(cell("active"))
    except ValueError as exc:
        errors.append(RowError(number, "active", _text(cell("active")), str(exc)))
    if errors:
        return None, errors
    return _Row(number, values["sku"], values["name"], values["line"], launch, is_active), []


def _read(table, positions: dict[str, int], result: ProductImportResult) -> list[_Row]:
    rows: list[_Row] = []
    first_line_of: dict[str, int] = {}
    for number, cells in table.rows():
        result.rows += 1
        if result.rows > MAX_ROWS:
            raise FileProblem(f"The file has more than {MAX_ROWS:,} products: split it.", "too_many_rows")
        if isinstance(cells, CsvLineError):
            result.errors.append(RowError(number, "", "", f"cannot be read: {cells}"))
            continue

        def cell(column: str, _cells=cells):
            index = positions.get(column)
            return _cells[index] if index is not None and index < len(_cells) else None

        row, errors = _check_row(number, cell)
        sku = _text(cell("sku"))
        key = matching_key(sku)
        if sku and not key:
            errors.append(RowError(number, "sku", sku, gettext("has no letters or digits")))
            row = None
        elif key in first_line_of:
            errors.append(RowError(number, "sku", sku, f"is already on line {first_line_of[key]}"))
            row = None
        elif key:
            first_line_of[key] = number
        result.errors.extend(errors)
        if row is not None:
            rows.append(row)
    return rows


def _resolve_lines(rows: list[_Row], result: ProductImportResult) -> dict[str, ProductLine | str]:
    """Each distinct line value → an existing ProductLine, or the code of a line to create (str)."""
    existing = list(ProductLine.objects.all())
    by_code = {line.code.lower(): line for line in existing}
    by_name = {line.name.lower(): line for line in existing}
    resolved: dict[str, ProductLine | str] = {}
    new_codes: dict[str, str] = {}  # code → the value that made it
    for row in rows:
        value = row.line_value
        if value in resolved:
            continue
        key = value.lower()
        found = by_code.get(key) or by_name.get(key) or by_code.get(slugify(value))
        if found is not None:
            resolved[value] = found
            continue
        code = slugify(value)[: ProductLine._meta.get_field("code").max_length].strip("-")
        if not code:
            result.errors.append(RowError(row.line, "line", value, "needs letters or digits to make a line code"))
            continue
        if code in new_codes and new_codes[code].lower() != key:
            result.errors.append(
                RowError(row.line, "line", value, f"would get the same code “{code}” as the line “{new_codes[code]}”")
            )
            continue
        new_codes[code] = value
        resolved[value] = code
    return resolved


def products_import(*, file, name: str = "", dry_run: bool = False) -> ProductImportResult:
    """Check a catalogue file and, unless `dry_run` or a row is bad, upsert its products by SKU.
    A file that cannot be read at all raises FileProblem (an ApplicationError)."""
    result = ProductImportResult(dry_run=dry_run)
    _check_size(file)
    with open_table(file, name=name or getattr(file, "name", "")) as table:
        positions = _columns(table.header)
        rows = _read(table, positions, result)
    if result.rows == 0:
        raise FileProblem("The file has a header but no products.", "empty_file")
    lines = _resolve_lines(rows, result)
    rows = [row for row in rows if row.line_value in lines]
    existing = {p.sku_key: p for p in Product.objects.filter(sku_key__in=[matching_key(row.sku) for row in rows])}
    planned: list[tuple[_Row, Product]] = []
    for row in rows:
        product = existing.get(matching_key(row.sku))
        line = lines[row.line_value]
        if product is not None and (
            product.name == row.name
            and isinstance(line, ProductLine)
            and product.line_id == line.pk
            and product.launch_date == row.launch_date
            and product.is_active == row.is_active
        ):
            result.unchanged += 1
            continue
        sku = product.sku if product is not None else row.sku
        candidate = Product(sku=sku, name=row.name, launch_date=row.launch_date, is_active=row.is_active)
        try:
            candidate.clean_fields(exclude=["line", "unusual_quantity"])
        except ValidationError as exc:
            for column, messages in exc.message_dict.items():
                shown = {"launch_date": "launch_date", "is_active": "active"}.get(column, column)
                value = _text(getattr(candidate, column, ""))
                result.errors.extend(RowError(row.line, shown, value, message) for message in messages)
            continue
        if product is None:
            result.created += 1
        else:
            result.updated += 1
        planned.append((row, candidate))
    result.errors.sort(key=lambda error: (error.line, COLUMNS.index(error.column) if error.column in COLUMNS else 9))
    new_line_codes = sorted({line for line in lines.values() if isinstance(line, str)})
    result.lines_created = [next(v for v, code in lines.items() if code == new) for new in new_line_codes]
    if result.errors or dry_run:
        if result.errors:
            result.created = result.updated = result.unchanged = 0
        return result
    _write(planned, lines)
    return result


@transaction.atomic
def _write(planned: list[tuple[_Row, Product]], lines: dict[str, ProductLine | str]) -> None:
    to_create = [ProductLine(code=code, name=value) for value, code in lines.items() if isinstance(code, str)]
    if to_create:
        # Another upload may have created the same line a moment ago: keep its row.
        ProductLine.objects.bulk_create(to_create, ignore_conflicts=True)
        codes = [line.code for line in to_create]
        created = {line.code: line for line in ProductLine.objects.filter(code__in=codes)}
        if len(created) < len(codes):  # a line with this name but another code appeared meanwhile
            by_name = {line.name.lower(): line for line in ProductLine.objects.all()}
            for line in to_create:
                if line.code not in created and line.name.lower() in by_name:
                    created[line.code] = by_name[line.name.lower()]
        lines = {value: created.get(code, code) if isinstance(code, str) else code for value, code in lines.items()}
        unresolved = [value for value, line in lines.items() if isinstance(line, str)]
        if unresolved:
            raise ApplicationError(
                f"The product line {unresolved[0]!r} could not be created: try again.", code=ErrorCode.LINE_CONFLICT
            )
    now = timezone.now()
    products = []
    for row, candidate in planned:
        candidate.line = lines[row.line_value]
        candidate.created_at = candidate.updated_at = now
        products.append(candidate)
    if products:
        Product.objects.bulk_create(
            products,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["sku_key"],
            update_fields=["name", "line", "launch_date", "is_active", "updated_at"],
        )
