"""The back office of learn to earn: courses with targeting and certification, modules with their questions,
questions whose answers are checked on save, read-only attempts and certificates; pinned query counts."""

import pytest
from django.urls import reverse

from loyalty.constants import QuestionKind
from loyalty.models import Course, QuizChoice, QuizQuestion
from loyalty.services import training as services
from partners.constants import PartnerKind
from tests.loyalty.factories import (
    CertificateFactory,
    CourseFactory,
    ModuleFactory,
    ProductLineFactory,
    ProgramFactory,
    QuizQuestionFactory,
    with_quiz,
)
from tests.partners.factories import MemberFactory, role

pytestmark = pytest.mark.django_db

CHANGELIST_QUERIES = {"course": 8, "module": 8, "quizquestion": 7, "quizattempt": 7, "certificate": 8}


def url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:loyalty_{model}_{view}", args=args)


def make_rows(model: str, rows: int) -> None:
    program = ProgramFactory()
    if model == "course":
        for course in CourseFactory.create_batch(rows, program=program):
            ModuleFactory(course=course)
    elif model == "module":
        for module in ModuleFactory.create_batch(rows, course=CourseFactory(program=program)):
            with_quiz(module, 2)
    elif model == "quizquestion":
        QuizQuestionFactory.create_batch(rows, module=ModuleFactory(course=CourseFactory(program=program)))
    elif model == "quizattempt":
        module = with_quiz(ModuleFactory(course=CourseFactory(program=program)), 1)
        for member in MemberFactory.create_batch(rows):
            services.start_attempt(member=member, module=module)
    else:
        CertificateFactory.create_batch(
            rows, course=CourseFactory(program=program, product_line=ProductLineFactory(), certification_months=12)
        )


@pytest.mark.parametrize("rows", [3, 30])
@pytest.mark.parametrize("model", list(CHANGELIST_QUERIES))
def test_changelist_query_count_does_not_grow_with_rows(pm_client, django_assert_max_num_queries, model, rows):
    make_rows(model, rows)

    with django_assert_max_num_queries(CHANGELIST_QUERIES[model]):
        response = pm_client.get(url(model))

    assert response.status_code == 200
    assert response.context["cl"].result_count == rows


@pytest.mark.parametrize("size", [2, 10])
def test_change_pages_cost_a_fixed_number_of_queries(pm_client, django_assert_max_num_queries, size):
    course = CourseFactory(product_line=ProductLineFactory(), certification_months=12)
    module = with_quiz(ModuleFactory(course=course), size)
    ModuleFactory.create_batch(size, course=course)
    question = module.questions.first()
    member = MemberFactory()
    attempt = services.start_attempt(member=member, module=module)
    certificate = CertificateFactory(member=member, course=course, program=course.program)
    pages = {
        url("course", "change", course.pk): 10,
        url("module", "change", module.pk): 7,
        url("quizquestion", "change", question.pk): 7,
        url("quizattempt", "change", attempt.pk): 5,
        url("certificate", "change", certificate.pk): 5,
        url("course", "add"): 6,
    }
    for page, bound in pages.items():
        with django_assert_max_num_queries(bound):
            assert pm_client.get(page).status_code == 200, page


def test_the_modules_list_counts_questions_and_those_not_asked_yet(pm_client):
    module = with_quiz(ModuleFactory(title="Resin care"), 2)
    QuizQuestionFactory(module=module, answers=[("Only one", True)])

    response = pm_client.get(url("module"))

    row = response.context["cl"].result_list[0]
    assert (row.question_count, row.question_count - row.ready_count) == (3, 1)


def test_a_course_is_targeted_by_ticked_roles_and_partner_types(pm_client):
    program, line = ProgramFactory(), ProductLineFactory()
    data = {
        "program": program.pk,
        "title": "Softener expert",
        "summary": "",
        "product_line": line.pk,
        "position": 0,
        "is_published": "on",
        "roles": [role("engineer").pk, role("foreman").pk],
        "partner_kinds": [PartnerKind.INSTALLER, PartnerKind.DEALER],
        "certification_months": 24,
        "closes_on": "",
        "modules-TOTAL_FORMS": "0",
        "modules-INITIAL_FORMS": "0",
        "modules-MIN_NUM_FORMS": "0",
        "modules-MAX_NUM_FORMS": "1000",
    }

    response = pm_client.post(url("course", "add"), data)

    assert response.status_code == 302
    course = Course.objects.get()
    assert sorted(course.partner_kinds) == sorted([PartnerKind.INSTALLER, PartnerKind.DEALER])
    assert {r.code for r in course.roles.all()} == {"engineer", "foreman"}
    assert course.certification_months == 24


def test_a_course_that_certifies_needs_its_product_line(pm_client):
    data = {
        "program": ProgramFactory().pk,
        "title": "No line",
        "position": 0,
        "certification_months": 12,
        "modules-TOTAL_FORMS": "0",
        "modules-INITIAL_FORMS": "0",
    }

    response = pm_client.post(url("course", "add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["product_line"] == [
        "A course that certifies needs the product line it certifies on."
    ]
    assert Course.objects.count() == 0


def question_data(module, kind: str, answers: list[tuple[str, bool]]) -> dict:
    data = {
        "module": module.pk,
        "text": "Which resin?",
        "kind": kind,
        "explanation": "",
        "position": 0,
        "choices-TOTAL_FORMS": str(len(answers)),
        "choices-INITIAL_FORMS": "0",
        "choices-MIN_NUM_FORMS": "0",
        "choices-MAX_NUM_FORMS": "1000",
    }
    for i, (text, correct) in enumerate(answers):
        data[f"choices-{i}-text"] = text
        data[f"choices-{i}-position"] = i
        if correct:
            data[f"choices-{i}-is_correct"] = "on"
    return data


@pytest.mark.parametrize(
    ("kind", "answers", "error"),
    [
        (QuestionKind.SINGLE, [("Cation", True)], "A question needs at least two answers."),
        (
            QuestionKind.MULTIPLE,
            [("Cation", False), ("Anion", False)],
            "Tick the right answer: a question needs at least one.",
        ),
        (
            QuestionKind.SINGLE,
            [("Cation", True), ("Anion", True), ("Neither", False)],
            "A one-answer question has exactly one right answer (2 are ticked): tick one, or make it a "
            "several-answers question.",
        ),
    ],
)
def test_a_question_with_answers_a_quiz_cannot_ask_is_refused(pm_client, kind, answers, error):
    module = ModuleFactory()

    response = pm_client.post(url("quizquestion", "add"), question_data(module, kind, answers))

    assert response.status_code == 200
    assert [error] == [
        str(e) for formset in response.context["inline_admin_formsets"] for e in formset.formset.non_form_errors()
    ]
    assert QuizQuestion.objects.count() == 0 and QuizChoice.objects.count() == 0


def test_a_question_with_several_right_answers_is_saved(pm_client):
    module = ModuleFactory()

    response = pm_client.post(
        url("quizquestion", "add"),
        question_data(module, QuestionKind.MULTIPLE, [("Cation", True), ("Anion", True), ("Neither", False)]),
    )

    assert response.status_code == 302
    question = QuizQuestion.objects.get()
    assert list(question.choices.order_by("position").values_list("text", "is_correct")) == [
        ("Cation", True),
        ("Anion", True),
        ("Neither", False),
    ]


def test_attempts_and_certificates_are_read_only_and_found_by_e_mail_or_number(pm_client):
    module = with_quiz(ModuleFactory(), 1)
    member = MemberFactory(user__email="olga@blue.example")
    services.start_attempt(member=member, module=module)
    services.start_attempt(member=MemberFactory(), module=module)
    certificate = CertificateFactory(member=member, number="CERT-2026-ABCDEF")
    CertificateFactory()

    assert pm_client.get(url("quizattempt", "add")).status_code == 403
    assert pm_client.get(url("certificate", "add")).status_code == 403
    attempts = pm_client.get(url("quizattempt"), {"q": "OLGA@blue.example"}).context["cl"].result_list
    assert [a.member_id for a in attempts] == [member.pk]
    for term in ("cert-2026-abcdef", "olga@blue.example"):
        found = pm_client.get(url("certificate"), {"q": term}).context["cl"].result_list
        assert [c.pk for c in found] == [certificate.pk]


def test_the_back_office_is_for_program_managers(client):
    member = MemberFactory()
    client.force_login(member.user)

    assert client.get(url("course")).status_code == 302
