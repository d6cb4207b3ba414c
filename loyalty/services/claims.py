"""Sales claims: a member claims a sale (invoice, lines, proof, colleagues); automatic checks refuse or flag it;
a program manager approves it (points post through the rule engine) or rejects it with a reason the member
sees; the member corrects and resubmits it while the claim window is open.

- Refused at once (ApplicationError, nothing written): an inactive member, no lines, a quantity ≤ 0 or a
  negative amount, more units or money of a product than its ceilings (else the program's) allow, a colleague
  who is not an active member of the same partner, an invoice date in the future or more than a year past the
  claim window, a document that is not a photo or PDF or is larger than 10 MB, an invoice number the same
  partner already claimed in this program (in any claim that is not withdrawn), and a sale whose every unit was
  already paid for (the sell-out reported it: the refusal says who and when).
- Flagged for review: an inactive product, an invoice older than the program's claim window, the same
  invoice claimed by another partner (suspected duplicate), a quantity above the product's usual maximum.
- A claim without flags worth less than the program's `claim_auto_approve_below` is approved at once.
- A flagged claim is approved only by a program manager who says why (`claim_approve(reason=…)`, kept in the
  claim's history): never automatically, never by a confirming sell-out line, never in one click.

Every status move locks the claim row, checks CLAIM_TRANSITIONS and appends a ClaimEvent. Claims of one
invoice number are serialised by a transaction-scoped advisory lock (taken before any claim row lock), so
two simultaneous submissions of one invoice can never both pass the duplicate check. Invoice numbers are
stored as typed and compared by their matching key (loyalty.common.keys: "inv-0042", "INV 0042" with a zero-width
space after it and the same typed in full-width characters are one invoice).

One sale pays once (selectors.one_sale): an approved line pays for at most what the largest report of its sale
(partner, invoice, product) leaves unpaid: each sell-out source's, or the partner's approved claims' with this one;
a line that pays for less earns for that part of its quantity and amount (`paid_quantity`), and the claim page
says who reported the rest. Approvals hold the program's sales-paid lock (shared; a sell-out import holds it
exclusive) and the partner's claim-paid lock, so that two payers never pay the same units.
"""

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from communications.constants import Kind
from communications.services import Notice, notify, notify_many
from loyalty.common.background import enqueue_on_commit
from loyalty.common.errors import ApplicationError
from loyalty.common.events import publish
from loyalty.common.formatting import DAY_FORMAT
from loyalty.common.storage import DocumentKind
from loyalty.constants import CLAIM_TRANSITIONS, ClaimFlag, ClaimStatus, EntrySource, RejectionReason
from loyalty.engine.facts import claim_line_event, partner_tiers
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import (
    LockNotAvailable,
    claim_invoice_lock,
    claim_lock,
    claim_paid_lock,
    lock_wait_at_most,
    sales_paid_lock,
)
from loyalty.models import (
    ClaimEvent,
    ClaimLine,
    PointsAccount,
    Product,
    Program,
    SaleLine,
    SalesClaim,
    SalesSource,
)
from loyalty.selectors.one_sale import Sale, largest_reports, sale_reports
from loyalty.services import challenges
from loyalty.services.claim_checks import (
    NOTE_MAX,
    Line,
    check_colleagues,
    check_document,
    check_invoice,
    check_lines,
    check_member,
    check_program,
    check_same_invoice,
    claim_deadline,
    flag_other_claims,
)
from loyalty.services.earning import post_event, published_rules
from partners.models import Member

logger = logging.getLogger(__name__)

# The field of the claim each refusal concerns (a form shows the message next to it); the others concern the claim.
ERROR_FIELDS = {
    ErrorCode.INVOICE_NUMBER_MISSING: "invoice_number",
    ErrorCode.INVOICE_NUMBER_TOO_LONG: "invoice_number",
    ErrorCode.DUPLICATE_INVOICE: "invoice_number",
    ErrorCode.INVOICE_DATE_MISSING: "invoice_date",
    ErrorCode.INVOICE_DATE_FUTURE: "invoice_date",
    ErrorCode.INVOICE_DATE_TOO_OLD: "invoice_date",
    ErrorCode.WINDOW_CLOSED: "invoice_date",
    ErrorCode.DOCUMENT_MISSING: "document",
    ErrorCode.DOCUMENT_EMPTY: "document",
    ErrorCode.DOCUMENT_TOO_LARGE: "document",
    ErrorCode.DOCUMENT_TYPE: "document",
    ErrorCode.INVALID_COLLEAGUE: "colleagues",
}
# How a move to each status is said in a refusal ("it cannot be withdrawn now").
WORD_FOR = {
    ClaimStatus.APPROVED: "approved",
    ClaimStatus.REJECTED: "rejected",
    ClaimStatus.WITHDRAWN: "withdrawn",
    ClaimStatus.SUBMITTED: "resubmitted",
}
# Why a flagged claim is approved anyway: kept in its history (ClaimEvent.note, NOTE_MAX with the flags' names).
APPROVAL_REASON_MAX = 300


# Moves ----------------------------------------------------------------------------------------------


def _check_move(claim: SalesClaim, to: str) -> None:
    if to in CLAIM_TRANSITIONS[claim.status]:
        return
    if claim.status == to:
        message = f"Claim {claim.pk} is already {WORD_FOR[to] if to != ClaimStatus.SUBMITTED else 'submitted'}."
    else:
        message = f"Claim {claim.pk} is {claim.get_status_display().lower()}; it cannot be {WORD_FOR[to]} now."
    raise ApplicationError(message, code=ErrorCode.BAD_TRANSITION)


def _move(claim: SalesClaim, to: str, *, actor, note: str, fields: Sequence[str] = ()) -> None:
    """Check the move, save the status (and `fields`) and record the event. `claim` is locked."""
    _check_move(claim, to)
    from_status = claim.status
    claim.status = to
    claim.save(update_fields=["status", "updated_at", *fields])
    ClaimEvent.objects.create(claim=claim, from_status=from_status, to_status=to, actor=actor, note=note[:NOTE_MAX])


def _require_program_manager(user) -> None:
    if not (getattr(user, "is_active", False) and getattr(user, "is_program_manager", False)):
        raise ApplicationError("Only program managers decide on claims.", code=ErrorCode.FORBIDDEN)


def _require_claimant(claim: SalesClaim, member: Member, verb: str) -> None:
    if member is None or claim.member_id != member.pk:
        raise ApplicationError(f"Only the member who made claim {claim.pk} can {verb} it.", code=ErrorCode.FORBIDDEN)


def _paid_quantities(claim: SalesClaim, lines: list[ClaimLine]) -> list[Decimal]:
    """What each line pays for: per product, what the largest report of the sale (each sell-out source's, or the
    partner's approved claims' with this one) leaves unpaid, handed to the lines in order."""
    sales = {line.product_id: Sale(claim.partner_id, claim.invoice_key, line.product_id) for line in lines}
    reports = sale_reports(program_id=claim.program_id, sales=sales.values())
    for line in lines:
        reports[sales[line.product_id]].claimed += line.quantity
    left = {product_id: reports[sale].payable() for product_id, sale in sales.items()}
    paid = []
    for line in lines:
        share = min(line.quantity, left[line.product_id])
        left[line.product_id] -= share
        paid.append(share)
    return paid


def _part_of(amount: Decimal, paid: Decimal, quantity: Decimal) -> Decimal:
    """The part of a line's amount for `paid` of its `quantity` units."""
    if paid == quantity:
        return amount
    return (amount * paid / quantity).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _flag_names(claim: SalesClaim) -> str:
    return ", ".join(str(ClaimFlag(flag).label) for flag in claim.flags)


def _approve(
    claim: SalesClaim, *, actor, note: str, reason: str = "", matched_line: SaleLine | None = None
) -> SalesClaim:
    """Post every line's points through the engine and mark the claim approved. `claim` is locked.
    Posting is idempotent by the lines' source keys: a repeated approval posts nothing twice.
    A flagged claim needs the `reason` it is approved anyway: without one it is refused, whoever approves it."""
    _check_move(claim, ClaimStatus.APPROVED)
    if claim.flags and not reason:
        message = _(
            "Claim %(claim)s is flagged (%(flags)s): say why it is approved anyway; the reason is kept in its history."
        )
        raise ApplicationError(
            message % {"claim": claim.pk, "flags": _flag_names(claim)}, code=ErrorCode.REASON_REQUIRED
        )
    program = claim.program
    sales_paid_lock(program.pk, exclusive=False)  # no import pays the program's sales meanwhile
    claim_paid_lock(program.pk, claim.partner_id)  # nor another approval of the partner's claims
    rules = published_rules(program)
    # Challenges count the approved claim (once); before the lines post, as challenge entries lock before accounts.
    challenges.record_claim_approved(claim=claim, post_event=post_event)
    tier = partner_tiers(program, [claim.partner_id]).get(claim.partner_id)
    colleagues = list(claim.colleagues.select_related("role").order_by("pk"))
    lines = list(claim.lines.select_related("product__line").order_by("pk"))
    entries = []
    for line, paid in zip(lines, _paid_quantities(claim, lines), strict=True):
        line.paid_quantity = paid
        if paid <= 0:
            continue
        amount = _part_of(line.amount, paid, line.quantity)
        event = claim_line_event(claim, line, quantity=paid, amount=amount, tier=tier, colleagues=colleagues)
        entries += post_event(program=program, event=event, rules=rules, source_type=EntrySource.CLAIM)
    ClaimLine.objects.bulk_update(lines, ["paid_quantity"])
    claim.decided_by = actor
    claim.decided_at = timezone.now()
    fields = ["decided_by", "decided_at"]
    if matched_line is not None:
        claim.matched_line = matched_line
        fields.append("matched_line")
    _move(claim, ClaimStatus.APPROVED, actor=actor, note=note, fields=fields)
    publish(
        "claim.decided",
        program_id=program.pk,
        data={"claim_id": claim.pk, "member_id": claim.member_id, "partner_id": claim.partner_id,
              "status": ClaimStatus.APPROVED.value, "reason": reason,
              "points": sum(entry.available_delta + entry.pending_delta for entry in entries)},
    )  # fmt: skip
    _tell_claimant_approved(claim, entries, lines)
    # Upgrades happen as soon as a partner qualifies, not at the next daily review.
    program_id, partner_id = claim.program_id, claim.partner_id
    enqueue_on_commit("loyalty.tasks.evaluate_partner_tier", program_id, partner_id)
    return claim


def _tell_claimant_approved(claim: SalesClaim, entries: list, lines: list[ClaimLine]) -> None:
    """The claimant hears what the claim earned them, and why: their own entries only (a colleague's or the
    company's share is not theirs; the claim's page shows every share), with a tip about the product line that
    earned them most."""
    own = PointsAccount.objects.filter(program=claim.program_id, member=claim.member_id).values_list("pk", flat=True)
    own_account = own.first()
    mine = [entry for entry in entries if entry.account_id == own_account]
    points = sum(entry.available_delta + entry.pending_delta for entry in mine)
    explanation = "\n".join(dict.fromkeys(entry.explanation for entry in mine if entry.explanation))
    variables = {
        "invoice_number": claim.invoice_number,
        "points": points,
        "explanation": explanation,
        "product_line": _main_product_line(lines, mine),
    }
    path = reverse("claim_detail", args=[claim.pk])
    notify(
        kind=Kind.CLAIM_APPROVED,
        member=claim.member,
        source_key=f"claim:{claim.pk}:approved",
        variables=variables,
        link_path=path,
    )


def _main_product_line(lines: list[ClaimLine], entries: list) -> str:
    """The code of the product line whose claim lines earned `entries` the most points ("" when none earned): the
    line the message's tip is about. Ties go to the first code in alphabetical order."""
    line_codes = {line.source_key: line.product.line.code for line in lines}
    points = Counter()
    for entry in entries:
        if entry.source_id in line_codes:
            points[line_codes[entry.source_id]] += entry.available_delta + entry.pending_delta
    return max(sorted(points), key=points.__getitem__, default="")


def _tell_colleagues_named(claim: SalesClaim, colleagues: list[Member]) -> None:
    """Each colleague the claimant named hears of the claim: they share its points once it is approved."""
    if not colleagues:
        return
    variables = {"invoice_number": claim.invoice_number, "colleague": str(claim.member.user)}
    notify_many(
        kind=Kind.CLAIM_COLLEAGUE,
        notices=[Notice(colleague.pk, f"claim:{claim.pk}:colleague", variables) for colleague in colleagues],
        link_path=reverse("claim_detail", args=[claim.pk]),
    )


def _tell_claimant_rejected(claim: SalesClaim) -> None:
    """The claimant hears why, and until when they may correct the claim and send it again."""
    reason = RejectionReason(claim.rejection_reason).label + (
        f": {claim.rejection_text}" if claim.rejection_text else ""
    )
    deadline = claim.invoice_date + timedelta(days=claim.program.claim_window_days)
    variables = {"invoice_number": claim.invoice_number, "reason": reason, "deadline": deadline}
    key = f"claim:{claim.pk}:rejected:{claim.submissions}"  # a corrected claim may be rejected again
    notify(
        kind=Kind.CLAIM_REJECTED,
        member=claim.member,
        source_key=key,
        variables=variables,
        link_path=reverse("claim_detail", args=[claim.pk]),
    )


# A running sell-out import holds its program's budget and cap rows until it commits (a minute for a million
# lines): an approval waits this long for them, then says so instead of hanging the page.
APPROVAL_LOCK_WAIT_MS = 3000


@contextmanager
def _approval_posting() -> Iterator[None]:
    """A savepoint in which waiting for a lock longer than APPROVAL_LOCK_WAIT_MS becomes an ApplicationError;
    the savepoint's rollback undoes any half of the posting."""
    try:
        with lock_wait_at_most(APPROVAL_LOCK_WAIT_MS):
            yield
    except LockNotAvailable:
        raise ApplicationError(
            "A sell-out import is posting points under this program's rules right now; the claim was left as it "
            "was. Approve it again once the import has finished (Sales imports shows its progress).",
            ErrorCode.RULES_BUSY,
        ) from None


def _sales_paid_lock_within_wait(program_id: int) -> bool:
    """Take the program's sales-paid lock (shared) before any claim lock, as every payer does; False when a
    sell-out import holds it longer than APPROVAL_LOCK_WAIT_MS (the claim then waits for review)."""
    try:
        with lock_wait_at_most(APPROVAL_LOCK_WAIT_MS):
            sales_paid_lock(program_id, exclusive=False)
    except LockNotAvailable:
        return False
    return True


def _auto_approve(claim: SalesClaim) -> None:
    """Approve a claim without flags below the program's threshold at once. If posting is refused (or would
    wait for a running import), the claim simply waits for review (the savepoint undoes any half of it)."""
    if claim.flags or claim.total_amount >= claim.program.claim_auto_approve_below:
        return
    try:
        with _approval_posting():
            _approve(claim, actor=None, note="Approved automatically")
    except ApplicationError as exc:
        claim.status, claim.decided_by, claim.decided_at = ClaimStatus.SUBMITTED, None, None
        logger.warning("Claim %s was not approved automatically (%s); it waits for review.", claim.pk, exc.message)


def claims_auto_approve_waiting(*, program: Program) -> int:
    """Approve now the claims that automatic approval had to leave waiting (a running import held the rules'
    locks, or posting was refused then): without flags, under the threshold, still submitted. Called when a
    sell-out import has finished. Returns how many were approved."""
    waiting = SalesClaim.objects.filter(
        program=program,
        status=ClaimStatus.SUBMITTED,
        flags=[],
        total_amount__lt=program.claim_auto_approve_below,
    )
    approved = 0
    for pk in waiting.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            if not _sales_paid_lock_within_wait(program.pk):
                break  # another import started: it approves them when it has finished
            claim = claim_lock(pk)
            if claim.status == ClaimStatus.SUBMITTED:
                _auto_approve(claim)
                approved += claim.status == ClaimStatus.APPROVED
    return approved


def _store_document(claim: SalesClaim, document, kind: DocumentKind) -> str:
    """Write the file under a random name (never the uploaded one); returns the stored name."""
    document.seek(0)
    claim.document.save(f"invoice-{uuid.uuid4().hex}.{kind.extension}", document, save=False)
    return claim.document.name


def _delete_file(storage, name: str) -> None:
    try:
        storage.delete(name)
    except OSError:
        logger.exception("Could not delete the private file %s.", name)


def _create_lines(claim: SalesClaim, lines: list[Line]) -> None:
    ClaimLine.objects.bulk_create(
        [ClaimLine(claim=claim, product=line.product, quantity=line.quantity, amount=line.amount) for line in lines]
    )


def _clean(claim: SalesClaim) -> None:
    try:
        claim.full_clean(exclude=["document"])
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), code=ErrorCode.INVALID_CLAIM) from exc


def _summary(prefix: str, notes: list[str]) -> str:
    return f"{prefix}; flagged: {'; '.join(notes)}" if notes else prefix


# Services -------------------------------------------------------------------------------------------


@transaction.atomic
def claim_submit(
    *,
    member: Member,
    program: Program,
    invoice_number: str,
    invoice_date: date,
    document,
    lines: Sequence[tuple[Product, Decimal, Decimal]],
    colleagues: Iterable[Member] = (),
) -> SalesClaim:
    """Check and record a claim; approve it at once when it has no flags and is worth less than the program's
    threshold. A refusal writes nothing: no claim, no lines, no file."""
    today = timezone.localdate()
    number = (invoice_number or "").strip()
    check_program(program)
    member = check_member(member)
    key = check_invoice(number, invoice_date, today, program=program)
    checked = check_lines(lines, program=program)
    team = check_colleagues(member, colleagues)
    kind = check_document(document)

    payable_now = _sales_paid_lock_within_wait(program.pk)
    claim_invoice_lock(program.pk, key)
    flags, notes, others = check_same_invoice(program, member.partner_id, key, invoice_date, checked, today)
    _refuse_already_paid(program, member.partner_id, number, key, checked)
    claim = SalesClaim(
        program=program,
        member=member,
        partner=member.partner,
        invoice_number=number,
        invoice_date=invoice_date,
        status=ClaimStatus.SUBMITTED,
        flags=flags,
        total_amount=sum((line.amount for line in checked), Decimal("0.00")),
    )
    _clean(claim)
    stored = _store_document(claim, document, kind)
    try:
        claim.save()
        _create_lines(claim, checked)
        claim.colleagues.set(team)
        _tell_colleagues_named(claim, team)
        note = _summary("Submitted", notes)[:NOTE_MAX]
        ClaimEvent.objects.create(claim=claim, to_status=ClaimStatus.SUBMITTED, actor=member.user, note=note)
        flag_other_claims(others)
        if payable_now:  # else approved when the running import has finished
            _auto_approve(claim)
    except BaseException:
        _delete_file(claim.document.storage, stored)
        raise
    return claim


def _approval_note(claim: SalesClaim, reason: str) -> str:
    if claim.flags:
        return _("Approved despite the flags (%(flags)s): %(reason)s") % {"flags": _flag_names(claim), "reason": reason}
    return _("Approved: %(reason)s") % {"reason": reason} if reason else "Approved"


@transaction.atomic
def claim_approve(*, claim: SalesClaim, actor, reason: str = "") -> SalesClaim:
    """A program manager approves a waiting claim: its lines' points post (with the split among colleagues).
    A flagged claim needs `reason`, why it is approved anyway, kept in the claim's history."""
    _require_program_manager(actor)
    reason = (reason or "").strip()
    if len(reason) > APPROVAL_REASON_MAX:
        raise ApplicationError(
            _("Keep the reason under %(max)s characters.") % {"max": APPROVAL_REASON_MAX}, code=ErrorCode.TEXT_TOO_LONG
        )
    with _approval_posting():
        sales_paid_lock(claim.program_id, exclusive=False)  # before the claim's row, as every payer takes them
        locked = claim_lock(claim.pk)
        _approve(locked, actor=actor, note=_approval_note(locked, reason), reason=reason)
    claim.status = locked.status
    return locked


@transaction.atomic
def claim_reject(*, claim: SalesClaim, actor, reason: str, text: str = "") -> SalesClaim:
    """A program manager rejects a waiting claim with a reason code (and text, required for "Other");
    the member sees both and may correct and resubmit while the window is open."""
    _require_program_manager(actor)
    if reason not in RejectionReason.values:
        raise ApplicationError("Choose the reason for the rejection.", code=ErrorCode.REASON_REQUIRED)
    text = (text or "").strip()
    if reason == RejectionReason.OTHER and not text:
        raise ApplicationError(
            "Say what is wrong with the claim; the member sees this text.", code=ErrorCode.TEXT_REQUIRED
        )
    if len(text) > NOTE_MAX:
        raise ApplicationError(f"Keep the text under {NOTE_MAX} characters.", code=ErrorCode.TEXT_TOO_LONG)
    locked = claim_lock(claim.pk)
    locked.rejection_reason, locked.rejection_text = reason, text
    locked.decided_by, locked.decided_at = actor, timezone.now()
    label = RejectionReason(reason).label
    _move(
        locked,
        ClaimStatus.REJECTED,
        actor=actor,
        note=f"{label}: {text}" if text else label,
        fields=["rejection_reason", "rejection_text", "decided_by", "decided_at"],
    )
    publish(
        "claim.decided",
        program_id=locked.program_id,
        data={"claim_id": locked.pk, "member_id": locked.member_id, "partner_id": locked.partner_id,
              "status": ClaimStatus.REJECTED.value, "points": 0, "reason": reason},
    )  # fmt: skip
    _tell_claimant_rejected(locked)
    claim.status = locked.status
    return locked


@transaction.atomic
def claim_resubmit(
    *,
    claim: SalesClaim,
    member: Member,
    invoice_number: str,
    invoice_date: date,
    lines: Sequence[tuple[Product, Decimal, Decimal]],
    colleagues: Iterable[Member] = (),
    document=None,
) -> SalesClaim:
    """The claimant corrects a rejected claim and sends it again, within the claim window of the (corrected)
    invoice date. The checks run again; `document=None` keeps the invoice file already attached."""
    today = timezone.localdate()
    number = (invoice_number or "").strip()
    key = check_invoice(number, invoice_date, today, program=claim.program)
    checked = check_lines(lines, program=claim.program)
    kind = check_document(document) if document else None

    payable_now = _sales_paid_lock_within_wait(claim.program_id)
    claim_invoice_lock(claim.program_id, key)  # before the row lock, in the same order as claim_submit
    locked = claim_lock(claim.pk)
    _require_claimant(locked, member, "resubmit")
    if locked.status != ClaimStatus.REJECTED:
        raise ApplicationError(
            f"Claim {locked.pk} is {locked.get_status_display().lower()}; only a rejected claim can be corrected "
            "and resubmitted.",
            code=ErrorCode.BAD_TRANSITION,
        )
    program = locked.program
    check_program(program)
    member = check_member(member)
    deadline = claim_deadline(program=program, invoice_date=invoice_date)
    if today > deadline:
        raise ApplicationError(
            f"The claim window for an invoice of {invoice_date:%d %b %Y} closed on {deadline:%d %b %Y} "
            f"(sales can be claimed up to {program.claim_window_days} days after the invoice date).",
            code=ErrorCode.WINDOW_CLOSED,
        )
    team = check_colleagues(member, colleagues)
    flags, notes, others = check_same_invoice(
        program, locked.partner_id, key, invoice_date, checked, today, exclude_pk=locked.pk
    )
    changes = []
    if key != locked.invoice_key:
        changes.append(f"invoice number {locked.invoice_number} → {number}")
    if invoice_date != locked.invoice_date:
        changes.append(f"invoice date {locked.invoice_date:%d %b %Y} → {invoice_date:%d %b %Y}")
    old_file = locked.document.name
    stored = _store_document(locked, document, kind) if document else None
    if stored:
        changes.append("new invoice file")
    try:
        locked.invoice_number, locked.invoice_date, locked.flags = number, invoice_date, flags
        locked.total_amount = sum((line.amount for line in checked), Decimal("0.00"))
        locked.submissions += 1  # the row is locked
        locked.rejection_reason, locked.rejection_text = "", ""
        locked.decided_by, locked.decided_at = None, None
        _clean(locked)
        ClaimLine.objects.filter(claim=locked).delete()
        _create_lines(locked, checked)
        locked.colleagues.set(team)
        prefix = f"Resubmitted (submission {locked.submissions})"
        if changes:
            prefix += ": " + ", ".join(changes)
        _move(
            locked,
            ClaimStatus.SUBMITTED,
            actor=member.user,
            note=_summary(prefix, notes),
            fields=[
                "invoice_number",
                "invoice_key",
                "invoice_date",
                "flags",
                "total_amount",
                "submissions",
                "rejection_reason",
                "rejection_text",
                "decided_by",
                "decided_at",
                "document",
            ],
        )
        flag_other_claims(others)
        if payable_now:
            _auto_approve(locked)
    except BaseException:
        if stored:
            _delete_file(locked.document.storage, stored)
        raise
    if stored and old_file:
        storage = locked.document.storage
        transaction.on_commit(lambda: _delete_file(storage, old_file))
    claim.status = locked.status
    return locked


@transaction.atomic
def claim_withdraw(*, claim: SalesClaim, member: Member) -> SalesClaim:
    """The claimant takes back a claim that still waits for review."""
    locked = claim_lock(claim.pk)
    _require_claimant(locked, member, "withdraw")
    _move(locked, ClaimStatus.WITHDRAWN, actor=member.user, note="Withdrawn by the member")
    claim.status = locked.status
    return locked


# Confirmation by sell-out data ----------------------------------------------------------------------


def _refuse_already_paid(program: Program, partner_id: int, number: str, key: str, lines: list[Line]) -> None:
    """A claim that could pay for nothing (every unit of each of its products is paid already: the sell-out
    reported the sale) is refused at once, saying who reported it, rather than approved for 0 points. A claim
    that adds units is accepted: it pays for those when it is approved."""
    sales = {line.product.pk: Sale(partner_id, key, line.product.pk) for line in lines}
    reports = sale_reports(program_id=program.pk, sales=sales.values())
    for line in lines:
        reports[sales[line.product.pk]].claimed += line.quantity
    if any(report.payable() > 0 for report in reports.values()):
        return
    largest = largest_reports(program_id=program.pk, partner_id=partner_id, invoice_key=key, product_ids=sales)
    line = next((line for line in lines if line.product.pk in largest), None)
    if line is None:  # paid through earlier claims of the invoice
        message = _("Every unit of invoice %(number)s was paid through earlier claims; there is nothing to claim.")
        raise ApplicationError(message % {"number": number}, code=ErrorCode.ALREADY_IMPORTED)
    report = largest[line.product.pk]
    message = _(
        "Invoice %(number)s was already reported by %(source)s on %(date)s (%(units)s × %(sku)s) and those units "
        "earned their points; there is nothing to claim."
    )
    raise ApplicationError(
        message
        % {
            "number": number,
            "source": report.source,
            "date": date_format(report.reported_on, DAY_FORMAT),
            "units": number_format(report.units),
            "sku": line.product.sku,
        },
        code=ErrorCode.ALREADY_IMPORTED,
    )


def _match(claim: SalesClaim, sale_lines: list[SaleLine]) -> list[SaleLine] | None:
    """One distinct sale line (same product and quantity) for every line of the claim, or None."""
    unused = list(sale_lines)
    matched = []
    for line in claim.lines.all():
        found = next((s for s in unused if s.product_id == line.product_id and s.quantity == line.quantity), None)
        if found is None:
            return None
        unused.remove(found)
        matched.append(found)
    return matched


@transaction.atomic
def claims_confirm_by_sale_lines(*, sale_lines: Iterable[SaleLine]) -> int:
    """Approve the waiting claims that imported sell-out lines confirm: same program (the lines' source's),
    partner and invoice number, and for every claim line a sale line of the same product and quantity.
    Returns how many claims were approved. A flagged claim gets the matching line recorded but still waits for a
    program manager's decision (with a reason). Called by the sell-out import (which holds the sales-paid lock):
    a confirmed claim pays for what the sale's other reports left unpaid (one sale pays once)."""
    lines = [line for line in sale_lines if line.quantity > 0 and line.invoice_key]
    if not lines:
        return 0
    programs = dict(
        SalesSource.objects.filter(pk__in={line.source_id for line in lines}).values_list("pk", "program_id")
    )
    wanted = {(programs[line.source_id], line.partner_id, line.invoice_key) for line in lines}
    candidates = (
        SalesClaim.objects.filter(
            status=ClaimStatus.SUBMITTED,
            partner_id__in={partner for _, partner, _ in wanted},
            invoice_key__in={key for _, _, key in wanted},
        )
        .prefetch_related("lines")
        .order_by("pk")
    )
    for program_id in sorted(set(programs.values())):
        sales_paid_lock(program_id, exclusive=False)  # before the claims' rows, as every payer takes them
    approved = 0
    for claim in candidates:
        if (claim.program_id, claim.partner_id, claim.invoice_key) not in wanted:
            continue
        same_invoice = list(
            SaleLine.objects.select_related("source")
            .filter(
                partner_id=claim.partner_id,
                invoice_key=claim.invoice_key,
                source__program_id=claim.program_id,
                quantity__gt=0,
            )
            .order_by("pk")
        )
        matched = _match(claim, same_invoice)
        if not matched:
            continue
        try:
            with transaction.atomic():
                locked = claim_lock(claim.pk)
                if locked.status != ClaimStatus.SUBMITTED:
                    continue
                if locked.flags:
                    SalesClaim.objects.filter(pk=locked.pk).update(matched_line=matched[0])
                    continue
                _approve(locked, actor=None, note=f"Confirmed by sell-out line {matched[0]}", matched_line=matched[0])
                approved += 1
        except ApplicationError:
            logger.exception("Claim %s matches sell-out lines but could not be approved.", claim.pk)
    return approved
