from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from loyalty.constants import Formula, RuleStatus
from loyalty.models import IncentiveRule, PointsAccount, Product, ProductLine, Program, Tier
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
