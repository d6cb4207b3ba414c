"""Reads of challenges that members see: the challenges of their audience (running, upcoming, finished) with their
own entry (a member's, or their company's for company-level challenges) and the progress on each goal, and the
"My challenges" panel of the home page. Each in a constant number of queries, whatever the number of challenges,
goals and participants.

Who sees a challenge: a partner's current member, for a published challenge of the program whose audience they
belong to: their role (individual challenges only: at a company challenge the company takes part, and the role only
says whose events count), their partner's type, tier and region; an empty audience field means everyone. Anyone
else sees none (the pages answer 404). Progress is written by loyalty.services.challenges; this module only reads.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, Window
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from loyalty.common.formatting import format_money
from loyalty.constants import ChallengeLevel, GoalMetric, RuleEvent
from loyalty.models import Challenge, ChallengeEntry, ChallengeGoal, ChallengePrize, PartnerTier, Program
from partners.visibility import viewer_for

RUNNING, UPCOMING, FINISHED = "running", "upcoming", "finished"
# Finished challenges the list shows: the most recent ones.
FINISHED_SHOWN = 10
# Running challenges on the home page's panel.
HOME_PANEL_SIZE = 3
HUNDRED = Decimal(100)


# Who sees which challenge -------------------------------------------------------------------------------------


def _open_or(through, field: str, value) -> Q:
    """The audience field (a many-to-many `through` table) is empty for the challenge, or lists `value`."""
    listed = through.objects.filter(challenge=OuterRef("pk"))
    return Q(~Exists(listed)) | Q(Exists(listed.filter(**{field: value})))


def challenges_for(viewer, *, program: Program | None) -> QuerySet[Challenge]:
    """The published challenges of `program` whose audience the viewer (their current membership) belongs to; none
    for anyone without a membership. No joins: add what the rows show."""
    member = viewer_for(viewer).member
    if member is None or program is None:
        return Challenge.objects.none()
    partner = member.partner
    tier = PartnerTier.objects.filter(program=program, partner=partner.pk).values("tier_id")[:1]
    return Challenge.objects.filter(program=program, is_published=True).filter(
        _open_or(Challenge.roles.through, "role", member.role_id) | Q(level=ChallengeLevel.COMPANY),
        Q(partner_kinds=[]) | Q(partner_kinds__contains=[partner.kind]),
        _open_or(Challenge.tiers.through, "tier", Subquery(tier)),
        _open_or(Challenge.regions.through, "region", partner.region_id),
    )


def challenge_get(*, viewer, program: Program | None, pk: int) -> Challenge:
    """One challenge the viewer may see, with its goals (and their product lines) and prizes;
    Challenge.DoesNotExist otherwise. Marked as seen by the viewer, so that its leaderboard does not check again."""
    challenge = (
        challenges_for(viewer, program=program)
        .select_related("program")
        .prefetch_related(_goals(), "prizes")
        .get(pk=pk)
    )
    challenge.audience_of = viewer_for(viewer).member.pk
    return challenge


def _goals() -> Prefetch:
    return Prefetch("goals", queryset=ChallengeGoal.objects.select_related("product_line").order_by("position", "pk"))


# Progress -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalProgress:
    goal: ChallengeGoal
    value: Decimal
    target: Decimal
    percent: int  # 0 to 100, rounded down: 100 only when reached
    text: str  # "7 of 10 units of Softeners"


@dataclass(frozen=True)
class ChallengeCard:
    """A challenge as the member's pages show it: their entry (None before their first counted event), the progress
    on each goal, and what time says about it."""

    challenge: Challenge
    entry: ChallengeEntry | None
    goals: list[GoalProgress]
    state: str  # RUNNING, UPCOMING or FINISHED
    time_text: str  # "3 days left", "Starts in 2 days", "Ended"

    @property
    def score(self) -> Decimal:
        return self.entry.score if self.entry is not None else Decimal(0)

    @property
    def percent(self) -> int:
        return _percent(self.score, HUNDRED)

    @property
    def completed(self) -> bool:
        return self.entry is not None and self.entry.completed_at is not None

    @property
    def final_rank(self) -> int | None:
        return self.entry.final_rank if self.entry is not None else None

    @property
    def prize(self) -> ChallengePrize | None:
        """What the entry won, once the results are settled."""
        rank = self.final_rank
        if rank is None or self.challenge.results_at is None:
            return None
        return next((prize for prize in self.challenge.prizes.all() if prize.rank == rank), None)

    @property
    def is_company(self) -> bool:
        return self.challenge.level == ChallengeLevel.COMPANY


@dataclass(frozen=True)
class ChallengeLists:
    running: list[ChallengeCard]
    upcoming: list[ChallengeCard]
    finished: list[ChallengeCard]

    @property
    def empty(self) -> bool:
        return not (self.running or self.upcoming or self.finished)


def _percent(value: Decimal, target: Decimal) -> int:
    if target <= 0:
        return 100
    ratio = min(max(Decimal(value) / Decimal(target), Decimal(0)), Decimal(1))
    return int((ratio * HUNDRED).to_integral_value(rounding=ROUND_DOWN))


def _number(value: Decimal) -> str:
    """A quantity as the reader's language writes it, without decimals when it has none."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return number_format(int(value), use_l10n=True, force_grouping=True)
    return number_format(value.normalize(), use_l10n=True, force_grouping=True)


def _plural(target: Decimal) -> int:
    return int(target) if target == target.to_integral_value() else 2


def goal_text(goal: ChallengeGoal, value: Decimal, *, currency: str) -> str:
    """The goal and how far it is reached, in words: "7 of 10 units of Softeners"."""
    target, count = goal.target, _plural(goal.target)
    words = {"value": _number(value), "target": _number(target)}
    line = goal.product_line.name if goal.product_line_id else ""
    match goal.metric:
        case GoalMetric.UNITS_SOLD if line:
            text = ngettext(
                "%(value)s of %(target)s unit of %(line)s", "%(value)s of %(target)s units of %(line)s", count
            )
            return text % {**words, "line": line}
        case GoalMetric.UNITS_SOLD:
            return ngettext("%(value)s of %(target)s unit sold", "%(value)s of %(target)s units sold", count) % words
        case GoalMetric.SALES_AMOUNT:
            money = {"value": format_money(Decimal(value), currency), "target": format_money(target, currency)}
            if line:
                return _("%(value)s of %(target)s of %(line)s sales") % {**money, "line": line}
            return _("%(value)s of %(target)s of sales") % money
        case GoalMetric.CLAIMS_APPROVED:
            text = ngettext("%(value)s of %(target)s claim approved", "%(value)s of %(target)s claims approved", count)
            return text % words
        case GoalMetric.MODULES_PASSED:
            text = ngettext(
                "%(value)s of %(target)s training module passed",
                "%(value)s of %(target)s training modules passed",
                count,
            )
            return text % words
        case GoalMetric.REFERRALS_CONVERTED:
            text = ngettext(
                "%(value)s of %(target)s referral converted", "%(value)s of %(target)s referrals converted", count
            )
            return text % words
        case _:
            kind = goal.custom_event or (RuleEvent(goal.event).label if goal.event in RuleEvent.values else "")
            return _("%(value)s of %(target)s: %(event)s") % {**words, "event": kind}


def goal_progress(challenge: Challenge, entry: ChallengeEntry | None, *, currency: str) -> list[GoalProgress]:
    """Each goal of the challenge (prefetched) with the value the entry reached."""
    progress = entry.progress if entry is not None else {}
    rows = []
    for goal in challenge.goals.all():
        value = Decimal(str(progress.get(str(goal.pk), progress.get(goal.pk, 0)) or 0))
        rows.append(
            GoalProgress(
                goal=goal,
                value=value,
                target=goal.target,
                percent=_percent(value, goal.target),
                text=goal_text(goal, value, currency=currency),
            )
        )
    return rows


def state_of(challenge: Challenge, now: datetime) -> str:
    if challenge.ends_at <= now:
        return FINISHED
    return UPCOMING if challenge.starts_at > now else RUNNING


def _span(seconds: float, *, days, hours, soon: str) -> str:
    """`days(n)` or `hours(n)` (each an ngettext with its literal texts, for makemessages) or `soon`."""
    count = int(seconds // 86_400)
    if count >= 1:
        return days(count) % {"count": count}
    count = int(seconds // 3_600)
    if count >= 1:
        return hours(count) % {"count": count}
    return soon


def time_text(challenge: Challenge, now: datetime) -> str:
    """How long the challenge still runs, or how soon it starts."""
    state = state_of(challenge, now)
    if state == FINISHED:
        return _("Ended")
    if state == UPCOMING:
        return _span(
            (challenge.starts_at - now).total_seconds(),
            days=lambda n: ngettext("Starts in %(count)d day", "Starts in %(count)d days", n),
            hours=lambda n: ngettext("Starts in %(count)d hour", "Starts in %(count)d hours", n),
            soon=_("Starts within the hour"),
        )
    return _span(
        (challenge.ends_at - now).total_seconds(),
        days=lambda n: ngettext("%(count)d day left", "%(count)d days left", n),
        hours=lambda n: ngettext("%(count)d hour left", "%(count)d hours left", n),
        soon=_("Less than an hour left"),
    )


def _own_entries(viewer, challenges: list[Challenge]) -> dict[int, ChallengeEntry]:
    """The viewer's entry in each challenge: theirs in individual challenges, their company's in company ones."""
    member = viewer_for(viewer).member
    if not challenges or member is None:
        return {}
    entries = ChallengeEntry.objects.filter(challenge__in=[c.pk for c in challenges]).filter(
        Q(member=member) | Q(member__isnull=True, partner=member.partner_id)
    )
    level = {c.pk: c.level for c in challenges}
    return {
        entry.challenge_id: entry
        for entry in entries
        if (entry.member_id is None) == (level[entry.challenge_id] == ChallengeLevel.COMPANY)
    }


def card(challenge: Challenge, entry: ChallengeEntry | None, *, now: datetime) -> ChallengeCard:
    return ChallengeCard(
        challenge=challenge,
        entry=entry,
        goals=goal_progress(challenge, entry, currency=challenge.program.money_currency),
        state=state_of(challenge, now),
        time_text=time_text(challenge, now),
    )


def challenge_list(*, viewer, program: Program | None, now: datetime | None = None) -> ChallengeLists:
    """The viewer's challenges: running (ending soonest first), upcoming (starting soonest first) and the most recent
    finished ones, each with the viewer's entry and goal progress. Four queries: the challenges, their goals, their
    prizes and the viewer's entries."""
    now = now or timezone.now()
    visible = challenges_for(viewer, program=program)
    recent = visible.filter(ends_at__lte=now).order_by("-ends_at", "-pk").values("pk")[:FINISHED_SHOWN]
    challenges = list(
        visible.filter(Q(ends_at__gt=now) | Q(pk__in=recent))
        .select_related("program")
        .prefetch_related(_goals(), "prizes")
        .order_by("ends_at", "pk")
    )
    entries = _own_entries(viewer, challenges)
    cards = [card(challenge, entries.get(challenge.pk), now=now) for challenge in challenges]
    return ChallengeLists(
        running=[c for c in cards if c.state == RUNNING],
        upcoming=sorted(
            (c for c in cards if c.state == UPCOMING), key=lambda c: (c.challenge.starts_at, c.challenge.pk)
        ),
        finished=sorted(
            (c for c in cards if c.state == FINISHED), key=lambda c: (c.challenge.ends_at, c.challenge.pk), reverse=True
        ),
    )


_UNREAD = object()


def challenge_card(*, viewer, challenge: Challenge, entry=_UNREAD, now: datetime | None = None) -> ChallengeCard:
    """The card of one challenge from challenge_get. `entry`: the viewer's (None: they have none), when already read
    (the leaderboard reads it); else it is read here."""
    now = now or timezone.now()
    if entry is _UNREAD:
        entry = _own_entries(viewer, [challenge]).get(challenge.pk)
    return card(challenge, entry, now=now)


# The home page's panel ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HomeChallenge:
    challenge: Challenge
    score: Decimal
    percent: int
    time_text: str


@dataclass(frozen=True)
class HomePanel:
    challenges: list[HomeChallenge]
    total: int  # running challenges of the viewer, the ones shown included


def home_challenges(*, viewer, program: Program | None, now: datetime | None = None) -> HomePanel:
    """The running challenges of the viewer ending soonest (HOME_PANEL_SIZE of them) with the viewer's score, and
    how many run in all: one query."""
    now = now or timezone.now()
    member = viewer_for(viewer).member
    if member is None or program is None:
        return HomePanel(challenges=[], total=0)
    entries = ChallengeEntry.objects.filter(challenge=OuterRef("pk"))
    rows = list(
        challenges_for(viewer, program=program)
        .filter(starts_at__lte=now, ends_at__gt=now)
        .annotate(
            own_score=Subquery(entries.filter(member=member).values("score")[:1]),
            company_score=Subquery(entries.filter(member__isnull=True, partner=member.partner_id).values("score")[:1]),
            running=Window(Count("pk")),
        )
        .order_by("ends_at", "pk")[:HOME_PANEL_SIZE]
    )
    shown = []
    for challenge in rows:
        score = challenge.company_score if challenge.level == ChallengeLevel.COMPANY else challenge.own_score
        score = score or Decimal(0)
        shown.append(
            HomeChallenge(
                challenge=challenge, score=score, percent=_percent(score, HUNDRED), time_text=time_text(challenge, now)
            )
        )
    return HomePanel(challenges=shown, total=rows[0].running if rows else 0)
