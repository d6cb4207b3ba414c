import pytest
from django.urls import reverse

from loyalty.models import PointsEntry
from loyalty.services import ledger
from rewards.constants import OrderStatus, PaidBy
from rewards.models import CartItem, RedemptionOrder
from tests.helpers import messages_of
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import AccountManagerFactory, MemberFactory, OwnerFactory, ProgramManagerFactory, role
from tests.rewards.factories import ADDRESS, CodeRewardFactory, MerchandiseFactory, RewardCategoryFactory, RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints", order_approval_threshold=5000)


@pytest.fixture
def member(program):
    member = MemberFactory()
    ledger.earn(account=ledger.member_account(program=program, member=member), points=1000, key=f"seed{member.pk}")
    return member


def test_catalogue_lists_rewards_with_balance_and_filters(client, program, member):
    category = RewardCategoryFactory(name="Tools", slug="tools")
    RewardFactory(program=program, name="Torque wrench", category=category, points_price=800)
    RewardFactory(program=program, name="Cruise", points_price=90000)
    client.force_login(member.user)

    body = client.get(reverse("catalogue")).content.decode()
    assert "Torque wrench" in body and "Cruise" in body
    assert "You have <strong>1,000</strong> AquaPoints" in body

    affordable = client.get(reverse("catalogue"), {"affordable": "on"}).content.decode()
    assert "Torque wrench" in affordable and "Cruise" not in affordable
    by_category = client.get(reverse("catalogue"), {"category": "tools"}).content.decode()
    assert "Cruise" not in by_category
    nothing = client.get(reverse("catalogue"), {"q": "zeppelin"}).content.decode()
    assert "No rewards match" in nothing


def test_catalogue_htmx_request_renders_only_the_grid(client, program, member):
    RewardFactory(program=program)
    client.force_login(member.user)
    body = client.get(reverse("catalogue"), {"q": "Reward"}, headers={"HX-Request": "true"}).content.decode()
    assert body.lstrip().startswith('<div id="reward-grid">')


@pytest.mark.parametrize("count", [2, 30])
def test_catalogue_query_count_does_not_grow(client, program, member, django_assert_max_num_queries, count):
    for _ in range(count):
        RewardFactory(program=program).allowed_roles.add(role("sales"))
    CodeRewardFactory(program=program, codes=3)
    client.force_login(member.user)
    with django_assert_max_num_queries(14):  # includes the partner tier (tier-exclusive rewards), upcoming events
        assert client.get(reverse("catalogue")).status_code == 200


def test_restricted_reward_is_not_found(client, program, member):
    engineers_only = RewardFactory(program=program)
    engineers_only.allowed_roles.add(role("engineer"))
    client.force_login(member.user)
    assert client.get(reverse("reward_detail", args=[engineers_only.pk])).status_code == 404
    assert client.post(reverse("cart_update", args=[engineers_only.pk]), {"quantity": 1}).status_code == 404
    assert not CartItem.objects.exists()


def test_add_update_and_remove_cart_items(client, program, member):
    reward = RewardFactory(program=program, name="Thermos", points_price=120)
    client.force_login(member.user)
    response = client.post(reverse("cart_update", args=[reward.pk]), {"quantity": 2})
    assert response.url == reverse("cart")
    assert messages_of(response) == ["Thermos × 2 is in your cart."]
    assert CartItem.objects.get().quantity == 2
    cart_page = client.get(reverse("cart")).content.decode()
    assert "240" in cart_page and reverse("checkout", args=["member"]) in cart_page

    client.post(reverse("cart_update", args=[reward.pk]), {"quantity": 0})
    assert not CartItem.objects.exists()
    assert "Your cart is empty" in client.get(reverse("cart")).content.decode()


@pytest.mark.parametrize("quantity", ["-1", "51", "two", ""])
def test_bad_quantities_are_refused(client, program, member, quantity):
    reward = RewardFactory(program=program)
    client.force_login(member.user)
    response = client.post(reverse("cart_update", args=[reward.pk]), {"quantity": quantity})
    assert messages_of(response) == ["Enter a quantity from 0 to 50."]
    assert not CartItem.objects.exists()


def test_staff_reward_from_the_company_account_is_refused(client, program, member):
    company_reward = RewardFactory(program=program, paid_by=PaidBy.COMPANY)
    client.force_login(member.user)
    response = client.post(reverse("cart_update", args=[company_reward.pk]), {"quantity": 1})
    assert "Only the partner owner" in messages_of(response)[0]
    assert not CartItem.objects.exists()


def test_checkout_needs_an_address_for_shipped_items_and_changes_nothing_without_it(client, program, member):
    mug = MerchandiseFactory(program=program, points_price=100, stock=5)
    CartItem.objects.create(member=member, reward=mug, quantity=1)
    client.force_login(member.user)
    url = reverse("checkout", args=["member"])
    form_page = client.get(url)
    key = form_page.context["form"].initial["checkout_key"]
    response = client.post(url, {"checkout_key": key, "lines": f"{mug.pk}:1", "name": "Ana"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    mug.refresh_from_db()
    assert (mug.stock, RedemptionOrder.objects.count(), PointsEntry.objects.count()) == (5, 0, 1)


def test_checkout_places_the_order_once_even_when_submitted_twice(client, program, member):
    mug = MerchandiseFactory(program=program, points_price=100, stock=5)
    CartItem.objects.create(member=member, reward=mug, quantity=2)
    client.force_login(member.user)
    url = reverse("checkout", args=["member"])
    data = {"checkout_key": "abc123", "lines": f"{mug.pk}:2", **ADDRESS}
    response = client.post(url, data)
    order = RedemptionOrder.objects.get()
    assert response.url == reverse("order_detail", args=[order.pk])
    assert messages_of(response) == [f"Order {order.pk} is confirmed."]
    CartItem.objects.create(member=member, reward=mug, quantity=2)  # the same cart, submitted again
    client.post(url, data)
    assert RedemptionOrder.objects.count() == 1
    assert ledger.member_account(program=program, member=member).available == 800


def test_checkout_refusal_is_shown_on_the_form(client, program, member):
    reward = RewardFactory(program=program, points_price=600, limit_per_member=1)
    CartItem.objects.create(member=member, reward=reward, quantity=1)
    client.force_login(member.user)
    url = reverse("checkout", args=["member"])
    client.post(url, {"checkout_key": "first", "lines": f"{reward.pk}:1"})
    CartItem.objects.create(member=member, reward=reward, quantity=1)
    response = client.post(url, {"checkout_key": "second", "lines": f"{reward.pk}:1"})
    assert "and you have ordered that many already." in response.content.decode()
    assert RedemptionOrder.objects.count() == 1


def test_codes_are_shown_only_to_the_person_who_ordered(client, program):
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    ledger.earn(account=ledger.member_account(program=program, member=rep), points=500, key="rep")
    card = CodeRewardFactory(program=program, codes=1, points_price=100)
    CartItem.objects.create(member=rep, reward=card, quantity=1)
    client.force_login(rep.user)
    client.post(reverse("checkout", args=["member"]), {"checkout_key": "k", "lines": f"{card.pk}:1"})
    order = RedemptionOrder.objects.get()
    code = card.codes.get().code
    assert order.status == OrderStatus.FULFILLED
    assert code in client.get(reverse("order_detail", args=[order.pk])).content.decode()

    client.force_login(owner.user)
    owner_view = client.get(reverse("order_detail", args=[order.pk]))
    assert owner_view.status_code == 200
    assert code not in owner_view.content.decode()


def test_orders_are_404_for_people_who_may_not_see_them(client, program, member):
    reward = RewardFactory(program=program)
    CartItem.objects.create(member=member, reward=reward, quantity=1)
    client.force_login(member.user)
    client.post(reverse("checkout", args=["member"]), {"checkout_key": "k", "lines": f"{reward.pk}:1"})
    order = RedemptionOrder.objects.get()
    for outsider in (MemberFactory().user, OwnerFactory().user, AccountManagerFactory()):
        client.force_login(outsider)
        assert client.get(reverse("order_detail", args=[order.pk])).status_code == 404
        assert client.get(reverse("order_cancel", args=[order.pk])).status_code == 404
        assert reverse("order_detail", args=[order.pk]) not in client.get(reverse("order_list")).content.decode()
    client.force_login(ProgramManagerFactory())
    assert client.get(reverse("order_detail", args=[order.pk])).status_code == 200


def test_member_cancels_an_order_waiting_for_approval_and_gets_the_points_back(client, member):
    program = ProgramFactory(order_approval_threshold=50)
    ledger.earn(account=ledger.member_account(program=program, member=member), points=300, key="p2")
    reward = RewardFactory(program=program, points_price=200)
    client.force_login(member.user)
    session = client.session
    session["program_id"] = program.pk
    session.save()
    CartItem.objects.create(member=member, reward=reward, quantity=1)
    client.post(reverse("checkout", args=["member"]), {"checkout_key": "k", "lines": f"{reward.pk}:1"})
    order = RedemptionOrder.objects.get()
    assert order.status == OrderStatus.PLACED
    assert "Cancel the order" in client.get(reverse("order_cancel", args=[order.pk])).content.decode()
    assert client.post(reverse("order_cancel", args=[order.pk]), {"reason": ""}).status_code == 200
    response = client.post(reverse("order_cancel", args=[order.pk]), {"reason": "Ordered by mistake"})
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert messages_of(response)[-1].endswith("its points are back in the account.")
    assert ledger.member_account(program=program, member=member).available == 300


@pytest.mark.parametrize("count", [1, 30])
def test_order_list_query_count_does_not_grow(client, program, member, django_assert_max_num_queries, count):
    reward = RewardFactory(program=program, points_price=1)
    for i in range(count):
        CartItem.objects.create(member=member, reward=reward, quantity=1)
        client.force_login(member.user)
        client.post(reverse("checkout", args=["member"]), {"checkout_key": f"k{i}", "lines": f"{reward.pk}:1"})
    with django_assert_max_num_queries(9):  # + the member's upcoming events
        assert client.get(reverse("order_list")).status_code == 200


def test_people_without_a_membership_get_404_and_anonymous_users_sign_in(client, program):
    client.force_login(AccountManagerFactory())
    for name in ("catalogue", "cart"):
        assert client.get(reverse(name)).status_code == 404
    client.logout()
    for url in (reverse("catalogue"), reverse("cart"), reverse("order_list"), reverse("checkout", args=["member"])):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


def test_redeem_now_places_one_order_per_tap_and_refuses_shipped_items(client, program, member):
    card = CodeRewardFactory(program=program, codes=2, points_price=100)
    client.force_login(member.user)
    page = client.get(reverse("reward_detail", args=[card.pk]))
    key = page.context["checkout_key"]
    url = reverse("redeem_now", args=[card.pk])
    first = client.post(url, {"quantity": 1, "checkout_key": key})
    again = client.post(url, {"quantity": 1, "checkout_key": key})  # a double tap
    order = RedemptionOrder.objects.get()
    assert first.url == again.url == reverse("order_detail", args=[order.pk])
    assert order.status == OrderStatus.FULFILLED

    mug = MerchandiseFactory(program=program)
    response = client.post(reverse("redeem_now", args=[mug.pk]), {"quantity": 1, "checkout_key": "x" * 16})
    assert response.url == reverse("redeem_now", args=[mug.pk])  # the address step (issue #10, point 13)
    assert RedemptionOrder.objects.count() == 1
