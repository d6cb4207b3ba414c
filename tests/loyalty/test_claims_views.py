"""The member site's claim pages: claiming from a phone, the list, a claim, correcting and withdrawing it, the
invoice file, the product suggestions, who may see what, and the pages' query counts."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.constants import ClaimFlag, ClaimStatus, RejectionReason
from loyalty.models import SalesClaim
from loyalty.services import claims as services
from partners.constants import MemberStatus
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.loyalty.test_claims_services import JPEG, PDF, TODAY, stored_files, submit, upload
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    ProgramManagerFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]
NEW = reverse("claim_new")
LIST = reverse("claim_list")


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints", claim_window_days=60, claim_auto_approve_below=Decimal("500"))


@pytest.fixture
def owner():
    return OwnerFactory(partner__name="Blue Water Ltd")


@pytest.fixture
def rep(owner):
    return MemberFactory(partner=owner.partner, user__full_name="Ana Rep")


def form_data(*, number="INV-100", day=None, lines=(), colleagues=(), total=None, **extra) -> dict:
    data = {
        "invoice_number": number,
        "invoice_date": (day or TODAY).isoformat(),
        "form-TOTAL_FORMS": str(total or max(len(lines), 1)),
        "form-INITIAL_FORMS": "0",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "50",
        "colleagues": [c.pk for c in colleagues],
        **extra,
    }
    for i, (product, quantity, amount) in enumerate(lines):
        data[f"form-{i}-product"] = product
        data[f"form-{i}-quantity"] = quantity
        data[f"form-{i}-amount"] = amount
    return data


def text(response) -> str:
    """The page's HTML with whitespace collapsed."""
    return re.sub(r"\s+", " ", response.content.decode())


def visible(response) -> str:
    """The page's text as read: tags, styles and scripts removed, whitespace collapsed."""
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" .", ".")


# Claiming -------------------------------------------------------------------------------------------


def test_new_claim_page_offers_one_line_the_camera_and_the_active_colleagues(client, program, rep, owner):
    MemberFactory(partner=rep.partner, status=MemberStatus.LEFT, user__full_name="Gone Person")
    client.force_login(rep.user)
    response = client.get(NEW)
    body = text(response)
    assert response.status_code == 200
    assert response.context["formset"].total_form_count() == 1
    assert 'accept="image/*,application/pdf" capture="environment"' in body
    assert 'inputmode="decimal"' in body and 'list="product-suggestions"' in body
    assert f'value="{TODAY.isoformat()}"' in body
    assert owner.user.full_name in body and "Gone Person" not in body and "Ana Rep (" not in body
    assert 'name="add_line"' in body


def test_a_member_claims_a_sale_with_the_form_and_lands_on_the_claim(client, program, rep, owner, private_media):
    RuleFactory(program=program, name="Softeners")
    product = ProductFactory(sku="AQ-1", name="AquaSoft")
    client.force_login(rep.user)
    data = form_data(
        number="inv 100",
        lines=[("AQ-1 — AquaSoft", "2", "100,50"), ("", "", "")],
        total=2,
        colleagues=[owner],
        document=upload(),
    )
    response = client.post(NEW, data, follow=True)
    claim = SalesClaim.objects.get()
    assert response.redirect_chain == [(reverse("claim_detail", args=[claim.pk]), 302)]
    assert (claim.invoice_number, claim.total_amount, claim.status) == ("INV100", Decimal("100.50"), "approved")
    assert [(line.product, line.quantity) for line in claim.lines.all()] == [(product, Decimal("2.000"))]
    assert list(claim.colleagues.all()) == [owner]
    assert f"Claim {claim.pk} is approved: the points are in your statement." in text(response)
    assert "Softeners v1: 2 units × 10 pts = 20" in text(response)
    assert len(stored_files(private_media)) == 1


def test_a_claim_waiting_for_review_says_so(client, program, rep):
    ProductFactory(sku="AQ-2")
    client.force_login(rep.user)
    response = client.post(NEW, form_data(lines=[("aq-2", "1", "900")], document=upload()), follow=True)
    claim = SalesClaim.objects.get()
    assert claim.status == ClaimStatus.SUBMITTED
    assert f"Claim {claim.pk} was sent. The program team reviews it" in text(response)


def test_form_errors_are_listed_at_the_top_and_shown_next_to_their_fields(client, program, rep, private_media):
    ProductFactory(sku="AQ-1", name="AquaSoft One")
    ProductFactory(sku="AQ-2", name="AquaSoft Two")
    ProductFactory(sku="OLD", name="Retired", is_active=False)
    client.force_login(rep.user)
    data = form_data(
        number="",
        lines=[("AquaSoft", "0", "10"), ("Retired", "1", "-5"), ("nothing like it", "1", "1")],
        document=upload("notes.jpg", b"hello, I am text"),
    )
    response = client.post(NEW, data)
    body = text(response)
    assert response.status_code == 200
    for error in (
        "The claim was not sent:",
        "Several products match “AquaSoft”: pick one from the list or type its SKU.",
        "No product in the catalogue matches “Retired”.",
        "No product in the catalogue matches “nothing like it”.",
        "Enter a quantity above 0.",
        "“notes.jpg” is not a photo (JPEG, PNG, WebP or HEIC) or a PDF.",
    ):
        assert error in body
    assert re.search(r'<input[^>]*name="invoice_number"[^>]*aria-invalid="true"', body)
    assert SalesClaim.objects.count() == 0 and stored_files(private_media) == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (lambda: upload("invoice.jpg", b"This is a text file with a .jpg name.\n"), "is not a photo"),
        (lambda: upload("huge.jpg", JPEG + b"\x00" * (11 * 1024 * 1024)), "The file is 11.0 MB; the largest"),
    ],
    ids=["text-renamed-jpg", "11-MB"],
)
def test_a_bad_upload_gets_a_clear_message_and_nothing_is_saved(client, program, rep, private_media, document, message):
    ProductFactory(sku="AQ-1")
    client.force_login(rep.user)
    response = client.post(NEW, form_data(lines=[("AQ-1", "1", "10")], document=document()))
    assert response.status_code == 200
    assert message in text(response)
    assert SalesClaim.objects.count() == 0 and stored_files(private_media) == []


def test_a_missing_invoice_file_is_asked_for(client, program, rep):
    ProductFactory(sku="AQ-1")
    client.force_login(rep.user)
    response = client.post(NEW, form_data(lines=[("AQ-1", "1", "10")]))
    assert "This field is required." in text(response) and SalesClaim.objects.count() == 0


def test_the_same_invoice_again_is_refused_on_the_invoice_number_field(client, program, rep):
    first = submit(rep, program, number="INV-7")
    ProductFactory(sku="AQ-1")
    client.force_login(rep.user)
    response = client.post(NEW, form_data(number="inv-7", lines=[("AQ-1", "1", "10")], document=upload()))
    errors = response.context["form"].errors["invoice_number"]
    assert errors[0].startswith(f"Invoice INV-7 is already claimed in claim {first.pk}")
    assert "Choose the invoice file again" in text(response)
    assert SalesClaim.objects.count() == 1


def test_add_line_without_javascript_shows_one_more_empty_line_and_keeps_what_was_typed(client, program, rep):
    client.force_login(rep.user)
    data = form_data(number="INV-5", lines=[("AQ-1 — AquaSoft", "3", "30")], add_line="1")
    response = client.post(NEW, data)
    body = text(response)
    assert response.status_code == 200
    assert response.context["formset"].total_form_count() == 2
    assert 'value="AQ-1 — AquaSoft"' in body and 'value="INV-5"' in body and 'name="form-1-product"' in body
    assert "The claim was not sent" not in body and not re.search(r'<input[^>]*aria-invalid="true"', body)
    assert SalesClaim.objects.count() == 0


def test_a_member_waiting_for_approval_is_told_they_cannot_claim_yet(client, program):
    pending = MemberFactory(status=MemberStatus.PENDING_APPROVAL)
    client.force_login(pending.user)
    response = client.get(NEW)
    assert "You can claim sales as soon as your manager approves it." in text(response)
    assert "form" not in response.context


def test_staff_without_a_membership_cannot_open_the_claim_form(client, program):
    client.force_login(AccountManagerFactory())
    assert client.get(NEW).status_code == 404


# Product suggestions --------------------------------------------------------------------------------


def test_product_suggestions_list_only_active_products_matching_in_one_query(client, program, rep):
    ProductFactory(sku="SOFT-1", name="AquaSoft Compact")
    ProductFactory(sku="SOFT-2", name="AquaSoft Family")
    ProductFactory(sku="SOFT-3", name="AquaSoft Old", is_active=False)
    ProductFactory(sku="RO-1", name="Reverse osmosis")
    client.force_login(rep.user)
    url = reverse("claim_product_search")
    client.get(url, {"q": "warm-up"})  # the session and the user are loaded once per request
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"form-3-product": "soft"}, headers={"HX-Request": "true"})
    product_queries = [q["sql"] for q in queries if "loyalty_product" in q["sql"]]
    assert len(product_queries) == 1
    assert re.findall(r'<option value="([^"]+)">', response.content.decode()) == [
        "SOFT-1 — AquaSoft Compact",
        "SOFT-2 — AquaSoft Family",
    ]
    assert "<html" not in response.content.decode()
    assert client.get(url, {"q": ""}).content.decode().strip() == ""


# Lists ----------------------------------------------------------------------------------------------


def test_my_claims_show_status_and_the_reason_of_a_rejection_and_filter_by_status(client, program, rep):
    manager = ProgramManagerFactory()
    waiting = submit(rep, program, number="W-1", lines=[(ProductFactory(), 1, Decimal("900"))])
    rejected = submit(rep, program, number="R-1", lines=[(ProductFactory(), 1, Decimal("900"))])
    services.claim_reject(claim=rejected, actor=manager, reason=RejectionReason.MISMATCH, text="The invoice says 3.")
    submit(MemberFactory(partner=rep.partner), program, number="OTHER-1")
    client.force_login(rep.user)
    body = text(client.get(LIST))
    assert "My claims" in body and "W-1" in body and "R-1" in body and "OTHER-1" not in body
    assert "Waiting for review" in body
    assert "Invoice does not match the claimed lines: The invoice says 3." in body
    filtered = client.get(LIST, {"status": "rejected"}, headers={"HX-Request": "true"})
    assert [c.pk for c in filtered.context["page"]] == [rejected.pk]
    assert "<html" not in filtered.content.decode()
    assert waiting.pk not in [c.pk for c in filtered.context["page"]]


def test_an_owner_sees_the_teams_claims_with_who_claimed(client, program, rep, owner):
    submit(rep, program, number="T-1")
    client.force_login(owner.user)
    body = text(client.get(LIST))
    assert "Sales claims" in body and "T-1" in body and "Ana Rep" in body


def test_empty_states(client, program, rep):
    client.force_login(rep.user)
    assert "No claims yet" in text(client.get(LIST))
    assert "No claims with this status" in text(client.get(LIST, {"status": "approved"}))


def test_without_a_program_the_list_says_so(client):
    client.force_login(MemberFactory().user)
    assert "No program is running yet" in text(client.get(LIST))


@pytest.mark.parametrize("viewer", ["member", "owner", "program_manager"])
def test_the_list_costs_the_same_queries_for_3_and_30_claims(client, program, rep, owner, viewer):
    users = {"member": rep.user, "owner": owner.user, "program_manager": ProgramManagerFactory()}
    client.force_login(users[viewer])

    def queries_for(count: int) -> int:
        while SalesClaim.objects.count() < count:
            submit(rep, program, number=f"Q-{SalesClaim.objects.count()}")
        cache.clear()  # the navigation's inbox bell counts once, then from the cache: alike for each
        with CaptureQueriesContext(connection) as queries:
            assert client.get(LIST).status_code == 200
        return len(queries)

    few = queries_for(3)
    assert queries_for(30) == few
    assert few <= 8  # 7, and the inbox bell's unread count (cached for the next pages)


# One claim ------------------------------------------------------------------------------------------


def test_the_claim_page_shows_lines_points_and_explanations_once_approved(client, program, rep, owner):
    RuleFactory(program=program, name="Softeners", shares=[{"role": "sales", "percent": 50}])
    claim = submit(rep, program, lines=[(ProductFactory(name="AquaSoft"), Decimal("4"), Decimal("200"))])
    client.force_login(rep.user)
    body = visible(client.get(reverse("claim_detail", args=[claim.pk])))
    assert "4 × AquaSoft" in body
    assert "+20 Softeners v1: 4 units × 10 pts = 40; Sales rep share 50% = 20" in body
    assert "company share" not in body  # the company's share is not the member's to see
    assert "Flags" not in body
    client.force_login(owner.user)
    body = visible(client.get(reverse("claim_detail", args=[claim.pk])))
    assert "Company account: Softeners v1: 4 units × 10 pts = 40; company share = 20" in body


def test_flags_and_submission_notes_are_shown_to_program_managers_only(client, program, rep):
    claim = submit(rep, program, product=ProductFactory(is_active=False, sku="OLD-9"))
    url = reverse("claim_detail", args=[claim.pk])
    client.force_login(rep.user)
    body = text(client.get(url))
    assert "Product unknown or inactive" not in body and "inactive product" not in body
    client.force_login(ProgramManagerFactory())
    body = text(client.get(url))
    assert str(ClaimFlag.UNKNOWN_PRODUCT.label) in body and "inactive product OLD-9" in body


def test_a_rejected_claim_shows_the_reason_and_the_way_to_correct_it(client, program, rep):
    claim = submit(rep, program, lines=[(ProductFactory(), 1, Decimal("900"))])
    services.claim_reject(claim=claim, actor=ProgramManagerFactory(), reason="unreadable", text="Too dark.")
    client.force_login(rep.user)
    response = client.get(reverse("claim_detail", args=[claim.pk]))
    body = visible(response)
    assert "Rejected: Invoice unreadable or missing. Too dark." in body
    assert f'href="{reverse("claim_resubmit", args=[claim.pk])}"' in text(response)
    assert f"until {TODAY + timedelta(days=60):%-d %b %Y}" in body


def test_correcting_a_rejected_claim_starts_prefilled_and_sends_it_again(client, program, rep):
    product = ProductFactory(sku="AQ-9", name="AquaNine")
    claim = submit(rep, program, number="INV-3", lines=[(product, Decimal("5"), Decimal("900"))])
    services.claim_reject(claim=claim, actor=ProgramManagerFactory(), reason="mismatch", text="It was 4.")
    client.force_login(rep.user)
    url = reverse("claim_resubmit", args=[claim.pk])
    body = text(client.get(url))
    assert 'value="INV-3"' in body and 'value="AQ-9 — AquaNine"' in body and 'value="5"' in body
    assert "Rejected: Invoice does not match the claimed lines. It was 4." in visible(client.get(url))
    response = client.post(url, form_data(number="INV-3", lines=[("AQ-9 — AquaNine", "4", "720")]), follow=True)
    claim.refresh_from_db()
    assert (claim.status, claim.submissions, claim.total_amount) == ("submitted", 2, Decimal("720.00"))
    assert f"Claim {claim.pk} was sent again." in text(response)
    assert "Corrected and sent again" in text(response)


def test_correcting_after_the_window_closed_is_refused_with_a_message(client, program, rep):
    claim = submit(rep, program, invoice_date=TODAY - timedelta(days=61))
    services.claim_reject(claim=claim, actor=ProgramManagerFactory(), reason="too_late")
    client.force_login(rep.user)
    response = client.get(reverse("claim_resubmit", args=[claim.pk]), follow=True)
    assert f"The claim window for this invoice closed on {TODAY - timedelta(days=1):%d %b %Y}" in text(response)
    assert "Correct and send again" not in text(response)


def test_withdrawing_asks_first_then_withdraws(client, program, rep):
    claim = submit(rep, program, lines=[(ProductFactory(), 1, Decimal("900"))])
    url = reverse("claim_withdraw", args=[claim.pk])
    client.force_login(rep.user)
    assert "Withdraw the claim" in text(client.get(url))
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED
    response = client.post(url, follow=True)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.WITHDRAWN
    assert f"Claim {claim.pk} is withdrawn." in text(response)


def test_the_claim_page_costs_the_same_queries_for_1_and_10_lines(client, program, rep, owner):
    RuleFactory(program=program, shares=[{"role": "sales", "percent": 50}])
    client.force_login(owner.user)

    def queries_for(lines: int) -> int:
        claim = submit(
            rep,
            program,
            number=f"L-{lines}",
            lines=[(ProductFactory(), 1, Decimal("1")) for _ in range(lines)],
            colleagues=[owner],
        )
        assert claim.status == ClaimStatus.APPROVED
        cache.clear()  # the navigation's inbox bell counts once, then from the cache: alike for each
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("claim_detail", args=[claim.pk]))
        return len(queries)

    assert queries_for(1) == queries_for(10)


# Who may see what -----------------------------------------------------------------------------------


@pytest.fixture
def world(program, rep, owner):
    """A claim by `rep` (naming a colleague), and everyone who might try to open it."""
    in_portfolio = AccountManagerFactory()
    owner.partner.account_manager = in_portfolio
    owner.partner.save()
    colleague = MemberFactory(partner=rep.partner)
    claim = submit(rep, program, colleagues=[colleague], lines=[(ProductFactory(), 1, Decimal("900"))])
    return {
        "claim": claim,
        "member": rep.user,
        "colleague": colleague.user,
        "owner": owner.user,
        "other_owner": OwnerFactory().user,
        "account_manager": in_portfolio,
        "other_account_manager": AccountManagerFactory(),
        "program_manager": ProgramManagerFactory(),
        "no_membership": UserFactory(),
    }


# The colleague the claim tagged reads it too (issue #10 point 14: a tagged colleague got 404 on it).
SEES = {"member", "colleague", "owner", "account_manager", "program_manager"}
VIEWERS = ["member", "colleague", "owner", "other_owner", "account_manager", "other_account_manager"]
VIEWERS += ["program_manager", "no_membership"]


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("page", ["claim_detail", "claim_document"])
def test_a_claim_and_its_invoice_are_shown_only_to_those_who_may_see_them(client, world, viewer, page):
    client.force_login(world[viewer])
    response = client.get(reverse(page, args=[world["claim"].pk]))
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)  # read to the end: the test client then closes the file
    assert response.status_code == (200 if viewer in SEES else 404)


@pytest.mark.parametrize("page", ["claim_detail", "claim_document", "claim_resubmit", "claim_withdraw"])
def test_anonymous_visitors_are_sent_to_sign_in(client, world, page):
    response = client.get(reverse(page, args=[world["claim"].pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert client.get(LIST).status_code == 302 and client.get(NEW).status_code == 302


@pytest.mark.parametrize("viewer", ["colleague", "owner", "other_owner", "account_manager", "program_manager"])
@pytest.mark.parametrize("page", ["claim_resubmit", "claim_withdraw"])
def test_only_the_claimant_corrects_or_withdraws(client, world, viewer, page):
    claim = world["claim"]
    if page == "claim_resubmit":
        services.claim_reject(claim=claim, actor=world["program_manager"], reason="unreadable")
    client.force_login(world[viewer])
    assert client.get(reverse(page, args=[claim.pk])).status_code == 404
    assert client.post(reverse(page, args=[claim.pk])).status_code == 404
    claim.refresh_from_db()
    assert claim.status == (ClaimStatus.REJECTED if page == "claim_resubmit" else ClaimStatus.SUBMITTED)


@pytest.mark.parametrize("viewer", VIEWERS)
def test_the_list_shows_each_viewer_only_the_claims_they_may_see(client, world, viewer):
    client.force_login(world[viewer])
    shown = [claim.pk for claim in client.get(LIST).context["page"]]
    assert shown == ([world["claim"].pk] if viewer in SEES else [])


def test_the_invoice_file_is_served_inline_typed_by_its_content(client, program, rep):
    claim = submit(rep, program, document=upload("scan.jpg", PDF, "image/jpeg"))
    client.force_login(rep.user)
    response = client.get(reverse("claim_document", args=[claim.pk]))
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="claim-{claim.pk}-invoice.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"


def test_the_navigation_offers_claims_to_members_and_the_staff_who_follow_them(client, program, rep):
    """Account and program managers had the claims list but no link to it (issue #10's walk)."""
    client.force_login(rep.user)
    assert f'href="{LIST}">Claims</a>' in text(client.get(reverse("home")))
    client.force_login(AccountManagerFactory())
    assert f'href="{LIST}">Claims</a>' in text(client.get(reverse("home")))
    client.force_login(UserFactory())  # no membership, not staff
    assert f'href="{LIST}">Claims</a>' not in text(client.get(reverse("home")))
