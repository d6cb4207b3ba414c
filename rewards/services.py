"""Writes for the rewards catalogue, carts and redemption orders.

Points move only through loyalty.services.ledger. Placing an order locks the paying account, takes
stock with a conditional UPDATE and voucher codes with SKIP LOCKED, so concurrent checkouts can never
overdraw an account, oversell stock or hand one code to two orders.
"""

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from communications.constants import Kind
from communications.services import notify
from loyalty.common.errors import ApplicationError
from loyalty.common.events import publish
from loyalty.common.formatting import DAY_FORMAT
from loyalty.common.statuses import require_transition
from loyalty.constants import EntrySource, RuleEvent
from loyalty.engine.facts import member_event
from loyalty.lock_objects import accounts_lock
from loyalty.models import Program
from loyalty.selectors.certificates import is_certified
from loyalty.services import ledger
from loyalty.services.earning import post_event
from partners.constants import MemberStatus
from partners.models import Member
from partners.visibility import Viewer, viewer_for
from rewards import selectors
from rewards.constants import (
    ADDRESS_FIELDS,
    MAX_QUANTITY_PER_LINE,
    ORDER_TRANSITIONS,
    REFUNDING_STATUSES,
    REQUIRED_ADDRESS_FIELDS,
    OrderStatus,
    PaidBy,
)
from rewards.error_codes import ErrorCode
from rewards.lock_objects import checkout_key_lock, free_codes_assign, order_line_lock, order_lock
from rewards.models import CartItem, OrderEvent, RedemptionLine, RedemptionOrder, Reward, VoucherCode

# Restrictions -------------------------------------------------------------------------------------


def reward_problem(*, reward: Reward, member: Member, moment: datetime | None = None) -> str | None:
    """Why this member may not redeem this reward now, or None. Shown to the member as it is."""
    moment = moment or timezone.now()
    if (partner_ids := {partner.pk for partner in reward.allowed_partners.all()}) and (
        member.partner_id not in partner_ids
    ):
        # Negotiated for named partners: to anyone else the reward does not exist (the catalogue hides it too).
        return _("This reward is not in your catalogue.")
    if not reward.is_available_at(moment):
        if reward.available_from and moment < reward.available_from:
            day = date_format(timezone.localtime(reward.available_from), DAY_FORMAT)
            return _("%(reward)s can be redeemed from %(day)s.") % {"reward": reward.name, "day": day}
        return _("%(reward)s is no longer available.") % {"reward": reward.name}
    if reward.min_tier_id is not None:
        rank = selectors.partner_tier_rank(program=reward.program_id, partner=member.partner_id)
        if rank is None or rank < reward.min_tier.rank:
            return _("%(reward)s is reserved for %(tier)s partners and above.") % {
                "reward": reward.name,
                "tier": reward.min_tier.name,
            }
    role_ids = {role.pk for role in reward.allowed_roles.all()}
    if role_ids and member.role_id not in role_ids:
        return _("%(reward)s is reserved for other roles.") % {"reward": reward.name}
    if reward.allowed_partner_kinds and member.partner.kind not in reward.allowed_partner_kinds:
        kind = member.partner.get_kind_display()
        return _("%(reward)s is not offered to partners of the kind “%(kind)s”.") % {
            "reward": reward.name,
            "kind": kind,
        }
    region_ids = {region.pk for region in reward.allowed_regions.all()}
    if region_ids and member.partner.region_id not in region_ids:
        return _("%(reward)s is not offered in %(region)s.") % {"reward": reward.name, "region": member.partner.region}
    line_id = reward.requires_certification_id
    if line_id is not None and not is_certified(member=member, line_id=line_id, on=timezone.localdate(moment)):
        return _(
            "%(reward)s is reserved for members certified on %(line)s: you can redeem it once you hold a valid "
            "certificate (pass the %(line)s course on the Learn page)."
        ) % {"reward": reward.name, "line": reward.requires_certification.name}
    return None


def _limit_problem(*, reward: Reward, member: Member, quantity: int, moment: datetime) -> str | None:
    """Why `quantity` more of the reward would take the member past their limit (the cart and the checkout both
    ask), or None."""
    if reward.limit_per_member is None:
        return None
    already = selectors.already_ordered(reward=reward, member=member, moment=moment)
    if already + quantity <= reward.limit_per_member:
        return None
    left = max(reward.limit_per_member - already, 0)
    if left:
        message = _("%(reward)s is limited to %(limit)d %(period)s per person; you can order %(left)d more.")
    else:
        message = _("%(reward)s is limited to %(limit)d %(period)s per person, and you have ordered that many already.")
    period = reward.get_limit_period_display()
    return message % {"reward": reward.name, "limit": reward.limit_per_member, "period": period, "left": left}


# Carts --------------------------------------------------------------------------------------------


def _require_quantity(quantity) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY_PER_LINE:
        raise ApplicationError(
            _("Quantity must be a whole number from 1 to %(most)d.") % {"most": MAX_QUANTITY_PER_LINE},
            code=ErrorCode.QUANTITY,
        )
    return quantity


@transaction.atomic
def cart_set(*, member: Member, reward: Reward, quantity: int) -> CartItem | None:
    """Put `quantity` of a reward in the cart (0 removes it)."""
    if quantity == 0:
        CartItem.objects.filter(member=member, reward=reward).delete()
        return None
    _require_quantity(quantity)
    if (problem := reward_problem(reward=reward, member=member)) is not None:
        raise ApplicationError(problem, code=ErrorCode.RESTRICTED)
    if reward.paid_by == PaidBy.COMPANY and not viewer_for(member.user).is_owner:
        raise ApplicationError(
            _("Only the partner owner can redeem %(reward)s from the company account.") % {"reward": reward.name},
            ErrorCode.OWNER_ONLY,
        )
    # Checked again (under locks) at checkout; here so that nobody fills a cart they cannot check out.
    if (problem := _limit_problem(reward=reward, member=member, quantity=quantity, moment=timezone.now())) is not None:
        raise ApplicationError(problem, code=ErrorCode.RESTRICTED)
    left = selectors.units_left(reward=reward)
    if left == 0:
        raise ApplicationError(_("%(reward)s is out of stock.") % {"reward": reward.name}, ErrorCode.OUT_OF_STOCK)
    if left is not None and left < quantity:
        raise ApplicationError(
            _("Only %(left)d of %(reward)s left: choose %(left)d or fewer.") % {"left": left, "reward": reward.name},
            ErrorCode.OUT_OF_STOCK,
        )
    item, _created = CartItem.objects.update_or_create(member=member, reward=reward, defaults={"quantity": quantity})
    return item


# Orders -------------------------------------------------------------------------------------------


def _address_given(address: dict | None) -> dict:
    return {field: str((address or {}).get(field, "")).strip() for field in ADDRESS_FIELDS}


def _clean_address(address: dict) -> dict:
    missing = [field for field in REQUIRED_ADDRESS_FIELDS if not address[field]]
    if missing:
        raise ApplicationError(
            _("A delivery address is needed for rewards we ship or set up on site: fill in %(fields)s.")
            % {"fields": ", ".join(missing)},
            code=ErrorCode.ADDRESS,
        )
    return address


def _take_stock(reward: Reward, quantity: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE rewards_reward SET stock = stock - %s WHERE id = %s AND stock >= %s RETURNING stock",
            [quantity, reward.pk, quantity],
        )
        if cursor.fetchone() is None:
            message = _("%(reward)s is out of stock for that quantity.") % {"reward": reward.name}
            raise ApplicationError(message, code=ErrorCode.OUT_OF_STOCK)


def _take_codes(line: RedemptionLine) -> None:
    taken = free_codes_assign(reward_id=line.reward_id, line_id=line.pk, quantity=line.quantity)
    if taken < line.quantity:
        raise ApplicationError(
            _("%(reward)s has run out of codes. Try again later, or pick another reward.")
            % {"reward": line.reward.name},
            code=ErrorCode.CODES_EXHAUSTED,
        )


def _fingerprint(*, paid_by: str, items: list[tuple[Reward, int]], address: dict) -> str:
    """What a checkout asks for, as a sha-256: the paying account, each reward and quantity (in reward order) and
    the delivery address when one is needed. One checkout key always asks for the same."""
    body = {"paid_by": paid_by, "lines": [[reward.pk, quantity] for reward, quantity in items], "address": address}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _repeated_checkout(*, checkout_key: str, member: Member, fingerprint: str) -> RedemptionOrder | None:
    """The order this checkout key already placed, when the same member asks for the same again (a double tap, a
    resubmitted page): they get that order, as it is. Another member's key or another request is refused."""
    existing = RedemptionOrder.objects.filter(checkout_key=checkout_key).first()
    if existing is None:
        return None
    if existing.member_id != member.pk:
        raise ApplicationError(_("This checkout belongs to someone else."), code=ErrorCode.KEY_REUSED)
    # Orders placed before fingerprints were recorded have none: a repeat of their key gets them back, as before.
    if existing.request_fingerprint and existing.request_fingerprint != fingerprint:
        raise ApplicationError(
            _(
                "This checkout already placed order %(order)s for other rewards, quantities or another address, "
                "so nothing was changed. Open the checkout again to place a new order."
            )
            % {"order": existing.pk},
            code=ErrorCode.KEY_REUSED,
        )
    return existing


def _record(order: RedemptionOrder, from_status: str, to_status: str, actor, note: str = "") -> None:
    OrderEvent.objects.create(order=order, from_status=from_status, to_status=to_status, actor=actor, note=note)
    publish(
        "order.status_changed",
        program_id=order.program_id,
        data={"order_id": order.pk, "member_id": order.member_id, "partner_id": order.member.partner_id,
              "from_status": from_status or None, "to_status": to_status,
              "tracking": {"carrier": order.carrier, "number": order.tracking_number}},
    )  # fmt: skip


@transaction.atomic
def order_place(
    *,
    member: Member,
    program: Program,
    items: Iterable[tuple[Reward, int]],
    paid_by: str,
    checkout_key: str,
    address: dict | None = None,
) -> RedemptionOrder:
    """Redeem points for rewards: all or nothing. Rewards that ship or are set up on site need `address`.

    Idempotent on `checkout_key` (Stripe's rule): the same key asking for the same again returns the order it
    placed, whether the requests come one after the other or at the same moment (they take turns on the key's
    lock); the same key asking for something else is refused."""
    items = sorted(((reward, _require_quantity(quantity)) for reward, quantity in items), key=lambda i: i[0].pk)
    needs_address = any(reward.needs_address for reward, _quantity in items)
    address = _address_given(address) if needs_address else {}
    checkout_key_lock(checkout_key)
    fingerprint = _fingerprint(paid_by=paid_by, items=items, address=address)
    if (existing := _repeated_checkout(checkout_key=checkout_key, member=member, fingerprint=fingerprint)) is not None:
        return existing
    if member.status != MemberStatus.ACTIVE:
        raise ApplicationError(
            _("Your membership is not active yet, so you cannot redeem points."), code=ErrorCode.INACTIVE
        )
    if not items:
        raise ApplicationError(_("Your cart is empty."), code=ErrorCode.EMPTY)
    if len({reward.pk for reward, _quantity in items}) != len(items):
        raise ApplicationError(_("Each reward may appear once in an order."), code=ErrorCode.DUPLICATE_LINE)
    if paid_by == PaidBy.COMPANY:
        if not viewer_for(member.user).is_owner:
            raise ApplicationError(
                _("Only the partner owner can spend the company account."), code=ErrorCode.OWNER_ONLY
            )
        account = ledger.partner_account(program=program, partner=member.partner)
    else:
        account = ledger.member_account(program=program, member=member)
    account = accounts_lock(account.pk)[account.pk]  # serialises this account's checkouts (limits, balance)

    now = timezone.now()
    for reward, quantity in items:
        if reward.program_id != program.pk:
            raise ApplicationError(
                _("%(reward)s belongs to another program.") % {"reward": reward.name}, code=ErrorCode.OTHER_PROGRAM
            )
        if reward.paid_by != paid_by:
            raise ApplicationError(
                _("%(reward)s is paid from the other account: %(account)s.")
                % {"reward": reward.name, "account": reward.get_paid_by_display()},
                code=ErrorCode.PAID_BY,
            )
        problem = reward_problem(reward=reward, member=member, moment=now) or _limit_problem(
            reward=reward, member=member, quantity=quantity, moment=now
        )
        if problem:
            raise ApplicationError(problem, code=ErrorCode.RESTRICTED)
    total = sum(reward.points_price * quantity for reward, quantity in items)
    if account.available < total:
        raise ApplicationError(
            _("This order needs %(total)s %(currency)s; %(available)s are available.")
            % {
                "total": number_format(total, force_grouping=True),
                "currency": program.currency_name,
                "available": number_format(account.available, force_grouping=True),
            },
            code=ErrorCode.INSUFFICIENT_POINTS,
        )
    shipping = _clean_address(address) if needs_address else dict.fromkeys(ADDRESS_FIELDS, "")

    order = RedemptionOrder.objects.create(
        program=program,
        member=member,
        account=account,
        paid_by=paid_by,
        total_points=total,
        checkout_key=checkout_key,
        request_fingerprint=fingerprint,
        **{f"delivery_{field}": value for field, value in shipping.items()},
    )
    lines = RedemptionLine.objects.bulk_create(
        [RedemptionLine(order=order, reward=r, quantity=q, points_each=r.points_price) for r, q in items]
    )
    for line in lines:
        if line.reward.uses_codes:
            _take_codes(line)
        elif line.reward.stock is not None:
            _take_stock(line.reward, line.quantity)
    summary = ", ".join(f"{line.quantity} × {line.reward.name}" for line in lines)
    order.spend_entry = ledger.spend(
        account=account,
        points=total,
        key=f"order:{order.pk}",
        source_type=EntrySource.ORDER,
        source_id=str(order.pk),
        explanation=f"Order {order.pk}: {summary}"[:500],
        created_by=member.user,
    )
    order.save(update_fields=["spend_entry"])
    _record(order, "", OrderStatus.PLACED, member.user)
    if total <= program.order_approval_threshold:
        _move(order, OrderStatus.APPROVED, actor=None, note="Approved automatically (under the approval threshold)")
        if all(line.reward.uses_codes for line in lines):
            _move(order, OrderStatus.FULFILLED, actor=None, note="Codes shown to the member")
    CartItem.objects.filter(member=member, reward__in=[reward for reward, _quantity in items]).delete()
    return order


def _move(order: RedemptionOrder, to: str, *, actor, note: str = "") -> None:
    from_status = order.status
    order.status = to
    order.save(update_fields=["status", "updated_at"])
    _record(order, from_status, to, actor, note)


def _may_move(viewer: Viewer, order: RedemptionOrder, to: str) -> bool:
    """Who may move an order (whether the move itself is allowed is ORDER_TRANSITIONS' business)."""
    if viewer.is_program_manager:
        return True
    # The person who ordered (or their owner, for company orders) may cancel while it waits for approval, and an
    # order of seats at dated events until the first of them starts (services.seats_cancellable).
    if to != OrderStatus.CANCELLED or not (order.status == OrderStatus.PLACED or seats_cancellable(order=order)):
        return False
    if viewer.is_authenticated and order.member.user_id == viewer.user.pk:
        return True
    return order.paid_by == PaidBy.COMPANY and viewer.owns(order.member.partner_id)


def can_cancel(*, viewer, order: RedemptionOrder) -> bool:
    """Would order_transition cancel this order for this viewer (a Viewer or a user) now? The order page offers
    the cancel button, and the cancel page its form, exactly when it would."""
    return order.can_cancel() and _may_move(viewer_for(viewer), order, OrderStatus.CANCELLED)


@transaction.atomic
def order_transition(
    *, order: RedemptionOrder, to: str, actor, note: str = "", carrier: str = "", tracking_number: str = ""
) -> RedemptionOrder:
    """Move an order along its status machine; a rejection or cancellation refunds points, stock and codes."""
    locked = order_lock(order.pk)
    require_transition(
        locked, to, ORDER_TRANSITIONS, OrderStatus, name=f"Order {locked.pk}", code=ErrorCode.BAD_TRANSITION
    )
    if not _may_move(viewer_for(actor), locked, to):
        raise ApplicationError(_("You are not allowed to do that with this order."), code=ErrorCode.FORBIDDEN)
    if to in REFUNDING_STATUSES:
        if not note.strip():
            raise ApplicationError(_("Say why; the member sees the reason."), code=ErrorCode.REASON_REQUIRED)
        locked.refund_entry = ledger.reverse(
            entry=locked.spend_entry,
            key=f"order-refund:{locked.pk}",
            explanation=f"Refund of order {locked.pk}: {note.strip()}"[:500],
            created_by=actor,
        )
        lines = list(locked.lines.select_related("reward").order_by("reward_id"))
        for line in lines:
            if line.reward.stock is not None and not line.reward.uses_codes:
                Reward.objects.filter(pk=line.reward_id).update(stock=F("stock") + line.quantity)
        VoucherCode.objects.filter(order_line__in=lines).update(order_line=None, assigned_at=None)
        locked.decision_reason = note.strip()
        locked.save(update_fields=["refund_entry", "decision_reason"])
    if to == OrderStatus.FULFILLED:
        locked.carrier, locked.tracking_number = carrier.strip(), tracking_number.strip()
        locked.save(update_fields=["carrier", "tracking_number"])
    _move(locked, to, actor=actor, note=note.strip())
    if to == OrderStatus.APPROVED and all(line.reward.uses_codes for line in locked.lines.select_related("reward")):
        _move(locked, OrderStatus.FULFILLED, actor=actor, note="Codes shown to the member")
    _tell_member(locked)
    order.status = locked.status
    return locked


_ORDER_KINDS = {
    OrderStatus.APPROVED: Kind.ORDER_APPROVED,
    OrderStatus.FULFILLED: Kind.ORDER_SHIPPED,
    OrderStatus.DELIVERED: Kind.ORDER_DELIVERED,
    OrderStatus.REJECTED: Kind.ORDER_REJECTED,
    OrderStatus.CANCELLED: Kind.ORDER_CANCELLED,
}


def _tell_member(order: RedemptionOrder) -> None:
    """The member who ordered hears where their order stands (codes ready, shipped with tracking, refunded)."""
    lines = list(order.lines.select_related("reward").order_by("pk"))
    codes_only = order.status == OrderStatus.FULFILLED and all(line.reward.uses_codes for line in lines)
    kind = Kind.VOUCHER_READY if codes_only else _ORDER_KINDS[order.status]
    variables = {
        "order_number": str(order.pk),
        "points": order.total_points,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "reason": order.decision_reason,
        "refunded_points": order.total_points if order.status in REFUNDING_STATUSES else 0,
        "reward": ", ".join(line.reward.name for line in lines),
    }
    path = reverse("order_detail", args=[order.pk])
    notify(
        kind=kind,
        member=order.member,
        source_key=f"order:{order.pk}:{order.status}",
        variables=variables,
        link_path=path,
    )


# Voucher codes ------------------------------------------------------------------------------------


def codes_from_csv(data: bytes) -> list[str]:
    """Codes from an uploaded CSV: one per line, first column; a header line 'code' is skipped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(
            "The file is not UTF-8 text. Save it as CSV (UTF-8) and try again.", ErrorCode.ENCODING
        ) from exc
    codes = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not row[0].strip():
            continue
        code = row[0].strip()
        if number == 1 and code.lower() == "code":
            continue
        if len(code) > 120:
            raise ApplicationError(f"Line {number}: the code is longer than 120 characters.", code=ErrorCode.TOO_LONG)
        codes.append(code)
    if not codes:
        raise ApplicationError("The file has no codes.", code=ErrorCode.EMPTY)
    return codes


@transaction.atomic
def codes_add(*, reward: Reward, codes: list[str]) -> tuple[int, int]:
    """Add codes to a reward's pool; returns (added, skipped because already in the pool or repeated)."""
    if not reward.uses_codes:
        raise ApplicationError(f"{reward.name} does not hand out codes.", code=ErrorCode.NOT_CODE_REWARD)
    before = VoucherCode.objects.filter(reward=reward).count()
    VoucherCode.objects.bulk_create(
        [VoucherCode(reward=reward, code=code) for code in dict.fromkeys(codes)], ignore_conflicts=True
    )
    added = VoucherCode.objects.filter(reward=reward).count() - before
    return added, len(codes) - added


# Events and sessions ------------------------------------------------------------------------------


def seats_cancellable(*, order: RedemptionOrder, moment: datetime | None = None) -> bool:
    """An approved order of seats at dated events (or expert sessions) only, none of which has started: its holder
    may still cancel it and get the points and the seats back (one query)."""
    if order.status != OrderStatus.APPROVED:
        return False
    lines = RedemptionLine.objects.filter(order=order)
    moment = moment or timezone.now()
    started_or_undated = Q(reward__event_starts_at__isnull=True) | Q(reward__event_starts_at__lte=moment)
    found = lines.aggregate(total=Count("pk"), blocking=Count("pk", filter=started_or_undated))
    return found["total"] > 0 and found["blocking"] == 0


@transaction.atomic
def attendance_record(*, line: RedemptionLine, actor, attended: bool) -> RedemptionLine:
    """Record whether the holder of a seat at a dated event came (program team only, once the event has started).

    Attending emits "event attended" to the rule engine, which pays what the program's rules say, once per order
    line (its source key `event:<line id>`): marking it twice pays once. A no-show pays nothing; a no-show can
    still be corrected to attended, but an attendance already paid is not taken back here (an adjustment does)."""
    if not viewer_for(actor).is_program_manager:
        raise ApplicationError(_("Only the program team records attendance."), code=ErrorCode.FORBIDDEN)
    locked = order_line_lock(line.pk)
    reward, order = locked.reward, locked.order
    if reward.event_starts_at is None:
        raise ApplicationError(
            _("%(reward)s is not a dated event, so it has no attendance.") % {"reward": reward.name},
            code=ErrorCode.NOT_AN_EVENT,
        )
    now = timezone.now()
    if now < reward.event_starts_at:
        day = date_format(timezone.localtime(reward.event_starts_at), "DATETIME_FORMAT")
        raise ApplicationError(
            _("%(reward)s starts on %(day)s: attendance can be recorded once it has started.")
            % {"reward": reward.name, "day": day},
            code=ErrorCode.EVENT_NOT_STARTED,
        )
    if order.status in REFUNDING_STATUSES:
        raise ApplicationError(
            _("Order %(order)s was %(status)s, so its seat has no attendance.")
            % {"order": order.pk, "status": order.get_status_display().lower()},
            code=ErrorCode.BAD_TRANSITION,
        )
    if locked.attended_at is not None:
        if attended:
            return locked  # already recorded (and paid): nothing more
        raise ApplicationError(
            _("%(member)s is already recorded as attending %(reward)s, and any points for it are paid.")
            % {"member": order.member.user.full_name, "reward": reward.name},
            code=ErrorCode.ATTENDANCE_RECORDED,
        )
    if not attended:
        locked.no_show = True
        locked.save(update_fields=["no_show"])
        return locked
    locked.attended_at, locked.no_show = now, False
    locked.save(update_fields=["attended_at", "no_show"])
    event = member_event(
        kind=RuleEvent.EVENT_ATTENDED.value,
        program=order.program,
        source_key=f"event:{locked.pk}",
        member=order.member,
        occurred_on=timezone.localdate(reward.event_starts_at),
        quantity=1,
        unit="event",
        subject=reward.name,
    )
    post_event(program=order.program, event=event, source_type=EntrySource.EVENT)
    return locked
