"""Issue #10, point 4: a checkout key is an idempotency key (Stripe's rule). The same key with the same request
gets the order the first request placed, also when both arrive at the same instant; the same key with another
request is refused and changes nothing."""

import threading
from collections import Counter

import pytest
from django.urls import reverse

from loyalty.common.errors import ApplicationError
from loyalty.models import PointsEntry
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from rewards import services
from rewards.constants import PaidBy
from rewards.error_codes import ErrorCode
from rewards.models import CartItem, RedemptionOrder
from tests.helpers import messages_of
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.test_ledger_concurrency import run_together
from tests.partners.factories import MemberFactory
from tests.rewards.factories import ADDRESS, CodeRewardFactory, MerchandiseFactory, RewardFactory

OTHER_ADDRESS = {**ADDRESS, "street": "Lindenallee 9"}


def funded_member(program, points=1000):
    member = MemberFactory()
    ledger.earn(account=ledger.member_account(program=program, member=member), points=points, key=f"s{member.pk}")
    return member


def place(member, program, items, key, address=ADDRESS):
    return services.order_place(
        member=member, program=program, items=items, paid_by=PaidBy.MEMBER, checkout_key=key, address=address
    )


def race(count: int, work) -> Counter:
    """Run work(i) on `count` threads at once; count what each returned, or the code (or class) of its error."""
    outcomes, lock = Counter(), threading.Lock()

    def counted(index):
        try:
            result = work(index)
        except ApplicationError as exc:
            result = exc.code
        except Exception as exc:  # the bug: an IntegrityError on the unique key, a server error
            result = type(exc).__name__
        with lock:
            outcomes[result] += 1

    run_together(count, counted)
    return outcomes


# At the same instant: real parallel transactions ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_simultaneous_checkouts_with_the_same_key_and_request_all_get_the_one_order():
    program = ProgramFactory(order_approval_threshold=10_000)
    member = funded_member(program)
    mug = MerchandiseFactory(program=program, points_price=100, stock=5)

    outcomes = race(6, lambda i: place(member, program, [(mug, 2)], "double-tap").pk)

    order = RedemptionOrder.objects.get()
    assert outcomes == Counter({order.pk: 6})
    mug.refresh_from_db()
    assert (mug.stock, order.total_points) == (3, 200)
    assert ledger.member_account(program=program, member=member).available == 800
    assert PointsEntry.objects.filter(source_id=str(order.pk)).count() == 1  # one spend
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_simultaneous_checkouts_with_the_same_key_and_other_requests_place_one_and_refuse_the_other():
    program = ProgramFactory(order_approval_threshold=10_000)
    member = funded_member(program)
    card = CodeRewardFactory(program=program, points_price=100, codes=5)

    outcomes = race(2, lambda i: "ordered" if place(member, program, [(card, i + 1)], "same-key") else None)

    assert outcomes == Counter({"ordered": 1, ErrorCode.KEY_REUSED: 1})
    order = RedemptionOrder.objects.get()
    assert ledger.member_account(program=program, member=member).available == 1000 - order.total_points
    assert card.codes.filter(order_line__isnull=False).count() == order.lines.get().quantity
    assert ledger_problems() == []


# One after the other ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "second",
    [
        pytest.param(lambda mug, seminar: ([(mug, 2)], OTHER_ADDRESS), id="another address"),
        pytest.param(lambda mug, seminar: ([(mug, 1)], ADDRESS), id="another quantity"),
        pytest.param(lambda mug, seminar: ([(mug, 2), (seminar, 1)], ADDRESS), id="another reward"),
    ],
)
def test_the_same_key_asking_for_something_else_is_refused_and_changes_nothing(second):
    program = ProgramFactory(order_approval_threshold=10_000)
    member = funded_member(program)
    mug = MerchandiseFactory(program=program, points_price=100, stock=5)
    seminar = RewardFactory(program=program, points_price=100)
    first = place(member, program, [(mug, 2)], "k-1")
    items, address = second(mug, seminar)

    with pytest.raises(ApplicationError, match=f"already placed order {first.pk}") as refused:
        place(member, program, items, "k-1", address=address)

    assert refused.value.code == ErrorCode.KEY_REUSED
    mug.refresh_from_db()
    assert (RedemptionOrder.objects.count(), mug.stock) == (1, 3)
    assert ledger.member_account(program=program, member=member).available == 800


@pytest.mark.django_db
def test_the_same_key_and_request_again_returns_the_order_even_once_stock_ran_out():
    program = ProgramFactory(order_approval_threshold=10_000)
    member = funded_member(program)
    mug = MerchandiseFactory(program=program, points_price=100, stock=1)
    first = place(member, program, [(mug, 1)], "k-1", address={**ADDRESS, "city": " Berlin "})  # spaces trimmed

    assert place(member, program, [(mug, 1)], "k-1").pk == first.pk
    assert ledger.member_account(program=program, member=member).available == 900


@pytest.mark.django_db
def test_an_address_given_for_a_reward_that_needs_none_does_not_change_the_request():
    program = ProgramFactory(order_approval_threshold=10_000)
    member = funded_member(program)
    seminar = RewardFactory(program=program, points_price=100)
    first = place(member, program, [(seminar, 1)], "k-1", address=None)
    assert place(member, program, [(seminar, 1)], "k-1", address=OTHER_ADDRESS).pk == first.pk


# Through the pages ------------------------------------------------------------------------------------------------


@pytest.fixture
def program():
    return ProgramFactory(order_approval_threshold=10_000)


@pytest.fixture
def member(program):
    return funded_member(program)


@pytest.mark.django_db
def test_a_checkout_page_posted_twice_shows_the_same_order_the_second_time(client, program, member):
    mug = MerchandiseFactory(program=program, points_price=100, stock=5)
    CartItem.objects.create(member=member, reward=mug, quantity=2)
    client.force_login(member.user)
    url = reverse("checkout", args=[PaidBy.MEMBER])
    page = client.get(url)
    data = {"checkout_key": page.context["form"].initial["checkout_key"], "lines": f"{mug.pk}:2", **ADDRESS}

    first = client.post(url, data)
    again = client.post(url, data)  # the back button and the same page sent again: the cart is empty by now

    order = RedemptionOrder.objects.get()
    assert first.url == again.url == reverse("order_detail", args=[order.pk])
    assert messages_of(again)[-1] == f"Order {order.pk} is confirmed."
    assert ledger.member_account(program=program, member=member).available == 800


@pytest.mark.django_db
def test_a_checkout_page_sent_again_with_another_address_is_refused_on_the_page(client, program, member):
    mug = MerchandiseFactory(program=program, points_price=100, stock=5)
    CartItem.objects.create(member=member, reward=mug, quantity=1)
    client.force_login(member.user)
    url = reverse("checkout", args=[PaidBy.MEMBER])
    client.post(url, {"checkout_key": "page-1", "lines": f"{mug.pk}:1", **ADDRESS})
    order = RedemptionOrder.objects.get()

    response = client.post(url, {"checkout_key": "page-1", "lines": f"{mug.pk}:1", **OTHER_ADDRESS})

    assert response.status_code == 200
    assert f"This checkout already placed order {order.pk}" in response.content.decode()
    order.refresh_from_db()
    assert (RedemptionOrder.objects.count(), order.delivery_street) == (1, ADDRESS["street"])


@pytest.mark.django_db
def test_redeem_now_tapped_twice_with_the_same_key_for_another_quantity_is_refused(client, program, member):
    card = CodeRewardFactory(program=program, points_price=100, codes=5)
    client.force_login(member.user)
    url = reverse("redeem_now", args=[card.pk])
    first = client.post(url, {"quantity": 1, "checkout_key": "tap-12345"})
    again = client.post(url, {"quantity": 1, "checkout_key": "tap-12345"})
    other = client.post(url, {"quantity": 2, "checkout_key": "tap-12345"})

    order = RedemptionOrder.objects.get()
    assert first.url == again.url == reverse("order_detail", args=[order.pk])
    assert other.url == reverse("reward_detail", args=[card.pk])
    assert messages_of(other)[-1].startswith(f"This checkout already placed order {order.pk}")
    assert ledger.member_account(program=program, member=member).available == 900


@pytest.mark.django_db
@pytest.mark.parametrize("lines", ["", "garbage", "1:1:1", "99999999:1"])
def test_a_checkout_post_without_the_lines_it_showed_places_nothing(client, program, member, lines):
    mug = MerchandiseFactory(program=program, points_price=100, stock=5)
    CartItem.objects.create(member=member, reward=mug, quantity=1)
    client.force_login(member.user)
    url = reverse("checkout", args=[PaidBy.MEMBER])

    response = client.post(url, {"checkout_key": "page-1", "lines": lines, **ADDRESS})

    assert response.url == url
    assert messages_of(response) == ["Your cart changed during the checkout. Check it, then check out again."]
    assert not RedemptionOrder.objects.exists()


@pytest.mark.django_db
def test_a_checkout_key_too_long_to_store_is_a_form_error(client, program, member):
    seminar = RewardFactory(program=program, points_price=100)
    CartItem.objects.create(member=member, reward=seminar, quantity=1)
    client.force_login(member.user)
    url = reverse("checkout", args=[PaidBy.MEMBER])

    response = client.post(url, {"checkout_key": "k" * 80, "lines": f"{seminar.pk}:1"})

    assert response.status_code == 200
    assert "This checkout page is out of date: open the checkout again." in response.content.decode()
    assert not RedemptionOrder.objects.exists()
