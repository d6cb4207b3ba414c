"""services.rules: what rule_errors reports (field, code, message), saving drafts and starting new versions."""

from datetime import date
from decimal import Decimal

import pytest

from loyalty.common.errors import ApplicationError
from loyalty.constants import RuleStatus
from loyalty.engine.formulas import Problem
from loyalty.error_codes import ErrorCode
from loyalty.models import IncentiveRule
from loyalty.services.rules import rule_draft_save, rule_errors, rule_new_draft, rule_publish
from tests.loyalty.factories import ProgramFactory, RuleFactory
from tests.partners.factories import ProgramManagerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"value": Decimal(0)}, "value", ErrorCode.VALUE_NOT_POSITIVE),
        ({"formula": "multiplier", "value": Decimal("0.5")}, "value", ErrorCode.MULTIPLIER_TOO_SMALL),
        ({"valid_from": date(2026, 5, 1), "valid_until": date(2026, 4, 1)}, "valid_until", ErrorCode.DATE_WINDOW),
        ({"min_amount": Decimal(-1)}, "min_amount", ErrorCode.MINIMUM_NEGATIVE),
        ({"shares": [{"who": "sales"}]}, "shares", ErrorCode.SHARES_MALFORMED),
        ({"shares": [{"role": "astronaut", "percent": 10}]}, "shares", ErrorCode.SHARE_ROLE_UNKNOWN),
        ({"shares": [{"role": "sales", "percent": 0}]}, "shares", ErrorCode.SHARE_NOT_POSITIVE),
        ({"shares": [{"role": "sales", "percent": 101}]}, "shares", ErrorCode.SHARES_OVER_100),
        ({"formula": "percent_bonus", "exclusive": True}, "exclusive", ErrorCode.BONUS_EXCLUSIVE),
        ({"custom_event": "webinar"}, "custom_event", ErrorCode.CUSTOM_EVENT_NAME),
        ({"cap_points": 0}, "cap_points", ErrorCode.LIMIT_ZERO),
        ({"budget_points": 0}, "budget_points", ErrorCode.LIMIT_ZERO),
    ],
)
def test_each_problem_names_its_field_and_code(changes, field, code):
    rule = RuleFactory.build(program=ProgramFactory(), status=RuleStatus.DRAFT, **changes)

    [problem] = rule_errors(rule)

    assert (problem.field, problem.code) == (field, code)


def test_a_sound_rule_has_no_problems():
    assert rule_errors(RuleFactory.build(program=ProgramFactory(), shares=[{"role": "sales", "percent": 60}])) == []


def test_a_rule_without_a_formula_yet_still_has_its_value_checked():
    rule = RuleFactory.build(program=ProgramFactory(), formula="", value=None)

    assert [problem.code for problem in rule_errors(rule)] == [ErrorCode.VALUE_NOT_POSITIVE]


def test_publishing_a_contradictory_rule_is_refused_with_its_problems():
    rule = RuleFactory(program=ProgramFactory(), status=RuleStatus.DRAFT, formula="multiplier", value=Decimal("0.5"))

    with pytest.raises(ApplicationError) as refused:
        rule_publish(rule=rule, actor=ProgramManagerFactory())

    assert refused.value.code == ErrorCode.INVALID_RULE
    assert refused.value.extra["problems"] == [
        Problem(
            "value", ErrorCode.MULTIPLIER_TOO_SMALL, "A multiplier must be greater than 1 (e.g. 2 for double points)."
        )
    ]


def test_a_new_rule_is_saved_as_version_1_of_a_draft():
    rule = RuleFactory.build(program=ProgramFactory(), status=RuleStatus.PUBLISHED, version=7)

    saved = rule_draft_save(rule=rule)

    assert (saved.pk is not None, saved.status, saved.version) == (True, RuleStatus.DRAFT, 1)


def test_a_version_published_since_it_was_loaded_is_not_saved():
    rule = RuleFactory(program=ProgramFactory(), code="softeners", name="Softeners", status=RuleStatus.DRAFT)
    stale = IncentiveRule.objects.get(pk=rule.pk)
    rule_publish(rule=rule, actor=ProgramManagerFactory())
    stale.value = Decimal(99)

    with pytest.raises(ApplicationError) as refused:
        rule_draft_save(rule=stale)

    assert refused.value.code == ErrorCode.NOT_DRAFT
    assert refused.value.message == (
        "softeners v1 (Softeners) was published meanwhile, so your changes were not saved: create a new version to "
        "change it."
    )
    assert IncentiveRule.objects.get(pk=rule.pk).value == Decimal(10)


def test_a_contradictory_draft_is_not_saved():
    rule = RuleFactory(program=ProgramFactory(), status=RuleStatus.DRAFT)
    rule.cap_points = 0

    with pytest.raises(ApplicationError) as refused:
        rule_draft_save(rule=rule)

    assert refused.value.code == ErrorCode.INVALID_RULE
    assert IncentiveRule.objects.get(pk=rule.pk).cap_points is None


def test_a_new_draft_copies_the_version_and_a_second_one_is_refused_with_the_first():
    v1 = RuleFactory(program=ProgramFactory(), code="softeners", name="Softeners")

    v2 = rule_new_draft(rule=v1)
    with pytest.raises(ApplicationError) as refused:
        rule_new_draft(rule=v1)

    assert (v2.version, v2.status) == (2, RuleStatus.DRAFT)
    assert refused.value.code == ErrorCode.DRAFT_EXISTS
    assert refused.value.extra["draft"] == v2
    assert refused.value.message == "softeners v2 (Softeners) is already a draft of this rule: edit it."
    assert IncentiveRule.objects.count() == 2
