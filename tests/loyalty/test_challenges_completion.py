"""Completing a challenge pays through the program's rules for "challenge completed" (caps and budgets apply), once,
also when two events complete it at the same instant; members hear of the half-way mark and of completion once;
approved claims count for "claims approved" goals."""

from decimal import Decimal

import pytest
from django.utils import timezone

from communications.constants import Channel, Kind
from communications.models import Delivery
from loyalty.constants import ChallengeLevel, EntrySource, Formula, GoalMetric, RuleEvent
from loyalty.engine.facts import sale_event
from loyalty.models import ChallengeEntry, IncentiveRule, PeriodStanding, PointsAccount, PointsEntry
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import challenges, earning
from loyalty.services import claims as claim_services
from loyalty.services.rules import rule_errors
from tests.loyalty.factories import ChallengeFactory, ChallengeGoalFactory, ProductFactory, ProgramFactory, RuleFactory
from tests.loyalty.test_claims_services import submit
from tests.loyalty.test_ledger_concurrency import run_in_parallel
from tests.partners.factories import MemberFactory, ProgramManagerFactory

TODAY = timezone.localdate()


def sale(program, member, key, quantity):
    return sale_event(
        program=program,
        source_key=key,
        partner=member.partner,
        product=ProductFactory(),
        quantity=Decimal(quantity),
        amount=Decimal(100),
        occurred_on=TODAY,
        actor=member,
    )


def completion_rule(program, **fields) -> IncentiveRule:
    """The rule that pays what a challenge offers for completing it: 1 pt per point offered."""
    values = {
        "event": RuleEvent.CHALLENGE_COMPLETED,
        "name": "Challenge points",
        "formula": Formula.PER_UNIT,
        "value": Decimal(1),
        "apply_tier_multiplier": False,
    }
    return RuleFactory(program=program, **{**values, **fields})


def challenge_paid(*, member=None, partner=None) -> list[tuple[int, str]]:
    return list(
        PointsEntry.objects.filter(source_type=EntrySource.CHALLENGE, account__member=member, account__partner=partner)
        .order_by("pk")
        .values_list("available_delta", "explanation")
    )


def told(kind) -> list[tuple[int, str]]:
    return list(
        Delivery.objects.filter(kind=kind, channel=Channel.INBOX).order_by("member_id").values_list("member_id", "body")
    )


@pytest.mark.django_db
def test_completing_pays_what_the_challenge_offers_through_its_rule_once():
    program = ProgramFactory()
    completion_rule(program)
    challenge = ChallengeFactory(program=program, name="Spring sprint", code="spring", completion_points=500)
    ChallengeGoalFactory(challenge=challenge, target=Decimal(10))
    member = MemberFactory()

    earning.post_event(program=program, event=sale(program, member, "s:1", 6))
    assert challenge_paid(member=member) == []
    earning.post_event(program=program, event=sale(program, member, "s:2", 6))
    earning.post_event(program=program, event=sale(program, member, "s:3", 6))  # after completion: nothing more

    assert challenge_paid(member=member) == [
        (500, "Challenge points v1, challenge “Spring sprint”: 500 pts offered × 1 pts = 500")
    ]
    entry = ChallengeEntry.objects.get(challenge=challenge, member=member)
    assert (entry.score, entry.completed_at is not None, entry.halfway_at is not None) == (Decimal(100), True, True)
    assert PointsEntry.objects.get(source_type=EntrySource.CHALLENGE).idempotency_key.startswith(
        f"challenge:{challenge.pk}:m{member.pk}:r"
    )
    assert ledger_problems() == []


@pytest.mark.django_db
def test_completion_points_count_in_the_period_standings():
    program = ProgramFactory()
    completion_rule(program)
    ChallengeGoalFactory(challenge__program=program, challenge__completion_points=300, target=Decimal(1))
    member = MemberFactory()

    earning.post_event(program=program, event=sale(program, member, "s:1", 1))

    assert PeriodStanding.objects.get(member=member).points == 300


@pytest.mark.django_db
def test_the_rules_cap_limits_what_completing_pays():
    program = ProgramFactory()
    completion_rule(program, cap_points=300)
    ChallengeGoalFactory(challenge__program=program, challenge__completion_points=500, target=Decimal(1))
    member = MemberFactory()

    earning.post_event(program=program, event=sale(program, member, "s:1", 1))

    [(points, explanation)] = challenge_paid(member=member)
    assert points == 300
    assert explanation.endswith("— limited to 300 by the rule's cap or budget")


@pytest.mark.django_db
def test_the_rules_budget_is_shared_by_everyone_who_completes():
    program = ProgramFactory()
    rule = completion_rule(program, budget_points=700)
    ChallengeGoalFactory(challenge__program=program, challenge__completion_points=500, target=Decimal(1))
    first, second, third = MemberFactory(), MemberFactory(), MemberFactory()

    for number, member in enumerate((first, second, third)):
        earning.post_event(program=program, event=sale(program, member, f"s:{number}", 1))

    assert [sum(p for p, _ in challenge_paid(member=m)) for m in (first, second, third)] == [500, 200, 0]
    rule.refresh_from_db()
    assert rule.budget_used == 700
    assert ChallengeEntry.objects.filter(completed_at__isnull=False).count() == 3  # completed, paid or not


@pytest.mark.django_db
def test_a_rule_for_another_challenge_pays_nothing_and_one_naming_this_challenge_pays():
    program = ProgramFactory()
    completion_rule(program, custom_event="other-challenge")
    completion_rule(program, custom_event="mine", formula=Formula.FIXED, value=Decimal(75), name="Mine")
    ChallengeGoalFactory(
        challenge__program=program, challenge__code="mine", challenge__completion_points=500, target=Decimal(1)
    )
    member = MemberFactory()

    earning.post_event(program=program, event=sale(program, member, "s:1", 1))

    assert [points for points, _ in challenge_paid(member=member)] == [75]


@pytest.mark.django_db
def test_without_a_rule_completing_pays_nothing_but_the_entry_is_complete():
    program = ProgramFactory()
    ChallengeGoalFactory(challenge__program=program, challenge__completion_points=500, target=Decimal(1))
    member = MemberFactory()

    earning.post_event(program=program, event=sale(program, member, "s:1", 1))

    assert challenge_paid(member=member) == []
    assert ChallengeEntry.objects.get(member=member).completed_at is not None


@pytest.mark.django_db
def test_a_company_completing_is_paid_to_the_partners_account():
    program = ProgramFactory()
    completion_rule(program)
    ChallengeGoalFactory(
        challenge__program=program,
        challenge__level=ChallengeLevel.COMPANY,
        challenge__completion_points=400,
        target=Decimal(5),
    )
    rep = MemberFactory()
    colleague = MemberFactory(partner=rep.partner)

    earning.post_event(program=program, event=sale(program, rep, "s:1", 3))
    earning.post_event(program=program, event=sale(program, colleague, "s:2", 2))

    assert [points for points, _ in challenge_paid(partner=rep.partner)] == [400]
    assert challenge_paid(member=rep) == challenge_paid(member=colleague) == []


@pytest.mark.django_db
def test_halfway_and_completed_are_told_once_after_commit(django_capture_on_commit_callbacks):
    program = ProgramFactory()
    completion_rule(program)
    challenge = ChallengeFactory(program=program, name="Spring sprint", completion_points=500)
    ChallengeGoalFactory(challenge=challenge, target=Decimal(10))
    member = MemberFactory()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        earning.post_event(program=program, event=sale(program, member, "s:1", 3))
    assert callbacks == [] and told(Kind.CHALLENGE_HALFWAY) == []
    with django_capture_on_commit_callbacks(execute=True):
        earning.post_event(program=program, event=sale(program, member, "s:2", 3))  # 60 %
        earning.post_event(program=program, event=sale(program, member, "s:3", 1))  # 70 %: told before
    with django_capture_on_commit_callbacks(execute=True):
        earning.post_event(program=program, event=sale(program, member, "s:4", 5))  # 100 %
        earning.post_event(program=program, event=sale(program, member, "s:5", 5))

    [(member_id, halfway)] = told(Kind.CHALLENGE_HALFWAY)
    assert member_id == member.pk
    assert halfway.startswith("You have reached 60 % of Spring sprint.")
    assert told(Kind.CHALLENGE_COMPLETED) == [(member.pk, "You completed Spring sprint. 500 points are yours.")]


@pytest.mark.django_db
def test_completing_at_once_tells_completion_only_and_a_company_tells_its_active_members(
    django_capture_on_commit_callbacks,
):
    program = ProgramFactory()
    ChallengeGoalFactory(
        challenge__program=program, challenge__level=ChallengeLevel.COMPANY, challenge__name="Team", target=Decimal(1)
    )
    rep = MemberFactory()
    colleague = MemberFactory(partner=rep.partner)
    MemberFactory()  # another partner's

    with django_capture_on_commit_callbacks(execute=True):
        earning.post_event(program=program, event=sale(program, rep, "s:1", 1))

    assert told(Kind.CHALLENGE_HALFWAY) == []
    assert told(Kind.CHALLENGE_COMPLETED) == [(rep.pk, "You completed Team."), (colleague.pk, "You completed Team.")]


@pytest.mark.django_db
def test_approved_claims_count_for_claims_approved_goals_once_each(private_media):
    program = ProgramFactory(claim_auto_approve_below=Decimal(0))
    RuleFactory(program=program)
    challenge = ChallengeFactory(program=program)
    claims_goal = ChallengeGoalFactory(challenge=challenge, metric=GoalMetric.CLAIMS_APPROVED, target=Decimal(2))
    units_goal = ChallengeGoalFactory(challenge=challenge, target=Decimal(10))
    member = MemberFactory()
    manager = ProgramManagerFactory()
    first = submit(member, program, number="INV-1")
    submit(member, program, number="INV-2")  # waits: not approved

    claim_services.claim_approve(claim=first, actor=manager)
    first.refresh_from_db()
    challenges.record_claim_approved(claim=first, post_event=earning.post_event)  # again: counted once

    entry = ChallengeEntry.objects.get(challenge=challenge, member=member)
    assert entry.progress == {str(claims_goal.pk): 1, str(units_goal.pk): 2}  # one claim, its line's 2 units
    assert entry.score == Decimal("35.00")


@pytest.mark.django_db(transaction=True)
def test_two_events_completing_at_the_same_instant_pay_once():
    program = ProgramFactory()
    RuleFactory(program=program)  # 10 pts per unit sold
    completion_rule(program)
    ChallengeGoalFactory(challenge__program=program, challenge__completion_points=500, target=Decimal(2))
    member = MemberFactory()
    events = [sale(program, member, f"s:{number}", 2) for number in range(6)]

    outcomes = run_in_parallel(6, lambda i: len(earning.post_event(program=program, event=events[i])))

    assert sum(outcomes.values()) == 6
    assert [points for points, _ in challenge_paid(member=member)] == [500]
    entry = ChallengeEntry.objects.get(member=member)
    assert entry.progress == {str(entry.challenge.goals.get().pk): 12}  # each event counted, once
    account = PointsAccount.objects.get(member=member)
    assert account.available == 6 * 20 + 500
    assert ledger_problems() == []


@pytest.mark.django_db
def test_a_completion_rule_may_name_a_challenge_and_a_sales_rule_may_not_name_an_event():
    program = ProgramFactory()
    naming = completion_rule(program, custom_event="mine")
    sales = RuleFactory(program=program, custom_event="mine")

    assert rule_errors(naming) == []
    assert [problem.field for problem in rule_errors(sales)] == ["custom_event"]
