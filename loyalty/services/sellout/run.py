"""Sell-out import: a distributor's or the ERP's file of sale lines, validated, matched and posted in bulk.

Service API (the admin calls exactly these; everything raises ApplicationError with a message to show as is):

    OUR_FIELDS                                   ordered {field: (label, required)} a source's columns map to
    REQUIRED_FIELDS                              the fields of OUR_FIELDS that must be mapped
    read_header(file, *, source) -> list[str]    the column headings of an uploaded file (CSV or XLSX); refuses
                                                 empty, binary, undecodable and single-column files
    suggest_mapping(header) -> dict[str, str]    {field: heading} guessed from the headings, to pre-fill the form
    mapping_problems(mapping, header=None)       what is wrong with a mapping (empty list: nothing)
    source_mapping_save(*, source, mapping, header=None) -> SalesSource
                                                 validate and save a source's mapping (done once per source)
    import_start(*, source, uploaded_file, user) -> SalesImport
                                                 check the file against the saved mapping, store it, and queue
                                                 loyalty.tasks.sellout.run_sales_import after commit (status "queued")
    import_run(import_id, *, stats=None) -> SalesImport
                                                 the task's body (see below); safe to call twice (a finished
                                                 import is left alone, a running one too: advisory lock)
    errors_csv(sales_import) -> Iterator[str]    "line,column,value,reason" CSV lines of every refused row, for
                                                 a StreamingHttpResponse download

Formats (loyalty.services.sellout.formats): CSV in UTF-8 (with or without BOM), UTF-16 with BOM or Windows-1252,
delimiter from the source or detected (; , tab |); XLSX (first sheet, read-only). Numbers as the source
says: 1,234.56 or, with `decimal_comma`, 1.234,56 (also 1 234,56, a trailing minus 12-, parentheses);
dates by the source's `date_format` (e.g. %d.%m.%Y), else ISO or 31.12.2026; ambiguous 01/02/2026 is refused.

What import_run does, and what the admin can rely on:
- Whole-file problems (empty file, undecodable bytes anywhere in it, a single column, a heading of the mapping
  missing, too many lines) are found before the first line is posted: status "failed", `message` says why,
  nothing changed. Extra, unmapped columns are fine.
- The whole import is one transaction: its lines and points are posted all together or not at all (a
  failure half-way posts nothing, and importing the file again posts it all). Lines are read as a stream in
  batches of BATCH_SIZE; after each batch `processed_rows` / `total_rows` are committed (from another
  connection), so a progress bar can poll `SalesImport.percent_done`. Imports of one source run one at a time
  (a transaction-level advisory lock); imports of different sources run side by side.
- Every line is validated; a bad line is never posted and is listed with its line number (the header is
  line 1; for XLSX the sheet's row number), the column heading, the value and the reason. The first
  MAX_STORED_ERRORS are in `errors`; errors_csv gives them all.
- Partners are matched by the source's alias code (PartnerAlias) or the legal id; members (optional) by
  member code ("M" + id) or e-mail, and must work at the line's partner (one who has left is refused: leave
  the column empty to credit the partner's account); products by SKU. Quantity 0, more than 3 decimals,
  dates in the future or before 2000 are refused.
- Idempotent per (source, external id): a line already imported (by any earlier import of the source) is
  counted in `duplicate_lines` and posts nothing; the same external id twice in one file: the second is an
  error. Importing the same file twice posts nothing the second time and the message says so.
- Good lines go through the same engine as earning.post_event (engine.evaluate, caps and budgets through
  engine.limit in file order from locked rows), via bulk_ledger.LineEvaluator and bulk_ledger.ImportLedger:
  each line stores what it paid (`SaleLine.points` and `postings`, with the arithmetic), and the ledger gets
  one entry per account and import (`sales-import:{import id}:m{member id}` or `:p{partner id}`), whose
  points are the sum of its lines' postings (docs/decisions.md #9).
- A negative quantity is a return: it takes back its share of every posting its original line made
  (bulk_ledger.proportional: running totals rounded so that returning a line in parts takes back exactly
  what it earned), stored on the return line; the ledger gets one reversal entry per earn entry it takes
  from (the rules' budgets are given back and the caps' usage is not, exactly as reverse_source does).
  The original is the line named in returns_external_id, else the earlier
  line of the same source with the same partner, invoice number and SKU that still has enough quantity left
  to return. A return with no original, or returning more than is left, is refused with the reason. If the
  member already spent the points, the return is posted, what is there is taken back, and the shortfall is
  listed in `errors` (the line counts as new, not as an error) and in the message.
- New lines with an invoice number are handed to claims.claims_confirm_by_sale_lines (when that service
  exists), in the same transaction, so matching claims are approved without review.
- Speed: a writer thread with its own connection (holding the import's transaction) writes batch N while
  batch N+1 is read, checked and evaluated (only outside a transaction; inside one, e.g. in tests, batches
  run one after the other in a savepoint). Lines go in with COPY; a line another import committed meanwhile
  makes the COPY fail and the batch is written again without it. The planner statistics are refreshed when
  stale (autovacuum off or late). Memory is bounded by two batches in flight plus the external ids seen (to
  refuse duplicates in the file). `make bench` (bench/sellout.py) measures it on 1,000,000 lines.
- `status` ends "done" (with a message like "1,000,000 lines: 999,800 new, 0 already imported, 200 with
  errors; 12,345,678 points posted") or "failed" (whole-file problem, or an unexpected error: nothing of the
  import is posted, and importing the file again posts it all).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import queue
import re
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from loyalty.common.background import enqueue_on_commit
from loyalty.common.errors import ApplicationError
from loyalty.constants import ClaimStatus, ImportStatus
from loyalty.engine.bulk import LineEvaluator, RuleIndex, json_text
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import import_run_try_lock, import_run_unlock, source_import_lock, source_lock
from loyalty.models import ClaimLine, PartnerAlias, PartnerTier, Product, SaleLine, SalesClaim, SalesImport, SalesSource
from loyalty.services.earning import published_rules
from loyalty.services.ledger_bulk import (
    ImportLedger,
    Return,
    copy_in,
    copy_text,
    proportional,
    refresh_statistics,
)
from loyalty.services.sellout.formats import CsvLineError, FileProblem, open_table, parse_date, parse_decimal
from partners.constants import MemberStatus, PayoutPolicy
from partners.models import Member, Partner

logger = logging.getLogger(__name__)

OUR_FIELDS: dict[str, tuple[str, bool]] = {
    "external_id": ("External line id", True),
    "partner": ("Partner (legal id or the source's customer code)", True),
    "member": ("Member (e-mail or member code M…)", False),
    "sku": ("SKU", True),
    "quantity": ("Quantity (negative: a return)", True),
    "amount": ("Amount", True),
    "invoice_number": ("Invoice number (needed to confirm claims)", False),
    "invoice_date": ("Invoice date", True),
    "returns_external_id": ("Returned line's external id (for returns)", False),
}
REQUIRED_FIELDS = [name for name, (_, required) in OUR_FIELDS.items() if required]

BATCH_SIZE = getattr(settings, "SALES_IMPORT_BATCH_SIZE", 50_000)
MAX_FILE_BYTES = getattr(settings, "SALES_IMPORT_MAX_BYTES", 1024 * 1024 * 1024)
MAX_LINES = getattr(settings, "SALES_IMPORT_MAX_LINES", 5_000_000)
MAX_STORED_ERRORS = 1000
STATISTICS_EVERY = 10  # batches between checks of the planner statistics
# Read and evaluate the next batch while the previous one is written (a second database connection).
PIPELINE = getattr(settings, "SALES_IMPORT_PIPELINE", True)
ERRORS_DIR = "imports/errors"
GIL_SWITCH_INTERVAL = 0.0005  # seconds (Python's default is 0.005)

MAX_QUANTITY = Decimal(10) ** 9
MAX_AMOUNT = Decimal(10) ** 12
CENT = Decimal("0.01")
_BAD_ID = re.compile(r"[\x00-\x1f\x7f]")


# Headers and mappings ----------------------------------------------------------------------------------------


def read_header(file, *, source: SalesSource) -> list[str]:
    """The column headings of an uploaded file. Raises ApplicationError when the file cannot be read."""
    _check_size(getattr(file, "size", None))
    try:
        with open_table(file, name=getattr(file, "name", "") or "", delimiter=source.delimiter) as table:
            header = table.header
    finally:
        file.seek(0)
    if not any(header):
        raise FileProblem("The file's first line is empty: it needs a header line with the column names.")
    return header


_SYNONYMS = {
    "external_id": ["externalid", "lineid", "id", "lineno", "linenumber", "line", "position", "transactionid",
                    "rowid", "docline", "itemid", "belegposition"],
    "partner": ["partner", "partnercode", "customer", "customerno", "customernumber", "customerid", "customercode",
                "dealer", "dealercode", "legalid", "vat", "vatnumber", "vatid", "taxid", "kunde", "kundennummer",
                "client", "account"],
    "member": ["member", "membercode", "email", "emailaddress", "salesrep", "rep", "seller", "contact", "mitglied"],
    "sku": ["sku", "productcode", "product", "article", "articleno", "articlenumber", "item", "itemcode",
            "itemno", "material", "materialno", "partnumber", "artikel", "artikelnummer"],
    "quantity": ["quantity", "qty", "units", "pieces", "pcs", "menge", "quantite", "cantidad"],
    "amount": ["amount", "netamount", "total", "linetotal", "lineamount", "net", "value", "revenue", "sales",
               "betrag", "umsatz", "montant", "importe"],
    "invoice_number": ["invoicenumber", "invoiceno", "invoice", "invoiceid", "document", "documentno", "docno",
                       "rechnung", "rechnungsnummer", "rechnungsnr", "facture", "factura", "billno"],
    "invoice_date": ["invoicedate", "date", "documentdate", "docdate", "datum", "rechnungsdatum", "datefacture",
                     "saledate", "salesdate"],
    "returns_external_id": ["returnsexternalid", "returnsline", "returnslineid", "returnof", "originalline",
                            "originallineid", "originalid", "creditfor", "returnedline", "originalexternalid"],
}  # fmt: skip


def _normalise(heading: str) -> str:
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", text)


def suggest_mapping(header: Iterable[str]) -> dict[str, str]:
    """{our field: heading} guessed from the headings: exact synonyms first, then headings that contain one.
    Each heading is used once; fields without a good guess are left out."""
    headings = [h for h in header if h and h.strip()]
    normalised = {h: _normalise(h) for h in headings}
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for exact in (True, False):
        for name in OUR_FIELDS:
            if name in mapping:
                continue
            for synonym in _SYNONYMS[name]:
                found = next(
                    (
                        h
                        for h in headings
                        if h not in used
                        and (normalised[h] == synonym if exact else len(synonym) > 3 and synonym in normalised[h])
                    ),
                    None,
                )
                if found is not None:
                    mapping[name] = found
                    used.add(found)
                    break
    return {name: mapping[name] for name in OUR_FIELDS if name in mapping}


def mapping_problems(mapping: dict, header: list[str] | None = None) -> list[str]:
    """Why a mapping cannot be used (with this file's header, when given); an empty list when it can."""
    problems = []
    unknown = sorted(set(mapping) - set(OUR_FIELDS))
    if unknown:
        problems.append(f"Unknown fields: {', '.join(unknown)}.")
    for name in REQUIRED_FIELDS:
        if not (mapping.get(name) or "").strip():
            problems.append(f"Choose the column for “{OUR_FIELDS[name][0]}”: it is required.")
    chosen = [(name, column) for name, column in mapping.items() if name in OUR_FIELDS and column]
    seen: dict[str, str] = {}
    for name, column in chosen:
        if column in seen:
            problems.append(
                f"The column “{column}” is chosen for both “{OUR_FIELDS[seen[column]][0]}” and “{OUR_FIELDS[name][0]}”."
            )
        seen[column] = name
    if header is not None:
        present = set(header)
        for name, column in chosen:
            if column not in present:
                problems.append(
                    f"The file has no column “{column}” (mapped to “{OUR_FIELDS[name][0]}”). "
                    f"Its columns are: {', '.join(h for h in header if h) or '(none)'}."
                )
            elif header.count(column) > 1:
                problems.append(f"The file has two columns named “{column}”: rename one of them.")
    return problems


@transaction.atomic
def source_mapping_save(*, source: SalesSource, mapping: dict, header: list[str] | None = None) -> SalesSource:
    """Save which heading of this source's files holds each of our fields (asked once per source)."""
    mapping = {name: (mapping.get(name) or "").strip() for name in OUR_FIELDS if (mapping.get(name) or "").strip()}
    problems = mapping_problems(mapping, header)
    if problems:
        raise ApplicationError(" ".join(problems), ErrorCode.INVALID_MAPPING)
    source = source_lock(source.pk)
    source.column_mapping = mapping
    source.full_clean()
    source.save(update_fields=["column_mapping", "updated_at"])
    return source


def _check_size(size: int | None) -> None:
    if size is not None and size > MAX_FILE_BYTES:
        raise FileProblem(
            f"The file is {size / 1024 / 1024:,.0f} MB; the most one import takes is "
            f"{MAX_FILE_BYTES / 1024 / 1024:,.0f} MB. Split it into several files (the lines already imported "
            "are skipped, so overlapping files are fine).",
            "file_too_big",
        )


# Starting -----------------------------------------------------------------------------------------------------


def import_start(*, source: SalesSource, uploaded_file, user) -> SalesImport:
    """Check the file against the source's saved mapping, store it and queue the import after commit."""
    mapping = source.column_mapping or {}
    missing = [OUR_FIELDS[name][0] for name in REQUIRED_FIELDS if not mapping.get(name)]
    if missing:
        raise ApplicationError(
            f"Map this source's columns first: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
            "mapped yet.",
            ErrorCode.MAPPING_INCOMPLETE,
        )
    header = read_header(uploaded_file, source=source)
    problems = mapping_problems(mapping, header)
    if problems:
        raise ApplicationError(" ".join(problems), ErrorCode.HEADER_MISMATCH)
    name = os.path.basename(getattr(uploaded_file, "name", "") or "sell-out.csv")
    with transaction.atomic():
        sales_import = SalesImport(source=source, original_name=name[:255], uploaded_by=user)
        uploaded_file.seek(0)
        sales_import.file.save(name, uploaded_file if isinstance(uploaded_file, File) else File(uploaded_file), False)
        sales_import.full_clean()
        sales_import.save()
        enqueue_on_commit("loyalty.tasks.run_sales_import", sales_import.pk)
    return sales_import


# Running --------------------------------------------------------------------------------------------------------

# Lines of a source by external id: one index lookup each, whatever the table's statistics say. OFFSET 0 keeps
# PostgreSQL from flattening the LATERAL subquery into a join: for a new source its statistics promise one row,
# and the hash join it then picks reads every line of the source (every batch: quadratic in the file).
_BY_EXTERNAL_ID = (
    "SELECT {columns} FROM unnest(%s::text[]) AS k(external_id) CROSS JOIN LATERAL "
    "(SELECT * FROM loyalty_saleline WHERE source_id = %s AND external_id = k.external_id OFFSET 0) s"
)
_LINE_COLUMNS = (
    "source_id, external_id, sales_import_id, partner_id, member_id, product_id, quantity, amount, invoice_number, "
    "invoice_date, returns_line_id, points, postings"
)
_ORIGINAL_COLUMNS = "s.external_id, s.id, s.partner_id, s.product_id, s.quantity, s.sales_import_id, s.postings"
NULL = "\\N"  # COPY's text format
_STOP = object()  # tells the writer thread to give up (the reading side failed)


def import_run(import_id: int, *, stats: dict | None = None) -> SalesImport:
    """Run a queued import to the end (the task's body). A finished import is left as it is; one that is
    running elsewhere is left to that worker; one that was interrupted (nothing of it was posted) runs again.
    `stats`, when given, receives the seconds spent in each phase (for benchmarks)."""
    if not import_run_try_lock(import_id):
        return SalesImport.objects.get(pk=import_id)
    try:
        sales_import = SalesImport.objects.select_related("source__program").get(pk=import_id)
        if sales_import.status in (ImportStatus.DONE, ImportStatus.FAILED):
            return sales_import
        resumed = sales_import.status == ImportStatus.RUNNING
        run = _Run(sales_import, resumed=resumed)
        run.run()
        sales_import.refresh_from_db(fields=["status", "new_lines"])
        if sales_import.status == ImportStatus.DONE and sales_import.new_lines:
            # New sales can lift partners into a higher tier: upgrades happen at once, not at the daily review.
            from loyalty.services.tiers import tiers_evaluate_all

            started = time.perf_counter()
            tiers_evaluate_all(program=sales_import.source.program)
            run.stats.add("tiers", started)
        if sales_import.status == ImportStatus.DONE and (claims := _claims_module()) is not None:
            # Claims left waiting while this import held the rules' locks are approved now, as they would have been.
            claims.claims_auto_approve_waiting(program=sales_import.source.program)
        if stats is not None:
            stats.update(run.stats.seconds)
            stats["entries"] = run.entries
        return sales_import
    finally:
        import_run_unlock(import_id)


@dataclass(slots=True)
class _Line:
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
    partner_facts: tuple | None = None
    member_facts: tuple | None = None
    product_facts: tuple | None = None
    shares: tuple = ()


@dataclass
class _Counts:
    total: int = 0
    new: int = 0
    duplicates: int = 0
    error_rows: int = 0
    points: int = 0
    reversed: int = 0
    returns: int = 0
    shortfall: int = 0


class _Issues:
    """The problems found in one batch: error entries (line, column heading, value, reason) and bad rows."""

    def __init__(self, headings: dict[str, str]):
        self.headings = headings
        self.items: list[dict] = []
        self.rows = 0

    def add(self, line: int, name: str, value, reason: str) -> None:
        value = "" if value is None else str(value)[:200]
        self.items.append({"line": line, "column": self.headings.get(name, name), "value": value, "reason": reason})

    def row(self, line: int, name: str, value, reason: str) -> None:
        self.rows += 1
        self.add(line, name, value, reason)


@dataclass
class _Prepared:
    """A batch read, checked, matched and evaluated, waiting to be written."""

    errors: _Issues
    lines: list = field(default_factory=list)
    total: int = 0
    duplicates: int = 0


@dataclass
class _Stats:
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, phase: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[phase] += now - started
        return now


class _Run:
    """One run of one import. See the module docstring for what it promises."""

    def __init__(self, sales_import: SalesImport, *, resumed: bool = False):
        self.imp = sales_import
        self.source = sales_import.source
        self.program = self.source.program
        self.mapping = self.source.column_mapping or {}
        self.resumed = resumed
        self.counts = _Counts()
        self.errors: list[dict] = []
        self.error_file = tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="")  # noqa: SIM115
        self.error_writer = csv.writer(self.error_file)
        self.error_writer.writerow(["line", "column", "value", "reason"])
        self.seen: set[str] = set()
        self.stats = _Stats()
        self.today = timezone.localdate()
        self.total_rows = 0
        self.entries = 0
        self.ledger: ImportLedger | None = None
        self.evaluator: LineEvaluator | None = None
        self.source_had_lines = True
        self._partners: dict[str, tuple | None] = {}
        self._members_by_code: dict[str, tuple | None] = {}
        self._members_by_email: dict[str, list[tuple]] = {}
        self._products: dict[str, tuple | None] = {}
        self._quantities: dict[str, Decimal | str] = {}
        self._dates: dict[str, date | str] = {}

    # -- the run -----------------------------------------------------------------------------------------

    def run(self) -> None:
        imp = self.imp
        SalesImport.objects.filter(pk=imp.pk).update(
            status=ImportStatus.RUNNING,
            started_at=timezone.now(),
            finished_at=None,
            total_rows=0,
            processed_rows=0,
            new_lines=0,
            duplicate_lines=0,
            error_rows=0,
            points_posted=0,
            errors=[],
            message="",
        )
        try:
            with imp.file.open("rb") as stream:
                table = self._open(stream)
                with table:
                    self._import(table)
        except FileProblem as exc:
            self._finish(ImportStatus.FAILED, f"{exc.message} Nothing was imported.")
        except Exception as exc:
            logger.exception("Sales import %s stopped", imp.pk)
            c = self.counts  # the transaction was rolled back: nothing of it stands
            c.new = c.duplicates = c.points = c.reversed = c.returns = c.shortfall = 0
            self._finish(
                ImportStatus.FAILED,
                f"The import stopped at line {self.counts.total + 1:,} because of an unexpected error "
                f"({type(exc).__name__}: {str(exc)[:120]}). Nothing of it was posted; import the file again.",
            )
        finally:
            self.error_file.close()
        imp.refresh_from_db()

    def _open(self, stream):
        size = getattr(self.imp.file, "size", None)
        _check_size(size)
        table = open_table(stream, name=self.imp.original_name, delimiter=self.source.delimiter, check_whole_file=True)
        problems = mapping_problems(self.mapping, table.header)
        if problems:
            table.close()
            raise FileProblem(" ".join(problems), "header_mismatch")
        if table.data_lines is not None and table.data_lines > MAX_LINES:
            table.close()
            raise FileProblem(
                f"The file has {table.data_lines:,} lines; the most one import takes is {MAX_LINES:,}. Split it "
                "into several files.",
                "too_many_lines",
            )
        return table

    def _import(self, table) -> None:
        imp = self.imp
        self.columns = {name: table.header.index(column) for name, column in self.mapping.items() if column}
        self.headings = {name: column for name, column in self.mapping.items() if column}
        self.width = max(self.columns.values()) + 1
        self.total_rows = table.data_lines or 0
        SalesImport.objects.filter(pk=imp.pk).update(total_rows=self.total_rows)
        rules = published_rules(self.program)
        self.evaluator = LineEvaluator(RuleIndex(rules))
        self.ledger = ImportLedger(
            self.program,
            sales_import_id=imp.pk,
            label=f"{self.source.name} ({imp.original_name})",
            budget_rule_ids=[rule.id for rule in rules if rule.budget_points is not None],
        )
        self.source_had_lines = SaleLine.objects.filter(source=self.source).exists()
        if PIPELINE and not connection.in_atomic_block:
            self._pipelined(self._batches(table))
        else:  # inside the caller's transaction (tests): one connection, the import is a savepoint
            with transaction.atomic():
                self._begin()
                for rows in self._batches(table):
                    self._write(self._prepare(rows))
                    self._progress()
                self._end()
        self._analyze()
        if self.counts.total == 0:
            raise FileProblem("The file has a header line but no lines below it.", "no_lines")
        self._finish(ImportStatus.DONE, self._message())

    def _batches(self, table) -> Iterator[list[tuple[int, list]]]:
        batch: list[tuple[int, list]] = []
        started = time.perf_counter()
        for item in table.rows():
            batch.append(item)
            if len(batch) >= BATCH_SIZE:
                self.stats.add("read", started)
                yield batch
                batch = []
                started = time.perf_counter()
        self.stats.add("read", started)
        if batch:
            yield batch

    def _pipelined(self, batches: Iterator[list]) -> None:
        """A writer thread (its own database connection, one transaction for the whole import) writes batch N
        while this thread reads, checks and evaluates batch N+1: the database and Python work at the same time.
        One batch waits at most. Progress is committed by this thread's connection."""
        handoff: queue.Queue = queue.Queue(maxsize=1)

        def write_all() -> None:
            try:
                with transaction.atomic():
                    self._begin()
                    while (batch := handoff.get()) is not None:
                        if batch is _STOP:
                            raise RuntimeError("the import was stopped while reading the file")
                        self._write(batch)
                    self._end()
            finally:
                connection.close()

        def hand_over(item) -> bool:
            """Queue an item for the writer; False when the writer has stopped (its error is raised later)."""
            while not writer.done():
                try:
                    handoff.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        # The writer mostly waits for the database; after each wait it needs the GIL back from this busy thread,
        # which by default hands it over only every 5 ms. A shorter interval keeps the database fed.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sales-import") as pool:
                writer = pool.submit(write_all)
                try:
                    for rows in batches:
                        if not hand_over(self._prepare(rows)):
                            break
                        self._progress()
                except BaseException:
                    hand_over(_STOP)
                    raise
                hand_over(None)
                writer.result()
        finally:
            sys.setswitchinterval(interval)

    def _progress(self) -> None:
        SalesImport.objects.filter(pk=self.imp.pk).update(
            processed_rows=self.counts.total, total_rows=max(self.total_rows, self.counts.total)
        )

    # -- one batch ---------------------------------------------------------------------------------------

    def _prepare(self, rows: list[tuple[int, list]]) -> _Prepared:
        """Read, check and match a batch, drop the lines already imported, and evaluate the rest (no writes)."""
        batch = _Prepared(errors=_Issues(self.headings))
        started = time.perf_counter()
        lines = self._parse(rows, batch)
        rows.clear()  # the raw cells are not needed any more
        self.counts.total += batch.total
        started = self.stats.add("parse", started)
        if self.source_had_lines:  # before matching: a file imported again costs little more than reading it
            lines = self._drop_imported(lines, batch)
        lines = self._match(lines, batch.errors)
        started = self.stats.add("match", started)
        shares = self.evaluator.shares
        for line in lines:
            if line.quantity > 0:
                line.shares = shares(line.partner_facts, line.member_facts, line.product_facts, line.invoice_date,
                                     line.quantity, line.amount)  # fmt: skip
        batch.lines = lines
        self.stats.add("evaluate", started)
        return batch

    def _drop_imported(self, lines: list[_Line], batch: _Prepared) -> list[_Line]:
        """The lines not imported before (committed ones: the writer checks again under its lock)."""
        with connection.cursor() as cursor:
            cursor.execute(
                _BY_EXTERNAL_ID.format(columns="s.external_id"),
                [[line.external_id for line in lines], self.source.pk],
            )
            imported = {row[0] for row in cursor.fetchall()}
        if not imported:
            return lines
        batch.duplicates += sum(1 for line in lines if line.external_id in imported)
        return [line for line in lines if line.external_id not in imported]

    def _begin(self) -> None:
        with connection.cursor() as cursor:
            source_import_lock(cursor, self.source.pk)
            self.ledger.begin(cursor)

    def _write(self, batch: _Prepared) -> None:
        """Write one batch in the import's transaction: its new lines with what each pays, its returns."""
        started = time.perf_counter()
        counts, errors = self.counts, batch.errors
        counts.duplicates += batch.duplicates
        positives = [line for line in batch.lines if line.quantity > 0]
        returns = [line for line in batch.lines if line.quantity < 0]
        new_lines = self._insert(positives)
        counts.duplicates += len(positives) - len(new_lines)
        counts.new += len(new_lines)
        started = self.stats.add("insert_lines", started)
        if returns:
            self._returns(returns, errors)
        started = self.stats.add("returns", started)
        self._confirm_claims(new_lines)
        started = self.stats.add("claims", started)
        counts.error_rows += errors.rows
        self._flush_errors(errors.items)

    def _end(self) -> None:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            result = self.ledger.finish(cursor)
        self.entries = result.entries
        self.counts.points = result.points_earned
        self.counts.reversed = result.points_reversed
        notes = _Issues(self.headings)
        for shortfall in result.shortfalls:
            self.counts.shortfall += shortfall.missing
            notes.add(
                shortfall.ref,
                "quantity",
                "",
                f"Return posted, but {shortfall.missing:,} of the {shortfall.wanted:,} points to take back were "
                f"already spent (account {shortfall.account_id}): only {shortfall.taken:,} were taken back.",
            )
        self._flush_errors(notes.items)
        self.stats.add("ledger", started)

    # -- parsing (no database) ---------------------------------------------------------------------------

    def _parse(self, rows: list[tuple[int, list]], batch: _Prepared) -> list[_Line]:
        columns, width = self.columns, self.width
        get = columns.get
        i_ext, i_partner, i_member = columns["external_id"], columns["partner"], get("member")
        i_sku, i_qty, i_amount = columns["sku"], columns["quantity"], columns["amount"]
        i_invoice, i_date, i_returns = get("invoice_number"), columns["invoice_date"], get("returns_external_id")
        decimal_comma, date_format = self.source.decimal_comma, self.source.date_format
        quantities, dates, seen = self._quantities, self._dates, self.seen
        latest = self.today + timedelta(days=1)
        lines = []
        issues = batch.errors
        batch.total = len(rows)
        for number, cells in rows:
            if isinstance(cells, CsvLineError):
                issues.row(number, "", "", f"The line cannot be read as CSV: {cells}.")
                continue
            if len(cells) < width:
                if any(_text(c) for c in cells):
                    issues.row(
                        number,
                        "",
                        "",
                        f"The line has {len(cells)} values; the columns mapped need {width} (a missing separator?).",
                    )
                    continue
                cells = list(cells) + [""] * (width - len(cells))
            problems = []
            external_id = _text(cells[i_ext])
            if not external_id:
                problems.append(("external_id", "", "is missing"))
            elif len(external_id) > 80 or (not external_id.isprintable() and _BAD_ID.search(external_id)):
                problems.append(
                    ("external_id", external_id, "must be at most 80 characters, without control characters")
                )
            elif external_id in seen:
                problems.append(
                    ("external_id", external_id, "appears more than once in this file: only its first line is imported")
                )
            else:
                seen.add(external_id)
            partner = _text(cells[i_partner])
            if not partner:
                problems.append(("partner", "", "is missing"))
            member = _text(cells[i_member]) if i_member is not None else ""
            sku = _text(cells[i_sku])
            if not sku:
                problems.append(("sku", "", "is missing"))
            raw = cells[i_qty]
            quantity = quantities.get(raw) if isinstance(raw, str) else None
            if quantity is None:
                quantity = _quantity(raw, decimal_comma)
                if isinstance(raw, str) and len(quantities) < 10_000:
                    quantities[raw] = quantity
            if isinstance(quantity, str):
                problems.append(("quantity", _text(raw), quantity))
            raw = cells[i_amount]
            try:
                amount = parse_decimal(raw, decimal_comma=decimal_comma)
                if amount.as_tuple().exponent < -2:
                    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
                if abs(amount) >= MAX_AMOUNT:
                    problems.append(("amount", _text(raw), "is too large"))
            except ValueError as exc:
                problems.append(("amount", _text(raw), str(exc)))
            raw = cells[i_date]
            day = dates.get(raw) if isinstance(raw, str) else None
            if day is None:
                try:
                    day = parse_date(raw, date_format=date_format)
                    if day > latest:
                        day = "is in the future"
                    elif day.year < 2000:
                        day = "is before 2000"
                except ValueError as exc:
                    day = str(exc)
                if isinstance(raw, str) and len(dates) < 100_000:
                    dates[raw] = day
            if isinstance(day, str):
                problems.append(("invoice_date", _text(raw), day))
            invoice = _text(cells[i_invoice]) if i_invoice is not None else ""
            if len(invoice) > 60:
                problems.append(("invoice_number", invoice, "must be at most 60 characters"))
            returns_id = _text(cells[i_returns]) if i_returns is not None else ""
            if returns_id and not isinstance(quantity, str) and quantity > 0:
                problems.append(("returns_external_id", returns_id, "is only for returns (a negative quantity)"))
            if problems:
                issues.rows += 1
                for name, value, reason in problems:
                    issues.add(number, name, value, reason)
                continue
            lines.append(_Line(number, external_id, partner, member, sku, quantity, amount, invoice, day, returns_id))
        return lines

    # -- matching partners, members and products (a few queries per batch) ---------------------------------

    def _match(self, lines: list[_Line], issues: _Issues) -> list[_Line]:
        self._load_partners({line.partner for line in lines} - self._partners.keys())
        self._load_products({line.sku for line in lines} - self._products.keys())
        codes, emails = set(), set()
        for line in lines:
            if line.member:
                if _is_member_code(line.member):
                    codes.add(line.member.upper())
                else:
                    emails.add(line.member.lower())
        self._load_members(codes - self._members_by_code.keys(), emails - self._members_by_email.keys())
        resolved: dict[tuple[str, int], tuple[tuple | None, str]] = {}
        good = []
        for line in lines:
            problems = []
            partner = self._partners.get(line.partner)
            if partner is None:
                problems.append(
                    ("partner", line.partner, "is not a partner's legal id nor a customer code of this source")
                )
            product = self._products.get(line.sku)
            if product is None:
                problems.append(("sku", line.sku, "is not a SKU of the catalogue"))
            member = None
            if line.member and partner is not None:
                found = resolved.get((line.member, partner[0]))
                if found is None:
                    found = resolved[(line.member, partner[0])] = self._member(line.member, partner)
                member, reason = found
                if reason:
                    problems.append(("member", line.member, reason))
            if problems:
                issues.rows += 1
                for name, value, reason in problems:
                    issues.add(line.line, name, value, reason)
                continue
            line.partner_facts, line.member_facts, line.product_facts = partner, member, product
            good.append(line)
        return good

    def _load_partners(self, codes: set[str]) -> None:
        if not codes:
            return
        found: dict[str, int] = {}
        for code, partner_id in PartnerAlias.objects.filter(source=self.source, code__in=codes).values_list(
            "code", "partner_id"
        ):
            found[code] = partner_id
        for legal_id, partner_id in Partner.objects.filter(legal_id__in=codes - found.keys()).values_list(
            "legal_id", "pk"
        ):
            found[legal_id] = partner_id
        facts = {}
        ids = set(found.values()) - {f[0] for f in self._partners.values() if f}
        if ids:
            tiers = {
                row.partner_id: (row.tier_id, row.tier.name, row.tier.multiplier)
                for row in PartnerTier.objects.filter(program=self.program, partner_id__in=ids).select_related("tier")
            }
            for pk, kind, region_id, payout in Partner.objects.filter(pk__in=ids).values_list(
                "pk", "kind", "region_id", "payout_policy"
            ):
                facts[pk] = (pk, kind, region_id, payout == PayoutPolicy.POOLED, tiers.get(pk))
        known = {f[0]: f for f in self._partners.values() if f}
        known.update(facts)
        for code in codes:
            self._partners[code] = known.get(found[code]) if code in found else None

    def _load_products(self, skus: set[str]) -> None:
        if not skus:
            return
        found = {
            sku: (pk, line_id)
            for sku, pk, line_id in Product.objects.filter(sku__in=skus).values_list("sku", "pk", "line_id")
        }
        for sku in skus:
            self._products[sku] = found.get(sku)

    def _load_members(self, codes: set[str], emails: set[str]) -> None:
        fields = ("pk", "partner_id", "status", "role__code", "role__name")
        if codes:
            ids = {int(code[1:]) for code in codes}
            found = {f"M{row[0]}": row for row in Member.objects.filter(pk__in=ids).values_list(*fields)}
            for code in codes:
                self._members_by_code[code] = found.get(f"M{int(code[1:])}")
        if emails:
            for email in emails:
                self._members_by_email[email] = []
            rows = (
                Member.objects.annotate(email_lower=Lower("user__email"))
                .filter(email_lower__in=emails)
                .values_list("email_lower", *fields)
            )
            for email, *row in rows:
                self._members_by_email[email].append(tuple(row))

    def _member(self, key: str, partner: tuple) -> tuple[tuple | None, str]:
        if _is_member_code(key):
            member = self._members_by_code.get(key.upper())
            if member is None:
                return None, "is not a member code"
            if member[1] != partner[0]:
                return None, "is the member code of someone at another partner"
        else:
            memberships = [m for m in self._members_by_email.get(key.lower(), ()) if m[1] == partner[0]]
            if not memberships:
                known = bool(self._members_by_email.get(key.lower()))
                return None, "works at another partner" if known else "is not the e-mail of a member"
            current = [m for m in memberships if m[2] != MemberStatus.LEFT]
            member = current[0] if current else memberships[0]
        if member[2] == MemberStatus.LEFT:
            return None, "has left this partner: leave the member column empty to credit the partner's account"
        return member, ""

    # -- writing -----------------------------------------------------------------------------------------

    def _insert(self, lines: list[_Line]) -> list[_Line]:
        """COPY the new lines, each with what it pays (caps and budgets applied in file order). A line that
        another import of the source committed after this batch was checked makes the COPY fail: the batch is
        then written again without the lines already there. Returns the lines written."""
        if not lines:
            return []
        covered = self._covered_by_claims(lines)  # a sale a claim reports is paid once, through the claim
        for line in lines:
            if line.external_id in covered:
                line.shares = ()
        snapshot = self.ledger.snapshot()
        with connection.cursor() as cursor:
            try:
                with transaction.atomic():
                    rows, paid = self._line_rows(cursor, lines)
                    copy_in(cursor, "loyalty_saleline", _LINE_COLUMNS, rows)
            except IntegrityError:
                self.ledger.restore(snapshot)
                cursor.execute(
                    _BY_EXTERNAL_ID.format(columns="s.external_id"),
                    [[line.external_id for line in lines], self.source.pk],
                )
                imported = {row[0] for row in cursor.fetchall()}
                if not imported:
                    raise
                lines = [line for line in lines if line.external_id not in imported]
                rows, paid = self._line_rows(cursor, lines)
                copy_in(cursor, "loyalty_saleline", _LINE_COLUMNS, rows)
        add = self.ledger.add
        for holder, points, is_new_line in paid:
            add(holder, points, is_new_line)
        return lines

    def _line_rows(self, cursor, lines: list[_Line]) -> tuple[list[str], list[tuple[tuple[str, int], int, bool]]]:
        """The lines in COPY's text format, and (beneficiary, points, first share of the line for it) of every
        share they pay."""
        ledger = self.ledger
        usage_keys = set()
        for line in lines:
            for share in line.shares:
                if share.cap_points is not None and line.member_facts is not None:
                    usage_keys.add(ledger.usage_keys(share, line.member_facts[0], line.invoice_date))
        usage_keys.discard(None)
        ledger.lock_usages(cursor, usage_keys)
        head = f"{self.source.pk}\t"
        middle = f"\t{self.imp.pk}\t"
        days: dict[date, str] = {}
        rows, paid = [], []
        for line in lines:
            partner_id = line.partner_facts[0]
            member = line.member_facts
            member_id = member[0] if member else None
            member_text = str(member_id) if member else "null"
            total, postings = 0, ""
            if line.shares:
                parts, holders = [], set()
                for share in line.shares:
                    points = share.points
                    if share.is_limited:
                        points = ledger.limit(share, member_id, line.invoice_date)
                    if points == share.points:
                        parts.append(f"{share.head}{member_text if share.to_member else 'null'}{share.tail}")
                    else:
                        text = f"{share.explanation} — limited to {points} by the rule's cap or budget"
                        parts.append(
                            f"[{share.rule_id},{member_text if share.to_member else 'null'},{points},{json_text(text)}]"
                        )
                    if points:
                        holder = ("m", member_id) if share.to_member else ("p", partner_id)
                        # A line counts once per account it pays, whatever the number of rules.
                        paid.append((holder, points, holder not in holders))
                        holders.add(holder)
                        total += points
                postings = copy_text("[" + ",".join(parts) + "]")
            day = days.get(line.invoice_date)
            if day is None:
                day = days[line.invoice_date] = line.invoice_date.isoformat()
            rows.append(
                f"{head}{copy_text(line.external_id)}{middle}{partner_id}\t{member_id if member else NULL}\t"
                f"{line.product_facts[0]}\t{line.quantity}\t{line.amount}\t{copy_text(line.invoice_number)}\t"
                f"{day}\t{NULL}\t{total}\t{postings}\n"
            )
        return rows, paid

    def _returns(self, returns: list[_Line], issues: _Issues) -> None:
        """Find each return's original line, refuse those that cannot be matched, and write the rest, each
        taking back its share of every posting of its original line (bulk_ledger.proportional)."""
        source_id = self.source.pk
        with connection.cursor() as cursor:
            cursor.execute(
                _BY_EXTERNAL_ID.format(columns="s.external_id"), [[line.external_id for line in returns], source_id]
            )
            already = {row[0] for row in cursor.fetchall()}
            returns = [line for line in returns if line.external_id not in already]
            self.counts.duplicates += len(already)
            by_id = [line.returns_external_id for line in returns if line.returns_external_id]
            originals: dict[str, tuple] = {}
            if by_id:
                cursor.execute(
                    _BY_EXTERNAL_ID.format(columns=_ORIGINAL_COLUMNS),
                    [by_id, source_id],
                )
                originals = {row[0]: row for row in cursor.fetchall()}
            by_invoice = [line for line in returns if not line.returns_external_id and line.invoice_number]
            candidates: dict[tuple, list[tuple]] = defaultdict(list)
            if by_invoice:
                cursor.execute(
                    f"SELECT {_ORIGINAL_COLUMNS}, s.invoice_number "
                    "FROM (SELECT DISTINCT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[])) "
                    "AS w(partner_id, invoice_number, product_id) CROSS JOIN LATERAL (SELECT * FROM loyalty_saleline "
                    "WHERE partner_id = w.partner_id AND invoice_number = w.invoice_number "
                    "AND product_id = w.product_id "
                    "AND source_id = %s AND quantity > 0 OFFSET 0) s ORDER BY s.id",
                    [
                        [line.partner_facts[0] for line in by_invoice],
                        [line.invoice_number for line in by_invoice],
                        [line.product_facts[0] for line in by_invoice],
                        source_id,
                    ],
                )
                for row in cursor.fetchall():
                    candidates[(row[2], row[7], row[3])].append(row[:7])
            original_ids = {row[1] for row in originals.values()} | {
                row[1] for rows in candidates.values() for row in rows
            }
            returned: dict[int, Decimal] = defaultdict(Decimal)
            if original_ids:
                cursor.execute(
                    "SELECT k.id, -SUM(s.quantity) FROM unnest(%s::bigint[]) AS k(id) CROSS JOIN LATERAL "
                    "(SELECT quantity FROM loyalty_saleline WHERE returns_line_id = k.id OFFSET 0) s GROUP BY k.id",
                    [sorted(original_ids)],
                )
                returned.update(cursor.fetchall())
        accepted: list[tuple[_Line, tuple, Decimal]] = []  # (return, original row, returned before)
        for line in returns:
            quantity = -line.quantity
            original, reason, column = None, "", "returns_external_id"
            if line.returns_external_id:
                original = originals.get(line.returns_external_id)
                if original is None:
                    reason = "is not the external id of a line imported from this source (before this line)"
                elif original[4] < 0:
                    original, reason = None, "is itself a return"
                elif original[2] != line.partner_facts[0]:
                    original, reason, column = None, "is not the partner of the returned line", "partner"
                elif original[3] != line.product_facts[0]:
                    original, reason, column = None, "is not the SKU of the returned line", "sku"
            elif not line.invoice_number:
                column = "returns_external_id" if "returns_external_id" in self.headings else "quantity"
                reason = "is a return without the returned line's external id or an invoice number to find it"
            else:
                options = candidates.get((line.partner_facts[0], line.invoice_number, line.product_facts[0]), [])
                original = next((o for o in options if o[4] - returned[o[1]] >= quantity), None)
                if original is None:
                    column = "invoice_number"
                    reason = (
                        "matches no earlier line of this source with the same partner, invoice number and SKU"
                        if not options
                        else "returns more than is left of the lines with the same partner, invoice number and SKU"
                    )
            if original is not None and original[4] - returned[original[1]] < quantity:
                left = original[4] - returned[original[1]]
                original, column = None, "quantity"
                reason = f"returns more than is left to return of the original line ({_number(left)} of it)"
            if original is None:
                issues.rows += 1
                value = {
                    "returns_external_id": line.returns_external_id,
                    "quantity": str(line.quantity),
                    "invoice_number": line.invoice_number,
                    "partner": line.partner,
                    "sku": line.sku,
                }[column]
                issues.add(line.line, column, value, reason)
                continue
            accepted.append((line, original, returned[original[1]]))
            returned[original[1]] += quantity
        if not accepted:
            return
        ledger = self.ledger
        rows = []
        for line, original, before in accepted:
            external_id, original_id, partner_id, _, quantity, original_import, postings = original
            returned = -line.quantity
            share = Return(returned=returned, original_quantity=quantity, returned_before=before)
            parts, total = [], 0
            text = f"Return of {_number(returned)} of {_number(quantity)} units of line {external_id}"
            for rule_id, member_id, points, _ in json.loads(postings) if postings else ():
                wanted = proportional(points, share) if points > 0 else 0
                if wanted <= 0:
                    continue
                holder = ("m", member_id) if member_id is not None else ("p", partner_id)
                ledger.add_return(original_import, holder, rule_id, wanted, line.line)
                parts.append(f"[{rule_id},{'null' if member_id is None else member_id},{-wanted},{json_text(text)}]")
                total -= wanted
            member = line.member_facts
            rows.append(
                f"{source_id}\t{copy_text(line.external_id)}\t{self.imp.pk}\t{line.partner_facts[0]}\t"
                f"{member[0] if member else NULL}\t{line.product_facts[0]}\t{line.quantity}\t{line.amount}\t"
                f"{copy_text(line.invoice_number)}\t{line.invoice_date.isoformat()}\t{original_id}\t{total}\t"
                f"{copy_text('[' + ','.join(parts) + ']') if parts else ''}\n"
            )
        with connection.cursor() as cursor:
            copy_in(cursor, "loyalty_saleline", _LINE_COLUMNS, rows)
        self.counts.new += len(rows)
        self.counts.returns += len(rows)

    def _covered_by_claims(self, lines: list[_Line]) -> set[str]:
        """External ids of new lines that a submitted or approved claim of this program already reports (same
        partner, invoice number, product and quantity; each claim line covers one sale line)."""
        normalise = getattr(_claims_module(), "normalise_invoice_number", None)
        if normalise is None:
            return set()
        partners = {line.partner_facts[0] for line in lines if line.invoice_number}
        claimed = Counter(
            ClaimLine.objects.filter(
                claim__program=self.program,
                claim__status__in=[ClaimStatus.SUBMITTED, ClaimStatus.APPROVED],
                claim__partner_id__in=partners,
            ).values_list("claim__partner_id", "claim__invoice_number", "product_id", "quantity")
        )  # claims are few next to sale lines: the partners' claim lines, then the lines of those partners
        if not claimed:
            return set()
        claiming = {key[0] for key in claimed}
        covered = set()
        for line in lines:
            if line.invoice_number and line.partner_facts[0] in claiming:
                key = (line.partner_facts[0], normalise(line.invoice_number), line.product_facts[0], line.quantity)
                if claimed[key] > 0:
                    claimed[key] -= 1
                    covered.add(line.external_id)
        return covered

    def _confirm_claims(self, lines: list[_Line]) -> None:
        """Hand the new lines that may confirm a waiting claim (same partner and invoice number) to
        claims.claims_confirm_by_sale_lines, in the import's transaction."""
        claims = _claims_module()
        confirm = getattr(claims, "claims_confirm_by_sale_lines", None)
        lines = [line for line in lines if line.invoice_number]
        if confirm is None or not lines:
            return
        normalise = getattr(claims, "normalise_invoice_number", None)
        if normalise is not None:
            # One query tells which (partner, invoice) pairs have a waiting claim; only those lines can match.
            waiting = set(
                SalesClaim.objects.filter(program=self.program, status=ClaimStatus.SUBMITTED).values_list(
                    "partner_id", "invoice_number"
                )
            )
            waiting_partners = {partner_id for partner_id, _ in waiting}
            lines = [
                line
                for line in lines
                if line.partner_facts[0] in waiting_partners
                and (line.partner_facts[0], normalise(line.invoice_number)) in waiting
            ]
        if lines:
            confirm(
                sale_lines=SaleLine.objects.filter(
                    source=self.source, external_id__in=[line.external_id for line in lines]
                ).order_by("pk")
            )

    # -- errors and the end ------------------------------------------------------------------------------

    def _analyze(self) -> None:
        """Keep the planner's statistics fresh while the tables grow (see bulk_ledger.refresh_statistics)."""
        if connection.in_atomic_block:
            return  # ANALYZE would hold its lock to the end of the caller's transaction
        started = time.perf_counter()
        try:
            refresh_statistics()
        except DatabaseError:  # not the tables' owner: autovacuum's statistics will have to do
            logger.warning("Could not refresh the planner statistics after a sales import.", exc_info=True)
        self.stats.add("analyze", started)

    def _flush_errors(self, items: list[dict] = ()) -> None:
        """A batch's errors in line order (they are found phase by phase), into the list and the file."""
        for error in sorted(items, key=lambda error: error["line"]):
            self.error_writer.writerow([error["line"], error["column"], _safe_cell(error["value"]), error["reason"]])
            if len(self.errors) < MAX_STORED_ERRORS:
                self.errors.append(error)

    def _message(self) -> str:
        c = self.counts
        text = (
            f"{c.total:,} {'line' if c.total == 1 else 'lines'}: {c.new:,} new, {c.duplicates:,} already imported, "
            f"{c.error_rows:,} with errors; {c.points:,} points posted"
        )
        if c.returns:
            text += f"; {c.returns:,} {'return' if c.returns == 1 else 'returns'} took back {c.reversed:,} points"
        if c.shortfall:
            text += f" ({c.shortfall:,} points could not be taken back: already spent, see the errors)"
        text += "."
        if c.new == 0 and c.duplicates and not c.error_rows:
            text += " Nothing new: every line of this file was already imported."
        elif c.new == 0 and c.error_rows == c.total:
            text += " Every line has errors: check the source's column mapping and formats."
        if self.resumed:
            text += " (Run again after an interruption.)"
        return text

    def _finish(self, status: str, message: str) -> None:
        stored = self._store_errors()
        SalesImport.objects.filter(pk=self.imp.pk).update(
            status=status,
            message=message[:500],
            finished_at=timezone.now(),
            processed_rows=self.counts.total,
            total_rows=self.counts.total if status == ImportStatus.DONE else max(self.counts.total, self.total_rows),
            new_lines=self.counts.new,
            duplicate_lines=self.counts.duplicates,
            error_rows=self.counts.error_rows,
            points_posted=self.counts.points,
            errors=self.errors,
        )
        if not stored:
            _errors_storage().delete(_errors_name(self.imp))

    def _store_errors(self) -> bool:
        """Keep every error (not only the first MAX_STORED_ERRORS) for errors_csv."""
        name = _errors_name(self.imp)
        if len(self.errors) < MAX_STORED_ERRORS:
            return False
        self.error_file.flush()
        self.error_file.seek(0)
        storage = _errors_storage()
        storage.delete(name)
        storage.save(name, File(io.BytesIO(self.error_file.read().encode("utf-8"))))
        return True


def _claims_module():
    try:
        from loyalty.services import claims
    except ImportError:  # the claims service is optional
        return None
    return claims


def _text(value) -> str:
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _quantity(raw, decimal_comma: bool) -> Decimal | str:
    """The quantity, or the reason it is refused."""
    try:
        quantity = parse_decimal(raw, decimal_comma=decimal_comma)
    except ValueError as exc:
        return str(exc)
    if quantity == 0:
        return "is zero"
    if quantity.as_tuple().exponent < -3 and quantity != quantity.quantize(Decimal("0.001")):
        return "has more than 3 decimals"
    if abs(quantity) >= MAX_QUANTITY:
        return "is too large"
    return quantity


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _is_member_code(text: str) -> bool:
    return len(text) > 1 and text[0] in "Mm" and text[1:].isdigit() and "@" not in text


def _safe_cell(value: str) -> str:
    """A value from an uploaded file, defused for spreadsheets (no formulas)."""
    if value[:1] in ("=", "+", "@", "\t", "\r") or (value[:1] == "-" and not _looks_numeric(value)):
        return "'" + value
    return value


def _looks_numeric(value: str) -> bool:
    return bool(re.fullmatch(r"-?[\d.,  ]+", value))


def _errors_storage():
    """The full error lists quote the files' values (customer codes, e-mails): private storage, no URL."""
    try:
        from loyalty.common.storage import private_storage
    except ImportError:  # pragma: no cover - the private storage came with the claims
        return default_storage
    return private_storage()


def _errors_name(sales_import: SalesImport) -> str:
    return f"{ERRORS_DIR}/sales-import-{sales_import.pk}.csv"


def errors_csv(sales_import: SalesImport) -> Iterator[str]:
    """Every refused line as CSV text lines (line, column, value, reason), header first."""
    name, storage = _errors_name(sales_import), _errors_storage()
    if storage.exists(name):
        with storage.open(name, "rb") as stored:
            yield from io.TextIOWrapper(stored, encoding="utf-8", newline="")
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["line", "column", "value", "reason"])
    yield buffer.getvalue()
    for error in sales_import.errors or []:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(
            [error.get("line"), error.get("column"), _safe_cell(str(error.get("value", ""))), error.get("reason")]
        )
        yield buffer.getvalue()
