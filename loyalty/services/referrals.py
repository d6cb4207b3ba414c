"""Referrals: a member refers a prospect (a company, a contact, what they need); the program team qualifies it and
marks it converted (with the deal amount, if known) or rejected (with a reason the referrer reads).

Submitting (`referral_submit`) is refused, with nothing written, for a member who is not active (or whose partner
is not), a program that is not running, missing or overlong texts, an e-mail address that is not one, and a prospect
that is already a partner of the program: a partner (not closed) whose legal id has the company id's matching key,
or a company one of whose people (not gone) signs in with the contact's e-mail address. A prospect referred before in
the program, by any partner (the same company id or e-mail, compared by matching keys: loyalty.common.keys), is
stored as a duplicate of the first referral (`duplicate_of`); the referrer is told on which day it was referred
first, never by whom.

Decisions (`referral_transition`) are for program managers. Each locks the referral row, checks the move against
REFERRAL_TRANSITIONS, saves with update_fields and appends a ReferralEvent. Converting posts the rule engine's
"referral converted" event for the referrer (source key "referral:<id>", 1 referral, through
loyalty.services.earning.post_event: the program's rules pay it with their caps, budgets and shares, once), and is
refused when another referral of the same prospect was converted (a prospect pays once). Rejecting needs a reason,
which the referrer reads. The referrer hears of a conversion and of a rejection (REFERRAL_DECIDED, stored in the
transaction and sent once it commits). Submissions and conversions of one prospect run one at a time
(lock_objects.referral_prospect_lock), so duplicates are never missed and a prospect is never converted twice.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from communications.constants import Kind
from communications.services import notify
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import DAY_FORMAT
from loyalty.common.keys import matching_key
from loyalty.constants import REFERRAL_TRANSITIONS, EntrySource, ReferralStatus, RuleEvent
from loyalty.engine.facts import member_event
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import referral_lock, referral_prospect_lock
from loyalty.models import PointsAccount, PointsEntry, Program, Referral, ReferralEvent
from loyalty.services.earning import post_event
from partners.constants import MemberStatus, PartnerStatus
from partners.models import Member, Partner

REASON_MAX = 500  # Referral.reason
NEED_MAX = Referral._meta.get_field("need").max_length
NOTE_MAX = 500  # ReferralEvent.note
# The most a deal amount can be (Referral.deal_amount: 14 digits, 2 decimals).
DEAL_AMOUNT_MAX = Decimal("999999999999.99")

# How a move to each status is said in a refusal ("it cannot be converted now").
WORD_FOR = {
    ReferralStatus.QUALIFIED: "qualified",
    ReferralStatus.CONVERTED: "converted",
    ReferralStatus.REJECTED: "rejected",
}


def referral_source_key(referral: Referral) -> str:
    """The source key of a referral's "referral converted" event (and of the entries it posts)."""
    return f"referral:{referral.pk}"


# Submitting --------------------------------------------------------------------------------------------------


def _check_referrer(member: Member, program: Program) -> Member:
    if not program.is_active:
        raise ApplicationError(
            _("%(program)s is not running; companies cannot be referred in it.") % {"program": program.name},
            code=ErrorCode.PROGRAM_INACTIVE,
        )
    fresh = Member.objects.select_related("user", "role", "partner").get(pk=member.pk)
    if fresh.status != MemberStatus.ACTIVE:
        raise ApplicationError(
            _("Only active members can refer a company; this membership is %(status)s.")
            % {"status": fresh.get_status_display().lower()},
            code=ErrorCode.MEMBER_INACTIVE,
        )
    if fresh.partner.status != PartnerStatus.ACTIVE:
        raise ApplicationError(
            _("%(partner)s is %(status)s in the program; companies cannot be referred now.")
            % {"partner": fresh.partner.name, "status": fresh.partner.get_status_display().lower()},
            code=ErrorCode.PARTNER_INACTIVE,
        )
    return fresh


def existing_partner(*, company_key: str, email_key: str) -> Partner | None:
    """The partner of the program the prospect already is: one (not closed) with the company id's key as its legal
    id's, else the partner of a current or invited person who signs in with the contact's e-mail; or None."""
    partners = Partner.objects.exclude(status=PartnerStatus.CLOSED)
    if company_key:
        found = partners.filter(legal_id_key=company_key).order_by("pk").first()
        if found is not None:
            return found
    if email_key:
        people = Member.objects.exclude(status=MemberStatus.LEFT).filter(user__email__iexact=email_key)
        return partners.filter(pk__in=people.values("partner_id")).order_by("pk").first()
    return None


def _same_prospect(program_id: int, company_key: str, email_key: str) -> Q:
    same = Q(email_key=email_key) if email_key else Q(pk__in=[])
    if company_key:
        same |= Q(company_key=company_key)
    return Q(program_id=program_id) & same


def _first_referral(program: Program, company_key: str, email_key: str) -> Referral | None:
    """The earliest referral of the prospect in the program (the original its duplicates point at), or None."""
    earlier = (
        Referral.objects.filter(_same_prospect(program.pk, company_key, email_key))
        .select_related("duplicate_of")
        .order_by("created_at", "pk")
        .first()
    )
    if earlier is None:
        return None
    return earlier.duplicate_of or earlier


def first_referred_on(referral: Referral):
    """The day the prospect of a duplicate referral was first referred (in the program's time zone), or None."""
    original = referral.duplicate_of
    return timezone.localdate(original.created_at) if original is not None else None


def _clean(referral: Referral) -> None:
    if len(referral.need) > NEED_MAX:  # a TextField's max_length is not checked by full_clean
        raise ApplicationError(
            _("Keep what they need under %(max)s characters.") % {"max": NEED_MAX}, code=ErrorCode.TEXT_TOO_LONG
        )
    try:
        referral.full_clean(exclude=["program", "partner", "member", "duplicate_of", "existing_partner"])
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), code=ErrorCode.INVALID_REFERRAL) from exc


@transaction.atomic
def referral_submit(
    *,
    member: Member,
    program: Program,
    company_name: str,
    contact_name: str,
    contact_email: str,
    need: str,
    company_id: str = "",
    contact_phone: str = "",
) -> Referral:
    """Record a member's referral of a prospect; a duplicate of an earlier one (by any partner) is recorded as
    such. Refused, with nothing written, for a prospect that is already a partner of the program."""
    member = _check_referrer(member, program)
    referral = Referral(
        program=program,
        partner=member.partner,
        member=member,
        company_name=(company_name or "").strip(),
        company_id=(company_id or "").strip(),
        contact_name=(contact_name or "").strip(),
        contact_email=(contact_email or "").strip(),
        contact_phone=(contact_phone or "").strip(),
        need=(need or "").strip(),
        status=ReferralStatus.SUBMITTED,
    )
    _clean(referral)
    company_key, email_key = matching_key(referral.company_id), matching_key(referral.contact_email)
    referral_prospect_lock(program.pk, company_key=company_key, email_key=email_key)
    if existing_partner(company_key=company_key, email_key=email_key) is not None:
        raise ApplicationError(
            _("%(company)s is already a partner of the program, so it cannot be referred.")
            % {"company": referral.company_name},
            code=ErrorCode.ALREADY_PARTNER,
        )
    referral.duplicate_of = _first_referral(program, company_key, email_key)
    referral.save()
    note = "Submitted"
    if referral.duplicate_of is not None:
        note = f"Submitted; the prospect was referred before (referral {referral.duplicate_of.pk})"
    ReferralEvent.objects.create(referral=referral, to_status=ReferralStatus.SUBMITTED, actor=member.user, note=note)
    return referral


def submitted_message(referral: Referral) -> str:
    """What the referrer reads once the referral is stored: a duplicate says when the prospect was first referred
    (not by whom)."""
    first_on = first_referred_on(referral)
    if first_on is None:
        return _("Thank you: %(company)s is referred. The program team contacts them; the decision will show here.") % {
            "company": referral.company_name
        }
    return _(
        "%(company)s was already referred on %(day)s. Your referral is kept; the program team decides which one "
        "counts, and the decision will show here."
    ) % {"company": referral.company_name, "day": date_format(first_on, DAY_FORMAT)}


# Decisions ---------------------------------------------------------------------------------------------------


def _require_program_manager(user) -> None:
    if not (getattr(user, "is_active", False) and getattr(user, "is_program_manager", False)):
        raise ApplicationError(_("Only program managers decide on referrals."), code=ErrorCode.FORBIDDEN)


def _check_move(referral: Referral, to: str) -> None:
    if to in REFERRAL_TRANSITIONS[referral.status]:
        return
    if referral.status == to:
        message = f"Referral {referral.pk} is already {WORD_FOR[to]}."
    else:
        message = f"Referral {referral.pk} is {referral.get_status_display().lower()}; it cannot be {WORD_FOR[to]} now."
    raise ApplicationError(message, code=ErrorCode.BAD_TRANSITION)


def _check_decision(to: str, reason: str, deal_amount: Decimal | None) -> None:
    if to not in WORD_FOR:
        raise ApplicationError(f"A referral cannot be moved to “{to}”.", code=ErrorCode.BAD_TRANSITION)
    if to == ReferralStatus.REJECTED and not reason:
        raise ApplicationError(
            _("Say why the referral is rejected; the member who referred the company reads it."),
            code=ErrorCode.REASON_REQUIRED,
        )
    if len(reason) > REASON_MAX:
        raise ApplicationError(
            _("Keep the reason under %(max)s characters.") % {"max": REASON_MAX}, code=ErrorCode.TEXT_TOO_LONG
        )
    if deal_amount is not None:
        if to != ReferralStatus.CONVERTED:
            raise ApplicationError(_("Only a conversion has a deal amount."), code=ErrorCode.INVALID_REFERRAL)
        if not Decimal(0) <= deal_amount <= DEAL_AMOUNT_MAX or deal_amount != deal_amount.quantize(Decimal("0.01")):
            raise ApplicationError(
                _("Enter the deal amount as a positive number with at most 2 decimals."),
                code=ErrorCode.VALUE_NOT_POSITIVE,
            )


def _refuse_converted_before(referral: Referral) -> None:
    """A prospect pays once: no conversion when another referral of it (same company id or e-mail) is converted."""
    converted = (
        Referral.objects.filter(_same_prospect(referral.program_id, referral.company_key, referral.email_key))
        .filter(status=ReferralStatus.CONVERTED)
        .exclude(pk=referral.pk)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if converted is not None:
        raise ApplicationError(
            _("%(company)s was converted through referral %(other)s already; a prospect converts once.")
            % {"company": referral.company_name, "other": converted},
            code=ErrorCode.ALREADY_CONVERTED,
        )


def _pay(referral: Referral) -> list[PointsEntry]:
    program = referral.program
    event = member_event(
        kind=RuleEvent.REFERRAL_CONVERTED.value,
        program=program,
        source_key=referral_source_key(referral),
        member=referral.member,
        occurred_on=timezone.localdate(),
        quantity=Decimal(1),
        unit="referral",
        subject=f"referral “{referral.company_name}”",
        amount=referral.deal_amount or Decimal(0),  # a rule may pay big deals more (min_amount, per amount)
    )
    return post_event(program=program, event=event, source_type=EntrySource.REFERRAL)


def _own_points(referral: Referral, entries: list[PointsEntry]) -> int:
    """The points `entries` paid into the referrer's own account (a company share is not theirs)."""
    own = PointsAccount.objects.filter(program=referral.program_id, member=referral.member_id).values_list(
        "pk", flat=True
    )
    account = own.first()
    return sum(entry.available_delta + entry.pending_delta for entry in entries if entry.account_id == account)


def _tell_referrer(referral: Referral, *, points: int = 0) -> None:
    converted = referral.status == ReferralStatus.CONVERTED
    notify(
        kind=Kind.REFERRAL_DECIDED,
        member=referral.member,
        source_key=f"referral:{referral.pk}:{referral.status}",
        variables={
            "company": referral.company_name,
            "converted": converted,
            "points": points,
            "reason": referral.reason,
        },
        link_path=reverse("referral_list"),
    )


@transaction.atomic
def referral_transition(
    *, referral: Referral, to: str, actor, reason: str = "", deal_amount: Decimal | None = None
) -> Referral:
    """A program manager qualifies, converts (with the deal amount, if known) or rejects (with a reason the referrer
    reads) a referral. Converting pays the referrer by the program's rules, once; the referrer hears of a
    conversion and of a rejection."""
    _require_program_manager(actor)
    reason = (reason or "").strip()
    _check_decision(to, reason, deal_amount)
    # The prospect's locks before the row's, in the order referral_submit takes them.
    referral_prospect_lock(referral.program_id, company_key=referral.company_key, email_key=referral.email_key)
    locked = referral_lock(referral.pk)
    _check_move(locked, to)
    fields = ["status", "updated_at", "decided_by", "decided_at"]
    entries = []
    if to == ReferralStatus.CONVERTED:
        _refuse_converted_before(locked)
        locked.deal_amount = deal_amount
        locked.existing_partner = existing_partner(company_key=locked.company_key, email_key=locked.email_key)
        fields += ["deal_amount", "existing_partner"]
    if to == ReferralStatus.REJECTED:
        locked.reason = reason
        fields.append("reason")
    from_status = locked.status
    locked.status = to
    locked.decided_by, locked.decided_at = actor, timezone.now()
    locked.save(update_fields=fields)
    note = reason or ("Converted" if to == ReferralStatus.CONVERTED else "Qualified")
    if deal_amount is not None:
        note = f"Converted, deal amount {deal_amount}"
    ReferralEvent.objects.create(
        referral=locked, from_status=from_status, to_status=to, actor=actor, note=note[:NOTE_MAX]
    )
    if to == ReferralStatus.CONVERTED:
        entries = _pay(locked)
        _tell_referrer(locked, points=_own_points(locked, entries))
    elif to == ReferralStatus.REJECTED:
        _tell_referrer(locked)
    referral.status = locked.status
    return locked
