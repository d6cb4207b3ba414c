from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.services import ledger
from partners.constants import PartnerKind
from rewards import selectors, services
from rewards.constants import PaidBy
from rewards.models import RedemptionOrder
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    ProgramManagerFactory,
    RegionFactory,
    role,
)
from tests.rewards.factories import ADDRESS, CodeRewardFactory, RewardFactory

pytestmark = pytest.mark.django_db


def test_catalogue_shows_only_what_this_member_may_redeem():
    program = ProgramFactory()
    member = MemberFactory(partner__kind=PartnerKind.DEALER)
    open_to_all = RewardFactory(program=program, name="Thermos", points_price=300)
    for_sales = RewardFactory(program=program, name="Sales kit", points_price=100)
    for_sales.allowed_roles.add(role("sales"), role("owner"))
    for_engineers = RewardFactory(program=program, name="Tool set")
    for_engineers.allowed_roles.add(role("engineer"))
    in_my_region = RewardFactory(program=program, name="Regional event")
    in_my_region.allowed_regions.add(member.partner.region, RegionFactory())
    RewardFactory(program=program, name="Elsewhere").allowed_regions.add(RegionFactory())
    RewardFactory(program=program, name="Installers only", allowed_partner_kinds=[PartnerKind.INSTALLER])
    RewardFactory(program=program, name="Dealers", allowed_partner_kinds=[PartnerKind.DEALER], points_price=50)
    RewardFactory(program=program, name="Retired", is_active=False)
    RewardFactory(program=program, name="Next year", available_from=timezone.now() + timedelta(days=30))
    RewardFactory(name="Other program")

    names = list(selectors.catalogue(member=member, program=program).values_list("name", flat=True))

    assert sorted(names) == ["Dealers", "Regional event", "Sales kit", "Thermos"]
    affordable = selectors.catalogue(member=member, program=program, max_points=100).values_list("name", flat=True)
    assert sorted(affordable) == ["Dealers", "Regional event", "Sales kit"]
    assert list(selectors.catalogue(member=member, program=program, search="therm").values_list("pk", flat=True)) == [
        open_to_all.pk
    ]


def test_catalogue_counts_free_codes():
    program = ProgramFactory()
    CodeRewardFactory(program=program, codes=4)
    reward = selectors.catalogue(member=MemberFactory(), program=program).get()
    assert reward.free_codes == 4


def test_orders_are_scoped_by_viewer():
    program = ProgramFactory()
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    outsider = MemberFactory()
    reward = RewardFactory(program=program, points_price=10)
    for member in (rep, outsider):
        ledger.earn(account=ledger.member_account(program=program, member=member), points=50, key=f"s{member.pk}")
        services.order_place(
            member=member,
            program=program,
            items=[(reward, 1)],
            paid_by=PaidBy.MEMBER,
            checkout_key=f"k{member.pk}",
            address=ADDRESS,
        )
    rep_order = RedemptionOrder.objects.get(member=rep)
    manager = AccountManagerFactory()
    outsider.partner.account_manager = manager
    outsider.partner.save()

    assert list(selectors.orders_for(rep.user)) == [rep_order]
    assert list(selectors.orders_for(owner.user)) == [rep_order]
    assert list(selectors.orders_for(manager)) == [RedemptionOrder.objects.get(member=outsider)]
    assert selectors.orders_for(ProgramManagerFactory()).count() == 2
    with pytest.raises(RedemptionOrder.DoesNotExist):
        selectors.order_get(viewer=outsider.user, pk=rep_order.pk)
