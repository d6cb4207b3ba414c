"""The program's key figures, read from the daily roll-ups (analytics.models) and a few small live tables.

Every function takes the program and, where it is about a period, the first and last day of it (both included,
the site's days, as the roll-ups count them), and an optional scope: `partner_ids`, the partners the viewer may
see (partners.visibility; None: all of them). Each is one or two queries whatever the size of the program, and
none scans the ledger: flows come from the roll-ups, stocks (balances, open lots, current tiers) from tables
with a row per account, lot or partner.

What reads a live table, and what it costs:
- `activation_funnel`'s median days need each person's dates. They are read for the people who joined in the
  period (the latest MEDIAN_SAMPLE of them), in one query: their first invitation, their first earn and their
  first redemption, each found by an index probe (`partners_invitation (member, -created_at)`,
  `loyalty_pointsentry (account, -id)`: the first entry of a kind is among an account's first), so the cost is a
  few index probes per person sampled and does not grow with the ledger.
- `active_members` reads one row per active member (their account's last change, then their last earn or spend
  by an index probe only for the accounts changed in the last 90 days, and their last claim).
- `liability` sums the accounts' balances and the open lots by month of expiry (`lot_due_idx`).
- `tier_distribution` and `tier_moves` read PartnerTier (a row per partner) and TierChange in the period.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics.models import ClaimsDay, MembersDay, MessagesDay, PointsDay, SalesDay
from analytics.rollups import check_range
from communications.constants import Channel as MessageChannel
from communications.constants import Kind
from communications.models import Campaign, CampaignRecipient
from loyalty.common.queries import count_of
from loyalty.models import PartnerTier, PointsAccount, PointsLot, ProductLine, Program, Tier, TierChange
from partners.constants import PartnerKind
from partners.models import Partner, Region, Role

# The median days of the activation funnel are taken over at most this many people who joined in the period (the
# latest): a median of 5,000 is as good as one of everybody, and the query stays a few index probes per person.
MEDIAN_SAMPLE = 5000
# Active: a points movement (earned or spent) or a sales claim within this many days.
ACTIVE_DAYS = (30, 90)
# The breakage rate is over this many months up to today; the expiry forecast this many months ahead.
BREAKAGE_MONTHS = 12
FORECAST_MONTHS = 12
CENT = Decimal("0.01")
TENTH = Decimal("0.1")
ZERO = Decimal("0")


# Small helpers -------------------------------------------------------------------------------------------------


def percent(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """part ÷ whole in percent, to one decimal (half up); None when there is no whole."""
    if not whole:
        return None
    return (Decimal(100) * Decimal(part) / Decimal(whole)).quantize(TENTH, rounding=ROUND_HALF_UP)


def change(now: Decimal | int, before: Decimal | int) -> Decimal | None:
    """The change from `before` to `now` in percent; None without a `before` to compare with."""
    if not before:
        return None
    return (Decimal(100) * (Decimal(now) - Decimal(before)) / Decimal(before)).quantize(TENTH, rounding=ROUND_HALF_UP)


def money(points: int, program: Program) -> Decimal:
    """Points as money at the program's point value, to the cent (half up)."""
    return (Decimal(points) * program.point_value).quantize(CENT, rounding=ROUND_HALF_UP)


def site_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def day_start(day: date) -> datetime:
    """The first moment of the site's day `day` (the roll-ups' days are the site's)."""
    return datetime.combine(day, time.min, tzinfo=site_zone())


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_between(first: date, last: date) -> list[date]:
    """The first days of the months from `first`'s to `last`'s, both included."""
    month, months = month_start(first), []
    while month <= last:
        months.append(month)
        month += relativedelta(months=1)
    return months


def year_before(day: date) -> date:
    return day - relativedelta(years=1)


def _scoped(queryset, partner_ids: Iterable[int] | None, field_name: str = "partner_id"):
    return queryset if partner_ids is None else queryset.filter(**{f"{field_name}__in": list(partner_ids)})


def _int(value) -> int:
    return int(value or 0)


def _days(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(TENTH, rounding=ROUND_HALF_UP)


def partner_kind_label(kind: str) -> str:
    return PartnerKind(kind).label if kind in PartnerKind.values else kind


def role_names() -> dict[int, str]:
    """The roles' names in their order (a small table: one query)."""
    return dict(Role.objects.order_by("sort_order", "name").values_list("pk", "name"))


# Activation funnel ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelRow:
    """One group of the funnel (a role, a partner type, or everybody: key None). The counts are what happened in
    the period (from MembersDay); the median days are those of the people who joined in it."""

    key: int | str | None
    label: str
    invited: int = 0
    joined: int = 0
    first_earn: int = 0
    first_redemption: int = 0
    days_to_join: Decimal | None = None
    days_to_earn: Decimal | None = None
    days_to_redeem: Decimal | None = None

    @staticmethod
    def _lost(before: int, after: int) -> Decimal | None:
        """The drop-off from one step to the next, in percent; None when it cannot be said (no one at the step
        before, or more at the step after: people invited before the period joined in it)."""
        if not before or after > before:
            return None
        return percent(before - after, before)

    @property
    def join_drop_off(self) -> Decimal | None:
        return self._lost(self.invited, self.joined)

    @property
    def earn_drop_off(self) -> Decimal | None:
        return self._lost(self.joined, self.first_earn)

    @property
    def redeem_drop_off(self) -> Decimal | None:
        return self._lost(self.first_earn, self.first_redemption)


@dataclass(frozen=True)
class Funnel:
    by_role: list[FunnelRow]
    by_kind: list[FunnelRow]
    total: FunnelRow
    sampled: int = 0  # how many people who joined in the period the median days are taken over
    sample_limit: int = MEDIAN_SAMPLE

    @property
    def sections(self) -> list[tuple[str, list[FunnelRow]]]:
        """The rows under their headings, everybody first, for a table."""
        return [(_("Everybody"), [self.total]), (_("By role"), self.by_role), (_("By partner type"), self.by_kind)]


_FUNNEL_MEDIANS = """
WITH cohort AS (
    SELECT m.id, m.role_id, p.kind, m.joined_at
    FROM partners_member m JOIN partners_partner p ON p.id = m.partner_id
    WHERE m.joined_at >= %(start)s AND m.joined_at < %(end)s {scope}
    ORDER BY m.joined_at DESC, m.id DESC
    LIMIT %(sample)s
), dated AS (
    SELECT c.role_id, c.kind,
        {to_join} AS to_join,
        {to_earn} AS to_earn,
        {to_redeem} AS to_redeem
    FROM cohort c
    LEFT JOIN LATERAL (
        SELECT i.created_at FROM partners_invitation i WHERE i.member_id = c.id ORDER BY i.created_at, i.id LIMIT 1
    ) inv ON true
    LEFT JOIN loyalty_pointsaccount a ON a.member_id = c.id AND a.program_id = %(program)s
    LEFT JOIN LATERAL (
        SELECT e.created_at FROM loyalty_pointsentry e
        WHERE e.account_id = a.id AND e.kind = 'earn' ORDER BY e.id LIMIT 1
    ) fe ON true
    LEFT JOIN LATERAL (
        SELECT e.created_at FROM loyalty_pointsentry e
        WHERE e.account_id = a.id AND e.kind = 'spend' ORDER BY e.id LIMIT 1
    ) fr ON true
)
SELECT GROUPING(role_id), GROUPING(kind), role_id, kind, COUNT(*),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY to_join),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY to_earn),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY to_redeem)
FROM dated
GROUP BY GROUPING SETS ((role_id), (kind), ())
"""


def _days_between(first: str, then: str) -> str:
    """SQL: the days from `first` to `then` (0 if `then` came first: a clock set differently), NULL when either is."""
    return (
        f"CASE WHEN {first} IS NOT NULL AND {then} IS NOT NULL "
        f"THEN GREATEST(EXTRACT(EPOCH FROM {then} - {first}), 0) / 86400 END"
    )


def activation_funnel(*, program: Program, start: date, end: date, partner_ids: list[int] | None = None) -> Funnel:
    """Invited → joined → first earn → first redemption, by role and by partner type, with the drop-off between the
    steps and the median days each step took. Three queries (the counts, the people's dates, the roles' names).

    The counts are the period's (MembersDay): people invited (first invitation) and memberships activated in it,
    whatever the program, and members whose first points earned and first redemption in this program fell in it.
    The median days are those of the people who joined in the period (the latest MEDIAN_SAMPLE of them): from
    their first invitation to joining, from joining to their first points, from those to their first
    redemption."""
    check_range(first=start, last=end)
    kind = Subquery(Partner.objects.filter(pk=OuterRef("partner_id")).values("kind")[:1])
    counts = (
        _scoped(MembersDay.objects.filter(day__range=(start, end), program_id__in=[0, program.pk]), partner_ids)
        .annotate(kind=kind)
        .values("role_id", "kind")
        .annotate(
            invited=Sum("invited"),
            joined=Sum("joined"),
            first_earn=Sum("first_earn"),
            first_redemption=Sum("first_redemption"),
        )
        .order_by()
    )
    steps = ("invited", "joined", "first_earn", "first_redemption")
    by_role: dict[int, dict[str, int]] = {}
    by_kind: dict[str, dict[str, int]] = {}
    total = dict.fromkeys(steps, 0)
    for row in counts:
        for group in (
            by_role.setdefault(row["role_id"], dict.fromkeys(steps, 0)),
            by_kind.setdefault(row["kind"], dict.fromkeys(steps, 0)),
            total,
        ):
            for step in steps:
                group[step] += _int(row[step])

    scope = "" if partner_ids is None else "AND m.partner_id = ANY(%(partners)s)"
    params = {
        "start": day_start(start),
        "end": day_start(end + timedelta(days=1)),
        "program": program.pk,
        "sample": MEDIAN_SAMPLE,
        "partners": list(partner_ids or []),
    }
    medians: dict[tuple[str, object], tuple] = {}
    sampled = 0
    with connection.cursor() as cursor:
        sql = _FUNNEL_MEDIANS.format(
            scope=scope,
            to_join=_days_between("inv.created_at", "c.joined_at"),
            to_earn=_days_between("c.joined_at", "fe.created_at"),
            to_redeem=_days_between("fe.created_at", "fr.created_at"),
        )
        cursor.execute(sql, params)
        for role_grouped, kind_grouped, role_id, kind_value, people, *days in cursor.fetchall():
            if role_grouped and kind_grouped:
                medians[("all", None)] = tuple(days)
                sampled = people
            elif kind_grouped:
                medians[("role", role_id)] = tuple(days)
            else:
                medians[("kind", kind_value)] = tuple(days)

    roles = role_names()

    def row(key, label, numbers, days) -> FunnelRow:
        days = days or (None, None, None)
        return FunnelRow(
            key,
            label,
            **numbers,
            days_to_join=_days(days[0]),
            days_to_earn=_days(days[1]),
            days_to_redeem=_days(days[2]),
        )

    order = list(roles)
    role_keys = sorted(
        set(by_role) | {key for group, key in medians if group == "role"},
        key=lambda pk: order.index(pk) if pk in roles else len(order),
    )
    kind_keys = [kind for kind in PartnerKind.values if kind in by_kind or ("kind", kind) in medians]
    return Funnel(
        by_role=[
            row(pk, roles.get(pk, str(pk)), by_role.get(pk, dict.fromkeys(steps, 0)), medians.get(("role", pk)))
            for pk in role_keys
        ],
        by_kind=[
            row(kind, partner_kind_label(kind), by_kind.get(kind, dict.fromkeys(steps, 0)), medians.get(("kind", kind)))
            for kind in kind_keys
        ],
        total=row(None, _("Everybody"), total, medians.get(("all", None))),
        sampled=sampled,
    )


# Active members ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveRow:
    """Active members of one group (a role, a partner type, a region, a tier — key 0: no tier —, or everybody)."""

    key: int | str | None
    label: str
    members: int
    active_30: int
    active_90: int

    @property
    def rate_30(self) -> Decimal | None:
        return percent(self.active_30, self.members)

    @property
    def rate_90(self) -> Decimal | None:
        return percent(self.active_90, self.members)


@dataclass(frozen=True)
class ActiveMembers:
    by_role: list[ActiveRow]
    by_kind: list[ActiveRow]
    by_region: list[ActiveRow]
    by_tier: list[ActiveRow]
    total: ActiveRow
    today: date

    @property
    def sections(self) -> list[tuple[str, list[ActiveRow]]]:
        """The rows under their headings, everybody first, for a table."""
        return [
            (_("Everybody"), [self.total]),
            (_("By role"), self.by_role),
            (_("By partner type"), self.by_kind),
            (_("By region"), self.by_region),
            (_("By the partner's tier"), self.by_tier),
        ]


_ACTIVE = """
WITH people AS (
    SELECT m.role_id, p.kind, p.region_id, COALESCE(pt.tier_id, 0) AS tier_id,
        GREATEST(
            CASE WHEN a.updated_at >= %(since90)s THEN (
                SELECT e.created_at FROM loyalty_pointsentry e
                WHERE e.account_id = a.id AND e.kind IN ('earn', 'spend') ORDER BY e.id DESC LIMIT 1
            ) END,
            (SELECT MAX(c.created_at) FROM loyalty_salesclaim c WHERE c.member_id = m.id AND c.program_id = %(program)s)
        ) AS last_active
    FROM partners_member m
    JOIN partners_partner p ON p.id = m.partner_id
    LEFT JOIN loyalty_pointsaccount a ON a.member_id = m.id AND a.program_id = %(program)s
    LEFT JOIN loyalty_partnertier pt ON pt.partner_id = m.partner_id AND pt.program_id = %(program)s
    WHERE m.status = 'active' {scope}
)
SELECT GROUPING(role_id), GROUPING(kind), GROUPING(region_id), GROUPING(tier_id), role_id, kind, region_id, tier_id,
    COUNT(*), COUNT(*) FILTER (WHERE last_active >= %(since30)s), COUNT(*) FILTER (WHERE last_active >= %(since90)s)
FROM people
GROUP BY GROUPING SETS ((role_id), (kind), (region_id), (tier_id), ())
"""


def active_members(
    *, program: Program, today: date | None = None, partner_ids: list[int] | None = None
) -> ActiveMembers:
    """The active members (status active) of the partners in scope, and how many of them were active in the last 30
    and 90 days (today included): they earned or spent points in the program (a points movement of their own;
    expiry and the release of pending points are not something they did) or sent a sales claim in it. By role,
    partner type, region and the partner's tier in the program. Four queries (the people, and the names of
    roles, regions and tiers).

    The roll-ups count points and claims, not people, so this reads a row per active member: their account's last
    change (the accounts not changed in 90 days are not looked at further), the last earn or spend of the others by
    an index probe, and their last claim by an index probe."""
    today = today or timezone.localdate()
    scope = "" if partner_ids is None else "AND m.partner_id = ANY(%(partners)s)"
    params = {
        "program": program.pk,
        "since30": day_start(today - timedelta(days=ACTIVE_DAYS[0] - 1)),
        "since90": day_start(today - timedelta(days=ACTIVE_DAYS[1] - 1)),
        "partners": list(partner_ids or []),
    }
    groups: dict[str, dict] = {"role": {}, "kind": {}, "region": {}, "tier": {}}
    total = (0, 0, 0)
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE.format(scope=scope), params)
        for *grouped, role_id, kind, region_id, tier_id, members, active_30, active_90 in cursor.fetchall():
            numbers = (members, active_30, active_90)
            if all(grouped):
                total = numbers
            elif not grouped[0]:
                groups["role"][role_id] = numbers
            elif not grouped[1]:
                groups["kind"][kind] = numbers
            elif not grouped[2]:
                groups["region"][region_id] = numbers
            else:
                groups["tier"][tier_id] = numbers
    roles = role_names()
    regions = dict(Region.objects.order_by("name").values_list("pk", "name"))
    tiers = dict(Tier.objects.filter(program=program).order_by("rank").values_list("pk", "name"))

    def rows(found: dict, labels: dict, order: list) -> list[ActiveRow]:
        keys = [key for key in order if key in found] + sorted(key for key in found if key not in order)
        return [ActiveRow(key, labels.get(key, str(key)), *found[key]) for key in keys]

    return ActiveMembers(
        by_role=rows(groups["role"], roles, list(roles)),
        by_kind=rows(groups["kind"], {k: partner_kind_label(k) for k in PartnerKind.values}, PartnerKind.values),
        by_region=rows(groups["region"], regions, list(regions)),
        by_tier=rows(groups["tier"], {**tiers, 0: _("No tier")}, [*tiers, 0]),
        total=ActiveRow(None, _("Everybody"), *total),
        today=today,
    )


# Points and the liability --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointsFlow:
    """Points that moved in a period (or a month of it: `month`), as PointsDay sums them."""

    issued: int = 0
    reversed: int = 0
    redeemed: int = 0
    expired: int = 0
    adjusted: int = 0
    month: date | None = None

    @property
    def net_issued(self) -> int:
        """Issued less the earnings taken back."""
        return self.issued - self.reversed


_FLOW = {name: Coalesce(Sum(name), 0) for name in ("issued", "reversed", "redeemed", "expired", "adjusted")}


def points_flow(*, program: Program, start: date, end: date, partner_ids: list[int] | None = None) -> PointsFlow:
    """Points issued, taken back, redeemed, expired and adjusted in the period. One query."""
    check_range(first=start, last=end)
    queryset = _scoped(PointsDay.objects.filter(program_id=program.pk, day__range=(start, end)), partner_ids)
    return PointsFlow(**queryset.aggregate(**_FLOW))


def points_by_month(
    *, program: Program, start: date, end: date, partner_ids: list[int] | None = None
) -> list[PointsFlow]:
    """The same per month of the period, every month listed. One query."""
    check_range(first=start, last=end)
    queryset = _scoped(PointsDay.objects.filter(program_id=program.pk, day__range=(start, end)), partner_ids)
    found = {
        row.pop("month"): row
        for row in queryset.annotate(month=TruncMonth("day")).values("month").annotate(**_FLOW).order_by()
    }
    return [PointsFlow(**found.get(month, {}), month=month) for month in months_between(start, end)]


@dataclass(frozen=True)
class ExpiryMonth:
    month: date
    points: int
    value: Decimal


@dataclass(frozen=True)
class Liability:
    """What the program owes today: the points on the accounts (available and pending) at the point value, when
    they will expire if nobody spends them, and the breakage rate of the last BREAKAGE_MONTHS months (expired ÷
    (redeemed + expired), from PointsDay)."""

    available: int
    pending: int
    value: Decimal
    currency: str
    point_value: Decimal
    forecast: list[ExpiryMonth]
    breakage_first: date
    breakage_last: date
    redeemed_before: int
    expired_before: int

    @property
    def outstanding(self) -> int:
        return self.available + self.pending

    @property
    def breakage_rate(self) -> Decimal | None:
        return percent(self.expired_before, self.redeemed_before + self.expired_before)

    @property
    def expiring_points(self) -> int:
        return sum(month.points for month in self.forecast)

    @property
    def expiring_value(self) -> Decimal:
        return sum((month.value for month in self.forecast), ZERO)


def liability(*, program: Program, today: date | None = None, partner_ids: list[int] | None = None) -> Liability:
    """The outstanding points and their money value, the expiry forecast for this month and the next
    FORECAST_MONTHS - 1 (points on lots with something left, by the month they expire; a lot already due counts in
    this month), and the breakage rate of the last BREAKAGE_MONTHS months. Three queries."""
    today = today or timezone.localdate()
    accounts = PointsAccount.objects.filter(program=program)
    lots = PointsLot.objects.filter(account__program=program, remaining__gt=0)
    if partner_ids is not None:
        ids = list(partner_ids)
        accounts = accounts.filter(Q(partner_id__in=ids) | Q(member__partner_id__in=ids))
        lots = lots.filter(Q(account__partner_id__in=ids) | Q(account__member__partner_id__in=ids))
    balances = accounts.aggregate(available=Coalesce(Sum("available"), 0), pending=Coalesce(Sum("pending"), 0))

    first_month = month_start(today)
    months = [first_month + relativedelta(months=n) for n in range(FORECAST_MONTHS)]
    due = {
        row["month"].date(): row["points"]
        for row in lots.filter(expires_at__lt=day_start(months[-1] + relativedelta(months=1)))
        .annotate(month=TruncMonth("expires_at", tzinfo=site_zone()))
        .values("month")
        .annotate(points=Sum("remaining"))
        .order_by()
    }
    # Lots past their expiry that the nightly expiry has not taken yet expire now: this month.
    overdue = sum(points for month, points in due.items() if month < first_month)
    forecast = []
    for month in months:
        points = due.get(month, 0) + (overdue if month == first_month else 0)
        forecast.append(ExpiryMonth(month, points, money(points, program)))

    breakage_first = today - relativedelta(months=BREAKAGE_MONTHS) + timedelta(days=1)
    spent = _scoped(
        PointsDay.objects.filter(program_id=program.pk, day__range=(breakage_first, today)), partner_ids
    ).aggregate(redeemed=Coalesce(Sum("redeemed"), 0), expired=Coalesce(Sum("expired"), 0))
    return Liability(
        available=balances["available"],
        pending=balances["pending"],
        value=money(balances["available"] + balances["pending"], program),
        currency=program.money_currency,
        point_value=program.point_value,
        forecast=forecast,
        breakage_first=breakage_first,
        breakage_last=today,
        redeemed_before=spent["redeemed"],
        expired_before=spent["expired"],
    )


# Sales ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesRow:
    """Sales through the program in the period (`amount`) and in the same days a year before (`last_year`), of a
    month (key: its first day), a product line (key: its id, 0: none) or a partner (key: its id)."""

    key: date | int
    label: str
    amount: Decimal
    last_year: Decimal

    @property
    def change(self) -> Decimal | None:
        return change(self.amount, self.last_year)


def _sales(program: Program, start: date, end: date, partner_ids: list[int] | None):
    check_range(first=start, last=end)
    both = Q(day__range=(start, end)) | Q(day__range=(year_before(start), year_before(end)))
    return _scoped(SalesDay.objects.filter(both, program_id=program.pk), partner_ids)


def _this_and_last_year(start: date, end: date) -> dict:
    return {
        "this_period": Coalesce(Sum("amount", filter=Q(day__range=(start, end))), ZERO),
        "last_year": Coalesce(Sum("amount", filter=Q(day__range=(year_before(start), year_before(end)))), ZERO),
    }


def sales_by_month(*, program: Program, start: date, end: date, partner_ids: list[int] | None = None) -> list[SalesRow]:
    """Each month of the period against the same days a year before (a period starting mid-month compares the
    same part of the month). One query."""
    by_month = {
        row["month"]: row["amount"]
        for row in _sales(program, start, end, partner_ids)
        .annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(amount=Sum("amount"))
        .order_by()
    }
    months = months_between(start, end)
    # A month's rows a year back are those of its dates a year back that fall in the year-back period.
    return [
        SalesRow(
            month,
            month.isoformat(),
            by_month.get(month, ZERO),
            by_month.get(year_before(month), ZERO),
        )
        for month in months
    ]


def sales_by_product_line(
    *, program: Program, start: date, end: date, partner_ids: list[int] | None = None
) -> list[SalesRow]:
    """Each product line's sales in the period against the same days a year before, biggest first. One query."""
    name = Subquery(ProductLine.objects.filter(pk=OuterRef("product_line_id")).values("name")[:1])
    rows = (
        _sales(program, start, end, partner_ids)
        .values("product_line_id")
        .annotate(**_this_and_last_year(start, end), name=name)
        .order_by("-this_period", "-last_year", "product_line_id")
    )
    return [
        SalesRow(row["product_line_id"], row["name"] or _("No product line"), row["this_period"], row["last_year"])
        for row in rows
    ]


def sales_by_partner(
    *, program: Program, start: date, end: date, partner_ids: list[int] | None = None, limit: int = 10
) -> list[SalesRow]:
    """The `limit` partners who sold most through the program in the period, against the same days a year before.
    One query."""
    name = Subquery(Partner.objects.filter(pk=OuterRef("partner_id")).values("name")[:1])
    rows = (
        _sales(program, start, end, partner_ids)
        .values("partner_id")
        .annotate(**_this_and_last_year(start, end), name=name)
        .order_by("-this_period", "-last_year", "partner_id")[:limit]
    )
    return [SalesRow(row["partner_id"], row["name"] or "", row["this_period"], row["last_year"]) for row in rows]


# Tiers ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierCount:
    tier_id: int
    name: str
    rank: int
    partners: int


def tier_distribution(*, program: Program, partner_ids: list[int] | None = None) -> list[TierCount]:
    """How many partners hold each of the program's tiers now (PartnerTier), lowest tier first. One query."""
    holders = _scoped(PartnerTier.objects.filter(tier=OuterRef("pk")), partner_ids)
    tiers = Tier.objects.filter(program=program).annotate(holders=count_of(holders, "tier")).order_by("rank")
    return [TierCount(tier.pk, tier.name, tier.rank, tier.holders) for tier in tiers]


@dataclass(frozen=True)
class TierMoves:
    first: int = 0  # partners placed in a tier for the first time
    up: int = 0
    down: int = 0

    @property
    def total(self) -> int:
        return self.first + self.up + self.down


def tier_moves(*, program: Program, start: date, end: date, partner_ids: list[int] | None = None) -> TierMoves:
    """Tier moves in the period (TierChange): first tiers, upgrades and downgrades. One query."""
    check_range(first=start, last=end)
    moves = _scoped(
        TierChange.objects.filter(
            program=program, created_at__gte=day_start(start), created_at__lt=day_start(end + timedelta(days=1))
        ),
        partner_ids,
    )
    return TierMoves(
        **moves.aggregate(
            first=Count("pk", filter=Q(from_tier__isnull=True)),
            up=Count("pk", filter=Q(to_tier__rank__gt=F("from_tier__rank"))),
            down=Count("pk", filter=Q(to_tier__rank__lt=F("from_tier__rank"))),
        )
    )


# Claims --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimsFlow:
    """Claims submitted and decided in a period (or a month of it), and the hours the decided ones waited."""

    submitted: int = 0
    approved: int = 0
    rejected: int = 0
    hours: Decimal = ZERO
    month: date | None = None

    @property
    def decided(self) -> int:
        return self.approved + self.rejected

    @property
    def mean_hours(self) -> Decimal | None:
        """The mean time from a claim's submission to its decision, in hours."""
        if not self.decided:
            return None
        return (Decimal(self.hours) / self.decided).quantize(TENTH, rounding=ROUND_HALF_UP)

    @property
    def mean_days(self) -> Decimal | None:
        if not self.decided:
            return None
        return (Decimal(self.hours) / self.decided / 24).quantize(TENTH, rounding=ROUND_HALF_UP)

    @property
    def approval_rate(self) -> Decimal | None:
        return percent(self.approved, self.decided)


@dataclass(frozen=True)
class ClaimTurnaround:
    months: list[ClaimsFlow]
    total: ClaimsFlow


def claim_turnaround(
    *, program: Program, start: date, end: date, partner_ids: list[int] | None = None
) -> ClaimTurnaround:
    """Claims submitted, approved and rejected per month of the period, and the mean time to a decision. One
    query."""
    check_range(first=start, last=end)
    queryset = _scoped(ClaimsDay.objects.filter(program_id=program.pk, day__range=(start, end)), partner_ids)
    found = {
        row.pop("month"): row
        for row in queryset.annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(
            submitted=Coalesce(Sum("submitted"), 0),
            approved=Coalesce(Sum("approved"), 0),
            rejected=Coalesce(Sum("rejected"), 0),
            hours=Coalesce(Sum("turnaround_hours"), ZERO),
        )
        .order_by()
    }
    months = [ClaimsFlow(**found.get(month, {}), month=month) for month in months_between(start, end)]
    total = ClaimsFlow(
        submitted=sum(m.submitted for m in months),
        approved=sum(m.approved for m in months),
        rejected=sum(m.rejected for m in months),
        hours=sum((Decimal(m.hours) for m in months), ZERO),
    )
    return ClaimTurnaround(months=months, total=total)


# Campaigns -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelReach:
    """Campaign messages on one channel in the period (MessagesDay): sent, delivered, opened, acted on (a link
    followed) and failed."""

    channel: str
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    acted: int = 0
    failed: int = 0

    @property
    def label(self) -> str:
        return MessageChannel(self.channel).label if self.channel in MessageChannel.values else self.channel

    @property
    def open_rate(self) -> Decimal | None:
        return percent(self.opened, self.delivered or self.sent)

    @property
    def act_rate(self) -> Decimal | None:
        return percent(self.acted, self.delivered or self.sent)


def campaign_messages(*, start: date, end: date) -> list[ChannelReach]:
    """Campaign messages per channel in the period. MessagesDay has no program: these are every program's. One
    query."""
    check_range(first=start, last=end)
    rows = (
        MessagesDay.objects.filter(day__range=(start, end), kind=Kind.CAMPAIGN)
        .values("channel")
        .annotate(
            sent=Sum("sent"), delivered=Sum("delivered"), opened=Sum("opened"), acted=Sum("acted"), failed=Sum("failed")
        )
        .order_by("channel")
    )
    return [ChannelReach(**row) for row in rows]


@dataclass(frozen=True)
class SentCampaign:
    """A campaign sent in the period: how many were told and how many kept back as the control group. Its effect
    (acting rate of the told against the control group) is on its admin page (communications.campaigns)."""

    pk: int
    name: str
    sent_at: datetime
    told: int
    control: int


def recent_campaigns(*, program: Program, start: date, end: date, limit: int = 5) -> list[SentCampaign]:
    """The program's last `limit` campaigns sent in the period, newest first. One query."""
    check_range(first=start, last=end)
    recipients = CampaignRecipient.objects.filter(campaign=OuterRef("pk"))
    campaigns = (
        Campaign.objects.filter(
            program=program, sent_at__gte=day_start(start), sent_at__lt=day_start(end + timedelta(days=1))
        )
        .annotate(
            told=count_of(recipients.filter(in_control_group=False), "campaign"),
            control=count_of(recipients.filter(in_control_group=True), "campaign"),
        )
        .order_by("-sent_at", "-pk")
        .values("pk", "name", "sent_at", "told", "control")[:limit]
    )
    return [SentCampaign(**row) for row in campaigns]
