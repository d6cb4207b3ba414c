"""A sales rep spends points on a phone: catalogue, cart, checkout, codes, statement and orders."""

import re

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import Page, expect

from loyalty.services import ledger
from rewards.constants import OrderStatus
from rewards.models import CartItem, RedemptionOrder, VoucherCode
from tests.e2e.axe import axe_check
from tests.e2e.pages import main_navigation, navigate_to, open_navigation, sign_in
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import PASSWORD, MemberFactory
from tests.rewards.factories import ADDRESS, CodeRewardFactory, MerchandiseFactory, RewardFactory

EARNED = 1000
EARN_EXPLANATION = "100 units × 10 pts = 1,000"
FLASK_PRICE, FLASK_QUANTITY, FLASK_STOCK = 150, 2, 10
CARD_PRICE = 200
BALANCE_AFTER = EARNED - FLASK_PRICE * FLASK_QUANTITY - CARD_PRICE  # 500


def points_text(points: int) -> re.Pattern:
    """A number as a person reads it, with or without the thousands separator ("1,000" or "1000")."""
    return re.compile(r"(^|\D)" + f"{points:,}".replace(",", ",?") + r"(\D|$)")


@pytest.fixture
def shop(e2e_db):
    """A running program, an active sales rep with 1,000 earned points, and three rewards."""
    program = ProgramFactory(name="Aqua Partners 2025", currency_name="AquaPoints", order_approval_threshold=5000)
    rep = MemberFactory(
        partner__name="Northwind Heating Ltd",
        user__email="sam.sales@northwind.example",
        user__full_name="Sam Sales",
    )
    EmailAddress.objects.create(user=rep.user, email=rep.user.email, verified=True, primary=True)
    ledger.earn(
        account=ledger.member_account(program=program, member=rep),
        points=EARNED,
        key=f"e2e-earn-{rep.pk}",
        source_type="sale",
        source_id="INV-2041",
        explanation=EARN_EXPLANATION,
    )
    return {
        "program": program,
        "rep": rep,
        "flask": MerchandiseFactory(
            program=program,
            name="Insulated steel flask",
            description="Keeps coffee hot on site for 12 hours.",
            points_price=FLASK_PRICE,
            stock=FLASK_STOCK,
        ),
        "card": CodeRewardFactory(program=program, name="Fuel card 20 EUR", points_price=CARD_PRICE, codes=3),
        "trip": RewardFactory(program=program, name="Weekend in Lisbon", points_price=25_000),
    }


def add_to_cart_and_check_out(page: Page, reward_name: str, quantity: int) -> None:
    """From the catalogue: open the reward, put `quantity` in the cart, and go on to the checkout."""
    page.get_by_role("link", name=reward_name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(reward_name)
    axe_check(page)
    page.get_by_label("Quantity", exact=True).fill(str(quantity))
    page.get_by_role("button", name="Add to cart").click()
    expect(page).to_have_url("/rewards/cart/")
    expect(page.get_by_role("status").filter(has_text=f"{reward_name} × {quantity} is in your cart.")).to_be_visible()
    axe_check(page)
    page.get_by_role("link", name="Check out").click()
    expect(page).to_have_url("/rewards/checkout/member/")
    axe_check(page)


def test_sales_rep_redeems_merchandise_and_a_code_and_sees_both_in_statement_and_orders(shop, open_page):
    rep, flask, card = shop["rep"], shop["flask"], shop["card"]
    page = open_page()

    # The rep signs in and sees their balance on the home page and, once opened, in the navigation.
    sign_in(page, rep.user.email, PASSWORD)
    expect(page).to_have_url("/")
    expect(page.get_by_test_id("home-available")).to_have_text(points_text(EARNED))
    axe_check(page)
    open_navigation(page)
    expect(main_navigation(page).get_by_test_id("nav-balance")).to_have_text(points_text(EARNED))

    # Rewards, from the navigation: everything first, then only what 1,000 points buy.
    main_navigation(page).get_by_role("link", name="Rewards", exact=True).click()
    expect(page).to_have_url("/rewards/")
    grid = page.locator("#reward-grid")
    for name in (flask.name, card.name, "Weekend in Lisbon"):
        expect(grid.get_by_role("link", name=name, exact=True)).to_be_visible()
    axe_check(page)
    page.get_by_label("Only what I can afford").check()
    expect(page).to_have_url(re.compile(r"[?&]affordable=on"))
    expect(page.locator("#reward-count")).to_have_text("2 rewards match")  # the live region, for screen readers
    expect(grid.get_by_role("link", name="Weekend in Lisbon")).to_have_count(0)
    expect(grid.get_by_role("link", name=flask.name, exact=True)).to_be_visible()
    axe_check(page)

    # Two flasks, shipped to the address typed in at checkout.
    add_to_cart_and_check_out(page, flask.name, FLASK_QUANTITY)
    page.get_by_label("Recipient").fill(ADDRESS["name"])
    page.get_by_label("Street and number").fill(ADDRESS["street"])
    page.get_by_label("Postcode").fill(ADDRESS["postcode"])
    page.get_by_label("City").fill(ADDRESS["city"])
    page.get_by_label("Country").fill(ADDRESS["country"])
    page.get_by_role("button", name=re.compile(r"^Redeem")).click()
    flask_order = RedemptionOrder.objects.get(lines__reward=flask)
    expect(page).to_have_url(f"/rewards/orders/{flask_order.pk}/")
    expect(page.get_by_role("status").filter(has_text=f"Order {flask_order.pk} is confirmed.")).to_be_visible()
    expect(page.locator("main address")).to_contain_text(ADDRESS["street"])
    axe_check(page)

    # A fuel card: no address asked, and the code is on the order page at once.
    navigate_to(page, "Rewards", "/rewards/")
    add_to_cart_and_check_out(page, card.name, 1)
    expect(page.get_by_label("Street and number")).to_have_count(0)
    page.get_by_role("button", name=re.compile(r"^Redeem")).click()
    card_order = RedemptionOrder.objects.get(lines__reward=card)
    expect(page).to_have_url(f"/rewards/orders/{card_order.pk}/")
    expect(page.get_by_role("status").filter(has_text=f"Order {card_order.pk} is confirmed.")).to_be_visible()
    code = VoucherCode.objects.get(order_line__order=card_order).code
    expect(page.locator(".voucher-code")).to_have_text(code)
    axe_check(page)

    # The statement explains the earn and both spends, newest first, and shows the new balance.
    navigate_to(page, re.compile(r"^Points"), "/points/")
    entries = page.locator("#entries tbody tr")
    expect(entries).to_have_count(3)
    expect(entries.nth(0)).to_contain_text(f"Order {card_order.pk}: 1 × {card.name}")
    expect(entries.nth(0)).to_contain_text(f"-{CARD_PRICE}")
    expect(entries.nth(1)).to_contain_text(f"Order {flask_order.pk}: {FLASK_QUANTITY} × {flask.name}")
    expect(entries.nth(1)).to_contain_text(f"-{FLASK_PRICE * FLASK_QUANTITY}")
    expect(entries.nth(2)).to_contain_text(EARN_EXPLANATION)
    expect(page.get_by_test_id("available")).to_have_text(points_text(BALANCE_AFTER))
    expect(page.get_by_test_id("nav-balance")).to_have_text(points_text(BALANCE_AFTER))
    axe_check(page)

    # Both orders are listed.
    navigate_to(page, "Orders", "/rewards/orders/")
    for order in (flask_order, card_order):
        expect(page.get_by_role("link", name=f"Order {order.pk}", exact=True)).to_be_visible()
    axe_check(page)

    flask.refresh_from_db()
    assert flask.stock == FLASK_STOCK - FLASK_QUANTITY
    assert (flask_order.status, RedemptionOrder.objects.get(pk=card_order.pk).status) == (
        OrderStatus.APPROVED,
        OrderStatus.FULFILLED,
    )
    assert ledger.member_account(program=shop["program"], member=rep).available == BALANCE_AFTER
    assert not CartItem.objects.filter(member=rep).exists()


def test_checkout_without_a_delivery_address_shows_the_errors_and_places_no_order(shop, open_page):
    rep, flask = shop["rep"], shop["flask"]
    CartItem.objects.create(member=rep, reward=flask, quantity=1)
    page = open_page()
    sign_in(page, rep.user.email, PASSWORD)
    expect(page).to_have_url("/")

    page.goto("/rewards/checkout/member/")
    page.get_by_label("Recipient").fill("")
    page.get_by_role("button", name=re.compile(r"^Redeem")).click()

    expect(page).to_have_url("/rewards/checkout/member/")
    for label in ("Recipient", "Street and number", "Postcode", "City", "Country"):
        field = page.get_by_label(label)
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile("This field is required"))
    axe_check(page)

    flask.refresh_from_db()
    assert RedemptionOrder.objects.count() == 0
    assert flask.stock == FLASK_STOCK
    assert ledger.member_account(program=shop["program"], member=rep).available == EARNED
    assert CartItem.objects.filter(member=rep, reward=flask).exists()
