"""A challenge's start is announced to its audience once; when it ends its results are settled once: final ranks,
prizes paid to the winners, every participant told."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from communications.constants import Channel, Kind
from communications.models import Delivery
from loyalty.common.errors import ApplicationError
from loyalty.constants import ChallengeLevel, EntrySource, GoalMetric
from loyalty.error_codes import ErrorCode
from loyalty.models import Challenge, ChallengeEntry, PartnerTier, PointsEntry
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import challenges
from loyalty.tasks.challenges import settle_challenges, start_challenges
from partners.constants import MemberStatus, PartnerKind, PartnerStatus
from tests.loyalty.factories import (
    ChallengeEntryFactory,
    ChallengeFactory,
    ChallengeGoalFactory,
    ChallengePrizeFactory,
    ProductLineFactory,
    ProgramFactory,
    TierFactory,
)
from tests.partners.factories import MemberFactory, PartnerFactory, role

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def told(kind) -> list[tuple[int, str]]:
    return list(
        Delivery.objects.filter(kind=kind, channel=Channel.INBOX).order_by("member_id").values_list("member_id", "body")
    )


def ended(**fields) -> Challenge:
    defaults = {"starts_at": NOW - timedelta(days=30), "ends_at": NOW - timedelta(minutes=5), "name": "Spring sprint"}
    return ChallengeFactory(**{**defaults, **fields})


def entry(challenge, score, member=None, completed_minutes_ago=None, **fields) -> ChallengeEntry:
    completed = NOW - timedelta(minutes=completed_minutes_ago) if completed_minutes_ago is not None else None
    member = member or MemberFactory()
    return ChallengeEntryFactory(
        challenge=challenge, member=member, score=Decimal(score), completed_at=completed, **fields
    )


def prizes_paid() -> list[tuple[int | None, int | None, int, str]]:
    return list(
        PointsEntry.objects.filter(source_type=EntrySource.CHALLENGE)
        .order_by("pk")
        .values_list("account__member", "account__partner", "available_delta", "explanation")
    )


# Starting ------------------------------------------------------------------------------------------------------


def test_a_started_challenge_is_announced_once_to_its_active_audience(django_capture_on_commit_callbacks):
    program = ProgramFactory()
    line = ProductLineFactory(name="Softeners")
    challenge = ChallengeFactory(
        program=program, name="Spring sprint", completion_points=1500, partner_kinds=[PartnerKind.DEALER],
        ends_at=timezone.make_aware(timezone.datetime(2030, 4, 1)),
    )  # fmt: skip
    challenge.roles.set([role("sales")])
    ChallengeGoalFactory(challenge=challenge, product_line=line, target=Decimal(10), position=1)
    ChallengeGoalFactory(challenge=challenge, metric=GoalMetric.MODULES_PASSED, target=Decimal(1), position=2)
    rep = MemberFactory(role=role("sales"))
    MemberFactory(partner=rep.partner, role=role("engineer"))  # another role
    MemberFactory(role=role("sales"), status=MemberStatus.LEFT)
    MemberFactory(role=role("sales"), partner=PartnerFactory(kind=PartnerKind.INSTALLER))
    MemberFactory(role=role("sales"), partner=PartnerFactory(status=PartnerStatus.CLOSED))

    assert start_challenges() == 1
    assert start_challenges() == 0  # announced once

    assert told(Kind.CHALLENGE_STARTED) == [
        (
            rep.pk,
            "Spring sprint has started: 10 units of Softeners sold; 1 training module passed by 31 Mar 2030. "
            "Completing it earns 1,500 points.",
        ),
    ]
    challenge.refresh_from_db()
    assert challenge.started_notified_at is not None


def test_only_published_running_challenges_are_announced():
    ChallengeGoalFactory(challenge__is_published=False)
    ChallengeGoalFactory(challenge__starts_at=NOW + timedelta(hours=1))
    ChallengeGoalFactory(challenge__starts_at=NOW - timedelta(days=9), challenge__ends_at=NOW - timedelta(days=1))
    MemberFactory()

    assert challenges.start_due_challenges() == 0
    assert told(Kind.CHALLENGE_STARTED) == []


def test_the_audience_of_tiers_and_regions():
    program = ProgramFactory()
    gold = TierFactory(program=program)
    rep = MemberFactory()
    PartnerTier.objects.create(program=program, partner=rep.partner, tier=gold, since=NOW.date(), held_until=NOW.date())
    MemberFactory()  # no tier
    challenge = ChallengeFactory(program=program)
    challenge.tiers.set([gold])
    challenge.regions.set([rep.partner.region])

    assert list(challenges.audience_members(challenge)) == [rep]


# Settling -------------------------------------------------------------------------------------------------------


def test_settling_ranks_every_entry_pays_the_prizes_and_tells_everyone_once(django_capture_on_commit_callbacks):
    challenge = ended()
    ChallengePrizeFactory(challenge=challenge, rank=1, points=1000, description="a session with our experts")
    ChallengePrizeFactory(challenge=challenge, rank=2, points=400)
    ChallengePrizeFactory(challenge=challenge, rank=3, points=0, description="a mug")
    later = entry(challenge, 100, completed_minutes_ago=60)
    first = entry(challenge, 100, completed_minutes_ago=120)  # completed first: ranks above
    third = entry(challenge, "40.5")
    fourth = entry(challenge, "12")

    with django_capture_on_commit_callbacks(execute=True):
        assert settle_challenges() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert challenges.settle_ended_challenges() == 0
        assert challenges.challenge_settle(challenge=challenge) is False

    ranks = dict(ChallengeEntry.objects.values_list("pk", "final_rank"))
    assert [ranks[e.pk] for e in (first, later, third, fourth)] == [1, 2, 3, 4]
    name = "the challenge “Spring sprint”"
    assert prizes_paid() == [
        (first.member_id, None, 1000, f"Prize for rank 1 in {name}"),
        (later.member_id, None, 400, f"Prize for rank 2 in {name}"),
    ]
    assert told(Kind.CHALLENGE_RESULTS) == sorted(
        [
            (
                first.member_id,
                "Spring sprint has ended: rank 1 of 4. Your prize: 1,000 points and a session with our experts.",
            ),  # fmt: skip
            (later.member_id, "Spring sprint has ended: rank 2 of 4. Your prize: 400 points."),
            (third.member_id, "Spring sprint has ended: rank 3 of 4. Your prize: a mug."),
            (fourth.member_id, "Spring sprint has ended: rank 4 of 4."),
        ]
    )
    challenge.refresh_from_db()
    assert challenge.results_at is not None
    assert ledger_problems() == []


def test_companies_ranked_by_size_rank_by_score_per_active_member_and_win_for_the_partner():
    challenge = ended(level=ChallengeLevel.COMPANY, rank_companies_by_size=True)
    ChallengePrizeFactory(challenge=challenge, rank=1, points=900)
    big, small = PartnerFactory(), PartnerFactory()
    people = [MemberFactory(partner=big) for _ in range(3)] + [MemberFactory(partner=small)]
    ChallengeEntryFactory(challenge=challenge, member=None, partner=big, score=Decimal(90), normalised=Decimal(30),
                          active_members=3)  # fmt: skip
    ChallengeEntryFactory(challenge=challenge, member=None, partner=small, score=Decimal(60), normalised=Decimal(60))

    challenges.challenge_settle(challenge=challenge)

    assert dict(ChallengeEntry.objects.values_list("partner_id", "final_rank")) == {small.pk: 1, big.pk: 2}
    assert [row[1:3] for row in prizes_paid()] == [(small.pk, 900)]
    assert len(people) == 4


def test_a_zero_score_wins_nothing():
    challenge = ended()
    ChallengePrizeFactory(challenge=challenge, rank=1, points=100)
    ChallengePrizeFactory(challenge=challenge, rank=2, points=50)
    entry(challenge, 10)
    entry(challenge, 0)

    challenges.challenge_settle(challenge=challenge)

    assert [row[2] for row in prizes_paid()] == [100]


def test_a_running_challenge_cannot_be_settled_and_nothing_changes():
    challenge = ChallengeFactory(name="Spring sprint")
    ChallengePrizeFactory(challenge=challenge, rank=1)
    entry(challenge, 50)

    with pytest.raises(ApplicationError) as refused:
        challenges.challenge_settle(challenge=challenge)

    assert refused.value.code == ErrorCode.CHALLENGE_NOT_ENDED
    assert refused.value.message.startswith("“Spring sprint” runs until ")
    assert refused.value.message.endswith(": its results can be settled once it has ended.")
    assert list(ChallengeEntry.objects.values_list("final_rank", flat=True)) == [None]
    assert prizes_paid() == []
    challenge.refresh_from_db()
    assert challenge.results_at is None


def test_an_ended_draft_is_not_settled_by_the_task():
    ended(is_published=False)

    assert challenges.settle_ended_challenges() == 0
