"""Across the member site: the viewer is resolved once per request, a page offers to cancel an order exactly when
the service would cancel it, and every status has its badge colour."""

from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.common.errors import ApplicationError
from loyalty.constants import ClaimStatus
from loyalty.services import ledger
from loyalty.views.context_processors import CLAIM_STATUS_BADGES
from partners import visibility
from partners.constants import MemberStatus, PartnerStatus
from partners.context_processors import MEMBER_STATUS_BADGES, PARTNER_STATUS_BADGES
from rewards import services
from rewards.constants import OrderStatus, PaidBy
from rewards.context_processors import ORDER_STATUS_BADGES
from rewards.models import RedemptionOrder
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
)
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


def make_program():
    return ProgramFactory(currency_name="AquaPoints", order_approval_threshold=50)  # orders of 100 points wait


@pytest.fixture
def program():
    return make_program()


def fund(account, points=10_000):
    ledger.earn(account=account, points=points, key=f"fund-{account.pk}")


def place(member, program, *, paid_by=PaidBy.MEMBER, key):
    reward = RewardFactory(program=program, paid_by=paid_by, points_price=100)
    return services.order_place(member=member, program=program, items=[(reward, 1)], paid_by=paid_by, checkout_key=key)


# The viewer, once per request --------------------------------------------------------------------------


def _is_membership_lookup(sql: str) -> bool:
    """partners.visibility.current_membership's query: the membership with its partner, region and role."""
    parts = ('"partners_member"."user_id" =', '"partners_member"."status" IN', '"partners_region"')
    return all(part in sql for part in parts)


@pytest.fixture
def world(program):
    manager = AccountManagerFactory()
    owner = OwnerFactory(partner=PartnerFactory(account_manager=manager))
    rep = MemberFactory(partner=owner.partner)
    fund(ledger.member_account(program=program, member=rep))
    order = place(rep, program, key="world")
    return {"owner": owner.user, "rep": rep.user, "manager": manager, "pm": ProgramManagerFactory(), "order": order}


PAGES = {
    "rep": ["home", "points_statement", "claim_list", "catalogue", "cart", "order_list", "order_detail", "profile"],
    "owner": ["home", "team", "company", "order_list", "order_detail", "points_statement", "catalogue"],
    "manager": ["home", "partner_list", "order_list", "order_detail", "claim_list"],
    "pm": ["home", "partner_list", "order_list", "order_detail", "claim_list"],
}


@pytest.mark.parametrize("who,name", [(who, name) for who, names in PAGES.items() for name in names])
def test_each_page_resolves_the_viewer_once_with_one_membership_query(client, world, who, name):
    client.force_login(world[who])
    url = reverse(name, args=[world["order"].pk]) if name == "order_detail" else reverse(name)
    with (
        mock.patch.object(visibility, "_resolve", wraps=visibility._resolve) as resolve,
        CaptureQueriesContext(connection) as queries,
    ):
        response = client.get(url)
    assert response.status_code == 200
    assert resolve.call_count == 1
    assert sum(_is_membership_lookup(q["sql"]) for q in queries.captured_queries) == 1
    assert response.context["viewer"].user.pk == world[who].pk


def test_a_checkout_resolves_the_viewer_once_although_the_service_asks_about_the_member(client, program):
    owner = OwnerFactory()
    fund(ledger.partner_account(program=program, partner=owner.partner))
    reward = RewardFactory(program=program, paid_by=PaidBy.COMPANY)
    client.force_login(owner.user)
    client.post(reverse("cart_update", args=[reward.pk]), {"quantity": 1})
    with mock.patch.object(visibility, "_resolve", wraps=visibility._resolve) as resolve:
        response = client.post(
            reverse("checkout", args=[PaidBy.COMPANY]), {"checkout_key": "one-viewer", "lines": f"{reward.pk}:1"}
        )
    order = RedemptionOrder.objects.get()
    assert response.url == reverse("order_detail", args=[order.pk])
    assert resolve.call_count == 1


# Cancelling: the page and the service agree ------------------------------------------------------------


class _Rollback(Exception):
    pass


def service_cancels(order: RedemptionOrder, user) -> bool:
    """Would order_transition cancel the order for this user? Tried on a copy, then rolled back."""
    copy = RedemptionOrder.objects.get(pk=order.pk)
    try:
        with transaction.atomic():
            services.order_transition(order=copy, to=OrderStatus.CANCELLED, actor=user, note="Changed my mind")
            raise _Rollback
    except _Rollback:
        return True
    except ApplicationError:
        return False


@pytest.fixture
def shop(program):
    return make_shop(program)


@pytest.fixture(scope="module")
def shop_for_the_matrix(django_db_setup, django_db_blocker):
    """The shop, made once for the matrix below and rolled back when the module is done: each of its tests runs in a
    savepoint inside it and changes nothing it reads (the service's cancelling is tried on a copy, rolled back)."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield make_shop(make_program())
        transaction.set_rollback(True)


def make_shop(program):
    manager = AccountManagerFactory()
    partner = PartnerFactory(account_manager=manager)
    owner, co_owner = OwnerFactory(partner=partner), OwnerFactory(partner=partner)
    rep = MemberFactory(partner=partner)
    fund(ledger.member_account(program=program, member=rep))
    fund(ledger.partner_account(program=program, partner=partner))
    pm = ProgramManagerFactory()
    orders = {
        "rep_placed": place(rep, program, key=f"{program.pk}:rep-placed"),  # keys of this shop's program only
        "company_placed": place(owner, program, paid_by=PaidBy.COMPANY, key=f"{program.pk}:company-placed"),
        "rep_approved": place(rep, program, key=f"{program.pk}:rep-approved"),
        "rep_cancelled": place(rep, program, key=f"{program.pk}:rep-cancelled"),
    }
    services.order_transition(order=orders["rep_approved"], to=OrderStatus.APPROVED, actor=pm)
    services.order_transition(order=orders["rep_cancelled"], to=OrderStatus.CANCELLED, actor=pm, note="Duplicate")
    people = {
        "rep": rep.user,
        "owner": owner.user,
        "co_owner": co_owner.user,
        "manager": manager,
        "pm": pm,
        "outsider": MemberFactory().user,
    }
    return people, orders


# Who may cancel what: the person who ordered while it waits, any owner of the partner a waiting company order,
# a program manager anything not yet fulfilled. Nobody else.
MAY_CANCEL = {
    ("rep", "rep_placed"),
    ("owner", "company_placed"),
    ("co_owner", "company_placed"),
    ("pm", "rep_placed"),
    ("pm", "company_placed"),
    ("pm", "rep_approved"),
}


@pytest.mark.parametrize("who", ["rep", "owner", "co_owner", "manager", "pm", "outsider"])
@pytest.mark.parametrize("which", ["rep_placed", "company_placed", "rep_approved", "rep_cancelled"])
def test_the_order_page_offers_to_cancel_exactly_when_the_service_would(client, shop_for_the_matrix, who, which):
    people, orders = shop_for_the_matrix
    user, order = people[who], orders[which]
    accepted = service_cancels(order, user)
    assert accepted == ((who, which) in MAY_CANCEL)
    assert services.can_cancel(viewer=user, order=order) is accepted

    client.force_login(user)
    detail = client.get(reverse("order_detail", args=[order.pk]))
    cancel = client.get(reverse("order_cancel", args=[order.pk]))
    if detail.status_code == 404:  # may not see it at all: nothing to offer, and nothing the service allows
        assert cancel.status_code == 404 and not accepted
        return
    assert ("Cancel this order" in detail.content.decode()) is accepted
    assert ("Cancel the order" in cancel.content.decode()) is accepted


def test_an_owner_cancels_a_waiting_company_order_from_the_page(client, shop):
    people, orders = shop
    order = orders["company_placed"]
    client.force_login(people["co_owner"])
    client.post(reverse("order_cancel", args=[order.pk]), {"reason": "Not needed after all"})
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


# Badges -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "badges,statuses",
    [
        (MEMBER_STATUS_BADGES, MemberStatus),
        (PARTNER_STATUS_BADGES, PartnerStatus),
        (ORDER_STATUS_BADGES, OrderStatus),
        (CLAIM_STATUS_BADGES, ClaimStatus),
    ],
)
def test_every_status_has_a_badge_colour(badges, statuses):
    assert set(badges) == set(statuses.values)
    assert all(css.startswith("text-bg-") for css in badges.values())


def test_badges_take_their_colour_from_the_python_mapping(client, shop):
    people, orders = shop
    client.force_login(people["rep"])
    page = client.get(reverse("order_list")).content.decode()
    assert f'class="badge order-status {ORDER_STATUS_BADGES[OrderStatus.PLACED]}"' in page
    assert f'class="badge order-status {ORDER_STATUS_BADGES[OrderStatus.CANCELLED]}"' in page
    home = client.get(reverse("home")).content.decode()
    assert f'<span class="badge {MEMBER_STATUS_BADGES[MemberStatus.ACTIVE]}">Active</span>' in home
    assert f'<span class="badge {PARTNER_STATUS_BADGES[PartnerStatus.ACTIVE]}">Active</span>' in home


def test_the_order_history_uses_the_shared_list(client, shop):
    people, orders = shop
    client.force_login(people["rep"])
    page = client.get(reverse("order_detail", args=[orders["rep_cancelled"].pk])).content.decode()
    history = page[page.index('id="history-heading"') :]
    assert history.index("Placed") < history.index("Cancelled")
    assert "· Duplicate" in history
