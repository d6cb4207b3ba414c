"""Running a sell-out import: check an uploaded file, queue it, and run it batch by batch to the end.

Service API (everything raises ApplicationError with a message to show as is):

    read_header(file, *, source) -> list[str]    the column headings of an uploaded file (CSV or XLSX); refuses
                                                 empty, binary, undecodable, single-column and too big files
    source_last_header(*, source)                the headings of the source's last uploaded file, and that import
    import_start(*, source, uploaded_file, user) -> SalesImport
                                                 check the file against the saved mapping, store it, and queue
                                                 loyalty.tasks.sellout.run_sales_import after commit (status "queued")
    import_run(import_id, *, stats=None) -> SalesImport
                                                 the task's body (see below); safe to call twice (a finished
                                                 import is left alone, a running one too: advisory lock)
    import_lines(*, source, rows, by, ...) -> BatchImported
                                                 up to MAX_BATCH_LINES typed lines (parse.SaleRow, the API's) as
                                                 one import of the source, run at once in the caller's request,
                                                 with what became of each line (accepted, duplicate, error)

One batch of lines goes: formats.py reads the rows -> parse.py types and checks them -> match.py finds partners,
members and products -> engine.bulk.LineEvaluator prices them -> write.py COPYs the new lines (returns.py the
returns) and the import's ledger (services.ledger_bulk.ImportLedger) posts them -> errors.py keeps the bad rows.

What import_run does, and what the admin can rely on:
- Whole-file problems (empty file, undecodable bytes anywhere in it, a single column, a heading of the mapping
  missing, too many lines) are found before the first line is posted: status "failed", `message` says why,
  nothing changed. Extra, unmapped columns are fine.
- The whole import is one transaction: its lines and points are posted all together or not at all (a
  failure half-way posts nothing, and importing the file again posts it all). Lines are read as a stream in
  batches of BATCH_SIZE; after each batch `processed_rows` / `total_rows` are committed (from another
  connection), so a progress bar can poll `SalesImport.percent_done`. Imports of one program run one at a time,
  and claims of the program are approved between them (transaction-level advisory locks: one sale pays once).
- Every line is validated (parse.py, match.py); a bad line is never posted and is listed with its line number
  (the header is line 1; for XLSX the sheet's row number), the column heading, the value and the reason. The
  first MAX_STORED_ERRORS are in `errors`; errors_csv gives them all.
- Idempotent per (source, external id): a line already imported (by any earlier import of the source) is
  counted in `duplicate_lines` and posts nothing; the same external id twice in one file: the second is an
  error. External ids, invoice numbers, SKUs, legal ids and aliases are compared by their matching keys
  (loyalty.common.keys: case, spaces, dashes and invisible characters aside). Importing the same file twice posts
  nothing the second time and the message says so.
- One sale pays once (selectors.one_sale): a line pays for what the largest report of its sale (partner, invoice,
  product: each source's lines, or the partner's approved claims) leaves unpaid (write.py).
- Good lines go through the same engine as earning.post_event (engine.evaluate, caps and budgets through
  engine.limit in file order from locked rows), via engine.bulk.LineEvaluator and ledger_bulk.ImportLedger:
  each line stores what it paid (`SaleLine.points` and `postings`, with the arithmetic), and the ledger gets
  one entry per account and import (`sales-import:{import id}:m{member id}` or `:p{partner id}`), whose
  points are the sum of its lines' postings (docs/decisions.md #9).
- A negative quantity is a return (returns.py): it takes back its share of every posting its original line
  made. If the member already spent the points, the return is posted, what is there is taken back, and the
  shortfall is listed in `errors` (the line counts as new, not as an error) and in the message.
- New lines with an invoice number confirm matching waiting claims in the same transaction (write.py).
- Speed: outside a transaction, batch N is written while batch N+1 is prepared (pipeline.py); inside one (tests)
  batches run one after the other in a savepoint. Lines go in with COPY; a line another import committed
  meanwhile makes the COPY fail and the batch is written again without it. The planner statistics are
  refreshed when stale. Memory is bounded by two batches in flight plus the external ids seen. `make bench`
  (bench/sellout.py) measures it on 1,000,000 lines.
- `status` ends "done" (with a message like "1,000,000 lines: 999,800 new, 0 already imported, 200 with
  errors; 12,345,678 points posted") or "failed" (whole-file problem, or an unexpected error: nothing of the
  import is posted, and importing the file again posts it all). "done" is recorded in the import's own
  transaction, with its lines; either way the domain event "import.finished" (loyalty.common.events) is published
  once, in the transaction that records the outcome.

import_lines (the API's sell-out batches) runs the same steps on rows that need no file: one import of the source
(uploaded_by: `by`, no file), in one transaction of the caller's connection (no writer thread: a batch is small),
which first waits at most BATCH_LOCK_WAIT_MS for the source's and the program's import locks (ErrorCode.RULES_BUSY
and nothing recorded when another import holds them longer). A client bound to a distributor passes
`distributor_id`: lines of other partners than it and its dealers are refused. Each line's outcome comes back in
the rows' order: "accepted" (with the points it paid, negative for a return), "duplicate" (already imported from
the source: posts nothing) or "error" (every reason, as the file import lists them, with its LineCode). The
notices, tier upgrades and waiting claims follow as after a file.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import File
from django.db import DatabaseError, connection, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from communications.constants import Kind
from communications.services import Notice, notify_many
from loyalty.common.background import enqueue_on_commit
from loyalty.common.errors import ApplicationError
from loyalty.common.events import publish
from loyalty.common.keys import matching_key
from loyalty.constants import EntryKind, EntrySource, ImportStatus
from loyalty.engine.bulk import LineEvaluator, RuleIndex
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import (
    LockNotAvailable,
    api_imports_to_follow_up_lock,
    import_run_try_lock,
    import_run_unlock,
    lock_wait_at_most,
    sales_paid_lock,
    source_import_lock,
)
from loyalty.models import PointsEntry, SaleLine, SalesImport, SalesSource
from loyalty.selectors.certificates import certificate_spans
from loyalty.services import challenges, claims
from loyalty.services.earning import post_event, published_rules
from loyalty.services.ledger_bulk import ImportLedger, refresh_statistics
from loyalty.services.sellout.errors import ErrorLog, Issues, LineCode, errors_discard
from loyalty.services.sellout.formats import FileProblem, TableFile, open_table
from loyalty.services.sellout.mapping import (
    mapping_missing,
    mapping_problems,
)
from loyalty.services.sellout.match import Matcher
from loyalty.services.sellout.parse import ROW_COLUMNS, Line, LineParser, SaleRow, columns_of
from loyalty.services.sellout.pipeline import run_pipelined
from loyalty.services.sellout.returns import returns_post
from loyalty.services.sellout.write import BY_EXTERNAL_KEY, LineWriter, imported_ids
from loyalty.services.tiers import tiers_evaluate_all

# The import's whole service API in one place; mapping's and errors' functions are re-exported for that.
logger = logging.getLogger(__name__)

BATCH_SIZE = getattr(settings, "SALES_IMPORT_BATCH_SIZE", 50_000)
MAX_FILE_BYTES = getattr(settings, "SALES_IMPORT_MAX_BYTES", 1024 * 1024 * 1024)
MAX_LINES = getattr(settings, "SALES_IMPORT_MAX_LINES", 5_000_000)
MAX_STORED_ERRORS = 1000
# Read and evaluate the next batch while the previous one is written (a second database connection).
PIPELINE = getattr(settings, "SALES_IMPORT_PIPELINE", True)
MAX_BATCH_LINES = 1_000  # import_lines: lines per call
BATCH_LOCK_WAIT_MS = 20_000  # import_lines: how long a batch waits for another import of its program
BUSY_RETRY_SECONDS = 5


# Checking and starting ------------------------------------------------------------------------------------------


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


def source_last_header(*, source: SalesSource) -> tuple[list[str], SalesImport | None]:
    """The non-empty headings of the source's last uploaded file, and its import ([] when the file cannot be
    read; [] and None when nothing was uploaded yet)."""
    latest = source.imports.order_by("-created_at", "-id").first()
    if latest is None or not latest.file:
        return [], None
    try:
        with latest.file.open("rb") as stored:
            return [h for h in read_header(stored, source=source) if h], latest
    except (ApplicationError, OSError, ValueError):
        return [], latest


def _check_size(size: int | None) -> None:
    if size is not None and size > MAX_FILE_BYTES:
        raise FileProblem(
            f"The file is {size / 1024 / 1024:,.0f} MB; the most one import takes is "
            f"{MAX_FILE_BYTES / 1024 / 1024:,.0f} MB. Split it into several files (the lines already imported "
            "are skipped, so overlapping files are fine).",
            ErrorCode.FILE_TOO_BIG,
        )


def import_start(*, source: SalesSource, uploaded_file, user) -> SalesImport:
    """Check the file against the source's saved mapping, store it and queue the import after commit."""
    mapping = source.column_mapping or {}
    missing = mapping_missing(mapping)
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
        _after_run(sales_import, run)
        if stats is not None:
            stats.update(run.stats.seconds)
            stats["entries"] = run.entries
        return sales_import
    finally:
        import_run_unlock(import_id)


def _after_run(sales_import: SalesImport, run: _Run, *, follow_up_now: bool = True) -> None:
    """What follows a finished import, once its transaction has committed. A file's import tells its members and
    evaluates the tiers now; API batches (`follow_up_now` False) leave that to api_imports_follow_up, which does it
    for all the batches of a source within FOLLOW_UP_SECONDS in one go."""
    sales_import.refresh_from_db(fields=["status", "new_lines"])
    if sales_import.status == ImportStatus.DONE and sales_import.new_lines:
        if not follow_up_now:
            _schedule_follow_up(sales_import.source_id)
        else:
            notify_import_digest(sales_import)
            # New sales can lift partners into a higher tier: upgrades happen at once, not at the daily review.
            started = time.perf_counter()
            tiers_evaluate_all(program=sales_import.source.program)
            run.stats.add("tiers", started)
    if sales_import.status == ImportStatus.DONE:
        # Claims left waiting while this import held the rules' locks are approved now, as they would have been.
        claims.claims_auto_approve_waiting(program=sales_import.source.program)


# Lines sent through the API -------------------------------------------------------------------------------------


class LineResult:
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    ERROR = "error"


@dataclass(frozen=True)
class LineOutcome:
    """What became of one line of a batch: `points` it paid (accepted lines; negative for a return), `errors`
    ({"field", "code", "reason"}) why it was refused."""

    index: int
    external_id: str
    result: str  # LineResult
    points: int | None = None
    errors: tuple[dict, ...] = ()


@dataclass(frozen=True)
class BatchImported:
    sales_import: SalesImport
    lines: list[LineOutcome]

    def count(self, result: str) -> int:
        return sum(1 for line in self.lines if line.result == result)


def import_lines(
    *,
    source: SalesSource,
    rows: Sequence[SaleRow],
    by,
    name: str = "",
    distributor_id: int | None = None,
    lock_wait_ms: int | None = None,
) -> BatchImported:
    """Import 1 to MAX_BATCH_LINES lines as one import of `source` (named `name`, by the user `by`), now, in one
    transaction; with `distributor_id`, only lines of that partner and its dealers are taken. The import ends
    "done", or "failed" after an unexpected error (nothing posted; its message says why). Raises ApplicationError
    (nothing recorded) for no lines or too many, and RULES_BUSY (with extra["retry_after"]) when another import
    of the program holds its locks longer than `lock_wait_ms` (default BATCH_LOCK_WAIT_MS)."""
    if not rows:
        raise ApplicationError("A batch needs at least one line.", ErrorCode.NO_LINES)
    if len(rows) > MAX_BATCH_LINES:
        raise ApplicationError(
            f"A batch has at most {MAX_BATCH_LINES:,} lines; this one has {len(rows):,}.", ErrorCode.TOO_MANY_LINES
        )
    with transaction.atomic():
        try:
            wait = BATCH_LOCK_WAIT_MS if lock_wait_ms is None else lock_wait_ms
            with lock_wait_at_most(wait), connection.cursor() as cursor:
                source_import_lock(cursor, source.pk)  # the order _Run._begin takes them in
                sales_paid_lock(source.program_id, exclusive=True)
        except LockNotAvailable:
            raise ApplicationError(
                "Another sell-out import of this program is running: send the batch again in a moment (nothing "
                "of it was posted).",
                ErrorCode.RULES_BUSY,
                extra={"retry_after": BUSY_RETRY_SECONDS},
            ) from None
        sales_import = SalesImport(source=source, original_name=(name or "API batch")[:255], uploaded_by=by)
        sales_import.full_clean(exclude=["file"])  # the lines came without a file
        sales_import.save()
        run = _Run(sales_import, distributor_id=distributor_id, keep_issues=True)
        run.run_rows(rows)
        outcomes = run.outcomes(rows)
    run._analyze()
    _after_run(sales_import, run, follow_up_now=False)
    sales_import.refresh_from_db()
    return BatchImported(sales_import, outcomes)


# An ERP sends a big feed as a stream of batches: telling each member once per batch would send them hundreds of
# messages, and evaluating every partner's tier after each batch would cost more than the batch. So the first batch
# of a source schedules the follow-up FOLLOW_UP_SECONDS later, and it covers every batch done by then.
FOLLOW_UP_SECONDS = getattr(settings, "SALES_API_FOLLOW_UP_SECONDS", 60)


def _follow_up_key(source_id: int) -> str:
    return f"sellout:api-follow-up:{source_id}"


def _schedule_follow_up(source_id: int) -> None:
    if cache.add(_follow_up_key(source_id), 1, FOLLOW_UP_SECONDS * 2):
        enqueue_on_commit("loyalty.tasks.follow_up_api_imports", source_id, countdown=FOLLOW_UP_SECONDS)


def api_imports_follow_up(source_id: int) -> int:
    """Tell the members of the source's API batches not followed up yet what they earned, one message each for
    all of them, and evaluate the program's tiers once (the task's body). Returns the number of batches."""
    cache.delete(_follow_up_key(source_id))  # a batch arriving from now on schedules the next follow-up
    with transaction.atomic():
        imports = api_imports_to_follow_up_lock(source_id)
        if not imports:
            return 0
        SalesImport.objects.filter(pk__in=[i.pk for i in imports]).update(followed_up_at=timezone.now())
        notify_imports_digest(imports)
    tiers_evaluate_all(program=imports[0].source.program)
    return len(imports)


def notify_import_digest(sales_import: SalesImport) -> None:
    """One message per member who earned points in the import (their one entry of it), never one per line, with a
    tip about the product line of the member's own sold lines that paid the most."""
    notify_imports_digest([sales_import])


def notify_imports_digest(imports: Sequence[SalesImport]) -> None:
    """One message per member who earned points in any of `imports` (their entries of them summed), with the tip
    of notify_import_digest. Its key names the imports, so telling the same ones again sends nothing."""
    totals: dict[int, list[int]] = {}
    entries = PointsEntry.objects.filter(
        source_type=EntrySource.SALES_IMPORT,
        source_id__in=[str(i.pk) for i in imports],
        kind=EntryKind.EARN,
        account__member__isnull=False,
    ).values_list("account__member_id", "available_delta", "pending_delta", "details")
    for member_id, available, pending, details in entries:
        points, lines = totals.setdefault(member_id, [0, 0])
        totals[member_id] = [points + available + pending, lines + details["lines"]]
    product_lines = _top_product_lines(imports)
    first, last = imports[0].pk, imports[-1].pk
    key = f"sales_import:{first}" if first == last else f"sales_import:{first}-{last}"
    notices = [
        Notice(member_id, key, {"points": points, "lines": lines, "product_line": product_lines.get(member_id, "")})
        for member_id, (points, lines) in sorted(totals.items())
    ]
    notify_many(kind=Kind.POINTS_IMPORTED, notices=notices, link_path=reverse("points_statement"))


def _top_product_lines(imports: Sequence[SalesImport]) -> dict[int, str]:
    """{member id: the code of the product line whose lines of the imports that member sold paid the most points},
    in one statement over the imports' lines (ties: the first code alphabetically). A member paid only through a
    colleague's line (a share) has none."""
    paid_by_line = (
        SaleLine.objects.filter(sales_import__in=imports, member__isnull=False, points__gt=0)
        .values_list("member_id", "product__line__code")
        .annotate(paid=Sum("points"))
        .order_by("member_id", "-paid", "product__line__code")
    )
    top: dict[int, str] = {}
    for member_id, line_code, _paid in paid_by_line:
        top.setdefault(member_id, line_code)  # the first row of each member is its best line
    return top


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


@dataclass
class _Prepared:
    """A batch read, checked, matched and evaluated, waiting to be written."""

    errors: Issues
    lines: list[Line] = field(default_factory=list)
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
    """One run of one import: opens the file (or takes the rows given), hands each batch through the steps (see
    the module docstring) and records the outcome on the import."""

    def __init__(
        self,
        sales_import: SalesImport,
        *,
        resumed: bool = False,
        distributor_id: int | None = None,
        keep_issues: bool = False,
    ):
        self.imp = sales_import
        self.source = sales_import.source
        self.program = self.source.program
        self.mapping = self.source.column_mapping or {}
        self.resumed = resumed
        self.counts = _Counts()
        self.errors = ErrorLog(limit=MAX_STORED_ERRORS)
        self.stats = _Stats()
        self.total_rows = 0
        self.entries = 0
        self.ledger: ImportLedger | None = None
        self.evaluator: LineEvaluator | None = None
        self.parser: LineParser | None = None
        self.matcher = Matcher(source=self.source, program=self.program, distributor_id=distributor_id)
        self.writer: LineWriter | None = None
        self.headings: dict[str, str] = {}
        self.source_had_lines = True
        self.issues: list[dict] | None = [] if keep_issues else None  # every error item (for outcomes())

    # -- the run -----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Import the import's file."""
        self._guarded(self._import_file)

    def run_rows(self, rows: Sequence[SaleRow]) -> None:
        """Import typed rows (their positions are the line numbers), in the caller's transaction."""
        self.headings = {name: name for name in ROW_COLUMNS}

        def body() -> None:
            with transaction.atomic():  # whatever fails, the caller's transaction can still record the outcome
                self._import(
                    columns=ROW_COLUMNS, rows=enumerate(rows), total_rows=len(rows), unit="batch", pipelined=False
                )

        self._guarded(body)

    def _guarded(self, body: Callable[[], None]) -> None:
        """Run the import's body; any failure is recorded as the import's outcome ("failed")."""
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
            body()
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
            self.errors.close()
        imp.refresh_from_db()

    def _import_file(self) -> None:
        with self.imp.file.open("rb") as stream:
            table = self._open(stream)
            with table:
                self.headings = {name: column for name, column in self.mapping.items() if column}
                self._import(
                    columns=columns_of(table.header, self.mapping),
                    rows=table.rows(),
                    total_rows=table.data_lines or 0,
                    decimal_comma=self.source.decimal_comma,
                    date_format=self.source.date_format,
                )

    def _open(self, stream) -> TableFile:
        """The file as a table, once the whole-file checks pass (FileProblem: nothing is imported)."""
        size = getattr(self.imp.file, "size", None)
        _check_size(size)
        table = open_table(stream, name=self.imp.original_name, delimiter=self.source.delimiter, check_whole_file=True)
        problems = mapping_problems(self.mapping, table.header)
        if problems:
            table.close()
            raise FileProblem(" ".join(problems), ErrorCode.HEADER_MISMATCH)
        if table.data_lines is not None and table.data_lines > MAX_LINES:
            table.close()
            raise FileProblem(
                f"The file has {table.data_lines:,} lines; the most one import takes is {MAX_LINES:,}. Split it "
                "into several files.",
                ErrorCode.TOO_MANY_LINES,
            )
        return table

    def _import(
        self,
        *,
        columns: dict[str, int],
        rows: Iterable[tuple[int, Sequence]],
        total_rows: int,
        decimal_comma: bool = False,
        date_format: str = "",
        unit: str = "file",
        pipelined: bool = PIPELINE,
    ) -> None:
        """Import the rows ((line number, cells), cells in `columns`): batch after batch, one transaction."""
        imp = self.imp
        self.parser = LineParser(
            columns=columns, today=timezone.localdate(), decimal_comma=decimal_comma, date_format=date_format, unit=unit
        )
        self.total_rows = total_rows
        SalesImport.objects.filter(pk=imp.pk).update(total_rows=self.total_rows)
        rules = published_rules(self.program)
        self.evaluator = LineEvaluator(RuleIndex(rules))
        self.ledger = ImportLedger(
            self.program,
            sales_import_id=imp.pk,
            label=f"{self.source.name} ({imp.original_name})",
            budget_rule_ids=[rule.id for rule in rules if rule.budget_points is not None],
        )
        self.writer = LineWriter(
            source=self.source, program=self.program, import_id=imp.pk, ledger=self.ledger, evaluator=self.evaluator
        )
        self.source_had_lines = SaleLine.objects.filter(source=self.source).exists()
        if pipelined and not connection.in_atomic_block:
            run_pipelined(
                self._batches(rows),
                prepare=self._prepare,
                write=self._write,
                begin=self._begin,
                end=self._end,
                after_each=self._progress,
            )
        else:  # inside the caller's transaction (tests, API batches): one connection, the import is a savepoint
            with transaction.atomic():
                self._begin()
                for batch in self._batches(rows):
                    self._write(self._prepare(batch))
                    self._progress()
                self._end()
        self._analyze()
        if self.counts.total == 0:  # _end has recorded the outcome otherwise
            raise FileProblem("The file has a header line but no lines below it.", ErrorCode.NO_LINES)

    def _batches(self, rows: Iterable[tuple[int, Sequence]]) -> Iterator[list[tuple[int, Sequence]]]:
        batch: list[tuple[int, Sequence]] = []
        started = time.perf_counter()
        for item in rows:
            batch.append(item)
            if len(batch) >= BATCH_SIZE:
                self.stats.add("read", started)
                yield batch
                batch = []
                started = time.perf_counter()
        self.stats.add("read", started)
        if batch:
            yield batch

    def _progress(self) -> None:
        SalesImport.objects.filter(pk=self.imp.pk).update(
            processed_rows=self.counts.total, total_rows=max(self.total_rows, self.counts.total)
        )

    # -- one batch ---------------------------------------------------------------------------------------

    def _prepare(self, rows: list[tuple[int, list]]) -> _Prepared:
        """Parse and match a batch, drop the lines already imported, and evaluate the rest (no writes)."""
        batch = _Prepared(errors=Issues(self.headings), total=len(rows))
        started = time.perf_counter()
        lines = self.parser.parse(rows, batch.errors)
        rows.clear()  # the raw cells are not needed any more
        self.counts.total += batch.total
        started = self.stats.add("parse", started)
        if self.source_had_lines:  # before matching: a file imported again costs little more than reading it
            lines = self._drop_imported(lines, batch)
        lines = self.matcher.match(lines, batch.errors)
        started = self.stats.add("match", started)
        self._know_certificates(lines)
        shares = self.evaluator.shares
        for line in lines:
            if line.quantity > 0:
                line.shares = shares(line.partner_facts, line.member_facts, line.product_facts, line.invoice_date,
                                     line.quantity, line.amount)  # fmt: skip
        batch.lines = lines
        self.stats.add("evaluate", started)
        return batch

    def _know_certificates(self, lines: list[Line]) -> None:
        """Tell the evaluator the certificates of the batch's sellers it does not know yet: one query per batch,
        and none when no rule requires a certificate."""
        evaluator = self.evaluator
        unknown = evaluator.unknown_members({line.member_facts.id for line in lines if line.member_facts is not None})
        if unknown:
            spans = certificate_spans(member_ids=unknown, line_ids=evaluator.certification_lines)
            evaluator.know_certificates(unknown, spans)

    def _drop_imported(self, lines: list[Line], batch: _Prepared) -> list[Line]:
        """The lines not imported before (committed ones: the writer checks again under its lock)."""
        with connection.cursor() as cursor:
            imported = imported_ids(
                cursor, source_id=self.source.pk, external_keys=[line.external_key for line in lines]
            )
        if not imported:
            return lines
        batch.duplicates += sum(1 for line in lines if line.external_key in imported)
        return [line for line in lines if line.external_key not in imported]

    def _begin(self) -> None:
        with connection.cursor() as cursor:
            source_import_lock(cursor, self.source.pk)
            sales_paid_lock(self.program.pk, exclusive=True)  # one sale pays once: no other payer until the end
            self.ledger.begin(cursor)

    def _write(self, batch: _Prepared) -> None:
        """Write one batch in the import's transaction: its new lines with what each pays, its returns."""
        started = time.perf_counter()
        counts, errors = self.counts, batch.errors
        counts.duplicates += batch.duplicates
        positives = [line for line in batch.lines if line.quantity > 0]
        returns = [line for line in batch.lines if line.quantity < 0]
        new_lines = self.writer.insert(positives)
        counts.duplicates += len(positives) - len(new_lines)
        counts.new += len(new_lines)
        started = self.stats.add("insert_lines", started)
        self.writer.confirm_claims()  # before the returns: a line returned in the same batch has its postings
        started = self.stats.add("claims", started)
        # The running challenges count the batch's new lines for what each pays (a fixed number of statements).
        challenges.record_sale_lines(program=self.program, lines=new_lines, post_event=post_event)
        started = self.stats.add("challenges", started)
        if returns:
            posted = returns_post(
                returns,
                source_id=self.source.pk,
                import_id=self.imp.pk,
                ledger=self.ledger,
                issues=errors,
                returns_column_mapped="returns_external_id" in self.headings,
            )
            counts.duplicates += posted.already_imported
            counts.new += posted.written
            counts.returns += posted.written
        started = self.stats.add("returns", started)
        counts.error_rows += errors.rows
        self.errors.add(errors.items)
        if self.issues is not None:
            self.issues += errors.items

    def _end(self) -> None:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            result = self.ledger.finish(cursor)
        self.entries = result.entries
        self.counts.points = result.points_earned
        self.counts.reversed = result.points_reversed
        notes = Issues(self.headings)
        for shortfall in result.shortfalls:
            self.counts.shortfall += shortfall.missing
            notes.add(
                shortfall.ref,
                "quantity",
                "",
                f"Return posted, but {shortfall.missing:,} of the {shortfall.wanted:,} points to take back were "
                f"already spent (account {shortfall.account_id}): only {shortfall.taken:,} were taken back.",
                LineCode.ALREADY_SPENT,
            )
        self.errors.add(notes.items)
        self.stats.add("ledger", started)
        if self.counts.total:  # done: recorded in the import's transaction, with its lines
            self._finish(ImportStatus.DONE, self._message())

    # -- the end -----------------------------------------------------------------------------------------

    def _analyze(self) -> None:
        """Keep the planner's statistics fresh while the tables grow (see ledger_bulk.refresh_statistics)."""
        if connection.in_atomic_block:
            return  # ANALYZE would hold its lock to the end of the caller's transaction
        started = time.perf_counter()
        try:
            refresh_statistics()
        except DatabaseError:  # not the tables' owner: autovacuum's statistics will have to do
            logger.warning("Could not refresh the planner statistics after a sales import.", exc_info=True)
        self.stats.add("analyze", started)

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
            what = "file" if self.imp.file else "batch"
            text += f" Nothing new: every line of this {what} was already imported."
        elif c.new == 0 and c.error_rows == c.total:
            text += " Every line has errors: check the source's column mapping and formats."
        if self.resumed:
            text += " (Run again after an interruption.)"
        return text

    def _finish(self, status: str, message: str) -> None:
        """Record the outcome and tell whoever listens ("import.finished"), in one transaction."""
        stored = self.errors.store(self.imp)  # every error, for errors_csv, when the import keeps only the first
        c = self.counts
        total_rows = c.total if status == ImportStatus.DONE else max(c.total, self.total_rows)
        with transaction.atomic():
            SalesImport.objects.filter(pk=self.imp.pk).update(
                status=status,
                message=message[:500],
                finished_at=timezone.now(),
                processed_rows=c.total,
                total_rows=total_rows,
                new_lines=c.new,
                duplicate_lines=c.duplicates,
                error_rows=c.error_rows,
                points_posted=c.points,
                errors=self.errors.items,
            )
            publish(
                "import.finished",
                program_id=self.program.pk,
                data={
                    "import_id": self.imp.pk,
                    "source_id": self.source.pk,
                    "status": str(status),
                    "lines": c.total,
                    "new_lines": c.new,
                    "duplicate_lines": c.duplicates,
                    "error_rows": c.error_rows,
                    "points": c.points,
                },
            )
        if not stored:
            errors_discard(self.imp)

    # -- what became of each line (import_lines) ---------------------------------------------------------

    def outcomes(self, rows: Sequence[SaleRow]) -> list[LineOutcome]:
        """Each row's outcome, by its position: refused (the errors kept), written by this import (accepted, with
        its points) or by an earlier one (duplicate). One query, in the import's transaction."""
        refused: dict[int, list[dict]] = defaultdict(list)
        for item in self.issues or ():
            refused[item["line"]].append({"field": item["column"], "code": item["code"], "reason": item["reason"]})
        keys = [matching_key(str(row.external_id).strip()) for row in rows]
        with connection.cursor() as cursor:
            cursor.execute(
                BY_EXTERNAL_KEY.format(columns="s.external_key, s.sales_import_id, s.points"),
                [sorted({key for key in keys if key}), self.source.pk],
            )
            written = {key: (import_id, points) for key, import_id, points in cursor.fetchall()}
        done = self.imp.status == ImportStatus.DONE
        outcomes = []
        for index, (row, key) in enumerate(zip(rows, keys, strict=True)):
            found = written.get(key)
            if index in refused:
                outcome = LineOutcome(index, row.external_id, LineResult.ERROR, errors=tuple(refused[index]))
            elif done and found is not None and found[0] == self.imp.pk:
                outcome = LineOutcome(index, row.external_id, LineResult.ACCEPTED, points=found[1])
            elif done and found is not None:
                outcome = LineOutcome(index, row.external_id, LineResult.DUPLICATE)
            else:  # the import failed: nothing of it was posted
                error = {"field": "", "code": "not_imported", "reason": "was not imported: see the import's message"}
                outcome = LineOutcome(index, row.external_id, LineResult.ERROR, errors=(error,))
            outcomes.append(outcome)
        return outcomes
