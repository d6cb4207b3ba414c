"""Issue #10 point 15: the back office's claims queue fits a 1280×800 screen. The columns that decide the work
(flags, status, total) come first, and the table is no wider than its container: nothing hides behind a
horizontal scroll, even with every flag, long names and large totals."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.loyalty.factories import ProductFactory, ProgramFactory
from tests.loyalty.test_claims_services import TODAY, submit
from tests.partners.factories import MemberFactory, ProgramManagerFactory

DESKTOP = {"width": 1280, "height": 800}
# The table's and the page's overflow: how much wider than its container each is.
OVERFLOW = """() => {
  const results = document.querySelector("#changelist .results");
  const page = document.documentElement;
  return [results.scrollWidth - results.clientWidth, page.scrollWidth - page.clientWidth];
}"""


@pytest.fixture
def manager_page(e2e_db, new_context, live_server, client) -> Page:
    """A program manager's browser on a 1280×800 desktop screen, signed in (the session of the test client)."""
    client.force_login(ProgramManagerFactory(email="pm@maker.example"))
    context = new_context(base_url=live_server.url)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    return context.new_page()


@pytest.fixture
def queue(e2e_db):
    """A queue as long data makes it: every flag on one claim, long e-mails and partner names, large totals."""
    program = ProgramFactory(name="Aqua Rewards", claim_window_days=60, claim_auto_approve_below=Decimal("500"))
    odd = ProductFactory(
        sku="AQS-900-COMMERCIAL-TWIN", is_active=False, unusual_quantity=1, claim_max_amount=Decimal("50000000")
    )
    submit(MemberFactory(partner__name="Somebody Else Water Ltd"), program, number="NW-2611-48213")
    for index in range(8):
        member = MemberFactory(
            partner__name=f"Northwind Heating, Plumbing and Water Treatment Services {index} Ltd",
            user__email=f"christopher.montgomery-{index}@northwind-heating-and-plumbing.example",
        )
        submit(
            member,
            program,
            number="NW-2611-48213" if index == 0 else f"NW-2611-{48300 + index}",
            invoice_date=TODAY - timedelta(days=90 if index % 2 == 0 else 3),
            lines=[(odd, Decimal("25"), Decimal("12345678.90") if index == 0 else Decimal("999999.99"))],
        )


@pytest.mark.browser_context_args(viewport=DESKTOP, is_mobile=False, has_touch=False)
def test_the_claims_queue_puts_flags_status_and_total_first_and_fits_1280_px(manager_page, queue):
    page = manager_page
    response = page.goto(reverse("admin:loyalty_salesclaim_changelist"))
    assert response is not None and response.status == 200
    table = page.locator("#result_list")
    expect(table).to_be_visible()
    headers = [text.strip() for text in table.locator("thead th .text").all_text_contents()]
    assert headers[1:5] == ["Claim", "Flags", "Status", "Total"], headers
    expect(table.locator("tbody tr")).to_have_count(9)
    expect(table.locator("tbody tr").first.locator(".claim-flag")).to_have_count(4)

    table_overflow, page_overflow = page.evaluate(OVERFLOW)
    assert table_overflow <= 0, f"the claims table is {table_overflow} px wider than its container"
    assert page_overflow <= 0, f"the page is {page_overflow} px wider than the 1280 px screen"
    for name in ("Flags", "Status", "Total"):
        box = table.locator("thead th", has_text=name).bounding_box()
        assert box is not None and box["x"] + box["width"] <= DESKTOP["width"], f"{name} is off the screen"
