"""Re-certification by re-taking a course (loyalty.services.training, "Certificates and renewal by re-taking"): renewal
opens CERTIFICATE_NOTICE_DAYS before a certificate's last valid day and stays open after it expired; every module is
taken again in the new round and pays nothing again; the round's last pass issues the new certificate, counted from
the old one's end while that is valid; the Learn, module and result pages say so."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from communications.constants import Kind
from communications.models import Delivery
from loyalty.common.errors import ApplicationError
from loyalty.constants import CERTIFICATE_NOTICE_DAYS, AttemptStatus, GoalMetric
from loyalty.error_codes import ErrorCode
from loyalty.models import Certificate, ChallengeEntry, PointsEntry, QuizAttempt
from loyalty.selectors.training import Certification
from loyalty.services import training as services
from tests.loyalty.factories import (
    ChallengeFactory,
    ChallengeGoalFactory,
    CourseFactory,
    ProductLineFactory,
    ProgramFactory,
)
from tests.loyalty.test_training_services import earned, pass_module, quiz, right, training_rule, wrong
from tests.loyalty.test_training_views import visible
from tests.partners.factories import MemberFactory, role

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


def certifying_course(program=None, *, modules: int = 2, months: int = 12, **fields):
    course = CourseFactory(
        program=program or ProgramFactory(currency_name="AquaPoints"),
        title="Softener expert",
        product_line=ProductLineFactory(name="Softeners"),
        certification_months=months,
        **fields,
    )
    return course, [quiz(course=course, title=f"Module {n + 1}") for n in range(modules)]


def certified(member, modules) -> Certificate:
    """`member` passes every module (round 1) and holds the certificate."""
    for module in modules:
        pass_module(member, module)
    return Certificate.objects.get(member=member, course=modules[0].course)


def last_valid_in(certificate: Certificate, days: int) -> Certificate:
    """Move the certificate (valid for a year) so that its last valid day is `days` from today (negative: expired)."""
    certificate.expires_on = TODAY() + timedelta(days=days + 1)
    certificate.issued_on = certificate.expires_on - timedelta(days=365)
    certificate.save(update_fields=["issued_on", "expires_on"])
    return certificate


def snapshot() -> tuple:
    return (
        list(QuizAttempt.objects.order_by("pk").values_list("pk", "status", "round")),
        list(PointsEntry.objects.order_by("pk").values_list("pk", "available_delta")),
        list(Certificate.objects.order_by("pk").values_list("pk", "issued_on", "expires_on")),
    )


# When renewal is open ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_left", "is_open"),
    [(CERTIFICATE_NOTICE_DAYS + 1, False), (CERTIFICATE_NOTICE_DAYS, True), (0, True), (-1, True), (-400, True)],
)
def test_renewal_opens_on_the_day_the_expiry_notice_is_sent_and_stays_open_after_expiry(days_left, is_open):
    course, modules = certifying_course()
    member = MemberFactory()
    last_valid_in(certified(member, modules), days_left)

    if is_open:
        attempt = services.start_attempt(member=member, module=modules[0])
        assert (attempt.round, attempt.number, attempt.status) == (2, 2, AttemptStatus.STARTED)
    else:
        with pytest.raises(ApplicationError) as refused:
            services.start_attempt(member=member, module=modules[0])
        assert refused.value.code == ErrorCode.MODULE_PASSED
        assert QuizAttempt.objects.filter(member=member).count() == 2


def test_a_member_with_a_certificate_valid_beyond_the_window_cannot_retake_and_is_told_from_when():
    course, modules = certifying_course()
    member = MemberFactory()
    certificate = last_valid_in(certified(member, modules), 100)
    before = snapshot()

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=member, module=modules[1])

    last_day = certificate.expires_on - timedelta(days=1)
    opens = last_day - timedelta(days=CERTIFICATE_NOTICE_DAYS)
    assert refused.value.code == ErrorCode.MODULE_PASSED
    assert refused.value.message == (
        f"You have passed this module already, and your certificate is valid until {last_day:%-d %b %Y}. You can "
        f"take the course again to renew it from {opens:%-d %b %Y}."
    )
    assert snapshot() == before


def test_a_course_without_certification_is_never_taken_again():
    module = quiz()
    member = MemberFactory()
    pass_module(member, module)

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=member, module=module)

    assert (refused.value.code, refused.value.message) == (
        ErrorCode.MODULE_PASSED,
        "You have passed this module already.",
    )
    assert QuizAttempt.objects.count() == 1


def test_a_one_month_certificate_is_not_renewable_on_the_day_it_was_issued():
    course, (only,) = certifying_course(modules=1, months=1)
    member = MemberFactory()
    pass_module(member, only)  # valid for about 30 days: within the notice window from the start

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=member, module=only)

    assert refused.value.code == ErrorCode.MODULE_PASSED
    assert Certificate.objects.count() == 1


def test_the_current_round_follows_the_certificates_held():
    today = TODAY()
    valid = Certification(today=today, certifies=True, held=1, expires_on=today + timedelta(days=200), issued_on=today)
    expiring = Certification(
        today=today, certifies=True, held=2, expires_on=today + timedelta(days=10), issued_on=today - timedelta(days=9)
    )

    assert Certification(today=today, certifies=True).round == 1
    assert (valid.round, valid.renewal_open, valid.renewal_opens_on) == (1, False, today + timedelta(days=169))
    assert (expiring.round, expiring.renewal_open, expiring.is_expired) == (3, True, False)
    assert Certification(today=today, certifies=False, held=3, expires_on=today, issued_on=today).round == 1


# Re-taking ----------------------------------------------------------------------------------------------------------


def test_a_renewal_pass_pays_nothing_even_under_a_rule_published_since():
    course, modules = certifying_course()
    training_rule(course.program, points=50)
    member = MemberFactory()
    last_valid_in(certified(member, modules), 10)
    training_rule(course.program, points=30, code="training-bonus", name="Training bonus")
    paid_before = earned(member)

    renewed = pass_module(member, modules[0])

    assert (renewed.status, renewed.round, renewed.number) == (AttemptStatus.PASSED, 2, 2)
    assert earned(member) == paid_before
    assert [points for points, _source, _why in paid_before] == [50, 50]


def test_a_renewal_pass_counts_for_no_challenge():
    course, modules = certifying_course()
    member = MemberFactory()
    last_valid_in(certified(member, modules), 10)
    goal = ChallengeGoalFactory(
        challenge=ChallengeFactory(program=course.program), metric=GoalMetric.MODULES_PASSED, target=Decimal(5)
    )

    pass_module(member, modules[0])

    assert not ChallengeEntry.objects.filter(challenge=goal.challenge).exists()


def test_a_module_never_passed_before_pays_when_first_passed_in_a_renewal_round():
    course, modules = certifying_course()
    training_rule(course.program, points=50)
    member = MemberFactory()
    last_valid_in(certified(member, modules), 10)
    refresher = quiz(course=course, title="What is new")

    pass_module(member, refresher)

    assert [points for points, _source, _why in earned(member)] == [50, 50, 50]


def test_attempts_allowed_count_afresh_in_a_renewal_round():
    course, (only,) = certifying_course(modules=1)
    only.attempts_allowed = 1
    only.save(update_fields=["attempts_allowed"])
    member = MemberFactory()
    last_valid_in(certified(member, [only]), -5)

    attempt = services.start_attempt(member=member, module=only)
    services.submit_attempt(member=member, attempt_id=attempt.pk, answers=wrong(attempt))
    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=member, module=only)

    assert (attempt.round, attempt.number) == (2, 2)
    assert refused.value.code == ErrorCode.ATTEMPTS_USED_UP
    assert list(QuizAttempt.objects.order_by("number").values_list("round", "status")) == [
        (1, AttemptStatus.PASSED),
        (2, AttemptStatus.FAILED),
    ]


def test_an_attempt_started_before_renewal_opened_counts_in_the_round_current_when_submitted():
    course, modules = certifying_course()
    member = MemberFactory()
    certificate = last_valid_in(certified(member, modules), 100)
    refresher = quiz(course=course)
    attempt = services.start_attempt(member=member, module=refresher)
    assert attempt.round == 1
    last_valid_in(certificate, 20)

    submitted = services.submit_attempt(member=member, attempt_id=attempt.pk, answers=right(attempt))

    assert (submitted.round, QuizAttempt.objects.get(pk=attempt.pk).round) == (2, 2)


# The new certificate ------------------------------------------------------------------------------------------------


def test_finishing_the_round_before_expiry_issues_the_new_certificate_from_the_old_ones_end(
    django_capture_on_commit_callbacks,
):
    course, (first, second) = certifying_course(months=12)
    member = MemberFactory()
    old = last_valid_in(certified(member, [first, second]), 15)

    pass_module(member, first)
    assert Certificate.objects.filter(member=member).count() == 1  # 1 of 2 modules passed again
    with django_capture_on_commit_callbacks(execute=True):
        pass_module(member, second)

    new = Certificate.objects.filter(member=member).exclude(pk=old.pk).get()
    assert (new.issued_on, new.expires_on) == (TODAY(), services.add_months(old.expires_on, 12))
    assert new.number != old.number
    old_now = Certificate.objects.get(pk=old.pk)
    assert (old_now.issued_on, old_now.expires_on) == (old.issued_on, old.expires_on)
    notice = Delivery.objects.get(kind=Kind.CERTIFICATE_ISSUED, channel="inbox", source_key=f"certificate:{new.pk}")
    assert notice.member == member


def test_renewing_after_expiry_counts_the_new_certificate_from_today():
    course, modules = certifying_course(months=6)
    member = MemberFactory()
    last_valid_in(certified(member, modules), -30)

    for module in modules:
        pass_module(member, module)

    new = Certificate.objects.filter(member=member).order_by("-pk").first()
    assert (new.issued_on, new.expires_on) == (TODAY(), services.add_months(TODAY(), 6))
    assert Certificate.objects.filter(member=member).count() == 2


def test_once_renewed_the_round_is_complete_again_until_the_new_certificates_window():
    course, modules = certifying_course()
    member = MemberFactory()
    last_valid_in(certified(member, modules), 5)
    for module in modules:
        pass_module(member, module)
    before = snapshot()

    with pytest.raises(ApplicationError) as refused:
        services.start_attempt(member=member, module=modules[0])

    assert refused.value.code == ErrorCode.MODULE_PASSED
    assert snapshot() == before
    assert list(QuizAttempt.objects.order_by("number").values_list("module_id", "round")) == [
        (modules[0].pk, 1),
        (modules[1].pk, 1),
        (modules[0].pk, 2),
        (modules[1].pk, 2),
    ]


def test_the_database_allows_one_pass_per_member_module_and_round():
    from django.db import IntegrityError, transaction

    course, (only,) = certifying_course(modules=1)
    member = MemberFactory()
    passed = pass_module(member, only)

    with pytest.raises(IntegrityError), transaction.atomic():
        QuizAttempt.objects.create(
            member=member,
            module=only,
            number=2,
            round=1,
            status=AttemptStatus.PASSED,
            percent=100,
            started_at=passed.started_at,
            deadline=passed.deadline,
            submitted_at=passed.submitted_at,
        )
    QuizAttempt.objects.create(
        member=member,
        module=only,
        number=2,
        round=2,
        status=AttemptStatus.PASSED,
        percent=100,
        started_at=passed.started_at,
        deadline=passed.deadline,
        submitted_at=passed.submitted_at,
    )
    assert QuizAttempt.objects.filter(status=AttemptStatus.PASSED).count() == 2


# Pages --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def foreman():
    return MemberFactory(role=role("foreman"))


@pytest.fixture
def signed_in(client, foreman):
    client.force_login(foreman.user)
    return client


def test_learn_shows_renew_by_the_last_valid_day_with_the_modules_to_retake_and_no_points(signed_in, foreman):
    course, (first, second) = certifying_course()
    training_rule(course.program, points=50)
    certificate = last_valid_in(certified(foreman, [first, second]), 12)
    pass_module(foreman, first)  # renewed already

    text = visible(signed_in.get(reverse("learn")))

    last_day = certificate.expires_on - timedelta(days=1)
    assert f"Renew by {last_day:%-d %b %Y}" in text
    assert "To re-take: Module 2 Modules you passed before pay no points again." in text
    assert "1 of 2 modules passed" in text
    assert "Module 1 10 minutes Passed · 100 % Renewal: no points this time" in text
    assert "Module 2 10 minutes To re-take Renewal: no points this time" in text
    assert "for passing" not in text
    assert f"Certified on Softeners Renewal open Softener expert · valid until {last_day:%-d %b %Y}" in text


def test_learn_lists_an_expired_certificate_as_expired_and_offers_the_course_again(signed_in, foreman):
    course, modules = certifying_course()
    certificate = last_valid_in(certified(foreman, modules), -3)

    response = signed_in.get(reverse("learn"))

    text = visible(response)
    last_day = certificate.expires_on - timedelta(days=1)
    assert f"Certified on Softeners Expired Softener expert · was valid until {last_day:%-d %b %Y}" in text
    assert f"Your certificate expired: it was valid until {last_day:%-d %b %Y}." in text
    assert "To re-take: Module 1, Module 2" in text
    assert "0 of 2 modules passed" in text
    assert "Certified until" not in text


def test_learn_shows_a_valid_certificate_outside_the_window_as_before(signed_in, foreman):
    course, modules = certifying_course()
    certificate = last_valid_in(certified(foreman, modules), 200)

    text = visible(signed_in.get(reverse("learn")))

    last_day = certificate.expires_on - timedelta(days=1)
    assert f"Certified until {last_day:%-d %b %Y}" in text
    assert "2 of 2 modules passed" in text
    assert "Renew" not in text and "Expired" not in text


def test_the_module_page_says_when_a_passed_module_can_be_taken_again(signed_in, foreman):
    course, modules = certifying_course()
    certificate = last_valid_in(certified(foreman, modules), 200)

    text = visible(signed_in.get(reverse("module_detail", args=[modules[0].pk])))

    opens = certificate.expires_on - timedelta(days=1 + CERTIFICATE_NOTICE_DAYS)
    assert f"You can take it again to renew your certificate from {opens:%-d %b %Y}." in text
    assert "Take the quiz" not in text


def test_the_module_page_of_a_module_to_retake_offers_the_quiz_for_no_points(signed_in, foreman):
    course, modules = certifying_course()
    training_rule(course.program, points=50)
    last_valid_in(certified(foreman, modules), 3)

    response = signed_in.get(reverse("module_detail", args=[modules[0].pk]))

    text = visible(response)
    assert (
        "You passed this module before: passing it again renews your certificate. Renewal: no points this time." in text
    )
    assert "Take the quiz" in text
    assert "50 AquaPoints" not in text


def test_the_result_of_a_renewal_pass_says_no_points_and_the_last_one_shows_the_renewed_certificate(signed_in, foreman):
    course, (first, second) = certifying_course()
    training_rule(course.program, points=50)
    last_valid_in(certified(foreman, [first, second]), 3)
    renewed_first = pass_module(foreman, first)
    first_text = visible(signed_in.get(reverse("quiz_result", args=[renewed_first.pk])))
    renewed_second = pass_module(foreman, second)

    last_page = signed_in.get(reverse("quiz_result", args=[renewed_second.pk]))

    assert "Renewal: no points this time. A module pays once, the first time you pass it." in first_text
    assert "You earned" not in first_text and "Your certificate is renewed!" not in first_text
    last_text = visible(last_page)
    assert "Your certificate is renewed!" in last_text
    assert "You earned" not in last_text
    assert reverse("certificate_download", args=[course.pk]) in last_page.content.decode()


@pytest.mark.parametrize("courses", [1, 4])
def test_learn_query_count_does_not_grow_with_renewal_rounds(
    signed_in, foreman, django_assert_max_num_queries, courses
):
    program = ProgramFactory()
    training_rule(program, points=50)
    for number in range(courses):
        course = CourseFactory(
            program=program, product_line=ProductLineFactory(name=f"Line {number}"), certification_months=12
        )
        modules = [quiz(course=course) for _ in range(3)]
        certificate = certified(foreman, modules)
        last_valid_in(certificate, -2 if number % 2 else 10)
        pass_module(foreman, modules[0])
    signed_in.get(reverse("learn"))

    # As without renewals (tests/loyalty/test_training_views.py): the rounds come from the certificates read anyway.
    with django_assert_max_num_queries(17):
        response = signed_in.get(reverse("learn"))

    assert len(response.context["courses"]) == courses
    assert all(row.renewal_open and row.passed == 1 for row in response.context["courses"])
