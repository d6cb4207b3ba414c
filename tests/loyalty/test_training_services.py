"""Learn to earn's services: starting and submitting a quiz, the "training passed" event paid once through the rule
engine (caps, budgets, also under concurrent submissions), every refusal changing nothing, targeting, attempts
allowed, certificates and their PDF."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from communications.constants import Kind
from communications.models import Delivery
from loyalty.common.errors import ApplicationError
from loyalty.constants import ATTEMPT_HOURS, AttemptStatus, EntrySource, Formula, QuestionKind, RuleEvent
from loyalty.error_codes import ErrorCode
from loyalty.models import Certificate, IncentiveRule, PointsEntry, QuizAttempt
from loyalty.services import training as services
from partners.constants import MemberStatus, PartnerKind
from tests.loyalty.factories import (
    CourseFactory,
    ModuleFactory,
    ProductLineFactory,
    ProgramFactory,
    QuizQuestionFactory,
    RuleFactory,
    with_quiz,
)
from tests.partners.factories import MemberFactory, role

pytestmark = pytest.mark.django_db


def training_rule(program, points: int = 50, **fields):
    """The program's rule for passing a module: a fixed number of points, no tier multiplier."""
    values = {
        "event": RuleEvent.TRAINING_PASSED,
        "name": "Training passed",
        "formula": Formula.FIXED,
        "value": Decimal(points),
        "apply_tier_multiplier": False,
    }
    return RuleFactory(program=program, **{**values, **fields})


def quiz(course=None, *, questions: int = 2, **fields):
    """A module of `course` (a new published course) whose quiz has `questions` single-choice questions."""
    module = ModuleFactory(course=course or CourseFactory(), **fields)
    return with_quiz(module, questions)


def right(attempt) -> dict[int, list[int]]:
    """Every question of the attempt answered right."""
    return {
        question.pk: [choice.pk for choice in question.choices.all() if choice.is_correct]
        for question in attempt.module.questions.all()
    }


def wrong(attempt) -> dict[int, list[int]]:
    return {
        question.pk: [next(choice.pk for choice in question.choices.all() if not choice.is_correct)]
        for question in attempt.module.questions.all()
    }


def earned(member) -> list[tuple[int, str, str]]:
    return list(
        PointsEntry.objects.filter(account__member=member)
        .order_by("pk")
        .values_list("available_delta", "source_id", "explanation")
    )


def pass_module(member, module):
    attempt = services.start_attempt(member=member, module=module)
    return services.submit_attempt(member=member, attempt_id=attempt.pk, answers=right(attempt))


# Starting ---------------------------------------------------------------------------------------------------------


def test_starting_shuffles_every_question_and_answer_into_the_attempt_with_a_24_hour_deadline():
    module = quiz(questions=4)
    member = MemberFactory()
    before = timezone.now()

    attempt = services.start_attempt(member=member, module=module)

    questions = list(module.questions.order_by("pk"))
    assert sorted(attempt.question_order) == [q.pk for q in questions]
    assert {int(k): sorted(v) for k, v in attempt.choice_order.items()} == {
        q.pk: sorted(q.choices.values_list("pk", flat=True)) for q in questions
    }
    assert (attempt.number, attempt.status, attempt.total) == (1, AttemptStatus.STARTED, 4)
    assert (
        before + timedelta(hours=ATTEMPT_HOURS) <= attempt.deadline <= timezone.now() + timedelta(hours=ATTEMPT_HOURS)
    )


def test_starting_again_gives_back_the_open_attempt():
    module = quiz()
    member = MemberFactory()

    first = services.start_attempt(member=member, module=module)
    again = services.start_attempt(member=member, module=module)

    assert again.pk == first.pk
    assert QuizAttempt.objects.count() == 1


def test_the_deadline_is_the_end_of_the_courses_closing_day_when_that_comes_first():
    today = timezone.localdate()
    module = quiz(course=CourseFactory(closes_on=today))

    attempt = services.start_attempt(member=MemberFactory(), module=module)

    assert timezone.localtime(attempt.deadline) == timezone.make_aware(
        timezone.datetime.combine(today + timedelta(days=1), timezone.datetime.min.time())
    )


@pytest.mark.parametrize(
    ("course_fields", "code"),
    [
        ({"is_published": False}, ErrorCode.COURSE_NOT_OPEN),
        ({"partner_kinds": [PartnerKind.DISTRIBUTOR]}, ErrorCode.COURSE_NOT_OPEN),
        ({"closes_on": timezone.localdate() - timedelta(days=1)}, ErrorCode.COURSE_CLOSED),
    ],
)
def test_a_course_not_open_to_the_member_is_refused_and_nothing_is_started(course_fields, code):
    module = quiz(course=CourseFactory(**course_fields))

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=MemberFactory(partner__kind=PartnerKind.DEALER), module=module)

    assert refused.value.code == code
    assert QuizAttempt.objects.count() == 0


def test_a_course_for_other_roles_is_refused_and_one_for_the_members_role_is_open():
    course = CourseFactory()
    course.roles.set([role("engineer"), role("foreman")])
    module = quiz(course=course)

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=MemberFactory(role=role("sales")), module=module)
    attempt = services.start_attempt(member=MemberFactory(role=role("foreman")), module=module)

    assert refused.value.code == ErrorCode.COURSE_NOT_OPEN
    assert refused.value.message == "This course is not open to you."
    assert QuizAttempt.objects.get().pk == attempt.pk


def test_a_member_who_is_not_active_cannot_start():
    module = quiz()
    member = MemberFactory(status=MemberStatus.PENDING_APPROVAL)

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=member, module=module)

    assert refused.value.code == ErrorCode.MEMBER_INACTIVE
    assert QuizAttempt.objects.count() == 0


def test_a_quiz_without_a_question_ready_to_ask_is_refused():
    module = ModuleFactory()
    QuizQuestionFactory(module=module, answers=[("Only one answer", True)])
    QuizQuestionFactory(module=module, answers=[("No right answer", False), ("Nor this", False)])

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=MemberFactory(), module=module)

    assert refused.value.code == ErrorCode.QUIZ_EMPTY
    assert QuizAttempt.objects.count() == 0


def test_attempts_allowed_are_counted_and_the_next_one_is_refused():
    module = quiz(attempts_allowed=2)
    member = MemberFactory()
    for number in (1, 2):
        attempt = services.start_attempt(member=member, module=module)
        assert attempt.number == number
        services.submit_attempt(member=member, attempt_id=attempt.pk, answers=wrong(attempt))

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=member, module=module)

    assert refused.value.code == ErrorCode.ATTEMPTS_USED_UP
    assert refused.value.message == "You have used all 2 attempts at this quiz."
    assert QuizAttempt.objects.count() == 2


def test_an_attempt_left_open_past_its_deadline_counts_as_used():
    module = quiz(attempts_allowed=1)
    member = MemberFactory()
    attempt = services.start_attempt(member=member, module=module)
    QuizAttempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(minutes=1))

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=member, module=module)

    assert refused.value.code == ErrorCode.ATTEMPTS_USED_UP


def test_a_passed_module_cannot_be_started_again():
    module = quiz()
    member = MemberFactory()
    pass_module(member, module)

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=member, module=module)

    assert refused.value.code == ErrorCode.MODULE_PASSED
    assert QuizAttempt.objects.count() == 1


# Scoring and paying -----------------------------------------------------------------------------------------------


def test_a_pass_pays_the_training_rule_once_with_the_ledgers_explanation():
    module = quiz(title="Softeners 101")
    training_rule(module.course.program, points=50)
    member = MemberFactory()

    attempt = pass_module(member, module)

    assert (attempt.status, attempt.correct, attempt.total, attempt.percent) == (AttemptStatus.PASSED, 2, 2, 100)
    entry = PointsEntry.objects.get(account__member=member)
    assert (entry.available_delta, entry.source_type, entry.source_id) == (
        50,
        EntrySource.TRAINING,
        f"training:{module.pk}:{member.pk}",
    )
    assert entry.explanation == "Training passed v1, module “Softeners 101”: 50 pts = 50"


def test_a_fail_pays_nothing_and_a_later_pass_pays_once():
    module = quiz(questions=3)
    training_rule(module.course.program, points=40)
    member = MemberFactory()
    first = services.start_attempt(member=member, module=module)

    failed = services.submit_attempt(member=member, attempt_id=first.pk, answers=wrong(first))
    assert (failed.status, failed.percent) == (AttemptStatus.FAILED, 0)
    assert earned(member) == []

    pass_module(member, module)
    assert [points for points, _source, _why in earned(member)] == [40]


def test_the_score_is_rounded_half_up_and_passes_from_the_pass_mark():
    module = quiz(questions=3, pass_percent=67)
    member = MemberFactory()
    attempt = services.start_attempt(member=member, module=module)
    answers = right(attempt)
    first_question = attempt.question_order[0]
    answers[first_question] = wrong(attempt)[first_question]

    submitted = services.submit_attempt(member=member, attempt_id=attempt.pk, answers=answers)

    assert (submitted.correct, submitted.percent, submitted.status) == (2, 67, AttemptStatus.PASSED)


def test_a_multiple_choice_question_is_right_only_with_exactly_its_right_answers():
    module = ModuleFactory(pass_percent=100)
    question = QuizQuestionFactory(
        module=module, kind=QuestionKind.MULTIPLE, answers=[("A", True), ("B", True), ("C", False)]
    )
    a, b, c = question.choices.order_by("position")
    member = MemberFactory()
    attempt = services.start_attempt(member=member, module=module)

    submitted = services.submit_attempt(member=member, attempt_id=attempt.pk, answers={question.pk: [a.pk]})
    assert (submitted.correct, submitted.status) == (0, AttemptStatus.FAILED)

    again = services.start_attempt(member=member, module=module)
    submitted = services.submit_attempt(member=member, attempt_id=again.pk, answers={question.pk: [b.pk, a.pk]})
    assert (submitted.correct, submitted.status) == (1, AttemptStatus.PASSED)
    assert submitted.answers == {str(question.pk): sorted([a.pk, b.pk])}


def test_an_unanswered_question_is_wrong():
    module = quiz(questions=2, pass_percent=50)
    member = MemberFactory()
    attempt = services.start_attempt(member=member, module=module)
    only_first = {attempt.question_order[0]: right(attempt)[attempt.question_order[0]]}

    submitted = services.submit_attempt(member=member, attempt_id=attempt.pk, answers=only_first)

    assert (submitted.correct, submitted.total, submitted.percent) == (1, 2, 50)


def test_the_rules_cap_is_respected():
    program = ProgramFactory()
    training_rule(program, points=50, cap_points=80)
    course = CourseFactory(program=program)
    member = MemberFactory()

    for module in (quiz(course=course), quiz(course=course), quiz(course=course)):
        pass_module(member, module)

    assert [points for points, _source, _why in earned(member)] == [50, 30]
    assert "limited to 30 by the rule's cap or budget" in earned(member)[1][2]


def test_the_rules_budget_is_respected():
    program = ProgramFactory()
    rule = training_rule(program, points=50, budget_points=70)
    module = quiz(course=CourseFactory(program=program))
    first, second, third = MemberFactory(), MemberFactory(), MemberFactory()

    for member in (first, second, third):
        pass_module(member, module)

    assert [sum(p for p, _s, _w in earned(m)) for m in (first, second, third)] == [50, 20, 0]
    assert IncentiveRule.objects.get(pk=rule.pk).budget_used == 70


# Refusals of a submission -----------------------------------------------------------------------------------------


def started(module=None, member=None):
    module = module or quiz()
    training_rule(module.course.program)
    member = member or MemberFactory()
    return member, services.start_attempt(member=member, module=module)


def assert_untouched(attempt) -> None:
    fresh = QuizAttempt.objects.get(pk=attempt.pk)
    assert (fresh.status, fresh.submitted_at, fresh.percent, fresh.answers) == (AttemptStatus.STARTED, None, None, {})
    assert PointsEntry.objects.count() == 0


def test_another_members_attempt_is_refused_as_if_there_were_none():
    member, attempt = started()
    other = MemberFactory(partner=member.partner)

    with pytest.raises(ApplicationError) as refused:
        services.submit_attempt(member=other, attempt_id=attempt.pk, answers=right(attempt))

    assert (refused.value.code, refused.value.message) == (
        ErrorCode.ATTEMPT_NOT_FOUND,
        "There is no such quiz attempt.",
    )
    assert_untouched(attempt)


def test_a_second_submission_is_refused_and_pays_nothing_more():
    member, attempt = started()
    services.submit_attempt(member=member, attempt_id=attempt.pk, answers=right(attempt))

    with pytest.raises(ApplicationError) as refused:
        services.submit_attempt(member=member, attempt_id=attempt.pk, answers=wrong(attempt))

    assert refused.value.code == ErrorCode.ATTEMPT_SUBMITTED
    assert "(score 100 %); it cannot be submitted again." in refused.value.message
    fresh = QuizAttempt.objects.get(pk=attempt.pk)
    assert (fresh.status, fresh.percent) == (AttemptStatus.PASSED, 100)
    assert len(earned(member)) == 1


def test_a_submission_after_the_deadline_is_refused():
    member, attempt = started()
    QuizAttempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(seconds=1))

    with pytest.raises(ApplicationError) as refused:
        services.submit_attempt(member=member, attempt_id=attempt.pk, answers=right(attempt))

    assert refused.value.code == ErrorCode.ATTEMPT_EXPIRED
    assert "your answers were not counted" in refused.value.message
    assert_untouched(attempt)


@pytest.mark.parametrize("bad", ["question of another module", "answer of another question", "not a number"])
def test_answers_the_attempt_did_not_ask_are_refused(bad):
    member, attempt = started()
    other = with_quiz(ModuleFactory(), 1).questions.get()
    answers = right(attempt)
    first = attempt.question_order[0]
    if bad == "question of another module":
        answers[other.pk] = [other.choices.first().pk]
    elif bad == "answer of another question":
        answers[first] = [other.choices.first().pk]
    else:
        answers[first] = ["x"]

    with pytest.raises(ApplicationError) as refused:
        services.submit_attempt(member=member, attempt_id=attempt.pk, answers=answers)

    assert refused.value.code == ErrorCode.ANSWER_UNKNOWN
    assert_untouched(attempt)


def test_several_answers_to_a_single_choice_question_are_refused():
    member, attempt = started()
    first = attempt.question_order[0]
    answers = {first: attempt.choice_order[str(first)][:2]}

    with pytest.raises(ApplicationError) as refused:
        services.submit_attempt(member=member, attempt_id=attempt.pk, answers=answers)

    assert refused.value.code == ErrorCode.SEVERAL_ANSWERS
    assert_untouched(attempt)


@pytest.mark.django_db(transaction=True)
def test_the_same_attempt_submitted_twice_at_once_passes_and_pays_once():
    module = quiz()
    training_rule(module.course.program, points=50)
    member = MemberFactory()
    attempt = services.start_attempt(member=member, module=module)
    answers = right(attempt)
    barrier, outcomes, lock = threading.Barrier(2), [], threading.Lock()

    def submit():
        try:
            barrier.wait()
            services.submit_attempt(member=member, attempt_id=attempt.pk, answers=answers)
            outcome = "passed"
        except ApplicationError as exc:
            outcome = exc.code
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == sorted(["passed", ErrorCode.ATTEMPT_SUBMITTED])
    assert [points for points, _source, _why in earned(member)] == [50]
    assert QuizAttempt.objects.filter(status=AttemptStatus.PASSED).count() == 1


# Certificates -----------------------------------------------------------------------------------------------------


def certifying_course(months: int = 12, modules: int = 2):
    line = ProductLineFactory(name="Softeners")
    course = CourseFactory(title="Softener expert", product_line=line, certification_months=months)
    return course, [quiz(course=course) for _ in range(modules)]


@pytest.mark.django_db(transaction=True)
def test_the_last_two_modules_passed_at_once_issue_one_certificate():
    course, modules = certifying_course(months=12)
    member = MemberFactory()
    attempts = [services.start_attempt(member=member, module=module) for module in modules]
    barrier, failures = threading.Barrier(2), []

    def submit(attempt):
        try:
            barrier.wait()
            services.submit_attempt(member=member, attempt_id=attempt.pk, answers=right(attempt))
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(attempt,)) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert QuizAttempt.objects.filter(member=member, status=AttemptStatus.PASSED).count() == 2
    assert Certificate.objects.filter(member=member, course=course).count() == 1


def test_a_certificate_is_issued_when_every_module_is_passed_and_not_before(django_capture_on_commit_callbacks):
    course, (first, second) = certifying_course(months=12)
    member = MemberFactory()

    pass_module(member, first)
    assert Certificate.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        pass_module(member, second)

    certificate = Certificate.objects.get()
    today = timezone.localdate()
    assert (certificate.member, certificate.course, certificate.product_line.name) == (member, course, "Softeners")
    assert certificate.issued_on == today
    assert certificate.expires_on == services.add_months(today, 12)
    assert certificate.number.startswith(f"CERT-{today.year}-") and len(certificate.number) == 16
    notice = Delivery.objects.get(kind=Kind.CERTIFICATE_ISSUED, channel="inbox")
    assert notice.member == member and notice.source_key == f"certificate:{certificate.pk}"
    assert "You are certified on Softeners" in notice.subject


def test_a_course_without_certification_gives_no_certificate():
    course = CourseFactory()
    member = MemberFactory()

    pass_module(member, quiz(course=course))

    assert Certificate.objects.count() == 0


def test_a_module_added_later_pays_but_gives_no_second_certificate_while_the_first_is_valid():
    course, (first,) = certifying_course(months=12, modules=1)
    training_rule(course.program, points=50)
    member = MemberFactory()
    pass_module(member, first)
    refresher = quiz(course=course)

    passed = pass_module(member, refresher)

    assert (passed.status, passed.round) == (AttemptStatus.PASSED, 1)
    assert [points for points, _source, _why in earned(member)] == [50, 50]
    assert Certificate.objects.filter(member=member).count() == 1


def test_a_module_added_later_alone_does_not_renew_an_expiring_certificate():
    """Renewing takes every module of the course again (tests/loyalty/test_training_renewal.py), the new one too."""
    course, (first,) = certifying_course(months=12, modules=1)
    member = MemberFactory()
    pass_module(member, first)
    Certificate.objects.filter(member=member).update(
        issued_on=timezone.localdate() - timedelta(days=350), expires_on=timezone.localdate() + timedelta(days=15)
    )
    refresher = quiz(course=course)

    assert pass_module(member, refresher).round == 2
    assert Certificate.objects.filter(member=member).count() == 1

    pass_module(member, first)
    assert Certificate.objects.filter(member=member).count() == 2


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [("2026-01-31", 1, "2026-02-28"), ("2024-01-31", 1, "2024-02-29"), ("2026-11-15", 3, "2027-02-15")],
)
def test_months_are_added_calendar_wise(day, months, expected):
    from datetime import date

    assert services.add_months(date.fromisoformat(day), months) == date.fromisoformat(expected)


def test_the_certificate_pdf_is_a_pdf_with_the_members_name_and_number():
    course, modules = certifying_course()
    member = MemberFactory(user__full_name="Olga Foreman", partner__name="Blue Water Ltd")
    for module in modules:
        pass_module(member, module)

    certificate = services.certificate_to_download(member=member, course_id=course.pk)
    pdf = services.certificate_pdf(certificate)

    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert b"(Olga Foreman)" in pdf and b"(Blue Water Ltd)" in pdf
    assert certificate.number.encode() in pdf


def test_a_certificate_of_a_course_not_passed_is_refused_with_how_far_the_member_is():
    course, (first, _second) = certifying_course()
    member = MemberFactory()
    pass_module(member, first)

    with pytest.raises(ApplicationError) as refused:
        services.certificate_to_download(member=member, course_id=course.pk)

    assert refused.value.code == ErrorCode.CERTIFICATE_NOT_EARNED
    assert refused.value.message == (
        "You have no certificate for “Softener expert” yet: pass every module of the course to get it (1 of 2 passed)."
    )


def test_another_members_certificate_is_not_given():
    course, modules = certifying_course()
    holder = MemberFactory()
    for module in modules:
        pass_module(holder, module)

    with pytest.raises(ApplicationError) as refused:
        services.certificate_to_download(member=MemberFactory(partner=holder.partner), course_id=course.pk)

    assert "(0 of 2 passed)" in refused.value.message
