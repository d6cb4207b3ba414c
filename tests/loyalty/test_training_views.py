"""The member site's Learn pages: the courses with progress and points, a module, its quiz, the result, the
certificate's PDF; who may see what; refusals shown as messages; and the pages' query counts."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import AttemptStatus, QuestionKind
from loyalty.models import PointsEntry, QuizAttempt
from loyalty.services import training as services
from partners.constants import PartnerKind
from tests.helpers import messages_of, visible
from tests.loyalty.factories import (
    CertificateFactory,
    CourseFactory,
    ModuleFactory,
    ProductLineFactory,
    ProgramFactory,
    QuizQuestionFactory,
)
from tests.loyalty.test_training_services import pass_module, quiz, right, training_rule, wrong
from tests.partners.factories import MemberFactory, ProgramManagerFactory, UserFactory, role

pytestmark = pytest.mark.django_db
LEARN = reverse("learn")


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints")


@pytest.fixture
def foreman():
    return MemberFactory(role=role("foreman"), user__full_name="Olga Foreman", partner__name="Blue Water Ltd")


@pytest.fixture
def signed_in(client, foreman):
    client.force_login(foreman.user)
    return client


def certifying(program, *, modules: int = 2, title: str = "Softener expert", line: str = "Softeners"):
    course = CourseFactory(
        program=program, title=title, product_line=ProductLineFactory(name=line), certification_months=12
    )
    return course, [quiz(course=course, title=f"Module {i + 1}", minutes=15) for i in range(modules)]


# Learn --------------------------------------------------------------------------------------------------------


def test_learn_lists_the_members_courses_with_progress_minutes_status_and_points(signed_in, program, foreman):
    training_rule(program, points=50)
    course, (first, second) = certifying(program)
    CourseFactory(program=program, title="For installers only").roles.set([role("engineer")])
    CourseFactory(program=program, title="For distributors only", partner_kinds=[PartnerKind.DISTRIBUTOR])
    CourseFactory(program=program, title="Draft course", is_published=False)
    pass_module(foreman, first)

    response = signed_in.get(LEARN)

    assert response.status_code == 200
    text = visible(response)
    assert "Softener expert" in text
    assert "Pass every module to be certified on Softeners for 12 months." in text
    assert "1 of 2 modules passed" in text
    assert "Module 1 15 minutes Passed · 100 % +50 AquaPoints earned" in text
    assert "Module 2 15 minutes Not started 50 AquaPoints for passing" in text
    for hidden in ("For installers only", "For distributors only", "Draft course"):
        assert hidden not in text
    assert 'aria-valuenow="1"' in response.content.decode()


def test_learn_lists_valid_certificates_with_their_download_link(signed_in, program, foreman):
    course, modules = certifying(program)
    for module in modules:
        pass_module(foreman, module)

    response = signed_in.get(LEARN)

    text = visible(response)
    last_day = services.add_months(timezone.localdate(), 12) - timedelta(days=1)
    assert f"Certified on Softeners Softener expert · valid until {last_day:%-d %b %Y}" in text
    assert reverse("certificate_download", args=[course.pk]) in response.content.decode()


def test_learn_without_courses_says_so(signed_in, program):
    response = signed_in.get(LEARN)

    assert "No course for you right now" in visible(response)


@pytest.mark.parametrize("who", ["program manager", "user without membership", "anonymous"])
def test_learn_is_for_partner_members_only(client, program, who):
    if who == "program manager":
        client.force_login(ProgramManagerFactory())
    elif who == "user without membership":
        client.force_login(UserFactory())

    response = client.get(LEARN)

    assert response.status_code == (302 if who == "anonymous" else 404)


@pytest.mark.parametrize(("courses", "modules"), [(1, 2), (4, 3)])
def test_learn_query_count_does_not_grow_with_courses_modules_and_attempts(
    signed_in, program, foreman, django_assert_max_num_queries, courses, modules
):
    training_rule(program, points=50)
    for number in range(courses):
        course, course_modules = certifying(program, modules=modules, line=f"Line {number}")
        pass_module(foreman, course_modules[0])
        CertificateFactory(member=foreman, course=course, program=program)
    signed_in.get(LEARN)  # the inbox bell's count is cached after the first page

    # 17: session, user, membership, program, the rules (6), courses, modules, attempts, points paid, tier,
    # certificates, balance in the navigation
    with django_assert_max_num_queries(17):
        response = signed_in.get(LEARN)

    assert response.status_code == 200
    assert len(response.context["courses"]) == courses


# A module -----------------------------------------------------------------------------------------------------


def test_module_page_shows_the_lesson_and_the_take_the_quiz_button(signed_in, program):
    module = quiz(
        course=CourseFactory(program=program),
        title="Resin care",
        body="First paragraph.\n\nSecond paragraph.",
        media_url="https://video.example/resin",
        attempts_allowed=3,
    )

    response = signed_in.get(reverse("module_detail", args=[module.pk]))

    html = response.content.decode()
    assert '<p class="text-break">First paragraph.</p>' in html
    assert '<p class="text-break">Second paragraph.</p>' in html
    assert 'href="https://video.example/resin"' in html
    assert "You pass from 80 % of right answers. 3 of 3 attempts left." in visible(response)
    assert f'action="{reverse("quiz_start", args=[module.pk])}"' in html
    assert "Take the quiz" in html


def test_a_module_of_a_course_for_other_roles_is_not_found(signed_in, program):
    course = CourseFactory(program=program)
    course.roles.set([role("engineer")])
    module = quiz(course=course)

    assert signed_in.get(reverse("module_detail", args=[module.pk])).status_code == 404
    assert signed_in.post(reverse("quiz_start", args=[module.pk])).status_code == 404
    assert QuizAttempt.objects.count() == 0


def test_take_the_quiz_starts_an_attempt_and_opens_it(signed_in, program, foreman):
    module = quiz(course=CourseFactory(program=program))

    response = signed_in.post(reverse("quiz_start", args=[module.pk]))

    attempt = QuizAttempt.objects.get()
    assert attempt.member == foreman
    assert response.url == reverse("quiz_take", args=[attempt.pk])


def test_take_the_quiz_refused_is_a_message_on_the_module_page(signed_in, program, foreman):
    module = quiz(course=CourseFactory(program=program), attempts_allowed=1)
    attempt = services.start_attempt(member=foreman, module=module)
    services.submit_attempt(member=foreman, attempt_id=attempt.pk, answers=wrong(attempt))

    response = signed_in.post(reverse("quiz_start", args=[module.pk]), follow=True)

    assert "You have used your one attempt at this quiz." in visible(response)
    assert QuizAttempt.objects.count() == 1


def test_starting_needs_a_post(signed_in, program):
    module = quiz(course=CourseFactory(program=program))

    assert signed_in.get(reverse("quiz_start", args=[module.pk])).status_code == 405
    assert QuizAttempt.objects.count() == 0


# The quiz -----------------------------------------------------------------------------------------------------


def test_the_quiz_shows_the_questions_and_answers_in_the_attempts_order(signed_in, program, foreman):
    module = ModuleFactory(course=CourseFactory(program=program))
    single = QuizQuestionFactory(module=module, text="Which resin?")
    several = QuizQuestionFactory(
        module=module, text="Which are salts?", kind=QuestionKind.MULTIPLE, answers=[("NaCl", True), ("KCl", True)]
    )
    attempt = services.start_attempt(member=foreman, module=module)

    response = signed_in.get(reverse("quiz_take", args=[attempt.pk]))

    html = response.content.decode()
    shown = [int(pk) for pk in re.findall(r'name="q(\d+)"', html)]
    assert list(dict.fromkeys(shown)) == attempt.question_order
    for question in (single, several):
        values = [int(v) for v in re.findall(rf'name="q{question.pk}" value="(\d+)"', html)]
        assert values == attempt.choice_order[str(question.pk)]
    assert html.count('type="radio"') == 3 and html.count('type="checkbox"') == 2
    assert "Answer all 2 questions. You pass from 80 %." in visible(response)
    assert f"Answers are accepted until {timezone.localtime(attempt.deadline):%-d %b %Y, %H:%M}." in visible(response)


def answer_data(answers: dict[int, list[int]]) -> dict[str, list[int]]:
    return {f"q{question}": choices for question, choices in answers.items()}


def test_sending_right_answers_passes_and_shows_the_points_and_the_certificate(signed_in, program, foreman):
    training_rule(program, points=50)
    course, (only,) = certifying(program, modules=1)
    attempt = services.start_attempt(member=foreman, module=only)

    response = signed_in.post(reverse("quiz_take", args=[attempt.pk]), answer_data(right(attempt)))

    assert response.url == reverse("quiz_result", args=[attempt.pk])
    page = signed_in.get(response.url)
    text = visible(page)
    assert "100 % — passed! 2 of 2 answers right." in text
    assert "You earned 50 AquaPoints." in text
    assert "Training passed v1, module “Module 1”: 50 pts = 50" in text
    assert "You are certified!" in text
    assert reverse("certificate_download", args=[course.pk]) in page.content.decode()
    assert "Try again" not in text


def test_a_question_left_unanswered_is_shown_again_with_its_error(signed_in, program, foreman):
    module = quiz(course=CourseFactory(program=program))
    attempt = services.start_attempt(member=foreman, module=module)
    first = attempt.question_order[0]

    response = signed_in.post(reverse("quiz_take", args=[attempt.pk]), answer_data({first: right(attempt)[first]}))

    assert response.status_code == 400
    assert "Choose an answer." in visible(response)
    assert QuizAttempt.objects.get().status == AttemptStatus.STARTED


def test_a_failed_attempt_offers_to_try_again_without_giving_the_right_answers_away(signed_in, program, foreman):
    module = quiz(course=CourseFactory(program=program), questions=1, attempts_allowed=2)
    question = module.questions.get()
    question.explanation = "Resin swells in water."
    question.save()
    attempt = services.start_attempt(member=foreman, module=module)
    signed_in.post(reverse("quiz_take", args=[attempt.pk]), answer_data(wrong(attempt)))

    text = visible(signed_in.get(reverse("quiz_result", args=[attempt.pk])))

    assert "0 % — not passed 0 of 1 answers right; you pass from 80 %." in text
    assert "✗ Wrong Wrong (your answer) Resin swells in water." in text
    assert "(right answer)" not in text
    assert "Try again 1 attempt left." in text


def test_the_last_failed_attempt_shows_the_right_answers(signed_in, program, foreman):
    module = quiz(course=CourseFactory(program=program), questions=1, attempts_allowed=1)
    attempt = services.start_attempt(member=foreman, module=module)
    services.submit_attempt(member=foreman, attempt_id=attempt.pk, answers=wrong(attempt))

    text = visible(signed_in.get(reverse("quiz_result", args=[attempt.pk])))

    assert "Right (right answer)" in text
    assert "Try again" not in text


def test_another_members_attempt_is_not_found_and_stays_as_it_was(signed_in, program):
    colleague = MemberFactory()
    module = quiz(course=CourseFactory(program=program))
    training_rule(program)
    attempt = services.start_attempt(member=colleague, module=module)

    for response in (
        signed_in.get(reverse("quiz_take", args=[attempt.pk])),
        signed_in.post(reverse("quiz_take", args=[attempt.pk]), answer_data(right(attempt))),
        signed_in.get(reverse("quiz_result", args=[attempt.pk])),
    ):
        assert response.status_code == 404
    assert QuizAttempt.objects.get().status == AttemptStatus.STARTED
    assert PointsEntry.objects.count() == 0


def test_a_quiz_sent_again_goes_to_the_result_and_pays_nothing_more(signed_in, program, foreman):
    training_rule(program, points=50)
    module = quiz(course=CourseFactory(program=program))
    attempt = services.start_attempt(member=foreman, module=module)
    data = answer_data(right(attempt))
    signed_in.post(reverse("quiz_take", args=[attempt.pk]), data)

    response = signed_in.post(reverse("quiz_take", args=[attempt.pk]), data)

    assert response.url == reverse("quiz_result", args=[attempt.pk])
    (told,) = messages_of(response)
    assert told == "This quiz was already submitted; these answers did not count. Here is its result."
    assert PointsEntry.objects.count() == 1


def test_a_quiz_sent_after_its_deadline_is_refused_with_a_message(signed_in, program, foreman):
    training_rule(program)
    module = quiz(course=CourseFactory(program=program))
    attempt = services.start_attempt(member=foreman, module=module)
    data = answer_data(right(attempt))
    QuizAttempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(seconds=1))

    response = signed_in.post(reverse("quiz_take", args=[attempt.pk]), data, follow=True)

    assert response.redirect_chain[-1][0] == reverse("module_detail", args=[module.pk])
    assert "your answers were not counted" in visible(response)
    assert QuizAttempt.objects.get().status == AttemptStatus.STARTED
    assert PointsEntry.objects.count() == 0


# Certificates -------------------------------------------------------------------------------------------------


def test_the_certificate_downloads_as_a_pdf_attachment(signed_in, program, foreman):
    course, modules = certifying(program)
    for module in modules:
        pass_module(foreman, module)
    number = foreman.certificates.get().number

    response = signed_in.get(reverse("certificate_download", args=[course.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="certificate-{number}.pdf"'
    assert response.content.startswith(b"%PDF-") and b"(Olga Foreman)" in response.content


def test_the_certificate_of_a_course_not_passed_is_a_clear_message(signed_in, program, foreman):
    course, (first, _second) = certifying(program)
    pass_module(foreman, first)

    response = signed_in.get(reverse("certificate_download", args=[course.pk]))

    assert response.status_code == 404
    assert (
        "You have no certificate for “Softener expert” yet: pass every module of the course to get it "
        "(1 of 2 passed)." in visible(response)
    )


# Query counts -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("questions", [2, 12])
def test_module_quiz_and_result_pages_cost_a_fixed_number_of_queries(
    signed_in, program, foreman, django_assert_max_num_queries, questions
):
    training_rule(program, points=50)
    course, (module,) = certifying(program, modules=1)
    with_more = quiz(course=CourseFactory(program=program), questions=questions)
    attempt = services.start_attempt(member=foreman, module=with_more)
    passed = pass_module(foreman, module)
    signed_in.get(LEARN)
    pages = {
        reverse("module_detail", args=[with_more.pk]): 15,  # with the program's rules (6) for what it pays
        reverse("quiz_take", args=[attempt.pk]): 8,
        reverse("quiz_result", args=[passed.pk]): 12,
        reverse("certificate_download", args=[course.pk]): 5,
    }
    for page, bound in pages.items():
        with django_assert_max_num_queries(bound):
            assert signed_in.get(page).status_code == 200, page
