"""Return on the incentive budget: an estimate of the sales the program added, next to what its points cost.

The method, in words (the dashboard says the same):
- The period is compared with the same days a year before (the baseline), partner by partner, on the sales through
  the program (SalesDay: approved claims and sell-out lines).
- A partner *participates* when its people (not only its company account) earned points in the period; the others
  (sales reported by a distributor's sell-out, but nobody of theirs active in the program) are the comparison group.
  Only partners with sales in the baseline are compared, as a lift needs something to lift from; participating
  partners new since then are counted apart.
- Lift against their own baseline: participating partners' sales in the period less their sales a year before.
- Lift against the comparison group: the participating partners' baseline grown as the comparison group's sales
  grew is what they would have sold anyway; the extra sales are what they sold above it (a difference in
  differences). Everything else that differs between the groups (size, region, the market) is in the estimate too,
  which is why it is labelled one.
- The cost is the points issued in the period (less those taken back) at the program's point value, what the
  budget owes whether the points are spent or not.
Two queries whatever the number of partners.
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

from analytics.kpis import CENT, ZERO, change, money, points_flow, year_before
from analytics.rollups import check_range
from loyalty.models import Program


@dataclass(frozen=True)
class PartnerGroup:
    partners: int = 0
    sales: Decimal = ZERO  # in the period
    baseline: Decimal = ZERO  # in the same days a year before

    @property
    def lift(self) -> Decimal | None:
        """The change of the group's sales against its baseline, in percent."""
        return change(self.sales, self.baseline)


@dataclass(frozen=True)
class RoiEstimate:
    start: date
    end: date
    participating: PartnerGroup  # participating partners with a baseline
    comparison: PartnerGroup  # partners with a baseline whose people earned nothing in the period
    new_partners: int  # participating partners without sales in the baseline (not compared)
    new_partner_sales: Decimal
    points_issued: int
    cost: Decimal
    currency: str

    @property
    def baseline_start(self) -> date:
        return year_before(self.start)

    @property
    def baseline_end(self) -> date:
        return year_before(self.end)

    @property
    def extra_vs_own(self) -> Decimal:
        """Participating partners' sales above their own baseline."""
        return self.participating.sales - self.participating.baseline

    @property
    def expected(self) -> Decimal | None:
        """What participating partners would have sold had they grown as the comparison group did."""
        if not self.comparison.baseline or not self.participating.partners:
            return None
        growth = self.comparison.sales / self.comparison.baseline
        return (self.participating.baseline * growth).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def extra_vs_comparison(self) -> Decimal | None:
        """Participating partners' sales above what they would have sold had they grown as the comparison did."""
        return None if self.expected is None else self.participating.sales - self.expected

    @staticmethod
    def _per_cost(extra: Decimal | None, cost: Decimal) -> Decimal | None:
        if extra is None or not cost:
            return None
        return (extra / cost).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def return_vs_own(self) -> Decimal | None:
        """Extra sales (against their own baseline) per unit of money the points cost."""
        return self._per_cost(self.extra_vs_own, self.cost)

    @property
    def return_vs_comparison(self) -> Decimal | None:
        """Extra sales (against the comparison group) per unit of money the points cost."""
        return self._per_cost(self.extra_vs_comparison, self.cost)


_GROUPS = """
WITH participating AS (
    SELECT DISTINCT d.partner_id FROM analytics_pointsday d
    WHERE d.program_id = %(program)s AND d.day BETWEEN %(start)s AND %(end)s AND d.role_id <> 0 AND d.issued > 0
), partners AS (
    SELECT s.partner_id,
        COALESCE(SUM(s.amount) FILTER (WHERE s.day BETWEEN %(start)s AND %(end)s), 0) AS sales,
        COALESCE(SUM(s.amount) FILTER (WHERE s.day BETWEEN %(base_start)s AND %(base_end)s), 0) AS baseline
    FROM analytics_salesday s
    WHERE s.program_id = %(program)s {scope}
        AND (s.day BETWEEN %(start)s AND %(end)s OR s.day BETWEEN %(base_start)s AND %(base_end)s)
    GROUP BY s.partner_id
)
SELECT p.partner_id IS NOT NULL, x.baseline > 0, COUNT(*), SUM(x.sales), SUM(x.baseline)
FROM partners x LEFT JOIN participating p ON p.partner_id = x.partner_id
GROUP BY 1, 2
"""


def incentive_roi(*, program: Program, start: date, end: date, partner_ids: list[int] | None = None) -> RoiEstimate:
    """The estimate for the period (see the module's docstring for the method), over the partners in scope."""
    check_range(first=start, last=end)
    params = {
        "program": program.pk,
        "start": start,
        "end": end,
        "base_start": year_before(start),
        "base_end": year_before(end),
        "partners": list(partner_ids or []),
    }
    scope = "" if partner_ids is None else "AND s.partner_id = ANY(%(partners)s)"
    groups: dict[tuple[bool, bool], PartnerGroup] = {}
    with connection.cursor() as cursor:
        cursor.execute(_GROUPS.format(scope=scope), params)
        for takes_part, has_baseline, partners, sales, baseline in cursor.fetchall():
            groups[(takes_part, has_baseline)] = PartnerGroup(partners, sales or ZERO, baseline or ZERO)
    issued = points_flow(program=program, start=start, end=end, partner_ids=partner_ids).net_issued
    new = groups.get((True, False), PartnerGroup())
    return RoiEstimate(
        start=start,
        end=end,
        participating=groups.get((True, True), PartnerGroup()),
        comparison=groups.get((False, True), PartnerGroup()),
        new_partners=new.partners,
        new_partner_sales=new.sales,
        points_issued=issued,
        cost=money(issued, program),
        currency=program.money_currency,
    )
