import csv
import io
import itertools
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from partners.constants import PartnerKind
from rewards import admin_forms, services
from rewards.constants import OrderStatus, PaidBy, RewardKind
from rewards.models import OrderEvent, RedemptionOrder, Reward, VoucherCode
from tests.helpers import messages_of
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory, ProgramManagerFactory, RegionFactory, role
from tests.rewards.factories import ADDRESS, CodeRewardFactory, MerchandiseFactory, RewardCategoryFactory, RewardFactory

pytestmark = pytest.mark.django_db
checkout_keys = (f"admin-checkout-{n}" for n in itertools.count())

# The most queries each page may make; the same bound holds at 3 rows and at 30.
CHANGELIST_QUERIES = {"rewardcategory": 6, "reward": 8, "vouchercode": 7, "redemptionorder": 8}
PAGE_QUERIES = {
    "reward_change": 14,  # + the tier choices, + the line choices (certified members only), + negotiated partners
    "reward_add": 9,  # + the tier choices, + the product line choices (certified members only)
    "category_change": 5,
    "upload_codes": 4,
    "vouchercode_change": 5,
    "order_change": 8,
    "mark_fulfilled_page": 8,
    "reject_page": 7,
    "export_csv": 8,
    "export_xlsx": 8,
}


@pytest.fixture
def program():
    return ProgramFactory(name="Aqua Rewards", order_approval_threshold=1000)


def changelist(model: str) -> str:
    return reverse(f"admin:rewards_{model}_changelist")


def change(obj) -> str:
    return reverse(f"admin:rewards_{obj._meta.model_name}_change", args=[obj.pk])


def upload_url(reward) -> str:
    return reverse("admin:rewards_reward_upload_codes", args=[reward.pk])


def run_action(client, action: str, orders, follow=True, **extra):
    data = {"action": action, "_selected_action": [order.pk for order in orders], **extra}
    return client.post(changelist("redemptionorder"), data, follow=follow)


def member(email: str, partner_name: str = "Dealer Ltd", program=None, points: int = 5000):
    person = MemberFactory(user__email=email, partner__name=partner_name)
    if program is not None and points:
        account = ledger.member_account(program=program, member=person)
        ledger.earn(account=account, points=points, key=f"seed-{person.pk}")
    return person


def place(person, program, items, address=ADDRESS):
    return services.order_place(
        member=person,
        program=program,
        items=items,
        paid_by=PaidBy.MEMBER,
        checkout_key=next(checkout_keys),
        address=address,
    )


def available(person, program) -> int:
    return ledger.member_account(program=program, member=person).available


def status_of(order) -> str:
    order.refresh_from_db()
    return order.status


# Access ---------------------------------------------------------------------------------------------


@pytest.fixture
def some_of_everything(program):
    card = CodeRewardFactory(program=program, codes=2)
    mug = MerchandiseFactory(program=program)
    order = place(member("ana@dealer.example", program=program), program, [(mug, 1), (card, 1)])
    return {"card": card, "order": order, "code": VoucherCode.objects.filter(reward=card).first()}


def pages(objects) -> list[str]:
    return [
        changelist("rewardcategory"),
        changelist("reward"),
        reverse("admin:rewards_reward_add"),
        change(objects["card"]),
        upload_url(objects["card"]),
        changelist("vouchercode"),
        change(objects["code"]),
        changelist("redemptionorder"),
        change(objects["order"]),
    ]


def test_partner_staff_are_sent_to_the_admin_login(partner_staff_client, some_of_everything):
    for url in pages(some_of_everything):
        response = partner_staff_client.get(url)
        assert (response.status_code, response["Location"].startswith("/admin/login/")) == (302, True), url


def test_account_manager_marked_as_staff_by_mistake_is_refused_everywhere(am_staff_client, some_of_everything):
    assert [am_staff_client.get(url).status_code for url in pages(some_of_everything)] == [403] * 9


def test_account_manager_can_neither_upload_codes_nor_move_orders(am_staff_client, some_of_everything):
    card, order = some_of_everything["card"], some_of_everything["order"]
    upload = am_staff_client.post(upload_url(card), {"file": SimpleUploadedFile("codes.csv", b"NEW-1\n")})
    action = run_action(am_staff_client, "cancel", [order], follow=False, apply="Cancel", reason="x")
    assert (upload.status_code, action.status_code) == (403, 403)
    assert card.codes.count() == 2
    assert status_of(order) == OrderStatus.APPROVED


# Query counts ---------------------------------------------------------------------------------------


def make_orders(program, rows: int) -> list[RedemptionOrder]:
    card = CodeRewardFactory(program=program, codes=rows * 2)
    mug = MerchandiseFactory(program=program, stock=1000)
    seminar = RewardFactory(program=program, kind=RewardKind.SESSION)
    return [
        place(member(f"m{index}@dealer.example", program=program), program, [(mug, 2), (card, 1), (seminar, 1)])
        for index in range(rows)
    ]


@pytest.mark.parametrize("rows", [3, 30])
def test_changelist_query_counts_do_not_grow_with_rows(pm_client, program, django_assert_max_num_queries, rows):
    make_orders(program, rows)
    RewardFactory.create_batch(rows, program=program, category=RewardCategoryFactory(slug="shared"))
    expected = {
        "rewardcategory": 3 + 1,  # one per reward of make_orders, and the shared one
        "reward": 3 + rows,
        "vouchercode": rows * 2,
        "redemptionorder": rows,
    }
    for model, count in expected.items():
        with django_assert_max_num_queries(CHANGELIST_QUERIES[model]):
            response = pm_client.get(changelist(model))
        assert (response.status_code, response.context["cl"].result_count) == (200, count), model


@pytest.mark.parametrize("rows", [3, 30])
def test_page_query_counts_do_not_grow_with_rows(pm_client, program, django_assert_max_num_queries, rows):
    orders = make_orders(program, rows)
    card = Reward.objects.get(uses_codes=True)
    code = VoucherCode.objects.filter(order_line__isnull=False).first()
    card.allowed_roles.add(role("sales"), role("owner"))
    card.allowed_regions.add(*RegionFactory.create_batch(3))
    gets = {
        "reward_change": change(card),
        "reward_add": reverse("admin:rewards_reward_add"),
        "category_change": change(card.category),
        "upload_codes": upload_url(card),
        "vouchercode_change": change(code),
        "order_change": change(orders[0]),
    }
    for name, url in gets.items():
        with django_assert_max_num_queries(PAGE_QUERIES[name]):
            assert pm_client.get(url).status_code == 200, name
    actions = {
        "mark_fulfilled_page": "mark_fulfilled",
        "reject_page": "reject",
        "export_csv": "export_supplier_csv",
        "export_xlsx": "export_supplier_xlsx",
    }
    for name, action in actions.items():
        with django_assert_max_num_queries(PAGE_QUERIES[name]):
            response = run_action(pm_client, action, orders, follow=False)
            if name == "export_csv":
                assert len(list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))) == rows + 1
        assert response.status_code == 200, name


# Catalogue ------------------------------------------------------------------------------------------


def test_reward_list_shows_stock_or_free_codes(pm_client, program):
    CodeRewardFactory(program=program, name="Gift card", codes=3)
    MerchandiseFactory(program=program, name="Mug", stock=20)
    RewardFactory(program=program, name="Seminar", stock=None)
    response = pm_client.get(changelist("reward"))
    stock = {
        row.name: response.context["cl"].model_admin.stock_or_codes(row) for row in response.context["cl"].result_list
    }
    assert stock == {"Gift card": "3 free codes", "Mug": "20 in stock", "Seminar": "Unlimited"}


def reward_data(program, **overrides) -> dict:
    data = {
        "program": program.pk,
        "category": RewardCategoryFactory(name="Gadgets", slug="gadgets").pk,
        "name": "Torque wrench",
        "sku": "TW-100",
        "kind": RewardKind.MERCHANDISE,
        "description": "",
        "points_price": "1500",
        "paid_by": PaidBy.MEMBER,
        "stock": "10",
        "limit_per_member": "",
        "limit_period": "month",
        "is_active": "on",
        "available_from_0": "",
        "available_from_1": "",
        "available_until_0": "",
        "available_until_1": "",
    }
    return {**data, **overrides}


def test_adding_a_reward_with_restrictions(pm_client, program):
    region = RegionFactory(name="Bavaria")
    data = reward_data(
        program,
        allowed_partner_kinds=[PartnerKind.INSTALLER, PartnerKind.DEALER],
        allowed_roles=[role("engineer").pk],
        allowed_regions=[region.pk],
        limit_per_member="2",
    )
    response = pm_client.post(reverse("admin:rewards_reward_add"), data)
    assert response.status_code == 302
    reward = Reward.objects.get()
    assert (reward.name, reward.stock, reward.limit_per_member) == ("Torque wrench", 10, 2)
    assert reward.allowed_partner_kinds == [PartnerKind.DEALER, PartnerKind.INSTALLER]
    assert list(reward.allowed_roles.values_list("code", flat=True)) == ["engineer"]
    assert list(reward.allowed_regions.all()) == [region]


def test_reward_form_shows_partner_kinds_as_checkboxes(pm_client):
    response = pm_client.get(reverse("admin:rewards_reward_add"))
    assert response.text.count('type="checkbox" name="allowed_partner_kinds"') == len(PartnerKind.choices)


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        ({"points_price": "0"}, {"points_price": ["The price must be at least 1 point."]}),
        (
            {"uses_codes": "on", "stock": "5"},
            {"stock": ["A code reward's stock is its pool of free codes: leave stock empty."]},
        ),
        (
            {
                "available_from_0": "2026-06-01",
                "available_from_1": "00:00",
                "available_until_0": "2026-05-01",
                "available_until_1": "00:00",
            },
            {"available_until": ["The end of the window must come after its start."]},
        ),
        (
            {"allowed_partner_kinds": ["shop"]},
            {"allowed_partner_kinds": ["Select a valid choice. shop is not one of the available choices."]},
        ),
    ],
)
def test_a_bad_reward_is_refused_with_a_clear_message(pm_client, program, overrides, errors):
    response = pm_client.post(reverse("admin:rewards_reward_add"), reward_data(program, **overrides))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == errors
    assert not Reward.objects.exists()


def test_a_code_reward_with_codes_keeps_handing_out_codes(pm_client, program):
    card = CodeRewardFactory(program=program, codes=1)
    data = reward_data(program, name=card.name, kind=RewardKind.VOUCHER, stock="", category=card.category_id)
    response = pm_client.post(change(card), data)
    assert response.context["adminform"].form.errors == {
        "uses_codes": ["This reward has voucher codes in its pool, so it keeps handing out codes."]
    }
    card.refresh_from_db()
    assert card.uses_codes is True


def test_code_reward_page_shows_the_pool_and_offers_the_upload(pm_client, program):
    card = CodeRewardFactory(program=program, codes=3)
    place(member("ana@dealer.example", program=program), program, [(card, 1)])
    response = pm_client.get(change(card))
    assert f'<a href="{upload_url(card)}" class="addlink">Upload codes</a>' in response.text
    assert "2 free, 1 assigned — " in response.text


def test_other_rewards_offer_no_upload(pm_client, program):
    mug = MerchandiseFactory(program=program)
    response = pm_client.get(change(mug))
    assert "Upload codes</a>" not in response.text
    assert "This reward hands out no codes." in response.text


# Uploading codes ------------------------------------------------------------------------------------


def upload(client, reward, content: bytes, name="codes.csv"):
    return client.post(upload_url(reward), {"file": SimpleUploadedFile(name, content, "text/csv")}, follow=True)


def test_uploading_codes_adds_the_new_ones_and_skips_the_rest(pm_client, program):
    card = CodeRewardFactory(program=program, name="Gift card", codes=0)
    services.codes_add(reward=card, codes=["OLD-1"])

    response = upload(pm_client, card, "\ufeffcode\nNEW-1\nNEW-2\nNEW-1\nOLD-1\n\n".encode())

    assert response.redirect_chain == [(change(card), 302)]
    assert messages_of(response) == ["Added 2 codes to Gift card; 2 were already in the pool or repeated in the file."]
    assert sorted(card.codes.values_list("code", flat=True)) == ["NEW-1", "NEW-2", "OLD-1"]


def test_uploading_one_code_says_so_in_the_singular(pm_client, program):
    card = CodeRewardFactory(program=program, name="Gift card", codes=0)
    response = upload(pm_client, card, b"ONLY-1\nONLY-1\n")
    assert messages_of(response) == ["Added 1 code to Gift card; 1 was already in the pool or repeated in the file."]


@pytest.mark.parametrize(
    ("content", "errors"),
    [
        ("Ä1\n".encode("utf-16"), {"file": ["The file is not UTF-8 text. Save it as CSV (UTF-8) and try again."]}),
        (b"", {"file": ["The submitted file is empty."]}),
        (b"code\n\n", {"file": ["The file has no codes."]}),
        (b"OK-1\n" + b"X" * 121 + b"\n", {"file": ["Line 2: the code is longer than 120 characters."]}),
    ],
)
def test_a_bad_file_is_a_form_error_and_adds_nothing(pm_client, program, content, errors):
    card = CodeRewardFactory(program=program, codes=1)
    response = upload(pm_client, card, content)
    assert response.status_code == 200
    assert response.context["form"].errors == errors
    assert card.codes.count() == 1


def test_a_file_that_is_too_big_is_refused(pm_client, program, monkeypatch):
    monkeypatch.setattr(admin_forms, "MAX_CODES_FILE_BYTES", 10)
    card = CodeRewardFactory(program=program, codes=0)
    response = upload(pm_client, card, b"CODE-0001\nCODE-0002\n")
    assert response.context["form"].errors == {"file": ["The file is larger than 5 MB. Split it into smaller files."]}
    assert not card.codes.exists()


def test_no_file_is_a_form_error(pm_client, program):
    card = CodeRewardFactory(program=program, codes=0)
    response = pm_client.post(upload_url(card), {})
    assert response.context["form"].errors == {"file": ["This field is required."]}


def test_codes_cannot_be_uploaded_to_a_reward_without_codes(pm_client, program):
    mug = MerchandiseFactory(program=program, name="Mug")
    response = upload(pm_client, mug, b"A-1\n")
    assert response.context["form"].non_field_errors() == ["Mug does not hand out codes."]
    assert not VoucherCode.objects.exists()


# Voucher codes --------------------------------------------------------------------------------------


def test_code_list_masks_codes_and_the_code_page_shows_it(pm_client, program):
    card = CodeRewardFactory(program=program, sku="GC", codes=0)
    services.codes_add(reward=card, codes=["SECRET-7788"])
    code = card.codes.get()
    listing = pm_client.get(changelist("vouchercode"))
    assert f'<th class="field-masked_code"><a href="{change(code)}">••••7788</a></th>' in listing.text
    assert "SECRET-7788" not in listing.text
    detail = pm_client.get(change(code))
    assert '<div class="readonly">SECRET-7788</div>' in detail.text


def test_code_search_is_exact_and_filters_by_state_and_reward(pm_client, program):
    card = CodeRewardFactory(program=program, codes=3)
    other = CodeRewardFactory(program=program, codes=1)
    MerchandiseFactory(program=program, name="Mug")
    order = place(member("ana@dealer.example", program=program), program, [(card, 1)])
    assigned = VoucherCode.objects.get(order_line__order=order)

    def found(query):
        return list(pm_client.get(changelist("vouchercode") + query).context["cl"].result_list)

    assert found(f"?q={assigned.code}") == [assigned]
    assert found(f"?q={assigned.code[:-1]}") == []
    assert found("?state=assigned") == [assigned]
    assert found(f"?state=free&reward={other.pk}") == list(other.codes.all())
    reward_filter = pm_client.get(changelist("vouchercode")).context["cl"].filter_specs[1]
    assert [name for _pk, name in reward_filter.lookup_choices] == [card.name, other.name]


def test_codes_are_never_added_changed_or_deleted_here(pm_client, program):
    code = CodeRewardFactory(program=program, codes=1).codes.get()
    assert pm_client.get(reverse("admin:rewards_vouchercode_add")).status_code == 403
    assert pm_client.post(change(code), {"code": "CHANGED"}).status_code == 403
    delete = reverse("admin:rewards_vouchercode_delete", args=[code.pk])
    assert pm_client.post(delete, {"post": "yes"}).status_code == 403
    code.refresh_from_db()
    assert code.code.endswith("-CODE-0000")


# Orders: list ---------------------------------------------------------------------------------------


@pytest.fixture
def shop(program):
    return {
        "mug": MerchandiseFactory(program=program, name="Mug", sku="MUG-1", points_price=100, stock=10),
        "card": CodeRewardFactory(program=program, name="Gift card", points_price=100, codes=5),
        "seminar": RewardFactory(program=program, name="Seminar", points_price=100, kind=RewardKind.SESSION),
        "big": MerchandiseFactory(program=program, name="Bike", sku="BIKE-1", points_price=2000, stock=2),
    }


def test_order_list_shows_who_what_and_how_many_lines(pm_client, program, shop):
    order = place(member("ana@dealer.example", "Dealer Ltd", program), program, [(shop["mug"], 2), (shop["card"], 1)])
    response = pm_client.get(changelist("redemptionorder"))
    row = response.context["cl"].result_list[0]
    assert (row.pk, row.line_count) == (order.pk, 2)
    assert '<td class="field-member_email">ana@dealer.example</td>' in response.text
    assert '<td class="field-partner">Dealer Ltd</td>' in response.text
    assert '<td class="field-total_points">300</td>' in response.text


def test_to_fulfil_filter_lists_approved_orders_with_items_to_ship(pm_client, program, shop):
    to_ship = place(member("a@x.example", program=program), program, [(shop["mug"], 1), (shop["seminar"], 1)])
    place(member("b@x.example", program=program), program, [(shop["card"], 1)])  # fulfilled at once
    place(member("c@x.example", program=program), program, [(shop["seminar"], 1)])  # nothing to ship
    place(member("d@x.example", program=program), program, [(shop["big"], 1)])  # waits for approval
    response = pm_client.get(changelist("redemptionorder") + "?fulfilment=to_fulfil")
    assert list(response.context["cl"].result_list) == [to_ship]


@pytest.mark.parametrize("term", ["order", "#order", "ana@dealer", "Dealer Ltd", "JD0001"])
def test_order_search_by_number_email_partner_and_tracking(pm_client, program, shop, term):
    order = place(member("ana@dealer.example", "Dealer Ltd", program), program, [(shop["mug"], 1)])
    services.order_transition(
        order=order, to=OrderStatus.FULFILLED, actor=ProgramManagerFactory(), carrier="DHL", tracking_number="JD0001"
    )
    place(member("ben@other.example", "Other Ltd", program), program, [(shop["mug"], 1)])
    term = term.replace("order", str(order.pk))
    response = pm_client.get(changelist("redemptionorder"), {"q": term})
    assert list(response.context["cl"].result_list) == [order]


def test_order_page_shows_lines_masked_codes_and_who_did_what(pm_client, program, shop, program_manager):
    order = place(member("ana@dealer.example", program=program), program, [(shop["card"], 2)])
    code = VoucherCode.objects.filter(order_line__order=order).order_by("id").first()
    response = pm_client.get(change(order))
    assert f'<a href="{change(code)}">••••{code.code[-4:]}</a>' in response.text
    lines, events = response.context["inline_admin_formsets"]
    assert [form.instance.quantity for form in lines.formset.forms] == [2]
    assert [(e.instance.from_status, e.instance.to_status) for e in events.formset.forms] == [
        ("", OrderStatus.PLACED),
        (OrderStatus.PLACED, OrderStatus.APPROVED),
        (OrderStatus.APPROVED, OrderStatus.FULFILLED),
    ]


def test_orders_are_never_added_edited_or_deleted(pm_client, program, shop):
    order = place(member("ana@dealer.example", program=program), program, [(shop["mug"], 1)])
    assert pm_client.get(reverse("admin:rewards_redemptionorder_add")).status_code == 403
    assert pm_client.post(change(order), {"status": "delivered"}).status_code == 403
    delete = reverse("admin:rewards_redemptionorder_delete", args=[order.pk])
    assert pm_client.post(delete, {"post": "yes"}).status_code == 403
    assert status_of(order) == OrderStatus.APPROVED


# Orders: actions ------------------------------------------------------------------------------------


def test_approve_moves_waiting_orders_and_refuses_the_others(pm_client, program, shop, program_manager):
    waiting = place(member("a@x.example", program=program), program, [(shop["big"], 1)])
    approved = place(member("b@x.example", program=program), program, [(shop["mug"], 1)])

    response = run_action(pm_client, "approve", [waiting, approved])

    assert messages_of(response) == [
        f"Order {approved.pk} is approved and cannot become approved.",
        f"Approved 1 order: Order {waiting.pk}.",
    ]
    assert (status_of(waiting), status_of(approved)) == (OrderStatus.APPROVED, OrderStatus.APPROVED)
    event = waiting.events.last()
    assert (event.from_status, event.to_status, event.actor) == (
        OrderStatus.PLACED,
        OrderStatus.APPROVED,
        program_manager,
    )
    assert approved.events.count() == 2


def test_reject_first_asks_for_a_reason_and_changes_nothing(pm_client, program, shop):
    waiting = place(member("a@x.example", program=program), program, [(shop["big"], 1)])
    response = run_action(pm_client, "reject", [waiting])
    assert response.templates[0].name == "admin/loyalty/action_form.html"
    assert f"Order {waiting.pk} — a@x.example, 2,000 points, Placed, waiting for approval" in response.text
    empty = run_action(pm_client, "reject", [waiting], apply="Reject and refund", reason=" ")
    assert empty.context["form"].errors == {"reason": ["This field is required."]}
    assert status_of(waiting) == OrderStatus.PLACED


def test_reject_with_a_reason_refunds_points_and_stock(pm_client, program, shop, program_manager):
    person = member("a@x.example", program=program)
    waiting = place(person, program, [(shop["big"], 1)])

    response = run_action(pm_client, "reject", [waiting], apply="Reject and refund", reason="Out of budget")

    assert messages_of(response) == [f"Rejected and refunded 1 order: Order {waiting.pk}."]
    waiting.refresh_from_db()
    shop["big"].refresh_from_db()
    assert (waiting.status, waiting.decision_reason, shop["big"].stock) == (OrderStatus.REJECTED, "Out of budget", 2)
    assert available(person, program) == 5000
    event = waiting.events.last()
    assert (event.to_status, event.actor, event.note) == (OrderStatus.REJECTED, program_manager, "Out of budget")
    assert ledger_problems() == []


def test_cancel_refunds_approved_orders_and_refuses_delivered_ones(pm_client, program, shop, program_manager):
    person = member("a@x.example", program=program)
    approved = place(person, program, [(shop["mug"], 1)])
    delivered = place(member("b@x.example", program=program), program, [(shop["mug"], 1)])
    for to in (OrderStatus.FULFILLED, OrderStatus.DELIVERED):
        services.order_transition(order=delivered, to=to, actor=program_manager, tracking_number="T1")

    response = run_action(pm_client, "cancel", [approved, delivered], apply="Cancel and refund", reason="Discontinued")

    assert messages_of(response) == [
        f"Order {delivered.pk} is delivered and cannot become cancelled.",
        f"Cancelled and refunded 1 order: Order {approved.pk}.",
    ]
    assert (status_of(approved), status_of(delivered)) == (OrderStatus.CANCELLED, OrderStatus.DELIVERED)
    assert available(person, program) == 5000


def test_mark_fulfilled_page_asks_for_each_orders_tracking_number(pm_client, program, shop):
    to_ship = place(member("a@x.example", program=program), program, [(shop["mug"], 2)])
    waiting = place(member("b@x.example", program=program), program, [(shop["big"], 1)])
    response = run_action(pm_client, "mark_fulfilled", [to_ship, waiting])
    assert response.templates[0].name == "admin/rewards/redemptionorder/mark_fulfilled.html"
    assert f'name="tracking_{to_ship.pk}"' in response.text
    assert f'name="tracking_{waiting.pk}"' not in response.text
    assert "Cannot be marked fulfilled: it is placed, waiting for approval." in response.text
    assert "2 × Mug" in response.text


def test_mark_fulfilled_without_a_tracking_number_changes_nothing(pm_client, program, shop):
    to_ship = place(member("a@x.example", program=program), program, [(shop["mug"], 1)])
    arranged = place(member("b@x.example", program=program), program, [(shop["seminar"], 1)])
    data = {f"tracking_{to_ship.pk}": "", f"carrier_{to_ship.pk}": "", "carrier": ""}
    response = run_action(pm_client, "mark_fulfilled", [to_ship, arranged], apply="Mark fulfilled", **data)
    assert response.context["form"].errors == {
        f"carrier_{to_ship.pk}": [f"Order {to_ship.pk} ships to an address: enter its carrier."],
        f"tracking_{to_ship.pk}": [f"Order {to_ship.pk} ships to an address: enter its tracking number."],
    }
    assert (status_of(to_ship), status_of(arranged)) == (OrderStatus.APPROVED, OrderStatus.APPROVED)
    assert not OrderEvent.objects.filter(to_status=OrderStatus.FULFILLED).exists()


def test_mark_fulfilled_records_each_tracking_number_and_skips_what_cannot_move(
    pm_client, program, shop, program_manager
):
    first = place(member("a@x.example", program=program), program, [(shop["mug"], 1)])
    second = place(member("b@x.example", program=program), program, [(shop["mug"], 1)])
    arranged = place(member("c@x.example", program=program), program, [(shop["seminar"], 1)])
    waiting = place(member("d@x.example", program=program), program, [(shop["big"], 1)])
    data = {
        "carrier": " DHL ",
        f"tracking_{first.pk}": "JD0001",
        f"carrier_{second.pk}": "UPS",
        f"tracking_{second.pk}": "1Z999",
    }

    response = run_action(
        pm_client, "mark_fulfilled", [first, second, arranged, waiting], apply="Mark fulfilled", **data
    )

    assert messages_of(response) == [
        f"Order {waiting.pk} is placed, waiting for approval and cannot become fulfilled.",
        f"Fulfilled 3 orders: Order {first.pk}, Order {second.pk}, Order {arranged.pk}.",
    ]
    orders = [first, second, arranged, waiting]
    for order in orders:
        order.refresh_from_db()
    assert [(o.status, o.carrier, o.tracking_number) for o in orders] == [
        (OrderStatus.FULFILLED, "DHL", "JD0001"),
        (OrderStatus.FULFILLED, "UPS", "1Z999"),
        (OrderStatus.FULFILLED, "", ""),
        (OrderStatus.PLACED, "", ""),
    ]
    assert first.events.last().actor == program_manager


def test_mark_delivered_moves_fulfilled_orders_only(pm_client, program, shop, program_manager):
    shipped = place(member("a@x.example", program=program), program, [(shop["mug"], 1)])
    services.order_transition(order=shipped, to=OrderStatus.FULFILLED, actor=program_manager, tracking_number="T")
    approved = place(member("b@x.example", program=program), program, [(shop["mug"], 1)])
    response = run_action(pm_client, "mark_delivered", [shipped, approved])
    assert messages_of(response) == [
        f"Order {approved.pk} is approved and cannot become delivered.",
        f"Recorded the delivery of 1 order: Order {shipped.pk}.",
    ]
    assert (status_of(shipped), status_of(approved)) == (OrderStatus.DELIVERED, OrderStatus.APPROVED)


# Orders: supplier file ------------------------------------------------------------------------------


def test_csv_supplier_file_has_one_row_per_line_to_ship(pm_client, program, shop):
    ana = member("ana@dealer.example", "Dealer Ltd", program)
    first = place(ana, program, [(shop["mug"], 2), (shop["card"], 1), (shop["seminar"], 1)])
    address = {
        **ADDRESS,
        "name": 'Ben "the builder" Ó',
        "street": "Line 1,\nLine 2",
        "postcode": "01067",
        "phone": "+49 30 1",
    }
    second = place(member("ben@other.example", "Other Ltd", program), program, [(shop["mug"], 1)], address=address)

    response = run_action(pm_client, "export_supplier_csv", [first, second], follow=False)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="supplier-file-')
    assert response["Content-Disposition"].endswith('.csv"')
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeffOrder,Order date,")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    placed = {order.pk: order.created_at for order in RedemptionOrder.objects.all()}
    from django.utils import timezone

    def when(pk):
        return timezone.localtime(placed[pk]).strftime("%Y-%m-%d %H:%M")

    assert rows == [
        ["Order", "Order date", "SKU", "Reward", "Quantity", "Recipient", "Street", "Postcode", "City", "Country",
         "Phone", "Member e-mail", "Partner"],
        [str(first.pk), when(first.pk), "MUG-1", "Mug", "2", "Ana Kovač", "Hauptstr. 5", "10115", "Berlin", "Germany",
         "", "ana@dealer.example", "Dealer Ltd"],
        [str(second.pk), when(second.pk), "MUG-1", "Mug", "1", 'Ben "the builder" Ó', "Line 1,\nLine 2", "01067",
         "Berlin", "Germany", "'+49 30 1", "ben@other.example", "Other Ltd"],
    ]  # fmt: skip


def test_xlsx_supplier_file_is_a_workbook_with_one_row_per_line(pm_client, program, shop):
    orders = [place(member(f"m{i}@x.example", program=program), program, [(shop["mug"], 1)]) for i in range(3)]
    response = run_action(pm_client, "export_supplier_xlsx", orders, follow=False)
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"].endswith('.xlsx"')
    with zipfile.ZipFile(io.BytesIO(response.content)) as workbook:
        assert '<sheet name="Supplier file" sheetId="1"' in workbook.read("xl/workbook.xml").decode()
        sheet = workbook.read("xl/worksheets/sheet1.xml").decode()
    assert sheet.count("<row ") == 4


def test_export_refuses_orders_that_cannot_go_to_the_supplier(pm_client, program, shop):
    approved = place(member("a@x.example", program=program), program, [(shop["mug"], 1)])
    waiting = place(member("b@x.example", program=program), program, [(shop["big"], 1)])
    response = run_action(pm_client, "export_supplier_csv", [approved, waiting])
    assert response.redirect_chain == [(changelist("redemptionorder"), 302)]
    assert messages_of(response) == [
        f"Only approved or fulfilled orders go to the supplier, but order {waiting.pk} is placed, waiting for "
        "approval. Nothing was exported."
    ]


def test_export_with_nothing_to_ship_says_so(pm_client, program, shop):
    arranged = place(member("a@x.example", program=program), program, [(shop["seminar"], 1)])
    response = run_action(pm_client, "export_supplier_xlsx", [arranged])
    assert messages_of(response) == ["None of the selected orders has items to ship. Nothing was exported."]
