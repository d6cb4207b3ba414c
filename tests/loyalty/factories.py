import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from loyalty.models import PointsAccount, Program
from tests.partners.factories import MemberFactory, PartnerFactory


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
