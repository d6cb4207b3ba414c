"""The checks a sales claim passes before it is stored: its lines, its claimant, its invoice (number, date, the
claim window), its document, and the flags that send it to review (unknown product, duplicate invoice,
unusual quantity). Used by loyalty.services.claims, which decides claims; the claim form and pages ask
`can_resubmit`, `can_withdraw` and `claim_deadline` here."""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import F, Func, Value
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.common.storage import MAX_DOCUMENT_BYTES, DocumentKind, sniff_file
from loyalty.constants import ClaimFlag, ClaimStatus
from loyalty.error_codes import ErrorCode
from loyalty.models import Product, Program, SalesClaim
from partners.constants import MemberStatus, PartnerStatus
from partners.models import Member

logger = logging.getLogger(__name__)

MAX_LINES = 50
MAX_COLLEAGUES = 50
MAX_QUANTITY = Decimal("999999999.999")
MAX_AMOUNT = Decimal("999999999999.99")
QUANTITY_STEP = Decimal("0.001")
AMOUNT_STEP = Decimal("0.01")
INVOICE_NUMBER_MAX = 60
NOTE_MAX = 500


# Checks ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    product: Product
    quantity: Decimal
    amount: Decimal


def normalise_invoice_number(value: str) -> str:
    """The form invoice numbers are stored and compared in: upper case, without any spaces."""
    return "".join((value or "").split()).upper()


def check_document(document) -> DocumentKind:
    """The kind of an uploaded invoice (JPEG, PNG, WebP, HEIC or PDF, by its content), or a clear refusal."""
    if not document:
        raise ApplicationError("Add a photo or a PDF of the invoice.", code=ErrorCode.DOCUMENT_MISSING)
    size = getattr(document, "size", None) or 0
    if size > MAX_DOCUMENT_BYTES:
        raise ApplicationError(
            f"The file is {size / 1024 / 1024:.1f} MB; the largest accepted is "
            f"{MAX_DOCUMENT_BYTES // 1024 // 1024} MB. Take the photo again or choose a smaller file.",
            code=ErrorCode.DOCUMENT_TOO_LARGE,
        )
    if size == 0:
        raise ApplicationError(
            "The file is empty. Take the photo again or choose another file.", code=ErrorCode.DOCUMENT_EMPTY
        )
    kind = sniff_file(document)
    if kind is None:
        name = getattr(document, "name", "") or "The file"
        raise ApplicationError(
            f"“{name}” is not a photo (JPEG, PNG, WebP or HEIC) or a PDF. "
            "Take a photo of the invoice or choose its PDF.",
            code=ErrorCode.DOCUMENT_TYPE,
        )
    return kind


def _decimal(value, *, line: int, what: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ApplicationError(f"Line {line}: the {what} is not a number.", code=ErrorCode.INVALID_LINE) from None
    if not number.is_finite():
        raise ApplicationError(f"Line {line}: the {what} is not a number.", code=ErrorCode.INVALID_LINE)
    return number


def check_lines(lines: Sequence) -> list[Line]:
    if not lines:
        raise ApplicationError(
            "Add at least one line: the product, the quantity and the amount.", code=ErrorCode.NO_LINES
        )
    if len(lines) > MAX_LINES:
        raise ApplicationError(f"A claim can have at most {MAX_LINES} lines.", code=ErrorCode.TOO_MANY_LINES)
    checked = []
    for number, (product, quantity, amount) in enumerate(lines, start=1):
        if not isinstance(product, Product) or product.pk is None:
            raise ApplicationError(f"Line {number}: choose a product.", code=ErrorCode.INVALID_LINE)
        quantity = _decimal(quantity, line=number, what="quantity")
        amount = _decimal(amount, line=number, what="amount")
        if quantity <= 0:
            raise ApplicationError(f"Line {number}: the quantity must be more than 0.", code=ErrorCode.INVALID_LINE)
        if quantity > MAX_QUANTITY or quantity != quantity.quantize(QUANTITY_STEP):
            raise ApplicationError(
                f"Line {number}: enter a quantity below one billion with at most 3 decimals.",
                code=ErrorCode.INVALID_LINE,
            )
        if amount < 0:
            raise ApplicationError(f"Line {number}: the amount cannot be negative.", code=ErrorCode.INVALID_LINE)
        if amount > MAX_AMOUNT or amount != amount.quantize(AMOUNT_STEP):
            raise ApplicationError(
                f"Line {number}: enter the amount with at most 2 decimals.", code=ErrorCode.INVALID_LINE
            )
        checked.append(Line(product, quantity.quantize(QUANTITY_STEP), amount.quantize(AMOUNT_STEP)))
    return checked


def check_member(member: Member) -> Member:
    """The claimant as stored now (with partner and role): active, in an active partner."""
    fresh = Member.objects.select_related("user", "role", "partner").get(pk=member.pk)
    if fresh.status != MemberStatus.ACTIVE:
        raise ApplicationError(
            f"Only active members can claim sales; this membership is {fresh.get_status_display().lower()}.",
            code=ErrorCode.MEMBER_INACTIVE,
        )
    if fresh.partner.status != PartnerStatus.ACTIVE:
        raise ApplicationError(
            f"{fresh.partner.name} is {fresh.partner.get_status_display().lower()} in the program; "
            "sales cannot be claimed now.",
            code=ErrorCode.PARTNER_INACTIVE,
        )
    return fresh


def check_program(program: Program) -> None:
    if not program.is_active:
        raise ApplicationError(
            f"{program.name} is not running; sales cannot be claimed in it.", code=ErrorCode.PROGRAM_INACTIVE
        )


def check_colleagues(member: Member, colleagues: Iterable[Member]) -> list[Member]:
    """Active members of the claimant's partner (the claimant and repeats dropped), as stored now."""
    ids = {c.pk for c in colleagues} - {member.pk}
    if len(ids) > MAX_COLLEAGUES:
        raise ApplicationError(f"Name at most {MAX_COLLEAGUES} colleagues.", code=ErrorCode.INVALID_COLLEAGUE)
    found = list(Member.objects.select_related("user", "role").filter(pk__in=ids).order_by("pk"))
    for colleague in found:
        if colleague.partner_id != member.partner_id or colleague.status != MemberStatus.ACTIVE:
            raise ApplicationError(
                f"{colleague.user.get_full_name()} is not an active member of {member.partner.name}; "
                "only active colleagues can share a claim.",
                code=ErrorCode.INVALID_COLLEAGUE,
            )
    if len(found) != len(ids):
        raise ApplicationError("A colleague named on the claim does not exist.", code=ErrorCode.INVALID_COLLEAGUE)
    return found


def check_invoice(number: str, invoice_date: date, today: date) -> None:
    if not number:
        raise ApplicationError("Enter the invoice number.", code=ErrorCode.INVOICE_NUMBER_MISSING)
    if len(number) > INVOICE_NUMBER_MAX:
        raise ApplicationError(
            f"The invoice number is longer than {INVOICE_NUMBER_MAX} characters.",
            code=ErrorCode.INVOICE_NUMBER_TOO_LONG,
        )
    if not isinstance(invoice_date, date):
        raise ApplicationError("Enter the invoice date.", code=ErrorCode.INVOICE_DATE_MISSING)
    if invoice_date > today:
        raise ApplicationError(
            f"The invoice date {invoice_date:%d %b %Y} is in the future; enter the date printed on the invoice.",
            code=ErrorCode.INVOICE_DATE_FUTURE,
        )


def claim_deadline(*, program: Program, invoice_date: date) -> date:
    """The last day a sale invoiced on `invoice_date` can be claimed (or corrected and resubmitted)."""
    return invoice_date + timedelta(days=program.claim_window_days)


def can_resubmit(*, claim: SalesClaim, member: Member | None, today: date | None = None) -> bool:
    """Whether `member` may correct and resubmit `claim` now: their own, rejected, within the window."""
    today = today or timezone.localdate()
    return (
        member is not None
        and claim.member_id == member.pk
        and claim.status == ClaimStatus.REJECTED
        and today <= claim_deadline(program=claim.program, invoice_date=claim.invoice_date)
    )


def can_withdraw(*, claim: SalesClaim, member: Member | None) -> bool:
    return member is not None and claim.member_id == member.pk and claim.status == ClaimStatus.SUBMITTED


# Flags ----------------------------------------------------------------------------------------------


def same_invoice(program: Program, number: str, exclude_pk: int | None):
    claims = SalesClaim.objects.filter(program=program, invoice_number=number).exclude(status=ClaimStatus.WITHDRAWN)
    return claims.exclude(pk=exclude_pk) if exclude_pk else claims


def _refuse_duplicate(program: Program, partner_id: int, number: str, exclude_pk: int | None) -> None:
    earlier = same_invoice(program, number, exclude_pk).filter(partner_id=partner_id).order_by("pk").first()
    if earlier is None:
        return
    hint = " Correct and resubmit that claim instead." if earlier.status == ClaimStatus.REJECTED else ""
    raise ApplicationError(
        f"Invoice {number} is already claimed in claim {earlier.pk} "
        f"({earlier.get_status_display().lower()}, {timezone.localdate(earlier.created_at):%d %b %Y}).{hint}",
        code=ErrorCode.DUPLICATE_INVOICE,
        extra={"claim_id": earlier.pk},
    )


def _flags(
    *, program: Program, partner_id: int, number: str, invoice_date: date, lines: list[Line], today: date, exclude_pk
) -> tuple[list[str], list[str], list[int]]:
    """(flags, notes explaining them, ids of other partners' claims of the same invoice)."""
    flags, notes = [], []
    inactive = [line.product.sku for line in lines if not line.product.is_active]
    if inactive:
        flags.append(ClaimFlag.UNKNOWN_PRODUCT)
        notes.append(f"inactive product {', '.join(dict.fromkeys(inactive))}")
    if invoice_date < today - timedelta(days=program.claim_window_days):
        flags.append(ClaimFlag.OUTSIDE_WINDOW)
        notes.append(f"invoice dated {(today - invoice_date).days} days ago (window {program.claim_window_days} days)")
    others = list(
        same_invoice(program, number, exclude_pk)
        .exclude(partner_id=partner_id)
        .order_by("pk")
        .values_list("pk", flat=True)[:10]
    )
    if others:
        flags.append(ClaimFlag.DUPLICATE_OTHER_PARTNER)
        notes.append(f"same invoice in claim {', '.join(map(str, others))} of another partner")
    per_product: dict[int, tuple[Product, Decimal]] = {}
    for line in lines:
        product, quantity = per_product.get(line.product.pk, (line.product, Decimal(0)))
        per_product[line.product.pk] = (product, quantity + line.quantity)
    unusual = [
        f"{quantity.normalize():f} × {product.sku} (usually at most {product.unusual_quantity})"
        for product, quantity in per_product.values()
        if product.unusual_quantity is not None and quantity > product.unusual_quantity
    ]
    if unusual:
        flags.append(ClaimFlag.UNUSUAL_QUANTITY)
        notes.append("unusual quantity " + ", ".join(unusual))
    return flags, notes, others


def check_same_invoice(
    program: Program,
    partner_id: int,
    number: str,
    invoice_date: date,
    lines: list[Line],
    today: date,
    exclude_pk: int | None = None,
) -> tuple[list[str], list[str], list[int]]:
    """Refuse an invoice the partner already claimed (_refuse_duplicate); otherwise the claim's _flags: (flags,
    notes explaining them, ids of other partners' claims of the same invoice). `exclude_pk`: the claim corrected."""
    _refuse_duplicate(program, partner_id, number, exclude_pk)
    return _flags(
        program=program,
        partner_id=partner_id,
        number=number,
        invoice_date=invoice_date,
        lines=lines,
        today=today,
        exclude_pk=exclude_pk,
    )


def flag_other_claims(other_ids: list[int]) -> None:
    """The other partners' claims of the same invoice that still wait for review get the flag too."""
    flag = ClaimFlag.DUPLICATE_OTHER_PARTNER.value
    SalesClaim.objects.filter(pk__in=other_ids, status=ClaimStatus.SUBMITTED).exclude(flags__contains=[flag]).update(
        flags=Func(F("flags"), Value(flag), function="array_append")
    )
