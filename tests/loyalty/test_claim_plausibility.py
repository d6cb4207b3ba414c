"""Issue #10 point 3: a claim is plausible before it earns. Hard ceilings per product in one claim (the product's,
else the program's), invoice dates no further back than a late claim can be, a flagged claim approved only with a
reason recorded in its history (the service, the admin page that asks for it, the bulk action that skips it, the
sell-out confirmation that leaves it waiting), and tiers that count a flagged claim only once approved that way."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.constants import ClaimFlag, ClaimStatus, TierMetric
from loyalty.models import ClaimEvent, ClaimLine, PartnerTier, PointsEntry, SaleLine, SalesClaim, SalesSource
from loyalty.services import claim_checks as checks
from loyalty.services import claims as services
from loyalty.services.tiers import partner_metric, tier_evaluate
from tests.helpers import messages_of
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory, TierFactory
from tests.loyalty.test_claims_services import TODAY, refused, stored_files, submit, upload
from tests.loyalty.test_claims_views import form_data
from tests.partners.factories import MemberFactory, OwnerFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]
CHANGELIST = reverse("admin:loyalty_salesclaim_changelist")
APPROVE_PAGE_QUERIES = 12


@pytest.fixture
def program():
    return ProgramFactory(
        name="Aqua Rewards",
        claim_window_days=60,
        claim_auto_approve_below=Decimal("500.00"),
        tier_metric=TierMetric.SALES_AMOUNT,
    )


@pytest.fixture
def member():
    return MemberFactory(partner__name="Blue Water Ltd")


@pytest.fixture
def manager(program_manager):
    return program_manager


def line(product, quantity, amount) -> tuple:
    return (product, Decimal(quantity), Decimal(amount))


def nothing_written(private_media) -> tuple:
    return (
        SalesClaim.objects.count(),
        ClaimLine.objects.count(),
        ClaimEvent.objects.count(),
        stored_files(private_media),
    )


def unusual(program, member, *, number="BIG-1", quantity="5000", amount="900000.00"):
    """A claim within the ceilings but far above the product's usual quantity: flagged, waiting for review."""
    product = ProductFactory(sku="AQS-300", unusual_quantity=50)
    claim = submit(member, program, number=number, lines=[line(product, quantity, amount)])
    assert (claim.status, claim.flags) == (ClaimStatus.SUBMITTED, [ClaimFlag.UNUSUAL_QUANTITY])
    return claim


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# Ceilings -------------------------------------------------------------------------------------------


def test_the_program_ceilings_default_to_10000_units_and_1000000_per_product(program):
    assert (program.claim_max_quantity, program.claim_max_amount) == (10_000, Decimal("1000000.00"))


def test_a_line_over_the_programs_quantity_ceiling_is_refused_naming_line_product_and_ceiling(
    program, member, private_media
):
    product = ProductFactory(sku="AQS-300")
    lines = [line(ProductFactory(), 1, "10"), line(product, "10000.001", "100")]
    error = refused("over_ceiling", lambda: submit(member, program, lines=lines))
    assert error.message == (
        "Line 2 (AQS-300): 10,000.001 units is more than one claim may have of this product (at most 10,000). "
        "Check the quantity on the invoice."
    )
    assert nothing_written(private_media) == (0, 0, 0, [])
    at_the_ceiling = submit(member, program, lines=[line(product, 10_000, "100")])
    assert at_the_ceiling.lines.get().quantity == 10_000


def test_a_line_over_the_programs_amount_ceiling_is_refused(program, member, private_media):
    product = ProductFactory(sku="PFR-5")
    error = refused("over_ceiling", lambda: submit(member, program, lines=[line(product, 1, "1000000.01")]))
    assert error.message == (
        "Line 1 (PFR-5): €1,000,000.01 is more than one claim may have of this product (at most €1,000,000.00). "
        "Check the amount on the invoice."
    )
    assert nothing_written(private_media) == (0, 0, 0, [])
    assert submit(member, program, lines=[line(product, 1, "1000000.00")]).total_amount == Decimal("1000000.00")


def test_a_products_own_ceilings_replace_the_programs(program, member):
    cartridges = ProductFactory(sku="CLF-SED5", claim_max_quantity=50_000, claim_max_amount=Decimal("2000000"))
    machine = ProductFactory(sku="PFR-1000C", claim_max_quantity=5, claim_max_amount=Decimal("60000"))
    claim = submit(member, program, number="A", lines=[line(cartridges, 20_000, "1500000")])
    assert claim.lines.get().quantity == 20_000
    error = refused("over_ceiling", lambda: submit(member, program, number="B", lines=[line(machine, 6, "100")]))
    assert error.message.startswith("Line 1 (PFR-1000C): 6 units is more than one claim may have of this product")
    assert "(at most 5)" in error.message
    refused("over_ceiling", lambda: submit(member, program, number="C", lines=[line(machine, 1, "60000.01")]))


def test_lines_of_one_product_add_up_so_that_splitting_does_not_get_round_the_ceiling(program, member):
    product = ProductFactory(sku="AQS-300")
    lines = [line(product, 6000, "100"), line(ProductFactory(), 1, "1"), line(product, 6000, "100")]
    error = refused("over_ceiling", lambda: submit(member, program, lines=lines))
    assert error.message.startswith(
        "Lines 1 and 3 (AQS-300): 12,000 units is more than one claim may have of this product (at most 10,000)."
    )


def test_the_issues_claim_of_100000_units_for_99999999999_is_refused_and_the_partner_stays_below_gold(
    program, member, private_media
):
    TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0"))
    TierFactory(program=program, name="Gold", rank=1, threshold=Decimal("100000"))
    product = ProductFactory(sku="AQS-300", unusual_quantity=10)
    error = refused("over_ceiling", lambda: submit(member, program, lines=[line(product, 100_000, "99999999999.00")]))
    assert error.message.startswith("Line 1 (AQS-300): 100,000 units is more than one claim may have")
    assert nothing_written(private_media) == (0, 0, 0, [])
    assert tier_evaluate(program=program, partner=member.partner).tier.name == "Bronze"


def test_a_corrected_claim_is_held_to_the_ceilings_too(program, member, manager):
    product = ProductFactory(sku="AQS-300")
    claim = submit(member, program, lines=[line(product, 2, "900")])
    services.claim_reject(claim=claim, actor=manager, reason="mismatch")
    error = refused(
        "over_ceiling",
        lambda: services.claim_resubmit(
            claim=claim,
            member=member,
            invoice_number="INV-1",
            invoice_date=TODAY,
            lines=[line(product, 100_000, "900")],
        ),
    )
    assert error.message.startswith("Line 1 (AQS-300): 100,000 units")
    claim.refresh_from_db()
    assert (claim.status, claim.submissions, claim.lines.get().quantity) == (ClaimStatus.REJECTED, 1, 2)


def test_the_claim_form_shows_a_refused_line_as_a_form_error(client, program, member):
    ProductFactory(sku="AQS-300")
    client.force_login(member.user)
    data = form_data(lines=[("AQS-300", "100000", "99999999999")], document=upload())
    response = client.post(reverse("claim_new"), data)
    assert response.status_code == 200
    assert "Line 1 (AQS-300): 100,000 units is more than one claim may have of this product" in text(response)
    assert SalesClaim.objects.count() == 0


# Invoice dates --------------------------------------------------------------------------------------


def test_an_invoice_from_year_1_is_refused_and_a_late_one_within_a_year_past_the_window_is_flagged(
    program, member, private_media
):
    earliest = TODAY - timedelta(days=60 + 365)
    error = refused("invoice_date_too_old", lambda: submit(member, program, number="OLD", invoice_date=date(1, 1, 1)))
    assert error.message.startswith("The invoice date 1 Jan 0001 is too far back")
    assert nothing_written(private_media) == (0, 0, 0, [])
    refused(
        "invoice_date_too_old",
        lambda: submit(member, program, number="OLD", invoice_date=earliest - timedelta(days=1)),
    )
    late = submit(member, program, number="LATE", invoice_date=earliest)
    assert late.flags == [ClaimFlag.OUTSIDE_WINDOW]
    refused(
        "invoice_date_future", lambda: submit(member, program, number="NEXT", invoice_date=TODAY + timedelta(days=1))
    )


def test_the_claim_form_shows_a_refused_date_next_to_the_date(client, program, member):
    ProductFactory(sku="AQS-300")
    client.force_login(member.user)
    data = form_data(day=date(1, 1, 1), lines=[("AQS-300", "1", "100")], document=upload())
    response = client.post(reverse("claim_new"), data)
    assert response.status_code == 200
    assert response.context["form"].errors["invoice_date"][0].startswith("The invoice date 1 Jan 0001 is too far")
    assert SalesClaim.objects.count() == 0


# Approving a flagged claim needs a reason -----------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_flagged_claim_is_not_approved_without_a_reason_and_nothing_changes(program, member, manager, reason):
    RuleFactory(program=program)
    claim = unusual(program, member)
    error = refused("reason_required", lambda: services.claim_approve(claim=claim, actor=manager, reason=reason))
    assert error.message == (
        f"Claim {claim.pk} is flagged (Unusual quantity): say why it is approved anyway; the reason is kept in its "
        "history."
    )
    claim.refresh_from_db()
    assert (claim.status, claim.decided_by, claim.events.count()) == (ClaimStatus.SUBMITTED, None, 1)
    assert not PointsEntry.objects.exists()


def test_a_flagged_claim_approved_with_a_reason_records_it_in_the_history(program, member, manager):
    RuleFactory(program=program)
    claim = unusual(program, member)
    services.claim_approve(claim=claim, actor=manager, reason="  Checked with the distributor: a hotel chain.  ")
    claim.refresh_from_db()
    assert (claim.status, claim.decided_by) == (ClaimStatus.APPROVED, manager)
    event = claim.events.order_by("pk").last()
    assert (event.to_status, event.actor, event.note) == (
        ClaimStatus.APPROVED,
        manager,
        "Approved despite the flags (Unusual quantity): Checked with the distributor: a hotel chain.",
    )
    assert PointsEntry.objects.filter(source_type="claim").count() == 1


def test_the_reason_a_flagged_claim_was_approved_is_read_by_program_managers_only(client, program, member, manager):
    """A new user's walk found the back office's reason ("claim 22 of another partner is a typo") on the member's
    claim page, although the approval page promises the member does not see it."""
    claim = unusual(program, member)
    services.claim_approve(claim=claim, actor=manager, reason="Distributor confirmed by phone; claim 22 is a typo")
    page = reverse("claim_detail", args=[claim.pk])

    client.force_login(member.user)
    as_member = text(client.get(page))
    client.force_login(manager)
    as_manager = text(client.get(page))

    assert "Approved" in as_member
    assert "Distributor confirmed" not in as_member
    assert "Distributor confirmed by phone; claim 22 is a typo" in as_manager


def test_a_reason_longer_than_300_characters_is_refused(program, member, manager):
    claim = unusual(program, member)
    refused("text_too_long", lambda: services.claim_approve(claim=claim, actor=manager, reason="x" * 301))
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED


def test_sell_out_lines_confirming_a_flagged_claim_record_the_match_but_leave_it_waiting(program, member):
    claim = unusual(program, member, quantity="60", amount="9000")
    source = SalesSource.objects.create(program=program, code="erp", name="ERP")
    sold = SaleLine.objects.create(
        source=source,
        external_id="L1",
        partner=member.partner,
        product=claim.lines.get().product,
        quantity=Decimal("60"),
        amount=Decimal("9000"),
        invoice_date=TODAY,
        invoice_number="BIG-1",
    )
    assert services.claims_confirm_by_sale_lines(sale_lines=[sold]) == 0
    claim.refresh_from_db()
    assert (claim.status, claim.matched_line) == (ClaimStatus.SUBMITTED, sold)


# Tiers ----------------------------------------------------------------------------------------------


def test_a_flagged_claim_counts_towards_a_tier_only_once_approved_with_a_reason(program, member, manager):
    TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0"))
    TierFactory(program=program, name="Gold", rank=1, threshold=Decimal("500000"))
    claim = unusual(program, member)  # 900,000 in a flagged claim
    assert partner_metric(program=program, partner=member.partner) == 0
    assert tier_evaluate(program=program, partner=member.partner).tier.name == "Bronze"
    refused("reason_required", lambda: services.claim_approve(claim=claim, actor=manager))
    assert tier_evaluate(program=program, partner=member.partner).tier.name == "Bronze"

    services.claim_approve(claim=claim, actor=manager, reason="Checked: a hotel chain's refit.")
    assert partner_metric(program=program, partner=member.partner) == Decimal("900000.00")
    assert tier_evaluate(program=program, partner=member.partner).tier.name == "Gold"
    assert PartnerTier.objects.get(program=program, partner=member.partner).tier.name == "Gold"


# The back office ------------------------------------------------------------------------------------


def approve_url(claim) -> str:
    return reverse("admin:loyalty_salesclaim_approve", args=[claim.pk])


def change_url(claim) -> str:
    return reverse("admin:loyalty_salesclaim_change", args=[claim.pk])


def test_a_flagged_claims_page_offers_approval_through_the_page_that_asks_for_a_reason(pm_client, program, member):
    claim = unusual(program, member)
    body = text(pm_client.get(change_url(claim)))
    assert f'<form method="get" action="{approve_url(claim)}">' in body
    assert 'value="Approve… (flagged: asks why)"' in body and 'value="Approve (points post)"' not in body
    assert 'value="Reject…"' in body


def test_the_approval_page_lists_the_flags_with_their_explanations_and_requires_a_reason(
    pm_client, program, member, program_manager
):
    RuleFactory(program=program)
    claim = unusual(program, member)
    page = pm_client.get(approve_url(claim))
    assert page.status_code == 200
    body = text(page)
    assert f"Approve claim {claim.pk}" in body
    assert "Unusual quantity" in body
    assert "unusual quantity 5000 × AQS-300 (usually at most 50)" in body
    assert "More units of a product than it usually sells in one claim" in body

    again = pm_client.post(approve_url(claim), {"reason": "  "})
    assert again.status_code == 200
    assert "This field is required." in text(again)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED

    done = pm_client.post(approve_url(claim), {"reason": "Checked with the distributor."}, follow=True)
    assert done.redirect_chain == [(change_url(claim), 302)]
    assert messages_of(done) == [f"Claim {claim.pk} approved (points posted)."]
    claim.refresh_from_db()
    assert (claim.status, claim.decided_by) == (ClaimStatus.APPROVED, program_manager)
    assert claim.events.order_by("pk").last().note == (
        "Approved despite the flags (Unusual quantity): Checked with the distributor."
    )
    assert "Approved despite the flags (Unusual quantity): Checked with the distributor." in text(done)


def test_the_approval_page_says_why_a_claim_cannot_be_approved_any_more(pm_client, program, member, manager):
    claim = unusual(program, member)
    services.claim_approve(claim=claim, actor=manager, reason="Checked.")
    response = pm_client.post(approve_url(claim), {"reason": "Again."})
    assert response.status_code == 200
    assert f"Claim {claim.pk} is already approved." in text(response)
    assert claim.events.count() == 2


def test_the_approval_page_is_for_program_managers_only_and_costs_a_bounded_number_of_queries(
    client, pm_client, program, member, django_assert_max_num_queries
):
    claim = unusual(program, member)
    with django_assert_max_num_queries(APPROVE_PAGE_QUERIES):
        assert pm_client.get(approve_url(claim)).status_code == 200
    client.force_login(UserFactory(is_staff=True))
    assert client.post(approve_url(claim), {"reason": "Me too."}).status_code == 403
    client.force_login(OwnerFactory().user)
    assert client.get(approve_url(claim)).status_code == 302  # the admin's login page
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED


def test_bulk_approve_skips_flagged_claims_and_links_to_their_approval_pages(
    pm_client, program, member, program_manager
):
    flagged = unusual(program, member)
    plain = submit(MemberFactory(), program, number="PLAIN", lines=[line(ProductFactory(), 1, "900")])
    response = pm_client.post(
        CHANGELIST, {"action": "approve", "_selected_action": [flagged.pk, plain.pk]}, follow=True
    )
    assert messages_of(response) == [
        f'Not approved: <a href="{approve_url(flagged)}">Claim {flagged.pk}</a> has flags; approve it on its own '
        "page, with a reason.",
        f"Approved (points posted) 1 claim: Claim {plain.pk}.",
    ]
    flagged.refresh_from_db()
    plain.refresh_from_db()
    assert (flagged.status, plain.status) == (ClaimStatus.SUBMITTED, ClaimStatus.APPROVED)


def test_product_and_program_admin_pages_show_the_ceilings(pm_client, program):
    product = ProductFactory()
    product_page = text(pm_client.get(reverse("admin:loyalty_product_change", args=[product.pk])))
    assert 'name="claim_max_quantity"' in product_page and 'name="claim_max_amount"' in product_page
    program_page = text(pm_client.get(reverse("admin:loyalty_program_change", args=[program.pk])))
    assert 'name="claim_max_quantity"' in program_page and 'name="claim_max_amount"' in program_page


def test_checks_expose_the_earliest_invoice_date(program):
    assert checks.earliest_invoice_date(program=program, today=date(2026, 12, 7)) == date(2025, 10, 8)
