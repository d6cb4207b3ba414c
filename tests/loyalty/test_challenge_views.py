"""The member site's challenge pages: my challenges (running with a bar per goal and the time left, upcoming,
finished with the final rank and prize), a challenge with its leaderboard, the program period's leaderboard with its
toggles, the home page's "My challenges" panel, the consent to show one's name, who may open what, and the pages'
query counts."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import ChallengeLevel, GoalMetric
from loyalty.models import PeriodStanding
from loyalty.selectors import challenges as selectors
from loyalty.selectors.leaderboards import current_period_start
from partners.models import Member
from tests.helpers import visible
from tests.loyalty.factories import (
    ChallengeEntryFactory,
    ChallengeFactory,
    ChallengeGoalFactory,
    ChallengePrizeFactory,
    ProductLineFactory,
    ProgramFactory,
)
from tests.partners.factories import AccountManagerFactory, MemberFactory, PartnerFactory, ProgramManagerFactory, role

pytestmark = pytest.mark.django_db
LIST = reverse("challenge_list")
BOARD = reverse("leaderboard")
HOME = reverse("home")


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints")


@pytest.fixture
def rep(program):
    return MemberFactory(user__full_name="Ana Rep", partner__name="Blue Water Ltd")


@pytest.fixture
def rep_client(client, rep):
    client.force_login(rep.user)
    return client


def softener_sprint(program, **fields):
    """A running challenge with two goals: 10 softeners sold and 2 claims approved."""
    challenge = ChallengeFactory(
        program=program,
        name="Softener sprint",
        description="Sell softeners this month.",
        completion_points=500,
        starts_at=timezone.now() - timedelta(days=2),
        ends_at=timezone.now() + timedelta(days=12, hours=5),
        **fields,
    )
    softeners = ChallengeGoalFactory(
        challenge=challenge,
        product_line=ProductLineFactory(code="softeners", name="Softeners"),
        target=Decimal(10),
        position=1,
    )
    claims = ChallengeGoalFactory(challenge=challenge, metric=GoalMetric.CLAIMS_APPROVED, target=Decimal(2), position=2)
    return challenge, softeners, claims


def progress_entry(challenge, member, goals_values: dict, score, **fields):
    return ChallengeEntryFactory(
        challenge=challenge,
        member=member,
        progress={str(goal.pk): value for goal, value in goals_values.items()},
        score=Decimal(score),
        **fields,
    )


# My challenges --------------------------------------------------------------------------------------------------


def test_my_challenges_show_each_goal_with_its_bar_and_the_time_left(rep_client, rep, program):
    challenge, softeners, claims = softener_sprint(program)
    progress_entry(challenge, rep, {softeners: 7, claims: 1}, 60)

    response = rep_client.get(LIST)

    assert response.status_code == 200
    text = visible(response)
    assert "Softener sprint" in text
    assert "12 days left" in text
    assert "7 of 10 units of Softeners" in text
    assert "1 of 2 claims approved" in text
    assert "60% of every goal reached" in text
    assert "Reach every goal: 500 AquaPoints." in text
    html = response.content.decode()
    assert 'aria-valuenow="70" aria-valuetext="7 of 10 units of Softeners"' in html
    assert 'width="70%"' in html
    assert 'aria-valuenow="50"' in html
    assert 'style="' not in html  # the Content-Security-Policy refuses style attributes


def test_upcoming_and_finished_challenges_say_when_they_start_and_what_the_member_won(rep_client, rep, program):
    now = timezone.now()
    ChallengeGoalFactory(
        challenge=ChallengeFactory(
            program=program, name="Spring push", starts_at=now + timedelta(days=3, hours=1), ends_at=now + timedelta(30)
        ),
        target=Decimal(5),
    )
    finished = ChallengeFactory(
        program=program,
        name="Winter race",
        starts_at=now - timedelta(days=60),
        ends_at=now - timedelta(days=30),
        results_at=now - timedelta(days=29),
    )
    ChallengeGoalFactory(challenge=finished)
    ChallengePrizeFactory(challenge=finished, rank=2, points=300, description="A day with our experts")
    ChallengeEntryFactory(challenge=finished, member=rep, score=Decimal(80), final_rank=2)
    unsettled = ChallengeFactory(
        program=program, name="Autumn race", starts_at=now - timedelta(days=9), ends_at=now - timedelta(days=1)
    )
    ChallengeEntryFactory(challenge=unsettled, member=rep, score=Decimal(40))
    ChallengeFactory(program=program, name="Missed race", starts_at=now - timedelta(9), ends_at=now - timedelta(2))

    text = visible(rep_client.get(LIST))

    assert "Coming up" in text
    assert "Starts in 3 days" in text
    assert "0 of 5 units sold" in text
    assert "Final rank 2 (80% reached)." in text
    assert "A day with our experts · 300 AquaPoints" in text
    assert "40% reached. The results are being settled." in text
    assert "Missed race Ended" in text and "You did not take part." in text
    assert text.index("Autumn race") < text.index("Missed race") < text.index("Winter race")  # latest first


def test_my_challenges_without_any_say_so(rep_client, program):
    ChallengeFactory(program=program, is_published=False)

    text = visible(rep_client.get(LIST))

    assert "No challenges for you right now" in text


def test_a_company_challenge_shows_the_companys_progress(rep_client, rep, program):
    challenge, softeners, claims = softener_sprint(program, level=ChallengeLevel.COMPANY)
    ChallengeEntryFactory(
        challenge=challenge,
        member=None,
        partner=rep.partner,
        progress={str(softeners.pk): 9, str(claims.pk): 2},
        score=Decimal(95),
    )
    progress_entry(challenge, MemberFactory(partner=rep.partner), {softeners: 1}, 5)  # not the company's

    text = visible(rep_client.get(LIST))

    assert "Your company's challenge" in text
    assert "9 of 10 units of Softeners" in text
    assert "2 of 2 claims approved" in text


def test_goal_texts_name_the_measure_the_line_and_money_in_the_readers_language(program):
    challenge = ChallengeFactory(program=program)
    line = ProductLineFactory(name="Filters")
    amount = ChallengeGoalFactory(challenge=challenge, metric=GoalMetric.SALES_AMOUNT, target=Decimal("2500"))
    amount_line = ChallengeGoalFactory(
        challenge=challenge, metric=GoalMetric.SALES_AMOUNT, product_line=line, target=Decimal("1000")
    )
    modules = ChallengeGoalFactory(challenge=challenge, metric=GoalMetric.MODULES_PASSED, target=Decimal(1))
    events = ChallengeGoalFactory(
        challenge=challenge, metric=GoalMetric.EVENTS, event="survey_answered", target=Decimal(3)
    )
    units = ChallengeGoalFactory(challenge=challenge, target=Decimal(1500))

    def text(goal, value):
        return selectors.goal_text(goal, Decimal(value), currency="EUR")

    assert text(amount, "1234.5") == "€1,234.50 of €2,500.00 of sales"
    assert text(amount_line, "0") == "€0.00 of €1,000.00 of Filters sales"
    assert text(modules, "1") == "1 of 1 training module passed"
    assert text(events, "2") == "2 of 3: Survey answered"
    assert text(units, "1250.5") == "1,250.5 of 1,500 units sold"


def test_my_challenges_cost_the_same_queries_with_one_or_five_challenges(client, program):
    counts = []
    for size in (1, 5):
        member = MemberFactory()
        for _ in range(size):
            challenge, softeners, claims = softener_sprint(program)
            ChallengePrizeFactory(challenge=challenge)
            progress_entry(challenge, member, {softeners: 3}, 15)
        client.force_login(member.user)
        client.get(LIST)  # per-process caches warm
        with CaptureQueriesContext(connection) as captured:
            response = client.get(LIST)
        assert response.status_code == 200
        counts.append(len(captured))

    # session, user, membership, program; the challenges, their goals, their prizes, the member's entries; the
    # navigation's balance (the bell's count is cached after the first page)
    assert counts == [9, 9]


# A challenge -------------------------------------------------------------------------------------------------------


def test_a_challenge_page_shows_goals_prizes_and_the_leaderboard_around_the_member(rep_client, rep, program):
    challenge, softeners, claims = softener_sprint(program)
    ChallengePrizeFactory(challenge=challenge, rank=1, points=1000, description="")
    ChallengePrizeFactory(challenge=challenge, rank=2, points=0, description="Lunch with the team")
    for score in (90, 80, 70):
        ChallengeEntryFactory(challenge=challenge, score=Decimal(score))
    progress_entry(challenge, rep, {softeners: 5, claims: 1}, 50)
    ChallengeEntryFactory(
        challenge=challenge,
        score=Decimal(40),
        member=MemberFactory(user__full_name="Open Olga", show_name_on_leaderboards=True),
    )

    response = rep_client.get(reverse("challenge_detail", args=[challenge.pk]))

    assert response.status_code == 200
    text = visible(response)
    assert "Sell softeners this month." in text
    assert "5 of 10 units of Softeners" in text
    assert "Reach every goal: 500 AquaPoints." in text
    assert "Rank 1: 1,000 AquaPoints" in text
    assert "Rank 2: Lunch with the team" in text
    assert "4 You 50%" in text
    assert "5 Open Olga 40%" in text
    assert "You are number 4 of 5." in text
    assert "@" not in text.replace(rep.user.email, "")  # nobody else's e-mail


def test_a_company_challenge_ranked_by_size_toggles_between_per_member_and_total(rep_client, rep, program):
    challenge, *_ = softener_sprint(program, level=ChallengeLevel.COMPANY, rank_companies_by_size=True)
    ChallengeEntryFactory(
        challenge=challenge,
        member=None,
        partner=rep.partner,
        score=Decimal(60),
        normalised=Decimal(30),
        active_members=2,
    )
    giant = PartnerFactory(name="Giant Ltd")
    ChallengeEntryFactory(
        challenge=challenge, member=None, partner=giant, score=Decimal(90), normalised=Decimal(3), active_members=30
    )
    url = reverse("challenge_detail", args=[challenge.pk])

    per_member = visible(rep_client.get(url))
    total = visible(rep_client.get(url, {"per_member": "0"}))

    assert "1 Blue Water Ltd Your company 2 active members 30.0% per active member" in per_member
    assert "Your company is number 1 of 2." in per_member
    assert "Per active member" in per_member and "Total" in per_member
    assert "1 Giant Ltd 90%" in total
    assert "Your company is number 2 of 2." in total


def test_an_htmx_toggle_gets_only_the_board(rep_client, rep, program):
    challenge, *_ = softener_sprint(program)
    progress_entry(challenge, rep, {}, 10)

    response = rep_client.get(reverse("challenge_detail", args=[challenge.pk]), headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="board"')
    assert "<html" not in html and "My goals" not in html


def test_a_challenge_outside_the_members_audience_is_not_found(rep_client, program):
    engineers, *_ = softener_sprint(program)
    engineers.roles.add(role("engineer"))
    unpublished, *_ = softener_sprint(program, is_published=False, code="draft")

    for challenge in (engineers, unpublished):
        response = rep_client.get(reverse("challenge_detail", args=[challenge.pk]))
        assert response.status_code == 404


@pytest.mark.parametrize("who", ["program_manager", "account_manager", "left"])
def test_challenge_pages_are_for_partner_members_only(client, program, who):
    challenge, *_ = softener_sprint(program)
    if who == "program_manager":
        user = ProgramManagerFactory()
    elif who == "account_manager":
        user = AccountManagerFactory()
    else:
        user = MemberFactory(status="left").user
    client.force_login(user)

    for url in (LIST, BOARD, reverse("challenge_detail", args=[challenge.pk])):
        assert client.get(url).status_code == 404


def test_challenge_pages_ask_strangers_to_sign_in(client, program):
    response = client.get(LIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a_challenge_page_costs_the_same_queries_with_10_or_100_participants(client, program):
    counts = []
    for size in (10, 100):
        challenge, softeners, _ = softener_sprint(program, code=f"sprint-{size}")
        ChallengePrizeFactory(challenge=challenge)
        entries = [ChallengeEntryFactory(challenge=challenge, score=Decimal(n % 50)) for n in range(size)]
        member = entries[size // 2].member
        client.force_login(member.user)
        client.get(reverse("challenge_detail", args=[challenge.pk]))
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("challenge_detail", args=[challenge.pk]))
        assert response.status_code == 200
        counts.append(len(captured))

    # session, user, membership, program; the challenge, its goals, its prizes; the board's four (the member's entry,
    # the counts, the ids shown, their rows); the navigation's balance
    assert counts == [12, 12]


# The period's leaderboard ---------------------------------------------------------------------------------------


def standing(program, *, points, member=None, partner=None, active_members=1):
    return PeriodStanding.objects.create(
        program=program,
        period_start=current_period_start(program=program),
        partner=partner or member.partner,
        member=member,
        points=points,
        active_members=active_members,
        normalised=Decimal(points) / active_members,
    )


def test_the_period_leaderboard_ranks_people_then_companies_and_companies_per_active_member(rep_client, rep, program):
    standing(program, member=rep, points=1_500)
    standing(program, member=MemberFactory(role=role("engineer"), partner__region__name="Lakes"), points=2_750)
    standing(program, partner=rep.partner, points=1_500, active_members=1)
    standing(program, partner=MemberFactory(partner__name="Big Co").partner, points=12_000, active_members=40)

    people = visible(rep_client.get(BOARD))
    companies = visible(rep_client.get(BOARD, {"board": "companies"}))
    per_member = visible(rep_client.get(BOARD, {"board": "companies", "per_member": "1"}))

    start = current_period_start(program=program)
    assert f"AquaPoints earned from {start:%-d %b %Y}" in people
    assert f"1 {role('engineer').name} in Lakes 2,750" in people
    assert "2 You 1,500" in people
    assert "You are number 2 of 2." in people
    assert "1 Big Co 12,000" in companies
    assert "2 Blue Water Ltd Your company 1,500" in companies
    assert "1 Blue Water Ltd Your company 1 active member 1,500.0 AquaPoints per active member" in per_member
    assert "2 Big Co 40 active members 300.0 AquaPoints per active member" in per_member


def test_an_invalid_per_member_flag_keeps_the_company_board_the_user_asked_for(rep_client, rep, program):
    standing(program, member=rep, points=1_500)
    standing(program, partner=MemberFactory(partner__name="Big Co").partner, points=12_000, active_members=40)

    text = visible(rep_client.get(BOARD, {"board": "companies", "per_member": "abc"}))

    assert "1 Big Co 12,000" in text
    assert "You are number" not in text and "per active member" not in text.replace("Per active member", "")


def test_a_settled_challenge_page_shows_the_final_ranks_on_its_board(rep_client, rep, program):
    now = timezone.now()
    challenge, *_ = softener_sprint(program)
    challenge.starts_at, challenge.ends_at, challenge.results_at = now - timedelta(9), now - timedelta(1), now
    challenge.save()
    ChallengePrizeFactory(challenge=challenge, rank=3, points=0, description="A day with our experts")
    done = now - timedelta(days=2)
    ChallengeEntryFactory(challenge=challenge, member=rep, score=Decimal(100), completed_at=done, final_rank=3)
    for rank, hours in ((1, 9), (2, 5)):
        ChallengeEntryFactory(
            challenge=challenge, score=Decimal(100), completed_at=done - timedelta(hours=hours), final_rank=rank
        )

    text = visible(rep_client.get(reverse("challenge_detail", args=[challenge.pk])))

    assert "Final rank: 3. Prize: A day with our experts" in text
    assert "3 You Completed 100%" in text
    assert "You are number 3 of 3." in text
    assert "The final ranks: ties went to whoever completed first." in text


def test_the_period_leaderboard_without_standings_says_nobody_is_on_it_yet(rep_client, program):
    text = visible(rep_client.get(BOARD))

    assert "Nobody on the board yet" in text


def test_the_period_leaderboard_costs_the_same_queries_with_10_or_100_people(client, program):
    counts = []
    for size in (10, 100):
        PeriodStanding.objects.all().delete()
        people = [standing(program, member=MemberFactory(), points=n * 13 % 97) for n in range(size)]
        client.force_login(people[size // 3].member.user)
        client.get(BOARD)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(BOARD)
        assert response.status_code == 200
        counts.append(len(captured))

    # session, user, membership, program; the board's four; the navigation's balance
    assert counts == [9, 9]


# The home page ------------------------------------------------------------------------------------------------------


def test_home_shows_a_bar_per_running_challenge_ending_soonest_and_links_to_all(rep_client, rep, program):
    now = timezone.now()
    for days, name in ((20, "Late"), (5, "Soon"), (9, "Middle"), (15, "Fourth")):
        challenge = ChallengeFactory(program=program, name=name, ends_at=now + timedelta(days=days, hours=1))
        ChallengeGoalFactory(challenge=challenge)
        if name == "Soon":
            ChallengeEntryFactory(challenge=challenge, member=rep, score=Decimal("42.5"))
    ChallengeFactory(program=program, name="Not yet", starts_at=now + timedelta(days=1))

    response = rep_client.get(HOME)

    text = visible(response)
    assert "My challenges" in text
    assert "Soon 5 days left 42% of the goals reached" in text
    assert text.index("Soon") < text.index("Middle") < text.index("Fourth")
    assert "Late" not in text and "Not yet" not in text
    assert "See all 4 challenges" in text
    assert f'href="{LIST}"' in response.content.decode()


def test_home_has_no_challenge_panel_when_none_runs(rep_client, program):
    ChallengeFactory(program=program, name="Not yet", starts_at=timezone.now() + timedelta(days=1))

    response = rep_client.get(HOME)

    assert "My challenges" not in visible(response)


@pytest.mark.parametrize("challenges", [1, 6])
def test_home_panel_costs_one_query_whatever_the_number_of_challenges(rep_client, rep, program, challenges):
    for _ in range(challenges):
        challenge = ChallengeFactory(program=program)
        ChallengeEntryFactory(challenge=challenge, member=rep, score=Decimal(10))
    rep_client.get(HOME)

    # the whole page's count is pinned in tests/partners/test_views.py; "My challenges" adds one query
    with CaptureQueriesContext(connection) as captured:
        response = rep_client.get(HOME)

    assert response.status_code == 200
    panel = [q for q in captured.captured_queries if "loyalty_challenge" in q["sql"]]
    assert len(panel) == 1
    assert "My challenges" in visible(response)


def test_the_navigation_links_members_to_challenges(rep_client, program):
    html = rep_client.get(LIST).content.decode()

    assert re.search(rf'<a class="nav-link active" aria-current="page" href="{LIST}">Challenges</a>', html)


# Consent ---------------------------------------------------------------------------------------------------------


def test_a_member_consents_to_show_their_name_on_leaderboards_in_their_profile(rep_client, rep):
    page = rep_client.get(reverse("profile")).content.decode()
    assert 'name="show_name_on_leaderboards"' in page

    response = rep_client.post(
        reverse("profile"),
        {
            "full_name": "Ana Rep",
            "phone": "",
            "language": "en",
            "preferred_channel": "email",
            "time_zone": "",
            "show_name_on_leaderboards": "on",
        },
    )

    assert response.status_code == 302
    assert Member.objects.get(pk=rep.pk).show_name_on_leaderboards is True
    page = rep_client.get(reverse("profile")).content.decode()
    assert re.search(r'name="show_name_on_leaderboards"[^>]*checked', page)

    rep_client.post(
        reverse("profile"),
        {"full_name": "Ana Rep", "phone": "", "language": "en", "preferred_channel": "email", "time_zone": ""},
    )
    assert Member.objects.get(pk=rep.pk).show_name_on_leaderboards is False
