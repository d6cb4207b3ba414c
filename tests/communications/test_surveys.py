import csv
import io
from datetime import timedelta

import factory
import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from factory.django import DjangoModelFactory

from communications.constants import Channel, Kind, QuestionKind, SurveyStatus
from communications.models import Answer, Delivery, Question, Response, Survey
from communications.surveys import nps, survey_answer, survey_invite, survey_results
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import DAY_FORMAT
from loyalty.constants import EntrySource, RuleEvent
from loyalty.models import PartnerTier, PointsAccount, PointsEntry, Tier
from partners.constants import PartnerKind
from tests.loyalty.factories import ProgramFactory, RuleFactory
from tests.partners.factories import MemberFactory, role

pytestmark = pytest.mark.django_db


class SurveyFactory(DjangoModelFactory):
    class Meta:
        model = Survey
        skip_postgeneration_save = True

    program = factory.SubFactory(ProgramFactory)
    title = factory.Sequence(lambda n: f"Survey {n}")
    status = SurveyStatus.OPEN

    @factory.post_generation
    def roles(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.roles.set(extracted)


class QuestionFactory(DjangoModelFactory):
    class Meta:
        model = Question

    survey = factory.SubFactory(SurveyFactory)
    order = factory.Sequence(int)
    kind = QuestionKind.NPS
    text = factory.Sequence(lambda n: f"Question {n}?")


def nps_survey(**kwargs) -> tuple[Survey, Question]:
    survey = SurveyFactory(**kwargs)
    return survey, QuestionFactory(survey=survey)


def answer_page(survey) -> str:
    return reverse("survey_answer", args=[survey.pk])


# Answering -------------------------------------------------------------------------------------------------------


def test_a_member_answers_a_survey_once_on_the_member_site(client):
    survey, question = nps_survey()
    choice = QuestionFactory(survey=survey, kind=QuestionKind.MULTIPLE, choices=["Price", "Quality", "Service"])
    text = QuestionFactory(survey=survey, kind=QuestionKind.TEXT, required=False)
    member = MemberFactory()
    client.force_login(member.user)

    response = client.post(
        answer_page(survey), {f"q{question.pk}": "9", f"q{choice.pk}": ["Service", "Price"], f"q{text.pk}": " Good "}
    )

    assert response.status_code == 302
    assert response.url == reverse("survey_thanks", args=[survey.pk])
    stored = Response.objects.get(survey=survey, member=member)
    assert dict(stored.answers.values_list("question_id", "value")) == {
        question.pk: 9,
        choice.pk: ["Price", "Service"],
        text.pk: "Good",
    }
    thanks = client.get(response.url)
    assert thanks.status_code == 200
    assert "Thank you for your answers!" in thanks.content.decode()


def test_a_survey_answered_twice_is_refused_with_the_day_and_changes_nothing(client):
    survey, question = nps_survey()
    member = MemberFactory()
    client.force_login(member.user)
    client.post(answer_page(survey), {f"q{question.pk}": "9"})
    first = Response.objects.get(survey=survey, member=member)

    again = client.post(answer_page(survey), {f"q{question.pk}": "2"})

    assert again.status_code == 409
    day = date_format(timezone.localtime(first.submitted_at), DAY_FORMAT)
    assert f"You answered this survey on {day}" in again.content.decode()
    assert list(Answer.objects.filter(response__survey=survey).values_list("value", flat=True)) == [9]
    with pytest.raises(ApplicationError, match="You answered this survey on"):
        survey_answer(survey=survey, member=member, answers={question.pk: 3})
    assert Response.objects.filter(survey=survey).count() == 1


def test_a_required_question_left_empty_is_refused_and_nothing_is_stored(client):
    survey, question = nps_survey()
    client.force_login(MemberFactory().user)

    response = client.post(answer_page(survey), {})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Response.objects.exists()


def test_an_answer_outside_the_scale_or_the_choices_is_refused():
    survey, question = nps_survey()
    single = QuestionFactory(survey=survey, kind=QuestionKind.SINGLE, choices=["Yes", "No"])
    member = MemberFactory()

    with pytest.raises(ApplicationError, match="does not fit"):
        survey_answer(survey=survey, member=member, answers={question.pk: 11, single.pk: "Yes"})
    with pytest.raises(ApplicationError, match="does not fit"):
        survey_answer(survey=survey, member=member, answers={question.pk: 10, single.pk: "Maybe"})
    assert not Response.objects.exists()


def test_answering_pays_the_survey_points_once_through_the_programs_survey_rule():
    survey, question = nps_survey(points_for_answer=50)
    RuleFactory(  # 1 pt per point the survey offers (loyalty/services/survey_points.py)
        program=survey.program, event=RuleEvent.SURVEY_ANSWERED, value=1, apply_tier_multiplier=False
    )
    member = MemberFactory()

    survey_answer(survey=survey, member=member, answers={question.pk: 10})
    with pytest.raises(ApplicationError):
        survey_answer(survey=survey, member=member, answers={question.pk: 10})

    account = PointsAccount.objects.get(program=survey.program, member=member)
    entry = PointsEntry.objects.get(account=account)
    source = f"survey:{survey.pk}:{member.pk}"
    assert (entry.available_delta, entry.source_type, entry.source_id) == (50, EntrySource.SURVEY, source)
    account.refresh_from_db()
    assert account.available == 50


def test_the_pages_promise_and_report_what_the_rules_pay_not_the_surveys_figure(client):
    unpaid, unpaid_question = nps_survey(points_for_answer=50)  # no rule pays answers in its program
    paid, paid_question = nps_survey(points_for_answer=40)
    RuleFactory(program=paid.program, event=RuleEvent.SURVEY_ANSWERED, value=1, apply_tier_multiplier=False)
    member = MemberFactory()
    client.force_login(member.user)

    listed = client.get(reverse("survey_list")).content.decode()
    assert "40 points for your answers" in listed
    assert "50 points" not in listed

    survey_answer(survey=paid, member=member, answers={paid_question.pk: 9})
    survey_answer(survey=unpaid, member=member, answers={unpaid_question.pk: 9})
    assert (
        "40 points were added to your account" in client.get(reverse("survey_thanks", args=[paid.pk])).content.decode()
    )
    assert "points were added" not in client.get(reverse("survey_thanks", args=[unpaid.pk])).content.decode()


def test_a_survey_without_points_posts_nothing():
    survey, question = nps_survey(points_for_answer=0)
    member = MemberFactory()

    survey_answer(survey=survey, member=member, answers={question.pk: 7})

    assert not PointsEntry.objects.exists()


# Who sees what ---------------------------------------------------------------------------------------------------


def test_the_list_shows_the_running_surveys_of_the_members_role_and_partner_type(client):
    member = MemberFactory(role=role("foreman"), partner__kind=PartnerKind.INSTALLER)
    for_everyone = SurveyFactory(title="For everyone")
    for_foremen = SurveyFactory(title="For foremen", roles=[role("foreman")])
    SurveyFactory(title="For sales reps", roles=[role("sales")])
    SurveyFactory(title="For dealers", partner_kinds=[PartnerKind.DEALER])
    SurveyFactory(title="A draft", status=SurveyStatus.DRAFT)
    SurveyFactory(title="Closed yesterday", closes_at=timezone.now() - timedelta(days=1))
    client.force_login(member.user)

    response = client.get(reverse("survey_list"))

    assert [survey.title for survey in response.context["surveys"]] == [for_foremen.title, for_everyone.title]


def test_a_survey_for_another_role_is_a_404(client):
    survey, _question = nps_survey(roles=[role("engineer")])
    client.force_login(MemberFactory(role=role("sales")).user)

    assert client.get(answer_page(survey)).status_code == 404
    assert client.post(answer_page(survey), {}).status_code == 404
    assert not Response.objects.exists()


def test_another_members_thanks_page_is_a_404(client):
    survey, question = nps_survey()
    survey_answer(survey=survey, member=MemberFactory(), answers={question.pk: 9})
    client.force_login(MemberFactory().user)

    assert client.get(reverse("survey_thanks", args=[survey.pk])).status_code == 404


def test_the_survey_page_costs_the_same_queries_however_many_questions(client, django_assert_num_queries):
    survey, _question = nps_survey()
    member = MemberFactory()
    client.force_login(member.user)
    # session, user, membership, survey (with answered_at), questions; the navigation's program, points account and
    # inbox count (cached: cleared so that each request counts it)
    cache.clear()
    with django_assert_num_queries(8):
        assert client.get(answer_page(survey)).status_code == 200
    QuestionFactory.create_batch(5, survey=survey, kind=QuestionKind.SINGLE, choices=["A", "B", "C"])
    cache.clear()
    with django_assert_num_queries(8):
        response = client.get(answer_page(survey))
    assert response.content.decode().count("<fieldset") == 6


# Invitations -----------------------------------------------------------------------------------------------------


def test_inviting_notifies_the_audience_once(messages_out, django_capture_on_commit_callbacks):
    survey = SurveyFactory(title="How do we do?", roles=[role("foreman")])
    foremen = MemberFactory.create_batch(2, role=role("foreman"))
    MemberFactory(role=role("sales"))

    with django_capture_on_commit_callbacks(execute=True):
        assert survey_invite(survey=survey) == 2
        assert survey_invite(survey=survey) == 0

    inbox = Delivery.objects.filter(kind=Kind.SURVEY, channel=Channel.INBOX)
    assert sorted(inbox.values_list("member_id", flat=True)) == sorted(m.pk for m in foremen)
    assert all(d.link == f"https://loyalty.example.com/surveys/{survey.pk}/" for d in inbox)


def test_a_draft_survey_cannot_invite():
    survey = SurveyFactory(status=SurveyStatus.DRAFT)
    MemberFactory()

    with pytest.raises(ApplicationError, match="Open the survey"):
        survey_invite(survey=survey)
    assert not Delivery.objects.exists()


# Results ---------------------------------------------------------------------------------------------------------


def test_nps_is_the_share_of_promoters_minus_the_share_of_detractors():
    # 3 promoters, 1 passive, 2 detractors of 6: 50 % - 33.3 % = 16.7 -> 17
    assert nps({10: 2, 9: 1, 8: 1, 6: 1, 0: 1}) == 17
    assert nps({10: 1}) == 100
    assert nps({3: 4}) == -100
    assert nps({}) is None


def test_results_count_choices_and_nps_by_role_partner_type_and_tier():
    survey, question = nps_survey()
    choice = QuestionFactory(survey=survey, kind=QuestionKind.SINGLE, choices=["Yes", "No"])
    gold = Tier.objects.create(program=survey.program, name="Gold", rank=1, threshold=1000)
    dealer = MemberFactory(role=role("sales"), partner__kind=PartnerKind.DEALER)
    PartnerTier.objects.create(
        program=survey.program,
        partner=dealer.partner,
        tier=gold,
        since=timezone.localdate(),
        held_until=timezone.localdate(),
    )
    installers = MemberFactory.create_batch(2, role=role("foreman"), partner__kind=PartnerKind.INSTALLER)
    survey_answer(survey=survey, member=dealer, answers={question.pk: 10, choice.pk: "Yes"})
    survey_answer(survey=survey, member=installers[0], answers={question.pk: 3, choice.pk: "No"})
    survey_answer(survey=survey, member=installers[1], answers={question.pk: 9, choice.pk: "Yes"})

    score, choices = survey_results(survey=survey)

    rows = {(group.dimension, group.label): (group.answered, group.nps) for group in score.groups}
    assert rows == {
        ("", "All respondents"): (3, 33),
        ("Role", "Foreman"): (2, 0),
        ("Role", "Sales rep"): (1, 100),
        ("Partner type", "Dealer"): (1, 100),
        ("Partner type", "Installer"): (2, 0),
        ("Tier", "Gold"): (1, 100),
    }
    counts = {(group.dimension, group.label): cells for group, cells in choices.rows()}
    assert counts[("", "All respondents")] == [2, 1]
    assert counts[("Role", "Foreman")] == [1, 1]


def test_the_results_page_and_csv_export_for_program_managers(pm_client):
    survey, question = nps_survey()
    text = QuestionFactory(survey=survey, kind=QuestionKind.TEXT)
    survey_answer(survey=survey, member=MemberFactory(), answers={question.pk: 8, text.pk: '=HYPERLINK("x")'})

    page = pm_client.get(reverse("admin:communications_survey_results", args=[survey.pk]))
    export = pm_client.get(reverse("admin:communications_survey_csv", args=[survey.pk]))

    assert page.status_code == 200
    assert "All respondents" in page.content.decode()
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["Response", "Submitted at", "Role", "Partner type", "Tier", "Question", "Answer"]
    assert sorted(row[6] for row in rows[1:]) == ['\'=HYPERLINK("x")', "8"]


def test_partner_staff_get_no_survey_results(partner_staff_client):
    survey, _question = nps_survey()

    response = partner_staff_client.get(reverse("admin:communications_survey_results", args=[survey.pk]))

    assert response.status_code == 302  # to the sign-in page
    assert "/login/" in response.url


def test_a_program_manager_writes_a_survey_with_its_questions_in_the_back_office(pm_client):
    program = ProgramFactory()
    data = {
        "program": program.pk, "title": "Installers 2027", "intro": "", "status": SurveyStatus.DRAFT,
        "roles": [role("foreman").pk], "partner_kinds": [PartnerKind.INSTALLER], "points_for_answer": 25,
        "questions-TOTAL_FORMS": 2, "questions-INITIAL_FORMS": 0,
        "questions-0-order": 1, "questions-0-kind": QuestionKind.NPS, "questions-0-text": "Recommend us?",
        "questions-0-choices": "", "questions-0-required": "on",
        "questions-1-order": 2, "questions-1-kind": QuestionKind.SINGLE, "questions-1-text": "Best line?",
        "questions-1-choices": "Softeners\nFilters\n", "questions-1-required": "on",
    }  # fmt: skip

    response = pm_client.post(reverse("admin:communications_survey_add"), data)

    assert response.status_code == 302
    survey = Survey.objects.get(title="Installers 2027")
    assert survey.partner_kinds == [PartnerKind.INSTALLER]
    assert list(survey.questions.values_list("kind", "choices")) == [
        (QuestionKind.NPS, []),
        (QuestionKind.SINGLE, ["Softeners", "Filters"]),
    ]
    assert pm_client.get(reverse("admin:communications_survey_change", args=[survey.pk])).status_code == 200


def test_a_choice_question_needs_two_choices(pm_client):
    data = {
        "program": ProgramFactory().pk, "title": "Bad", "intro": "", "status": SurveyStatus.DRAFT,
        "points_for_answer": 0, "questions-TOTAL_FORMS": 1, "questions-INITIAL_FORMS": 0,
        "questions-0-order": 1, "questions-0-kind": QuestionKind.SINGLE, "questions-0-text": "Only one?",
        "questions-0-choices": "Yes",
    }  # fmt: skip

    response = pm_client.post(reverse("admin:communications_survey_add"), data)

    assert response.status_code == 200
    assert "Offer at least two different choices." in response.content.decode()
    assert not Survey.objects.exists()


def test_the_link_of_an_old_invitation_to_a_closed_survey_says_it_has_closed_and_takes_no_answer(client):
    survey, question = nps_survey()
    invited, answered, stranger = MemberFactory(), MemberFactory(), MemberFactory()
    survey_invite(survey=survey)
    client.force_login(answered.user)
    client.post(answer_page(survey), {f"q{question.pk}": "8"})
    Delivery.objects.filter(member=stranger).delete()  # the stranger was never invited
    Survey.objects.filter(pk=survey.pk).update(status=SurveyStatus.CLOSED)

    client.force_login(invited.user)
    closed = client.get(answer_page(survey))
    posted = client.post(answer_page(survey), {f"q{question.pk}": "9"})
    client.force_login(answered.user)
    thanked = client.get(answer_page(survey))
    client.force_login(stranger.user)
    hidden = client.get(answer_page(survey))

    assert closed.status_code == posted.status_code == 200
    assert "This survey has closed; answers are no longer taken." in closed.content.decode()
    assert not Response.objects.filter(member=invited).exists()
    assert "You answered this survey on" in thanked.content.decode()
    assert hidden.status_code == 404
