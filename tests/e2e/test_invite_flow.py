import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Page, expect

from partners.constants import MemberStatus
from partners.models import Member
from tests.e2e.axe import axe_check
from tests.e2e.pages import open_navigation, sign_in
from tests.partners.factories import PASSWORD, InvitationFactory

REP_EMAIL = "sam.sales@northwind.example"
REP_PASSWORD = "Blue-kettle-47-orbit"
# The e-mail carries the message's short link, which leads to the invitation's sign-up page.
INVITATION_LINK = re.compile(r"https?://\S+/m/[\w-]+")


def expect_row_status(page: Page, email: str, status: MemberStatus) -> None:
    """The team table's row for this person shows exactly this status label."""
    row = page.locator("tr", has_text=email)
    expect(row.get_by_text(str(status.label), exact=True)).to_be_visible()


def invitation_link(outbox: list, live_server_url: str) -> str:
    assert len(outbox) == 1, [m.subject for m in outbox]
    message = outbox[0]
    assert message.to == [REP_EMAIL]
    link = INVITATION_LINK.search(message.body).group(0)
    assert link.startswith(f"{live_server_url}/m/")
    return link


def test_owner_invites_a_sales_rep_who_joins_and_is_approved(owner, open_page, live_server, mailoutbox):
    partner_name = owner.partner.name

    # The owner signs in on their phone and opens the team page from the navigation.
    owner_page = open_page()
    sign_in(owner_page, owner.user.email, PASSWORD)
    expect(owner_page).to_have_url("/")
    axe_check(owner_page)
    open_navigation(owner_page)
    owner_page.get_by_role("navigation", name="Main").get_by_role("link", name="Team", exact=True).click()
    expect(owner_page).to_have_url("/team/")
    axe_check(owner_page)

    # They invite a sales rep.
    owner_page.locator("#id_email").fill(REP_EMAIL)
    owner_page.locator("#id_role").select_option(label="Sales rep")
    owner_page.get_by_role("button", name="Send invitation").click()
    expect(owner_page.get_by_role("status").filter(has_text="Invitation sent")).to_contain_text(REP_EMAIL)
    expect_row_status(owner_page, REP_EMAIL, MemberStatus.INVITED)
    axe_check(owner_page)

    # The rep opens the e-mailed link in their own browser, chooses a password and lands at home.
    rep_page = open_page()
    rep_page.goto(invitation_link(mailoutbox, live_server.url))
    expect(rep_page.locator("main")).to_contain_text(partner_name)
    axe_check(rep_page)
    rep_page.locator("#id_full_name").fill("Sam Sales")
    rep_page.locator("#id_password1").fill(REP_PASSWORD)
    rep_page.locator("#id_password2").fill(REP_PASSWORD)
    rep_page.get_by_role("button", name=re.compile(r"^Join")).click()
    expect(rep_page).to_have_url("/")
    expect(rep_page.locator("main")).to_contain_text(partner_name)
    expect(rep_page.locator("main")).to_contain_text("waiting for approval")
    axe_check(rep_page)

    # The owner sees them waiting and approves them.
    owner_page.reload()
    expect_row_status(owner_page, REP_EMAIL, MemberStatus.PENDING_APPROVAL)
    axe_check(owner_page)
    owner_page.locator("tr", has_text=REP_EMAIL).get_by_role("button", name="Approve").click()
    expect_row_status(owner_page, REP_EMAIL, MemberStatus.ACTIVE)
    axe_check(owner_page)

    member = Member.objects.select_related("user").get(user__email=REP_EMAIL)
    assert (member.partner_id, member.role.code, member.status) == (owner.partner_id, "sales", MemberStatus.ACTIVE)
    assert member.user.full_name == "Sam Sales"


def test_a_used_invitation_link_says_so_instead_of_failing(e2e_db, open_page):
    InvitationFactory(
        token="used-link-token",
        member__status=MemberStatus.PENDING_APPROVAL,
        accepted_at=timezone.now() - timedelta(hours=1),
    )

    page = open_page()
    response = page.goto("/invitations/used-link-token/")

    assert response.status < 500
    expect(page.locator("main")).to_contain_text("This invitation has already been used.")
    expect(page.locator("#id_password1")).to_have_count(0)
    axe_check(page)
