"""Writing sale lines: the new lines of a batch COPYed into loyalty_saleline, each with what it pays (its shares,
with the caps and budgets applied in file order by the import's ledger, services.ledger_bulk.ImportLedger), and
the waiting claims those lines confirm (services.claims). Runs in the import's transaction (the writer thread's
connection when pipelined), which holds the program's sales-paid lock. Returns are returns.py's.

One sale pays once (selectors.one_sale): a line pays for what the largest report of its sale (partner, invoice,
product) leaves unpaid — this source's lines counted with the batch's, or the partner's approved claims — handed to
the batch's lines in file order; a line that pays for less is evaluated for that part of its quantity and amount
(`paid_quantity`). A sale that a waiting claim of the partner reports is paid through the claim first: its lines
are written unpaid, the claims they confirm are approved, then the lines pay for what is left. Per batch this
costs one query for the sales' reports and one for the waiting claims, whatever the number of lines.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, connection, transaction

from loyalty.constants import ClaimStatus
from loyalty.engine.bulk import LineEvaluator, json_text
from loyalty.models import Program, SaleLine, SalesClaim, SalesSource
from loyalty.selectors.one_sale import sale_reports
from loyalty.services import claims
from loyalty.services.ledger_bulk import ImportLedger, copy_in, copy_text
from loyalty.services.sellout.parse import Line

# Lines of a source by external id's matching key: one index lookup each, whatever the table's statistics say.
# OFFSET 0 keeps PostgreSQL from flattening the LATERAL subquery into a join: for a new source its statistics promise
# one row, and the hash join it then picks reads every line of the source (every batch: quadratic in the file).
BY_EXTERNAL_KEY = (
    "SELECT {columns} FROM unnest(%s::text[]) AS k(external_key) CROSS JOIN LATERAL "
    "(SELECT * FROM loyalty_saleline WHERE source_id = %s AND external_key = k.external_key OFFSET 0) s"
)
LINE_COLUMNS = (
    "source_id, external_id, external_key, sales_import_id, partner_id, member_id, product_id, quantity, amount, "
    "invoice_number, invoice_key, invoice_date, returns_line_id, points, postings, paid_quantity"
)
NULL = "\\N"  # COPY's text format
Paid = list[tuple[tuple[str, int], int, bool]]  # (beneficiary, points, first share of the line for it), per share
CENT = Decimal("0.01")
# What a held line (of a sale a waiting claim reports) pays, once the claims are decided.
PAY_HELD = (
    "UPDATE loyalty_saleline AS l SET points = v.points, postings = v.postings, paid_quantity = v.paid "
    "FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::numeric[]) AS v(external_key, points, postings, paid) "
    "WHERE l.source_id = %s AND l.external_key = v.external_key"
)


def imported_ids(cursor, *, source_id: int, external_keys: list[str]) -> set[str]:
    """Which of these external ids' matching keys the source's lines already have (committed, or written in this
    transaction)."""
    cursor.execute(BY_EXTERNAL_KEY.format(columns="s.external_key"), [external_keys, source_id])
    return {row[0] for row in cursor.fetchall()}


class LineWriter:
    """Writes the new lines of one import, batch after batch, through the import's ledger."""

    def __init__(
        self,
        *,
        source: SalesSource,
        program: Program,
        import_id: int,
        ledger: ImportLedger,
        evaluator: LineEvaluator,
    ):
        self.source = source
        self.program = program
        self.import_id = import_id
        self.ledger = ledger
        self.evaluator = evaluator
        self._held: list[Line] = []  # lines of the last batch written unpaid for a waiting claim (confirm_claims)

    def insert(self, lines: list[Line]) -> list[Line]:
        """COPY the new lines, each with what it pays (one sale pays once; caps and budgets applied in file order).
        A line that another import of the source committed after this batch was checked makes the COPY fail: the
        batch is then written again without the lines already there. Returns the lines written; confirm_claims
        must follow (it pays the lines held for waiting claims)."""
        if not lines:
            return []
        waiting = self._waiting_claims(lines)
        snapshot = self.ledger.snapshot()
        with connection.cursor() as cursor:
            try:
                with transaction.atomic():
                    rows, paid = self._line_rows(cursor, lines, waiting)
                    copy_in(cursor, "loyalty_saleline", LINE_COLUMNS, rows)
            except IntegrityError:
                self.ledger.restore(snapshot)
                imported = imported_ids(
                    cursor, source_id=self.source.pk, external_keys=[line.external_key for line in lines]
                )
                if not imported:
                    raise
                lines = [line for line in lines if line.external_key not in imported]
                rows, paid = self._line_rows(cursor, lines, waiting)
                copy_in(cursor, "loyalty_saleline", LINE_COLUMNS, rows)
        self._add(paid)
        self._held = [line for line in lines if (line.partner_facts.id, line.invoice_key) in waiting]
        return lines

    def confirm_claims(self) -> None:
        """Approve the waiting claims that the lines insert() held for them confirm (same partner and invoice;
        services.claims), in the import's transaction, then pay those lines for what the claims left unpaid."""
        held, self._held = self._held, []
        if not held:
            return
        keys = [line.external_key for line in held]
        claims.claims_confirm_by_sale_lines(
            sale_lines=SaleLine.objects.filter(source=self.source, external_key__in=keys).order_by("pk")
        )
        with connection.cursor() as cursor:
            self._pay_quantities(held, set(), written=True)
            priced, paid = self._priced(cursor, held)
            cursor.execute(
                PAY_HELD,
                [
                    keys,
                    [total for total, _ in priced],
                    [postings for _, postings in priced],
                    [line.paid_quantity for line in held],
                    self.source.pk,
                ],
            )
        self._add(paid)

    def _waiting_claims(self, lines: list[Line]) -> set[tuple[int, str]]:
        """(partner id, invoice key) of the program's waiting claims that the batch's lines report: one query (the
        waiting claims are few next to sale lines)."""
        if not any(line.invoice_key for line in lines):
            return set()
        waiting = set(
            SalesClaim.objects.filter(program=self.program, status=ClaimStatus.SUBMITTED).values_list(
                "partner_id", "invoice_key"
            )
        )
        return {(line.partner_facts.id, line.invoice_key) for line in lines} & waiting

    def _pay_quantities(self, lines: list[Line], waiting: set[tuple[int, str]], *, written: bool = False) -> None:
        """Set what each line pays for: what the largest report of its sale leaves unpaid, handed out in file
        order (all of it for a line without an invoice number; nothing yet for a sale a waiting claim reports).
        `written`: the lines are in the table already (and counted in their source's report)."""
        source_id = self.source.pk
        sales = {
            (line.partner_facts.id, line.invoice_key, line.product_facts.id)
            for line in lines
            if line.invoice_key and (line.partner_facts.id, line.invoice_key) not in waiting
        }
        reports = sale_reports(program_id=self.program.pk, sales=sales) if sales else {}
        if not written:  # this source reports the batch's lines too
            for line in lines:
                report = reports.get((line.partner_facts.id, line.invoice_key, line.product_facts.id))
                if report is not None:
                    report.by_source[source_id] = report.by_source.get(source_id, 0) + line.quantity
        left = {sale: report.payable() for sale, report in reports.items()}
        for line in lines:
            sale = (line.partner_facts.id, line.invoice_key, line.product_facts.id)
            if sale in left:
                line.paid_quantity = min(line.quantity, left[sale])
                left[sale] -= line.paid_quantity
            elif line.invoice_key and (line.partner_facts.id, line.invoice_key) in waiting:
                line.paid_quantity = Decimal(0)
            else:
                line.paid_quantity = line.quantity

    def _shares(self, line: Line) -> tuple:
        """The line's shares for the part of it that pays (evaluated for the whole line when it was prepared)."""
        paid = line.paid_quantity
        if paid == line.quantity:
            return line.shares
        if paid <= 0:
            return ()
        amount = (line.amount * paid / line.quantity).quantize(CENT, rounding=ROUND_HALF_UP)
        return self.evaluator.shares(
            line.partner_facts, line.member_facts, line.product_facts, line.invoice_date, paid, amount
        )

    def _line_rows(self, cursor, lines: list[Line], waiting) -> tuple[list[str], Paid]:
        """The lines in COPY's text format, and (beneficiary, points, first share of the line for it) of every
        share they pay."""
        self._pay_quantities(lines, waiting)
        priced, paid = self._priced(cursor, lines)
        head = f"{self.source.pk}\t"
        days: dict[date, str] = {}
        rows = []
        for line, (total, postings) in zip(lines, priced, strict=True):
            member = line.member_facts
            day = days.get(line.invoice_date)
            if day is None:
                day = days[line.invoice_date] = line.invoice_date.isoformat()
            rows.append(
                f"{head}{copy_text(line.external_id)}\t{copy_text(line.external_key)}\t{self.import_id}\t"
                f"{line.partner_facts.id}\t{member.id if member else NULL}\t{line.product_facts.id}\t{line.quantity}\t"
                f"{line.amount}\t{copy_text(line.invoice_number)}\t{copy_text(line.invoice_key)}\t{day}\t{NULL}\t"
                f"{total}\t{copy_text(postings)}\t{line.paid_quantity}\n"
            )
        return rows, paid

    def _priced(self, cursor, lines: list[Line]) -> tuple[list[tuple[int, str]], Paid]:
        """(points, postings as JSON text) of each line for the part of it that pays, with the caps and budgets
        applied in order, and (beneficiary, points, first share of the line for it) of every share paid."""
        ledger = self.ledger
        shares_of = [self._shares(line) for line in lines]
        usage_keys = set()
        for line, shares in zip(lines, shares_of, strict=True):
            for share in shares:
                if share.cap_points is not None and line.member_facts is not None:
                    usage_keys.add(ledger.usage_keys(share, line.member_facts.id, line.invoice_date))
        usage_keys.discard(None)
        ledger.lock_usages(cursor, usage_keys)
        priced, paid = [], []
        for line, shares in zip(lines, shares_of, strict=True):
            partner_id = line.partner_facts.id
            member = line.member_facts
            member_id = member.id if member else None
            member_text = str(member_id) if member else "null"
            total, postings = 0, ""
            if shares:
                parts, holders = [], set()
                for share in shares:
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
                postings = "[" + ",".join(parts) + "]"
            priced.append((total, postings))
        return priced, paid

    def _add(self, paid: Paid) -> None:
        add = self.ledger.add
        for holder, points, is_new_line in paid:
            add(holder, points, is_new_line)
