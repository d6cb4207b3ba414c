"""Issue #11: a member reads and marks their messages on a 390 px phone (htmx, under the Content-Security-Policy),
with axe-core clean on the inbox and the preferences page, and nothing wider than the screen."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from communications.constants import Channel, DeliveryStatus, Kind
from tests.communications.factories import DeliveryFactory
from tests.e2e.axe import axe_check
from tests.e2e.pages import sign_in
from tests.e2e.test_csp import watch_for_errors
from tests.partners.factories import PASSWORD

OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_a_member_reads_and_marks_messages_at_390_px(open_page, owner, live_server):
    now = timezone.now()
    for minutes, subject, link in [
        (3, "Welcome to the partner program", ""),
        (2, "Claim NW-2611-48213 approved: 1,250 points", "/claims/"),
        (1, "Order 7 shipped", ""),
    ]:
        DeliveryFactory(
            member=owner,
            kind=Kind.CLAIM_APPROVED,
            channel=Channel.INBOX,
            status=DeliveryStatus.DELIVERED,
            address="",
            subject=subject,
            body="A longer text that wraps on a narrow phone screen without pushing anything off it.",
            link=f"{live_server.url}{link}" if link else "",
            queued_at=now - timedelta(minutes=minutes),
        )
    page = open_page()
    errors = watch_for_errors(page)
    sign_in(page, owner.user.email, PASSWORD)
    expect(page).to_have_url(reverse("home"))

    bell = page.locator("#inbox-bell")
    expect(bell).to_be_visible()  # outside the collapsed menu
    expect(bell.get_by_test_id("inbox-unread")).to_contain_text("3")
    # The count sits on the bell's corner: the menu button stays on the brand's row (a walk saw it pushed down).
    toggler = page.locator(".navbar-toggler").bounding_box()
    assert abs(toggler["y"] - bell.bounding_box()["y"]) < toggler["height"], "the menu button wrapped"
    bell.click()
    expect(page).to_have_url(reverse("inbox"))
    expect(page.get_by_role("heading", name="Messages", level=1)).to_be_visible()
    axe_check(page)
    assert page.evaluate(OVERFLOW) <= 0, "the inbox is wider than the phone"

    order = page.locator("li", has=page.get_by_role("heading", name="Order 7 shipped"))
    order.get_by_role("button", name="Mark as read").click()
    expect(order.get_by_text("New", exact=True)).to_have_count(0)
    expect(bell.get_by_test_id("inbox-unread")).to_contain_text("2")
    axe_check(page)

    claim = page.locator("li", has=page.get_by_role("heading", name="Claim NW-2611-48213 approved"))
    claim.get_by_role("link", name="Open").click()
    expect(page).to_have_url(reverse("claim_list"))
    expect(page.locator("#inbox-bell").get_by_test_id("inbox-unread")).to_contain_text("1")

    page.goto(reverse("inbox"))
    page.get_by_role("button", name="Mark all as read").click()
    expect(page.locator("#inbox-bell").get_by_test_id("inbox-unread")).to_have_count(0)
    expect(page.get_by_text("New", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Mark all as read")).to_have_count(0)

    page.get_by_role("link", name="Message preferences").click()
    expect(page).to_have_url(reverse("message_preferences"))
    axe_check(page)
    assert page.evaluate(OVERFLOW) <= 0, "the preferences page is wider than the phone"
    assert errors == [], errors
