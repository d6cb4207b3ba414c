"""Factories of referrals (loyalty.models.referrals). A ReferralFactory row is stored as it is, without the
service's checks: use loyalty.services.referrals.referral_submit to test those."""

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from loyalty.constants import Formula, ReferralStatus, RuleEvent
from loyalty.models import Referral
from tests.loyalty.factories import ProgramFactory, RuleFactory
from tests.partners.factories import MemberFactory


class ReferralFactory(DjangoModelFactory):
    class Meta:
        model = Referral

    program = factory.SubFactory(ProgramFactory)
    member = factory.SubFactory(MemberFactory)
    partner = factory.LazyAttribute(lambda o: o.member.partner)
    company_name = factory.Sequence(lambda n: f"Prospect {n} GmbH")
    company_id = factory.Sequence(lambda n: f"DE{n:09d}")
    contact_name = factory.Faker("name")
    contact_email = factory.Sequence(lambda n: f"buyer{n}@prospect.example")
    need = "Water softeners for twelve hotels"
    status = ReferralStatus.SUBMITTED


def referral_rule(program, *, points: int = 500, **fields):
    """The rule that pays a converted referral: `points` fixed, to the referrer, no tier multiplier."""
    values = {
        "event": RuleEvent.REFERRAL_CONVERTED,
        "name": "Referral bonus",
        "formula": Formula.FIXED,
        "value": Decimal(points),
        "apply_tier_multiplier": False,
    }
    return RuleFactory(program=program, **{**values, **fields})
