"""An account manager's portfolio on a 390 px phone: reached from the navigation, partners at risk first with their
reasons, filtered without a page load, each partner's overview one tap away with its charts drawn under the
Content-Security-Policy; nothing wider than the screen and no serious accessibility problem (axe-core). And the
owner's company dashboard and a member's progress on the narrowest phone (360 px)."""

import re

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Page, expect

from loyalty.services import ledger
from tests.analytics.test_health import earned_now, points, sales, team
from tests.e2e.axe import axe_check
from tests.e2e.pages import navigate_to, sign_in
from tests.e2e.test_csp import watch_for_errors
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import PASSWORD, AccountManagerFactory, PartnerFactory

OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def portfolio(e2e_db):
    """Ann looks after a partner whose sales fell by a third and whose team went quiet, and two doing well."""
    program = ProgramFactory(name="Aqua Rewards", currency_name="AquaPoints", money_currency="EUR")
    ann = AccountManagerFactory(email="ann@maker.example", full_name="Ann Manager")
    falling = PartnerFactory(name="Northwind Heating, Plumbing and Water Treatment Services Ltd", account_manager=ann)
    team(falling, 6)
    earned_now(program, falling.members.first(), key="falling")
    sales(program, falling, this_year="6500", last_year="10000")
    for name in ("Lakeside Water Ltd", "Harbour Installers GmbH"):
        partner = PartnerFactory(name=name, account_manager=ann)
        for n, member in enumerate(team(partner, 2)):
            earned_now(program, member, key=f"{name}-{n}")
        sales(program, partner, this_year="12000", last_year="10000")
        points(program, partner, issued=1000, redeemed=300)
        ledger.earn(account=ledger.partner_account(program=program, partner=partner), points=2500, key=name)
    return ann, falling


@pytest.fixture
def ann_page(portfolio, new_context, live_server, client) -> Page:
    """Ann's browser on a 390 px phone, signed in (the test client's session: staff sign in with an authenticator
    app, which the sign-in form would ask for)."""
    client.force_login(portfolio[0])
    context = new_context(base_url=live_server.url)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    return context.new_page()


def test_the_portfolio_fits_a_phone_puts_partners_at_risk_first_and_leads_to_each_overview(ann_page, portfolio):
    page = ann_page
    _, falling = portfolio
    errors = watch_for_errors(page)
    page.goto(reverse("home"))

    navigate_to(page, "My portfolio", reverse("portfolio"))

    expect(page.get_by_role("heading", name="My portfolio")).to_be_visible()
    rows = page.get_by_test_id("portfolio-row")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text(falling.name)
    expect(rows.first).to_contain_text("At risk")
    expect(rows.first).to_contain_text("sales \u221235 % vs last year")
    assert page.evaluate(OVERFLOW) <= 0, "the portfolio is wider than the phone"
    axe_check(page)

    page.get_by_label("At risk only").check()
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/portfolio/\?.*at_risk=on"))

    page.get_by_role("link", name=falling.name).click()
    expect(page).to_have_url(reverse("partner_overview", args=[falling.pk]))
    expect(page.get_by_role("heading", name=falling.name)).to_be_visible()
    expect(page.locator('canvas[data-chart="sales-months-data"]')).to_have_attribute("height", re.compile(r"^\d+$"))
    assert page.evaluate(OVERFLOW) <= 0, "the overview is wider than the phone"
    axe_check(page)
    assert errors == [], errors


def test_the_owners_company_dashboard_and_progress_fit_a_360_px_screen(open_page, owner):
    program = ProgramFactory(name="Aqua Rewards", currency_name="AquaPoints", money_currency="EUR")
    earned_now(program, owner, key="owner")
    for n, member in enumerate(team(owner.partner, 3)):
        earned_now(program, member, key=f"team-{n}")
    sales(program, owner.partner, this_year="8000", last_year="10000")
    page = open_page()
    errors = watch_for_errors(page)
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, owner.user.email, PASSWORD)
    expect(page).to_have_url(reverse("home"))

    for path in (reverse("company_dashboard"), reverse("my_progress"), reverse("team")):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        expect(page.locator("main")).to_be_visible()
        assert page.evaluate(OVERFLOW) <= 0, f"{path} is wider than 360 px"
        axe_check(page)
    assert errors == [], errors


def test_the_owners_menu_and_team_table_do_not_push_a_laptop_screen_sideways(open_page, owner):
    """An owner's menu is the longest and the team table has the earnings columns: at 1,280 px the menu wraps and the
    table scrolls in its own box, the page itself never does."""
    program = ProgramFactory(name="Aqua Rewards", currency_name="AquaPoints", money_currency="EUR")
    for n, member in enumerate(team(owner.partner, 3)):
        earned_now(program, member, key=f"team-{n}")
    page = open_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, owner.user.email, PASSWORD)
    expect(page).to_have_url(reverse("home"))

    for path in (reverse("home"), reverse("team"), reverse("company_dashboard")):
        page.goto(path)
        assert page.evaluate(OVERFLOW) <= 0, f"{path} is wider than 1,280 px"
