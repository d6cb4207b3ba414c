"""Factories of equipment returns (loyalty.models.returns) and the program rule that pays them."""

from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from loyalty.constants import CapPeriod, Formula, RuleEvent
from loyalty.models import CollectionPoint, EquipmentReturn, ReturnType
from tests.loyalty.factories import ProgramFactory, RuleFactory
from tests.partners.factories import MemberFactory


class ReturnTypeFactory(DjangoModelFactory):
    """A kind of used equipment the program takes back; no serial numbers unless asked."""

    class Meta:
        model = ReturnType

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Toner cartridge {n}")
    requires_serials = False
    max_quantity = 500


class CollectionPointFactory(DjangoModelFactory):
    """A place returns are brought to; collected by the program team unless given a `partner`."""

    class Meta:
        model = CollectionPoint

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Depot {n}")
    address = "1 Recycling Way"
    partner = None


class EquipmentReturnFactory(DjangoModelFactory):
    """A registered return without serials, as a row (services.returns.return_register checks and writes serials)."""

    class Meta:
        model = EquipmentReturn

    program = factory.SubFactory(ProgramFactory)
    member = factory.SubFactory(MemberFactory)
    partner = factory.SelfAttribute("member.partner")
    return_type = factory.SubFactory(ReturnTypeFactory, program=factory.SelfAttribute("..program"))
    collection_point = factory.SubFactory(CollectionPointFactory, program=factory.SelfAttribute("..program"))
    quantity = 1
    returned_on = factory.LazyFunction(timezone.localdate)


def returns_rule(program, *, points: int = 100, cap: int | None = None, period: str = CapPeriod.MONTH, **fields):
    """The program's rule for returned equipment: `points` per unit, at most `cap` a member per `period`, no tier
    multiplier."""
    values = {
        "event": RuleEvent.EQUIPMENT_RETURNED,
        "name": "Recycled equipment",
        "formula": Formula.PER_UNIT,
        "value": Decimal(points),
        "apply_tier_multiplier": False,
        "cap_points": cap,
        "cap_period": period,
    }
    return RuleFactory(program=program, **{**values, **fields})
