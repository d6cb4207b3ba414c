"""Challenges: progress raised by the program's events, completion paid through the rules, the start announced, and
the results (final ranks, prizes) settled when a challenge ends.

Progress. earning.post_event calls `record_event` for every event it is given (paid by a rule or not; never for
"challenge completed" itself), the claims service calls `record_claim_approved` once per approved claim, and a
sell-out import calls `record_sale_lines` once per batch of lines. Each finds the program's *running* challenges
(published, started, not ended and not settled: one query, none more when none is running), keeps those whose
window holds the event's day and whose audience holds its facts, and measures the event with each goal:

    units sold       a sale line's quantity (of the goal's product line, or any line)
    sales amount     a sale line's amount (alike)
    modules passed   1 per "training passed" event
    referrals        1 per "referral converted" event
    events           1 per event of the goal's kind (and custom event, when the goal names one)
    claims approved  1 per approved claim (record_claim_approved)

Window: the event's day (`occurred_on`, a local date) counts from the local day the challenge starts on up to and
including the local day of its last moment (`ends_at` is exclusive: a challenge ending at midnight ends the day
before); local means the site's time zone (settings.TIME_ZONE). Audience: roles (the acting member's role), partner
types, tiers, regions; an empty list is anyone. An individual challenge credits the acting member (an event without
one credits nobody); a company challenge credits the partner's entry.

Once: an event counts at most once per challenge, also when post_event is retried or runs twice at once: a
CountedEvent row (challenge, source key) is inserted first, ON CONFLICT DO NOTHING, and only the challenges it was
new for are raised. A sell-out import needs no such rows: its lines are new by construction (one per source and
external id, and the whole import is one transaction).

Raising: the entries are upserted and locked in one statement per kind (people, companies; lock_objects), their
`progress` ({goal id: value}) raised in Python and written back in one UPDATE; `score` is the average over the
goals of min(value / target, 1) × 100, rounded down to 2 decimals (100 only when every goal is reached);
`normalised` is the score per active member for a company (its active members counted at each raise), the score
for a person. Progress never goes down (a return does not lower it). Per event that matches a challenge this is 4
queries (challenges, counted event, entry, update); per import batch the same 4, whatever the number of lines.

Milestones, once per entry under its lock: reaching 50 % sets `halfway_at` and, after commit, tells the member (a
company: its active members) — unless the same event completes the challenge; reaching 100 % sets `completed_at`
and pays through the rule engine: a "challenge completed" event (quantity = the challenge's completion points, unit
"pts offered", custom event = the challenge's code; source key `challenge:{id}:m{member}` or `:p{partner}`), so the
program's rules for it pay with their caps and budgets, exactly once (the ledger's keys); then the member (company:
its active members) hears what was paid. Completing pays nothing when no rule for "challenge completed" exists (the
admin warns when such a challenge is published).
The callers hand in earning.post_event for that (`post_event=`): earning calls this module, so this module does
not import it (the services import no cycle).

Lock order: counted events → challenge entries → what posting takes (rules, usage rows, accounts). Claims record
their approval before posting their lines, so they keep this order too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection, transaction
from django.db.models import CharField, Exists, OuterRef, Q
from django.db.models.functions import Cast, JSONObject
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from communications.constants import Kind
from communications.services import Notice, notify_many
from loyalty.common.errors import ApplicationError
from loyalty.constants import ChallengeLevel, EntrySource, GoalMetric, RuleEvent, RuleStatus
from loyalty.engine.facts import member_event, partner_event
from loyalty.engine.rules import Event
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import challenge_entries_lock_sql, challenge_lock
from loyalty.models import (
    Challenge,
    ChallengeEntry,
    ChallengeGoal,
    ChallengePrize,
    Course,
    IncentiveRule,
    Module,
    PartnerTier,
    Product,
    ProductLine,
    Program,
)
from loyalty.services import ledger
from partners.constants import MemberStatus, PartnerStatus
from partners.models import Member, Partner

HUNDRED = Decimal(100)
HALF = Decimal(50)
CENT = Decimal("0.01")
NORMALISED_PLACES = Decimal("0.0001")
ZERO = Decimal(0)
# The pseudo-kind of an approved claim (not a rule event: claims pay through their lines' "sale line" events).
CLAIM_APPROVED = "claim_approved"
SALE_LINE = RuleEvent.SALE_LINE.value
CHALLENGE_COMPLETED = RuleEvent.CHALLENGE_COMPLETED.value
_SALES_METRICS = (GoalMetric.UNITS_SOLD, GoalMetric.SALES_AMOUNT)
# Members told at once by one notify_many call (announcements, results).
NOTICE_CHUNK = 1000


# Running challenges as value objects -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Goal:
    id: int
    metric: str
    line_id: int | None
    event: str
    custom_event: str
    target: Decimal

    def measure(self, kind: str, custom_event: str, line_id: int | None, quantity: Decimal, amount: Decimal):
        """How much one event raises this goal (0: not at all)."""
        metric = self.metric
        if metric in (GoalMetric.UNITS_SOLD, GoalMetric.SALES_AMOUNT):
            if kind != SALE_LINE or (self.line_id is not None and self.line_id != line_id):
                return ZERO
            return quantity if metric == GoalMetric.UNITS_SOLD else amount
        if metric == GoalMetric.MODULES_PASSED:
            return Decimal(1) if kind == RuleEvent.TRAINING_PASSED else ZERO
        if metric == GoalMetric.REFERRALS_CONVERTED:
            return Decimal(1) if kind == RuleEvent.REFERRAL_CONVERTED else ZERO
        if metric == GoalMetric.CLAIMS_APPROVED:
            return Decimal(1) if kind == CLAIM_APPROVED else ZERO
        if metric == GoalMetric.EVENTS and self.event and kind == self.event:
            return Decimal(1) if not self.custom_event or self.custom_event == custom_event else ZERO
        return ZERO


@dataclass(frozen=True, slots=True)
class RunningChallenge:
    id: int
    code: str
    name: str
    level: str
    first_day: date
    last_day: date
    completion_points: int
    rank_by_size: bool
    roles: frozenset[str]
    partner_kinds: frozenset[str]
    tier_ids: frozenset[int]
    region_ids: frozenset[int]
    goals: tuple[Goal, ...]

    @property
    def is_company(self) -> bool:
        return self.level == ChallengeLevel.COMPANY

    def takes(self, day: date, role: str | None, partner_kind: str, tier_id: int | None, region_id: int | None) -> bool:
        """The day is in the window and the facts in the audience."""
        if day < self.first_day or day > self.last_day:
            return False
        if self.roles and role not in self.roles:
            return False
        if self.partner_kinds and partner_kind not in self.partner_kinds:
            return False
        if self.tier_ids and tier_id not in self.tier_ids:
            return False
        return not (self.region_ids and region_id not in self.region_ids)

    def measure(self, kind, custom_event, line_id, quantity, amount) -> dict[int, Decimal]:
        found = {}
        for goal in self.goals:
            value = goal.measure(kind, custom_event, line_id, quantity, amount)
            if value > 0:
                found[goal.id] = value
        return found


def last_day(ends_at: datetime) -> date:
    """The local day of a challenge's last moment (`ends_at` itself is not part of it)."""
    return timezone.localdate(ends_at - timedelta(microseconds=1))


def _ids(relation, column: str):
    return ArraySubquery(relation.objects.filter(challenge=OuterRef("pk")).order_by(column).values(column))


def running_challenges(*, program: Program, now: datetime | None = None) -> tuple[RunningChallenge, ...]:
    """The program's running challenges with their goals and audience, in one query."""
    now = now or timezone.now()
    goals = (
        ChallengeGoal.objects.filter(challenge=OuterRef("pk"))
        .order_by("position", "id")
        .values(
            row=JSONObject(
                id="id",
                metric="metric",
                line="product_line_id",
                event="event",
                custom="custom_event",
                target=Cast("target", CharField()),
            )
        )
    )
    rows = (
        Challenge.objects.filter(
            program=program, is_published=True, starts_at__lte=now, ends_at__gt=now, results_at__isnull=True
        )
        .annotate(
            goal_rows=ArraySubquery(goals),
            role_codes=ArraySubquery(
                Challenge.roles.through.objects.filter(challenge=OuterRef("pk"))
                .order_by("role_id")
                .values("role__code")
            ),
            tier_ids=_ids(Challenge.tiers.through, "tier_id"),
            region_ids=_ids(Challenge.regions.through, "region_id"),
        )
        .order_by("pk")
        .values_list(
            "pk",
            "code",
            "name",
            "level",
            "starts_at",
            "ends_at",
            "completion_points",
            "rank_companies_by_size",
            "partner_kinds",
            "goal_rows",
            "role_codes",
            "tier_ids",
            "region_ids",
        )  # fmt: skip
    )
    found = []
    for pk, code, name, level, starts_at, ends_at, points, by_size, kinds, goal_rows, roles, tiers, regions in rows:
        goal_rows = [json.loads(row) if isinstance(row, str) else row for row in goal_rows]
        if not goal_rows:
            continue  # nothing to measure
        found.append(
            RunningChallenge(
                id=pk,
                code=code,
                name=name,
                level=level,
                first_day=timezone.localdate(starts_at),
                last_day=last_day(ends_at),
                completion_points=points,
                rank_by_size=by_size,
                roles=frozenset(roles),
                partner_kinds=frozenset(kinds),
                tier_ids=frozenset(tiers),
                region_ids=frozenset(regions),
                goals=tuple(
                    Goal(row["id"], row["metric"], row["line"], row["event"], row["custom"], Decimal(row["target"]))
                    for row in goal_rows
                ),
            )
        )
    return tuple(found)


# Recording events ---------------------------------------------------------------------------------------------

# earning.post_event(*, program, event, source_type) -> the entries it posted: how a completion is paid. Passed in by
# the callers, as earning (which calls record_event) may not be imported here: services import no cycle.
PostEvent = Callable[..., list]
# (challenge id, member id or None for the company, partner id) -> {goal id: value to add}
Raises = dict[tuple[int, int | None, int], dict[int, Decimal]]


def record_event(
    *, program: Program, event: Event, post_event: PostEvent, challenges: Sequence[RunningChallenge] | None = None
) -> list[ChallengeEntry]:
    """Raise the entries this event counts for (once per challenge and source key); returns the entries raised.
    `post_event`: earning.post_event, which pays a completion (this module may not import earning, its caller)."""
    if event.kind == CHALLENGE_COMPLETED:
        return []  # completing pays through the rules; it never counts towards a challenge itself
    if challenges is None:
        challenges = running_challenges(program=program)
    if not challenges:
        return []
    actor = event.actor
    role = actor.role_code if actor is not None else None
    raises: Raises = {}
    for challenge in challenges:
        if not challenge.takes(event.occurred_on, role, event.partner_kind, event.tier_id, event.region_id):
            continue
        if not challenge.is_company and actor is None:
            continue
        values = challenge.measure(event.kind, event.custom_event, event.line_id, event.quantity, event.amount)
        if values:
            member_id = None if challenge.is_company else actor.member_id
            raises[(challenge.id, member_id, event.partner_id)] = values
    if not raises:
        return []
    new = _count_once(sorted({challenge_id for challenge_id, _, _ in raises}), event.source_key)
    raises = {holder: values for holder, values in raises.items() if holder[0] in new}
    return _raise(program, {c.id: c for c in challenges}, raises, post_event) if raises else []


def record_claim_approved(
    *, claim, post_event: PostEvent, challenges: Sequence[RunningChallenge] | None = None
) -> list[ChallengeEntry]:
    """An approved claim counts 1 for "claims approved" goals, for the claimant (or their company), on the day it
    was approved; once per claim. The claims service calls it when it approves, before posting the lines."""
    program = claim.program
    if challenges is None:
        challenges = running_challenges(program=program)
    if not any(goal.metric == GoalMetric.CLAIMS_APPROVED for challenge in challenges for goal in challenge.goals):
        return []
    event = member_event(
        kind=CLAIM_APPROVED,
        program=program,
        source_key=f"claim:{claim.pk}:approved",
        member=claim.member,
        occurred_on=timezone.localdate(claim.decided_at or timezone.now()),
    )
    return record_event(program=program, event=event, post_event=post_event, challenges=challenges)


def record_sale_lines(
    *, program: Program, lines: Iterable, post_event: PostEvent, challenges: Sequence[RunningChallenge] | None = None
) -> list[ChallengeEntry]:
    """A batch of a sell-out import's new lines (services.sellout.parse.Line, matched, with `paid_quantity` set):
    each counts for the part of it that pays (one sale counts once, like it pays once), aggregated per entry and
    written with a fixed number of statements whatever the number of lines."""
    if challenges is None:
        challenges = running_challenges(program=program)
    wanted = [c for c in challenges if any(goal.metric in _SALES_METRICS for goal in c.goals)]
    if not wanted:
        return []
    raises: Raises = defaultdict(lambda: defaultdict(Decimal))
    for line in lines:
        quantity = line.paid_quantity if line.paid_quantity is not None else line.quantity
        if quantity is None or quantity <= 0:
            continue
        amount = line.amount if quantity == line.quantity else _part(line.amount, quantity, line.quantity)
        partner, member, product = line.partner_facts, line.member_facts, line.product_facts
        role = member.role_code if member is not None else None
        tier_id = partner.tier.id if partner.tier is not None else None
        for challenge in wanted:
            if not challenge.takes(line.invoice_date, role, partner.kind, tier_id, partner.region_id):
                continue
            if not challenge.is_company and member is None:
                continue
            values = challenge.measure(SALE_LINE, "", product.line_id, quantity, amount)
            if values:
                holder = (challenge.id, None if challenge.is_company else member.id, partner.id)
                for goal_id, value in values.items():
                    raises[holder][goal_id] += value
    if not raises:
        return []
    raises = {holder: dict(values) for holder, values in raises.items()}
    return _raise(program, {c.id: c for c in wanted}, raises, post_event)


def _part(amount: Decimal, paid: Decimal, quantity: Decimal) -> Decimal:
    return (amount * paid / quantity).quantize(CENT, rounding=ROUND_HALF_UP)


COUNT_ONCE = (
    "INSERT INTO loyalty_countedevent (challenge_id, source_key, counted_at) "
    "SELECT c, %s, now() FROM unnest(%s::bigint[]) AS c ORDER BY c "
    "ON CONFLICT (challenge_id, source_key) DO NOTHING RETURNING challenge_id"
)


def _count_once(challenge_ids: list[int], source_key: str) -> set[int]:
    """The challenges this source key is new for (recorded now, so that it never counts twice)."""
    with connection.cursor() as cursor:
        cursor.execute(COUNT_ONCE, [source_key[:120], challenge_ids])
        return {row[0] for row in cursor.fetchall()}


# Raising entries -------------------------------------------------------------------------------------------------

RAISE = (
    "UPDATE loyalty_challengeentry AS e SET progress = v.progress::jsonb, score = v.score, normalised = v.normalised, "
    "halfway_at = v.halfway, completed_at = v.completed, updated_at = now() "
    "FROM unnest(%s::bigint[], %s::text[], %s::numeric[], %s::numeric[], %s::timestamptz[], %s::timestamptz[]) "
    "AS v(id, progress, score, normalised, halfway, completed) WHERE e.id = v.id"
)


def score_of(goals: Sequence[Goal], progress: dict) -> tuple[Decimal, bool]:
    """(score, every goal reached) for a progress {goal id (text): value}."""
    if not goals:
        return ZERO, False
    parts = [min(_value(progress.get(str(goal.id))) / goal.target, Decimal(1)) for goal in goals]
    complete = all(_value(progress.get(str(goal.id))) >= goal.target for goal in goals)
    if complete:
        return HUNDRED, True
    return (sum(parts) / len(parts) * HUNDRED).quantize(CENT, rounding=ROUND_DOWN), False  # below 100: rounded down


def _value(raw) -> Decimal:
    return ZERO if raw is None else Decimal(str(raw))


def _json_number(value: Decimal):
    return int(value) if value == value.to_integral_value() else float(value)


def _raise(
    program: Program, challenges: dict[int, RunningChallenge], raises: Raises, post_event: PostEvent
) -> list[ChallengeEntry]:
    now = timezone.now()
    people = sorted((c, m, p) for c, m, p in raises if m is not None)
    companies = sorted((c, m, p) for c, m, p in raises if m is None)
    rows = []
    with connection.cursor() as cursor:
        if people:
            rows += challenge_entries_lock_sql(cursor, people, company=False)
        if companies:
            rows += challenge_entries_lock_sql(cursor, companies, company=True)
        entries, halfway, completed = [], [], []
        for entry_id, challenge_id, partner_id, member_id, progress, active, halfway_at, completed_at in rows:
            challenge = challenges[challenge_id]
            progress = json.loads(progress) if isinstance(progress, str) else dict(progress or {})
            for goal_id, value in raises[(challenge_id, member_id, partner_id)].items():
                progress[str(goal_id)] = _json_number(_value(progress.get(str(goal_id))) + value)
            score, complete = score_of(challenge.goals, progress)
            active = max(active or 1, 1)
            normalised = (
                (score / active).quantize(NORMALISED_PLACES, rounding=ROUND_HALF_UP) if member_id is None else score
            )
            entry = ChallengeEntry(
                pk=entry_id, challenge_id=challenge_id, partner_id=partner_id, member_id=member_id, progress=progress,
                score=score, normalised=normalised, active_members=active, halfway_at=halfway_at,
                completed_at=completed_at,
            )  # fmt: skip
            entry._state.adding, entry._state.db = False, "default"
            if entry.halfway_at is None and score >= HALF:
                entry.halfway_at = now
                if not complete:
                    halfway.append(entry)
            if entry.completed_at is None and complete:
                entry.completed_at = now
                completed.append(entry)
            entries.append(entry)
        cursor.execute(
            RAISE,
            [
                [e.pk for e in entries],
                [json.dumps(e.progress, sort_keys=True) for e in entries],
                [e.score for e in entries],
                [e.normalised for e in entries],
                [e.halfway_at for e in entries],
                [e.completed_at for e in entries],
            ],
        )
    if halfway:
        _tell_halfway(challenges, halfway)
    for entry in completed:
        _complete(program, challenges[entry.challenge_id], entry, post_event)
    return entries


# Milestones ------------------------------------------------------------------------------------------------------


def challenge_link(challenge_id: int) -> str:
    """The member site's page of a challenge."""
    return reverse("challenge_detail", args=[challenge_id])


def _audience_of(entries: Iterable[ChallengeEntry]) -> dict[int, list[int]]:
    """{partner id: its active members' ids} for the company entries among `entries` (one query)."""
    partner_ids = {entry.partner_id for entry in entries if entry.member_id is None}
    if not partner_ids:
        return {}
    found = defaultdict(list)
    rows = Member.objects.filter(partner_id__in=partner_ids, status=MemberStatus.ACTIVE).order_by("pk")
    for member_id, partner_id in rows.values_list("pk", "partner_id"):
        found[partner_id].append(member_id)
    return found


def _people(entry: ChallengeEntry, companies: dict[int, list[int]]) -> list[int]:
    return [entry.member_id] if entry.member_id is not None else companies.get(entry.partner_id, [])


def _tell_halfway(challenges: dict[int, RunningChallenge], entries: list[ChallengeEntry]) -> None:
    def tell():
        companies = _audience_of(entries)
        by_challenge = defaultdict(list)
        for entry in entries:
            challenge = challenges[entry.challenge_id]
            variables = {
                "challenge": challenge.name,
                "percent": int(entry.score),
                "ends_on": challenge.last_day,
            }
            key = f"challenge:{challenge.id}:{_holder(entry)}:halfway"
            for member_id in _people(entry, companies):
                by_challenge[challenge.id].append(Notice(member_id, key, variables))
        for challenge_id, notices in by_challenge.items():
            notify_many(kind=Kind.CHALLENGE_HALFWAY, notices=notices, link_path=challenge_link(challenge_id))

    transaction.on_commit(tell)


def _holder(entry) -> str:
    return f"m{entry.member_id}" if entry.member_id is not None else f"p{entry.partner_id}"


def completion_event(*, program: Program, challenge, entry: ChallengeEntry, day: date) -> Event:
    """The "challenge completed" event of an entry: its points offered are the quantity, the code the custom event."""
    common = {
        "kind": CHALLENGE_COMPLETED,
        "program": program,
        "source_key": f"challenge:{challenge.id}:{_holder(entry)}",
        "occurred_on": day,
        "quantity": Decimal(challenge.completion_points),
        "unit": "pts offered",
        "subject": f"challenge “{challenge.name}”",
    }
    if entry.member_id is None:
        partner = Partner.objects.get(pk=entry.partner_id)
        return partner_event(partner=partner, custom_event=challenge.code, **common)
    member = Member.objects.select_related("partner", "role").get(pk=entry.member_id)
    return replace(member_event(member=member, **common), custom_event=challenge.code)


def _complete(program: Program, challenge: RunningChallenge, entry: ChallengeEntry, post_event: PostEvent) -> None:
    """Pay the completion through the rules (once: the ledger's keys) and tell who completed it what was paid."""
    event = completion_event(program=program, challenge=challenge, entry=entry, day=timezone.localdate())
    paid = post_event(program=program, event=event, source_type=EntrySource.CHALLENGE)
    # A company's points went to its account; a person hears of their own (a pooling partner's went to the company).
    points = sum(
        e.available_delta + e.pending_delta
        for e in paid
        if entry.member_id is None or e.account.member_id == entry.member_id
    )

    def tell():
        people = _people(entry, _audience_of([entry]))
        key = f"challenge:{challenge.id}:{_holder(entry)}:completed"
        variables = {"challenge": challenge.name, "points": points}
        notify_many(
            kind=Kind.CHALLENGE_COMPLETED,
            notices=[Notice(member_id, key, variables) for member_id in people],
            link_path=challenge_link(challenge.id),
        )

    transaction.on_commit(tell)


# Starting: the announcement ---------------------------------------------------------------------------------------


def audience_members(challenge: Challenge):
    """The active members (of active partners) a challenge is for: its roles, partner types, tiers and regions."""
    members = Member.objects.filter(status=MemberStatus.ACTIVE, partner__status=PartnerStatus.ACTIVE)
    role_ids = list(challenge.roles.values_list("pk", flat=True))
    tier_ids = list(challenge.tiers.values_list("pk", flat=True))
    region_ids = list(challenge.regions.values_list("pk", flat=True))
    if role_ids:
        members = members.filter(role_id__in=role_ids)
    if challenge.partner_kinds:
        members = members.filter(partner__kind__in=challenge.partner_kinds)
    if region_ids:
        members = members.filter(partner__region_id__in=region_ids)
    if tier_ids:
        tiered = PartnerTier.objects.filter(program=challenge.program_id, tier_id__in=tier_ids)
        members = members.filter(partner_id__in=tiered.values("partner_id"))
    return members


def describe_goal(goal: ChallengeGoal) -> str:
    """A goal in words, in the active language ("10 units of Softeners sold"; its product line loaded)."""
    target = goal.target
    integral = target == target.to_integral()
    number = formats.number_format(target.normalize() if integral else target, use_l10n=True, force_grouping=True)
    line = goal.product_line.name if goal.product_line_id else ""
    whole = int(target) if integral else 2  # the plural form: "1.5 units"
    metric = goal.metric
    if metric == GoalMetric.UNITS_SOLD:
        if line:
            return ngettext("%(n)s unit of %(line)s sold", "%(n)s units of %(line)s sold", whole) % {
                "n": number,
                "line": line,
            }
        return ngettext("%(n)s unit sold", "%(n)s units sold", whole) % {"n": number}
    if metric == GoalMetric.SALES_AMOUNT:
        if line:
            return _("sales of %(line)s worth %(n)s") % {"n": number, "line": line}
        return _("sales worth %(n)s") % {"n": number}
    if metric == GoalMetric.CLAIMS_APPROVED:
        return ngettext("%(n)s claim approved", "%(n)s claims approved", whole) % {"n": number}
    if metric == GoalMetric.MODULES_PASSED:
        return ngettext("%(n)s training module passed", "%(n)s training modules passed", whole) % {"n": number}
    if metric == GoalMetric.REFERRALS_CONVERTED:
        return ngettext("%(n)s referral converted", "%(n)s referrals converted", whole) % {"n": number}
    label = RuleEvent(goal.event).label if goal.event in RuleEvent.values else goal.event
    return _("%(n)s × %(event)s") % {"n": number, "event": label}


def goals_text(challenge: Challenge) -> str:
    goals = list(challenge.goals.select_related("product_line").order_by("position", "id"))
    return "; ".join(describe_goal(goal) for goal in goals)


def start_due_challenges(*, now: datetime | None = None) -> int:
    """Announce the published challenges that have started (and not ended) and were not announced yet: every active
    member of the audience hears of it (CHALLENGE_STARTED). Returns how many challenges were announced. Running it
    again announces nothing twice (the challenge's `started_notified_at`, under its row lock)."""
    now = now or timezone.now()
    due = Challenge.objects.filter(
        is_published=True, starts_at__lte=now, ends_at__gt=now, started_notified_at__isnull=True
    ).order_by("starts_at", "pk")
    announced = 0
    for pk in due.values_list("pk", flat=True):
        announced += challenge_announce(challenge_id=pk, now=now)
    return announced


@transaction.atomic
def challenge_announce(*, challenge_id: int, now: datetime | None = None) -> bool:
    """Announce one challenge (see start_due_challenges); False when it was announced already or is not due."""
    now = now or timezone.now()
    challenge = challenge_lock(challenge_id)
    if challenge.started_notified_at is not None or not challenge.is_published:
        return False
    if not challenge.starts_at <= now < challenge.ends_at:
        return False
    Challenge.objects.filter(pk=challenge.pk).update(started_notified_at=now)
    texts: dict[str, str] = {}
    key = f"challenge:{challenge.pk}:started"
    link = challenge_link(challenge.pk)
    ends_on = last_day(challenge.ends_at)
    members = audience_members(challenge).order_by("pk").values_list("pk", "language")
    chunk = []
    for member_id, language in members.iterator(chunk_size=NOTICE_CHUNK):
        if language not in texts:
            with translation.override(language):
                texts[language] = goals_text(challenge)
        variables = {
            "challenge": challenge.name,
            "goals": texts[language],
            "points": challenge.completion_points,
            "ends_on": ends_on,
        }
        chunk.append(Notice(member_id, key, variables))
        if len(chunk) >= NOTICE_CHUNK:
            notify_many(kind=Kind.CHALLENGE_STARTED, notices=chunk, link_path=link)
            chunk = []
    notify_many(kind=Kind.CHALLENGE_STARTED, notices=chunk, link_path=link)
    return True


# Ending: ranks, prizes and results --------------------------------------------------------------------------------

RANK = (
    "UPDATE loyalty_challengeentry AS e SET final_rank = r.rank FROM ("
    "SELECT id, row_number() OVER (ORDER BY {order} DESC, completed_at ASC NULLS LAST, id) AS rank "
    "FROM loyalty_challengeentry WHERE challenge_id = %s) AS r WHERE e.id = r.id"
)


def settle_ended_challenges(*, now: datetime | None = None) -> int:
    """Settle every published challenge that has ended and has no results yet; returns how many were settled."""
    now = now or timezone.now()
    due = Challenge.objects.filter(is_published=True, ends_at__lte=now, results_at__isnull=True)
    settled = 0
    for challenge in due.order_by("ends_at", "pk"):
        settled += challenge_settle(challenge=challenge, now=now)
    return settled


def prize_text(prize: ChallengePrize) -> str:
    """What a prize is, in the active language ("1,000 points and a session with our experts")."""
    parts = []
    if prize.points:
        points = formats.number_format(prize.points, use_l10n=True, force_grouping=True)
        parts.append(ngettext("%(points)s point", "%(points)s points", prize.points) % {"points": points})
    if prize.description:
        parts.append(prize.description)
    return _(" and ").join(parts)


@transaction.atomic
def challenge_settle(*, challenge: Challenge, now: datetime | None = None) -> bool:
    """Settle an ended challenge: every entry's final rank (one UPDATE: by score, or by score per active member when
    companies are ranked by size; ties go to who completed first, then who joined first), the prizes of ranks
    1..N paid through the ledger to the winners with a score above 0 (key `challenge:{id}:prize:{rank}`; a company
    entry's to the partner's account), every participant (a company: its active members) told the result after
    commit, and `results_at` set. Settling again changes nothing (False); one that has not ended is refused."""
    now = now or timezone.now()
    locked = challenge_lock(challenge.pk)
    if locked.results_at is not None:
        return False
    if locked.ends_at > now:
        raise ApplicationError(
            _("“%(name)s” runs until %(end)s: its results can be settled once it has ended.")
            % {"name": locked.name, "end": formats.date_format(timezone.localtime(locked.ends_at), "DATETIME_FORMAT")},
            code=ErrorCode.CHALLENGE_NOT_ENDED,
        )
    order = "normalised" if locked.rank_companies_by_size else "score"
    with connection.cursor() as cursor:
        cursor.execute(RANK.format(order=order), [locked.pk])
    entries = list(ChallengeEntry.objects.filter(challenge=locked).order_by("final_rank"))
    prizes = {prize.rank: prize for prize in ChallengePrize.objects.filter(challenge=locked)}
    program = locked.program
    won: dict[int, ChallengePrize] = {}
    for entry in entries:
        prize = prizes.get(entry.final_rank)
        if prize is None or entry.score <= 0:
            continue
        won[entry.pk] = prize
        if prize.points > 0:
            if entry.member_id is None:
                account = ledger.partner_account(program=program, partner=entry.partner_id)
            else:
                account = ledger.member_account(program=program, member=entry.member_id)
            ledger.earn(
                account=account,
                points=prize.points,
                key=f"challenge:{locked.pk}:prize:{entry.final_rank}",
                source_type=EntrySource.CHALLENGE,
                source_id=f"challenge:{locked.pk}",
                explanation=f"Prize for rank {entry.final_rank} in the challenge “{locked.name}”"[:500],
                details={"challenge": locked.pk, "rank": entry.final_rank},
            )
    Challenge.objects.filter(pk=locked.pk).update(results_at=now)
    challenge.results_at = now
    transaction.on_commit(lambda: _tell_results(locked, entries, won))
    return True


def _tell_results(challenge: Challenge, entries: list[ChallengeEntry], won: dict[int, ChallengePrize]) -> None:
    companies = _audience_of(entries)
    winners = [member_id for entry in entries if entry.pk in won for member_id in _people(entry, companies)]
    languages = dict(Member.objects.filter(pk__in=winners).values_list("pk", "language")) if winners else {}
    participants = len(entries)
    link = challenge_link(challenge.pk)
    chunk = []
    for entry in entries:
        prize = won.get(entry.pk)
        key = f"challenge:{challenge.pk}:{_holder(entry)}:results"
        for member_id in _people(entry, companies):
            text = ""
            if prize is not None:
                with translation.override(languages.get(member_id)):
                    text = prize_text(prize)
            variables = {
                "challenge": challenge.name,
                "rank": entry.final_rank,
                "participants": participants,
                "prize": text,
            }
            chunk.append(Notice(member_id, key, variables))
            if len(chunk) >= NOTICE_CHUNK:
                notify_many(kind=Kind.CHALLENGE_RESULTS, notices=chunk, link_path=link)
                chunk = []
    notify_many(kind=Kind.CHALLENGE_RESULTS, notices=chunk, link_path=link)


# Checking a challenge before it is saved --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoalDraft:
    """A goal as a form has it, before it is saved."""

    metric: str
    target: Decimal | None
    product_line_id: int | None = None
    event: str = ""
    custom_event: str = ""


def window_problems(
    *, starts_at: datetime | None, ends_at: datetime | None, now: datetime | None = None, was_ends_at=None
) -> list[tuple[str, str]]:
    """[(field, message)] about a challenge's window: it must end after it starts, and a new end in the past (or a
    new challenge that already ended) could never be reached. `was_ends_at`: the end saved before (kept as it was,
    to the second a form shows, an ended challenge may still be edited)."""
    now = now or timezone.now()
    problems = []
    if starts_at and ends_at and ends_at <= starts_at:
        problems.append(("ends_at", _("The challenge must end after it starts.")))
    elif ends_at and ends_at <= now and not (was_ends_at and abs(ends_at - was_ends_at) < timedelta(seconds=1)):
        problems.append(("ends_at", _("This end is in the past: nobody could take part any more.")))
    return problems


def goal_problems(
    *,
    program: Program | None,
    level: str,
    role_ids: Iterable[int],
    partner_kinds: Iterable[str],
    goals: Sequence[GoalDraft],
) -> list[str]:
    """Why these goals could never be met, as messages: no goal at all; units or sales of a product line without an
    active product; more modules to pass than the program has published for the audience (a person); events without
    a kind, or of the kind "challenge completed" (never counted)."""
    goals = [goal for goal in goals if goal.metric]
    if not goals:
        return [_("Add at least one goal: a challenge without goals can never be completed.")]
    problems = []
    lines = {goal.product_line_id for goal in goals if goal.product_line_id and goal.metric in _SALES_METRICS}
    if lines:
        active = set(
            Product.objects.filter(line_id__in=lines, is_active=True).values_list("line_id", flat=True).distinct()
        )
        names = dict(ProductLine.objects.filter(pk__in=lines - active).values_list("pk", "name"))
        for line_id in sorted(lines - active):
            problems.append(
                _("The product line %(line)s has no active product: nobody can sell it, so its goal can never be met.")
                % {"line": names.get(line_id, line_id)}
            )
    modules_wanted = [g.target for g in goals if g.metric == GoalMetric.MODULES_PASSED and g.target is not None]
    if modules_wanted and level == ChallengeLevel.INDIVIDUAL and program is not None:
        available = modules_for(program=program, role_ids=role_ids, partner_kinds=partner_kinds)
        for target in modules_wanted:
            if target > available:
                problems.append(
                    ngettext(
                        "The goal asks for %(target)s modules passed, but the program has only %(count)s published "
                        "module for this audience.",
                        "The goal asks for %(target)s modules passed, but the program has only %(count)s published "
                        "modules for this audience.",
                        available,
                    )
                    % {"target": formats.number_format(target.normalize(), use_l10n=True), "count": available}
                )
    for goal in goals:
        if goal.metric != GoalMetric.EVENTS:
            continue
        if not goal.event:
            problems.append(_("A goal of events needs the kind of event it counts."))
        elif goal.event == CHALLENGE_COMPLETED:
            problems.append(_("Completing a challenge never counts towards a challenge: choose another kind of event."))
    return problems


def modules_for(*, program: Program, role_ids: Iterable[int], partner_kinds: Iterable[str]) -> int:
    """How many published modules (of published courses) of the program some member of the audience can pass: a
    course for any role or for one of the audience's roles (any role when the audience names none), and alike for
    partner types."""
    role_ids, partner_kinds = list(role_ids), list(partner_kinds)
    modules = Module.objects.filter(course__program=program, course__is_published=True)
    if role_ids:
        for_any_role = ~Exists(Course.roles.through.objects.filter(course=OuterRef("course_id")))
        for_the_roles = Exists(Course.roles.through.objects.filter(course=OuterRef("course_id"), role_id__in=role_ids))
        modules = modules.filter(for_any_role | for_the_roles)
    if partner_kinds:
        modules = modules.filter(Q(course__partner_kinds=[]) | Q(course__partner_kinds__overlap=partner_kinds))
    return modules.count()


def prize_problems(*, points: int | None, description: str) -> list[str]:
    if not points and not (description or "").strip():
        return [_("Give the prize points or describe it (or both).")]
    return []


def validate_challenge(
    *,
    challenge: Challenge,
    goals: Sequence[GoalDraft],
    role_ids: Iterable[int] = (),
    prizes: Iterable[tuple[int | None, str]] = (),
    now: datetime | None = None,
    was_ends_at=None,
) -> None:
    """Refuse (ApplicationError, every problem in one message) a challenge whose goals could never be met: the
    checks of window_problems, goal_problems and prize_problems together (the admin's form asks them one by one)."""
    messages = [message for _field, message in window_problems(
        starts_at=challenge.starts_at, ends_at=challenge.ends_at, now=now, was_ends_at=was_ends_at
    )]  # fmt: skip
    messages += goal_problems(
        program=challenge.program,
        level=challenge.level,
        role_ids=role_ids,
        partner_kinds=challenge.partner_kinds,
        goals=goals,
    )
    for points, description in prizes:
        messages += prize_problems(points=points, description=description)
    if messages:
        raise ApplicationError(" ".join(messages), code=ErrorCode.CHALLENGE_UNREACHABLE)


def publish_warnings(*, challenge: Challenge, now: datetime | None = None) -> list[str]:
    """What the admin warns about when a challenge is published (not errors): completion points offered while no
    published rule pays for "challenge completed" (nothing would be paid)."""
    if not challenge.is_published or not challenge.completion_points:
        return []
    now = now or timezone.now()
    rules = IncentiveRule.objects.filter(
        program=challenge.program_id,
        status=RuleStatus.PUBLISHED,
        event=RuleEvent.CHALLENGE_COMPLETED,
        custom_event__in=["", challenge.code],
    ).exclude(effective_until__lte=now)
    if rules.exists():
        return []
    return [
        _(
            "Nothing will be paid until a rule for “challenge completed” exists: %(points)s points are offered for "
            "completing “%(name)s”, but no published rule of the program pays for completing it."
        )
        % {"points": formats.number_format(challenge.completion_points, use_l10n=True, force_grouping=True),
           "name": challenge.name}
    ]  # fmt: skip


# What the admin lists ----------------------------------------------------------------------------------------


def challenge_status(challenge: Challenge, now: datetime | None = None) -> str:
    """draft, upcoming, running, ended (results to settle) or settled."""
    now = now or timezone.now()
    if not challenge.is_published:
        return "draft"
    if challenge.results_at is not None:
        return "settled"
    if now < challenge.starts_at:
        return "upcoming"
    return "running" if now < challenge.ends_at else "ended"
