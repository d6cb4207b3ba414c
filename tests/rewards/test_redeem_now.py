"""Issue #10, point 13: one-tap "Redeem now" only for rewards that need no address; a reward that is shipped or
set up on site goes through the address step (the checkout page), prefilled with the member's last address, and
the service never places such an order without an address."""

import pytest
from django.urls import reverse

from loyalty.common.errors import ApplicationError
from loyalty.services import ledger
from rewards import services
from rewards.constants import OrderStatus, PaidBy, RewardKind
from rewards.error_codes import ErrorCode
from rewards.models import RedemptionOrder
from tests.helpers import messages_of
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import OwnerFactory
from tests.rewards.factories import ADDRESS, CodeRewardFactory, MerchandiseFactory, RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints", order_approval_threshold=100_000)


@pytest.fixture
def owner(program):
    """A partner owner whose company account holds 50,000 points."""
    owner = OwnerFactory()
    ledger.earn(account=ledger.partner_account(program=program, partner=owner.partner), points=50_000, key="fund")
    return owner


@pytest.fixture
def display(program):
    """The co-marketing showroom display: paid by the company, delivered and set up at the partner's site."""
    return RewardFactory(
        program=program,
        name="Showroom display",
        kind=RewardKind.CO_MARKETING,
        paid_by=PaidBy.COMPANY,
        points_price=15_000,
        stock=8,
        installed_on_site=True,
    )


def test_a_reward_set_up_on_site_needs_an_address_and_one_that_is_not_does_not(program, display):
    funds = RewardFactory(program=program, kind=RewardKind.CO_MARKETING)
    mug = MerchandiseFactory(program=program)
    assert (display.needs_address, mug.needs_address, funds.needs_address) == (True, True, False)


def test_the_service_refuses_an_order_set_up_on_site_without_an_address(program, owner, display):
    with pytest.raises(ApplicationError, match="A delivery address is needed") as refused:
        services.order_place(
            member=owner, program=program, items=[(display, 1)], paid_by=PaidBy.COMPANY, checkout_key="no-address"
        )
    assert refused.value.code == ErrorCode.ADDRESS
    display.refresh_from_db()
    assert (RedemptionOrder.objects.count(), display.stock) == (0, 8)
    assert ledger.partner_account(program=program, partner=owner.partner).available == 50_000


def test_the_reward_page_sends_a_reward_set_up_on_site_to_the_address_step(client, owner, display):
    client.force_login(owner.user)

    body = client.get(reverse("reward_detail", args=[display.pk])).content.decode()

    step = reverse("redeem_now", args=[display.pk])
    assert f'<a class="btn btn-success mt-3" href="{step}">Redeem 1 now for 15,000 AquaPoints</a>' in body
    assert f'action="{step}"' not in body  # no one-tap form
    assert "Delivered and set up at the address you give at checkout." in body


def test_a_one_tap_post_for_a_reward_set_up_on_site_places_nothing_and_asks_for_the_address(client, owner, display):
    client.force_login(owner.user)

    response = client.post(reverse("redeem_now", args=[display.pk]), {"quantity": 1, "checkout_key": "tap-12345"})

    assert response.url == reverse("redeem_now", args=[display.pk])
    assert messages_of(response) == ["Where should Showroom display go? Enter the address to redeem it."]
    assert not RedemptionOrder.objects.exists()


def test_the_address_step_is_the_checkout_of_that_one_reward_with_the_last_address(client, program, owner, display):
    funds = RewardFactory(program=program, paid_by=PaidBy.COMPANY, points_price=100)
    older = {**ADDRESS, "street": "Old road 1"}
    for key, address, reward in (("a", older, display), ("b", ADDRESS, display), ("c", None, funds)):
        services.order_place(
            member=owner, program=program, items=[(reward, 1)], paid_by=PaidBy.COMPANY, checkout_key=key,
            address=address,
        )  # fmt: skip
    client.force_login(owner.user)

    response = client.get(reverse("redeem_now", args=[display.pk]))

    assert response.templates[0].name == "rewards/checkout.html"
    group = response.context["group"]
    assert (group.paid_by, group.items, group.needs_address) == (PaidBy.COMPANY, [(display, 1)], True)
    initial = response.context["form"].initial
    assert {field: initial.get(field) for field in ADDRESS} == ADDRESS  # the latest order with an address
    body = response.content.decode()
    assert f'action="{reverse("checkout", args=[PaidBy.COMPANY])}"' in body
    assert f'name="lines" value="{display.pk}:1"' in body


def test_placing_the_address_step_makes_an_order_with_the_address(client, program, owner, display):
    client.force_login(owner.user)
    page = client.get(reverse("redeem_now", args=[display.pk]))
    data = {"checkout_key": page.context["form"].initial["checkout_key"], "lines": f"{display.pk}:1", **ADDRESS}

    response = client.post(reverse("checkout", args=[PaidBy.COMPANY]), data)

    order = RedemptionOrder.objects.get()
    assert response.url == reverse("order_detail", args=[order.pk])
    assert (order.delivery_street, order.delivery_city, order.status) == ("Hauptstr. 5", "Berlin", OrderStatus.APPROVED)
    assert ledger.partner_account(program=program, partner=owner.partner).available == 35_000


def test_the_address_step_without_an_address_shows_the_errors_and_places_nothing(client, owner, display):
    client.force_login(owner.user)
    data = {"checkout_key": "step-1", "lines": f"{display.pk}:1"}

    response = client.post(reverse("checkout", args=[PaidBy.COMPANY]), data)

    assert response.status_code == 200
    assert response.context["form"].errors["street"] == ["This field is required."]
    assert response.context["group"].items == [(display, 1)]  # still the one reward, not the cart
    assert not RedemptionOrder.objects.exists()


def test_the_checkout_of_a_cart_that_ships_is_prefilled_with_the_last_address(client, program, owner):
    mug = MerchandiseFactory(program=program, paid_by=PaidBy.COMPANY, points_price=100)
    services.order_place(
        member=owner, program=program, items=[(mug, 1)], paid_by=PaidBy.COMPANY, checkout_key="k", address=ADDRESS
    )
    services.cart_set(member=owner, reward=mug, quantity=1)
    client.force_login(owner.user)

    initial = client.get(reverse("checkout", args=[PaidBy.COMPANY])).context["form"].initial

    assert {field: initial.get(field) for field in ADDRESS} == ADDRESS


def test_a_reward_that_needs_no_address_is_still_redeemed_in_one_tap(client, program, owner):
    card = CodeRewardFactory(program=program, paid_by=PaidBy.COMPANY, points_price=100, codes=1)
    client.force_login(owner.user)
    page = client.get(reverse("reward_detail", args=[card.pk]))
    assert f'action="{reverse("redeem_now", args=[card.pk])}"' in page.content.decode()

    response = client.post(
        reverse("redeem_now", args=[card.pk]), {"quantity": 1, "checkout_key": page.context["checkout_key"]}
    )

    order = RedemptionOrder.objects.get()
    assert response.url == reverse("order_detail", args=[order.pk])
    assert order.delivery_street == ""
