"""Returns: a line with a negative quantity takes back its share of every posting its original line made.

The original is the line named in returns_external_id, else the earlier line of the same source with the same
partner, invoice number and SKU that still has enough quantity left to return. Each return's postings are
services.ledger_bulk.proportional shares of the original's (running totals: returning a line in parts takes back
exactly what it earned); the import's ledger gets one reversal entry per earn entry they take from (the rules'
budgets are given back, the caps' usage is not, as services.earning.reverse_source does). A return with no
original, or returning more than is left, is refused with the reason.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import NamedTuple

from django.db import connection

from loyalty.engine.bulk import json_text
from loyalty.services.ledger_bulk import ImportLedger, Return, copy_in, copy_text, proportional
from loyalty.services.sellout.errors import Issues, LineCode
from loyalty.services.sellout.parse import Line
from loyalty.services.sellout.write import BY_EXTERNAL_KEY, LINE_COLUMNS, NULL, imported_ids


class Original(NamedTuple):
    """A sale line a return may take back from (ORIGINAL_COLUMNS)."""

    external_id: str
    id: int
    partner_id: int
    product_id: int
    quantity: Decimal
    sales_import_id: int
    postings: str | None  # its postings' JSON text, [[rule id, member id, points, explanation], ...]


ORIGINAL_COLUMNS = "s.external_id, s.id, s.partner_id, s.product_id, s.quantity, s.sales_import_id, s.postings"


class ReturnsPosted(NamedTuple):
    already_imported: int
    written: int


def returns_post(
    returns: list[Line],
    *,
    source_id: int,
    import_id: int,
    ledger: ImportLedger,
    issues: Issues,
    returns_column_mapped: bool,
) -> ReturnsPosted:
    """Find each return's original line, refuse those that cannot be matched (into `issues`), and write the rest,
    each taking back its share of every posting of its original line. In the import's transaction."""
    with connection.cursor() as cursor:
        already = imported_ids(cursor, source_id=source_id, external_keys=[line.external_key for line in returns])
        returns = [line for line in returns if line.external_key not in already]
        originals, candidates = _originals(cursor, returns, source_id=source_id)
        original_ids = {original.id for original in originals.values()} | {
            original.id for options in candidates.values() for original in options
        }
        returned: dict[int, Decimal] = defaultdict(Decimal)  # quantity of each original returned so far
        if original_ids:
            cursor.execute(
                "SELECT k.id, -SUM(s.quantity) FROM unnest(%s::bigint[]) AS k(id) CROSS JOIN LATERAL "
                "(SELECT quantity FROM loyalty_saleline WHERE returns_line_id = k.id OFFSET 0) s GROUP BY k.id",
                [sorted(original_ids)],
            )
            returned.update(cursor.fetchall())
    accepted: list[tuple[Line, Original, Decimal]] = []  # (return, original, returned before)
    for line in returns:
        quantity = -line.quantity
        original, reason, column, code = None, "", "returns_external_id", LineCode.RETURN_UNMATCHED
        if line.returns_external_id:
            original = originals.get(line.returns_key)
            if original is None:
                reason = "is not the external id of a line imported from this source (before this line)"
            elif original.quantity < 0:
                original, reason, code = None, "is itself a return", LineCode.RETURN_MISMATCH
            elif original.partner_id != line.partner_facts.id:
                original, reason, column = None, "is not the partner of the returned line", "partner"
                code = LineCode.RETURN_MISMATCH
            elif original.product_id != line.product_facts.id:
                original, reason, column = None, "is not the SKU of the returned line", "sku"
                code = LineCode.RETURN_MISMATCH
        elif not line.invoice_number:
            column = "returns_external_id" if returns_column_mapped else "quantity"
            reason = "is a return without the returned line's external id or an invoice number to find it"
        else:
            options = candidates.get((line.partner_facts.id, line.invoice_key, line.product_facts.id), [])
            original = next((o for o in options if o.quantity - returned[o.id] >= quantity), None)
            if original is None:
                column = "invoice_number"
                if not options:
                    reason = "matches no earlier line of this source with the same partner, invoice number and SKU"
                else:
                    reason = "returns more than is left of the lines with the same partner, invoice number and SKU"
                    code = LineCode.RETURN_TOO_MUCH
        if original is not None and original.quantity - returned[original.id] < quantity:
            left = original.quantity - returned[original.id]
            original, column, code = None, "quantity", LineCode.RETURN_TOO_MUCH
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
            issues.add(line.line, column, value, reason, code)
            continue
        accepted.append((line, original, returned[original.id]))
        returned[original.id] += quantity
    if not accepted:
        return ReturnsPosted(len(already), 0)
    rows = [_return_row(line, original, before, source_id=source_id, import_id=import_id, ledger=ledger)
            for line, original, before in accepted]  # fmt: skip
    with connection.cursor() as cursor:
        copy_in(cursor, "loyalty_saleline", LINE_COLUMNS, rows)
    return ReturnsPosted(len(already), len(rows))


def _originals(cursor, returns: list[Line], *, source_id: int) -> tuple[dict[str, Original], dict[tuple, list]]:
    """The lines the returns name ({external id's matching key: line}), and for the returns that name none, the
    candidates by (partner id, invoice key, product id), oldest first."""
    by_id = [line.returns_key for line in returns if line.returns_key]
    originals: dict[str, Original] = {}
    if by_id:
        cursor.execute(BY_EXTERNAL_KEY.format(columns=f"s.external_key, {ORIGINAL_COLUMNS}"), [by_id, source_id])
        originals = {key: Original._make(row) for key, *row in cursor.fetchall()}
    by_invoice = [line for line in returns if not line.returns_key and line.invoice_key]
    candidates: dict[tuple, list[Original]] = defaultdict(list)
    if by_invoice:
        cursor.execute(
            f"SELECT {ORIGINAL_COLUMNS}, s.invoice_key "
            "FROM (SELECT DISTINCT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[])) "
            "AS w(partner_id, invoice_key, product_id) CROSS JOIN LATERAL (SELECT * FROM loyalty_saleline "
            "WHERE partner_id = w.partner_id AND invoice_key = w.invoice_key "
            "AND product_id = w.product_id "
            "AND source_id = %s AND quantity > 0 OFFSET 0) s ORDER BY s.id",
            [
                [line.partner_facts.id for line in by_invoice],
                [line.invoice_key for line in by_invoice],
                [line.product_facts.id for line in by_invoice],
                source_id,
            ],
        )
        for *row, invoice_key in cursor.fetchall():
            original = Original._make(row)
            candidates[(original.partner_id, invoice_key, original.product_id)].append(original)
    return originals, candidates


def _return_row(line: Line, original: Original, before: Decimal, *, source_id: int, import_id: int,
                ledger: ImportLedger) -> str:  # fmt: skip
    """The return's line in COPY's text format; its postings go to the ledger as reversals."""
    quantity = -line.quantity
    share = Return(returned=quantity, original_quantity=original.quantity, returned_before=before)
    parts, total = [], 0
    text = f"Return of {_number(quantity)} of {_number(original.quantity)} units of line {original.external_id}"
    for rule_id, member_id, points, _ in json.loads(original.postings) if original.postings else ():
        wanted = proportional(points, share) if points > 0 else 0
        if wanted <= 0:
            continue
        holder = ("m", member_id) if member_id is not None else ("p", original.partner_id)
        ledger.add_return(original.sales_import_id, holder, rule_id, wanted, line.line)
        parts.append(f"[{rule_id},{'null' if member_id is None else member_id},{-wanted},{json_text(text)}]")
        total -= wanted
    member = line.member_facts
    return (
        f"{source_id}\t{copy_text(line.external_id)}\t{copy_text(line.external_key)}\t{import_id}\t"
        f"{line.partner_facts.id}\t{member.id if member else NULL}\t{line.product_facts.id}\t{line.quantity}\t"
        f"{line.amount}\t{copy_text(line.invoice_number)}\t{copy_text(line.invoice_key)}\t"
        f"{line.invoice_date.isoformat()}\t{original.id}\t{total}\t"
        f"{copy_text('[' + ','.join(parts) + ']') if parts else ''}\t0\n"
    )


def _number(value: Decimal) -> str:
    """A quantity as people write it: 2, 1.5 (not 2.000)."""
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
