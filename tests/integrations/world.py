"""A small program for the API's schema tests: a client with every scope and its key, partners with people,
points, a reward, a referral and a claim (see test_schema_fuzz.py)."""

from dataclasses import dataclass

from django.utils import timezone

from integrations.models import ApiClient
from loyalty.models import Program, SalesSource
from loyalty.services import ledger
from tests.analytics.helpers import submit
from tests.integrations.factories import ApiClientFactory, issue_key
from tests.loyalty.factories import ProductFactory, ProgramFactory
from tests.loyalty.factories_referrals import ReferralFactory
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory
from tests.rewards.factories import RewardFactory


@dataclass
class ApiWorld:
    program: Program
    client: ApiClient
    key: str


def api_world() -> ApiWorld:
    program = ProgramFactory(is_active=True)
    source = SalesSource.objects.create(program=program, name="ERP", code="erp")
    client = ApiClientFactory(program=program, sales_source=source)
    partner = PartnerFactory()
    owner = OwnerFactory(partner=partner)
    member = MemberFactory(partner=partner)
    for person in (owner, member):
        ledger.earn(account=ledger.member_account(program=program, member=person), points=500, key=f"w{person.pk}")
    RewardFactory(program=program, points_price=100)
    ReferralFactory(program=program, member=member)
    submit(member, program, [(ProductFactory(), 2, 300)], number="INV-1", invoice_date=timezone.localdate())
    return ApiWorld(program=program, client=client, key=issue_key(client))
