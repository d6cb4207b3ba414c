"""Reward orders through the API (rewards.api.orders): a member places one, members and owners read theirs and
their team's, machine clients read their partners', a fulfilment vendor ships, delivers and cancels."""

import itertools

import pytest
from rest_framework.test import APIClient

from integrations.models import IdempotencyRecord
from loyalty.services import ledger
from partners.constants import PartnerKind
from rewards import services
from rewards.constants import OrderStatus, PaidBy
from rewards.models import OrderEvent, RedemptionOrder, VoucherCode
from tests.integrations.helpers import problem
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory
from tests.rewards.factories import ADDRESS, CodeRewardFactory, MerchandiseFactory, RewardFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
checkout_keys = (f"test-checkout-{n}" for n in itertools.count())


def order_url(order) -> str:
    return f"{ORDERS}{order.pk}/"


def status_url(order) -> str:
    return f"{ORDERS}{order.pk}/status/"


def fund(program, member, points=10_000):
    account = ledger.member_account(program=program, member=member)
    ledger.earn(account=account, points=points, key=f"seed-{account.pk}-{points}")


def available(program, member) -> int:
    return ledger.member_account(program=program, member=member).available


def place(member, program, reward, quantity=1, **kwargs):
    """An order as the member site places it (funded first)."""
    fund(program, member)
    return services.order_place(
        member=member, program=program, items=[(reward, quantity)], paid_by=reward.paid_by,
        checkout_key=next(checkout_keys), address=ADDRESS, **kwargs,
    )  # fmt: skip


@pytest.fixture
def program():
    """The program people's API calls act in (the first active one); orders under 5,000 points are approved at
    once."""
    return ProgramFactory(order_approval_threshold=5000)


# Placing -----------------------------------------------------------------------------------------------------------


def test_a_member_places_an_order_for_themselves(program, person_api):
    member = MemberFactory()
    fund(program, member, 1000)
    mug = MerchandiseFactory(program=program, points_price=150, stock=5)
    body = {"lines": [{"reward": mug.pk, "quantity": 2}], "address": ADDRESS}

    response = person_api(member.user).post(ORDERS, body, format="json")

    assert response.status_code == 201, response.content
    order = RedemptionOrder.objects.get()
    assert response.json() == {
        "id": order.pk, "status": "approved", "paid_by": "member", "total_points": 300,
        "created_at": response.json()["created_at"], "lines": [{"reward": mug.pk, "quantity": 2, "points_each": 150}],
    }  # fmt: skip
    mug.refresh_from_db()
    assert (order.member, order.delivery_city, mug.stock, available(program, member)) == (member, "Berlin", 3, 700)


def test_an_owner_orders_from_the_company_account_and_a_member_may_not(program, person_api):
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    company = ledger.partner_account(program=program, partner=owner.partner)
    ledger.earn(account=company, points=2000, key="company-seed")
    display = RewardFactory(program=program, points_price=800, paid_by=PaidBy.COMPANY)
    body = {"lines": [{"reward": display.pk, "quantity": 1}], "paid_by": "company"}

    refused = person_api(rep.user).post(ORDERS, body, format="json")
    placed = person_api(owner.user).post(ORDERS, body, format="json")

    problem(refused, 422, "owner_only")
    assert placed.status_code == 201
    assert list(RedemptionOrder.objects.values_list("member", "paid_by")) == [(owner.pk, PaidBy.COMPANY)]
    company.refresh_from_db()
    assert company.available == 1200


def refused_order(program, member, **reward_fields):
    fund(program, member, 1000)
    return RewardFactory(program=program, **reward_fields)


@pytest.mark.parametrize(
    ("make_reward", "quantity", "address", "code"),
    [
        (lambda p: RewardFactory(program=p, points_price=5000), 1, ADDRESS, "insufficient_points"),
        (lambda p: RewardFactory(program=p, stock=0), 1, ADDRESS, "out_of_stock"),
        (lambda p: RewardFactory(program=p, stock=1), 2, ADDRESS, "out_of_stock"),
        (lambda p: CodeRewardFactory(program=p, codes=1), 2, ADDRESS, "codes_exhausted"),
        (lambda p: RewardFactory(program=p, is_active=False), 1, ADDRESS, "restricted"),
        (lambda p: RewardFactory(program=p, limit_per_member=1), 2, ADDRESS, "restricted"),
        (lambda p: RewardFactory(program=p, allowed_partner_kinds=[PartnerKind.INSTALLER]), 1, ADDRESS, "restricted"),
        (lambda p: MerchandiseFactory(program=p), 1, None, "address"),
        (lambda p: MerchandiseFactory(program=p), 1, {"name": "Ana", "city": "Berlin"}, "address"),
        (lambda p: RewardFactory(program=p, paid_by=PaidBy.COMPANY), 1, ADDRESS, "unknown_reward"),
        (lambda p: RewardFactory(program=ProgramFactory()), 1, ADDRESS, "unknown_reward"),
    ],
)
def test_each_refusal_of_the_checkout_is_422_with_its_code_and_changes_nothing(
    program, person_api, make_reward, quantity, address, code
):
    member = MemberFactory()
    fund(program, member, 1000)
    reward = make_reward(program)
    body = {"lines": [{"reward": reward.pk, "quantity": quantity}]}
    if address is not None:
        body["address"] = address
    stock = reward.stock

    problem(person_api(member.user).post(ORDERS, body, format="json"), 422, code)

    reward.refresh_from_db()
    assert RedemptionOrder.objects.count() == 0
    assert (available(program, member), reward.stock) == (1000, stock)
    assert not VoucherCode.objects.filter(order_line__isnull=False).exists()


def test_a_reward_twice_in_one_order_is_refused(program, person_api):
    member = MemberFactory()
    reward = refused_order(program, member)
    lines = [{"reward": reward.pk, "quantity": 1}, {"reward": reward.pk, "quantity": 2}]

    problem(person_api(member.user).post(ORDERS, {"lines": lines}, format="json"), 422, "duplicate_line")

    assert RedemptionOrder.objects.count() == 0
    assert available(program, member) == 1000


def test_an_inactive_member_may_not_order(program, person_api):
    member = MemberFactory()
    reward = refused_order(program, member)
    member.status = "pending_approval"
    member.save(update_fields=["status"])

    problem(person_api(member.user).post(ORDERS, {"lines": [{"reward": reward.pk, "quantity": 1}]}, format="json"),
            422, "inactive")  # fmt: skip

    assert RedemptionOrder.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"lines": []},
        {"lines": [{"reward": 1, "quantity": "two"}]},
        {"lines": [{"reward": 1, "quantity": 0}]},
        {"lines": [{"reward": 1, "quantity": 51}]},
        {"lines": [{"reward": "one", "quantity": 1}]},
        {"lines": [{"reward": 1}]},
        {"lines": [{"reward": 1, "quantity": 1, "price": 1}]},
        {"lines": [{"reward": 1, "quantity": 1}], "paid_by": "friend"},
        {"lines": [{"reward": 1, "quantity": 1}], "coupon": "FREE"},
        {"lines": [{"reward": 1, "quantity": 1}], "address": {"street": "x" * 201}},
        {"lines": [{"reward": 1, "quantity": 1}], "address": {"planet": "Mars"}},
        {"lines": {"reward": 1, "quantity": 1}},
    ],
)
def test_bad_input_is_400_and_changes_nothing(program, person_api, body):
    member = MemberFactory()
    reward = refused_order(program, member)
    for line in body.get("lines", []) if isinstance(body.get("lines"), list) else []:
        if line.get("reward") == 1:
            line["reward"] = reward.pk

    body = problem(person_api(member.user).post(ORDERS, body, format="json"), 400, "invalid")

    assert body["errors"]
    assert RedemptionOrder.objects.count() == 0


def test_malformed_json_is_400(program, person_api):
    member = MemberFactory()

    problem(person_api(member.user).post(ORDERS, "{lines:", content_type="application/json"), 400, "malformed")


def test_machine_clients_and_staff_place_no_orders(program, machine):
    http, _client = machine(program=program)
    manager = ProgramManagerFactory()
    staff = APIClient()
    staff.force_login(manager)
    reward = RewardFactory(program=program)
    body = {"lines": [{"reward": reward.pk, "quantity": 1}]}

    problem(http.post(ORDERS, body, format="json"), 403, "forbidden")
    problem(staff.post(ORDERS, body, format="json"), 403, "forbidden")

    assert RedemptionOrder.objects.count() == 0


def test_the_same_order_twice_with_one_key_places_one_order_and_answers_the_same(program, person_api):
    member = MemberFactory()
    fund(program, member, 1000)
    reward = RewardFactory(program=program, points_price=100)
    api = person_api(member.user)
    body = {"lines": [{"reward": reward.pk, "quantity": 1}]}

    first = api.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    again = api.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    IdempotencyRecord.objects.all().delete()  # the stored answer expired: the order's checkout key still holds
    later = api.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    IdempotencyRecord.objects.all().delete()
    other_body = api.post(ORDERS, {"lines": [{"reward": reward.pk, "quantity": 2}]}, format="json",
                          HTTP_IDEMPOTENCY_KEY="tap-1")  # fmt: skip

    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.content == first.content
    assert later.json()["id"] == first.json()["id"]
    problem(other_body, 422, "key_reused")
    assert RedemptionOrder.objects.count() == 1
    assert available(program, member) == 900


def test_without_a_key_each_post_is_a_new_order(program, person_api):
    member = MemberFactory()
    fund(program, member, 1000)
    reward = RewardFactory(program=program, points_price=100)
    api = person_api(member.user)
    body = {"lines": [{"reward": reward.pk, "quantity": 1}]}

    ids = {api.post(ORDERS, body, format="json").json()["id"] for _ in range(2)}

    assert len(ids) == 2
    assert available(program, member) == 800


def test_the_orders_address_takes_no_other_method(program, person_api):
    response = person_api(MemberFactory().user).delete(ORDERS)

    problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD, POST"


# Reading -----------------------------------------------------------------------------------------------------------


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_members_see_their_own_orders_owners_their_teams_clients_their_partners(program, person_api, machine):
    owner = OwnerFactory()
    rep, colleague = MemberFactory(partner=owner.partner), MemberFactory(partner=owner.partner)
    stranger = MemberFactory()
    reward = RewardFactory(program=program)
    mine, theirs = place(rep, program, reward), place(colleague, program, reward)
    strangers = place(stranger, program, reward)
    place(rep, (elsewhere := ProgramFactory()), RewardFactory(program=elsewhere))  # another program's order
    http, _ = machine(program=program, scopes=["orders:read"])

    assert ids(person_api(rep.user).get(ORDERS)) == [mine.pk]
    assert ids(person_api(owner.user).get(ORDERS)) == [theirs.pk, mine.pk]
    assert ids(http.get(ORDERS)) == [strangers.pk, theirs.pk, mine.pk]


def test_a_distributors_client_sees_its_dealers_orders_only(program, machine):
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    dealer = PartnerFactory(parent=distributor)
    reward = RewardFactory(program=program)
    ours = place(MemberFactory(partner=dealer), program, reward)
    other = place(MemberFactory(), program, reward)
    http, _ = machine(program=program, distributor=distributor, scopes=["orders:read", "orders:write"])

    assert ids(http.get(ORDERS)) == [ours.pk]
    problem(http.get(order_url(other)), 404, "not_found")
    problem(http.post(status_url(other), {"status": "delivered"}, format="json"), 404, "not_found")


def test_the_list_shows_each_orders_lines_delivery_and_tracking(program, machine):
    member = MemberFactory()
    mug = MerchandiseFactory(program=program, points_price=150)
    order = place(member, program, mug, 2)
    services.order_transition(order=order, to=OrderStatus.FULFILLED, actor=ProgramManagerFactory(), carrier="DHL",
                              tracking_number="JJD1")  # fmt: skip
    http, _ = machine(program=program, scopes=["orders:read"])

    row = http.get(ORDERS).json()["results"][0]

    assert row | {"created_at": "", "updated_at": ""} == {
        "id": order.pk, "status": "fulfilled", "paid_by": "member", "total_points": 300, "member": member.pk,
        "member_name": member.user.full_name, "partner": member.partner_id, "created_at": "", "updated_at": "",
        "lines": [{"reward": mug.pk, "reward_name": mug.name, "quantity": 2, "points_each": 150}],
        "delivery": {"name": "Ana Kovač", "street": "Hauptstr. 5", "postcode": "10115", "city": "Berlin",
                     "country": "Germany", "phone": ""},
        "carrier": "DHL", "tracking_number": "JJD1", "decision_reason": "",
    }  # fmt: skip


def test_the_list_filters_by_status_member_partner_and_time(program, machine):
    first, second = MemberFactory(), MemberFactory()
    reward = RewardFactory(program=program)
    approved = place(first, program, reward)
    cancelled = place(second, program, reward)
    services.order_transition(order=cancelled, to=OrderStatus.CANCELLED, actor=ProgramManagerFactory(), note="Gone")
    cancelled.refresh_from_db()
    http, _ = machine(program=program, scopes=["orders:read"])

    assert ids(http.get(ORDERS, {"status": "cancelled"})) == [cancelled.pk]
    assert ids(http.get(ORDERS, {"member": first.pk})) == [approved.pk]
    assert ids(http.get(ORDERS, {"partner": second.partner_id})) == [cancelled.pk]
    assert ids(http.get(ORDERS, {"updated_since": cancelled.updated_at.isoformat()})) == [cancelled.pk]
    assert ids(http.get(ORDERS, {"placed_since": "2000-01-01T00:00:00Z", "limit": 1})) == [cancelled.pk]
    for bad in ({"status": "lost"}, {"member": "me"}, {"placed_since": "yesterday"}):
        problem(http.get(ORDERS, bad), 400, "invalid")
    problem(http.get(ORDERS, {"cursor": "nonsense"}), 404, "not_found")


def test_reading_orders_needs_orders_read(program, machine):
    http, _ = machine(program=program, scopes=["orders:write"])
    order = place(MemberFactory(), program, RewardFactory(program=program))

    problem(http.get(ORDERS), 403, "missing_scope")
    problem(http.get(order_url(order)), 403, "missing_scope")


@pytest.mark.parametrize("rows", [3, 12])
def test_the_list_costs_the_same_queries_for_3_or_12_orders(
    program, machine, person_api, django_assert_num_queries, rows
):
    owner = OwnerFactory()
    rewards = [RewardFactory(program=program), MerchandiseFactory(program=program)]
    for n in range(rows):
        place(MemberFactory(partner=owner.partner) if n % 2 else owner, program, rewards[n % 2])
    http, _ = machine(program=program, scopes=["orders:read"])
    as_owner = person_api(owner.user)
    http.get(ORDERS), as_owner.get(ORDERS)  # the keys' last use is recorded once a minute

    with django_assert_num_queries(3):  # the key, the page, its lines with their rewards
        theirs = http.get(ORDERS)
    with django_assert_num_queries(5):  # the token, the membership, the programs, the page, its lines
        team = as_owner.get(ORDERS)

    assert len(theirs.json()["results"]) == len(team.json()["results"]) == rows


def test_an_order_shows_its_history_and_codes_to_the_person_who_ordered_only(program, person_api, machine):
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    card = CodeRewardFactory(program=program, codes=2)
    order = place(rep, program, card)
    http, _ = machine(program=program, scopes=["orders:read"])

    own = person_api(rep.user).get(order_url(order)).json()
    as_owner = person_api(owner.user).get(order_url(order)).json()
    as_client = http.get(order_url(order)).json()

    assert own["status"] == "fulfilled"
    assert own["lines"][0]["codes"] == [f"{card.sku}-CODE-0000"]
    assert as_owner["lines"][0]["codes"] == as_client["lines"][0]["codes"] == []
    assert [(move["from_status"], move["to_status"]) for move in own["history"]] == [
        ("", "placed"), ("placed", "approved"), ("approved", "fulfilled"),
    ]  # fmt: skip


def test_another_members_order_or_another_programs_is_404(program, person_api):
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    reward = RewardFactory(program=program)
    colleague_order = place(MemberFactory(partner=owner.partner), program, reward)
    stranger_order = place(MemberFactory(), program, reward)
    other_program = ProgramFactory()
    elsewhere = place(rep, other_program, RewardFactory(program=other_program))

    problem(person_api(rep.user).get(order_url(colleague_order)), 404, "not_found")
    problem(person_api(owner.user).get(order_url(stranger_order)), 404, "not_found")
    problem(person_api(rep.user).get(order_url(elsewhere)), 404, "not_found")
    assert person_api(owner.user).get(order_url(colleague_order)).status_code == 200


# Fulfilment --------------------------------------------------------------------------------------------------------


@pytest.fixture
def vendor(program, machine):
    http, _client = machine(program=program, scopes=["orders:read", "orders:write"])
    return http


def test_the_vendor_ships_with_tracking_then_delivers(program, vendor):
    member = MemberFactory()
    order = place(member, program, MerchandiseFactory(program=program))

    shipped = vendor.post(status_url(order), {"status": "fulfilled", "carrier": "DHL", "tracking_number": " JJD9 "},
                          format="json")  # fmt: skip
    delivered = vendor.post(status_url(order), {"status": "delivered"}, format="json")

    assert shipped.status_code == 200, shipped.content
    assert shipped.json() | {"updated_at": ""} == {
        "id": order.pk, "status": "fulfilled", "carrier": "DHL", "tracking_number": "JJD9", "decision_reason": "",
        "updated_at": "",
    }  # fmt: skip
    assert delivered.json()["status"] == "delivered"
    order.refresh_from_db()
    assert (order.status, order.carrier, order.tracking_number) == (OrderStatus.DELIVERED, "DHL", "JJD9")
    manager = order.events.last().actor
    assert manager.is_program_manager  # acting as the program manager who registered the client


def test_the_vendor_cancels_with_a_reason_and_the_points_go_back(program, vendor):
    member = MemberFactory()
    order = place(member, program, RewardFactory(program=program, points_price=400))
    before = available(program, member)

    missing = vendor.post(status_url(order), {"status": "cancelled"}, format="json")
    cancelled = vendor.post(status_url(order), {"status": "cancelled", "reason": "Discontinued."}, format="json")

    problem(missing, 422, "reason_required")
    assert cancelled.json()["decision_reason"] == "Discontinued."
    assert available(program, member) == before + 400


def test_a_move_the_status_does_not_allow_is_422_and_changes_nothing(program, vendor):
    order = place(MemberFactory(), program, RewardFactory(program=program))
    events = OrderEvent.objects.count()

    body = problem(vendor.post(status_url(order), {"status": "delivered"}, format="json"), 422, "bad_transition")

    assert body["detail"] == f"Order {order.pk} is approved and cannot become delivered."
    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED and OrderEvent.objects.count() == events


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "approved"},
        {"status": "lost"},
        {"status": "delivered", "tracking_number": "JJD1"},
        {"status": "fulfilled", "tracking_number": "x" * 81},
        {"status": "fulfilled", "eta": "tomorrow"},
        {"status": ["fulfilled"]},
    ],
)
def test_bad_moves_are_400_and_change_nothing(program, vendor, body):
    order = place(MemberFactory(), program, RewardFactory(program=program))

    problem(vendor.post(status_url(order), body, format="json"), 400, "invalid")

    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED


def test_moving_orders_needs_orders_write_and_is_not_for_people(program, machine, person_api):
    member = MemberFactory()
    order = place(member, program, RewardFactory(program=program))
    reader, _ = machine(program=program, scopes=["orders:read"])
    body = {"status": "fulfilled"}

    problem(reader.post(status_url(order), body, format="json"), 403, "missing_scope")
    problem(person_api(member.user).post(status_url(order), body, format="json"), 403, "forbidden")

    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED


def test_an_order_of_another_program_is_404_to_the_vendor(program, vendor):
    other_program = ProgramFactory()
    elsewhere = place(MemberFactory(), other_program, RewardFactory(program=other_program))

    problem(vendor.post(status_url(elsewhere), {"status": "fulfilled"}, format="json"), 404, "not_found")


def test_a_repeated_move_with_one_key_is_replayed_not_refused(program, vendor):
    order = place(MemberFactory(), program, MerchandiseFactory(program=program))
    body = {"status": "fulfilled", "carrier": "UPS", "tracking_number": "1Z9"}

    first = vendor.post(status_url(order), body, format="json", HTTP_IDEMPOTENCY_KEY="ship-1")
    again = vendor.post(status_url(order), body, format="json", HTTP_IDEMPOTENCY_KEY="ship-1")
    without_key = vendor.post(status_url(order), body, format="json")

    assert (first.status_code, again.status_code, again.content) == (200, 200, first.content)
    problem(without_key, 422, "bad_transition")
    assert order.events.filter(to_status=OrderStatus.FULFILLED).count() == 1


def test_a_client_whose_manager_is_no_longer_one_may_not_move_orders(program, machine):
    http, client = machine(program=program, scopes=["orders:write"])
    order = place(MemberFactory(), program, RewardFactory(program=program))
    client.created_by.staff_role = ""
    client.created_by.is_superuser = False
    client.created_by.save()

    problem(http.post(status_url(order), {"status": "fulfilled"}, format="json"), 403, "forbidden")

    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED
