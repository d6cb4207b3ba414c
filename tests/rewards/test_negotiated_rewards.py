"""Negotiated conditions for key accounts on rewards (Reward.allowed_partners): a reward naming partners is in the
catalogue of their members only; to anyone else it does not exist (no page, no cart, no checkout, nothing changes);
the back office refuses it without a reason, stamps who saved (approved) it and when, lists it as "Negotiated
for: … — approved by … on …: reason" and filters it; the catalogue costs the same queries with such rewards."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.services import ledger
from rewards import selectors, services
from rewards.admin_forms import RewardAdminForm
from rewards.constants import PaidBy
from rewards.error_codes import ErrorCode
from rewards.models import CartItem, RedemptionOrder, Reward
from tests.helpers import messages_of
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory, role
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db

REASON = "Framework contract 2026: they run our training centre in the north."
NOT_YOURS = "This reward is not in your catalogue."
CHANGELIST = reverse("admin:rewards_reward_changelist")


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints", order_approval_threshold=5000)


@pytest.fixture
def key_account():
    return PartnerFactory(name="Hydro Wholesale AG")


@pytest.fixture
def other():
    return PartnerFactory(name="Corner Plumbing")


@pytest.fixture
def box(program, key_account):
    reward = RewardFactory(
        program=program, name="Partner day at the factory", points_price=300, negotiated_reason=REASON
    )
    reward.allowed_partners.set([key_account])
    return reward


def member_of(program, partner, points=1000):
    member = MemberFactory(partner=partner, role=role("sales"))
    ledger.earn(account=ledger.member_account(program=program, member=member), points=points, key=f"seed{member.pk}")
    return member


def balance(program, member) -> int:
    return ledger.member_account(program=program, member=member).available


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# The catalogue --------------------------------------------------------------------------------------------------


def test_a_reward_for_named_partners_is_in_their_members_catalogue_only(program, box, key_account, other):
    plain = RewardFactory(program=program, points_price=200)
    mine, theirs = member_of(program, key_account), member_of(program, other)

    assert list(selectors.catalogue(member=mine, program=program)) == [plain, box]
    assert list(selectors.catalogue(member=theirs, program=program)) == [plain]
    assert list(selectors.catalogue(member=theirs, program=program, max_points=1000)) == [plain]
    with pytest.raises(Reward.DoesNotExist):
        selectors.reward_get(member=theirs, program=program, pk=box.pk)


def test_another_partners_member_finds_no_page_for_it_and_the_key_account_does(
    client, program, box, key_account, other
):
    client.force_login(member_of(program, other).user)
    assert box.name not in text(client.get(reverse("catalogue")))
    assert client.get(reverse("reward_detail", args=[box.pk])).status_code == 404

    client.force_login(member_of(program, key_account).user)
    assert box.name in text(client.get(reverse("catalogue")))
    assert client.get(reverse("reward_detail", args=[box.pk])).status_code == 200


def test_another_partners_member_cannot_put_it_in_the_cart_and_nothing_changes(client, program, box, other):
    member = member_of(program, other)
    client.force_login(member.user)

    response = client.post(reverse("cart_update", args=[box.pk]), {"quantity": 1})

    assert response.status_code == 404
    with pytest.raises(ApplicationError) as refused:
        services.cart_set(member=member, reward=box, quantity=1)
    assert (refused.value.code, refused.value.message) == (ErrorCode.RESTRICTED, NOT_YOURS)
    assert CartItem.objects.filter(member=member).count() == 0


def test_another_partners_member_cannot_check_it_out_and_nothing_changes(program, box, other):
    member = member_of(program, other)

    with pytest.raises(ApplicationError) as refused:
        services.order_place(member=member, program=program, items=[(box, 1)], paid_by=PaidBy.MEMBER, checkout_key="k1")

    assert (refused.value.code, refused.value.message) == (ErrorCode.RESTRICTED, NOT_YOURS)
    assert (RedemptionOrder.objects.count(), balance(program, member)) == (0, 1000)


def test_the_key_accounts_member_orders_it(client, program, box, key_account):
    member = member_of(program, key_account)
    client.force_login(member.user)

    response = client.post(reverse("cart_update", args=[box.pk]), {"quantity": 1})
    order = services.order_place(
        member=member, program=program, items=[(box, 1)], paid_by=PaidBy.MEMBER, checkout_key="k2"
    )

    assert messages_of(response) == ["Partner day at the factory × 1 is in your cart."]
    assert (order.total_points, balance(program, member)) == (300, 700)


@pytest.mark.parametrize("count", [2, 30])
def test_the_catalogue_costs_the_same_queries_with_rewards_for_named_partners(
    client, program, key_account, other, count
):
    member = member_of(program, key_account)
    client.force_login(member.user)
    for _ in range(count):
        RewardFactory(program=program)
    client.get(reverse("catalogue"))  # what the first page caches
    with CaptureQueriesContext(connection) as plain:
        assert client.get(reverse("catalogue")).status_code == 200
    for _ in range(count):
        RewardFactory(program=program).allowed_partners.set([key_account, other])
        RewardFactory(program=program).allowed_partners.set([other])

    with CaptureQueriesContext(connection) as negotiated:
        response = client.get(reverse("catalogue"))

    assert len(negotiated) == len(plain)
    assert response.status_code == 200


# The back office -----------------------------------------------------------------------------------------------


def _data(reward, **changes) -> dict:
    """The reward's admin form as the change page posts it, with `changes`."""
    data = {}
    for name, value in RewardAdminForm(instance=reward).initial.items():
        if value is None or value is False or name == "image":
            continue
        if isinstance(value, list):
            data[name] = [getattr(item, "pk", item) for item in value]
        else:
            data[name] = "on" if value is True else value
    return {**data, "_save": "Save", **changes}


def test_a_reward_naming_partners_without_a_reason_is_refused_and_nothing_changes(pm_client, program, key_account):
    reward = RewardFactory(program=program)

    response = pm_client.post(
        reverse("admin:rewards_reward_change", args=[reward.pk]), _data(reward, allowed_partners=[key_account.pk])
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["negotiated_reason"] == [
        "Say why these partners get this reward (fair dealing: equal terms must be explainable)."
    ]
    assert (list(reward.allowed_partners.all()), Reward.objects.get().negotiated_approved_by) == ([], None)


def test_saving_a_reward_for_named_partners_stamps_who_approved_it_and_when(
    pm_client, program_manager, program, key_account
):
    reward = RewardFactory(program=program)
    url = reverse("admin:rewards_reward_change", args=[reward.pk])
    before = timezone.now()

    response = pm_client.post(url, _data(reward, allowed_partners=[key_account.pk], negotiated_reason=REASON))

    assert response.status_code == 302, response.context["adminform"].form.errors
    reward.refresh_from_db()
    assert (list(reward.allowed_partners.all()), reward.negotiated_reason) == ([key_account], REASON)
    assert reward.negotiated_approved_by == program_manager
    assert before <= reward.negotiated_approved_at <= timezone.now()

    stamped = reward.negotiated_approved_at
    pm_client.force_login(ProgramManagerFactory())
    pm_client.post(url, _data(reward, name="Partner day"))  # nothing negotiated changed: the approval stays
    reward.refresh_from_db()
    assert (reward.name, reward.negotiated_approved_by, reward.negotiated_approved_at) == (
        "Partner day",
        program_manager,
        stamped,
    )

    pm_client.post(url, _data(reward, allowed_partners=[]))  # for everyone again: no approval needed
    reward.refresh_from_db()
    assert (list(reward.allowed_partners.all()), reward.negotiated_approved_by) == ([], None)


def test_the_reward_list_says_who_it_was_negotiated_for_who_approved_it_when_and_why(
    pm_client, program, box, key_account, other
):
    approver = ProgramManagerFactory(full_name="Petra Program")
    when = timezone.make_aware(timezone.datetime(2026, 3, 2, 10, 0))
    Reward.objects.filter(pk=box.pk).update(negotiated_approved_by=approver, negotiated_approved_at=when)
    box.allowed_partners.add(other)
    plain = RewardFactory(program=program, name="Torch")

    page = text(pm_client.get(CHANGELIST))
    only = pm_client.get(CHANGELIST, {"negotiated": "yes"}).context["cl"].result_list
    none = pm_client.get(CHANGELIST, {"negotiated": "no"}).context["cl"].result_list

    assert (
        f"Negotiated for: Corner Plumbing, Hydro Wholesale AG — approved by {approver} on 2026-03-02: {REASON}" in page
    )
    assert "For every partner" in page
    assert (list(only), list(none)) == ([box], [plain])


@pytest.mark.parametrize("rows", [3, 30])
def test_the_reward_list_with_negotiated_rewards_costs_what_it_did(
    pm_client, program, django_assert_max_num_queries, rows
):
    from tests.rewards.test_admin import CHANGELIST_QUERIES

    partners = PartnerFactory.create_batch(3)
    for _ in range(rows):
        reward = RewardFactory(
            program=program, negotiated_reason=REASON, negotiated_approved_by=ProgramManagerFactory(),
            negotiated_approved_at=timezone.now(),
        )  # fmt: skip
        reward.allowed_partners.set(partners)
    with django_assert_max_num_queries(CHANGELIST_QUERIES["reward"]):
        response = pm_client.get(CHANGELIST)
    assert response.context["cl"].result_count == rows
