"""The challenges' back office: saving with goals and prizes, refusing goals that could never be met (and saving
nothing), the warning when no rule pays completion, the list's status and counts, the standings on the page, and
settling from the list, with query counts that do not grow with rows."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import ChallengeLevel, EntrySource, GoalMetric, RuleEvent
from loyalty.error_codes import ErrorCode
from loyalty.models import Challenge, ChallengeGoal, ChallengePrize, PointsEntry
from loyalty.services.challenges import GoalDraft, validate_challenge
from tests.helpers import messages_of
from tests.loyalty.factories import (
    ChallengeEntryFactory,
    ChallengeFactory,
    ChallengeGoalFactory,
    ChallengePrizeFactory,
    CourseFactory,
    ModuleFactory,
    ProductFactory,
    ProductLineFactory,
    ProgramFactory,
    RuleFactory,
)
from tests.partners.factories import MemberFactory, PartnerFactory, role

pytestmark = pytest.mark.django_db

NOW = timezone.localtime()


def url(view: str = "changelist", *args, model: str = "challenge") -> str:
    return reverse(f"admin:loyalty_{model}_{view}", args=args)


def moment(value) -> dict:
    return {"0": value.strftime("%Y-%m-%d"), "1": value.strftime("%H:%M:%S")}


def form_data(program, *, goals=(), prizes=(), **fields) -> dict:
    starts = fields.pop("starts_at", NOW + timedelta(days=1))
    ends = fields.pop("ends_at", NOW + timedelta(days=31))
    data = {
        "program": program.pk,
        "code": "spring",
        "name": "Spring sprint",
        "description": "Sell ten softeners.",
        "level": ChallengeLevel.INDIVIDUAL,
        "completion_points": "0",
        "_save": "Save",
        **{f"starts_at_{k}": v for k, v in moment(starts).items()},
        **{f"ends_at_{k}": v for k, v in moment(ends).items()},
        "goals-TOTAL_FORMS": str(len(goals)),
        "goals-INITIAL_FORMS": "0",
        "goals-MIN_NUM_FORMS": "0",
        "goals-MAX_NUM_FORMS": "1000",
        "prizes-TOTAL_FORMS": str(len(prizes)),
        "prizes-INITIAL_FORMS": "0",
        "prizes-MIN_NUM_FORMS": "0",
        "prizes-MAX_NUM_FORMS": "1000",
    }
    for index, goal in enumerate(goals):
        goal = {"metric": GoalMetric.UNITS_SOLD, "target": "10", "product_line": "", "event": "", "custom_event": "",
                "position": str(index), **goal}  # fmt: skip
        data.update({f"goals-{index}-{key}": value for key, value in goal.items()})
    for index, prize in enumerate(prizes):
        prize = {"rank": str(index + 1), "points": "0", "description": "", **prize}
        data.update({f"prizes-{index}-{key}": value for key, value in prize.items()})
    data.update(fields)
    return data


def errors_of(response) -> list[str]:
    """Every error on the page: the form's fields and the formsets' rows and whole."""
    found = [str(e) for errors in response.context["adminform"].form.errors.values() for e in errors]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        found += [str(e) for e in formset.non_form_errors()]
        for form in formset.forms:
            found += [str(e) for errors in form.errors.values() for e in errors]
    return found


def test_a_challenge_is_saved_with_its_goals_prizes_and_audience(pm_client):
    program = ProgramFactory()
    RuleFactory(program=program, event=RuleEvent.CHALLENGE_COMPLETED, value=Decimal(1))
    line = ProductLineFactory()
    ProductFactory(line=line)
    data = form_data(
        program,
        goals=[{"product_line": str(line.pk)}, {"metric": GoalMetric.CLAIMS_APPROVED, "target": "3"}],
        prizes=[{"points": "1000"}, {"description": "A session with our experts"}],
        completion_points="500",
        is_published="on",
        roles=[str(role("sales").pk)],
        partner_kinds=["dealer", "installer"],
    )

    response = pm_client.post(url("add"), data)

    assert response.status_code == 302, errors_of(response)
    challenge = Challenge.objects.get()
    assert (challenge.code, challenge.completion_points, challenge.partner_kinds) == (
        "spring",
        500,
        ["dealer", "installer"],
    )
    assert [r.code for r in challenge.roles.all()] == ["sales"]
    assert list(ChallengeGoal.objects.order_by("position").values_list("metric", "target", "product_line")) == [
        (GoalMetric.UNITS_SOLD, Decimal(10), line.pk),
        (GoalMetric.CLAIMS_APPROVED, Decimal(3), None),
    ]
    assert list(ChallengePrize.objects.values_list("rank", "points", "description")) == [
        (1, 1000, ""),
        (2, 0, "A session with our experts"),
    ]
    assert not any("Nothing will be paid" in message for message in messages_of(response))


def test_publishing_without_a_rule_for_completion_saves_with_a_warning(pm_client):
    program = ProgramFactory()
    RuleFactory(program=program, event=RuleEvent.CHALLENGE_COMPLETED, custom_event="another-one")

    response = pm_client.post(url("add"), form_data(program, goals=[{}], completion_points="500", is_published="on"))

    assert response.status_code == 302
    assert Challenge.objects.count() == 1
    assert (
        "Nothing will be paid until a rule for “challenge completed” exists: 500 points are offered for completing "
        "“Spring sprint”, but no published rule of the program pays for completing it."
    ) in messages_of(response)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"goals": []}, "Add at least one goal: a challenge without goals can never be completed."),
        ({"ends_at": NOW - timedelta(days=2)}, "The challenge must end after it starts."),
        (
            {"starts_at": NOW - timedelta(days=9), "ends_at": NOW - timedelta(hours=1)},
            "This end is in the past: nobody could take part any more.",
        ),
        (
            {"goals": [{"metric": GoalMetric.EVENTS}]},
            "A goal of events needs the kind of event it counts.",
        ),
        (
            {"goals": [{"metric": GoalMetric.EVENTS, "event": RuleEvent.CHALLENGE_COMPLETED}]},
            "Completing a challenge never counts towards a challenge: choose another kind of event.",
        ),
        ({"prizes": [{"points": "0", "description": " "}]}, "Give the prize points or describe it (or both)."),
    ],
)
def test_a_challenge_that_can_never_be_completed_is_refused_and_nothing_is_saved(pm_client, change, message):
    program = ProgramFactory()
    data = form_data(program, **{"goals": [{}], **change})

    response = pm_client.post(url("add"), data)

    assert response.status_code == 200
    assert message in errors_of(response)
    assert Challenge.objects.count() == ChallengeGoal.objects.count() == ChallengePrize.objects.count() == 0


def test_a_line_without_an_active_product_is_refused(pm_client):
    program = ProgramFactory()
    line = ProductLineFactory(name="Old filters")
    ProductFactory(line=line, is_active=False)

    response = pm_client.post(url("add"), form_data(program, goals=[{"product_line": str(line.pk)}]))

    assert errors_of(response) == [
        "The product line Old filters has no active product: nobody can sell it, so its goal can never be met."
    ]
    assert Challenge.objects.count() == 0


def test_more_modules_than_the_audience_can_pass_is_refused(pm_client):
    program = ProgramFactory()
    for_everyone = CourseFactory(program=program)
    for_installers = CourseFactory(program=program)
    for_installers.roles.set([role("engineer")])
    ModuleFactory.create_batch(2, course=for_everyone)
    ModuleFactory(course=for_installers)
    ModuleFactory(course=CourseFactory(program=program, is_published=False))
    goal = {"metric": GoalMetric.MODULES_PASSED, "target": "3"}

    refused = pm_client.post(url("add"), form_data(program, goals=[goal], roles=[str(role("sales").pk)]))
    saved = pm_client.post(url("add"), form_data(program, goals=[goal], roles=[str(role("engineer").pk)]))

    assert errors_of(refused) == [
        "The goal asks for 3 modules passed, but the program has only 2 published modules for this audience."
    ]
    assert saved.status_code == 302
    assert Challenge.objects.count() == 1


def test_an_ended_challenge_keeps_its_end_when_edited(pm_client):
    challenge = ChallengeFactory(starts_at=NOW - timedelta(days=9), ends_at=NOW - timedelta(days=1))
    ChallengeGoalFactory(challenge=challenge)
    goal = challenge.goals.get()
    data = form_data(
        challenge.program,
        starts_at=challenge.starts_at,
        ends_at=challenge.ends_at,
        code=challenge.code,
        name="Renamed",
        goals=[{"id": str(goal.pk), "challenge": str(challenge.pk)}],
    )
    data["goals-INITIAL_FORMS"] = "1"

    response = pm_client.post(url("change", challenge.pk), data)

    assert response.status_code == 302, errors_of(response)
    challenge.refresh_from_db()
    assert challenge.name == "Renamed"


@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_shows_status_and_counts_in_a_fixed_number_of_queries(pm_client, django_assert_max_num_queries, rows):
    program = ProgramFactory()
    for number in range(rows):
        challenge = ChallengeFactory(program=program)
        ChallengeEntryFactory(challenge=challenge, score=Decimal(100), completed_at=timezone.now())
        ChallengeEntryFactory(challenge=challenge, score=Decimal(20))
        if number == 0:
            challenge.name = "First"
            challenge.save()

    with django_assert_max_num_queries(7):
        response = pm_client.get(url())

    assert response.status_code == 200
    assert response.context["cl"].result_count == rows
    html = response.content.decode()
    assert html.count('<td class="field-status_shown">Running</td>') == rows
    assert f'?challenge__id__exact={Challenge.objects.get(name="First").pk}">2</a>' in html


def test_the_status_filter(pm_client):
    program = ProgramFactory()
    ChallengeFactory(program=program, name="Now")
    ChallengeFactory(program=program, name="Draft", is_published=False)
    ChallengeFactory(program=program, name="Soon", starts_at=NOW + timedelta(days=1), ends_at=NOW + timedelta(days=9))
    ChallengeFactory(program=program, name="Over", starts_at=NOW - timedelta(days=9), ends_at=NOW - timedelta(days=1))
    ChallengeFactory(
        program=program, name="Done", starts_at=NOW - timedelta(days=9), ends_at=NOW - timedelta(days=1),
        results_at=NOW,
    )  # fmt: skip
    found = {}
    for status in ("draft", "upcoming", "running", "ended", "settled"):
        response = pm_client.get(url(), {"status": status})
        found[status] = [c.name for c in response.context["cl"].result_list]
    assert found == {"draft": ["Draft"], "upcoming": ["Soon"], "running": ["Now"], "ended": ["Over"],
                     "settled": ["Done"]}  # fmt: skip


def test_the_page_shows_the_top_standings_in_a_fixed_number_of_queries(pm_client, django_assert_max_num_queries):
    challenge = ChallengeFactory(level=ChallengeLevel.COMPANY, rank_companies_by_size=True)
    ChallengeGoalFactory(challenge=challenge)
    small = PartnerFactory(name="Small Water Ltd")
    ChallengeEntryFactory(challenge=challenge, member=None, partner=PartnerFactory(name="Big Water Ltd"),
                          score=Decimal(90), normalised=Decimal(30), active_members=3)  # fmt: skip
    ChallengeEntryFactory(challenge=challenge, member=None, partner=small, score=Decimal(60), normalised=Decimal(60))
    for _ in range(25):
        ChallengeEntryFactory(challenge=challenge, member=None, partner=PartnerFactory(), score=Decimal(1))

    with django_assert_max_num_queries(17):  # 27 entries, 1 goal and 0 prizes
        response = pm_client.get(url("change", challenge.pk))

    html = response.content.decode()
    assert html.index("Small Water Ltd") < html.index("Big Water Ltd")
    assert html.count("<tr><td>") == 20


def test_settling_from_the_list_pays_the_prizes_of_ended_ones_and_refuses_running_ones(pm_client):
    over = ChallengeFactory(name="Over", starts_at=NOW - timedelta(days=9), ends_at=NOW - timedelta(days=1))
    ChallengePrizeFactory(challenge=over, rank=1, points=300)
    winner = MemberFactory()
    ChallengeEntryFactory(challenge=over, member=winner, score=Decimal(80))
    running = ChallengeFactory(name="Still on")

    response = pm_client.post(url(), {"action": "settle", "_selected_action": [over.pk, running.pk]})

    assert response.status_code == 302
    shown = messages_of(response)
    assert shown[0].startswith("Still on: “Still on” runs until ")
    assert shown[1] == "Settled 1 challenge: Over."
    assert list(
        PointsEntry.objects.filter(source_type=EntrySource.CHALLENGE).values_list("available_delta", flat=True)
    ) == [300]


def test_the_participants_list_opens(pm_client, django_assert_max_num_queries):
    challenge = ChallengeFactory()
    for _ in range(5):
        ChallengeEntryFactory(challenge=challenge, score=Decimal(5))

    with django_assert_max_num_queries(8):
        response = pm_client.get(url(model="challengeentry"), {"challenge__id__exact": challenge.pk})

    assert response.context["cl"].result_count == 5


def test_the_add_page_opens(pm_client):
    ProgramFactory()

    response = pm_client.get(url("add"))

    assert response.status_code == 200
    assert "Progress" not in [fieldset.name for fieldset in response.context["adminform"]]


def test_the_service_refuses_the_same_problems_in_one_message():
    program = ProgramFactory()
    challenge = Challenge(program=program, name="Spring", starts_at=NOW, ends_at=NOW - timedelta(days=1))
    goals = [GoalDraft(metric=GoalMetric.EVENTS, target=Decimal(1))]

    with pytest.raises(ApplicationError) as refused:
        validate_challenge(challenge=challenge, goals=goals, prizes=[(0, "")])

    assert refused.value.code == ErrorCode.CHALLENGE_UNREACHABLE
    assert refused.value.message == (
        "The challenge must end after it starts. A goal of events needs the kind of event it counts. Give the prize "
        "points or describe it (or both)."
    )
    challenge.ends_at = NOW + timedelta(days=1)
    validate_challenge(challenge=challenge, goals=[GoalDraft(metric=GoalMetric.UNITS_SOLD, target=Decimal(5))])
