"""Factories of co-marketing funds and requests (issue #13). Move money through loyalty.services.comarketing; these
only set up rows to start from."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from loyalty.constants import MdfStatus
from loyalty.models import MarketingFund, MarketingRequest
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory


class MarketingFundFactory(DjangoModelFactory):
    """A fund of 10,000.00 for the current year."""

    class Meta:
        model = MarketingFund

    program = factory.SubFactory(ProgramFactory)
    partner = factory.SubFactory(PartnerFactory)
    period_start = factory.LazyFunction(lambda: timezone.localdate().replace(month=1, day=1))
    period_end = factory.LazyFunction(lambda: timezone.localdate().replace(month=12, day=31))
    amount = Decimal("10000.00")


class MarketingRequestFactory(DjangoModelFactory):
    """A request of the fund's partner, made by its owner, waiting for the program team."""

    class Meta:
        model = MarketingRequest

    fund = factory.SubFactory(MarketingFundFactory)
    partner = factory.SelfAttribute("fund.partner")
    member = factory.LazyAttribute(lambda o: OwnerFactory(partner=o.fund.partner))
    title = factory.Sequence(lambda n: f"Advert {n} in the trade press")
    planned_on = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=7))
    planned_cost = Decimal("1000.00")
    status = MdfStatus.REQUESTED


__all__ = ["MarketingFundFactory", "MarketingRequestFactory", "MemberFactory"]
