"""Leaderboards (loyalty.selectors.leaderboards): the top rows, the viewer's rank and the rows around it, ties, names
shown with consent only, companies ranked by total or per active member, the period board, who may see a board, and
a query count that does not grow with the participants."""

import random
import re
from datetime import date, timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.constants import ChallengeLevel, TierPeriod
from loyalty.models import Challenge, ChallengeEntry, PeriodStanding
from loyalty.selectors.challenges import challenge_get, challenges_for
from loyalty.selectors.leaderboards import board, challenge_board, current_period_start
from loyalty.services.challenges import challenge_settle
from partners.visibility import viewer_for
from tests.loyalty.factories import ChallengeEntryFactory, ChallengeFactory, ChallengeGoalFactory, ProgramFactory
from tests.partners.factories import (
    MemberFactory,
    PartnerFactory,
    ProgramManagerFactory,
    RegionFactory,
    role,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints")


@pytest.fixture
def challenge(program):
    challenge = ChallengeFactory(program=program, name="Softener sprint")
    ChallengeGoalFactory(challenge=challenge)
    return challenge


def entries(challenge, scores) -> list:
    """A member's entry per score, created in this order (so ids increase along the list)."""
    return [ChallengeEntryFactory(challenge=challenge, score=Decimal(score)) for score in scores]


def seen(viewer_member, challenge: Challenge) -> Challenge:
    return challenge_get(viewer=viewer_member.user, program=challenge.program, pk=challenge.pk)


def ranks(rows) -> list[int]:
    return [row.rank for row in rows]


# Ranks and neighbours ---------------------------------------------------------------------------------------


def test_board_shows_the_top_the_viewers_rank_and_the_rows_just_above_and_below(challenge):
    rows = entries(challenge, range(300, 0, -10))  # 30 people: 300, 290, ..., 10
    me = rows[14].member  # 160 points: rank 15

    result = challenge_board(viewer=me.user, challenge=seen(me, challenge), top=3, around=2)

    assert ranks(result.top) == [1, 2, 3]
    assert [row.value for row in result.top] == [Decimal(300), Decimal(290), Decimal(280)]
    assert ranks(result.around) == [13, 14, 15, 16, 17]
    assert [row.value for row in result.around] == [Decimal(v) for v in (180, 170, 160, 150, 140)]
    assert result.me.rank == 15
    assert result.me.is_me and result.me.name == "You"
    assert [row.is_me for row in result.around] == [False, False, True, False, False]
    assert result.total == 30
    assert result.gap is True
    assert result.own == rows[14]


def test_ties_are_ranked_by_who_got_there_first(challenge):
    rows = entries(challenge, [50, 80, 50, 50, 80, 10])  # ids in this order
    me = rows[2].member  # the second of three at 50

    result = challenge_board(viewer=me.user, challenge=seen(me, challenge), top=2, around=1)

    assert [(row.rank, row.value) for row in result.top] == [(1, Decimal(80)), (2, Decimal(80))]
    assert [(row.rank, row.value, row.is_me) for row in result.around] == [
        (3, Decimal(50), False),
        (4, Decimal(50), True),
        (5, Decimal(50), False),
    ]
    assert result.gap is False
    assert result.total == 6


def test_a_viewer_in_the_top_is_marked_there_and_only_the_rows_below_the_top_come_around(challenge):
    rows = entries(challenge, [90, 80, 70, 60, 50])
    me = rows[1].member

    result = challenge_board(viewer=me.user, challenge=seen(me, challenge), top=3, around=2)

    assert ranks(result.top) == [1, 2, 3]
    assert [row.is_me for row in result.top] == [False, True, False]
    assert ranks(result.around) == [4]
    assert result.me.rank == 2
    assert result.gap is False


def test_a_viewer_without_an_entry_sees_the_top_and_the_number_taking_part(challenge):
    entries(challenge, [30, 20, 10])
    outsider = MemberFactory()

    result = challenge_board(viewer=outsider.user, challenge=seen(outsider, challenge), top=2)

    assert ranks(result.top) == [1, 2]
    assert result.me is None
    assert result.around == []
    assert result.total == 3
    assert result.own is None


def test_every_rank_and_neighbour_equals_the_position_in_the_fully_sorted_board(challenge):
    chooser = random.Random(12)
    rows = entries(challenge, [chooser.choice([0, 10, 25, 50, 75, 100]) for _ in range(40)])
    in_order = sorted(rows, key=lambda entry: (-entry.score, entry.pk))
    position = {entry.pk: n for n, entry in enumerate(in_order, 1)}

    for entry in rows:
        result = challenge_board(viewer=entry.member.user, challenge=seen(entry.member, challenge), top=5, around=3)

        rank = position[entry.pk]
        assert result.me.rank == rank
        expected = [n for n in range(rank - 3, rank + 4) if 5 < n <= 40]
        assert ranks(result.around) == expected
        assert [row.value for row in result.top] == [e.score for e in in_order[:5]]
        assert [row.value for row in result.around] == [in_order[n - 1].score for n in expected]


def test_the_board_is_empty_before_anybody_makes_progress(challenge):
    member = MemberFactory()

    result = challenge_board(viewer=member.user, challenge=seen(member, challenge))

    assert result.empty
    assert (result.top, result.around, result.me, result.total) == ([], [], None, 0)


def test_ties_at_100_percent_rank_whoever_completed_first_as_the_final_ranks_will(challenge):
    now = timezone.now()
    late, early, on_the_way, middle = (
        ChallengeEntryFactory(challenge=challenge, score=Decimal(score), completed_at=completed)
        for score, completed in (
            (100, now - timedelta(hours=1)),
            (100, now - timedelta(hours=5)),
            (80, None),
            (100, now - timedelta(hours=3)),
        )
    )
    viewer = on_the_way.member

    result = challenge_board(viewer=viewer.user, challenge=seen(viewer, challenge))

    assert [row.rank for row in result.top] == [1, 2, 3, 4]
    assert [row.completed for row in result.top] == [True, True, True, False]
    loaded = {entry.pk: entry for entry in (late, early, on_the_way, middle)}
    for entry in loaded.values():
        own = challenge_board(viewer=entry.member.user, challenge=seen(entry.member, challenge))
        assert own.me.rank == {early.pk: 1, middle.pk: 2, late.pk: 3, on_the_way.pk: 4}[entry.pk]


def test_every_rank_on_a_running_board_is_the_final_rank_settling_gives(challenge):
    chooser = random.Random(7)
    now = timezone.now()
    rows = []
    for _ in range(30):
        score = chooser.choice([40, 60, 100, 100])
        completed = now - timedelta(minutes=chooser.choice([5, 10, 20])) if score == 100 else None
        rows.append(ChallengeEntryFactory(challenge=challenge, score=Decimal(score), completed_at=completed))
    running = {
        e.pk: challenge_board(viewer=e.member.user, challenge=seen(e.member, challenge), top=3, around=2) for e in rows
    }
    Challenge.objects.filter(pk=challenge.pk).update(ends_at=now - timedelta(minutes=1))

    challenge_settle(challenge=challenge, now=now)

    final = dict(ChallengeEntry.objects.filter(challenge=challenge).values_list("pk", "final_rank"))
    assert {pk: board.me.rank for pk, board in running.items()} == final
    in_order = sorted(rows, key=lambda e: final[e.pk])
    for pk, result in running.items():  # the neighbours too
        rank = final[pk]
        expected = [n for n in range(rank - 2, rank + 3) if 3 < n <= 30]
        assert [row.rank for row in result.around] == expected
        assert [row.value for row in result.around] == [in_order[n - 1].score for n in expected]


def settled_challenge(program, final_ranks_and_scores) -> tuple[Challenge, list]:
    """An ended challenge whose results are settled with the final ranks given (whatever the scores say)."""
    now = timezone.now()
    challenge = ChallengeFactory(
        program=program, starts_at=now - timedelta(days=9), ends_at=now - timedelta(days=1), results_at=now
    )
    ChallengeGoalFactory(challenge=challenge)
    rows = [
        ChallengeEntryFactory(challenge=challenge, score=Decimal(score), final_rank=rank)
        for rank, score in final_ranks_and_scores
    ]
    return challenge, rows


def test_a_settled_board_shows_the_final_ranks_and_the_ranks_around_the_viewers(program):
    # final ranks that the scores alone would not give (ties settled by completion)
    challenge, rows = settled_challenge(program, [(3, 100), (1, 100), (2, 100), (5, 60), (4, 70), (6, 10), (7, 5)])
    me = rows[0].member

    result = challenge_board(viewer=me.user, challenge=seen(me, challenge), top=2, around=1)

    assert result.final
    assert result.me.rank == 3 and result.me.is_me and result.own == rows[0]
    assert [(row.rank, row.value) for row in result.top] == [(1, Decimal(100)), (2, Decimal(100))]
    assert [(row.rank, row.value, row.is_me) for row in result.around] == [
        (3, Decimal(100), True),
        (4, Decimal(70), False),
    ]
    assert result.total == 7
    outsider = MemberFactory()
    seen_by_outsider = challenge_board(viewer=outsider.user, challenge=seen(outsider, challenge), top=3)
    assert [row.rank for row in seen_by_outsider.top] == [1, 2, 3]
    assert seen_by_outsider.me is None


def test_an_entry_without_a_final_rank_comes_last_on_a_settled_board(program):
    challenge, rows = settled_challenge(program, [(1, 50), (2, 40), (None, 90)])
    me = rows[2].member

    result = challenge_board(viewer=me.user, challenge=seen(me, challenge), top=5)

    assert [(row.rank, row.is_me) for row in result.top] == [(1, False), (2, False)]
    assert [(row.rank, row.is_me) for row in result.around] == [(3, True)]
    assert result.me.rank == 3 and result.total == 3


def test_a_settled_board_costs_at_most_three_queries_with_20_or_200_participants(program):
    counts = []
    for size in (20, 200):
        challenge, rows = settled_challenge(program, [(n, 100 - n % 50) for n in range(1, size + 1)])
        me = rows[size // 2].member
        checked = seen(me, challenge)
        counts.append(queries_of(partial(challenge_board, viewer=me.user, challenge=checked, top=10, around=2)))
        counts.append(queries_of(partial(challenge_board, viewer=me.user, challenge=checked, top=10, around=2)))

    assert counts == [3, 2, 3, 2]  # the viewer's row, the total (cached then), the rows shown


# Names -------------------------------------------------------------------------------------------------------


def test_others_are_named_only_with_their_consent_and_otherwise_by_role_and_region(challenge):
    north = RegionFactory(name="North")
    shy = MemberFactory(
        user__full_name="Shy Person", user__email="shy@dealer.example", partner__region=north, role=role("engineer")
    )
    proud = MemberFactory(user__full_name="Proud Seller", show_name_on_leaderboards=True)
    nameless = MemberFactory(user__full_name="  ", show_name_on_leaderboards=True, partner__region=north)
    me = MemberFactory(user__full_name="Me Myself", show_name_on_leaderboards=True)
    for member, score in ((shy, 90), (proud, 80), (nameless, 70), (me, 60)):
        ChallengeEntryFactory(challenge=challenge, member=member, score=Decimal(score))

    result = challenge_board(viewer=me.user, challenge=seen(me, challenge))

    engineer = role("engineer").name
    sales = role("sales").name
    assert [row.name for row in result.top] == [
        f"{engineer} in North",
        "Proud Seller",
        f"{sales} in North",
        "You",
    ]
    assert all("@" not in row.name for row in result.top)


# Companies ---------------------------------------------------------------------------------------------------


def company_entry(challenge, partner, score, active_members):
    return ChallengeEntryFactory(
        challenge=challenge,
        member=None,
        partner=partner,
        score=Decimal(score),
        normalised=Decimal(score) / active_members,
        active_members=active_members,
    )


def test_company_boards_rank_companies_by_total_or_per_active_member(program):
    challenge = ChallengeFactory(program=program, level=ChallengeLevel.COMPANY, rank_companies_by_size=True)
    big, small, mine = (PartnerFactory(name=n) for n in ("Big Water Ltd", "Small Pipes", "My Dealer"))
    company_entry(challenge, big, 90, 30)  # 3 per member
    company_entry(challenge, small, 40, 2)  # 20 per member
    company_entry(challenge, mine, 60, 6)  # 10 per member
    me = MemberFactory(partner=mine)

    per_member = challenge_board(viewer=me.user, challenge=seen(me, challenge))
    total = challenge_board(viewer=me.user, challenge=seen(me, challenge), by_size=False)

    assert per_member.companies and per_member.by_size
    assert [(row.name, row.value) for row in per_member.top] == [
        ("Small Pipes", Decimal(20)),
        ("My Dealer", Decimal(10)),
        ("Big Water Ltd", Decimal(3)),
    ]
    assert [row.active_members for row in per_member.top] == [2, 6, 30]
    assert per_member.me.rank == 2 and per_member.me.is_company and per_member.me.name == "My Dealer"
    assert not total.by_size
    assert [row.name for row in total.top] == ["Big Water Ltd", "My Dealer", "Small Pipes"]
    assert total.me.rank == 2


def test_a_company_board_without_size_ranking_ignores_the_per_member_wish(program):
    challenge = ChallengeFactory(program=program, level=ChallengeLevel.COMPANY)
    company_entry(challenge, PartnerFactory(name="A"), 10, 1)
    member = MemberFactory()

    result = challenge_board(viewer=member.user, challenge=seen(member, challenge))

    assert result.companies and not result.by_size


# The period board ------------------------------------------------------------------------------------------------


def standing(program, *, points, member=None, partner=None, start=None, active_members=1):
    partner = partner or member.partner
    return PeriodStanding.objects.create(
        program=program,
        period_start=start or current_period_start(program=program),
        partner=partner,
        member=member,
        points=points,
        active_members=active_members,
        normalised=Decimal(points) / active_members,
    )


def test_current_period_starts_with_the_quarter_or_the_year():
    quarterly = ProgramFactory.build(tier_period=TierPeriod.QUARTER)
    yearly = ProgramFactory.build(tier_period=TierPeriod.YEAR)

    assert current_period_start(program=quarterly, today=date(2026, 11, 17)) == date(2026, 10, 1)
    assert current_period_start(program=quarterly, today=date(2026, 3, 31)) == date(2026, 1, 1)
    assert current_period_start(program=yearly, today=date(2026, 11, 17)) == date(2026, 1, 1)


def test_the_period_board_ranks_people_by_points_of_this_period_only(program):
    me, rival = MemberFactory(), MemberFactory(user__full_name="Rival", show_name_on_leaderboards=True)
    standing(program, member=me, points=1_200)
    standing(program, member=rival, points=3_400)
    standing(program, member=MemberFactory(), points=9_999, start=date(2020, 1, 1))  # an old period
    standing(ProgramFactory(), member=MemberFactory(), points=9_999)  # another program
    standing(program, partner=me.partner, points=4_600)  # the company row: not on the people board

    result = board(viewer=me.user, program=program)

    assert [(row.rank, row.name, row.value) for row in result.top] == [(1, "Rival", 3_400), (2, "You", 1_200)]
    assert result.total == 2
    assert result.unit == "points"


def test_the_period_board_of_companies_can_be_normalised_per_active_member(program):
    me = MemberFactory(partner__name="Tiny Taps")
    standing(program, partner=PartnerFactory(name="Huge Ltd"), points=10_000, active_members=50)
    standing(program, partner=me.partner, points=900, active_members=3)

    totals = board(viewer=me.user, program=program, companies=True)
    per_member = board(viewer=me.user, program=program, companies=True, by_size=True)

    assert [(row.name, row.value) for row in totals.top] == [("Huge Ltd", 10_000), ("Tiny Taps", 900)]
    assert totals.me.rank == 2
    assert [(row.name, row.value) for row in per_member.top] == [
        ("Tiny Taps", Decimal(300)),
        ("Huge Ltd", Decimal(200)),
    ]
    assert per_member.me.rank == 1 and per_member.me.is_me


# Who sees a board ---------------------------------------------------------------------------------------------


def test_a_challenge_outside_the_viewers_audience_has_no_board_for_them(challenge):
    challenge.roles.add(role("engineer"))
    entries(challenge, [10, 20])
    rep = MemberFactory(role=role("sales"))

    with pytest.raises(Challenge.DoesNotExist):
        seen(rep, challenge)
    assert challenge_board(viewer=rep.user, challenge=challenge).empty
    engineer = MemberFactory(role=role("engineer"))
    assert challenge_board(viewer=engineer.user, challenge=challenge).total == 2


def test_people_without_a_membership_see_no_board(challenge, program):
    entries(challenge, [10])
    standing(program, member=MemberFactory(), points=5)
    manager = ProgramManagerFactory()

    assert challenge_board(viewer=manager, challenge=challenge).empty
    assert board(viewer=manager, program=program).empty


def test_the_audience_is_checked_on_role_partner_type_tier_and_region(program):
    member = MemberFactory(role=role("sales"), partner__kind="dealer", partner__region=RegionFactory(code="n"))
    viewer = viewer_for(member.user)
    open_to_all = ChallengeFactory(program=program)
    dealers = ChallengeFactory(program=program, partner_kinds=["dealer"])
    installers = ChallengeFactory(program=program, partner_kinds=["installer"])
    elsewhere = ChallengeFactory(program=program)
    elsewhere.regions.add(RegionFactory(code="s"))
    engineers_company = ChallengeFactory(program=program, level=ChallengeLevel.COMPANY)
    engineers_company.roles.add(role("engineer"))  # company challenges: the company takes part, whatever the role
    unpublished = ChallengeFactory(program=program, is_published=False)

    visible = set(challenges_for(viewer, program=program))

    assert visible == {open_to_all, dealers, engineers_company}
    assert installers not in visible and elsewhere not in visible and unpublished not in visible


# Query counts ---------------------------------------------------------------------------------------------------


def queries_of(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


def test_a_challenge_board_costs_four_queries_with_20_or_200_participants(program):
    counts = []
    for size in (20, 200):
        challenge = ChallengeFactory(program=program)
        rows = entries(challenge, [n % 37 for n in range(size)])
        me = rows[size // 2].member
        checked = seen(me, challenge)
        counts.append(queries_of(partial(challenge_board, viewer=me.user, challenge=checked, top=10, around=2)))

    assert counts == [4, 4]


def test_a_period_board_costs_four_queries_whatever_its_size(program):
    counts = []
    for size, start in ((15, date(2030, 1, 1)), (150, date(2031, 1, 1))):
        people = [standing(program, member=MemberFactory(), points=n * 7 % 101, start=start) for n in range(size)]
        me = people[size // 2].member
        viewer = viewer_for(me.user)
        counts.append(queries_of(partial(board, viewer=viewer, program=program, period_start=start)))

    assert counts == [4, 4]


def test_the_rank_is_counted_in_the_database_and_only_the_rows_shown_are_loaded(challenge):
    rows = entries(challenge, range(100))
    me = rows[0].member  # score 0: the last
    checked = seen(me, challenge)

    with CaptureQueriesContext(connection) as captured:
        result = challenge_board(viewer=me.user, challenge=checked, top=3, around=1)

    assert result.me.rank == 100
    own, counts, ids, shown = (query["sql"] for query in captured.captured_queries)
    assert "LIMIT 1" in own
    assert counts.count("count(*)") == 4  # better score, same score completed earlier, same and before; the total
    assert ids.count("LIMIT") == 1 + 3 + 2 and "UNION ALL" in ids  # the top; the parts above; below
    loaded = re.search(r'"loyalty_challengeentry"\."id" IN \(([\d, ]+)\)', shown).group(1)
    assert {int(pk) for pk in loaded.split(", ")} == {rows[n].pk for n in (99, 98, 97, 1)}  # the top 3, one above


def test_the_number_taking_part_is_counted_once_a_minute_and_never_below_the_viewers_rank(challenge):
    rows = entries(challenge, [40, 30, 20])
    me = rows[2].member
    first = challenge_board(viewer=me.user, challenge=seen(me, challenge))
    newcomers = entries(challenge, [90, 80, 5])

    again = challenge_board(viewer=me.user, challenge=seen(me, challenge))
    cache.delete(f"leaderboard-total:challenge:{challenge.pk}:0")
    recounted = challenge_board(viewer=me.user, challenge=seen(me, challenge))

    assert (first.me.rank, first.total) == (3, 3)
    assert (again.me.rank, again.total) == (5, 6)  # the rank is counted now; the total is the cached 3, raised
    assert (recounted.me.rank, recounted.total) == (5, 6)
    assert len(newcomers) == 3
