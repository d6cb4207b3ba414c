"""Steps every browser test takes the same way: signing in and using the (collapsed, at 390 px) navigation."""

import re

from playwright.sync_api import Locator, Page, expect

from tests.e2e.axe import axe_check


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    axe_check(page)
    page.locator('input[name="login"]').fill(email)
    page.locator('input[name="password"]').fill(password)
    page.locator('form:has(input[name="login"]) [type="submit"]').click()


def main_navigation(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def open_navigation(page: Page) -> None:
    """At 390 px the navbar is collapsed behind its toggler."""
    toggler = page.locator(".navbar-toggler")
    expect(toggler).to_be_visible()
    toggler.click()
    expect(toggler).to_have_attribute("aria-expanded", "true")


def navigate_to(page: Page, link_name: str | re.Pattern, url: str) -> None:
    """Open the collapsed navigation, follow one of its links, and check where it led."""
    open_navigation(page)
    main_navigation(page).get_by_role("link", name=link_name, exact=True).click()
    expect(page).to_have_url(url)
