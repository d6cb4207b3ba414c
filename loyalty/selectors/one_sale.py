"""One sale pays once: what each source reported of a sale, and how much of it was paid already.

A sale is (partner, invoice key, product) in a program. Each sell-out source reports it with the sum of its lines'
quantities (returns keep their own rule: they take back what their line paid), and all the partner's approved
claims of the invoice together are one more source. The quantity that earns is never more than the largest
quantity one source reports: what the sale's lines, sell-out and claim, were paid already (their `paid_quantity`)
is subtracted, and the rest pays, handed to the lines being paid in order (services.claims for a claim's approval,
services.sellout.write for an import). Payers hold lock_objects.sales_paid_lock while they read and pay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.db.models import Min, Sum
from django.utils import timezone

from loyalty.constants import ClaimStatus
from loyalty.models import SaleLine, SalesClaim

ZERO = Decimal(0)


class Sale(NamedTuple):
    partner_id: int
    invoice_key: str
    product_id: int


@dataclass
class Reports:
    """What the sources reported of one sale, and how much of it was paid."""

    by_source: dict[int, Decimal] = field(default_factory=dict)  # sell-out source id → units
    claimed: Decimal = ZERO  # by the partner's approved claims, together
    paid: Decimal = ZERO  # by every line of the sale

    def most(self) -> Decimal:
        """The largest quantity one source reports."""
        return max([self.claimed, *self.by_source.values()])

    def payable(self) -> Decimal:
        return max(ZERO, self.most() - self.paid)


# Per sale: each source of the program (its positive lines), then the partner's approved claims, in one statement;
# the sale lines through their (partner, invoice key, product) index.
REPORTS = """
WITH wanted AS (
    SELECT DISTINCT * FROM unnest(%(partners)s::bigint[], %(keys)s::text[], %(products)s::bigint[])
        AS w(partner_id, invoice_key, product_id)
)
SELECT w.partner_id, w.invoice_key, w.product_id, s.source_id, s.units, s.paid FROM wanted w CROSS JOIN LATERAL (
    SELECT l.source_id, SUM(l.quantity) AS units, SUM(l.paid_quantity) AS paid FROM loyalty_saleline l
    WHERE l.partner_id = w.partner_id AND l.invoice_key = w.invoice_key AND l.product_id = w.product_id
        AND l.quantity > 0
        AND l.source_id IN (SELECT id FROM loyalty_salessource WHERE program_id = %(program)s)
    GROUP BY l.source_id OFFSET 0
) s
UNION ALL
SELECT c.partner_id, c.invoice_key, l.product_id, NULL, SUM(l.quantity), SUM(l.paid_quantity)
FROM loyalty_salesclaim c JOIN loyalty_claimline l ON l.claim_id = c.id
JOIN wanted w ON c.partner_id = w.partner_id AND c.invoice_key = w.invoice_key AND l.product_id = w.product_id
WHERE c.program_id = %(program)s AND c.status = %(approved)s
GROUP BY c.partner_id, c.invoice_key, l.product_id
"""


def sale_reports(*, program_id: int, sales: Iterable[Sale]) -> dict[Sale, Reports]:
    """The reports of each sale with an invoice key (each has an entry, empty when nothing reported it yet): one
    query, whatever the number of sales. A sale may be given as a plain (partner id, invoice key, product id)."""
    reports = {sale: Reports() for sale in sales if sale[1]}
    if not reports:
        return reports
    partners, keys, products = (list(column) for column in zip(*reports, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            REPORTS,
            {
                "partners": partners,
                "keys": keys,
                "products": products,
                "program": program_id,
                "approved": ClaimStatus.APPROVED.value,
            },
        )
        for partner_id, invoice_key, product_id, source_id, units, paid in cursor.fetchall():
            report = reports[Sale(partner_id, invoice_key, product_id)]
            if source_id is None:
                report.claimed += units
            else:
                report.by_source[source_id] = units
            report.paid += paid
    return reports


def hand_out(payable: Decimal, quantities: Iterable[Decimal]) -> list[Decimal]:
    """What each of the lines (their quantities, in the order they are paid) is paid for out of `payable`."""
    paid = []
    for quantity in quantities:
        share = min(quantity, payable)
        paid.append(share)
        payable -= share
    return paid


# Why a claim paid for less than it claimed ---------------------------------------------------------------------


@dataclass(frozen=True)
class PaidNote:
    """Why a line of an approved claim paid for less than its quantity: the largest sell-out report of the sale
    (`source` empty: other claims of the invoice had paid for it)."""

    paid: Decimal
    units: Decimal = ZERO
    source: str = ""
    reported_on: date | None = None

    @property
    def count(self) -> int:
        """The number that picks the singular or plural of "units" (gettext counts whole numbers)."""
        return int(self.units) if self.units == self.units.to_integral_value() else 2


class Report(NamedTuple):
    units: Decimal
    source: str
    reported_on: date


def largest_reports(*, program_id: int, partner_id: int, invoice_key: str, product_ids) -> dict[int, Report]:
    """{product id: the largest sell-out report of the partner's sale of it on this invoice} (ties: the earliest),
    for the products some source reported: one query."""
    rows = (
        SaleLine.objects.filter(
            partner_id=partner_id,
            invoice_key=invoice_key,
            product_id__in=set(product_ids),
            source__program_id=program_id,
            quantity__gt=0,
        )
        .values("product_id", "source__name")
        .annotate(units=Sum("quantity"), first=Min("created_at"))
        .order_by("product_id", "-units", "first")
    )
    largest = {}
    for row in rows:
        if row["product_id"] not in largest:
            day = timezone.localdate(row["first"])
            largest[row["product_id"]] = Report(row["units"].normalize(), row["source__name"], day)
    return largest


def claim_paid_notes(claim: SalesClaim) -> dict[int, PaidNote]:
    """{claim line id: note} for the lines of an approved claim that paid for less than their quantity: one query
    for all of them (none when every line paid in full)."""
    if claim.status != ClaimStatus.APPROVED:
        return {}
    short = [line for line in claim.lines.all() if line.paid_quantity < line.quantity]
    if not short:
        return {}
    largest = largest_reports(
        program_id=claim.program_id,
        partner_id=claim.partner_id,
        invoice_key=claim.invoice_key,
        product_ids=[line.product_id for line in short],
    )
    notes = {}
    for line in short:
        report = largest.get(line.product_id)
        paid = line.paid_quantity.normalize()
        notes[line.pk] = PaidNote(paid, *report) if report else PaidNote(paid)
    return notes
