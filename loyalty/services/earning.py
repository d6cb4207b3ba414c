"""Posting what the rule engine decides: one event, or the reversal of one, through the ledger.

Every posting's idempotency key is derived from the source line, the rule version and the beneficiary,
so the same line posted twice (a re-imported file, a retried request) posts nothing new. Caps and budgets
are enforced exactly under concurrency: rule and usage rows are locked first (ascending ids), then the
accounts (ascending ids), so two events can never wait on each other in a circle.
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import F, Q

from loyalty.common.errors import ApplicationError
from loyalty.constants import EntryKind, EntrySource, RuleStatus
from loyalty.engine.facts import certify
from loyalty.engine.limits import MemoryLimiter, limit, period_start
from loyalty.engine.rules import Event, Posting, compile_rules, evaluate
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import accounts_lock, budget_rules_lock, rule_usage_lock
from loyalty.models import IncentiveRule, PointsAccount, PointsEntry, Program, RuleUsage
from loyalty.selectors.negotiated import named_partner_ids
from loyalty.services import challenges, ledger, standings


def published_rules(program: Program):
    """The compiled rules of a program that ever were in force; each version's effective dates decide which
    one applies to an event's date (compile once, evaluate many events)."""
    rules = (
        IncentiveRule.objects.filter(program=program, status__in=[RuleStatus.PUBLISHED, RuleStatus.RETIRED])
        .select_related("requires_certification")
        .prefetch_related("roles", "tiers", "regions", "product_lines", "products")
        .annotate(named_partner_ids=named_partner_ids())
    )
    return compile_rules(rules)


def explained(posting: Posting, points: int) -> str:
    """A posting's explanation for the points it pays after its rule's cap or budget (posted or previewed alike)."""
    if points < posting.points:
        return posting.explanation + f" — limited to {points} by the rule's cap or budget"
    return posting.explanation


def posting_key(event: Event, posting: Posting) -> str:
    return f"{event.source_key}:r{posting.rule_id}:{posting.beneficiary_key}"


class LockedLimiter:
    """Caps and budgets read from rows this transaction has locked."""

    def __init__(self, rules: dict[int, IncentiveRule], usages: dict[tuple[int, int, date], RuleUsage]):
        self.rules, self.usages = rules, usages

    def used_by_member(self, rule_id, member_id, period):
        return self.usages[(rule_id, member_id, period)].points

    def used_by_rule(self, rule_id):
        return self.rules[rule_id].budget_used

    def record(self, rule_id, member_id, period, points):
        usage = self.usages.get((rule_id, member_id, period))
        if usage is not None:
            RuleUsage.objects.filter(pk=usage.pk).update(points=F("points") + points)
            usage.points += points
        rule = self.rules.get(rule_id)
        if rule is not None:
            IncentiveRule.objects.filter(pk=rule_id).update(budget_used=F("budget_used") + points)
            rule.budget_used += points


def _lock_limits(postings: list[Posting], day: date) -> LockedLimiter:
    budget_ids = sorted({p.rule_id for p in postings if p.budget_points is not None})
    rules = budget_rules_lock(budget_ids)
    wanted = sorted(
        {
            (p.rule_id, p.member_id, period_start(p.cap_period, day))
            for p in postings
            if p.cap_points is not None and p.member_id is not None
        }
    )
    if wanted:
        RuleUsage.objects.bulk_create(
            [RuleUsage(rule_id=r, member_id=m, period_start=d) for r, m, d in wanted], ignore_conflicts=True
        )
    usages = {}
    for rule_id, member_id, start in wanted:
        usage = rule_usage_lock(rule_id=rule_id, member_id=member_id, period_start=start)
        usages[(rule_id, member_id, start)] = usage
    return LockedLimiter(rules, usages)


@transaction.atomic
def post_event(
    *, program: Program, event: Event, rules=None, source_type: str = EntrySource.SALE_LINE
) -> list[PointsEntry]:
    """Evaluate the event and post what it earns. Returns the entries (earlier ones on a repeat)."""
    rules = published_rules(program) if rules is None else rules
    event = certify(event, rules)  # the participants' certificates, when a rule requires one
    # Challenges count every event, whether a rule pays it or not (services.challenges: once per source key).
    challenges.record_event(program=program, event=event, post_event=post_event)
    postings = evaluate(event, rules)
    if not postings:
        return []
    accounts = {}
    for posting in postings:
        if posting.member_id is None:
            accounts[posting.beneficiary_key] = ledger.partner_account(program=program, partner=posting.partner_id)
        else:
            accounts[posting.beneficiary_key] = ledger.member_account(program=program, member=posting.member_id)
    keys = {posting_key(event, p): p for p in postings}
    done = {e.idempotency_key: e for e in PointsEntry.objects.filter(idempotency_key__in=list(keys))}
    todo = [p for key, p in keys.items() if key not in done]
    if not todo:
        return list(done.values())
    limiter = _lock_limits(todo, event.occurred_on)
    ordered = sorted(todo, key=lambda p: accounts[p.beneficiary_key].pk)
    accounts_lock(*{accounts[p.beneficiary_key].pk for p in ordered})
    entries = list(done.values())
    paid = []  # (member, partner, points) posted now: the period standings rise by them (services.standings)
    for posting in ordered:
        key = posting_key(event, posting)
        if PointsEntry.objects.filter(idempotency_key=key).exists():  # posted while we waited for the locks
            entries.append(PointsEntry.objects.get(idempotency_key=key))
            continue
        points = limit(posting, event.occurred_on, limiter)
        if points <= 0:
            continue
        explanation = explained(posting, points)
        entries.append(
            ledger.earn(
                account=accounts[posting.beneficiary_key],
                points=points,
                key=key,
                source_type=source_type,
                source_id=event.source_key[:64],
                explanation=explanation[:500],
                details={**posting.details, "paid": points},
                earned_at=None,
            )
        )
        paid.append((posting.member_id, posting.partner_id, points))
    standings.standings_add(program=program, rows=paid)
    return entries


@transaction.atomic
def reverse_source(*, source_key: str, fraction, key: str, explanation: str) -> list[PointsEntry]:
    """Take back `fraction` (0 < f ≤ 1) of what one source line earned — a return or a credit note —
    from exactly the entries it posted, and give the rules' caps and budgets back."""
    fraction = Decimal(str(fraction))
    if not Decimal(0) < fraction <= Decimal(1):
        raise ApplicationError(
            "A return can take back between 0 and 100 % of what the line earned.", ErrorCode.FRACTION
        )
    earned = list(
        PointsEntry.objects.filter(idempotency_key__startswith=f"{source_key}:r", kind=EntryKind.EARN).order_by("pk")
    )
    reversals, taken_back = [], []
    for entry in earned:
        points = int((Decimal(entry.available_delta + entry.pending_delta) * fraction).quantize(1, ROUND_HALF_UP))
        if points <= 0:
            continue
        reversal_key = f"{key}:{entry.pk}"
        if PointsEntry.objects.filter(idempotency_key=reversal_key).exists():
            reversals.append(PointsEntry.objects.get(idempotency_key=reversal_key))
            continue
        reversals.append(ledger.reverse(entry=entry, key=reversal_key, points=points, explanation=explanation))
        taken_back.append((entry.pk, points))
        IncentiveRule.objects.filter(pk=entry.details.get("rule_id"), budget_points__isnull=False).update(
            budget_used=F("budget_used") - points
        )
    standings.standings_take_back(entries=taken_back)
    return reversals


# What posting would pay (a dry run) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paid:
    """One posting of an event, posted or previewed: the account (None in a preview when it does not exist yet: the
    first posting opens it), the member (None: the partner's company account) and their role, the partner, the rule
    version that pays, the points and why."""

    account_id: int | None
    member_id: int | None
    role: str | None
    partner_id: int
    rule_id: int
    rule_code: str
    rule_version: int
    points: int
    explanation: str

    @classmethod
    def of_entry(cls, entry: PointsEntry) -> "Paid":
        """An earn entry as Paid; its account, the account's member and the member's role selected."""
        account = entry.account
        member = account.member if account.member_id else None
        return cls(
            account_id=account.pk,
            member_id=account.member_id,
            role=member.role.code if member else None,
            partner_id=member.partner_id if member else account.partner_id,
            rule_id=entry.details.get("rule_id"),
            rule_code=entry.details.get("rule", ""),
            rule_version=entry.details.get("version"),
            points=entry.available_delta + entry.pending_delta,
            explanation=entry.explanation,
        )


def paid_of(entries) -> list[Paid]:
    """Earn entries (a queryset, or entries whose ids it takes) as Paid, oldest first: one query."""
    ids = entries.values("pk") if hasattr(entries, "values") else [entry.pk for entry in entries]
    rows = PointsEntry.objects.filter(pk__in=ids).select_related("account__member__role").order_by("pk")
    return [Paid.of_entry(entry) for entry in rows]


def preview_event(*, program: Program, event: Event, rules=None) -> list[Paid]:
    """What `post_event` would post for `event` now, writing and locking nothing: the same postings limited by the
    rules' caps and budgets as used so far, in the order post_event pays them (the accounts' order: those that exist
    by id, then the new ones as post_event would open them). An event posted before previews what it posted.
    The challenges the event counts for (services.challenges) are not previewed."""
    rules = published_rules(program) if rules is None else rules
    event = certify(event, rules)
    postings = evaluate(event, rules)
    if not postings:
        return []
    roles = {person.member_id: person.role_code for person in event.participants}
    keys = {posting_key(event, p): p for p in postings}
    done = list(
        PointsEntry.objects.filter(idempotency_key__in=list(keys))
        .select_related("account__member__role")
        .order_by("pk")
    )
    previews = [Paid.of_entry(entry) for entry in done]
    posted = {entry.idempotency_key for entry in done}
    todo = [p for key, p in keys.items() if key not in posted]
    if not todo:
        return previews
    member_ids = {p.member_id for p in postings if p.member_id is not None}
    partner_ids = {p.partner_id for p in postings if p.member_id is None}
    existing = {
        f"m{member_id}" if member_id is not None else f"p{partner_id}": pk
        for pk, member_id, partner_id in PointsAccount.objects.filter(program=program)
        .filter(Q(member_id__in=member_ids) | Q(partner_id__in=partner_ids))
        .values_list("pk", "member_id", "partner_id")
    }
    opened = {}  # the accounts post_event would open, in the order it opens them
    for posting in postings:
        if posting.beneficiary_key not in existing:
            opened.setdefault(posting.beneficiary_key, len(opened))

    def account_order(posting: Posting) -> tuple[int, int]:
        key = posting.beneficiary_key
        return (0, existing[key]) if key in existing else (1, opened[key])

    limiter = _usage_so_far(todo, event.occurred_on)
    for posting in sorted(todo, key=account_order):
        points = limit(posting, event.occurred_on, limiter)
        if points <= 0:
            continue
        explanation = explained(posting, points)
        previews.append(
            Paid(
                account_id=existing.get(posting.beneficiary_key),
                member_id=posting.member_id,
                role=roles.get(posting.member_id) if posting.member_id is not None else None,
                partner_id=posting.partner_id,
                rule_id=posting.rule_id,
                rule_code=posting.rule_code,
                rule_version=posting.rule_version,
                points=points,
                explanation=explanation[:500],
            )
        )
    return previews


def _usage_so_far(postings: list[Posting], day: date) -> MemoryLimiter:
    """A limiter starting from what the postings' caps and budgets have used, as stored now (not locked)."""
    budget_ids = {p.rule_id for p in postings if p.budget_points is not None}
    budgets = {}
    if budget_ids:
        budgets = dict(IncentiveRule.objects.filter(pk__in=budget_ids).values_list("pk", "budget_used"))
    wanted = {
        (p.rule_id, p.member_id, period_start(p.cap_period, day))
        for p in postings
        if p.cap_points is not None and p.member_id is not None
    }
    used = {}
    if wanted:
        rows = RuleUsage.objects.filter(
            rule_id__in={rule for rule, _, _ in wanted},
            member_id__in={member for _, member, _ in wanted},
            period_start__in={start for _, _, start in wanted},
        ).values_list("rule_id", "member_id", "period_start", "points")
        used = {(rule, member, start): points for rule, member, start, points in rows}
        used = {key: points for key, points in used.items() if key in wanted}
    return MemoryLimiter(used, budgets)
