"""Returns of used equipment for recycling: a member registers returned units; a collector (the collection point's
partner: its owner and staff) or the program team confirms or rejects them.

Registering (`return_register`) is refused, with a message the member reads and nothing written, for a member who
is not active, a program that is not running, a return type or a collection point of another program or no longer
active, a quantity below 1 or above the type's `max_quantity`, a return day in the future or more than the
program's `claim_window_days` ago, serial numbers missing where the type requires them (one per unit; where it does
not, none or one per unit), a serial longer than SERIAL_MAX, the same serial twice in the return, and a serial
already registered in any return that was not rejected (across all partners; named in the message). A serial is
stored in its `serial_form`: its matching key (loyalty.common.keys) without dashes, in capitals, so that "ab-12 3",
"AB-123" and "AB123" are one serial to the database's partial unique key on ReturnedSerial.serial_key (the matching
key keeps dashes, and the model has no field for the text as typed: the form typed is named in refusals only).
Registrations of one serial are serialised by an advisory lock per key (lock_objects.returned_serials_lock), and
the unique key is the last word.

Deciding: `return_confirm` and `return_reject` lock the return row, check RETURN_TRANSITIONS, save the status with
update_fields and append an EquipmentReturnEvent. Program managers decide every return; the collecting partner's
active members decide the returns of their collection points, except their own. Confirming is the rule engine's
"equipment returned" event (source key "return:<pk>", the units as its quantity, the type's name as its subject, on
the return day), so the program's rules pay it with their caps (per member and calendar month: the return day's
month) and budgets, once. When a cap or budget paid the member less than the rules would have, the return's
`reason` says so ("paid up to your monthly cap: N of M points"), in the member's language. Rejecting needs a
reason the member reads and releases the return's serials, so they can be registered again. The member is told
of either decision (RETURN_DECIDED); the delivery is stored in the same transaction and sent once it commits.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from communications.constants import Kind
from communications.services import notify
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import DAY_FORMAT
from loyalty.common.keys import matching_key
from loyalty.constants import RETURN_TRANSITIONS, CapPeriod, EntrySource, ReturnStatus, RuleEvent
from loyalty.engine.facts import member_event
from loyalty.engine.rules import evaluate
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import return_lock, returned_serials_lock
from loyalty.models import (
    CollectionPoint,
    EquipmentReturn,
    EquipmentReturnEvent,
    PointsAccount,
    Program,
    ReturnedSerial,
    ReturnType,
)
from loyalty.services.earning import post_event, published_rules
from partners.constants import MemberStatus
from partners.models import Member

EQUIPMENT_RETURNED = RuleEvent.EQUIPMENT_RETURNED.value
SERIAL_MAX = 80  # ReturnedSerial.serial's length
REASON_MAX = 500  # EquipmentReturn.reason's length
SERIALS_NAMED = 5  # a refusal names at most this many serials

# The field of the registration form each refusal concerns; the others concern the return as a whole.
ERROR_FIELDS = {
    ErrorCode.RETURN_TYPE_UNKNOWN: "return_type",
    ErrorCode.COLLECTION_POINT_UNKNOWN: "collection_point",
    ErrorCode.RETURN_QUANTITY: "quantity",
    ErrorCode.RETURN_DATE_FUTURE: "returned_on",
    ErrorCode.RETURN_DATE_TOO_OLD: "returned_on",
    ErrorCode.SERIALS_COUNT: "serials",
    ErrorCode.SERIAL_INVALID: "serials",
    ErrorCode.SERIAL_REPEATED: "serials",
    ErrorCode.SERIAL_REGISTERED: "serials",
}


def return_source_key(equipment_return: EquipmentReturn | int) -> str:
    """The source key of a return's "equipment returned" event (and of the ledger entries it posts)."""
    return f"return:{getattr(equipment_return, 'pk', equipment_return)}"


# Registering ---------------------------------------------------------------------------------------------------


def serial_form(text: str) -> str:
    """How a serial number is stored and compared: its matching key without dashes, in capitals ("ab-12 3" and
    "AB-123" are "AB123")."""
    return matching_key(text).replace("-", "").upper()


def serial_key(text: str) -> str:
    """The ReturnedSerial.serial_key a serial typed as `text` is stored with."""
    return matching_key(serial_form(text))


def serial_lines(text: str) -> list[str]:
    """The serial numbers typed one per line (blank lines dropped, each stripped)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _named(serials: list[str]) -> str:
    shown = ", ".join(serials[:SERIALS_NAMED])
    more = len(serials) - SERIALS_NAMED
    return shown if more <= 0 else _("%(serials)s and %(count)s more") % {"serials": shown, "count": more}


def _check_member(member: Member, program: Program) -> Member:
    fresh = Member.objects.select_related("user", "partner", "role").get(pk=member.pk)
    if fresh.status != MemberStatus.ACTIVE:
        raise ApplicationError(
            _("Only active members can register returns; this membership is %(status)s.")
            % {"status": fresh.get_status_display().lower()},
            ErrorCode.MEMBER_INACTIVE,
        )
    if not program.is_active:
        raise ApplicationError(_("This program is not running."), ErrorCode.PROGRAM_INACTIVE)
    return fresh


def _check_what(program: Program, return_type: ReturnType, point: CollectionPoint, quantity: int) -> None:
    if return_type is None or return_type.program_id != program.pk or not return_type.is_active:
        raise ApplicationError(_("Choose one of the program's return types."), ErrorCode.RETURN_TYPE_UNKNOWN)
    if point is None or point.program_id != program.pk or not point.is_active:
        raise ApplicationError(_("Choose one of the program's collection points."), ErrorCode.COLLECTION_POINT_UNKNOWN)
    if quantity < 1:
        raise ApplicationError(_("Enter at least 1 unit."), ErrorCode.RETURN_QUANTITY)
    if quantity > return_type.max_quantity:
        raise ApplicationError(
            _("At most %(most)s units of %(type)s can be returned at once; split a larger return.")
            % {"most": number_format(return_type.max_quantity, force_grouping=True), "type": return_type.name},
            ErrorCode.RETURN_QUANTITY,
        )


def _check_day(program: Program, returned_on: date, today: date) -> None:
    if returned_on > today:
        raise ApplicationError(_("The return day cannot be in the future."), ErrorCode.RETURN_DATE_FUTURE)
    earliest = today - timedelta(days=program.claim_window_days)
    if returned_on < earliest:
        raise ApplicationError(
            _("Returns can be registered up to %(days)s days later: the earliest return day now is %(day)s.")
            % {"days": program.claim_window_days, "day": date_format(earliest, DAY_FORMAT)},
            ErrorCode.RETURN_DATE_TOO_OLD,
        )


def _check_serials(return_type: ReturnType, quantity: int, serials: list[str]) -> dict[str, str]:
    """{serial key: serial as typed} of the return's serials, refused unless one per unit (or none where the type
    does not require them), each at most SERIAL_MAX long, none twice."""
    if (serials or return_type.requires_serials) and len(serials) != quantity:
        message = ngettext(
            "Enter one serial number per unit, one per line: %(units)s unit, %(serials)s serial numbers.",
            "Enter one serial number per unit, one per line: %(units)s units, %(serials)s serial numbers.",
            quantity,
        )
        if not serials:
            message = ngettext(
                "%(type)s needs the serial number of the unit returned, one per line.",
                "%(type)s needs the serial number of each of the %(units)s units returned, one per line.",
                quantity,
            )
        raise ApplicationError(
            message % {"units": quantity, "serials": len(serials), "type": return_type.name},
            ErrorCode.SERIALS_COUNT,
        )
    blank = [serial for serial in serials if not serial_form(serial)]
    if blank:
        raise ApplicationError(
            _("A serial number needs letters or digits: %(serials)s.") % {"serials": _named(blank)},
            ErrorCode.SERIAL_INVALID,
        )
    too_long = [serial for serial in serials if len(serial_form(serial)) > SERIAL_MAX]
    if too_long:
        raise ApplicationError(
            _("A serial number has at most %(most)s characters: %(serials)s.")
            % {"most": SERIAL_MAX, "serials": _named([s[:SERIAL_MAX] + "…" for s in too_long])},
            ErrorCode.SERIAL_INVALID,
        )
    keyed: dict[str, str] = {}
    repeated = []
    for serial in serials:
        key = serial_key(serial)
        if key in keyed:
            repeated.append(serial)
        else:
            keyed[key] = serial
    if repeated:
        raise ApplicationError(
            ngettext(
                "This serial number is entered twice: %(serials)s.",
                "These serial numbers are entered twice: %(serials)s.",
                len(repeated),
            )
            % {"serials": _named(repeated)},
            ErrorCode.SERIAL_REPEATED,
        )
    return keyed


def _registered_already(keyed: dict[str, str]) -> ApplicationError | None:
    taken = set(
        ReturnedSerial.objects.filter(serial_key__in=list(keyed), is_released=False).values_list(
            "serial_key", flat=True
        )
    )
    if not taken:
        return None
    named = [serial for key, serial in keyed.items() if key in taken]
    return ApplicationError(
        ngettext(
            "This serial number was registered in another return already: %(serials)s.",
            "These serial numbers were registered in other returns already: %(serials)s.",
            len(named),
        )
        % {"serials": _named(named)},
        ErrorCode.SERIAL_REGISTERED,
    )


@transaction.atomic
def return_register(
    *,
    member: Member,
    program: Program,
    return_type: ReturnType,
    collection_point: CollectionPoint,
    quantity: int,
    returned_on: date,
    serials: Sequence[str] = (),
    today: date | None = None,
) -> EquipmentReturn:
    """A new return waiting for confirmation, with its serials. Refusals: see the module's docstring."""
    today = today or timezone.localdate()
    member = _check_member(member, program)
    _check_what(program, return_type, collection_point, quantity)
    _check_day(program, returned_on, today)
    keyed = _check_serials(return_type, quantity, [serial.strip() for serial in serials if serial.strip()])
    returned_serials_lock(keyed)
    refusal = _registered_already(keyed)
    if refusal is not None:
        raise refusal
    equipment_return = EquipmentReturn.objects.create(
        program=program,
        member=member,
        partner=member.partner,
        return_type=return_type,
        collection_point=collection_point,
        quantity=quantity,
        returned_on=returned_on,
    )
    try:
        with transaction.atomic():  # the database's unique key, should anyone write serials without the lock
            ReturnedSerial.objects.bulk_create(
                [
                    ReturnedSerial(equipment_return=equipment_return, serial=serial_form(serial))
                    for serial in keyed.values()
                ]
            )
    except IntegrityError:
        raise _registered_already(keyed) or ApplicationError(
            _("A serial number was registered in another return already."), ErrorCode.SERIAL_REGISTERED
        ) from None
    EquipmentReturnEvent.objects.create(
        equipment_return=equipment_return, from_status="", to_status=ReturnStatus.REGISTERED, actor=member.user
    )
    return equipment_return


# Deciding ------------------------------------------------------------------------------------------------------


def may_decide(*, user, equipment_return: EquipmentReturn) -> bool:
    """Program managers decide every return; the collecting partner's active members those of their points, except
    their own returns."""
    if getattr(user, "is_active", False) and getattr(user, "is_program_manager", False):
        return True
    collector = equipment_return.collection_point.partner_id
    if collector is None or not getattr(user, "is_authenticated", False):
        return False
    if equipment_return.member.user_id == user.pk:
        return False
    return Member.objects.filter(user=user, partner_id=collector, status=MemberStatus.ACTIVE).exists()


def _check_decision(equipment_return: EquipmentReturn, to: str, *, actor) -> None:
    if to not in RETURN_TRANSITIONS[equipment_return.status]:
        raise ApplicationError(
            _("Return %(return)s is %(status)s already; it cannot be decided again.")
            % {"return": equipment_return.pk, "status": equipment_return.get_status_display().lower()},
            ErrorCode.BAD_TRANSITION,
        )
    if equipment_return.member.user_id == getattr(actor, "pk", None):
        raise ApplicationError(
            _("Someone else confirms your own returns."),
            ErrorCode.FOUR_EYES,
        )
    if not may_decide(user=actor, equipment_return=equipment_return):
        raise ApplicationError(
            _("Only the collection point's partner or the program team can decide on this return."),
            ErrorCode.FORBIDDEN,
        )


def _move(equipment_return: EquipmentReturn, to: str, *, actor, note: str = "") -> None:
    """Save the decision and record the move. `equipment_return` is locked and the move checked."""
    from_status = equipment_return.status
    equipment_return.status = to
    equipment_return.decided_by = actor
    equipment_return.decided_at = timezone.now()
    equipment_return.save(update_fields=["status", "reason", "decided_by", "decided_at", "updated_at"])
    EquipmentReturnEvent.objects.create(
        equipment_return=equipment_return, from_status=from_status, to_status=to, actor=actor, note=note[:500]
    )


@dataclass(frozen=True)
class Payout:
    """What confirming a return paid its member: `points`, out of the `wanted` the rules pay before caps and
    budgets; `capped`: a cap (rather than a budget) held it back, per `cap_period`."""

    points: int
    wanted: int
    capped: bool
    cap_period: str = CapPeriod.MONTH

    @property
    def limited(self) -> bool:
        return self.points < self.wanted


def _pay(equipment_return: EquipmentReturn) -> Payout:
    program, member = equipment_return.program, equipment_return.member
    rules = published_rules(program)
    event = member_event(
        kind=EQUIPMENT_RETURNED,
        program=program,
        source_key=return_source_key(equipment_return),
        member=member,
        occurred_on=equipment_return.returned_on,
        quantity=Decimal(equipment_return.quantity),
        unit="units",
        subject=equipment_return.return_type.name,
        line_id=equipment_return.return_type.product_line_id,  # rules may pay printers and toner differently
        rules=rules,
    )
    mine = [posting for posting in evaluate(event, rules) if posting.member_id == member.pk]
    entries = post_event(program=program, event=event, rules=rules, source_type=EntrySource.RETURN)
    own = PointsAccount.objects.filter(program=program, member=member).values_list("pk", flat=True).first()
    paid = sum(entry.available_delta + entry.pending_delta for entry in entries if entry.account_id == own)
    capped = [posting for posting in mine if posting.cap_points is not None]
    return Payout(
        points=paid,
        wanted=sum(posting.points for posting in mine),
        capped=bool(capped),
        cap_period=capped[0].cap_period if capped else CapPeriod.MONTH,
    )


def limited_note(payout: Payout) -> str:
    """What the member reads when a cap or budget paid less than the rules would have ("" when it did not)."""
    if not payout.limited:
        return ""
    numbers = {
        "paid": number_format(payout.points, force_grouping=True),
        "wanted": number_format(payout.wanted, force_grouping=True),
    }
    if not payout.capped:
        return _("Paid up to what is left of the rule's budget: %(paid)s of %(wanted)s points.") % numbers
    messages = {
        CapPeriod.MONTH: _("Paid up to your monthly cap: %(paid)s of %(wanted)s points."),
        CapPeriod.QUARTER: _("Paid up to your quarterly cap: %(paid)s of %(wanted)s points."),
        CapPeriod.YEAR: _("Paid up to your yearly cap: %(paid)s of %(wanted)s points."),
    }
    return messages.get(payout.cap_period, messages[CapPeriod.MONTH]) % numbers


def _tell(equipment_return: EquipmentReturn, *, confirmed: bool, points: int) -> None:
    decision = "confirmed" if confirmed else "rejected"
    notify(
        kind=Kind.RETURN_DECIDED,
        member=equipment_return.member,
        source_key=f"{return_source_key(equipment_return)}:{decision}",
        variables={
            "units": equipment_return.quantity,
            "what": equipment_return.return_type.name,
            "confirmed": confirmed,
            "points": points,
            "reason": equipment_return.reason,
        },
        link_path=reverse("return_list"),
    )


@transaction.atomic
def return_confirm(*, return_id: int, actor) -> tuple[EquipmentReturn, Payout]:
    """Confirm a registered return: the "equipment returned" event posts through the rules (once), the member is
    told what it paid, and why less when a cap or budget held it back."""
    equipment_return = return_lock(return_id)
    _check_decision(equipment_return, ReturnStatus.CONFIRMED, actor=actor)
    payout = _pay(equipment_return)
    with translation.override(equipment_return.member.language):
        equipment_return.reason = limited_note(payout)[:REASON_MAX]
    _move(equipment_return, ReturnStatus.CONFIRMED, actor=actor, note=equipment_return.reason)
    _tell(equipment_return, confirmed=True, points=payout.points)
    return equipment_return, payout


@transaction.atomic
def return_reject(*, return_id: int, actor, reason: str) -> EquipmentReturn:
    """Reject a registered return with a reason the member reads; its serials are released."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ApplicationError(_("Say why the return is rejected: the member reads it."), ErrorCode.REASON_REQUIRED)
    if len(reason) > REASON_MAX:
        raise ApplicationError(
            _("Keep the reason under %(most)s characters.") % {"most": REASON_MAX}, ErrorCode.TEXT_TOO_LONG
        )
    equipment_return = return_lock(return_id)
    _check_decision(equipment_return, ReturnStatus.REJECTED, actor=actor)
    equipment_return.reason = reason
    ReturnedSerial.objects.filter(equipment_return=equipment_return, is_released=False).update(is_released=True)
    _move(equipment_return, ReturnStatus.REJECTED, actor=actor, note=reason)
    _tell(equipment_return, confirmed=False, points=0)
    return equipment_return
