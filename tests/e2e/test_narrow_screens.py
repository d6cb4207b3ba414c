"""The owner's pages drawn by the shared layouts and includes (filter form, member table, next cards, confirmation
buttons, error page) fit a 360 px phone: nothing wider than the screen, and no serious accessibility problem."""

from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.e2e.axe import axe_check
from tests.e2e.pages import sign_in
from tests.partners.factories import PASSWORD, InvitationFactory

NARROWEST = {"width": 360, "height": 740}
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _fits(page: Page, path: str, status: int = 200) -> None:
    response = page.goto(path)
    assert response is not None and response.status == status, path
    expect(page.locator("main")).to_be_visible()
    assert page.evaluate(OVERFLOW) <= 0, f"{path} is wider than {NARROWEST['width']} px"
    axe_check(page)


def test_the_owners_pages_fit_a_360_px_screen(open_page, owner):
    invited = InvitationFactory(member__partner=owner.partner).member
    page = open_page()
    page.set_viewport_size(NARROWEST)
    sign_in(page, owner.user.email, PASSWORD)
    expect(page).to_have_url(reverse("home"))

    for name in ("home", "team", "company", "claim_list", "order_list", "profile"):
        _fits(page, reverse(name))
    _fits(page, f"{reverse('team')}?q=nobody")
    _fits(page, reverse("invitation_cancel", args=[invited.pk]))
    _fits(page, reverse("partner_detail", args=[owner.partner.pk]))
    _fits(page, "/no-such-page/", status=404)
