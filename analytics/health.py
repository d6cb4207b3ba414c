"""Partner health: an explainable score per partner, 0 to 100, with the reasons in words ("sales −35 % vs last year;
2 of 9 members active in the last 90 days"), and the partners at risk for the person who looks after them.

Five components, each worth some points (the WEIGHTS), each with its reason:
- sales: the partner's sales through the program this year to date against the same days of last year (SalesDay);
- activity: the share of its active members who did something in the program in the last ACTIVE_DAYS: earned or
  spent points, sent a claim or took a quiz (`member_last_activity`);
- training: the share of its active members who passed a training module in the last TRAINING_DAYS;
- messages: the share of the e-mail and inbox messages its people got in the last MESSAGES_DAYS that they opened or
  followed (MessagesDay is per role and kind, not per partner: the deliveries of the partner's people are counted,
  through the delivery index (member, channel, queued_at), over that bounded window);
- redemption: the share of the points it earned in the last REDEMPTION_DAYS that were redeemed (PointsDay).

A component that does not apply is left out and the score is taken over the others (no messages sent: engagement
with messages is not scored; no points earned: nothing to redeem; no training in the program). The score is the
points won over the points that apply, so a partner is never marked down for what the program did not offer.

Everything is read for many partners at once in a fixed number of queries (five), whatever the number of partners
and the size of the ledger: the roll-ups for sales and points, and per member an index lookup of their latest
activity (`member_last_activity`), never a scan of the ledger. Still, scoring every partner of a program is too much
for a page: the periodic task stores each partner's facts and score for the day after the roll-ups
(`health_refresh`, PartnerHealth), and pages read those rows (`health_scores`), scoring now only a partner without
one.
"""

from collections.abc import Collection
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from analytics.models import PartnerHealth, PointsDay, SalesDay
from communications.constants import Channel, DeliveryStatus
from communications.models import Delivery
from loyalty.common.formatting import format_money
from loyalty.constants import AttemptStatus, EntryKind
from loyalty.models import Module, PointsAccount, PointsEntry, Program, QuizAttempt, SalesClaim
from partners.constants import MemberStatus, PartnerStatus
from partners.models import Member, Partner
from partners.visibility import viewer_for

# How much each component weighs: sales and people's activity are what the account manager acts on; training,
# messages and redemption are early signs of interest fading, worth less each.
SALES, ACTIVITY, TRAINING, MESSAGES, REDEMPTION = "sales", "activity", "training", "messages", "redemption"
WEIGHTS = {SALES: 40, ACTIVITY: 30, TRAINING: 10, MESSAGES: 10, REDEMPTION: 10}

# A member is active who did something in the program in this many days: a quarter, the rhythm of sell-out reports,
# claims and tier reviews, so that a seasonal lull of a few weeks does not count as leaving.
ACTIVE_DAYS = 90
# Half the team active scores full: at a dealer the owner and a few sales people sell, while engineers and office
# staff invited to the program rarely earn every quarter.
ACTIVE_SHARE_GOOD = Decimal("0.5")
# Sales as last year or better score full; falling by half or more scores nothing; in between, in proportion. A fall
# of a third (the usual warning sign in channel reviews) thus costs two thirds of the sales points.
SALES_FALL_FLOOR = Decimal("-0.5")
# Training passed in the last year by a third of the team scores full: courses come a few times a year and not every
# role takes them.
TRAINING_DAYS = 365
TRAINED_SHARE_GOOD = Decimal("0.34")
# A 40 % open rate scores full: what business e-mail reaches at best; the inbox's reads count as opens.
MESSAGES_DAYS = 90
OPEN_RATE_GOOD = Decimal("0.4")
MESSAGE_CHANNELS = (Channel.EMAIL, Channel.INBOX)  # SMS reports no opens: counting it would punish SMS partners
NOT_RECEIVED = (DeliveryStatus.QUEUED, DeliveryStatus.FAILED, DeliveryStatus.BOUNCED, DeliveryStatus.SUPPRESSED)
# Redeeming a quarter of the points earned in a year scores full: points are being used (programs see 60–80 % of
# points redeemed over their life, spread over the years points stay valid); hoarding everything is a sign of
# indifference to the catalogue.
REDEMPTION_DAYS = 365
REDEEMED_SHARE_GOOD = Decimal("0.25")
# Below this a partner is at risk: with sales steady and half the team active (70 of 100 at least) a partner is well
# above it; a sales fall of a third with a quiet team, or no sales at all, falls below.
AT_RISK_BELOW = 50

MINUS = "\u2212"  # a real minus sign in "−35 %"


@dataclass(frozen=True)
class PartnerFacts:
    """What the score is computed from, also shown by the dashboards."""

    sales_this_year: Decimal = Decimal(0)  # 1 January to today
    sales_last_year: Decimal = Decimal(0)  # the same days of last year
    members: int = 0  # active memberships
    active_members: int = 0  # of those, active in the last ACTIVE_DAYS
    trained_members: int = 0  # of those, passed a module in the last TRAINING_DAYS
    messages: int = 0  # e-mail and inbox messages received in the last MESSAGES_DAYS
    messages_opened: int = 0
    points_earned: int = 0  # in the last REDEMPTION_DAYS, net of reversals
    points_redeemed: int = 0

    @property
    def sales_change(self) -> Decimal | None:
        """This year's sales against last year's as a fraction (−0.35), None without sales last year."""
        if self.sales_last_year <= 0:
            return None
        return (self.sales_this_year - self.sales_last_year) / self.sales_last_year

    @property
    def sales_change_percent(self) -> int | None:
        change = self.sales_change
        return None if change is None else int((change * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    @property
    def sales_change_text(self) -> str:
        """The change as people read it ("−35 %"); "" without sales last year."""
        percent = self.sales_change_percent
        return "" if percent is None else signed_percent(percent)


@dataclass(frozen=True)
class Component:
    key: str
    points: int
    max_points: int
    reason: str
    applies: bool = True

    @property
    def lost(self) -> int:
        return self.max_points - self.points if self.applies else 0


@dataclass(frozen=True)
class Health:
    partner_id: int
    score: int
    components: tuple[Component, ...]
    facts: PartnerFacts
    partner: Partner | None = None  # set by at_risk_partners

    @property
    def at_risk(self) -> bool:
        return self.score < AT_RISK_BELOW

    @property
    def reasons(self) -> list[str]:
        """The reasons of the components that cost points, the costliest first."""
        losing = sorted((c for c in self.components if c.lost), key=lambda c: -c.lost)
        return [c.reason for c in losing]

    @property
    def summary(self) -> str:
        """The reasons in one line: what costs points, or that all is well."""
        return "; ".join(self.reasons) or _("all well")

    def component(self, key: str) -> Component:
        return next(c for c in self.components if c.key == key)


# Reading the facts -----------------------------------------------------------------------------------------------


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def same_day_last_year(day: date) -> date:
    """The same day a year earlier; 28 February for 29 February."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def member_last_activity(program: Program) -> Greatest:
    """An expression over Member rows: when the member last did something in `program`: earned or spent points on
    their own account, sent a claim, or submitted a quiz (NULL if never). Each part is an index lookup of one member's
    latest row (their account's entries by the statement index, newest first), not a scan of the ledger."""
    account = PointsAccount.objects.filter(program=program, member=OuterRef(OuterRef("pk"))).values("pk")[:1]
    entry = (
        PointsEntry.objects.filter(account_id=Subquery(account), kind__in=(EntryKind.EARN, EntryKind.SPEND))
        .order_by("-id")
        .values("created_at")[:1]
    )
    claim = SalesClaim.objects.filter(member=OuterRef("pk"), program=program).order_by("-created_at")
    quiz = QuizAttempt.objects.filter(
        member=OuterRef("pk"), module__course__program=program, submitted_at__isnull=False
    ).order_by("-submitted_at")
    return Greatest(
        Subquery(entry),
        Subquery(claim.values("created_at")[:1]),
        Subquery(quiz.values("submitted_at")[:1]),
    )


def _sales(*, program: Program, partner_ids: Collection[int], today: date) -> dict[int, tuple[Decimal, Decimal]]:
    this_start, last_start, last_end = (
        today.replace(month=1, day=1),
        date(today.year - 1, 1, 1),
        same_day_last_year(today),
    )
    rows = (
        SalesDay.objects.filter(program_id=program.pk, partner_id__in=partner_ids, day__gte=last_start, day__lte=today)
        .values("partner_id")
        .annotate(
            this=Sum("amount", filter=Q(day__gte=this_start), default=Decimal(0)),
            last=Sum("amount", filter=Q(day__lte=last_end), default=Decimal(0)),
        )
        .order_by()
    )
    return {row["partner_id"]: (row["this"], row["last"]) for row in rows}


def _points(*, program: Program, partner_ids: Collection[int], today: date) -> dict[int, tuple[int, int]]:
    rows = (
        PointsDay.objects.filter(
            program_id=program.pk,
            partner_id__in=partner_ids,
            day__gt=today - timedelta(days=REDEMPTION_DAYS),
            day__lte=today,
        )
        .values("partner_id")
        .annotate(
            issued=Sum("issued", default=0), reversed=Sum("reversed", default=0), redeemed=Sum("redeemed", default=0)
        )
        .order_by()
    )
    return {row["partner_id"]: (row["issued"] - row["reversed"], row["redeemed"]) for row in rows}


def _members(*, program: Program, partner_ids: Collection[int], today: date) -> dict[int, tuple[int, int, int]]:
    active_since = day_start(today - timedelta(days=ACTIVE_DAYS))
    trained_since = day_start(today - timedelta(days=TRAINING_DAYS))
    passed = QuizAttempt.objects.filter(
        member=OuterRef("pk"),
        status=AttemptStatus.PASSED,
        submitted_at__gte=trained_since,
        module__course__program=program,
    )
    rows = (
        Member.objects.filter(partner_id__in=partner_ids, status=MemberStatus.ACTIVE)
        .alias(last_activity=member_last_activity(program), trained=Exists(passed))
        .values("partner_id")
        .annotate(
            members=Count("pk"),
            active=Count("pk", filter=Q(last_activity__gte=active_since)),
            trained_count=Count("pk", filter=Q(trained=True)),
        )
        .order_by()
    )
    return {row["partner_id"]: (row["members"], row["active"], row["trained_count"]) for row in rows}


def _messages(*, partner_ids: Collection[int], today: date) -> dict[int, tuple[int, int]]:
    opened = Q(opened_at__isnull=False) | Q(read_at__isnull=False) | Q(clicked_at__isnull=False)
    rows = (
        Delivery.objects.filter(
            member__partner_id__in=partner_ids,
            channel__in=MESSAGE_CHANNELS,
            queued_at__gte=day_start(today - timedelta(days=MESSAGES_DAYS)),
        )
        .exclude(status__in=NOT_RECEIVED)
        .values("member__partner_id")
        .annotate(received=Count("pk"), opened=Count("pk", filter=opened))
        .order_by()
    )
    return {row["member__partner_id"]: (row["received"], row["opened"]) for row in rows}


def partner_facts(*, program: Program, partner_ids: Collection[int], today: date) -> dict[int, PartnerFacts]:
    """The facts of each partner of `partner_ids` (zeros for one without any): four queries."""
    sales = _sales(program=program, partner_ids=partner_ids, today=today)
    points = _points(program=program, partner_ids=partner_ids, today=today)
    members = _members(program=program, partner_ids=partner_ids, today=today)
    messages = _messages(partner_ids=partner_ids, today=today)
    facts = {}
    for pk in partner_ids:
        this, last = sales.get(pk, (Decimal(0), Decimal(0)))
        count, active, trained = members.get(pk, (0, 0, 0))
        received, opened = messages.get(pk, (0, 0))
        earned, redeemed = points.get(pk, (0, 0))
        facts[pk] = PartnerFacts(
            sales_this_year=this,
            sales_last_year=last,
            members=count,
            active_members=active,
            trained_members=trained,
            messages=received,
            messages_opened=opened,
            points_earned=earned,
            points_redeemed=redeemed,
        )
    return facts


# Scoring ---------------------------------------------------------------------------------------------------------


def _share_points(weight: int, part: int | Decimal, whole: int | Decimal, good: Decimal) -> int:
    """`weight` in proportion to part/whole, full from `good` on."""
    if whole <= 0:
        return 0
    ratio = min(max(Decimal(part) / Decimal(whole) / good, Decimal(0)), Decimal(1))
    return int((weight * ratio).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def signed_percent(percent: int) -> str:
    """+12 %, −35 %, 0 %: a change as people read it (a real minus sign)."""
    if percent > 0:
        return _("+%(percent)s %%") % {"percent": percent}
    if percent < 0:
        return _("%(minus)s%(percent)s %%") % {"minus": MINUS, "percent": -percent}
    return _("%(percent)s %%") % {"percent": 0}


def _sales_component(facts: PartnerFacts, currency: str) -> Component:
    weight, change = WEIGHTS[SALES], facts.sales_change
    if change is None:
        if facts.sales_this_year > 0:
            reason = _("sales this year, none last year")
            return Component(SALES, weight, weight, reason)
        return Component(SALES, 0, weight, _("no sales through the program this year or last"))
    if facts.sales_this_year <= 0:
        reason = _("no sales this year (%(amount)s by this day last year)") % {
            "amount": format_money(facts.sales_last_year, currency)
        }
        return Component(SALES, 0, weight, reason)
    ratio = min(max((change - SALES_FALL_FLOOR) / -SALES_FALL_FLOOR, Decimal(0)), Decimal(1))
    points = int((weight * ratio).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    reason = _("sales %(change)s vs last year") % {"change": signed_percent(facts.sales_change_percent)}
    return Component(SALES, points, weight, reason)


def _activity_component(facts: PartnerFacts) -> Component:
    weight = WEIGHTS[ACTIVITY]
    if facts.members == 0:
        return Component(ACTIVITY, 0, weight, _("no active members"))
    reason = ngettext(
        "%(active)s of %(members)s member active in the last %(days)s days",
        "%(active)s of %(members)s members active in the last %(days)s days",
        facts.members,
    ) % {"active": facts.active_members, "members": facts.members, "days": ACTIVE_DAYS}
    points = _share_points(weight, facts.active_members, facts.members, ACTIVE_SHARE_GOOD)
    return Component(ACTIVITY, points, weight, reason)


def _training_component(facts: PartnerFacts, *, program_trains: bool) -> Component:
    weight = WEIGHTS[TRAINING]
    if not program_trains or facts.members == 0:
        return Component(TRAINING, 0, weight, _("no training to take"), applies=False)
    reason = ngettext(
        "%(trained)s of %(members)s member passed training in the last 12 months",
        "%(trained)s of %(members)s members passed training in the last 12 months",
        facts.members,
    ) % {"trained": facts.trained_members, "members": facts.members}
    points = _share_points(weight, facts.trained_members, facts.members, TRAINED_SHARE_GOOD)
    return Component(TRAINING, points, weight, reason)


def _messages_component(facts: PartnerFacts) -> Component:
    weight = WEIGHTS[MESSAGES]
    if facts.messages == 0:
        reason = _("no messages in the last %(days)s days") % {"days": MESSAGES_DAYS}
        return Component(MESSAGES, 0, weight, reason, applies=False)
    percent = int((Decimal(facts.messages_opened) * 100 / facts.messages).quantize(Decimal(1), ROUND_HALF_UP))
    reason = ngettext(
        "%(percent)s %% of %(count)s message opened in the last %(days)s days",
        "%(percent)s %% of %(count)s messages opened in the last %(days)s days",
        facts.messages,
    ) % {"percent": percent, "count": facts.messages, "days": MESSAGES_DAYS}
    points = _share_points(weight, facts.messages_opened, facts.messages, OPEN_RATE_GOOD)
    return Component(MESSAGES, points, weight, reason)


def _redemption_component(facts: PartnerFacts) -> Component:
    weight = WEIGHTS[REDEMPTION]
    if facts.points_earned <= 0:
        return Component(REDEMPTION, 0, weight, _("no points earned in the last 12 months"), applies=False)
    redeemed = max(facts.points_redeemed, 0)
    if redeemed == 0:
        reason = _("nothing redeemed in the last 12 months")
    else:
        percent = int((Decimal(redeemed) * 100 / facts.points_earned).quantize(Decimal(1), ROUND_HALF_UP))
        reason = _("%(percent)s %% of the points earned in the last 12 months redeemed") % {"percent": percent}
    points = _share_points(weight, redeemed, facts.points_earned, REDEEMED_SHARE_GOOD)
    return Component(REDEMPTION, points, weight, reason)


def score(*, partner_id: int, facts: PartnerFacts, currency: str, program_trains: bool) -> Health:
    """The score of one partner from its facts: no query."""
    components = (
        _sales_component(facts, currency),
        _activity_component(facts),
        _training_component(facts, program_trains=program_trains),
        _messages_component(facts),
        _redemption_component(facts),
    )
    applicable = [c for c in components if c.applies]
    won, possible = sum(c.points for c in applicable), sum(c.max_points for c in applicable)
    value = int((Decimal(100 * won) / possible).quantize(Decimal(1), rounding=ROUND_HALF_UP)) if possible else 0
    return Health(partner_id=partner_id, score=value, components=components, facts=facts)


def program_trains(program: Program) -> bool:
    """Does the program offer training (a module in one of its courses)? One query."""
    return Module.objects.filter(course__program=program).exists()


def compute_health(*, program: Program, partner_ids: Collection[int], today: date) -> dict[int, Health]:
    """The health of each partner of `partner_ids`, computed from the roll-ups and the members' latest activity:
    five queries, whatever their number."""
    trains = program_trains(program)
    facts = partner_facts(program=program, partner_ids=partner_ids, today=today)
    return {
        pk: score(partner_id=pk, facts=facts[pk], currency=program.money_currency, program_trains=trains)
        for pk in partner_ids
    }


FACT_FIELDS = tuple(f.name for f in fields(PartnerFacts))


def _from_row(row: PartnerHealth, currency: str) -> Health:
    facts = PartnerFacts(**{name: getattr(row, name) for name in FACT_FIELDS})
    return score(partner_id=row.partner_id, facts=facts, currency=currency, program_trains=row.program_trains)


def health_scores(*, program: Program, partner_ids: Collection[int], today: date | None = None) -> dict[int, Health]:
    """The health of each partner of `partner_ids` in `program`, by partner id: the rows the periodic task wrote
    for `today` (health_refresh), and for a partner without one (new since, or `today` not the task's day) computed
    now. One query, five more when some partner has no row. The caller decides who may see which partners
    (partners.visibility); the ids are taken as given."""
    today = today or timezone.localdate()
    partner_ids = list(dict.fromkeys(partner_ids))
    if not partner_ids:
        return {}
    rows = PartnerHealth.objects.filter(program_id=program.pk, partner_id__in=partner_ids, day=today)
    scores = {row.partner_id: _from_row(row, program.money_currency) for row in rows}
    missing = [pk for pk in partner_ids if pk not in scores]
    if missing:
        scores.update(compute_health(program=program, partner_ids=missing, today=today))
    return {pk: scores[pk] for pk in partner_ids}


REFRESH_BATCH = 1000  # partners computed per round of queries


def health_refresh(*, program: Program, today: date | None = None) -> int:
    """Compute every partner's health in `program` for `today` and store it (PartnerHealth), replacing the rows of
    earlier days: run by the periodic task after the roll-ups. Returns the number of partners."""
    today = today or timezone.localdate()
    now = timezone.now()
    trains = program_trains(program)
    partner_ids = list(Partner.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(partner_ids), REFRESH_BATCH):
        batch = partner_facts(program=program, partner_ids=partner_ids[start : start + REFRESH_BATCH], today=today)
        rows = []
        for pk, facts in batch.items():
            health = score(partner_id=pk, facts=facts, currency=program.money_currency, program_trains=trains)
            rows.append(
                PartnerHealth(
                    program_id=program.pk,
                    partner_id=pk,
                    day=today,
                    computed_at=now,
                    score=health.score,
                    program_trains=trains,
                    **{name: getattr(facts, name) for name in FACT_FIELDS},
                )
            )
        PartnerHealth.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["program_id", "partner_id"],
            update_fields=["day", "computed_at", "score", "program_trains", *FACT_FIELDS],
        )
    return len(partner_ids)


def at_risk_partners(*, program: Program, viewer, today: date | None = None, limit: int = 20) -> list[Health]:
    """The active partners the viewer looks after whose health is below AT_RISK_BELOW, the weakest first (then by
    name), at most `limit`, each with its `partner` (region and account manager loaded): an account manager's
    portfolio, every partner for a program manager, nobody for anyone else (partners.visibility).

    The stored scores (health_refresh) pick the weakest in the database; partners without a score for `today` are
    scored now. Four queries when every partner has its row."""
    today = today or timezone.localdate()
    viewer = viewer_for(viewer)
    stored = PartnerHealth.objects.filter(program_id=program.pk, partner_id=OuterRef("pk"), day=today)
    candidates = (
        viewer.portfolio.filter(status=PartnerStatus.ACTIVE)
        .annotate(stored_score=Subquery(stored.values("score")[:1]))
        .select_related("region", "account_manager")
    )
    partners = {
        p.pk: p
        for p in candidates.filter(stored_score__lt=AT_RISK_BELOW).order_by("stored_score", "name", "pk")[:limit]
    }
    partners.update((p.pk, p) for p in candidates.filter(stored_score__isnull=True))
    scores = health_scores(program=program, partner_ids=list(partners), today=today)
    weak = [replace(health, partner=partners[pk]) for pk, health in scores.items() if health.at_risk]
    weak.sort(key=lambda health: (health.score, health.partner.name, health.partner_id))
    return weak[:limit]
