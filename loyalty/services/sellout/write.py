"""Writing sale lines: the new lines of a batch COPYed into loyalty_saleline, each with what it pays (its shares,
with the caps and budgets applied in file order by the import's ledger, services.ledger_bulk.ImportLedger), and
the waiting claims those lines confirm (services.claims). Runs in the import's transaction (the writer thread's
connection when pipelined). Returns are returns.py's.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

from django.db import IntegrityError, connection, transaction

from loyalty.constants import ClaimStatus
from loyalty.engine.bulk import json_text
from loyalty.models import ClaimLine, Program, SaleLine, SalesClaim, SalesSource
from loyalty.services import claims
from loyalty.services.claim_checks import normalise_invoice_number
from loyalty.services.ledger_bulk import ImportLedger, copy_in, copy_text
from loyalty.services.sellout.parse import Line

# Lines of a source by external id: one index lookup each, whatever the table's statistics say. OFFSET 0 keeps
# PostgreSQL from flattening the LATERAL subquery into a join: for a new source its statistics promise one row,
# and the hash join it then picks reads every line of the source (every batch: quadratic in the file).
BY_EXTERNAL_ID = (
    "SELECT {columns} FROM unnest(%s::text[]) AS k(external_id) CROSS JOIN LATERAL "
    "(SELECT * FROM loyalty_saleline WHERE source_id = %s AND external_id = k.external_id OFFSET 0) s"
)
LINE_COLUMNS = (
    "source_id, external_id, sales_import_id, partner_id, member_id, product_id, quantity, amount, invoice_number, "
    "invoice_date, returns_line_id, points, postings"
)
NULL = "\\N"  # COPY's text format


def imported_ids(cursor, *, source_id: int, external_ids: list[str]) -> set[str]:
    """Which of these external ids the source's lines already have (committed, or written in this transaction)."""
    cursor.execute(BY_EXTERNAL_ID.format(columns="s.external_id"), [external_ids, source_id])
    return {row[0] for row in cursor.fetchall()}


class LineWriter:
    """Writes the new lines of one import, batch after batch, through the import's ledger."""

    def __init__(self, *, source: SalesSource, program: Program, import_id: int, ledger: ImportLedger):
        self.source = source
        self.program = program
        self.import_id = import_id
        self.ledger = ledger

    def insert(self, lines: list[Line]) -> list[Line]:
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
                    copy_in(cursor, "loyalty_saleline", LINE_COLUMNS, rows)
            except IntegrityError:
                self.ledger.restore(snapshot)
                imported = imported_ids(
                    cursor, source_id=self.source.pk, external_ids=[line.external_id for line in lines]
                )
                if not imported:
                    raise
                lines = [line for line in lines if line.external_id not in imported]
                rows, paid = self._line_rows(cursor, lines)
                copy_in(cursor, "loyalty_saleline", LINE_COLUMNS, rows)
        add = self.ledger.add
        for holder, points, is_new_line in paid:
            add(holder, points, is_new_line)
        return lines

    def _line_rows(self, cursor, lines: list[Line]) -> tuple[list[str], list[tuple[tuple[str, int], int, bool]]]:
        """The lines in COPY's text format, and (beneficiary, points, first share of the line for it) of every
        share they pay."""
        ledger = self.ledger
        usage_keys = set()
        for line in lines:
            for share in line.shares:
                if share.cap_points is not None and line.member_facts is not None:
                    usage_keys.add(ledger.usage_keys(share, line.member_facts.id, line.invoice_date))
        usage_keys.discard(None)
        ledger.lock_usages(cursor, usage_keys)
        head = f"{self.source.pk}\t"
        middle = f"\t{self.import_id}\t"
        days: dict[date, str] = {}
        rows, paid = [], []
        for line in lines:
            partner_id = line.partner_facts.id
            member = line.member_facts
            member_id = member.id if member else None
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
                f"{line.product_facts.id}\t{line.quantity}\t{line.amount}\t{copy_text(line.invoice_number)}\t"
                f"{day}\t{NULL}\t{total}\t{postings}\n"
            )
        return rows, paid

    def _covered_by_claims(self, lines: list[Line]) -> set[str]:
        """External ids of new lines that a submitted or approved claim of this program already reports (same
        partner, invoice number, product and quantity; each claim line covers one sale line)."""
        normalise = normalise_invoice_number
        partners = {line.partner_facts.id for line in lines if line.invoice_number}
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
            if line.invoice_number and line.partner_facts.id in claiming:
                key = (line.partner_facts.id, normalise(line.invoice_number), line.product_facts.id, line.quantity)
                if claimed[key] > 0:
                    claimed[key] -= 1
                    covered.add(line.external_id)
        return covered

    def confirm_claims(self, lines: list[Line]) -> None:
        """Hand the new lines that may confirm a waiting claim (same partner and invoice number) to
        claims.claims_confirm_by_sale_lines, in the import's transaction."""
        lines = [line for line in lines if line.invoice_number]
        if not lines:
            return
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
            if line.partner_facts.id in waiting_partners
            and (line.partner_facts.id, normalise_invoice_number(line.invoice_number)) in waiting
        ]
        if lines:
            claims.claims_confirm_by_sale_lines(
                sale_lines=SaleLine.objects.filter(
                    source=self.source, external_id__in=[line.external_id for line in lines]
                ).order_by("pk")
            )
