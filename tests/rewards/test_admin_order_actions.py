"""Issue #10, point 15 (second half): an order's page in the back office offers every move the order can make now
(Approve, Reject…, Mark fulfilled…, Mark delivered, Cancel…), like a claim's, shown only when the order can move that
way and the user may move it; each posts the list's action, so the same pages ask first and the services move."""

import itertools
import re

import pytest
from django.urls import reverse

from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from rewards import services
from rewards.admin import RedemptionOrderAdmin
from rewards.constants import OrderStatus, PaidBy
from rewards.models import RedemptionOrder
from tests.helpers import messages_of
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory
from tests.rewards.factories import ADDRESS, MerchandiseFactory

pytestmark = pytest.mark.django_db
keys = (f"admin-page-{n}" for n in itertools.count())
CHANGELIST = reverse("admin:rewards_redemptionorder_changelist")


@pytest.fixture
def program():
    return ProgramFactory(order_approval_threshold=1000)


@pytest.fixture
def person(program):
    member = MemberFactory(user__email="ana@dealer.example")
    ledger.earn(account=ledger.member_account(program=program, member=member), points=5000, key="seed")
    return member


@pytest.fixture
def bike(program):
    return MerchandiseFactory(program=program, name="Bike", points_price=2000, stock=2)


def place(person, program, reward) -> RedemptionOrder:
    return services.order_place(
        member=person, program=program, items=[(reward, 1)], paid_by=PaidBy.MEMBER, checkout_key=next(keys),
        address=ADDRESS,
    )  # fmt: skip


def page(client, order) -> str:
    return client.get(reverse("admin:rewards_redemptionorder_change", args=[order.pk])).content.decode()


def button(action: str, order, label: str) -> re.Pattern:
    """A form on the page posting `action` for this one order to the list, as the list's action would."""
    return re.compile(
        rf'<form method="post" action="{CHANGELIST}">\s*'
        rf'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">\s*'
        rf'<input type="hidden" name="action" value="{action}">\s*'
        rf'<input type="hidden" name="_selected_action" value="{order.pk}">\s*'
        rf'<input type="submit"[^>]* value="{label}">'
    )


def status_of(order) -> str:
    order.refresh_from_db()
    return order.status


def test_a_waiting_order_page_has_approve_and_reject_buttons(pm_client, program, person, bike):
    waiting = place(person, program, bike)
    body = page(pm_client, waiting)
    assert button("approve", waiting, "Approve").search(body)
    assert button("reject", waiting, "Reject…").search(body)


def test_an_order_that_cannot_be_approved_or_rejected_has_neither_button(pm_client, program, person):
    approved = place(person, program, MerchandiseFactory(program=program, points_price=100))  # under the threshold
    body = page(pm_client, approved)
    assert approved.status == OrderStatus.APPROVED
    assert 'name="action" value="approve"' not in body and 'name="action" value="reject"' not in body


def test_approve_from_the_order_page_moves_it_and_records_who(pm_client, program, person, bike, program_manager):
    waiting = place(person, program, bike)

    response = pm_client.post(CHANGELIST, {"action": "approve", "_selected_action": [waiting.pk]}, follow=True)

    assert messages_of(response) == [f"Approved 1 order: Order {waiting.pk}."]
    assert status_of(waiting) == OrderStatus.APPROVED
    event = waiting.events.last()
    assert (event.from_status, event.to_status, event.actor) == (OrderStatus.PLACED, OrderStatus.APPROVED,
                                                                  program_manager)  # fmt: skip
    assert not button("approve", waiting, "Approve").search(page(pm_client, waiting))


def test_reject_from_the_order_page_asks_for_a_reason_then_refunds(pm_client, program, person, bike, program_manager):
    waiting = place(person, program, bike)
    asked = pm_client.post(CHANGELIST, {"action": "reject", "_selected_action": [waiting.pk]})
    assert asked.templates[0].name == "admin/loyalty/action_form.html"
    assert status_of(waiting) == OrderStatus.PLACED

    data = {"action": "reject", "_selected_action": [waiting.pk], "apply": "Reject and refund", "reason": "No budget"}
    response = pm_client.post(CHANGELIST, data, follow=True)

    assert messages_of(response) == [f"Rejected and refunded 1 order: Order {waiting.pk}."]
    waiting.refresh_from_db()
    bike.refresh_from_db()
    assert (waiting.status, waiting.decision_reason, bike.stock) == (OrderStatus.REJECTED, "No budget", 2)
    assert ledger.member_account(program=program, member=person).available == 5000
    assert (waiting.events.last().actor, waiting.events.last().note) == (program_manager, "No budget")
    assert ledger_problems() == []


def test_someone_not_allowed_to_move_orders_sees_no_buttons_and_cannot_post_them(
    pm_client, program, person, bike, monkeypatch
):
    waiting = place(person, program, bike)
    monkeypatch.setattr(RedemptionOrderAdmin, "has_manage_permission", lambda self, request: False)

    body = page(pm_client, waiting)
    response = pm_client.post(CHANGELIST, {"action": "approve", "_selected_action": [waiting.pk]}, follow=True)

    assert 'name="action" value="approve"' not in body and 'name="action" value="reject"' not in body
    assert (response.status_code, messages_of(response)) == (200, [])  # the list, with no action run
    assert status_of(waiting) == OrderStatus.PLACED


def test_an_account_manager_marked_as_staff_is_refused_the_page_and_the_buttons(am_staff_client, program, person, bike):
    waiting = place(person, program, bike)
    url = reverse("admin:rewards_redemptionorder_change", args=[waiting.pk])
    assert am_staff_client.get(url).status_code == 403
    assert am_staff_client.post(CHANGELIST, {"action": "approve", "_selected_action": [waiting.pk]}).status_code == 403
    assert status_of(waiting) == OrderStatus.PLACED


ORDER_ACTIONS = ("approve", "reject", "cancel", "mark_fulfilled", "mark_delivered")


def actions_on(body: str) -> list[str]:
    """The list actions the order's page offers as buttons, in the page's order."""
    return re.findall(r'<input type="hidden" name="action" value="([a-z_]+)">', body)


def test_an_approved_order_page_offers_mark_fulfilled_and_cancel(pm_client, program, person):
    approved = place(person, program, MerchandiseFactory(program=program, points_price=100))  # under the threshold

    body = page(pm_client, approved)

    assert approved.status == OrderStatus.APPROVED
    assert button("mark_fulfilled", approved, "Mark fulfilled…").search(body)
    assert button("cancel", approved, "Cancel…").search(body)
    assert actions_on(body) == ["mark_fulfilled", "cancel"]


@pytest.mark.parametrize(
    ("moves", "offered"),
    [
        ([], ["approve", "reject", "cancel"]),
        ([OrderStatus.APPROVED, OrderStatus.FULFILLED], ["mark_delivered"]),
        ([OrderStatus.APPROVED, OrderStatus.FULFILLED, OrderStatus.DELIVERED], []),
        ([OrderStatus.CANCELLED], []),
    ],
)
def test_each_order_page_offers_exactly_the_moves_the_order_can_make_now(
    pm_client, program, person, bike, program_manager, moves, offered
):
    order = place(person, program, bike)
    for to in moves:
        services.order_transition(order=order, to=to, actor=program_manager, note="For the test")

    body = page(pm_client, order)

    assert actions_on(body) == offered
    assert set(actions_on(body)) <= set(ORDER_ACTIONS)


def test_mark_fulfilled_from_the_order_page_asks_for_the_tracking_number_then_moves_it(
    pm_client, program, person, bike, program_manager
):
    approved = place(person, program, bike)
    services.order_transition(order=approved, to=OrderStatus.APPROVED, actor=program_manager)
    assert button("mark_fulfilled", approved, "Mark fulfilled…").search(page(pm_client, approved))
    selected = {"action": "mark_fulfilled", "_selected_action": [approved.pk]}

    asked = pm_client.post(CHANGELIST, selected)
    assert asked.templates[0].name == "admin/rewards/redemptionorder/mark_fulfilled.html"
    assert status_of(approved) == OrderStatus.APPROVED

    shipment = {
        "apply": "Mark fulfilled",
        "carrier": "DHL",
        f"carrier_{approved.pk}": "",
        f"tracking_{approved.pk}": "JD1",
    }
    response = pm_client.post(CHANGELIST, {**selected, **shipment}, follow=True)

    assert messages_of(response) == [f"Fulfilled 1 order: Order {approved.pk}."]
    approved.refresh_from_db()
    assert (approved.status, approved.carrier, approved.tracking_number) == (OrderStatus.FULFILLED, "DHL", "JD1")
    assert approved.events.last().actor == program_manager
    assert actions_on(page(pm_client, approved)) == ["mark_delivered"]


def test_cancel_from_the_order_page_asks_for_a_reason_then_refunds(pm_client, program, person, bike, program_manager):
    approved = place(person, program, bike)
    services.order_transition(order=approved, to=OrderStatus.APPROVED, actor=program_manager)
    assert button("cancel", approved, "Cancel…").search(page(pm_client, approved))
    selected = {"action": "cancel", "_selected_action": [approved.pk]}

    asked = pm_client.post(CHANGELIST, selected)
    assert asked.templates[0].name == "admin/loyalty/action_form.html"
    assert status_of(approved) == OrderStatus.APPROVED

    response = pm_client.post(CHANGELIST, {**selected, "apply": "Cancel and refund", "reason": "Out of production"},
                              follow=True)  # fmt: skip

    assert messages_of(response) == [f"Cancelled and refunded 1 order: Order {approved.pk}."]
    assert status_of(approved) == OrderStatus.CANCELLED
    assert ledger.member_account(program=program, member=person).available == 5000
    assert ledger_problems() == []
