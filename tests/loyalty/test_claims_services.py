"""Sales claims: the checks and flags, auto-approval, approval → points, rejection → resubmission, withdrawal,
uploads, concurrency on one invoice, and confirmation by sell-out lines."""

import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import ClaimFlag, ClaimStatus, RejectionReason
from loyalty.models import (
    ClaimEvent,
    ClaimLine,
    IncentiveRule,
    PartnerTier,
    PointsAccount,
    PointsEntry,
    SaleLine,
    SalesClaim,
    SalesSource,
)
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import claim_checks as checks
from loyalty.services import claims as services
from loyalty.services.ledger_bulk import ImportLedger
from partners.constants import MemberStatus, PartnerStatus
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory, TierFactory
from tests.loyalty.test_ledger_concurrency import run_in_parallel
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory, role

TODAY = timezone.localdate()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


# Helpers --------------------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("private_media")  # each test writes invoices to its own folder


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def upload(name: str = "invoice.jpg", content: bytes = JPEG, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def submit(member, program, product=None, *, number="INV-1", invoice_date=None, lines=None, colleagues=(), **kwargs):
    if lines is None:
        lines = [(product or ProductFactory(), Decimal("2"), Decimal("100.00"))]
    return services.claim_submit(
        member=member,
        program=program,
        invoice_number=number,
        invoice_date=invoice_date or TODAY,
        document=kwargs.pop("document", None) or upload(),
        lines=lines,
        colleagues=list(colleagues),
        **kwargs,
    )


def balance(program, *, member=None, partner=None) -> int:
    account = PointsAccount.objects.filter(program=program, member=member, partner=partner).first()
    return account.available if account else 0


def claim_entries(claim) -> list[PointsEntry]:
    return list(PointsEntry.objects.filter(source_type="claim", source_id__startswith=f"claim:{claim.pk}:"))


def refused(code: str, call) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        call()
    assert info.value.code == code, info.value.message
    return info.value


@pytest.fixture
def program():
    return ProgramFactory(claim_window_days=60, claim_auto_approve_below=Decimal("500.00"))


@pytest.fixture
def manager():
    return ProgramManagerFactory()


# Automatic approval ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_claim_without_flags_under_the_threshold_is_approved_at_once_and_earns_points(program):
    RuleFactory(program=program, name="Softeners", value=Decimal(10))
    member = MemberFactory()
    claim = submit(member, program, lines=[(ProductFactory(), Decimal("2"), Decimal("499.99"))])
    assert (claim.status, claim.flags, claim.decided_by) == (ClaimStatus.APPROVED, [], None)
    assert [(e.from_status, e.to_status, e.actor_id, e.note) for e in claim.events.all()] == [
        ("", ClaimStatus.SUBMITTED, member.user_id, "Submitted"),
        (ClaimStatus.SUBMITTED, ClaimStatus.APPROVED, None, "Approved automatically"),
    ]
    [entry] = claim_entries(claim)
    assert entry.explanation == "Softeners v1: 2 units × 10 pts = 20"
    assert balance(program, member=member) == 20
    assert ledger_problems() == []


@pytest.mark.django_db
def test_a_claim_at_the_threshold_waits_for_review_and_posts_nothing(program):
    RuleFactory(program=program)
    claim = submit(MemberFactory(), program, lines=[(ProductFactory(), Decimal("2"), Decimal("500.00"))])
    assert claim.status == ClaimStatus.SUBMITTED
    assert claim_entries(claim) == []


@pytest.mark.django_db
def test_a_flagged_claim_waits_for_review_even_under_the_threshold(program):
    claim = submit(MemberFactory(), program, product=ProductFactory(is_active=False))
    assert (claim.status, claim.flags) == (ClaimStatus.SUBMITTED, [ClaimFlag.UNKNOWN_PRODUCT])


# Approval -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_approval_posts_points_with_explanations_tier_and_the_split_among_colleagues(program, manager):
    RuleFactory(
        program=program,
        name="Rule",
        shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 30}],
    )
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner, role=role("sales"))
    installer = MemberFactory(partner=owner.partner, role=role("engineer"))
    gold = TierFactory(program=program, name="Gold", multiplier=Decimal("1.20"))
    PartnerTier.objects.create(program=program, partner=owner.partner, tier=gold, since=TODAY, held_until=TODAY)
    claim = submit(rep, program, lines=[(ProductFactory(), Decimal("12"), Decimal("1000.00"))], colleagues=[installer])
    assert claim.status == ClaimStatus.SUBMITTED and claim_entries(claim) == []

    services.claim_approve(claim=claim, actor=manager)

    claim.refresh_from_db()
    assert (claim.status, claim.decided_by) == (ClaimStatus.APPROVED, manager)
    assert balance(program, member=rep) == 86
    assert balance(program, member=installer) == 43
    assert balance(program, partner=owner.partner) == 15
    explanations = sorted(entry.explanation for entry in claim_entries(claim))
    assert explanations == [
        "Rule v1: 12 units × 10 pts × Gold 1.2 = 144; Engineer / installer share 30% = 43",
        "Rule v1: 12 units × 10 pts × Gold 1.2 = 144; Sales rep share 60% = 86",
        "Rule v1: 12 units × 10 pts × Gold 1.2 = 144; company share = 15",
    ]
    assert claim.events.last().note == "Approved"
    assert ledger_problems() == []


@pytest.mark.django_db
def test_approving_twice_posts_once(program, manager):
    RuleFactory(program=program)
    member = MemberFactory()
    claim = submit(member, program, lines=[(ProductFactory(), Decimal("3"), Decimal("900.00"))])
    services.claim_approve(claim=claim, actor=manager)
    error = refused("bad_transition", lambda: services.claim_approve(claim=claim, actor=manager))
    assert error.message == f"Claim {claim.pk} is already approved."
    assert len(claim_entries(claim)) == 1
    assert balance(program, member=member) == 30
    assert ClaimEvent.objects.filter(claim=claim, to_status=ClaimStatus.APPROVED).count() == 1


@pytest.mark.django_db
def test_only_program_managers_decide(program):
    owner = OwnerFactory()
    claim = submit(MemberFactory(partner=owner.partner), program, lines=[(ProductFactory(), 1, Decimal("800"))])
    refused("forbidden", lambda: services.claim_approve(claim=claim, actor=owner.user))
    refused("forbidden", lambda: services.claim_reject(claim=claim, actor=owner.user, reason=RejectionReason.OTHER))
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED


# Rejection and resubmission -------------------------------------------------------------------------


@pytest.mark.django_db
def test_reject_needs_a_reason_and_a_text_for_other(program, manager):
    claim = submit(MemberFactory(), program, lines=[(ProductFactory(), 1, Decimal("800"))])
    refused("reason_required", lambda: services.claim_reject(claim=claim, actor=manager, reason="bogus"))
    refused("text_required", lambda: services.claim_reject(claim=claim, actor=manager, reason="other", text=" "))
    claim.refresh_from_db()
    assert (claim.status, claim.rejection_reason) == (ClaimStatus.SUBMITTED, "")

    services.claim_reject(claim=claim, actor=manager, reason=RejectionReason.UNREADABLE, text="Too blurry")
    claim.refresh_from_db()
    assert (claim.status, claim.rejection_reason, claim.rejection_text) == ("rejected", "unreadable", "Too blurry")
    assert claim.events.last().note == "Invoice unreadable or missing: Too blurry"


@pytest.mark.django_db
def test_reject_then_correct_and_resubmit_then_approve_posts_the_corrected_points(program, manager):
    RuleFactory(program=program, name="Softeners")
    member = MemberFactory()
    product = ProductFactory()
    claim = submit(member, program, lines=[(product, Decimal("12"), Decimal("1200.00"))])
    services.claim_reject(claim=claim, actor=manager, reason=RejectionReason.MISMATCH, text="The invoice says 10.")

    services.claim_resubmit(
        claim=claim,
        member=member,
        invoice_number="inv-1",
        invoice_date=TODAY,
        lines=[(product, Decimal("10"), Decimal("1000.00"))],
    )
    claim.refresh_from_db()
    assert (claim.status, claim.submissions, claim.rejection_reason, claim.rejection_text) == ("submitted", 2, "", "")
    assert [(line.quantity, line.amount) for line in claim.lines.all()] == [(Decimal("10.000"), Decimal("1000.00"))]
    assert claim.total_amount == Decimal("1000.00")
    assert claim.events.last().note == "Resubmitted (submission 2)"

    services.claim_approve(claim=claim, actor=manager)
    assert [e.explanation for e in claim_entries(claim)] == ["Softeners v1: 10 units × 10 pts = 100"]
    assert balance(program, member=member) == 100
    assert [e.to_status for e in claim.events.all()] == ["submitted", "rejected", "submitted", "approved"]


@pytest.mark.django_db
def test_a_corrected_claim_without_flags_under_the_threshold_is_approved_at_once(program, manager):
    RuleFactory(program=program)
    member = MemberFactory()
    product = ProductFactory(unusual_quantity=50)
    claim = submit(member, program, lines=[(product, Decimal("60"), Decimal("100"))])
    assert claim.flags == [ClaimFlag.UNUSUAL_QUANTITY]
    services.claim_reject(claim=claim, actor=manager, reason=RejectionReason.MISMATCH)
    services.claim_resubmit(
        claim=claim, member=member, invoice_number="INV-1", invoice_date=TODAY, lines=[(product, 6, Decimal("100"))]
    )
    claim.refresh_from_db()
    assert (claim.status, claim.flags) == (ClaimStatus.APPROVED, [])
    assert balance(program, member=member) == 60


@pytest.mark.django_db
def test_resubmitting_after_the_window_closed_is_refused_and_changes_nothing(program, manager):
    member = MemberFactory()
    product = ProductFactory()
    late = TODAY - timedelta(days=70)
    claim = submit(member, program, invoice_date=late, lines=[(product, 1, Decimal("10"))])
    assert (claim.status, claim.flags) == (ClaimStatus.SUBMITTED, [ClaimFlag.OUTSIDE_WINDOW])
    services.claim_reject(claim=claim, actor=manager, reason=RejectionReason.TOO_LATE)
    error = refused(
        "window_closed",
        lambda: services.claim_resubmit(
            claim=claim, member=member, invoice_number="INV-1", invoice_date=late, lines=[(product, 2, Decimal("20"))]
        ),
    )
    assert f"closed on {late + timedelta(days=60):%d %b %Y}" in error.message
    claim.refresh_from_db()
    assert (claim.status, claim.submissions, claim.rejection_reason) == ("rejected", 1, "too_late")
    assert [(line.quantity, line.amount) for line in claim.lines.all()] == [(Decimal("1.000"), Decimal("10.00"))]
    assert not checks.can_resubmit(claim=claim, member=member)


@pytest.mark.django_db
def test_only_the_claimant_resubmits_and_only_a_rejected_claim(program, manager):
    owner = OwnerFactory()
    member = MemberFactory(partner=owner.partner)
    product = ProductFactory()
    claim = submit(member, program, lines=[(product, 1, Decimal("900"))])
    again = {"invoice_number": "INV-1", "invoice_date": TODAY, "lines": [(product, 1, Decimal("900"))]}
    refused("bad_transition", lambda: services.claim_resubmit(claim=claim, member=member, **again))
    services.claim_reject(claim=claim, actor=manager, reason=RejectionReason.UNREADABLE)
    refused("forbidden", lambda: services.claim_resubmit(claim=claim, member=owner, **again))
    assert checks.can_resubmit(claim=claim, member=member) and not checks.can_resubmit(claim=claim, member=owner)


@pytest.mark.django_db
def test_resubmitting_with_a_new_invoice_file_replaces_the_old_one_after_commit(
    program, manager, private_media, django_capture_on_commit_callbacks
):
    member = MemberFactory()
    product = ProductFactory()
    claim = submit(member, program, lines=[(product, 1, Decimal("900"))])
    old = Path(claim.document.path)
    services.claim_reject(claim=claim, actor=manager, reason=RejectionReason.UNREADABLE)
    with django_capture_on_commit_callbacks(execute=True):
        services.claim_resubmit(
            claim=claim,
            member=member,
            invoice_number="INV-1",
            invoice_date=TODAY,
            lines=[(product, 1, Decimal("900"))],
            document=upload("scan.pdf", PDF, "application/pdf"),
        )
    claim.refresh_from_db()
    assert claim.document.name.endswith(".pdf")
    assert stored_files(private_media) == [Path(claim.document.path)]
    assert not old.exists()
    assert "new invoice file" in claim.events.last().note


# Withdrawal -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_claimant_withdraws_a_waiting_claim_and_can_claim_the_invoice_again(program, manager):
    owner = OwnerFactory()
    member = MemberFactory(partner=owner.partner)
    claim = submit(member, program, lines=[(ProductFactory(), 1, Decimal("900"))])
    refused("forbidden", lambda: services.claim_withdraw(claim=claim, member=owner))
    services.claim_withdraw(claim=claim, member=member)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.WITHDRAWN
    assert claim.events.last().actor == member.user
    refused("bad_transition", lambda: services.claim_withdraw(claim=claim, member=member))
    again = submit(member, program, number="INV-1", lines=[(ProductFactory(), 1, Decimal("900"))])
    assert again.status == ClaimStatus.SUBMITTED


@pytest.mark.django_db
def test_an_approved_claim_cannot_be_withdrawn(program, manager):
    member = MemberFactory()
    claim = submit(member, program)
    assert claim.status == ClaimStatus.APPROVED
    error = refused("bad_transition", lambda: services.claim_withdraw(claim=claim, member=member))
    assert error.message == f"Claim {claim.pk} is approved; it cannot be withdrawn now."


# Duplicates -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_same_invoice_in_the_same_partner_is_refused_naming_the_earlier_claim(program, private_media):
    first_rep = MemberFactory()
    colleague = MemberFactory(partner=first_rep.partner)
    first = submit(first_rep, program, number="INV-2026/0042")
    files = stored_files(private_media)
    error = refused("duplicate_invoice", lambda: submit(colleague, program, number=" inv-2026/ 0042 "))
    assert f"already claimed in claim {first.pk} (approved" in error.message
    assert error.extra == {"claim_id": first.pk}
    assert SalesClaim.objects.count() == 1
    assert stored_files(private_media) == files


@pytest.mark.django_db
def test_a_rejected_claim_of_the_invoice_also_blocks_a_new_one_and_says_to_correct_it(program, manager):
    member = MemberFactory()
    first = submit(member, program, lines=[(ProductFactory(), 1, Decimal("900"))])
    services.claim_reject(claim=first, actor=manager, reason=RejectionReason.UNREADABLE)
    error = refused("duplicate_invoice", lambda: submit(member, program))
    assert error.message.endswith("Correct and resubmit that claim instead.")


@pytest.mark.django_db
def test_the_same_invoice_in_another_partner_is_flagged_on_both_claims_that_wait(program):
    first = submit(MemberFactory(), program, number="A-1", lines=[(ProductFactory(), 1, Decimal("900"))])
    second = submit(MemberFactory(), program, number="a-1")
    assert (second.status, second.flags) == (ClaimStatus.SUBMITTED, [ClaimFlag.DUPLICATE_OTHER_PARTNER])
    assert f"same invoice in claim {first.pk} of another partner" in second.events.first().note
    first.refresh_from_db()
    assert first.flags == [ClaimFlag.DUPLICATE_OTHER_PARTNER]


@pytest.mark.django_db
def test_the_same_invoice_number_in_another_program_is_not_a_duplicate(program):
    member = MemberFactory()
    submit(member, program, number="X-1")
    other = submit(member, ProgramFactory(), number="X-1")
    assert other.flags == []


@pytest.mark.django_db(transaction=True)
def test_simultaneous_submissions_of_one_invoice_in_one_partner_let_exactly_one_through(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "parallel"
    program = ProgramFactory()
    partner = PartnerFactory()
    members = [MemberFactory(partner=partner) for _ in range(6)]
    product = ProductFactory()

    def claim(i):
        return submit(members[i], program, number="INV-77", lines=[(product, 1, Decimal("10"))]).pk and "claimed"

    outcomes = run_in_parallel(6, claim)
    assert outcomes == Counter({"claimed": 1, "duplicate_invoice": 5})
    assert SalesClaim.objects.filter(invoice_number="INV-77").count() == 1
    assert len(stored_files(tmp_path / "parallel")) == 1  # the refused ones wrote no file


# Flags ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_inactive_product_is_flagged_as_unknown(program):
    claim = submit(MemberFactory(), program, product=ProductFactory(sku="OLD-1", is_active=False))
    assert claim.flags == [ClaimFlag.UNKNOWN_PRODUCT]
    assert "inactive product OLD-1" in claim.events.first().note


@pytest.mark.django_db
def test_an_invoice_older_than_the_window_is_flagged_and_a_future_one_refused(program):
    member = MemberFactory()
    edge = submit(member, program, number="A", invoice_date=TODAY - timedelta(days=60))
    assert edge.flags == []
    late = submit(member, program, number="B", invoice_date=TODAY - timedelta(days=61))
    assert late.flags == [ClaimFlag.OUTSIDE_WINDOW]
    assert "invoice dated 61 days ago (window 60 days)" in late.events.first().note
    refused("invoice_date_future", lambda: submit(member, program, number="C", invoice_date=TODAY + timedelta(days=1)))


@pytest.mark.django_db
def test_an_unusual_quantity_is_flagged_counting_every_line_of_the_product(program):
    member = MemberFactory()
    pump = ProductFactory(sku="PUMP", unusual_quantity=10)
    usual = submit(member, program, number="A", lines=[(pump, Decimal("10"), Decimal("100"))])
    assert usual.flags == []
    split = submit(member, program, number="B", lines=[(pump, 6, Decimal("60")), (pump, 5, Decimal("50"))])
    assert split.flags == [ClaimFlag.UNUSUAL_QUANTITY]
    assert "unusual quantity 11 × PUMP (usually at most 10)" in split.events.first().note


@pytest.mark.django_db
def test_several_flags_are_kept_in_order(program):
    submit(MemberFactory(), program, number="Z-9")
    claim = submit(
        MemberFactory(),
        program,
        number="Z-9",
        invoice_date=TODAY - timedelta(days=90),
        lines=[(ProductFactory(is_active=False, unusual_quantity=1), Decimal("5"), Decimal("10"))],
    )
    assert claim.flags == [
        ClaimFlag.UNKNOWN_PRODUCT,
        ClaimFlag.OUTSIDE_WINDOW,
        ClaimFlag.DUPLICATE_OTHER_PARTNER,
        ClaimFlag.UNUSUAL_QUANTITY,
    ]


# Refusals -------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "Add at least one line: the product, the quantity and the amount."),
        ([("product", Decimal("0"), Decimal("10"))], "Line 1: the quantity must be more than 0."),
        ([("product", Decimal("-1"), Decimal("10"))], "Line 1: the quantity must be more than 0."),
        ([("product", Decimal("1"), Decimal("-0.01"))], "Line 1: the amount cannot be negative."),
        (
            [("product", Decimal("1.0001"), Decimal("1"))],
            "Line 1: enter a quantity below one billion with at most 3 decimals.",
        ),
        ([("product", 1, 1), (None, 1, 1)], "Line 2: choose a product."),
        ([("product", "abc", 1)], "Line 1: the quantity is not a number."),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_written(program, private_media, lines, message):
    product = ProductFactory()
    lines = [(product if p == "product" else p, q, a) for p, q, a in lines]
    with pytest.raises(ApplicationError) as info:
        submit(MemberFactory(), program, lines=lines)
    assert info.value.message == message
    assert (SalesClaim.objects.count(), ClaimLine.objects.count(), stored_files(private_media)) == (0, 0, [])


@pytest.mark.django_db
def test_a_zero_amount_is_accepted(program):
    assert submit(MemberFactory(), program, lines=[(ProductFactory(), 1, Decimal("0"))]).total_amount == 0


@pytest.mark.django_db
def test_colleagues_must_be_active_members_of_the_same_partner(program):
    member = MemberFactory()
    outsider = MemberFactory()
    leaver = MemberFactory(partner=member.partner, status=MemberStatus.LEFT)
    for colleague in (outsider, leaver):
        error = refused("invalid_colleague", lambda c=colleague: submit(member, program, colleagues=[c]))
        assert f"is not an active member of {member.partner.name}" in error.message
    assert SalesClaim.objects.count() == 0
    ok = submit(member, program, colleagues=[MemberFactory(partner=member.partner), member])
    assert ok.colleagues.count() == 1  # the claimant is not their own colleague


@pytest.mark.django_db
def test_only_active_members_of_active_partners_claim(program):
    pending = MemberFactory(status=MemberStatus.PENDING_APPROVAL)
    refused("member_inactive", lambda: submit(pending, program))
    suspended = MemberFactory(partner__status=PartnerStatus.SUSPENDED)
    refused("partner_inactive", lambda: submit(suspended, program))
    program.is_active = False
    program.save()
    refused("program_inactive", lambda: submit(MemberFactory(), program))
    assert SalesClaim.objects.count() == 0


# Uploads --------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("document", "code", "message"),
    [
        (
            upload("invoice.jpg", b"Just some text, not a photo.\n" * 4, "image/jpeg"),
            "document_type",
            "“invoice.jpg” is not a photo",
        ),
        (
            upload("big.jpg", JPEG + b"\x00" * (11 * 1024 * 1024), "image/jpeg"),
            "document_too_large",
            "The file is 11.0 MB",
        ),
        (upload("page.html", b"<html><script>alert(1)</script>", "application/pdf"), "document_type", "is not a photo"),
    ],
    ids=["text-renamed-jpg", "11-MB", "html-sent-as-pdf"],
)
def test_bad_uploads_are_refused_and_nothing_is_saved(program, private_media, document, code, message):
    error = refused(code, lambda: submit(MemberFactory(), program, document=document))
    assert error.message.startswith(message) or message in error.message
    assert (SalesClaim.objects.count(), ClaimLine.objects.count(), ClaimEvent.objects.count()) == (0, 0, 0)
    assert stored_files(private_media) == []


@pytest.mark.django_db
def test_an_empty_file_is_refused():
    with pytest.raises(ApplicationError) as info:
        checks.check_document(upload("x.jpg", b""))
    assert info.value.code in ("document_empty", "document_missing")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "extension"), [(JPEG, "jpg"), (PNG, "png"), (WEBP, "webp"), (HEIC, "heic"), (PDF, "pdf")]
)
def test_photos_and_pdfs_are_stored_privately_under_a_random_name(program, private_media, settings, content, extension):
    claim = submit(MemberFactory(), program, document=upload("My Invoice.bin", content, "application/octet-stream"))
    stored = Path(claim.document.path)
    assert stored.suffix == f".{extension}" and "My Invoice" not in stored.name
    assert stored.is_relative_to(private_media) and stored.read_bytes() == content
    assert stored_files(Path(settings.MEDIA_ROOT)) == []
    with pytest.raises(ValueError, match="Private files have no URL"):
        claim.document.url  # noqa: B018


# Confirmation by sell-out lines ---------------------------------------------------------------------


def sale_line(source, partner, product, quantity, *, number="INV-9", external_id="L1"):
    return SaleLine.objects.create(
        source=source,
        external_id=external_id,
        partner=partner,
        product=product,
        quantity=Decimal(quantity),
        amount=Decimal("100"),
        invoice_number=number,
        invoice_date=TODAY,
    )


@pytest.fixture
def source(program):
    return SalesSource.objects.create(program=program, name="Distributor feed", code="feed")


@pytest.mark.django_db
def test_sell_out_lines_matching_every_claim_line_approve_the_claim_and_post_its_points(program, source):
    RuleFactory(program=program, name="Softeners")
    member = MemberFactory()
    pump, filter_ = ProductFactory(), ProductFactory()
    claim = submit(member, program, number="INV-9", lines=[(pump, 2, Decimal("800")), (filter_, 1, Decimal("100"))])
    first = sale_line(source, member.partner, pump, 2, number=" inv-9 ", external_id="L1")
    assert services.claims_confirm_by_sale_lines(sale_lines=[first]) == 0  # the filter line is not confirmed yet
    second = sale_line(source, member.partner, filter_, 1, external_id="L2")

    assert services.claims_confirm_by_sale_lines(sale_lines=[second]) == 1

    claim.refresh_from_db()
    assert (claim.status, claim.matched_line, claim.decided_by) == (ClaimStatus.APPROVED, first, None)
    assert claim.events.last().note == "Confirmed by sell-out line feed:L1"
    assert balance(program, member=member) == 30
    assert services.claims_confirm_by_sale_lines(sale_lines=[first, second]) == 0  # nothing left to confirm


@pytest.mark.django_db
def test_sell_out_lines_of_another_quantity_product_or_partner_confirm_nothing(program, source):
    member = MemberFactory()
    pump = ProductFactory()
    claim = submit(member, program, number="INV-9", lines=[(pump, 2, Decimal("800"))])
    lines = [
        sale_line(source, member.partner, pump, 3, external_id="qty"),
        sale_line(source, member.partner, ProductFactory(), 2, external_id="product"),
        sale_line(source, PartnerFactory(), pump, 2, external_id="partner"),
        sale_line(source, member.partner, pump, 2, number="INV-10", external_id="number"),
    ]
    assert services.claims_confirm_by_sale_lines(sale_lines=lines) == 0
    claim.refresh_from_db()
    assert (claim.status, claim.matched_line) == (ClaimStatus.SUBMITTED, None)


@pytest.mark.django_db
def test_a_claim_outside_the_window_gets_the_matching_line_but_still_waits_for_a_decision(program, source):
    member = MemberFactory()
    pump = ProductFactory()
    claim = submit(member, program, number="OLD", invoice_date=TODAY - timedelta(days=80), lines=[(pump, 1, 10)])
    line = sale_line(source, member.partner, pump, 1, number="OLD")
    assert services.claims_confirm_by_sale_lines(sale_lines=[line]) == 0
    claim.refresh_from_db()
    assert (claim.status, claim.matched_line) == (ClaimStatus.SUBMITTED, line)


# Approval while a sell-out import posts -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_approval_does_not_wait_for_a_running_import_and_happens_once_it_has_finished(
    settings, tmp_path, monkeypatch
):
    """An import holds its program's budget rules to its end (ledger_bulk.ImportLedger.begin): a claim submitted
    meanwhile waits for review instead of hanging the member's page, a manager's approval says why it cannot
    post yet, and nothing is half-posted; once the import is done the claim is approved automatically."""
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "busy"
    monkeypatch.setattr(services, "APPROVAL_LOCK_WAIT_MS", 200)
    program = ProgramFactory(claim_auto_approve_below=Decimal("500.00"))
    rule = RuleFactory(program=program, name="Launch bonus", value=Decimal(10), budget_points=1000)
    member, manager = MemberFactory(), ProgramManagerFactory()
    locked, release = threading.Event(), threading.Event()

    def running_import():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                ledger = ImportLedger(program, sales_import_id=0, label="running", budget_rule_ids=[rule.pk])
                ledger.begin(cursor)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=running_import)
    holder.start()
    try:
        assert locked.wait(30)
        claim = submit(member, program, lines=[(ProductFactory(), Decimal("2"), Decimal("100.00"))])
        assert (claim.status, claim.decided_by) == (ClaimStatus.SUBMITTED, None)
        error = refused("rules_busy", lambda: services.claim_approve(claim=claim, actor=manager))
        assert "sell-out import is posting points" in error.message
        claim.refresh_from_db()
        assert claim.status == ClaimStatus.SUBMITTED
        assert claim_entries(claim) == []
        assert IncentiveRule.objects.get(pk=rule.pk).budget_used == 0
    finally:
        release.set()
        holder.join(30)

    assert services.claims_auto_approve_waiting(program=program) == 1  # what an import does when it has finished
    claim.refresh_from_db()
    assert (claim.status, claim.events.last().note) == (ClaimStatus.APPROVED, "Approved automatically")
    assert balance(program, member=member) == 20
    assert IncentiveRule.objects.get(pk=rule.pk).budget_used == 20
    with connection.cursor() as cursor:  # the shorter lock timeout stayed inside the approval
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"
    assert ledger_problems() == []


@pytest.mark.django_db
def test_only_waiting_claims_without_flags_under_the_threshold_are_approved_after_an_import(program, manager):
    RuleFactory(program=program, value=Decimal(10))
    product = ProductFactory()
    program.claim_auto_approve_below = Decimal("0.00")  # as if posting had been refused at submission
    program.save()
    small = submit(MemberFactory(), program, number="INV-S", lines=[(product, Decimal("1"), Decimal("100.00"))])
    submit(MemberFactory(), program, number="INV-L", lines=[(product, Decimal("1"), Decimal("600.00"))])
    rejected = submit(MemberFactory(), program, number="INV-R", lines=[(product, Decimal("1"), Decimal("100.00"))])
    services.claim_reject(claim=rejected, actor=manager, reason=RejectionReason.MISMATCH, text="Not ours")
    flagged = submit(MemberFactory(), program, number="INV-F", lines=[(product, Decimal("1"), Decimal("100.00"))])
    SalesClaim.objects.filter(pk=flagged.pk).update(flags=[ClaimFlag.UNUSUAL_QUANTITY])
    program.claim_auto_approve_below = Decimal("500.00")
    program.save()

    assert services.claims_auto_approve_waiting(program=program) == 1
    statuses = dict(SalesClaim.objects.values_list("invoice_number", "status"))
    assert statuses == {
        "INV-S": ClaimStatus.APPROVED,
        "INV-L": ClaimStatus.SUBMITTED,
        "INV-R": ClaimStatus.REJECTED,
        "INV-F": ClaimStatus.SUBMITTED,
    }
    assert services.claims_auto_approve_waiting(program=program) == 0
    assert len(claim_entries(small)) == 1
    assert ledger_problems() == []
