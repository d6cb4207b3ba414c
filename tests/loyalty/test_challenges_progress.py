"""A challenge's progress is raised by the program's events: once per event and challenge, for the audience and the
window it names, credited to the acting member or (company challenges) the partner."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.constants import ChallengeLevel, GoalMetric, RuleEvent
from loyalty.engine.facts import member_event, partner_event, sale_event
from loyalty.models import ChallengeEntry, CountedEvent, PartnerTier
from loyalty.services import challenges, earning
from partners.constants import MemberStatus, PartnerKind
from tests.loyalty.factories import (
    ChallengeFactory,
    ChallengeGoalFactory,
    ProductFactory,
    ProductLineFactory,
    ProgramFactory,
    RuleFactory,
    TierFactory,
)
from tests.partners.factories import MemberFactory, PartnerFactory, RegionFactory, role

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def sale(program, member, product, key="sale:1", quantity=4, amount="400", day=TODAY):
    return sale_event(
        program=program,
        source_key=key,
        partner=member.partner,
        product=product,
        quantity=Decimal(quantity),
        amount=Decimal(amount),
        occurred_on=day,
        actor=member,
    )


def entry_of(challenge, member=None, partner=None) -> ChallengeEntry | None:
    if member is not None:
        return ChallengeEntry.objects.filter(challenge=challenge, member=member).first()
    return ChallengeEntry.objects.filter(challenge=challenge, partner=partner, member__isnull=True).first()


def progress(challenge, member=None, partner=None):
    entry = entry_of(challenge, member, partner)
    return None if entry is None else (entry.progress, entry.score)


def test_a_sale_raises_the_sellers_entry_once_even_when_posted_again():
    program = ProgramFactory()
    RuleFactory(program=program)
    goal = ChallengeGoalFactory(challenge__program=program, target=Decimal(10))
    member, product = MemberFactory(), ProductFactory()

    earning.post_event(program=program, event=sale(program, member, product, quantity=4))
    earning.post_event(program=program, event=sale(program, member, product, quantity=4))  # a retry

    assert progress(goal.challenge, member) == ({str(goal.pk): 4}, Decimal("40.00"))
    assert list(CountedEvent.objects.values_list("challenge_id", "source_key")) == [(goal.challenge_id, "sale:1")]


def test_an_event_no_rule_pays_still_counts():
    program = ProgramFactory()  # no rules at all
    goal = ChallengeGoalFactory(challenge__program=program, target=Decimal(8))
    member = MemberFactory()

    assert earning.post_event(program=program, event=sale(program, member, ProductFactory(), quantity=2)) == []

    assert progress(goal.challenge, member) == ({str(goal.pk): 2}, Decimal("25.00"))


def test_only_published_running_unsettled_challenges_of_the_program_count():
    program = ProgramFactory()
    now = timezone.now()
    counting = ChallengeGoalFactory(challenge__program=program).challenge
    others = [
        ChallengeGoalFactory(challenge__program=program, challenge__is_published=False).challenge,
        ChallengeGoalFactory(challenge__program=program, challenge__starts_at=now + timedelta(hours=1)).challenge,
        ChallengeGoalFactory(
            challenge__program=program,
            challenge__starts_at=now - timedelta(days=9),
            challenge__ends_at=now - timedelta(minutes=1),
        ).challenge,
        ChallengeGoalFactory(challenge__program=program, challenge__results_at=now).challenge,
        ChallengeGoalFactory().challenge,  # another program's
    ]
    member = MemberFactory()

    earning.post_event(program=program, event=sale(program, member, ProductFactory()))

    assert list(ChallengeEntry.objects.values_list("challenge_id", flat=True)) == [counting.pk]
    assert all(entry_of(other, member) is None for other in others)


def test_the_window_is_the_challenges_local_days():
    program = ProgramFactory()
    now = timezone.localtime()
    start = now.replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=3)
    end = (now + timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)  # midnight: ends the day before
    goal = ChallengeGoalFactory(challenge__program=program, challenge__starts_at=start, challenge__ends_at=end)
    member, product = MemberFactory(), ProductFactory()
    first_day, last_day = start.date(), end.date() - timedelta(days=1)

    for key, day in [("before", first_day - timedelta(days=1)), ("first", first_day), ("last", last_day),
                     ("after", end.date())]:  # fmt: skip
        earning.post_event(program=program, event=sale(program, member, product, key=key, quantity=1, day=day))

    assert entry_of(goal.challenge, member).progress == {str(goal.pk): 2}  # the first and the last day
    assert challenges.last_day(end) == last_day


@pytest.mark.parametrize(
    ("audience", "counts"),
    [
        ({}, True),
        ({"roles": ["sales"]}, True),
        ({"roles": ["engineer"]}, False),
        ({"partner_kinds": [PartnerKind.DEALER]}, True),
        ({"partner_kinds": [PartnerKind.DISTRIBUTOR]}, False),
        ({"regions": "home"}, True),
        ({"regions": "other"}, False),
        ({"tiers": "gold"}, True),
        ({"tiers": "silver"}, False),
    ],
)
def test_only_the_audience_counts(audience, counts):
    program = ProgramFactory()
    gold, silver = TierFactory(program=program), TierFactory(program=program)
    partner = PartnerFactory(kind=PartnerKind.DEALER)
    member = MemberFactory(partner=partner, role=role("sales"))
    PartnerTier.objects.create(program=program, partner=partner, tier=gold, since=TODAY, held_until=TODAY)
    challenge = ChallengeGoalFactory(challenge__program=program).challenge
    if "roles" in audience:
        challenge.roles.set([role(code) for code in audience["roles"]])
    if "partner_kinds" in audience:
        challenge.partner_kinds = audience["partner_kinds"]
        challenge.save()
    if "regions" in audience:
        challenge.regions.set([partner.region if audience["regions"] == "home" else RegionFactory()])
    if "tiers" in audience:
        challenge.tiers.set([gold if audience["tiers"] == "gold" else silver])

    earning.post_event(program=program, event=sale(program, member, ProductFactory()))

    assert (entry_of(challenge, member) is not None) is counts


def test_a_product_line_goal_counts_its_line_only_and_sales_amount_counts_the_amount():
    program = ProgramFactory()
    softeners, filters = ProductLineFactory(), ProductLineFactory()
    challenge = ChallengeFactory(program=program)
    units = ChallengeGoalFactory(challenge=challenge, product_line=softeners, target=Decimal(10), position=1)
    amount = ChallengeGoalFactory(challenge=challenge, metric=GoalMetric.SALES_AMOUNT, target=Decimal(1000), position=2)
    member = MemberFactory()

    earning.post_event(program=program, event=sale(program, member, ProductFactory(line=softeners), key="a",
                                                     quantity=5, amount="200"))  # fmt: skip
    earning.post_event(program=program, event=sale(program, member, ProductFactory(line=filters), key="b",
                                                     quantity=7, amount="300.50"))  # fmt: skip

    # (5 / 10 + 500.50 / 1000) / 2 = 50.025 % -> 50.02 (rounded down: 100 means every goal reached)
    assert progress(challenge, member) == ({str(units.pk): 5, str(amount.pk): 500.5}, Decimal("50.02"))


def test_a_goal_counts_up_to_its_target_and_the_score_averages_the_goals():
    program = ProgramFactory()
    challenge = ChallengeFactory(program=program)
    ChallengeGoalFactory(challenge=challenge, target=Decimal(2))
    ChallengeGoalFactory(challenge=challenge, metric=GoalMetric.MODULES_PASSED, target=Decimal(4))
    member = MemberFactory()

    earning.post_event(program=program, event=sale(program, member, ProductFactory(), quantity=9))

    assert entry_of(challenge, member).score == Decimal("50.00")  # (min(9/2, 1) + 0/4) / 2
    assert entry_of(challenge, member).completed_at is None


def test_events_of_a_kind_and_training_passed_count_one_each():
    program = ProgramFactory()
    challenge = ChallengeFactory(program=program)
    surveys = ChallengeGoalFactory(
        challenge=challenge, metric=GoalMetric.EVENTS, event=RuleEvent.SURVEY_ANSWERED, target=Decimal(2)
    )
    modules = ChallengeGoalFactory(challenge=challenge, metric=GoalMetric.MODULES_PASSED, target=Decimal(3))
    member = MemberFactory()

    events = [
        (RuleEvent.SURVEY_ANSWERED, "survey:1"),
        (RuleEvent.TRAINING_PASSED, "training:1"),
        (RuleEvent.TRAINING_PASSED, "training:2"),
        (RuleEvent.PROFILE_COMPLETED, "profile:1"),
    ]
    for kind, key in events:
        event = member_event(kind=kind, program=program, source_key=key, member=member, occurred_on=TODAY)
        earning.post_event(program=program, event=event)

    assert entry_of(challenge, member).progress == {str(surveys.pk): 1, str(modules.pk): 2}


def test_an_events_goal_with_a_custom_event_counts_only_that_one():
    program = ProgramFactory()
    goal = ChallengeGoalFactory(
        challenge__program=program, metric=GoalMetric.EVENTS, event=RuleEvent.CUSTOM, custom_event="webinar"
    )
    member = MemberFactory()
    for custom, key in [("webinar", "c:1"), ("fair", "c:2")]:
        event = member_event(kind=RuleEvent.CUSTOM, program=program, source_key=key, member=member, occurred_on=TODAY)
        event = replace(event, custom_event=custom)
        challenges.record_event(program=program, event=event, post_event=earning.post_event)

    assert entry_of(goal.challenge, member).progress == {str(goal.pk): 1}


def test_an_individual_challenge_credits_nobody_for_an_event_without_a_member():
    program = ProgramFactory()
    goal = ChallengeGoalFactory(challenge__program=program, metric=GoalMetric.EVENTS, event=RuleEvent.CUSTOM)
    event = partner_event(
        kind=RuleEvent.CUSTOM, program=program, source_key="x:1", partner=PartnerFactory(), occurred_on=TODAY
    )

    assert challenges.record_event(program=program, event=event, post_event=earning.post_event) == []
    assert ChallengeEntry.objects.filter(challenge=goal.challenge).count() == 0
    assert CountedEvent.objects.count() == 0


def test_a_company_challenge_credits_the_partner_and_normalises_by_its_active_members():
    program = ProgramFactory()
    goal = ChallengeGoalFactory(challenge__program=program, challenge__level=ChallengeLevel.COMPANY, target=Decimal(10))
    rep = MemberFactory()
    colleague = MemberFactory(partner=rep.partner)
    MemberFactory(partner=rep.partner, status=MemberStatus.LEFT)  # not counted
    MemberFactory(partner=rep.partner)
    product = ProductFactory()

    earning.post_event(program=program, event=sale(program, rep, product, key="a", quantity=3))
    earning.post_event(program=program, event=sale(program, colleague, product, key="b", quantity=3))

    entry = entry_of(goal.challenge, partner=rep.partner)
    assert (entry.progress, entry.score, entry.active_members, entry.normalised) == (
        {str(goal.pk): 6},
        Decimal("60.00"),
        3,
        Decimal("20.0000"),
    )
    assert ChallengeEntry.objects.filter(member__isnull=False).count() == 0


def test_an_individual_entrys_normalised_score_is_its_score():
    program = ProgramFactory()
    goal = ChallengeGoalFactory(challenge__program=program, target=Decimal(3))
    member = MemberFactory()
    MemberFactory(partner=member.partner)

    earning.post_event(program=program, event=sale(program, member, ProductFactory(), quantity=1))

    entry = entry_of(goal.challenge, member)
    assert (entry.score, entry.normalised, entry.active_members, entry.partner_id) == (
        Decimal("33.33"),
        Decimal("33.33"),
        1,
        member.partner_id,
    )


def test_an_update_costs_four_queries_and_one_when_no_challenge_runs(django_assert_num_queries):
    program = ProgramFactory()
    member, product = MemberFactory(), ProductFactory()
    event = sale(program, member, product, key="s:0")
    with django_assert_num_queries(1):
        assert challenges.record_event(program=program, event=event, post_event=earning.post_event) == []

    for number in range(3):  # three running challenges, one of them for another role: still 4 queries
        challenge = ChallengeGoalFactory(challenge__program=program, target=Decimal(100)).challenge
        if number == 2:
            challenge.roles.set([role("engineer")])
    for key in ("s:1", "s:2"):  # the first creates the entries, the second raises them
        event = sale(program, member, product, key=key)
        with django_assert_num_queries(4):
            raised = challenges.record_event(program=program, event=event, post_event=earning.post_event)
        assert len(raised) == 2
    assert sorted(ChallengeEntry.objects.values_list("score", flat=True)) == [Decimal("8.00"), Decimal("8.00")]


def test_an_event_counted_before_costs_two_queries_and_changes_nothing(django_assert_num_queries):
    program = ProgramFactory()
    goal = ChallengeGoalFactory(challenge__program=program)
    member = MemberFactory()
    event = sale(program, member, ProductFactory())
    challenges.record_event(program=program, event=event, post_event=earning.post_event)
    before = entry_of(goal.challenge, member).updated_at

    with django_assert_num_queries(2):
        assert challenges.record_event(program=program, event=event, post_event=earning.post_event) == []

    assert entry_of(goal.challenge, member).updated_at == before
