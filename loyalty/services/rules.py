"""Incentive rules: validation, saving drafts, publishing and versioning. A rule that is in force is never edited.

`rule_errors` says what makes a rule contradictory as `Problem(field, code, message)`s: forms and APIs map them
by field and code, people read the message. What depends on the formula (its value, its stacking) is asked of its
engine.formulas class.
"""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import RuleEvent, RuleStatus
from loyalty.engine.formulas import FORMULAS, PointsFormula, Problem
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import rule_in_force_lock, rule_lock
from loyalty.models import IncentiveRule
from partners.models import Role

M2M_FIELDS = ("roles", "tiers", "regions", "product_lines", "products", "named_partners")
# Checks the value of a rule whose formula is not chosen yet (the form reports the missing formula itself).
NO_FORMULA = PointsFormula()


def describe_rule(rule: IncentiveRule) -> str:
    """A version as messages name it: "softeners v2 (Softeners)"."""
    return f"{rule.code} v{rule.version} ({rule.name})"


def rule_errors(rule: IncentiveRule) -> list[Problem]:
    """Everything that makes a rule contradictory or meaningless, in words a program manager understands."""
    formula = FORMULAS.get(rule.formula, NO_FORMULA)
    problems = formula.value_problems(rule.value)
    if rule.valid_from and rule.valid_until and rule.valid_from > rule.valid_until:
        problems.append(Problem("valid_until", ErrorCode.DATE_WINDOW, "The date window ends before it starts."))
    for name in ("min_quantity", "min_amount"):
        if getattr(rule, name) is not None and getattr(rule, name) < 0:
            message = f"The minimum {name.removeprefix('min_')} cannot be negative."
            problems.append(Problem(name, ErrorCode.MINIMUM_NEGATIVE, message))
    problems.extend(_share_problems(rule.shares or []))
    problems.extend(formula.stacking_problems(rule.exclusive))
    # A "challenge completed" rule may name one challenge by its code (the completion event carries it).
    if rule.custom_event and rule.event not in (RuleEvent.CUSTOM, RuleEvent.CHALLENGE_COMPLETED):
        message = "Only custom API events (their name) and challenge completions (a challenge's code) name an event."
        problems.append(Problem("custom_event", ErrorCode.CUSTOM_EVENT_NAME, message))
    if rule.cap_points == 0 or rule.budget_points == 0:
        field = "cap_points" if rule.cap_points == 0 else "budget_points"
        message = "A cap or budget of 0 would pay nothing; leave it empty for no limit."
        problems.append(Problem(field, ErrorCode.LIMIT_ZERO, message))
    return problems


def rule_problems(rule: IncentiveRule) -> list[str]:
    """The messages of rule_errors, for a page or an error that lists them in words."""
    return [problem.message for problem in rule_errors(rule)]


def _share_problems(shares) -> list[Problem]:
    def problem(code: ErrorCode, message: str) -> Problem:
        return Problem("shares", code, message)

    if not isinstance(shares, list) or any(not isinstance(s, dict) or set(s) != {"role", "percent"} for s in shares):
        return [problem(ErrorCode.SHARES_MALFORMED, 'Shares must look like [{"role": "sales", "percent": 60}].')]
    problems = []
    codes = [s["role"] for s in shares]
    known = set(Role.objects.filter(code__in=codes).values_list("code", flat=True))
    if unknown := sorted(set(codes) - known):
        problems.append(problem(ErrorCode.SHARE_ROLE_UNKNOWN, f"Unknown role in the shares: {', '.join(unknown)}."))
    if len(codes) != len(set(codes)):
        problems.append(problem(ErrorCode.SHARE_ROLE_REPEATED, "Each role may appear once in the shares."))
    try:
        percents = [Decimal(str(s["percent"])) for s in shares]
    except ArithmeticError:
        problems.append(problem(ErrorCode.SHARE_PERCENT_NOT_NUMBER, "Each share's percent must be a number."))
    else:
        if any(p <= 0 for p in percents):
            problems.append(problem(ErrorCode.SHARE_NOT_POSITIVE, "Each share must be more than 0 %."))
        if sum(percents) > 100:
            message = f"The shares add up to {sum(percents)} %, more than 100 %."
            problems.append(problem(ErrorCode.SHARES_OVER_100, message))
    return problems


def _refuse_problems(problems: list[Problem]) -> None:
    """Refuse with every problem's message; `extra["problems"]` keeps them for a form or an API to map."""
    if problems:
        raise ApplicationError(
            " ".join(problem.message for problem in problems), code=ErrorCode.INVALID_RULE, extra={"problems": problems}
        )


@transaction.atomic
def rule_draft_save(*, rule: IncentiveRule) -> IncentiveRule:
    """Save a draft as edited (its many-to-many conditions are the caller's to set after). A new rule becomes
    version 1 of its code; an existing one is saved only if it is still a draft, as it may have been published
    or retired since it was loaded."""
    if rule._state.adding:
        rule.status, rule.version = RuleStatus.DRAFT, 1
    else:
        locked = rule_lock(rule.pk, only=("status",))
        if locked.status != RuleStatus.DRAFT:
            raise ApplicationError(
                f"{describe_rule(rule)} was {locked.get_status_display().lower()} meanwhile, so your changes were "
                "not saved: create a new version to change it.",
                code=ErrorCode.NOT_DRAFT,
            )
    _refuse_problems(rule_errors(rule))
    rule.full_clean()
    rule.save()
    return rule


@transaction.atomic
def rule_new_draft(*, rule: IncentiveRule) -> IncentiveRule:
    """A new version of a rule to edit: a draft copy of `rule` (rule_new_version). Refused when the rule's code
    already has a draft, which the error's `extra["draft"]` gives, to be edited instead."""
    rule_lock(rule.pk, only=("status",))  # two clicks on the same version wait for each other: one draft
    existing = IncentiveRule.objects.filter(program_id=rule.program_id, code=rule.code, status=RuleStatus.DRAFT).first()
    if existing is not None:
        raise ApplicationError(
            f"{describe_rule(existing)} is already a draft of this rule: edit it.",
            code=ErrorCode.DRAFT_EXISTS,
            extra={"draft": existing},
        )
    return rule_new_version(rule=rule)


@transaction.atomic
def rule_publish(*, rule: IncentiveRule, actor, effective_from=None) -> IncentiveRule:
    """Put a draft in force. The version of the same rule in force so far ends where this one starts."""
    if not getattr(actor, "is_program_manager", False):
        raise ApplicationError("Only program managers publish rules.", code=ErrorCode.FORBIDDEN)
    rule = rule_lock(rule.pk)
    if rule.status != RuleStatus.DRAFT:
        raise ApplicationError(
            f"This version is already {rule.get_status_display().lower()}.", code=ErrorCode.NOT_DRAFT
        )
    _refuse_problems(rule_errors(rule))
    _approve_negotiated(rule, actor)
    start = effective_from or timezone.now()
    current = rule_in_force_lock(program_id=rule.program_id, code=rule.code)
    if current is not None:
        if current.effective_from and start <= current.effective_from:
            raise ApplicationError(
                "The new version must start after the version in force.", code=ErrorCode.EFFECTIVE_FROM
            )
        current.effective_until = start
        current.save(update_fields=["effective_until", "updated_at"])
    rule.status, rule.effective_from, rule.published_by = RuleStatus.PUBLISHED, start, actor
    rule.save(
        update_fields=[
            "status",
            "effective_from",
            "published_by",
            "negotiated_approved_by",
            "negotiated_approved_at",
            "updated_at",
        ]
    )
    return rule


def _approve_negotiated(rule: IncentiveRule, actor) -> None:
    """A rule negotiated for named partners is approved by whoever publishes it, when they do, and only with the
    reason stated (fair dealing: the program team must be able to show why these partners get it). Saved by the
    caller."""
    if not rule.named_partners.exists():
        rule.negotiated_approved_by = rule.negotiated_approved_at = None
        return
    if not rule.negotiated_reason.strip():
        problem = Problem(
            "negotiated_reason",
            ErrorCode.INVALID_RULE,
            "Say why the named partners get this rule before publishing it (fair dealing: equal terms must be "
            "explainable).",
        )
        _refuse_problems([problem])
    rule.negotiated_approved_by, rule.negotiated_approved_at = actor, timezone.now()


@transaction.atomic
def rule_new_version(*, rule: IncentiveRule, **changes) -> IncentiveRule:
    """A draft copy of `rule` with the next version number and `changes` applied; the original stays."""
    latest = IncentiveRule.objects.filter(program=rule.program_id, code=rule.code).order_by("-version").first()
    m2m = {name: changes.pop(name, list(getattr(rule, name).all())) for name in M2M_FIELDS}
    draft = IncentiveRule.objects.get(pk=rule.pk)
    draft.pk = draft.id = None
    draft._state.adding = True
    for name, value in changes.items():
        setattr(draft, name, value)
    draft.version = latest.version + 1
    draft.status, draft.effective_from, draft.effective_until, draft.published_by = RuleStatus.DRAFT, None, None, None
    draft.budget_used = 0
    draft.negotiated_approved_by = draft.negotiated_approved_at = None  # approved again when published
    draft.save()
    for name, values in m2m.items():
        getattr(draft, name).set(values)
    return draft


@transaction.atomic
def rule_retire(*, rule: IncentiveRule, actor, effective_until=None) -> IncentiveRule:
    if not getattr(actor, "is_program_manager", False):
        raise ApplicationError("Only program managers retire rules.", code=ErrorCode.FORBIDDEN)
    rule = rule_lock(rule.pk)
    if rule.status != RuleStatus.PUBLISHED or rule.effective_until is not None:
        raise ApplicationError("Only the version in force can be retired.", code=ErrorCode.NOT_IN_FORCE)
    rule.status, rule.effective_until = RuleStatus.RETIRED, effective_until or timezone.now()
    rule.save(update_fields=["status", "effective_until", "updated_at"])
    return rule
