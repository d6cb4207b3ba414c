"""Partner tiers: the qualifying metric, the evaluation, and a member's progress towards the next tier.

The metric is judged over a rolling window of `program.tier_window_days` days ending `today` (both ends
included), per the program's `tier_metric`:

- SALES_AMOUNT: the sum of the partner's sell-out lines (`SaleLine.amount`, by invoice date, from the
  program's sales sources; returns are negative lines and reduce it) plus the lines of the partner's
  APPROVED sales claims, by the claim's invoice date. One sale counts once, as it pays once: each line counts
  for the part of its quantity that paid (`paid_quantity`), so a sale that a claim and a sell-out source (or two
  sources) both report counts through whichever paid it. Submitted, rejected and
  withdrawn claims never count; a flagged claim is approved only with a program manager's reason
  (services/claims.py), so it counts only from then. Money, in the program's currency.
- POINTS_EARNED: the points EARNED (entries of kind "earn", pending ones included) in the window, on the
  partner's company account and on the accounts of every membership of the partner, minus the reversals of
  those earns. Never a balance (spending or expiry does not lower it, a transfer or a manual adjustment does
  not raise it): FIELD.md item 7.

The qualifying tier is the best (highest-rank) tier whose threshold is at most the metric; when none is,
the program's entry tier (the lowest rank). Equal to the threshold qualifies; a cent below does not.

The evaluation of one partner:
- no tier yet: the qualifying tier, held until the end of the current period;
- upgrade (qualifying rank above the current one): at once; `since` today, held until the end of the current
  period (quarter or year, per `program.tier_period`);
- downgrade (qualifying rank below): only once `today` is past `held_until`; then straight to the qualifying
  tier, held until the end of the current period. Until then the tier is kept;
- same tier: nothing moves, the metric and `evaluated_at` are refreshed. Once `today` is past `held_until`
  (the period ended and the partner still qualifies), `held_until` moves to the end of the current period
  too, so that a downgrade always waits for the end of a period instead of happening on any later day.

A partner can also hold a tier by paying its yearly fee (loyalty.services.clubs): the tier it holds is then the better
of the qualifying tier and the tier of the paid membership running `today` (loyalty.selectors.clubs.paid_tiers, one
query for every partner evaluated), with the same benefits. When the paid tier is the target, it is held until the
end of the period or the last day paid, whichever is later (a renewal paid ahead moves `held_until` at once); once
the paid year has ended, a partner that does not qualify goes down by the ordinary rule above (after `held_until`).

Every move (first tier, upgrade, downgrade) appends a TierChange. Evaluating twice the same day changes
nothing the second time. Evaluations of one program are serialised by a transaction-scoped advisory lock,
so two runs at once cannot both record the same move.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Subquery, Sum, When
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from communications.constants import Kind
from communications.services import Notice, notify_many
from loyalty.common.events import publish
from loyalty.common.formatting import format_money
from loyalty.constants import ClaimStatus, EntryKind, TierMetric, TierPeriod
from loyalty.lock_objects import tier_evaluation_lock
from loyalty.models import ClaimLine, ClubMembership, PartnerTier, PointsEntry, Program, SaleLine, Tier, TierChange
from loyalty.selectors.clubs import paid_tiers
from partners.constants import MemberStatus, PartnerStatus
from partners.models import Member, Partner

ZERO = Decimal("0")
CENT = Decimal("0.01")
# Partners tiers_evaluate_all looks at: the ones taking part. Prospects have not joined; closed ones keep their
# last tier as history.
EVALUATED_PARTNER_STATUSES = (PartnerStatus.ACTIVE, PartnerStatus.SUSPENDED)
BATCH_SIZE = 1000


# Periods and windows --------------------------------------------------------------------------------


def period_end(*, period: str, today: date) -> date:
    """The last day of the quarter or year that contains `today`."""
    if period == TierPeriod.YEAR:
        return date(today.year, 12, 31)
    last_month = ((today.month - 1) // 3 + 1) * 3
    first_of_next = date(today.year + 1, 1, 1) if last_month == 12 else date(today.year, last_month + 1, 1)
    return first_of_next - timedelta(days=1)


def tier_window(*, program: Program, today: date) -> tuple[date, date]:
    """First and last day of the rolling window, both included: `tier_window_days` days ending today."""
    return today - timedelta(days=max(program.tier_window_days, 1) - 1), today


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# The metric -----------------------------------------------------------------------------------------


def _money(value) -> Decimal:
    return Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP)


def partner_metrics(*, program: Program, today: date, partner_ids: Iterable[int] | None = None) -> dict[int, Decimal]:
    """The metric of every partner with activity in the window (or of `partner_ids`), in one query.
    Partners without activity are absent: their metric is 0."""
    ids = None if partner_ids is None else list(partner_ids)
    if program.tier_metric == TierMetric.POINTS_EARNED:
        return _points_earned(program=program, today=today, partner_ids=ids)
    return _sales_amount(program=program, today=today, partner_ids=ids)


def _sales_amount(*, program: Program, today: date, partner_ids: list[int] | None) -> dict[int, Decimal]:
    first, last = tier_window(program=program, today=today)
    return sales_amounts(program=program, first=first, last=last, partner_ids=partner_ids)


def sales_amounts(
    *, program: Program, first: date, last: date, partner_ids: list[int] | None = None
) -> dict[int, Decimal]:
    """Each partner's sales amount from `first` to `last` (both included), counted as the SALES_AMOUNT metric counts
    it (one sale once), in one query; partners without sales are absent. Co-marketing funds by sales share use it."""
    sales = SaleLine.objects.filter(source__program=program, invoice_date__range=(first, last))
    claims = ClaimLine.objects.filter(
        claim__program=program,
        claim__status=ClaimStatus.APPROVED,
        claim__invoice_date__range=(first, last),
    )
    if partner_ids is not None:
        sales = sales.filter(partner_id__in=partner_ids)
        claims = claims.filter(claim__partner_id__in=partner_ids)
    # One sale counts once, like it pays once: each line counts for the part of it that paid (paid_quantity,
    # loyalty.selectors.one_sale); a return counts in full, against the sale it returns.
    paid_part = F("amount") * F("paid_quantity") / F("quantity")
    sales = sales.order_by().values_list("partner_id")
    sales = sales.annotate(total=Sum(Case(When(quantity__lt=0, then=F("amount")), default=paid_part)))
    claims = claims.order_by().values_list("claim__partner_id").annotate(total=Sum(paid_part))
    totals: dict[int, Decimal] = {}
    for partner_id, total in sales.union(claims, all=True):
        totals[partner_id] = totals.get(partner_id, ZERO) + (total or ZERO)
    return {partner_id: _money(total) for partner_id, total in totals.items()}


def _points_earned(*, program: Program, today: date, partner_ids: list[int] | None) -> dict[int, Decimal]:
    first, last = tier_window(program=program, today=today)
    start, end = _day_start(first), _day_start(last + timedelta(days=1))
    earned = Q(kind=EntryKind.EARN, created_at__gte=start, created_at__lt=end)
    # A reversal takes back points of the earn it reverses: it counts in that earn's window.
    reversed_earn = Q(
        kind=EntryKind.REVERSE,
        created_at__lt=end,
        reverses__kind=EntryKind.EARN,
        reverses__created_at__gte=start,
        reverses__created_at__lt=end,
    )
    entries = PointsEntry.objects.filter(earned | reversed_earn, account__program=program)
    if partner_ids is not None:
        entries = entries.filter(
            Q(account__partner_id__in=partner_ids) | Q(account__member__partner_id__in=partner_ids)
        )
    rows = (
        entries.order_by()
        .annotate(holder=Coalesce("account__partner_id", "account__member__partner_id"))
        .values_list("holder")
        .annotate(total=Sum(F("available_delta") + F("pending_delta")))
    )
    return {partner_id: Decimal(total or 0) for partner_id, total in rows}


def partner_metric(*, program: Program, partner: Partner, today: date | None = None) -> Decimal:
    today = today or timezone.localdate()
    return partner_metrics(program=program, today=today, partner_ids=[partner.pk]).get(partner.pk, ZERO)


# Which tier -----------------------------------------------------------------------------------------


def program_tiers(program: Program) -> list[Tier]:
    """The program's tiers, entry tier first."""
    return list(Tier.objects.filter(program=program).order_by("rank"))


def qualifying_tier(tiers: list[Tier], metric: Decimal) -> Tier | None:
    """The best tier whose threshold is at most `metric`; else the entry tier. `tiers` ordered by rank."""
    if not tiers:
        return None
    reached = [tier for tier in tiers if tier.threshold <= metric]
    return reached[-1] if reached else tiers[0]


def tier_ladder_problems(
    *, program: Program, rank: int, threshold: Decimal, exclude_pk: int | None = None
) -> list[tuple[str, str]]:
    """(field, message) for each way a tier of this rank and threshold would break the program's ladder: the
    lowest tier is every partner's starting tier, so it needs 0; a higher rank needs a higher threshold."""
    others = list(Tier.objects.filter(program=program).exclude(pk=exclude_pk).order_by("rank"))
    below = [tier for tier in others if tier.rank < rank]
    above = [tier for tier in others if tier.rank > rank]
    problems = []
    if not below and threshold != 0:
        problems.append(
            (
                "threshold",
                "This would be the lowest tier, which every partner starts in: its threshold must be 0. "
                "Create the entry tier (rank 0, threshold 0) first.",
            )
        )
    if below and below[-1].threshold >= threshold:
        problems.append(
            (
                "threshold",
                f"Must be more than the {describe_metric(program, below[-1].threshold)} of {below[-1].name} "
                f"(rank {below[-1].rank}): a higher rank needs more.",
            )
        )
    if above and above[0].threshold <= threshold:
        problems.append(
            (
                "threshold",
                f"Must be less than the {describe_metric(program, above[0].threshold)} of {above[0].name} "
                f"(rank {above[0].rank}): a lower rank needs less.",
            )
        )
    return problems


def describe_metric(program: Program, value: Decimal) -> str:
    """A metric value as members read it, in their language: "€4,250.00", "3,000 AquaPoints"."""
    if program.tier_metric == TierMetric.POINTS_EARNED:  # a part of a point still needed is a whole point
        points = int(Decimal(value).to_integral_value(rounding=ROUND_CEILING))
        return f"{number_format(points, force_grouping=True)} {program.currency_name}"
    return format_money(_money(value), program.money_currency)


def _metric_words(program: Program, value: Decimal) -> str:
    what = "points earned" if program.tier_metric == TierMetric.POINTS_EARNED else "sales"
    return f"{describe_metric(program, value)} of {what} in {program.tier_window_days} days"


# Evaluation -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierEvaluation:
    """What one run did; `changes` are the TierChange rows it appended."""

    evaluated: int = 0
    assigned: int = 0
    upgraded: int = 0
    downgraded: int = 0
    unchanged: int = 0
    changes: tuple[TierChange, ...] = ()


@transaction.atomic
def _evaluate(*, program: Program, partner_ids: list[int] | None, today: date) -> TierEvaluation:
    tier_evaluation_lock(program.pk)
    tiers = program_tiers(program)
    if not tiers:
        return TierEvaluation()
    by_id = {tier.pk: tier for tier in tiers}
    rows = PartnerTier.objects.filter(program=program)
    if partner_ids is None:  # every partner: no id lists in the queries, one pass over the window
        scope = Partner.objects.filter(status__in=EVALUATED_PARTNER_STATUSES).order_by("pk")
        partner_ids = list(scope.values_list("pk", flat=True))
        metrics = partner_metrics(program=program, today=today)
        paid = paid_tiers(program=program, today=today)
    else:
        rows = rows.filter(partner_id__in=partner_ids)
        metrics = partner_metrics(program=program, today=today, partner_ids=partner_ids)
        paid = paid_tiers(program=program, today=today, partner_ids=partner_ids)
    rows = {row.partner_id: row for row in rows}
    new_end = period_end(period=program.tier_period, today=today)
    now = timezone.now()
    created, updated, changes = [], [], []
    counts = {"assigned": 0, "upgraded": 0, "downgraded": 0, "unchanged": 0}
    for partner_id in partner_ids:
        metric = metrics.get(partner_id, ZERO)
        target = qualifying_tier(tiers, metric)
        end, by_fee = new_end, False
        bought = paid.get(partner_id)
        paid_tier = by_id.get(bought.tier_id) if bought is not None else None
        if paid_tier is not None and paid_tier.rank >= target.rank:  # the paid tier is the better one (or the same)
            by_fee = paid_tier.rank > target.rank
            target, end = paid_tier, max(new_end, bought.paid_until)
        paid_words = f"Joined {target.name} as a paying member until {bought.paid_until:%Y-%m-%d}." if by_fee else ""
        row = rows.get(partner_id)
        current = by_id.get(row.tier_id) if row is not None else None
        move, reason = None, ""
        if current is None:
            move, reason = "assigned", paid_words or f"First tier: {_metric_words(program, metric)}."
        elif target.rank > current.rank:
            move = "upgraded"
            reason = paid_words or f"Upgraded: {_metric_words(program, metric)} reach {target.name}."
        elif target.rank < current.rank and today > row.held_until:
            move = "downgraded"
            reason = (
                f"Downgraded at the end of the period (held until {row.held_until:%Y-%m-%d}): "
                f"{_metric_words(program, metric)} are below {current.name}."
            )
            if by_fee:
                reason += f" {target.name} is paid until {bought.paid_until:%Y-%m-%d}."
        if move is None:
            counts["unchanged"] += 1
            fields = {}
            stale = row.evaluated_at is None or timezone.localdate(row.evaluated_at) != timezone.localdate(now)
            if stale or row.metric_value != metric:  # the same metric again the same day: nothing to write
                fields.update(metric_value=metric, evaluated_at=now)
            if target.rank == current.rank and today > row.held_until:
                fields["held_until"] = end  # the period ended and the partner still qualifies (or pays)
            elif target.rank == current.rank and end > row.held_until:
                fields["held_until"] = end  # a paid year (or one paid ahead) holds the tier until its last day
            if fields:
                for name, value in fields.items():
                    setattr(row, name, value)
                updated.append(row)
            continue
        counts[move] += 1
        changes.append(
            TierChange(
                program=program,
                partner_id=partner_id,
                from_tier=current,
                to_tier=target,
                metric_value=metric,
                reason=reason[:200],
            )
        )
        if row is None:
            created.append(
                PartnerTier(
                    program=program,
                    partner_id=partner_id,
                    tier=target,
                    since=today,
                    held_until=end,
                    metric_value=metric,
                    evaluated_at=now,
                )
            )
        else:
            row.tier, row.since, row.held_until = target, today, end
            row.metric_value, row.evaluated_at = metric, now
            updated.append(row)
    if created:
        PartnerTier.objects.bulk_create(created, batch_size=BATCH_SIZE)
    if updated:
        _update_rows(updated)
    if changes:
        TierChange.objects.bulk_create(changes, batch_size=BATCH_SIZE)
        for c in changes:
            publish(
                "tier.changed",
                program_id=program.pk,
                data={"partner_id": c.partner_id, "from_tier": c.from_tier.name if c.from_tier else None,
                      "to_tier": c.to_tier.name, "move": "first" if c.from_tier is None
                      else "up" if c.to_tier.rank > c.from_tier.rank else "down"},
            )  # fmt: skip
        _tell_members(changes)
    return TierEvaluation(evaluated=len(partner_ids), changes=tuple(changes), **counts)


def _tell_members(changes: list[TierChange]) -> None:
    """The active members of each partner that moved up or down hear of it (a first tier is no news)."""
    moved = [change for change in changes if change.from_tier is not None]
    if not moved:
        return
    members = defaultdict(list)
    active = Member.objects.filter(partner_id__in={c.partner_id for c in moved}, status=MemberStatus.ACTIVE)
    for member_id, partner_id in active.values_list("pk", "partner_id").order_by("pk"):
        members[partner_id].append(member_id)
    for kind, up in ((Kind.TIER_UP, True), (Kind.TIER_DOWN, False)):
        notices = [
            Notice(member_id, f"tier_change:{c.pk}", {"tier": c.to_tier.name, "previous_tier": c.from_tier.name})
            for c in moved
            if (c.to_tier.rank > c.from_tier.rank) == up
            for member_id in members[c.partner_id]
        ]
        notify_many(kind=kind, notices=notices, link_path=reverse("home"))


def _update_rows(rows: list[PartnerTier]) -> None:
    """Write the evaluated rows in one statement (bulk_update's CASE per row costs seconds for thousands)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE loyalty_partnertier t SET tier_id = w.tier_id, since = w.since, held_until = w.held_until, "
            "metric_value = w.metric_value, evaluated_at = w.evaluated_at "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::date[], %s::date[], %s::numeric[], %s::timestamptz[]) "
            "AS w(id, tier_id, since, held_until, metric_value, evaluated_at) WHERE t.id = w.id",
            [
                [row.pk for row in rows],
                [row.tier_id for row in rows],
                [row.since for row in rows],
                [row.held_until for row in rows],
                [row.metric_value for row in rows],
                [row.evaluated_at for row in rows],
            ],
        )


def tier_evaluate(*, program: Program, partner: Partner, today: date | None = None) -> PartnerTier | None:
    """Evaluate one partner now (e.g. after a big sale); returns its tier row, None if the program has no tiers."""
    _evaluate(program=program, partner_ids=[partner.pk], today=today or timezone.localdate())
    return PartnerTier.objects.select_related("tier").filter(program=program, partner=partner).first()


def tiers_evaluate_all(*, program: Program, today: date | None = None) -> TierEvaluation:
    """Evaluate every active or suspended partner of the program, with a fixed number of queries."""
    return _evaluate(program=program, partner_ids=None, today=today or timezone.localdate())


# Progress -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierProgress:
    """Where a partner stands. `current` is the tier it holds (None before its first evaluation); `next` the
    tier above it (None at the top); `missing` how much of the metric `next` still needs (0 when the partner
    already qualifies and the next evaluation will upgrade it); `percent` of the way from 0 to `next`'s
    threshold; `to_keep` how much more keeps `current` past `held_until` (None when the metric already does);
    `paid_until` the last day the partner has paid for `current` as a club member (None: not paid);
    `club_offered` whether any tier of the program can be joined for a yearly fee."""

    program: Program
    current: Tier | None
    next: Tier | None
    missing: Decimal | None
    metric_value: Decimal
    percent: int
    held_until: date | None = None
    to_keep: Decimal | None = None
    paid_until: date | None = None
    club_offered: bool = False

    @property
    def is_paid(self) -> bool:
        """The tier held is one the partner pays a yearly fee for (loyalty.services.clubs)."""
        return self.paid_until is not None

    @property
    def metric_text(self) -> str:
        return describe_metric(self.program, self.metric_value)

    @property
    def missing_text(self) -> str:
        return describe_metric(self.program, self.missing) if self.missing is not None else ""

    @property
    def to_keep_text(self) -> str:
        return describe_metric(self.program, self.to_keep) if self.to_keep is not None else ""

    @property
    def summary(self) -> str:
        """One line for the member: "Silver · €4,250.00 of sales to reach Gold"."""
        held = self.current.name if self.current is not None else _("No tier yet")
        if self.next is None:
            return _("%(held)s · the highest tier") % {"held": held}
        words = {"held": held, "next": self.next.name, "missing": self.missing_text}
        if not self.missing:
            return _("%(held)s · %(next)s reached: it applies from the next daily review") % words
        if self.program.tier_metric == TierMetric.SALES_AMOUNT:
            return _("%(held)s · %(missing)s of sales to reach %(next)s") % words
        return _("%(held)s · %(missing)s more to earn to reach %(next)s") % words

    @property
    def progress_text(self) -> str:
        """The metric against the next threshold: "€5,750.00 of €10,000.00 of sales in the last 365 days (57%)"."""
        points = self.program.tier_metric == TierMetric.POINTS_EARNED
        words = {
            "metric": self.metric_text,
            "days": self.program.tier_window_days,
            "earned": number_format(max(int(self.metric_value), 0), force_grouping=True),
            "threshold": self.next_threshold_text,
            "percent": self.percent,
        }
        if self.next is None and points:
            return _("%(metric)s earned in the last %(days)s days") % words
        if self.next is None:
            return _("%(metric)s of sales in the last %(days)s days") % words
        if points:
            return _("%(earned)s of %(threshold)s earned in the last %(days)s days (%(percent)s%%)") % words
        return _("%(metric)s of %(threshold)s of sales in the last %(days)s days (%(percent)s%%)") % words

    @property
    def multiplier_text(self) -> str:
        """The current tier's earn multiplier as "1.25" or "2", in the reader's language; empty when it adds nothing
        (×1)."""
        if self.current is None or self.current.multiplier == 1:
            return ""
        return number_format(self.current.multiplier.normalize())  # "1,25" in German

    @property
    def next_threshold_text(self) -> str:
        return describe_metric(self.program, self.next.threshold) if self.next is not None else ""

    @property
    def metric_noun(self) -> str:
        return "points earned" if self.program.tier_metric == TierMetric.POINTS_EARNED else "sales"

    @property
    def progress_max(self) -> Decimal:
        return self.next.threshold if self.next is not None else ZERO

    @property
    def progress_now(self) -> Decimal:
        """The metric clamped to the bar's range, for aria-valuenow."""
        return min(max(self.metric_value, ZERO), self.progress_max)


def tier_progress(
    *, program: Program, partner: Partner, today: date | None = None, live: bool = False
) -> TierProgress | None:
    """The partner's progress; None when the program has no tiers. One query with the metric stored by the last
    evaluation (daily, and right after an approved claim); `live=True` computes the metric as of now instead. The
    same query says until when the tier held is paid for (the latest paid year of it not ended by `today`)."""
    today = today or timezone.localdate()
    mine = PartnerTier.objects.filter(program=program, partner=partner, tier=OuterRef("pk"))
    paid = ClubMembership.objects.filter(program=program, partner=partner, tier=OuterRef("pk"), ends_on__gte=today)
    tiers = list(
        Tier.objects.filter(program=program)
        .annotate(
            held_until=Subquery(mine.values("held_until")[:1]),
            stored_metric=Subquery(mine.values("metric_value")[:1]),
            paying=Exists(paid.filter(starts_on__lte=today)),
            paid_until=Subquery(paid.order_by("-ends_on").values("ends_on")[:1]),
        )
        .order_by("rank")
    )
    if not tiers:
        return None
    current = next((tier for tier in tiers if tier.held_until is not None), None)
    if live or current is None:
        metric = partner_metric(program=program, partner=partner, today=today)
    else:
        metric = current.stored_metric
    upcoming = next((tier for tier in tiers if current is None or tier.rank > current.rank), None)
    if upcoming is None:
        missing, percent = None, 100
    else:
        missing = max(upcoming.threshold - metric, ZERO)
        ratio = metric / upcoming.threshold if upcoming.threshold > 0 else Decimal(1)
        percent = int(min(max(ratio, ZERO), Decimal(1)) * 100)
    to_keep = None
    if current is not None and current.rank > tiers[0].rank and metric < current.threshold:
        to_keep = current.threshold - metric
    return TierProgress(
        program=program,
        current=current,
        next=upcoming,
        missing=missing,
        metric_value=metric,
        percent=percent,
        held_until=current.held_until if current is not None else None,
        to_keep=to_keep,
        paid_until=current.paid_until if current is not None and current.paying else None,
        club_offered=any(tier.joinable for tier in tiers),
    )
