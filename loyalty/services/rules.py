"""Incentive rules: validation, publishing and versioning. A rule that is in force is never edited."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import BONUS_FORMULAS, Formula, RuleStatus
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import rule_in_force_lock, rule_lock
from loyalty.models import IncentiveRule
from partners.models import Role

M2M_FIELDS = ("roles", "tiers", "regions", "product_lines", "products")


def rule_problems(rule: IncentiveRule) -> list[str]:
    """Everything that makes a rule contradictory or meaningless, in words a program manager understands."""
    problems = []
    if rule.value is None or Decimal(rule.value) <= 0:
        problems.append("The formula's value must be greater than zero.")
    elif rule.formula == Formula.MULTIPLIER and Decimal(rule.value) <= 1:
        problems.append("A multiplier must be greater than 1 (e.g. 2 for double points).")
    if rule.valid_from and rule.valid_until and rule.valid_from > rule.valid_until:
        problems.append("The date window ends before it starts.")
    for name in ("min_quantity", "min_amount"):
        if getattr(rule, name) is not None and getattr(rule, name) < 0:
            problems.append(f"The minimum {name.removeprefix('min_')} cannot be negative.")
    shares = rule.shares or []
    if not isinstance(shares, list) or any(not isinstance(s, dict) or set(s) != {"role", "percent"} for s in shares):
        problems.append('Shares must look like [{"role": "sales", "percent": 60}].')
    else:
        codes = [s["role"] for s in shares]
        known = set(Role.objects.filter(code__in=codes).values_list("code", flat=True))
        if unknown := sorted(set(codes) - known):
            problems.append(f"Unknown role in the shares: {', '.join(unknown)}.")
        if len(codes) != len(set(codes)):
            problems.append("Each role may appear once in the shares.")
        try:
            percents = [Decimal(str(s["percent"])) for s in shares]
        except ArithmeticError:
            problems.append("Each share's percent must be a number.")
        else:
            if any(p <= 0 for p in percents):
                problems.append("Each share must be more than 0 %.")
            if sum(percents) > 100:
                problems.append(f"The shares add up to {sum(percents)} %, more than 100 %.")
    if rule.formula in BONUS_FORMULAS and rule.exclusive:
        problems.append("A bonus rule tops up other rules, so it cannot also be exclusive.")
    if rule.custom_event and rule.event != "custom":
        problems.append("Only custom API events have an event name.")
    if rule.cap_points == 0 or rule.budget_points == 0:
        problems.append("A cap or budget of 0 would pay nothing; leave it empty for no limit.")
    return problems


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
    if problems := rule_problems(rule):
        raise ApplicationError(" ".join(problems), code=ErrorCode.INVALID_RULE)
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
    rule.save(update_fields=["status", "effective_from", "published_by", "updated_at"])
    return rule


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
