"""Issue #10, point 12: a reward with nothing left shows as out of stock and cannot go in the cart; at checkout
every line can be removed, and a line whose reward ran out is marked next to its remove button. The same holds for
a reward the member may order no more of (its per-member limit), and "Only what I can afford" lists only rewards that
can be had now, as the home page's "Redeem a reward" counts them."""

import re

import pytest
from django.urls import reverse

from loyalty.services import ledger
from rewards import selectors, services
from rewards.constants import LimitPeriod, PaidBy
from rewards.models import CartItem, RedemptionOrder
from tests.helpers import messages_of
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory
from tests.rewards.factories import CodeRewardFactory, MerchandiseFactory, RewardFactory

pytestmark = pytest.mark.django_db

OUT_OF_STOCK_BADGE = '<span class="badge text-bg-secondary">Out of stock</span>'


@pytest.fixture
def program():
    return ProgramFactory(order_approval_threshold=10_000)


@pytest.fixture
def member(program):
    member = MemberFactory()
    ledger.earn(account=ledger.member_account(program=program, member=member), points=1000, key=f"s{member.pk}")
    return member


@pytest.fixture
def signed_in(client, member):
    client.force_login(member.user)
    return client


def remove_form(reward, next_url: str) -> re.Pattern:
    """The cart's remove action for `reward`, coming back to `next_url`."""
    return re.compile(
        rf'<form method="post" action="{reverse("cart_update", args=[reward.pk])}">\s*'
        rf'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">\s*'
        rf'<input type="hidden" name="next" value="{next_url}">\s*'
        r'<input type="hidden" name="quantity" value="0">'
    )


def card_of(body: str, name: str) -> str:
    """The catalogue card of the reward called `name`."""
    start = body.index(f">{name}</a>")
    return body[start : body.index("</article>", start)]


def test_the_catalogue_marks_rewards_with_nothing_left_out_of_stock(signed_in, program):
    MerchandiseFactory(program=program, name="Sold-out mug", stock=0)
    CodeRewardFactory(program=program, name="Spent card", codes=0)
    MerchandiseFactory(program=program, name="Cap", stock=3)

    body = signed_in.get(reverse("catalogue")).content.decode()

    assert OUT_OF_STOCK_BADGE in card_of(body, "Sold-out mug")
    assert OUT_OF_STOCK_BADGE in card_of(body, "Spent card")
    assert "Out of stock" not in card_of(body, "Cap") and "3 in stock" in card_of(body, "Cap")


@pytest.mark.parametrize(
    "factory", [lambda p: MerchandiseFactory(program=p, stock=0), lambda p: CodeRewardFactory(program=p, codes=0)]
)
def test_the_page_of_a_reward_out_of_stock_offers_neither_the_cart_nor_redeem_now(signed_in, program, factory):
    reward = factory(program)

    response = signed_in.get(reverse("reward_detail", args=[reward.pk]))

    body = response.content.decode()
    assert OUT_OF_STOCK_BADGE in body
    assert "Out of stock for now: it cannot be added to the cart or redeemed." in body
    assert "Add to cart" not in body and "Redeem 1 now" not in body
    assert reverse("cart_update", args=[reward.pk]) not in body and reverse("redeem_now", args=[reward.pk]) not in body


def test_a_reward_out_of_stock_still_in_the_cart_can_be_removed_from_its_page(signed_in, program, member):
    mug = MerchandiseFactory(program=program, stock=0)
    CartItem.objects.create(member=member, reward=mug, quantity=2)

    body = signed_in.get(reverse("reward_detail", args=[mug.pk])).content.decode()

    assert "2 are in your cart." in body and remove_form(mug, reverse("cart")).search(body)


@pytest.mark.parametrize(
    ("factory", "quantity", "message"),
    [
        (lambda p: MerchandiseFactory(program=p, name="Mug", stock=0), 1, "Mug is out of stock."),
        (lambda p: CodeRewardFactory(program=p, name="Card", codes=0), 1, "Card is out of stock."),
        (lambda p: MerchandiseFactory(program=p, name="Mug", stock=2), 3, "Only 2 of Mug left: choose 2 or fewer."),
    ],
)
def test_adding_more_than_is_left_to_the_cart_is_refused_with_a_message(signed_in, program, factory, quantity, message):
    reward = factory(program)

    response = signed_in.post(reverse("cart_update", args=[reward.pk]), {"quantity": quantity})

    assert response.url == reverse("reward_detail", args=[reward.pk])
    assert messages_of(response) == [message]
    assert not CartItem.objects.exists()


def test_every_checkout_line_has_a_remove_button_and_one_that_ran_out_is_marked(signed_in, program, member):
    mug = MerchandiseFactory(program=program, name="Mug", points_price=100, stock=5)
    cap = MerchandiseFactory(program=program, name="Cap", points_price=100, stock=5)
    CartItem.objects.create(member=member, reward=mug, quantity=1)
    CartItem.objects.create(member=member, reward=cap, quantity=1)
    cap.stock = 0  # sold out while it sat in the cart
    cap.save()
    url = reverse("checkout", args=[PaidBy.MEMBER])

    body = signed_in.get(url).content.decode()

    assert remove_form(mug, url).search(body) and remove_form(cap, url).search(body)
    cap_line = body[body.index("1 × Cap") : body.index("</li>", body.index("1 × Cap"))]
    assert OUT_OF_STOCK_BADGE in cap_line and remove_form(cap, url).search(cap_line)
    assert "Out of stock" not in body[body.index("1 × Mug") : body.index("</li>", body.index("1 × Mug"))]
    assert "Some rewards no longer have enough units left" in body
    assert "Redeem 100" not in body  # no checkout until the line is gone


def test_a_line_with_fewer_units_left_than_it_asks_for_is_marked_with_what_is_left(signed_in, program, member):
    mug = MerchandiseFactory(program=program, name="Mug", points_price=100, stock=1)
    CartItem.objects.create(member=member, reward=mug, quantity=3)

    body = signed_in.get(reverse("checkout", args=[PaidBy.MEMBER])).content.decode()

    assert '<span class="badge text-bg-warning">Only 1 left</span>' in body


def test_removing_a_line_at_checkout_comes_back_to_the_checkout_with_the_rest(signed_in, program, member):
    mug = MerchandiseFactory(program=program, name="Mug", points_price=100, stock=5)
    cap = MerchandiseFactory(program=program, name="Cap", points_price=100, stock=0)
    CartItem.objects.create(member=member, reward=mug, quantity=1)
    CartItem.objects.create(member=member, reward=cap, quantity=1)
    url = reverse("checkout", args=[PaidBy.MEMBER])

    response = signed_in.post(reverse("cart_update", args=[cap.pk]), {"quantity": 0, "next": url})

    assert response.url == url
    assert messages_of(response) == ["Cap was removed from your cart."]
    assert list(CartItem.objects.values_list("reward__name", flat=True)) == ["Mug"]
    page = signed_in.get(url).content.decode()
    assert "1 × Cap" not in page and "Redeem 100" in page


def test_a_line_whose_reward_left_the_catalogue_can_still_be_removed(signed_in, program, member):
    retired = RewardFactory(program=program, name="Retired", is_active=False)
    CartItem.objects.create(member=member, reward=retired, quantity=1)

    response = signed_in.post(reverse("cart_update", args=[retired.pk]), {"quantity": 0, "next": reverse("cart")})

    assert (response.url, messages_of(response)) == (reverse("cart"), ["Retired was removed from your cart."])
    assert not CartItem.objects.exists()


def test_removing_a_reward_that_is_not_in_the_cart_or_catalogue_is_404(signed_in, program):
    retired = RewardFactory(program=program, is_active=False)
    assert signed_in.post(reverse("cart_update", args=[retired.pk]), {"quantity": 0}).status_code == 404


def test_checking_out_a_line_that_ran_out_changes_nothing(signed_in, program, member):
    cap = MerchandiseFactory(program=program, name="Cap", points_price=100, stock=1)
    CartItem.objects.create(member=member, reward=cap, quantity=1)
    url = reverse("checkout", args=[PaidBy.MEMBER])
    key = signed_in.get(url).context["form"].initial["checkout_key"]
    cap.stock = 0
    cap.save()

    response = signed_in.post(
        url,
        {
            "checkout_key": key,
            "lines": f"{cap.pk}:1",
            "name": "A",
            "street": "B",
            "postcode": "1",
            "city": "C",
            "country": "D",
        },
    )

    assert response.status_code == 200
    assert "Cap is out of stock for that quantity." in response.content.decode()
    assert not RedemptionOrder.objects.exists()
    assert ledger.member_account(program=program, member=member).available == 1000


def test_setting_0_for_a_reward_that_is_not_in_the_cart_is_not_an_error(signed_in, program):
    mug = MerchandiseFactory(program=program, name="Mug")
    response = signed_in.post(reverse("cart_update", args=[mug.pk]), {"quantity": 0})
    assert (response.status_code, response.url) == (302, reverse("cart"))
    assert not CartItem.objects.exists()


@pytest.mark.parametrize("count", [2, 20])
def test_cart_and_checkout_query_counts_do_not_grow_with_lines(
    signed_in, program, member, django_assert_max_num_queries, count
):
    for index in range(count):
        reward = CodeRewardFactory(program=program, codes=1) if index % 2 else MerchandiseFactory(program=program)
        CartItem.objects.create(member=member, reward=reward, quantity=1)
    for url in (reverse("cart"), reverse("checkout", args=[PaidBy.MEMBER])):
        with django_assert_max_num_queries(9):  # the checkout: + the last delivery address
            assert signed_in.get(url).status_code == 200


# The per-member limit ----------------------------------------------------------------------------------------


def order(member, program, reward, quantity: int = 1) -> RedemptionOrder:
    """A live order (it waits for approval: the program's threshold is above its price)."""
    return services.order_place(
        member=member, program=program, items=[(reward, quantity)], paid_by=PaidBy.MEMBER,
        checkout_key=f"limit-{member.pk}-{reward.pk}-{RedemptionOrder.objects.count()}",
    )  # fmt: skip


def test_the_cart_takes_no_more_than_the_member_may_still_order(signed_in, program, member):
    seminar = RewardFactory(program=program, name="Seminar", points_price=100, limit_per_member=2,
                            limit_period=LimitPeriod.MONTH)  # fmt: skip
    order(member, program, seminar)
    url = reverse("cart_update", args=[seminar.pk])

    refused = signed_in.post(url, {"quantity": 2})

    assert refused.url == reverse("reward_detail", args=[seminar.pk])
    assert messages_of(refused) == ["Seminar is limited to 2 per month per person; you can order 1 more."]
    assert not CartItem.objects.exists()
    signed_in.post(url, {"quantity": 1})
    assert list(CartItem.objects.values_list("reward__name", "quantity")) == [("Seminar", 1)]


def test_the_cart_refuses_a_reward_whose_limit_is_reached_and_keeps_the_cart_as_it_was(signed_in, program, member):
    seminar = RewardFactory(program=program, name="Seminar", points_price=100, limit_per_member=1,
                            limit_period=LimitPeriod.EVER)  # fmt: skip
    order(member, program, seminar)

    response = signed_in.post(reverse("cart_update", args=[seminar.pk]), {"quantity": 1})

    assert messages_of(response) == [
        "Seminar is limited to 1 in total per person, and you have ordered that many already."
    ]
    assert not CartItem.objects.exists()


def test_the_page_of_a_reward_whose_limit_is_reached_offers_neither_the_cart_nor_redeem_now(signed_in, program, member):
    seminar = RewardFactory(program=program, name="Seminar", points_price=100, limit_per_member=1)
    order(member, program, seminar)
    CartItem.objects.create(member=member, reward=seminar, quantity=1)  # put in the cart before the order

    body = signed_in.get(reverse("reward_detail", args=[seminar.pk])).content.decode()

    assert "You have ordered as many as you may for now, so it cannot be added to the cart or redeemed." in body
    assert "Add to cart" not in body and "Update cart" not in body and "Redeem 1 now" not in body
    assert reverse("redeem_now", args=[seminar.pk]) not in body
    assert "1 is in your cart." in body and remove_form(seminar, reverse("cart")).search(body)


def test_the_page_of_a_reward_with_some_of_its_limit_left_still_offers_the_cart(signed_in, program, member):
    seminar = RewardFactory(program=program, points_price=100, limit_per_member=2)
    order(member, program, seminar)

    body = signed_in.get(reverse("reward_detail", args=[seminar.pk])).content.decode()

    assert "Add to cart" in body and "Redeem 1 now" in body and "you can order 1 more" in body


# What I can afford ---------------------------------------------------------------------------------------------


def test_only_what_i_can_afford_lists_only_rewards_that_can_be_had_now(signed_in, program, member):
    MerchandiseFactory(program=program, name="Cap", points_price=100, stock=3)
    RewardFactory(program=program, name="Seminar", points_price=200, stock=None)
    CodeRewardFactory(program=program, name="Card", points_price=300, codes=2)
    MerchandiseFactory(program=program, name="Sold-out mug", points_price=100, stock=0)
    CodeRewardFactory(program=program, name="Spent card", points_price=100, codes=0)
    RewardFactory(program=program, name="Cruise", points_price=5000)

    page = signed_in.get(reverse("catalogue"), {"affordable": "1"}).context["page"]
    home = signed_in.get(reverse("home")).context["next_steps"]

    assert [reward.name for reward in page] == ["Cap", "Seminar", "Card"]
    assert next(step.text for step in home if step.title == "Redeem a reward") == "You can afford 3 rewards now."
    everything = selectors.catalogue(member=member, program=program)
    assert everything.count() == 6  # without the filter, what is out of stock is still listed (and marked)
