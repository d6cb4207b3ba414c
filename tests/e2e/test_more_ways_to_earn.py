"""The pages of referrals, equipment returns, co-marketing and prize draws fit a 360 px phone with their data on
them, and axe-core finds no serious accessibility problem; the "More ways to earn" menu opens and leads there."""

from django.urls import reverse
from playwright.sync_api import expect

from loyalty.constants import MdfStatus, ReferralStatus
from tests.e2e.pages import sign_in
from tests.e2e.test_narrow_screens import NARROWEST, _fits
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.factories_comarketing import MarketingFundFactory, MarketingRequestFactory
from tests.loyalty.factories_draws import opened
from tests.loyalty.factories_referrals import ReferralFactory
from tests.loyalty.factories_returns import CollectionPointFactory, EquipmentReturnFactory, ReturnTypeFactory
from tests.partners.factories import PASSWORD


def test_the_owners_pages_of_the_other_ways_to_earn_fit_a_360_px_screen(open_page, owner):
    program = ProgramFactory(name="Aqua Partners 2026", currency_name="AquaPoints")
    ReferralFactory(program=program, member=owner, company_name="Hotel Seeblick GmbH")
    ReferralFactory(program=program, member=owner, status=ReferralStatus.REJECTED, reason="They buy elsewhere.")
    kind = ReturnTypeFactory(program=program, name="Used softener resin tank")
    EquipmentReturnFactory(program=program, member=owner, return_type=kind, quantity=3)
    CollectionPointFactory(program=program, name="Depot North")
    fund = MarketingFundFactory(program=program, partner=owner.partner)
    request = MarketingRequestFactory(fund=fund, member=owner, title="Half-page advert in Haustechnik heute")
    MarketingRequestFactory(fund=fund, member=owner, status=MdfStatus.DECLINED, reason="Not about our products.")
    draw = opened(program=program, name="Spring prize draw")
    page = open_page()
    page.set_viewport_size(NARROWEST)
    sign_in(page, owner.user.email, PASSWORD)

    page.get_by_role("button", name="Open the menu").click()
    page.get_by_role("button", name="More ways to earn").click()
    page.get_by_role("link", name="Equipment returns").click()
    expect(page).to_have_url(reverse("return_list"))
    for name in ("referral_list", "referral_new", "return_list", "return_new", "mdf_overview", "mdf_request_new"):
        _fits(page, reverse(name))
    _fits(page, reverse("mdf_request_detail", args=[request.pk]))
    _fits(page, reverse("draw_list"))
    _fits(page, reverse("draw_detail", args=[draw.pk]))
    _fits(page, reverse("draw_verify", args=[draw.pk]))
