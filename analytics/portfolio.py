"""Reads of the member-site dashboards: an account manager's portfolio, a partner's overview (the company dashboard of
its owner), the figures of a partner's people, and a member's own progress. Selectors: no view code; every row
starts from partners.visibility, so nobody reaches a partner or a person their role does not allow.

Each reads the roll-ups (analytics.models) and small live tables (PartnerTier, PointsAccount balances) in a fixed
number of queries. Two reads go to the ledger, each bounded to a few people's own entries, never scanning it:
- the figures of one page of a partner's people (`member_figures`): each person's latest activity is an index lookup
  (analytics.health.member_last_activity), and the points they earned this year are summed over their own account's
  entries through the statement index (account, id);
- a member's own progress (`earned_by_month`): their own account's entries of the last twelve months, one query over
  that one account — the member's own small ledger, as the statement page reads it.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import Count, DateField, F, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.shortcuts import get_object_or_404
from django.utils import timezone

from analytics.health import Health, day_start, health_scores, member_last_activity, same_day_last_year
from analytics.models import ClaimsDay, PointsDay, SalesDay
from loyalty.constants import AttemptStatus, EntryKind
from loyalty.models import PartnerTier, PointsAccount, PointsEntry, Program, QuizAttempt, SalesClaim, Tier
from loyalty.selectors.claims import claims_for
from loyalty.selectors.leaderboards import Board, board
from loyalty.selectors.ledger import statement
from partners.constants import PartnerStatus
from partners.models import Member, Partner
from partners.visibility import company_partners_for, viewer_for
from rewards.models import RedemptionOrder
from rewards.selectors import orders_for

# The portfolio's orders: by health (the weakest first, so partners at risk are on top), by the sales trend (the
# steepest fall first), by name, by points (the most first).
SORT_HEALTH, SORT_TREND, SORT_NAME, SORT_POINTS = "health", "trend", "name", "points"
SORTS = (SORT_HEALTH, SORT_TREND, SORT_NAME, SORT_POINTS)
NO_TIER = "none"  # the tier filter's value for partners without a tier
RECENT = 10  # claims, orders and statement entries a partner's overview shows (each list links to the whole)
MONTHS = 12


# Points of partners -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerPoints:
    """Available points of a partner in a program: its company account's and its people's."""

    company: int = 0
    people: int = 0
    company_account_id: int | None = None

    @property
    def total(self) -> int:
        return self.company + self.people


def partner_points(*, program: Program, partner_ids: Collection[int]) -> dict[int, PartnerPoints]:
    """Balances of each partner's company account and of its people's accounts, by partner id: one query over the
    accounts (one row per person), never the ledger."""
    rows = (
        PointsAccount.objects.filter(program=program)
        .filter(Q(partner_id__in=partner_ids) | Q(member__partner_id__in=partner_ids))
        .annotate(holder=Coalesce("partner_id", "member__partner_id"))
        .values("holder")
        .annotate(
            company=Sum("available", filter=Q(partner__isnull=False), default=0),
            people=Sum("available", filter=Q(member__isnull=False), default=0),
            company_account=Max("pk", filter=Q(partner__isnull=False)),
        )
        .order_by()
    )
    return {
        row["holder"]: PartnerPoints(
            company=row["company"], people=row["people"], company_account_id=row["company_account"]
        )
        for row in rows
    }


# The portfolio ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioRow:
    partner: Partner  # with region, current_tier_id and current_tier_name
    health: Health
    points: PartnerPoints

    @property
    def at_risk(self) -> bool:
        """Only a partner taking part (active) is at risk; a prospect or a closed partner is not scored so."""
        return self.partner.status == PartnerStatus.ACTIVE and self.health.at_risk

    @property
    def trend(self) -> int | None:
        return self.health.facts.sales_change_percent


def _with_tier(partners: QuerySet[Partner], program: Program) -> QuerySet[Partner]:
    tier = PartnerTier.objects.filter(program=program, partner=OuterRef("pk"))
    return partners.annotate(
        current_tier_id=Subquery(tier.values("tier_id")[:1]),
        current_tier_name=Subquery(tier.values("tier__name")[:1]),
    )


def portfolio_partners(
    *, viewer, program: Program, search: str = "", tier: str = "", region: str = ""
) -> list[Partner]:
    """The partners the viewer looks after (an account manager's own, all for a program manager, none for anyone
    else), filtered: `search` words in the name or legal id, `tier` a tier id of the program or NO_TIER, `region` a
    region code. One query."""
    partners = viewer_for(viewer).portfolio
    for word in search.split():
        partners = partners.filter(Q(name__icontains=word) | Q(legal_id__icontains=word))
    if region:
        partners = partners.filter(region__code=region)
    partners = _with_tier(partners, program)
    if tier == NO_TIER:
        partners = partners.filter(current_tier_id__isnull=True)
    elif tier:
        partners = partners.filter(current_tier_id=tier)
    return list(partners.select_related("region").order_by("name", "pk"))


def _sort_key(sort: str):
    if sort == SORT_TREND:  # steepest fall first; partners with nothing to compare with last
        return lambda row: (row.trend is None, row.trend or 0, row.partner.name.casefold(), row.partner.pk)
    if sort == SORT_NAME:
        return lambda row: (row.partner.name.casefold(), row.partner.pk)
    if sort == SORT_POINTS:
        return lambda row: (-row.points.total, row.partner.name.casefold(), row.partner.pk)
    # Health: partners at risk first, then the weakest.
    return lambda row: (not row.at_risk, row.health.score, row.partner.name.casefold(), row.partner.pk)


def portfolio(
    *,
    viewer,
    program: Program,
    today: date | None = None,
    search: str = "",
    tier: str = "",
    region: str = "",
    at_risk: bool = False,
    sort: str = SORT_HEALTH,
) -> list[PortfolioRow]:
    """Every partner of the viewer's portfolio matching the filters, with its health, sales trend and points, in the
    order `sort` names (an unknown one: by health). Seven queries whatever the number of partners: the partners, their
    points and their health (health_scores). Rows are sorted in Python, as health is computed there."""
    partners = portfolio_partners(viewer=viewer, program=program, search=search, tier=tier, region=region)
    if not partners:
        return []
    ids = [partner.pk for partner in partners]
    scores = health_scores(program=program, partner_ids=ids, today=today)
    points = partner_points(program=program, partner_ids=ids)
    rows = [PortfolioRow(partner=p, health=scores[p.pk], points=points.get(p.pk, PartnerPoints())) for p in partners]
    if at_risk:
        rows = [row for row in rows if row.at_risk]
    return sorted(rows, key=_sort_key(sort if sort in SORTS else SORT_HEALTH))


def program_tiers(program: Program) -> list[Tier]:
    return list(Tier.objects.filter(program=program).order_by("rank"))


# A partner's overview (the account manager's partner page, the owner's company dashboard) -------------------------


def overview_partner_get(*, viewer, pk: int) -> Partner:
    """A partner whose company figures the viewer may see (company_partners_for: an account manager's own, any for a
    program manager, an owner's own); Http404 for any other id, so its existence is not revealed."""
    partners = company_partners_for(viewer).select_related("region", "account_manager", "parent")
    return get_object_or_404(partners, pk=pk)


@dataclass(frozen=True)
class MonthSales:
    month: date
    amount: Decimal
    last_year: Decimal

    @property
    def change_percent(self) -> int | None:
        if self.last_year <= 0:
            return None
        return round((self.amount - self.last_year) * 100 / self.last_year)


@dataclass(frozen=True)
class MonthPoints:
    month: date
    issued: int = 0
    redeemed: int = 0
    expired: int = 0


@dataclass(frozen=True)
class ClaimTotals:
    submitted: int = 0
    approved: int = 0
    rejected: int = 0
    turnaround_hours: Decimal = Decimal(0)

    @property
    def average_hours(self) -> Decimal | None:
        decided = self.approved + self.rejected
        return (self.turnaround_hours / decided).quantize(Decimal("0.1")) if decided else None


def _months(today: date, count: int = MONTHS) -> list[date]:
    """The first days of the last `count` months, this one last."""
    first = today.replace(day=1)
    return [first - relativedelta(months=n) for n in range(count - 1, -1, -1)]


def sales_by_month(*, program: Program, partner_id: int, today: date) -> list[MonthSales]:
    """Sales of the last twelve months, this one so far, each against the same month a year earlier (the current
    month against the same days of last year): one query over the roll-up."""
    months = _months(today)
    last_year_start = months[0] - relativedelta(years=1)
    last_year_end = same_day_last_year(today)
    rows = (
        SalesDay.objects.filter(program_id=program.pk, partner_id=partner_id, day__gte=last_year_start, day__lte=today)
        .exclude(day__gt=last_year_end, day__lt=months[0])
        .annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(amount=Sum("amount"))
        .order_by()
    )
    amounts = {row["month"]: row["amount"] for row in rows}
    return [
        MonthSales(
            month=month,
            amount=amounts.get(month, Decimal(0)),
            last_year=amounts.get(month - relativedelta(years=1), Decimal(0)),
        )
        for month in months
    ]


def points_by_month(*, program: Program, partner_id: int, today: date) -> list[MonthPoints]:
    """Points issued (net of reversals), redeemed and expired in each of the last twelve months: one query."""
    months = _months(today)
    rows = (
        PointsDay.objects.filter(program_id=program.pk, partner_id=partner_id, day__gte=months[0], day__lte=today)
        .annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(
            issued=Sum(F("issued") - F("reversed")),
            redeemed=Sum("redeemed"),
            expired=Sum("expired"),
        )
        .order_by()
    )
    found = {row["month"]: row for row in rows}
    return [
        MonthPoints(month=m, issued=found[m]["issued"], redeemed=found[m]["redeemed"], expired=found[m]["expired"])
        if m in found
        else MonthPoints(month=m)
        for m in months
    ]


def claim_totals(*, program: Program, partner_id: int, today: date) -> ClaimTotals:
    """Claims submitted and decided this year, and the hours the decided ones waited: one query over the roll-up."""
    row = ClaimsDay.objects.filter(
        program_id=program.pk, partner_id=partner_id, day__gte=today.replace(month=1, day=1), day__lte=today
    ).aggregate(
        submitted=Sum("submitted", default=0),
        approved=Sum("approved", default=0),
        rejected=Sum("rejected", default=0),
        hours=Sum("turnaround_hours", default=Decimal(0)),
    )
    return ClaimTotals(
        submitted=row["submitted"], approved=row["approved"], rejected=row["rejected"], turnaround_hours=row["hours"]
    )


@dataclass
class Overview:
    partner: Partner
    program: Program
    today: date
    tier: PartnerTier | None
    health: Health
    points: PartnerPoints
    sales: list[MonthSales]
    points_months: list[MonthPoints]
    claims: ClaimTotals
    entries: list[PointsEntry] = field(default_factory=list)  # the company account's latest
    recent_claims: list[SalesClaim] = field(default_factory=list)
    recent_orders: list[RedemptionOrder] = field(default_factory=list)

    @property
    def at_risk(self) -> bool:
        return self.partner.status == PartnerStatus.ACTIVE and self.health.at_risk

    @property
    def sales_this_year(self) -> Decimal:
        return self.health.facts.sales_this_year

    @property
    def points_this_year(self) -> MonthPoints:
        """Points issued, redeemed and expired since 1 January (the months of this year)."""
        year = [m for m in self.points_months if m.month.year == self.today.year]
        return MonthPoints(
            month=self.today.replace(month=1, day=1),
            issued=sum(m.issued for m in year),
            redeemed=sum(m.redeemed for m in year),
            expired=sum(m.expired for m in year),
        )


def partner_overview(*, viewer, program: Program, partner: Partner, today: date | None = None) -> Overview:
    """Everything a partner's overview shows but its people: tier, health, points, sales and points by month, claims
    this year, and the latest company statement entries, claims and orders the viewer may see (`partner` comes from
    overview_partner_get). At most thirteen queries, whatever the partner's size."""
    viewer = viewer_for(viewer)
    today = today or timezone.localdate()
    points = partner_points(program=program, partner_ids=[partner.pk]).get(partner.pk, PartnerPoints())
    entries = []
    if points.company_account_id is not None:
        company = PointsAccount(pk=points.company_account_id, program=program, partner=partner)
        entries = list(statement(account=company)[:RECENT])
    claims = (
        claims_for(viewer)
        .filter(program=program, partner=partner)
        .select_related("member__user")
        .order_by("-created_at", "-id")[:RECENT]
    )
    orders = (
        orders_for(viewer)
        .filter(program=program, member__partner=partner)
        .select_related("member__user")
        .order_by("-created_at", "-id")[:RECENT]
    )
    return Overview(
        partner=partner,
        program=program,
        today=today,
        tier=PartnerTier.objects.filter(program=program, partner=partner).select_related("tier").first(),
        health=health_scores(program=program, partner_ids=[partner.pk], today=today)[partner.pk],
        points=points,
        sales=sales_by_month(program=program, partner_id=partner.pk, today=today),
        points_months=points_by_month(program=program, partner_id=partner.pk, today=today),
        claims=claim_totals(program=program, partner_id=partner.pk, today=today),
        entries=entries,
        recent_claims=list(claims),
        recent_orders=list(orders),
    )


# The figures of a partner's people --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberFigures:
    account_id: int | None = None
    balance: int = 0
    earned_this_year: int = 0
    last_activity: datetime | None = None
    modules_passed: int = 0


def member_figures(*, program: Program, members: Collection, today: date | None = None) -> dict[int, MemberFigures]:
    """Each member's account and balance, the points they earned this year (net of reversals), when they last did
    something in the program and how many training modules they passed, by member id: one query for the `members`
    given (one page of a team; the caller got them from partners.visibility)."""
    today = today or timezone.localdate()
    ids = [getattr(member, "pk", member) for member in members]
    if not ids:
        return {}
    account = PointsAccount.objects.filter(program=program, member=OuterRef("pk"))
    own_account = PointsAccount.objects.filter(program=program, member=OuterRef(OuterRef("pk"))).values("pk")[:1]
    earned = (
        PointsEntry.objects.filter(
            account_id=Subquery(own_account), created_at__gte=day_start(today.replace(month=1, day=1))
        )
        .filter(Q(kind=EntryKind.EARN) | Q(kind=EntryKind.REVERSE, reverses__kind=EntryKind.EARN))
        .order_by()
        .values("account_id")
        .annotate(total=Sum(F("available_delta") + F("pending_delta")))
        .values("total")
    )
    passed = (
        QuizAttempt.objects.filter(member=OuterRef("pk"), status=AttemptStatus.PASSED, module__course__program=program)
        .order_by()
        .values("member")
        .annotate(modules=Count("module", distinct=True))
        .values("modules")
    )
    rows = (
        Member.objects.filter(pk__in=ids)
        .annotate(
            account_pk=Subquery(account.values("pk")[:1]),
            balance=Subquery(account.values("available")[:1]),
            earned=Subquery(earned),
            last_activity=member_last_activity(program),
            modules_passed=Subquery(passed),
        )
        .values("pk", "account_pk", "balance", "earned", "last_activity", "modules_passed")
        .order_by()
    )
    return {
        row["pk"]: MemberFigures(
            account_id=row["account_pk"],
            balance=row["balance"] or 0,
            earned_this_year=row["earned"] or 0,
            last_activity=row["last_activity"],
            modules_passed=row["modules_passed"] or 0,
        )
        for row in rows
    }


# A member's own progress ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthEarned:
    month: date
    earned: int = 0
    redeemed: int = 0


def earned_by_month(*, account: PointsAccount | None, today: date | None = None) -> list[MonthEarned]:
    """What the member's own account earned (net of reversals) and redeemed (net of refunds) in each of the last
    twelve months, this one so far: one query over that one account's entries of those months (its statement index),
    none without an account."""
    today = today or timezone.localdate()
    months = _months(today)
    if account is None or account.pk is None:
        return [MonthEarned(month=month) for month in months]
    earned = Q(kind=EntryKind.EARN) | Q(kind=EntryKind.REVERSE, reverses__kind=EntryKind.EARN)
    spent = Q(kind=EntryKind.SPEND) | Q(kind=EntryKind.REVERSE, reverses__kind=EntryKind.SPEND)
    change = F("available_delta") + F("pending_delta")
    rows = (
        PointsEntry.objects.filter(account=account, created_at__gte=day_start(months[0]))
        .annotate(month=TruncMonth("created_at", output_field=DateField()))
        .values("month")
        .annotate(earned=Sum(change, filter=earned, default=0), spent=Sum(change, filter=spent, default=0))
        .order_by()
    )
    found = {row["month"]: row for row in rows}
    return [
        MonthEarned(month=m, earned=found[m]["earned"], redeemed=-found[m]["spent"])
        if m in found
        else MonthEarned(month=m)
        for m in months
    ]


@dataclass(frozen=True)
class Ranks:
    people: Board
    companies: Board


def my_ranks(*, viewer, program: Program) -> Ranks:
    """The viewer's place on the program period's leaderboards, of people and of companies
    (loyalty.selectors.leaderboards): at most eight queries, whatever the boards' size."""
    return Ranks(
        people=board(viewer=viewer, program=program, top=3, around=1),
        companies=board(viewer=viewer, program=program, companies=True, top=3, around=1),
    )
