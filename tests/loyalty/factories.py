from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from loyalty.constants import ChallengeLevel, Formula, GoalMetric, QuestionKind, RuleStatus
from loyalty.models import (
    Certificate,
    Challenge,
    ChallengeEntry,
    ChallengeGoal,
    ChallengePrize,
    Course,
    IncentiveRule,
    Module,
    PointsAccount,
    Product,
    ProductLine,
    Program,
    QuizChoice,
    QuizQuestion,
    Tier,
)
from tests.partners.factories import MemberFactory, PartnerFactory, lookup_factory


class ProgramFactory(DjangoModelFactory):
    class Meta:
        model = Program

    name = factory.Sequence(lambda n: f"Program {n}")
    slug = factory.Sequence(lambda n: f"program-{n}")
    currency_name = "AquaPoints"
    starts_on = factory.LazyFunction(lambda: timezone.localdate().replace(month=1, day=1))
    expiry_months = 24


class MemberAccountFactory(DjangoModelFactory):
    """An empty account; give it points through loyalty.services.ledger, never by setting balances."""

    class Meta:
        model = PointsAccount

    program = factory.SubFactory(ProgramFactory)
    member = factory.SubFactory(MemberFactory)
    partner = None


class PartnerAccountFactory(DjangoModelFactory):
    class Meta:
        model = PointsAccount

    program = factory.SubFactory(ProgramFactory)
    member = None
    partner = factory.SubFactory(PartnerFactory)


ProductLineFactory = lookup_factory(ProductLine, "code", code="line-{}", name="Line {}")


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"AQ-{n:05d}")
    name = factory.Sequence(lambda n: f"AquaSoft {n}")
    line = factory.SubFactory(ProductLineFactory)


class TierFactory(DjangoModelFactory):
    class Meta:
        model = Tier

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Tier {n}")
    rank = factory.Sequence(lambda n: n)
    threshold = Decimal("0")
    multiplier = Decimal("1.00")


class RuleFactory(DjangoModelFactory):
    """A rule in force since long ago: 10 points per unit of any sale line."""

    class Meta:
        model = IncentiveRule

    program = factory.SubFactory(ProgramFactory)
    code = factory.Sequence(lambda n: f"rule-{n}")
    name = factory.Sequence(lambda n: f"Rule {n}")
    status = RuleStatus.PUBLISHED
    formula = Formula.PER_UNIT
    value = Decimal("10")
    effective_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=3650))


class CourseFactory(DjangoModelFactory):
    """A published course for everyone; give it `product_line` and `certification_months` to certify."""

    class Meta:
        model = Course

    program = factory.SubFactory(ProgramFactory)
    title = factory.Sequence(lambda n: f"Course {n}")
    is_published = True


class ModuleFactory(DjangoModelFactory):
    """A module whose quiz has no questions yet: add them with QuizQuestionFactory (or `with_quiz`)."""

    class Meta:
        model = Module

    course = factory.SubFactory(CourseFactory)
    title = factory.Sequence(lambda n: f"Module {n}")
    body = "What to know."
    minutes = 10
    pass_percent = 80
    position = factory.Sequence(lambda n: n)


class QuizQuestionFactory(DjangoModelFactory):
    """A single-choice question with one right answer and two wrong ones (`choices` of the question, in order)."""

    class Meta:
        model = QuizQuestion
        skip_postgeneration_save = True

    module = factory.SubFactory(ModuleFactory)
    text = factory.Sequence(lambda n: f"Question {n}?")
    kind = QuestionKind.SINGLE
    explanation = "Because."
    position = factory.Sequence(lambda n: n)

    @factory.post_generation
    def answers(question, create, extracted, **kwargs):
        """`answers=[("Yes", True), ("No", False)]`; default: one right, two wrong."""
        for position, (text, correct) in enumerate(
            extracted or [("Right", True), ("Wrong", False), ("Also wrong", False)]
        ):
            QuizChoice.objects.create(question=question, text=text, is_correct=correct, position=position)


def with_quiz(module: Module, questions: int = 5) -> Module:
    """Give `module` `questions` single-choice questions (each with one right answer)."""
    QuizQuestionFactory.create_batch(questions, module=module)
    return module


class CertificateFactory(DjangoModelFactory):
    """A certificate valid from today for a year."""

    class Meta:
        model = Certificate

    course = factory.SubFactory(
        CourseFactory, certification_months=12, product_line=factory.SubFactory(ProductLineFactory)
    )
    program = factory.SelfAttribute("course.program")
    member = factory.SubFactory(MemberFactory)
    product_line = factory.SelfAttribute("course.product_line")
    number = factory.Sequence(lambda n: f"CERT-{n:06d}")
    issued_on = factory.LazyFunction(timezone.localdate)
    expires_on = factory.LazyAttribute(lambda c: c.issued_on + timedelta(days=365))


class ChallengeFactory(DjangoModelFactory):
    """A published individual challenge running from a day ago for a month; add goals with ChallengeGoalFactory."""

    class Meta:
        model = Challenge

    program = factory.SubFactory(ProgramFactory)
    code = factory.Sequence(lambda n: f"challenge-{n}")
    name = factory.Sequence(lambda n: f"Challenge {n}")
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    level = ChallengeLevel.INDIVIDUAL
    is_published = True


class ChallengeGoalFactory(DjangoModelFactory):
    """10 units of any line."""

    class Meta:
        model = ChallengeGoal

    challenge = factory.SubFactory(ChallengeFactory)
    metric = GoalMetric.UNITS_SOLD
    target = Decimal("10")


class ChallengePrizeFactory(DjangoModelFactory):
    class Meta:
        model = ChallengePrize

    challenge = factory.SubFactory(ChallengeFactory)
    rank = factory.Sequence(lambda n: n + 1)
    points = 1000


class ChallengeEntryFactory(DjangoModelFactory):
    """A member's entry (set `member=None` and `partner` for a company's); `score` as given, normalised alike."""

    class Meta:
        model = ChallengeEntry

    challenge = factory.SubFactory(ChallengeFactory)
    member = factory.SubFactory(MemberFactory)
    partner = factory.LazyAttribute(lambda e: e.member.partner if e.member else PartnerFactory())
    score = Decimal("0")
    normalised = factory.LazyAttribute(lambda e: e.score)
