"""A foreman on a phone learns to earn: opens Learn, reads a module, passes its quiz one-handed, sees the points and
the certificate, and downloads it; later renews the certificate by taking the course again, for no points, on a 360 px
screen; axe-core finds nothing serious on the Learn, quiz and result pages."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone
from playwright.sync_api import expect

from loyalty.constants import Formula, QuestionKind, RuleEvent
from loyalty.models import Certificate, QuizAttempt
from loyalty.services import training as services
from tests.e2e.axe import axe_check
from tests.e2e.pages import navigate_to, sign_in
from tests.loyalty.factories import (
    CourseFactory,
    ModuleFactory,
    ProductLineFactory,
    ProgramFactory,
    QuizQuestionFactory,
    RuleFactory,
)
from tests.partners.factories import PASSWORD, MemberFactory, role

POINTS = 75


@pytest.fixture
def course(e2e_db):
    """A running program whose rule pays 75 AquaPoints per module passed, and a one-module course certifying on
    softeners, for foremen."""
    program = ProgramFactory(name="Aqua Partners 2026", currency_name="AquaPoints")
    RuleFactory(
        program=program,
        event=RuleEvent.TRAINING_PASSED,
        name="Training passed",
        formula=Formula.FIXED,
        value=Decimal(POINTS),
        apply_tier_multiplier=False,
    )
    course = CourseFactory(
        program=program,
        title="Softener basics",
        product_line=ProductLineFactory(name="Softeners"),
        certification_months=24,
    )
    course.roles.set([role("foreman")])
    module = ModuleFactory(
        course=course,
        title="How a softener works",
        body="Hard water carries calcium.\n\nThe resin swaps it for sodium.",
        minutes=8,
        pass_percent=100,
    )
    QuizQuestionFactory(
        module=module,
        text="What does the resin take out of the water?",
        answers=[("Calcium", True), ("Sodium", False), ("Chlorine", False)],
    )
    QuizQuestionFactory(
        module=module,
        text="Which of these regenerate the resin?",
        kind=QuestionKind.MULTIPLE,
        answers=[("Salt brine", True), ("Potassium chloride", True), ("Vinegar", False)],
    )
    return course


@pytest.fixture
def foreman(e2e_db):
    member = MemberFactory(
        role=role("foreman"),
        partner__name="Northwind Heating Ltd",
        user__email="fred.foreman@northwind.example",
        user__full_name="Fred Foreman",
    )
    EmailAddress.objects.create(user=member.user, email=member.user.email, verified=True, primary=True)
    return member


def test_a_foreman_passes_a_quiz_on_a_phone_and_gets_the_points_and_the_certificate(course, foreman, open_page):
    page = open_page()
    sign_in(page, foreman.user.email, PASSWORD)
    expect(page).to_have_url("/")

    # Learn, from the navigation: the course, its module, what it pays.
    navigate_to(page, "Learn", "/learn/")
    card = page.get_by_test_id("course")
    expect(card.get_by_role("heading", name="Softener basics")).to_be_visible()
    expect(card.get_by_test_id("course-progress")).to_have_text("0 of 1 modules passed")
    expect(card.get_by_test_id("module-points")).to_have_text(f"{POINTS} AquaPoints for passing")
    axe_check(page)

    # The lesson, then the quiz.
    card.get_by_role("link", name="How a softener works").click()
    expect(page.get_by_text("The resin swaps it for sodium.")).to_be_visible()
    page.get_by_role("button", name="Take the quiz").click()
    expect(page).to_have_url(re.compile(r"/learn/quiz/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Quiz: How a softener works")
    axe_check(page)

    single = page.get_by_role("group", name=re.compile("What does the resin take out"))
    single.get_by_label("Calcium").check()
    several = page.get_by_role("group", name=re.compile("Which of these regenerate"))
    several.get_by_label("Salt brine").check()
    several.get_by_label("Potassium chloride").check()
    submit = page.get_by_role("button", name="Send my answers")
    box = submit.bounding_box()
    assert box["width"] >= 300 and box["height"] >= 44  # a big target, across the phone's width
    submit.click()

    # The result: passed, the points with the ledger's explanation, the certificate.
    expect(page).to_have_url(re.compile(r"/learn/quiz/\d+/result/$"))
    expect(page.get_by_test_id("score")).to_contain_text("100 % — passed!")
    expect(page.get_by_test_id("earned")).to_have_text(f"You earned {POINTS} AquaPoints.")
    expect(page.get_by_test_id("explanation")).to_have_text(
        f"Training passed v1, module “How a softener works”: {POINTS} pts = {POINTS}"
    )
    certificate_box = page.get_by_test_id("new-certificate")
    expect(certificate_box).to_contain_text("you are certified on Softeners until")
    axe_check(page)

    number = Certificate.objects.get(member=foreman).number
    with page.expect_download() as download:
        certificate_box.get_by_role("link", name="Download the certificate (PDF)").click()
    assert download.value.suggested_filename == f"certificate-{number}.pdf"

    # Back on Learn: the module is passed and the certificate is listed.
    navigate_to(page, "Learn", "/learn/")
    expect(page.get_by_test_id("course-progress")).to_have_text("1 of 1 modules passed")
    expect(page.get_by_test_id("certificate")).to_contain_text("Certified on Softeners")
    axe_check(page)


NARROWEST = {"width": 360, "height": 740}
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_a_foreman_renews_an_expiring_certificate_on_a_360_px_phone_for_no_points(course, foreman, open_page):
    """Certified 23 months ago, the foreman's certificate ends in 20 days: Learn says by when to renew, the quiz is
    taken again, the result says it pays nothing this time, and the renewed certificate runs on from the old one."""
    module = course.modules.get()
    answers = {
        question.pk: [choice.pk for choice in question.choices.all() if choice.is_correct]
        for question in module.questions.all()
    }
    attempt = services.start_attempt(member=foreman, module=module)
    services.submit_attempt(member=foreman, attempt_id=attempt.pk, answers=answers)
    old = Certificate.objects.get(member=foreman)
    old.expires_on = timezone.localdate() + timedelta(days=21)
    old.issued_on = old.expires_on - timedelta(days=730)
    old.save(update_fields=["issued_on", "expires_on"])
    last_day = old.expires_on - timedelta(days=1)

    page = open_page()
    page.set_viewport_size(NARROWEST)
    sign_in(page, foreman.user.email, PASSWORD)
    navigate_to(page, "Learn", "/learn/")
    card = page.get_by_test_id("course")
    expect(card.get_by_test_id("renewal")).to_contain_text(f"Renew by {last_day:%-d %b %Y}")
    expect(card.get_by_test_id("to-retake")).to_have_text("To re-take: How a softener works")
    expect(card.get_by_test_id("module-points")).to_have_text("Renewal: no points this time")
    assert page.evaluate(OVERFLOW) <= 0
    axe_check(page)

    card.get_by_role("link", name="How a softener works").click()
    page.get_by_role("button", name="Take the quiz").click()
    page.get_by_role("group", name=re.compile("What does the resin take out")).get_by_label("Calcium").check()
    several = page.get_by_role("group", name=re.compile("Which of these regenerate"))
    several.get_by_label("Salt brine").check()
    several.get_by_label("Potassium chloride").check()
    page.get_by_role("button", name="Send my answers").click()

    expect(page.get_by_test_id("score")).to_contain_text("100 % — passed!")
    expect(page.get_by_test_id("renewal-points")).to_contain_text("Renewal: no points this time.")
    expect(page.get_by_test_id("new-certificate")).to_contain_text("Your certificate is renewed!")
    assert page.evaluate(OVERFLOW) <= 0
    axe_check(page)

    renewed = Certificate.objects.exclude(pk=old.pk).get(member=foreman)
    assert (renewed.issued_on, renewed.expires_on) == (
        timezone.localdate(),
        services.add_months(old.expires_on, 24),
    )
    assert QuizAttempt.objects.filter(member=foreman, status="passed").count() == 2
    assert sum(foreman.points_accounts.values_list("available", flat=True)) == POINTS
