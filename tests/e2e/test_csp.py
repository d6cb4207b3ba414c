"""The member site and the back office work under the Content-Security-Policy (loyalty/settings.py): the pages a
member and a program manager open load and run with no console error, and so with no CSP violation (Chromium
prints each refused script, style or image as a console error)."""

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Page, expect

from loyalty.constants import TierMetric
from loyalty.services.tiers import tier_evaluate
from tests.e2e.pages import sign_in
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.loyalty.test_tiers import sale
from tests.partners.factories import PASSWORD, PartnerFactory, ProgramManagerFactory
from tests.rewards.factories import MerchandiseFactory

# Report violations from the page itself too, in case a browser stops printing them.
REPORT_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (event) =>
    console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`));"""


def watch_for_errors(page: Page) -> list[str]:
    """Every console error and uncaught exception of `page` from now on, CSP violations included."""
    errors: list[str] = []
    page.add_init_script(script=REPORT_VIOLATIONS)
    page.on(
        "console", lambda msg: errors.append(f"{msg.text} ({msg.location['url']})") if msg.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    return errors


def visit(page: Page, path: str, errors: list[str]) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, path
    page.wait_for_load_state("load")
    assert "'self'" in response.headers["content-security-policy"], path
    assert errors == [], f"{path}: {errors}"


@pytest.fixture
def member_with_tier_and_rewards(owner):
    """The owner of a partner halfway to the next tier (the home page draws a progress bar), with a reward."""
    program = ProgramFactory(tier_metric=TierMetric.SALES_AMOUNT, tier_window_days=365, money_currency="EUR")
    TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0"))
    TierFactory(program=program, name="Silver", rank=1, threshold=Decimal("5000"))
    sale(program, owner.partner, "2500.00")
    tier_evaluate(program=program, partner=owner.partner)
    MerchandiseFactory(program=program, name="Insulated steel flask", points_price=150, stock=10)
    return owner


def test_the_member_site_runs_under_the_content_security_policy(open_page, member_with_tier_and_rewards):
    page = open_page()
    errors = watch_for_errors(page)

    visit(page, reverse("account_login"), errors)
    sign_in(page, member_with_tier_and_rewards.user.email, PASSWORD)
    expect(page).to_have_url(reverse("home"))
    # The tier progress bar is drawn without a style attribute: half of the way to Silver fills half of it.
    track = page.get_by_role("progressbar")
    expect(track).to_be_visible()
    fill = track.locator(".progress-bar").bounding_box()
    assert fill["width"] == pytest.approx(track.bounding_box()["width"] / 2, abs=2)
    assert errors == []
    visit(page, reverse("home"), errors)
    visit(page, reverse("catalogue"), errors)
    expect(page.get_by_role("link", name="Insulated steel flask")).to_be_visible()
    # The claim form's own script (with the page's nonce) adds a line without a trip to the server.
    visit(page, reverse("claim_new"), errors)
    lines = page.locator("#claim-lines [data-line]:not([hidden])")
    before = lines.count()
    page.locator("#add-line").click()
    expect(lines).to_have_count(before + 1)
    # Bootstrap's script opens the navigation collapsed at phone width.
    page.locator(".navbar-toggler").click()
    expect(page.locator(".navbar-toggler")).to_have_attribute("aria-expanded", "true")
    assert errors == []


def test_the_back_office_runs_under_the_content_security_policy(open_page, e2e_db, live_server):
    manager = ProgramManagerFactory()
    partner = PartnerFactory(name="Northwind Heating Ltd")
    browser = Client()
    browser.force_login(manager)
    page = open_page()
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": browser.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    errors = watch_for_errors(page)

    visit(page, reverse("admin:index"), errors)
    visit(page, reverse("admin:partners_partner_changelist"), errors)
    expect(page.get_by_role("link", name="Northwind Heating Ltd")).to_be_visible()
    visit(page, reverse("admin:loyalty_salesclaim_changelist"), errors)
    visit(page, reverse("admin:partners_partner_change", args=[partner.pk]), errors)
    # The admin's own scripts run: the "Save" row and the related-object widgets are drawn.
    expect(page.locator("input[name=_save]")).to_be_visible()
    assert re.search(r"Change partner", page.title())
    assert errors == []
