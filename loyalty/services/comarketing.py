"""Co-marketing funds (MDF): a fund per partner and period, and requests against it.

Funds. `fund_set` sets a partner's fund for a period by hand; `funds_by_tier` gives every partner whose tier has a
co-marketing fund (Tier.mdf_fund_amount) that amount; `funds_by_sales_share` gives every partner
program.mdf_sales_share_percent of its sales amount of the previous period (the period of the same length just before,
counted as the tiers' SALES_AMOUNT metric counts sales: services.tiers.sales_amounts). The two bulk ways never touch a
fund set by hand, and never lower a fund below what its requests hold. A partner has one fund per period; periods of
one partner do not overlap.

Requests move request → pre-approval (or declined, with a reason) → claim with the actual cost, the other brands
the advert names and proof (an advert and an invoice, checked like claim documents) → reimbursed, or the claim
rejected with a reason (then claimed again with more proof, or withdrawn). Every move locks the request's row
(lock_objects.marketing_request_lock), checks MDF_TRANSITIONS, saves with update_fields, appends a
MarketingRequestEvent, and tells the requester (MDF_DECIDED, stored now and sent after the commit).

Money moves under the fund's row lock (lock_objects.marketing_fund_lock, after the request's): a pre-approval raises
`committed` by the amount and is refused when it is more than what is left (the CHECK fund_not_overspent is the last
guard), so two pre-approvals at once never overspend; a reimbursement releases the pre-approved amount and raises
`reimbursed` by the amount paid; a withdrawal releases it.

The reimbursement (`reimbursement`) is the percent (the partner's tier's mdf_percent, else the program's) of the
actual cost, divided by 1 + the other brands named when program.mdf_share_by_brands, rounded half up to cents and
never more than the pre-approved amount; the request keeps the working in words. Paid per program.mdf_payout: POINTS
posts the engine's "co-marketing claim approved" event for the partner's company account (nobody acts), quantity
and amount = the money reimbursed, unit "money", source key "mdf:<request id>" (so it pays once, and a rule of
"points per unit" turns money into points); a reimbursement no rule pays is refused, nothing changed. CREDIT_NOTE
records the money only."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from communications.constants import Kind
from communications.services import notify
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import format_money
from loyalty.constants import MDF_TRANSITIONS, EntrySource, FundSource, MdfPayout, MdfStatus, ProofKind, RuleEvent
from loyalty.engine.facts import partner_event
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import marketing_fund_lock, marketing_request_lock
from loyalty.models import (
    MarketingFund,
    MarketingProof,
    MarketingRequest,
    MarketingRequestEvent,
    PartnerTier,
    Program,
)
from loyalty.selectors.comarketing import can_request, fund_left, fund_on
from loyalty.services.claim_checks import check_document
from loyalty.services.earning import post_event
from loyalty.services.tiers import sales_amounts
from partners.models import Member, Partner

CENT = Decimal("0.01")
HUNDRED = Decimal("100")
ZERO = Decimal("0.00")
CO_MARKETING_APPROVED = RuleEvent.CO_MARKETING_APPROVED.value
MAX_PROOFS = 10
TITLE_MAX = 200
DESCRIPTION_MAX = 3000
REASON_MAX = 500
NOTE_MAX = 500
MAX_MONEY = Decimal("999999999999.99")


def cents(value: Decimal) -> Decimal:
    """Money rounded half up to cents."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _plain(value: Decimal) -> str:
    """1000 → "1,000.00": money in an explanation kept on the request (the same for every reader)."""
    return f"{cents(value):,.2f}"


def _percent_text(percent: Decimal) -> str:
    text = f"{percent.normalize():f}"
    return f"{text} %"


# Periods ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    def __post_init__(self):
        if self.end < self.start:
            raise ApplicationError(_("The period ends before it starts."), ErrorCode.PERIOD)


def _add_months(day: date, months: int) -> date:
    years, index = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(years, index + 1, 1)


def previous_period(period: Period) -> Period:
    """The period of the same length just before: whole months (a quarter, a year) go back by as many months,
    any other period by as many days."""
    after_end = period.end + timedelta(days=1)
    if period.start.day == 1 and after_end.day == 1:
        months = (after_end.year - period.start.year) * 12 + after_end.month - period.start.month
        return Period(_add_months(period.start, -months), period.start - timedelta(days=1))
    length = (period.end - period.start).days + 1
    return Period(period.start - timedelta(days=length), period.start - timedelta(days=1))


# Funds ------------------------------------------------------------------------------------------------------


def _money_in(value, *, what: str, allow_zero: bool) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ApplicationError(
            _("The %(what)s is not a number.") % {"what": what}, ErrorCode.VALUE_NOT_POSITIVE
        ) from None
    if not number.is_finite() or number < 0 or (number == 0 and not allow_zero):
        message = _("The %(what)s must be above 0.") if not allow_zero else _("The %(what)s cannot be negative.")
        raise ApplicationError(message % {"what": what}, ErrorCode.VALUE_NOT_POSITIVE)
    if number > MAX_MONEY:
        raise ApplicationError(_("The %(what)s is too large.") % {"what": what}, ErrorCode.TOO_BIG)
    if number != cents(number):
        raise ApplicationError(_("Use at most 2 decimals (cents)."), ErrorCode.FRACTION)
    return number


def _check_no_overlap(*, program: Program, partner_id: int, period: Period) -> None:
    other = (
        MarketingFund.objects.filter(
            program=program, partner_id=partner_id, period_start__lte=period.end, period_end__gte=period.start
        )
        .exclude(period_start=period.start)
        .first()
    )
    if other is not None:
        raise ApplicationError(
            _("This partner already has a fund from %(start)s to %(end)s; periods of one partner cannot overlap.")
            % {"start": other.period_start.isoformat(), "end": other.period_end.isoformat()},
            ErrorCode.MDF_FUND_OVERLAP,
        )


def _locked_fund(*, program: Program, partner_id: int, period: Period, amount: Decimal, source: str, note: str):
    """(the fund of the partner's period, locked, created with these values if it did not exist; created?)."""
    existing = MarketingFund.objects.filter(program=program, partner_id=partner_id, period_start=period.start)
    found = existing.values_list("pk", flat=True).first()
    if found is None:
        try:
            with transaction.atomic():
                fund = MarketingFund.objects.create(
                    program=program,
                    partner_id=partner_id,
                    period_start=period.start,
                    period_end=period.end,
                    amount=amount,
                    source=source,
                    note=note[:300],
                )
            return fund, True
        except IntegrityError:  # created meanwhile by another run: change that one
            found = existing.values_list("pk", flat=True).get()
    return marketing_fund_lock(found), False


def _change_fund(fund: MarketingFund, *, period: Period, amount: Decimal, source: str, note: str | None) -> None:
    used = fund.committed + fund.reimbursed
    if amount < used:
        raise ApplicationError(
            _("The fund cannot be less than what its requests hold already (%(used)s).") % {"used": _plain(used)},
            ErrorCode.MDF_FUND_BELOW_USED,
        )
    fund.amount, fund.period_end, fund.source = amount, period.end, source
    fields = ["amount", "period_end", "source", "updated_at"]
    if note is not None:
        fund.note = note[:300]
        fields.append("note")
    fund.save(update_fields=fields)


@transaction.atomic
def fund_set(*, program: Program, partner: Partner, period: Period, amount: Decimal, note: str = "") -> MarketingFund:
    """Set a partner's fund for a period by hand (create it, or change its amount and end). Refused, with nothing
    changed: a negative amount, a period overlapping another fund of the partner, an amount below what the fund's
    requests hold."""
    amount = _money_in(amount, what=_("amount"), allow_zero=True)
    _check_no_overlap(program=program, partner_id=partner.pk, period=period)
    fund, created = _locked_fund(
        program=program, partner_id=partner.pk, period=period, amount=amount, source=FundSource.MANUAL, note=note
    )
    if not created:
        _change_fund(fund, period=period, amount=amount, source=FundSource.MANUAL, note=note)
    return fund


@dataclass
class FundsResult:
    created: int = 0
    updated: int = 0
    skipped: list[str] = field(default_factory=list)  # why each partner was left out, in words

    def summary(self) -> str:
        text = _("%(created)s funds created, %(updated)s updated.") % {
            "created": self.created,
            "updated": self.updated,
        }
        if self.skipped:
            text += " " + _("Left as they were: %(names)s.") % {"names": "; ".join(self.skipped[:10])}
        return text


def _put_funds(*, program: Program, period: Period, amounts: dict[int, Decimal], source: str) -> FundsResult:
    """Give each partner (id → amount) its fund of the period, set by `source`: funds set by hand, funds of another
    period overlapping it and funds whose requests hold more than the new amount are left as they are."""
    result = FundsResult()
    names = dict(Partner.objects.filter(pk__in=list(amounts)).values_list("pk", "name"))
    for partner_id in sorted(amounts):
        amount = cents(amounts[partner_id])
        try:
            with transaction.atomic():
                _check_no_overlap(program=program, partner_id=partner_id, period=period)
                fund, created = _locked_fund(
                    program=program, partner_id=partner_id, period=period, amount=amount, source=source, note=""
                )
                if created:
                    result.created += 1
                    continue
                if fund.source == FundSource.MANUAL:
                    result.skipped.append(_("%(partner)s (set by hand)") % {"partner": names[partner_id]})
                    continue
                _change_fund(fund, period=period, amount=amount, source=source, note=None)
                result.updated += 1
        except ApplicationError as exc:
            result.skipped.append(f"{names[partner_id]} ({exc.message})")
    return result


@transaction.atomic
def funds_by_tier(*, program: Program, period: Period) -> FundsResult:
    """Every partner whose tier in the program has a co-marketing fund gets that amount for the period."""
    rows = PartnerTier.objects.filter(program=program, tier__mdf_fund_amount__isnull=False).values_list(
        "partner_id", "tier__mdf_fund_amount"
    )
    return _put_funds(program=program, period=period, amounts=dict(rows), source=FundSource.TIER)


@transaction.atomic
def funds_by_sales_share(*, program: Program, period: Period) -> FundsResult:
    """Every partner with sales in the previous period gets program.mdf_sales_share_percent of them."""
    percent = program.mdf_sales_share_percent
    if percent is None:
        raise ApplicationError(
            _("Set the program's co-marketing share of last period's sales first."), ErrorCode.MDF_SALES_SHARE_UNSET
        )
    before = previous_period(period)
    sales = sales_amounts(program=program, first=before.start, last=before.end)
    amounts = {partner_id: total * percent / HUNDRED for partner_id, total in sales.items() if total > 0}
    return _put_funds(program=program, period=period, amounts=amounts, source=FundSource.SALES_SHARE)


# The formula ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reimbursement:
    amount: Decimal
    explanation: str


def reimbursement(
    *, actual_cost: Decimal, percent: Decimal, other_brands: int, share_by_brands: bool, approved: Decimal
) -> Reimbursement:
    """percent × actual cost (× 1/(1 + other brands) when the share is divided by brands), rounded half up to
    cents, at most the pre-approved amount; with the working in words ("50 % × 1,000.00 × 1/(1+3) = 125.00")."""
    raw = actual_cost * percent / HUNDRED
    working = f"{_percent_text(percent)} × {_plain(actual_cost)}"
    if share_by_brands:
        raw = raw / (1 + other_brands)
        working += f" × 1/(1+{other_brands})"
    amount = cents(raw)
    working += f" = {_plain(amount)}"
    if amount > approved:
        amount = cents(approved)
        working += f", limited to the pre-approved {_plain(approved)}"
    return Reimbursement(amount, working)


def percent_for(*, program: Program, partner_id: int) -> Decimal:
    """The share of the cost the partner is reimbursed: its tier's, else the program's."""
    tier_percent = (
        PartnerTier.objects.filter(program=program, partner_id=partner_id)
        .values_list("tier__mdf_percent", flat=True)
        .first()
    )
    return tier_percent if tier_percent is not None else program.mdf_percent


# Moves ------------------------------------------------------------------------------------------------------

# How a move to each status is said in a refusal ("it cannot be reimbursed now").
WORD_FOR = {
    MdfStatus.PRE_APPROVED: gettext_lazy("pre-approved"),
    MdfStatus.DECLINED: gettext_lazy("declined"),
    MdfStatus.CLAIMED: gettext_lazy("claimed"),
    MdfStatus.REIMBURSED: gettext_lazy("reimbursed"),
    MdfStatus.CLAIM_REJECTED: gettext_lazy("rejected"),
    MdfStatus.WITHDRAWN: gettext_lazy("withdrawn"),
}


def _check_move(request: MarketingRequest, to: str) -> None:
    if to in MDF_TRANSITIONS[request.status]:
        return
    raise ApplicationError(
        _("Request %(id)s is %(status)s; it cannot be %(verb)s now.")
        % {"id": request.pk, "status": request.get_status_display().lower(), "verb": WORD_FOR[to]},
        ErrorCode.BAD_TRANSITION,
    )


def _move(request: MarketingRequest, to: str, *, actor, note: str = "", fields: Sequence[str] = ()) -> None:
    """Check the move, save the status (and `fields`), record it and tell the requester. `request` is locked."""
    _check_move(request, to)
    from_status = request.status
    request.status = to
    request.save(update_fields=["status", "updated_at", *fields])
    MarketingRequestEvent.objects.create(
        request=request, from_status=from_status, to_status=to, actor=actor, note=note[:NOTE_MAX]
    )
    _tell(request)


def _tell(request: MarketingRequest) -> None:
    """The requester hears of each step (stored now, sent after the commit); one message per move."""
    moves = MarketingRequestEvent.objects.filter(request=request).count()
    amount = {
        MdfStatus.PRE_APPROVED: request.approved_amount,
        MdfStatus.REIMBURSED: request.reimbursed_amount,
    }.get(request.status)
    currency = request.fund.program.money_currency
    reason = request.reason if request.status in (MdfStatus.DECLINED, MdfStatus.CLAIM_REJECTED) else ""
    if request.status == MdfStatus.REIMBURSED and request.reimbursed_points:
        reason = _("%(points)s points were added to the company account.") % {"points": request.reimbursed_points}
    notify(
        kind=Kind.MDF_DECIDED,
        member=request.member,
        source_key=f"mdf:{request.pk}:{moves}:{request.status}",
        variables={
            "activity": request.title,
            "status": request.get_status_display().lower(),
            "amount": format_money(amount, currency) if amount is not None else "",
            "reason": reason,
        },
        link_path=reverse("mdf_request_detail", args=[request.pk]),
    )


def _require_program_manager(user) -> None:
    if not (getattr(user, "is_active", False) and getattr(user, "is_program_manager", False)):
        raise ApplicationError(_("Only the program team decides on co-marketing requests."), ErrorCode.FORBIDDEN)


def _require_partner_person(request: MarketingRequest, member: Member | None, verb: str) -> None:
    """The requester, or an owner of the request's partner, in a role that may ask for co-marketing money."""
    if (
        member is None
        or member.partner_id != request.partner_id
        or not can_request(member)
        or not (member.pk == request.member_id or member.role.is_owner)
    ):
        raise ApplicationError(
            _("Only the person who asked, or the partner's owner, can %(verb)s this request.") % {"verb": verb},
            ErrorCode.FORBIDDEN,
        )


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Say why; the partner reads it."), ErrorCode.REASON_REQUIRED)
    if len(reason) > REASON_MAX:
        raise ApplicationError(
            _("Keep the reason under %(max)s characters.") % {"max": REASON_MAX}, ErrorCode.TEXT_TOO_LONG
        )
    return reason


# Requests ---------------------------------------------------------------------------------------------------


@transaction.atomic
def request_submit(
    *,
    member: Member,
    program: Program,
    title: str,
    description: str = "",
    planned_on: date,
    planned_cost: Decimal,
) -> MarketingRequest:
    """Ask for co-marketing money for an activity planned on `planned_on`, against the partner's fund of that day.
    Refused, with nothing written: a member who may not ask (not active, not an owner, sales or purchasing person),
    a program not running, no title, a cost not above 0, a day in the past, no fund for that day or nothing left
    in it."""
    member = Member.objects.select_related("user", "partner", "role").get(pk=member.pk)
    if not can_request(member):
        raise ApplicationError(
            _("Co-marketing money is asked for by the partner's owner, sales or purchasing people."),
            ErrorCode.MDF_NOT_ALLOWED,
        )
    if not program.is_active:
        raise ApplicationError(_("The program is not running."), ErrorCode.PROGRAM_INACTIVE)
    title = (title or "").strip()
    description = (description or "").strip()
    if not title:
        raise ApplicationError(_("Name the activity."), ErrorCode.TEXT_REQUIRED)
    if len(title) > TITLE_MAX or len(description) > DESCRIPTION_MAX:
        raise ApplicationError(_("The title or the description is too long."), ErrorCode.TEXT_TOO_LONG)
    planned_cost = _money_in(planned_cost, what=_("planned cost"), allow_zero=False)
    if planned_on < timezone.localdate():
        raise ApplicationError(_("The planned day is in the past."), ErrorCode.DATE_WINDOW)
    fund = fund_on(program=program, partner_id=member.partner_id, day=planned_on)
    if fund is None:
        raise ApplicationError(
            _("Your company has no co-marketing fund for %(day)s. Ask the program team.")
            % {"day": planned_on.isoformat()},
            ErrorCode.MDF_NO_FUND,
        )
    if fund_left(fund) <= 0:
        raise ApplicationError(
            _("Your company's co-marketing fund for this period is used up."), ErrorCode.MDF_FUND_EXCEEDED
        )
    request = MarketingRequest.objects.create(
        fund=fund,
        partner=member.partner,
        member=member,
        title=title,
        description=description,
        planned_on=planned_on,
        planned_cost=planned_cost,
    )
    MarketingRequestEvent.objects.create(request=request, to_status=MdfStatus.REQUESTED, actor=member.user)
    _tell(request)
    return request


@transaction.atomic
def request_pre_approve(*, request: MarketingRequest, actor, amount: Decimal) -> MarketingRequest:
    """The program team pre-approves up to `amount` for the activity: held in the fund (committed) until the claim
    is settled. Refused, nothing changed: an amount not above 0, or more than what is left in the fund."""
    _require_program_manager(actor)
    amount = _money_in(amount, what=_("amount"), allow_zero=False)
    locked = marketing_request_lock(request.pk)
    _check_move(locked, MdfStatus.PRE_APPROVED)
    fund = marketing_fund_lock(locked.fund_id)
    left = fund_left(fund)
    if amount > left:
        raise ApplicationError(
            _("Only %(left)s is left in the fund; %(amount)s cannot be pre-approved.")
            % {"left": format_money(left, locked.fund.program.money_currency), "amount": _plain(amount)},
            ErrorCode.MDF_FUND_EXCEEDED,
        )
    fund.committed += amount
    fund.save(update_fields=["committed", "updated_at"])
    locked.fund = fund
    locked.approved_amount, locked.decided_by, locked.reason = amount, actor, ""
    _move(
        locked,
        MdfStatus.PRE_APPROVED,
        actor=actor,
        note=_("Pre-approved up to %(amount)s") % {"amount": _plain(amount)},
        fields=["approved_amount", "decided_by", "reason"],
    )
    return locked


@transaction.atomic
def request_decline(*, request: MarketingRequest, actor, reason: str) -> MarketingRequest:
    """The program team declines a request, saying why (the partner reads it)."""
    _require_program_manager(actor)
    reason = _reason(reason)
    locked = marketing_request_lock(request.pk)
    locked.reason, locked.decided_by = reason, actor
    _move(locked, MdfStatus.DECLINED, actor=actor, note=reason, fields=["reason", "decided_by"])
    return locked


def _check_proofs(proofs: Iterable[tuple[str, object]], *, had: set[str]) -> list[tuple[str, object, object]]:
    checked = []
    for kind, upload in proofs:
        if kind not in ProofKind.values:
            raise ApplicationError(_("Say what each proof is."), ErrorCode.MDF_PROOF_MISSING)
        checked.append((kind, upload, check_document(upload)))
    kinds = had | {kind for kind, _upload, _type in checked}
    missing = [ProofKind(kind).label for kind in (ProofKind.ADVERT, ProofKind.INVOICE) if kind not in kinds]
    if missing:
        raise ApplicationError(
            _("Add the proof: %(missing)s (a photo or a PDF).") % {"missing": ", ".join(str(m) for m in missing)},
            ErrorCode.MDF_PROOF_MISSING,
        )
    return checked


@transaction.atomic
def request_claim(
    *,
    request: MarketingRequest,
    member: Member,
    actual_cost: Decimal,
    other_brands: int,
    proofs: Sequence[tuple[str, object]] = (),
) -> MarketingRequest:
    """The partner claims a pre-approved activity it has done: the actual cost, how many other brands the advert
    names, and proof (`proofs`: (ProofKind, uploaded file) pairs). An advert and an invoice are required (a claim
    made again after a rejection keeps the proof sent before). Refused, with nothing written (no file either): a
    person who may not claim it, a cost not above 0, a negative brand count, a file that is not a photo or a PDF
    or is too large, more than MAX_PROOFS files, proof missing."""
    locked = marketing_request_lock(request.pk)
    member = Member.objects.select_related("user", "role").get(pk=member.pk)
    _require_partner_person(locked, member, _("claim"))
    _check_move(locked, MdfStatus.CLAIMED)
    actual_cost = _money_in(actual_cost, what=_("actual cost"), allow_zero=False)
    if other_brands is None or int(other_brands) < 0 or int(other_brands) > 100:
        raise ApplicationError(_("Say how many other brands the advert names (0 for none)."), ErrorCode.INVALID_CLAIM)
    proofs = list(proofs)
    had = set(locked.proofs.values_list("kind", flat=True))
    if len(proofs) + locked.proofs.count() > MAX_PROOFS:
        raise ApplicationError(_("Send at most %(max)s proof files.") % {"max": MAX_PROOFS}, ErrorCode.TOO_MANY_LINES)
    checked = _check_proofs(proofs, had=had)
    stored = []
    try:
        for kind, upload, document_kind in checked:
            proof = MarketingProof(request=locked, kind=kind)
            proof.file.save(f"mdf-{locked.pk}-{kind}-{uuid.uuid4().hex}.{document_kind.extension}", upload, save=False)
            stored.append(proof.file.name)
            proof.save()
        locked.actual_cost, locked.other_brands = actual_cost, int(other_brands)
        again = locked.status == MdfStatus.CLAIM_REJECTED
        locked.reason = ""
        note = _("Actual cost %(cost)s, %(brands)s other brands named") % {
            "cost": _plain(actual_cost),
            "brands": int(other_brands),
        }
        if again:
            note = _("Claimed again: %(note)s") % {"note": note}
        _move(locked, MdfStatus.CLAIMED, actor=member.user, note=note, fields=["actual_cost", "other_brands", "reason"])
    except BaseException:
        storage = MarketingProof._meta.get_field("file").storage
        for name in stored:
            storage.delete(name)
        raise
    return locked


@transaction.atomic
def request_reject_claim(*, request: MarketingRequest, actor, reason: str) -> MarketingRequest:
    """The program team rejects a claim, saying why; the pre-approved amount stays held and the partner may claim
    again with more proof (or withdraw)."""
    _require_program_manager(actor)
    reason = _reason(reason)
    locked = marketing_request_lock(request.pk)
    locked.reason, locked.decided_by = reason, actor
    _move(locked, MdfStatus.CLAIM_REJECTED, actor=actor, note=reason, fields=["reason", "decided_by"])
    return locked


def _pay_points(request: MarketingRequest, amount: Decimal, today: date) -> int:
    program = request.fund.program
    event = partner_event(
        kind=CO_MARKETING_APPROVED,
        program=program,
        source_key=f"mdf:{request.pk}",
        partner=request.partner,
        occurred_on=today,
        quantity=amount,
        unit="money",
        subject=f"co-marketing “{request.title}”",
    )
    event = replace(event, amount=amount)  # "points per money amount" rules count it too
    entries = post_event(program=program, event=event, source_type=EntrySource.CO_MARKETING)
    points = sum(entry.points for entry in entries)
    if points <= 0:
        raise ApplicationError(
            _(
                "No published rule pays “co-marketing claim approved” for this partner, so the reimbursement would "
                "pay no points. Publish such a rule (points per unit: the unit is the money reimbursed) or pay "
                "co-marketing as a credit note."
            ),
            ErrorCode.MDF_NO_RULE,
        )
    return points


@transaction.atomic
def request_reimburse(*, request: MarketingRequest, actor) -> MarketingRequest:
    """The program team accepts a claim: the reimbursement (see `reimbursement`) is paid per the program's payout
    and moves from committed to reimbursed in the fund. Paid once: the request's status and the ledger's
    idempotency key (source "mdf:<id>") both guard it."""
    _require_program_manager(actor)
    locked = marketing_request_lock(request.pk)
    _check_move(locked, MdfStatus.REIMBURSED)
    fund = marketing_fund_lock(locked.fund_id)
    program = locked.fund.program
    percent = percent_for(program=program, partner_id=locked.partner_id)
    paid = reimbursement(
        actual_cost=locked.actual_cost,
        percent=percent,
        other_brands=locked.other_brands or 0,
        share_by_brands=program.mdf_share_by_brands,
        approved=locked.approved_amount,
    )
    fund.committed -= locked.approved_amount
    fund.reimbursed += paid.amount
    fund.save(update_fields=["committed", "reimbursed", "updated_at"])
    locked.payout = program.mdf_payout
    locked.reimbursed_amount, locked.explanation, locked.decided_by = paid.amount, paid.explanation, actor
    fields = ["payout", "reimbursed_amount", "explanation", "decided_by", "reason"]
    locked.reason = ""
    if program.mdf_payout == MdfPayout.POINTS and paid.amount > 0:
        locked.reimbursed_points = _pay_points(locked, paid.amount, timezone.localdate())
        fields.append("reimbursed_points")
    note = paid.explanation
    if locked.reimbursed_points:
        note += _(" → %(points)s points to the company account") % {"points": locked.reimbursed_points}
    elif program.mdf_payout == MdfPayout.CREDIT_NOTE:
        note += _(" (credit note)")
    _move(locked, MdfStatus.REIMBURSED, actor=actor, note=note, fields=fields)
    return locked


@transaction.atomic
def request_withdraw(*, request: MarketingRequest, member: Member) -> MarketingRequest:
    """The partner takes back a request not yet claimed (or whose claim was rejected); a pre-approved amount goes
    back to the fund."""
    locked = marketing_request_lock(request.pk)
    member = Member.objects.select_related("user", "role").get(pk=member.pk)
    _require_partner_person(locked, member, _("withdraw"))
    _check_move(locked, MdfStatus.WITHDRAWN)
    if locked.status in (MdfStatus.PRE_APPROVED, MdfStatus.CLAIM_REJECTED) and locked.approved_amount:
        fund = marketing_fund_lock(locked.fund_id)
        fund.committed -= locked.approved_amount
        fund.save(update_fields=["committed", "updated_at"])
    _move(locked, MdfStatus.WITHDRAWN, actor=member.user, note=_("Withdrawn by the partner"))
    return locked
