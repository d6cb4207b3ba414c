"""The checks a sales claim passes before it is stored: its lines (and the ceilings of units and money per product
in one claim), its claimant, its invoice (number, date, the claim window), its document, and the flags that send
it to review (unknown product, duplicate invoice, unusual quantity). Used by loyalty.services.claims, which decides
claims; the claim form and pages ask `can_resubmit`, `can_withdraw` and `claim_deadline` here, the back office
`flag_explanations`."""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import F, Func, Value
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import DAY_FORMAT, format_money
from loyalty.common.keys import matching_key
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
# An invoice older than the claim window is flagged for review for this many more days, then refused: a late
# claim stays possible, a mistyped year (0001-01-01, 2002 for 2026) does not reach review.
LATE_CLAIM_DAYS = 365


# Checks ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    product: Product
    quantity: Decimal
    amount: Decimal


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


def check_lines(lines: Sequence, *, program: Program) -> list[Line]:
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
    _check_ceilings(program, checked)
    return checked


def _line_numbers(numbers: list[int]) -> str:
    """ "Line 2", "Lines 1 and 3", "Lines 1, 3 and 5"."""
    if len(numbers) == 1:
        return _("Line %(number)s") % {"number": numbers[0]}
    return _("Lines %(numbers)s and %(last)s") % {"numbers": ", ".join(map(str, numbers[:-1])), "last": numbers[-1]}


def _check_ceilings(program: Program, lines: list[Line]) -> None:
    """Refuse more units or money of one product in one claim than its ceilings (else the program's) allow. The
    lines of a product add up, so that splitting a line does not get round them."""
    per_product: dict[int, tuple[Product, list[int], Decimal, Decimal]] = {}
    for number, line in enumerate(lines, start=1):
        product, numbers, quantity, amount = per_product.get(
            line.product.pk, (line.product, [], Decimal(0), Decimal(0))
        )
        per_product[line.product.pk] = (product, [*numbers, number], quantity + line.quantity, amount + line.amount)
    for product, numbers, quantity, amount in per_product.values():
        max_quantity = product.claim_max_quantity or program.claim_max_quantity
        max_amount = product.claim_max_amount or program.claim_max_amount
        where = {"lines": _line_numbers(numbers), "sku": product.sku}
        if quantity > max_quantity:
            message = _(
                "%(lines)s (%(sku)s): %(quantity)s units is more than one claim may have of this product "
                "(at most %(ceiling)s). Check the quantity on the invoice."
            )
            raise ApplicationError(
                message
                % {
                    **where,
                    "quantity": number_format(quantity.normalize(), force_grouping=True),
                    "ceiling": number_format(max_quantity, force_grouping=True),
                },
                code=ErrorCode.OVER_CEILING,
            )
        if amount > max_amount:
            message = _(
                "%(lines)s (%(sku)s): %(amount)s is more than one claim may have of this product "
                "(at most %(ceiling)s). Check the amount on the invoice."
            )
            raise ApplicationError(
                message
                % {
                    **where,
                    "amount": format_money(amount, program.money_currency),
                    "ceiling": format_money(max_amount, program.money_currency),
                },
                code=ErrorCode.OVER_CEILING,
            )


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


def earliest_invoice_date(*, program: Program, today: date) -> date:
    """The oldest invoice a claim may name today: the claim window, then LATE_CLAIM_DAYS of late claims."""
    return today - timedelta(days=program.claim_window_days + LATE_CLAIM_DAYS)


def check_invoice(number: str, invoice_date: date, today: date, *, program: Program) -> str:
    """Check the invoice as typed; returns its number's matching key (what duplicates are found by)."""
    key = matching_key(number)
    if not key:  # nothing but spaces or invisible characters
        raise ApplicationError("Enter the invoice number.", code=ErrorCode.INVOICE_NUMBER_MISSING)
    if max(len(number), len(key)) > INVOICE_NUMBER_MAX:
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
    earliest = earliest_invoice_date(program=program, today=today)
    if invoice_date < earliest:
        message = _(
            "The invoice date %(date)s is too far back: %(program)s takes invoices from %(earliest)s on (its claim "
            "window of %(window)s days, then a year for late claims). Enter the date printed on the invoice."
        )
        raise ApplicationError(
            message
            % {
                "date": date_format(invoice_date, DAY_FORMAT),
                "program": program.name,
                "earliest": date_format(earliest, DAY_FORMAT),
                "window": program.claim_window_days,
            },
            code=ErrorCode.INVOICE_DATE_TOO_OLD,
        )
    return key


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


def same_invoice(program: Program, key: str, exclude_pk: int | None):
    """The program's claims (not withdrawn) of the invoice whose number has this matching key."""
    claims = SalesClaim.objects.filter(program=program, invoice_key=key).exclude(status=ClaimStatus.WITHDRAWN)
    return claims.exclude(pk=exclude_pk) if exclude_pk else claims


def _refuse_duplicate(program: Program, partner_id: int, number: str, exclude_pk: int | None) -> None:
    earlier = same_invoice(program, number, exclude_pk).filter(partner_id=partner_id).order_by("pk").first()
    if earlier is None:
        return
    hint = " Correct and resubmit that claim instead." if earlier.status == ClaimStatus.REJECTED else ""
    raise ApplicationError(
        f"Invoice {earlier.invoice_number} is already claimed in claim {earlier.pk} "
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
    notes explaining them, ids of other partners' claims of the same invoice). `number`: the invoice number's
    matching key (check_invoice); `exclude_pk`: the claim corrected."""
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


# What each flag asks the reviewer to check, on the page where a flagged claim is approved with a reason.
FLAG_MEANINGS = {
    ClaimFlag.UNKNOWN_PRODUCT: gettext_lazy(
        "A product of the claim is inactive or unknown: check that it is ours and that it was still sold then."
    ),
    ClaimFlag.OUTSIDE_WINDOW: gettext_lazy(
        "The sale was claimed after the claim window had closed: check why it is claimed late."
    ),
    ClaimFlag.DUPLICATE_OTHER_PARTNER: gettext_lazy(
        "Another partner claimed the same invoice: check which partner made the sale, or both may be paid."
    ),
    ClaimFlag.UNUSUAL_QUANTITY: gettext_lazy(
        "More units of a product than it usually sells in one claim: check the quantity on the invoice."
    ),
}


@dataclass(frozen=True)
class FlagExplanation:
    label: str
    meaning: str
    detail: str  # what raised the flag for this claim, as found now; empty when it no longer holds


def flag_explanations(claim: SalesClaim) -> list[FlagExplanation]:
    """The claim's flags, each with what it asks to check and what raised it (the checks run again as on the day
    it was submitted)."""
    lines = [Line(line.product, line.quantity, line.amount) for line in claim.lines.select_related("product")]
    flags, notes, _others = _flags(
        program=claim.program,
        partner_id=claim.partner_id,
        number=claim.invoice_key,
        invoice_date=claim.invoice_date,
        lines=lines,
        today=timezone.localdate(claim.created_at),
        exclude_pk=claim.pk,
    )
    details = dict(zip(flags, notes, strict=True))
    return [
        FlagExplanation(ClaimFlag(flag).label, str(FLAG_MEANINGS[flag]), details.get(flag, "")) for flag in claim.flags
    ]


def flag_other_claims(other_ids: list[int]) -> None:
    """The other partners' claims of the same invoice that still wait for review get the flag too."""
    flag = ClaimFlag.DUPLICATE_OTHER_PARTNER.value
    SalesClaim.objects.filter(pk__in=other_ids, status=ClaimStatus.SUBMITTED).exclude(flags__contains=[flag]).update(
        flags=Func(F("flags"), Value(flag), function="array_append")
    )
