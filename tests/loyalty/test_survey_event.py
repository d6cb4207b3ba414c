"""Answering a survey is a "survey answered" event of the rule engine: the program's rules pay it like any other
event (caps, shares, tier multiplier, versions), once per member and survey."""

from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.utils import timezone

from communications.models import Response
from communications.surveys import survey_answer
from loyalty.common.errors import ApplicationError
from loyalty.constants import EntrySource, Formula, RuleEvent
from loyalty.engine.facts import survey_event
from loyalty.engine.rules import Unpaid, why_unpaid
from loyalty.models import PartnerTier, PointsEntry
from loyalty.services import survey_points
from loyalty.services.earning import published_rules
from tests.communications.test_surveys import nps_survey
from tests.loyalty.factories import ProgramFactory, RuleFactory, TierFactory
from tests.partners.factories import MemberFactory, role

pytestmark = pytest.mark.django_db


def survey_rule(program, **fields):
    """The rule that pays exactly what a survey offers: 1 pt per point offered, no tier multiplier."""
    values = {
        "event": RuleEvent.SURVEY_ANSWERED,
        "name": "Survey points",
        "formula": Formula.PER_UNIT,
        "value": Decimal(1),
        "apply_tier_multiplier": False,
    }
    return RuleFactory(program=program, **{**values, **fields})


def answer(survey, question, member):
    return survey_answer(survey=survey, member=member, answers={question.pk: 9})


def earned(member) -> list[tuple[int, str]]:
    return list(
        PointsEntry.objects.filter(account__member=member).order_by("pk").values_list("available_delta", "explanation")
    )


def test_the_survey_rule_pays_what_the_survey_offers_once_with_its_explanation():
    program = ProgramFactory()
    rule = survey_rule(program)
    survey, question = nps_survey(program=program, title="Spring check", points_for_answer=50)
    member = MemberFactory()

    answer(survey, question, member)
    with pytest.raises(ApplicationError):  # answering twice is refused and pays nothing more
        answer(survey, question, member)

    entry = PointsEntry.objects.get(account__member=member)
    assert (entry.available_delta, entry.source_type) == (50, EntrySource.SURVEY)
    assert entry.explanation == "Survey points v1, survey “Spring check”: 50 pts offered × 1 pts = 50"
    assert entry.idempotency_key == f"survey:{survey.pk}:{member.pk}:r{rule.pk}:m{member.pk}"
    assert (entry.details["rule_id"], entry.details["version"]) == (rule.pk, 1)


def test_a_retried_hook_pays_once():
    program = ProgramFactory()
    survey_rule(program, formula=Formula.FIXED, value=Decimal(15))
    survey, question = nps_survey(program=program, points_for_answer=40)
    member = MemberFactory()
    response = answer(survey, question, member)

    survey_points.survey_answered(survey=survey, member=member, response=response)

    assert [points for points, _ in earned(member)] == [15]


def test_the_rules_monthly_cap_limits_survey_points():
    program = ProgramFactory()
    survey_rule(program, cap_points=300)
    member = MemberFactory()
    for title in ("First", "Second"):
        survey, question = nps_survey(program=program, title=title, points_for_answer=200)
        answer(survey, question, member)

    (first, _), (second, explanation) = earned(member)
    assert (first, second) == (200, 100)
    assert explanation.endswith("— limited to 100 by the rule's cap or budget")


def test_a_fixed_rule_for_one_role_pays_that_role_whatever_the_survey_offers():
    program = ProgramFactory()
    survey_rule(program, formula=Formula.FIXED, value=Decimal(25)).roles.set([role("foreman")])
    survey, question = nps_survey(program=program, points_for_answer=0)
    foreman, sales_rep = MemberFactory(role=role("foreman")), MemberFactory(role=role("sales"))

    answer(survey, question, foreman)
    answer(survey, question, sales_rep)

    assert [points for points, _ in earned(foreman)] == [25]
    assert earned(sales_rep) == []


def test_the_tier_multiplier_applies_when_the_rule_says_so():
    program = ProgramFactory()
    survey_rule(program, apply_tier_multiplier=True)
    member = MemberFactory()
    gold = TierFactory(program=program, name="Gold", multiplier=Decimal("1.50"))
    today = timezone.localdate()
    PartnerTier.objects.create(program=program, partner=member.partner, tier=gold, since=today, held_until=today)
    survey, question = nps_survey(program=program, points_for_answer=50)

    answer(survey, question, member)

    assert earned(member) == [
        (75, f"Survey points v1, survey “{survey.title}”: 50 pts offered × 1 pts × Gold 1.5 = 75")
    ]


def test_without_a_survey_rule_answering_pays_nothing_and_is_stored():
    program = ProgramFactory()
    RuleFactory(program=program)  # pays sale lines only: 10 pts per unit
    survey, question = nps_survey(program=program, points_for_answer=50)
    member = MemberFactory()

    answer(survey, question, member)

    assert Response.objects.filter(survey=survey, member=member).exists()
    assert not PointsEntry.objects.exists()
    event = survey_event(program=program, survey=survey, member=member, answered_on=timezone.localdate())
    assert why_unpaid(event, published_rules(program)) == Unpaid.NO_RULE


def test_the_database_refuses_a_rule_for_an_unknown_event():
    with pytest.raises(IntegrityError):
        RuleFactory(event="survey_maybe")
