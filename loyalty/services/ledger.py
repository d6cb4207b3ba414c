"""The points ledger: the way points change, one event at a time.

One of the two modules that write the points tables (accounts, entries, lots, allocations); the other is
loyalty.services.ledger_bulk, which posts a whole sell-out import with the same promises and this module's
`take_lots`. tests/test_architecture.py proves no other module writes them.

Every operation runs in one transaction, locks the balance rows it touches (primary-key order), is
idempotent by its key (the same key again returns the first result; the same key with other content is
refused), appends entries, and moves the cached balances by exactly the entries' sums. Spending,
expiry and reversals take points from lots soonest-to-expire first and record which lots they touched.
"""

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.common.events import publish
from loyalty.constants import EntryKind, EntrySource
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import account_available_lock, accounts_lock
from loyalty.models import PointsAccount, PointsAllocation, PointsEntry, PointsLot, Program

# Accounts -------------------------------------------------------------------------------------------


def member_account(*, program: Program, member) -> PointsAccount:
    return _account(program=program, member=member, partner=None)


def partner_account(*, program: Program, partner) -> PointsAccount:
    return _account(program=program, member=None, partner=partner)


def _account(*, program, member, partner) -> PointsAccount:
    """The account of a member or a partner (an instance or its id), created on first use."""
    lookup = {
        "program_id": getattr(program, "pk", program),
        "member_id": getattr(member, "pk", member),
        "partner_id": getattr(partner, "pk", partner),
    }
    account = PointsAccount.objects.filter(**lookup).first()
    if account is None:
        # Insert-if-absent: two first earns at once must not create two accounts.
        PointsAccount.objects.bulk_create([PointsAccount(**lookup)], ignore_conflicts=True)
        account = PointsAccount.objects.get(**lookup)
    return account


# Helpers --------------------------------------------------------------------------------------------


def _require_points(points) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise ApplicationError("Points must be a whole number greater than zero.", code=ErrorCode.INVALID_POINTS)
    return points


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


def _replay(key: str, fingerprint: str) -> PointsEntry | None:
    """The entry an earlier call with this key posted, or None. A key reused for other content is refused."""
    entry = PointsEntry.objects.filter(idempotency_key=key).first()
    if entry is not None and entry.fingerprint != fingerprint:
        raise ApplicationError(
            f"The idempotency key {key!r} was already used for a different operation.", code=ErrorCode.KEY_REUSED
        )
    return entry


def _insert_entry(**fields) -> PointsEntry:
    try:
        with transaction.atomic():
            return PointsEntry.objects.create(**fields)
    except IntegrityError as exc:
        # Only reachable when the same key targets another account (we hold this account's lock).
        raise ApplicationError(
            f"The idempotency key {fields['idempotency_key']!r} was already used for a different operation.",
            code=ErrorCode.KEY_REUSED,
        ) from exc


def _expiry(program: Program, earned_at: datetime) -> datetime | None:
    if program.expiry_months is None:
        return None
    return earned_at + relativedelta(months=program.expiry_months)


def _open_lots(account: PointsAccount, *, exclude_ids: Iterable[int] = ()) -> list[PointsLot]:
    return list(
        PointsLot.objects.filter(account=account, remaining__gt=0, is_pending=False)
        .exclude(pk__in=list(exclude_ids))
        .order_by(F("expires_at").asc(nulls_last=True), "pk")
    )


def take_lots(lots: Iterable, points: int) -> list[tuple[object, int]]:
    """The one way lots give points: take up to `points` from `lots` in the order given (callers pass them
    soonest-to-expire first), lowering each lot's `remaining`; returns (lot, taken) pairs. A lot is a PointsLot
    or any object with `remaining` (ledger_bulk's OpenLot). The spend path's SQL (_SPEND_LOTS) takes in the
    same order inside the database."""
    taken, left = [], points
    for lot in lots:
        if left == 0:
            break
        amount = min(lot.remaining, left)
        if amount <= 0:
            continue
        lot.remaining -= amount
        left -= amount
        taken.append((lot, amount))
    return taken


def _take(lots: list[PointsLot], points: int) -> list[tuple[PointsLot, int]]:
    """take_lots when the caller checked the total: lots that do not cover it mean balances and lots disagree."""
    taken = take_lots(lots, points)
    if sum(amount for _, amount in taken) != points:
        raise AssertionError("lots do not cover the balance")  # never expected
    return taken


def _record_allocations(entry: PointsEntry, taken: list[tuple[PointsLot, int]]) -> None:
    if not taken:
        return
    PointsLot.objects.bulk_update([lot for lot, _ in taken], ["remaining"])
    PointsAllocation.objects.bulk_create([PointsAllocation(lot=lot, entry=entry, points=n) for lot, n in taken])


def _move_balances(account: PointsAccount, **deltas: int) -> None:
    """Apply deltas to the locked account row, in the database and on the instance."""
    deltas = {field: delta for field, delta in deltas.items() if delta}
    if not deltas:
        return
    PointsAccount.objects.filter(pk=account.pk).update(
        updated_at=timezone.now(), **{field: F(field) + delta for field, delta in deltas.items()}
    )
    for field, delta in deltas.items():
        setattr(account, field, getattr(account, field) + delta)


def _insufficient(account: PointsAccount, needed: int) -> ApplicationError:
    return ApplicationError(
        f"Not enough points: {account.available:,} available, {needed:,} needed.",
        code=ErrorCode.INSUFFICIENT_POINTS,
        extra={"available": account.available, "needed": needed},
    )


# Operations -----------------------------------------------------------------------------------------


@transaction.atomic
def earn(
    *,
    account: PointsAccount,
    points: int,
    key: str,
    source_type: str = "",
    source_id: str = "",
    explanation: str = "",
    details: dict | None = None,
    available_at: datetime | None = None,
    earned_at: datetime | None = None,
    created_by=None,
) -> PointsEntry:
    """Credit points, available now or pending until `available_at`. They expire per the program policy."""
    _require_points(points)
    account = accounts_lock(account.pk)[account.pk]
    fingerprint = _fingerprint(EntryKind.EARN, account.pk, points, source_type, source_id, available_at)
    if (existing := _replay(key, fingerprint)) is not None:
        return existing
    now = timezone.now()
    pending = available_at is not None and available_at > now
    expires_at = _expiry(account.program, earned_at or now)
    entry = _insert_entry(
        account=account,
        kind=EntryKind.EARN,
        available_delta=0 if pending else points,
        pending_delta=points if pending else 0,
        idempotency_key=key,
        fingerprint=fingerprint,
        source_type=source_type,
        source_id=source_id,
        explanation=explanation,
        details=details or {},
        available_at=available_at if pending else None,
        expires_at=expires_at,
        created_by=created_by,
    )
    PointsLot.objects.create(
        account=account,
        entry=entry,
        points=points,
        remaining=points,
        is_pending=pending,
        available_at=available_at if pending else None,
        expires_at=expires_at,
    )
    if pending:
        _move_balances(account, pending=points, lifetime_earned=points)
    else:
        _move_balances(account, available=points, lifetime_earned=points)
    publish(
        "points.earned",
        program_id=account.program_id,
        data={"account_id": account.pk, "member_id": account.member_id, "partner_id": account.partner_id,
              "points": points, "entry_id": entry.pk, "source_type": source_type, "source_id": source_id},
    )  # fmt: skip
    return entry


@transaction.atomic
def release(*, entry: PointsEntry, created_by=None) -> PointsEntry | None:
    """Make a pending earn's remaining points available. Returns None when nothing is pending any more."""
    account = accounts_lock(entry.account_id)[entry.account_id]
    key = f"release:{entry.pk}"
    if (existing := _replay(key, _fingerprint(EntryKind.RELEASE, entry.pk))) is not None:
        return existing
    lots = list(PointsLot.objects.filter(entry=entry, is_pending=True))
    points = sum(lot.remaining for lot in lots)
    if not lots:
        return None
    PointsLot.objects.filter(pk__in=[lot.pk for lot in lots]).update(is_pending=False)
    if points == 0:
        return None  # the pending points were all reversed before release
    released = _insert_entry(
        account=account,
        kind=EntryKind.RELEASE,
        available_delta=points,
        pending_delta=-points,
        idempotency_key=key,
        fingerprint=_fingerprint(EntryKind.RELEASE, entry.pk),
        source_type=entry.source_type,
        source_id=entry.source_id,
        explanation=f"{points:,} pending points are now available",
        reverses=None,
        created_by=created_by,
    )
    _move_balances(account, available=points, pending=-points)
    return released


def release_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Release pending earns whose time has come (periodic task). Returns how many were released."""
    now = now or timezone.now()
    entry_ids = list(
        PointsLot.objects.filter(is_pending=True, available_at__lte=now)
        .order_by("available_at")
        .values_list("entry_id", flat=True)
        .distinct()[:limit]
    )
    released = 0
    for entry in PointsEntry.objects.filter(pk__in=entry_ids):
        if release(entry=entry) is not None:
            released += 1
    return released


_SPEND_ENTRY = """
INSERT INTO loyalty_pointsentry (account_id, kind, available_delta, pending_delta, idempotency_key, fingerprint,
    source_type, source_id, explanation, details, created_by_id, created_at)
VALUES (%s, 'spend', %s, 0, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, created_at
"""
# Soonest-to-expire first: each open lot gives min(what it has, what is still missing after the lots before it).
_SPEND_LOTS = """
WITH open AS (
    SELECT id, remaining, SUM(remaining) OVER (ORDER BY expires_at ASC NULLS LAST, id) - remaining AS before
    FROM loyalty_pointslot WHERE account_id = %(account)s AND remaining > 0 AND NOT is_pending
), taken AS (
    SELECT id, LEAST(remaining, %(points)s - before) AS points FROM open WHERE before < %(points)s
), lots AS (
    UPDATE loyalty_pointslot lot SET remaining = lot.remaining - taken.points FROM taken WHERE lot.id = taken.id
    RETURNING lot.id, taken.points
)
INSERT INTO loyalty_pointsallocation (lot_id, entry_id, points) SELECT id, %(entry)s, points FROM lots
RETURNING points
"""
_SPEND_BALANCE = """
UPDATE loyalty_pointsaccount SET available = available - %s, redeemed = redeemed + %s, updated_at = now()
WHERE id = %s
"""


@transaction.atomic
def spend(
    *,
    account: PointsAccount,
    points: int,
    key: str,
    source_type: str = "",
    source_id: str = "",
    explanation: str = "",
    details: dict | None = None,
    created_by=None,
) -> PointsEntry:
    """Take available points, soonest-to-expire first. Refused, changing nothing, if they are not there."""
    _require_points(points)
    fingerprint = _fingerprint(EntryKind.SPEND, account.pk, points, source_type, source_id)
    with connection.cursor() as cursor:
        available = account_available_lock(cursor, account.pk)
        if available < points:
            if (existing := _replay(key, fingerprint)) is not None:
                return existing
            account.available = available
            raise _insufficient(account, points)
        created_by_id = getattr(created_by, "pk", created_by)
        cursor.execute(
            _SPEND_ENTRY,
            [account.pk, -points, key, fingerprint, source_type, source_id, explanation,
             json.dumps(details or {}), created_by_id, timezone.now()],
        )  # fmt: skip
        row = cursor.fetchone()
        if row is None:  # the key was used before: the same spend again returns it, another one is refused
            return _replay(key, fingerprint)
        entry_id, created_at = row
        cursor.execute(_SPEND_LOTS, {"account": account.pk, "points": points, "entry": entry_id})
        if sum(taken for (taken,) in cursor.fetchall()) != points:
            raise AssertionError("lots do not cover the balance")  # balances and lots disagree: never expected
        cursor.execute(_SPEND_BALANCE, [points, points, account.pk])
    account.available = available - points
    entry = PointsEntry(
        pk=entry_id, account=account, kind=EntryKind.SPEND, available_delta=-points, idempotency_key=key,
        fingerprint=fingerprint, source_type=source_type, source_id=source_id, explanation=explanation,
        details=details or {}, created_by_id=created_by_id, created_at=created_at,
    )  # fmt: skip
    entry._state.adding, entry._state.db = False, "default"
    return entry


@transaction.atomic
def adjust(
    *, account: PointsAccount, points: int, key: str, reason: str, created_by, source_id: str = ""
) -> PointsEntry:
    """A manual correction (signed). Use services.adjustments for the program manager's workflow."""
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise ApplicationError(
            "An adjustment must be a whole number of points other than zero.", code=ErrorCode.INVALID_POINTS
        )
    if not reason.strip():
        raise ApplicationError("Give a reason for the adjustment; the member sees it.", code=ErrorCode.REASON_REQUIRED)
    account = accounts_lock(account.pk)[account.pk]
    fingerprint = _fingerprint(EntryKind.ADJUST, account.pk, points, reason)
    if (existing := _replay(key, fingerprint)) is not None:
        return existing
    if points < 0 and account.available < -points:
        raise _insufficient(account, -points)
    now = timezone.now()
    entry = _insert_entry(
        account=account,
        kind=EntryKind.ADJUST,
        available_delta=points,
        idempotency_key=key,
        fingerprint=fingerprint,
        source_type=EntrySource.ADJUSTMENT,
        source_id=source_id,
        explanation=reason.strip(),
        expires_at=_expiry(account.program, now) if points > 0 else None,
        created_by=created_by,
    )
    if points > 0:
        PointsLot.objects.create(
            account=account, entry=entry, points=points, remaining=points, expires_at=entry.expires_at
        )
    else:
        _record_allocations(entry, _take(_open_lots(account), -points))
    _move_balances(account, available=points)
    return entry


@transaction.atomic
def transfer(
    *,
    source: PointsAccount,
    target: PointsAccount,
    points: int,
    key: str,
    explanation: str = "",
    source_type: str = "",
    source_id: str = "",
    created_by=None,
) -> tuple[PointsEntry, PointsEntry]:
    """Move available points between two accounts of one program, keeping each lot's expiry date."""
    _require_points(points)
    if source.pk == target.pk:
        raise ApplicationError("Cannot transfer points to the same account.", code=ErrorCode.SAME_ACCOUNT)
    if source.program_id != target.program_id:
        raise ApplicationError(
            "Points can only move between accounts of the same program.", code=ErrorCode.OTHER_PROGRAM
        )
    locked = accounts_lock(source.pk, target.pk)
    source, target = locked[source.pk], locked[target.pk]
    fingerprint = _fingerprint(EntryKind.TRANSFER, source.pk, target.pk, points, source_type, source_id)
    if (existing := _replay(f"{key}:out", fingerprint)) is not None:
        return existing, PointsEntry.objects.get(idempotency_key=f"{key}:in")
    if source.available < points:
        raise _insufficient(source, points)
    common = {
        "kind": EntryKind.TRANSFER,
        "fingerprint": fingerprint,
        "source_type": source_type,
        "source_id": source_id,
        "explanation": explanation,
        "created_by": created_by,
    }
    out_entry = _insert_entry(
        account=source, available_delta=-points, idempotency_key=f"{key}:out", counterpart_account=target, **common
    )
    in_entry = _insert_entry(
        account=target, available_delta=points, idempotency_key=f"{key}:in", counterpart_account=source, **common
    )
    taken = _take(_open_lots(source), points)
    _record_allocations(out_entry, taken)
    PointsLot.objects.bulk_create(
        [
            PointsLot(account=target, entry=in_entry, points=n, remaining=n, expires_at=lot.expires_at)
            for lot, n in taken
        ]
    )
    _move_balances(source, available=-points)
    _move_balances(target, available=points)
    return out_entry, in_entry


@transaction.atomic
def reverse(
    *, entry: PointsEntry, key: str, points: int | None = None, explanation: str = "", created_by=None
) -> PointsEntry:
    """Undo an entry, fully or partly (`points`). Earned points are taken back from the lot they created
    (then soonest-to-expire); spent, expired or adjusted-away points go back to the lots they came from."""
    if entry.kind in (EntryKind.REVERSE, EntryKind.RELEASE):
        raise ApplicationError(
            f"A {entry.get_kind_display().lower()} entry cannot be reversed.", code=ErrorCode.NOT_REVERSIBLE
        )
    if entry.kind == EntryKind.TRANSFER:
        raise ApplicationError("Reverse a transfer by transferring the points back.", code=ErrorCode.NOT_REVERSIBLE)
    account = accounts_lock(entry.account_id)[entry.account_id]
    original = abs(entry.available_delta + entry.pending_delta)
    points = original if points is None else _require_points(points)
    fingerprint = _fingerprint(EntryKind.REVERSE, entry.pk, points)
    if (existing := _replay(key, fingerprint)) is not None:
        return existing
    already = -sum(r.available_delta + r.pending_delta for r in PointsEntry.objects.filter(reverses=entry)) * (
        1 if entry.available_delta + entry.pending_delta > 0 else -1
    )
    if points > original - already:
        raise ApplicationError(
            f"Only {original - already:,} of this entry's {original:,} points are left to reverse.",
            code=ErrorCode.OVER_REVERSAL,
        )
    text = explanation or f"Reversal of {entry.get_kind_display().lower()} {entry.idempotency_key}"
    if entry.available_delta + entry.pending_delta > 0:  # a credit: take the points back
        taken = _lots_to_take_back(account, entry, points)
        pending = -sum(n for lot, n in taken if lot.is_pending)
        available = -points - pending
        counters = {"lifetime_earned": -points} if entry.kind == EntryKind.EARN else {}
    else:  # a debit: give the points back
        taken = _lots_to_give_back(entry, points)
        available, pending = points, 0
        counters = {EntryKind.SPEND: {"redeemed": -points}, EntryKind.EXPIRE: {"expired": -points}}.get(entry.kind, {})
    reversal = _insert_entry(
        account=account,
        kind=EntryKind.REVERSE,
        available_delta=available,
        pending_delta=pending,
        idempotency_key=key,
        fingerprint=fingerprint,
        source_type=entry.source_type,
        source_id=entry.source_id,
        explanation=text,
        # What it takes back, and of which product line, for the daily roll-ups (analytics.rollups) to read here.
        details={
            "reverses_kind": entry.kind,
            **({key: entry.details[key] for key in ("product_line_id",) if key in entry.details}),
        },
        reverses=entry,
        created_by=created_by,
    )
    _record_allocations(reversal, taken)
    _move_balances(account, available=available, pending=pending, **counters)
    return reversal


def _lots_to_take_back(account, entry, points) -> list[tuple[PointsLot, int]]:
    """(lot, points) to take from: the credit's own lots first, then the account's soonest-to-expire."""
    own = list(PointsLot.objects.filter(entry=entry, remaining__gt=0).order_by("pk"))
    own_total = sum(lot.remaining for lot in own)
    from_own = min(own_total, points)
    from_others = points - from_own
    if from_others and account.available - sum(lot.remaining for lot in own if not lot.is_pending) < from_others:
        raise ApplicationError(
            f"{points:,} points cannot be taken back: {own_total + account.available:,} are left "
            "(the rest were already spent).",
            code=ErrorCode.INSUFFICIENT_POINTS,
        )
    taken = _take(own, from_own)
    if from_others:
        taken += _take(_open_lots(account, exclude_ids=[lot.pk for lot in own]), from_others)
    return taken


def _lots_to_give_back(entry, points) -> list[tuple[PointsLot, int]]:
    """(lot, -points) to give back to: the lots the debit (net of its earlier reversals) took from, newest-taken
    first."""
    net = (
        PointsAllocation.objects.filter(entry__in=[entry.pk, *entry.reversals.values_list("pk", flat=True)])
        .values("lot")
        .annotate(taken=Sum("points"))
        .filter(taken__gt=0)
        .order_by("-lot")
    )
    taken_by_lot = {row["lot"]: row["taken"] for row in net}
    lots = PointsLot.objects.in_bulk(list(taken_by_lot))
    restored, left = [], points
    for lot_id, taken in taken_by_lot.items():
        if left == 0:
            break
        amount = min(taken, left)
        lots[lot_id].remaining += amount
        left -= amount
        restored.append((lots[lot_id], -amount))
    return restored


@transaction.atomic
def expire_account(*, account: PointsAccount, now: datetime | None = None) -> PointsEntry | None:
    """Expire this account's lots that are due, in one entry. Nothing due: None."""
    now = now or timezone.now()
    account = accounts_lock(account.pk)[account.pk]
    lots = list(
        PointsLot.objects.filter(account=account, remaining__gt=0, is_pending=False, expires_at__lte=now).order_by(
            "expires_at", "pk"
        )
    )
    if not lots:
        return None
    points = sum(lot.remaining for lot in lots)
    # The key names exactly the points expired; a retry finds them gone and posts nothing.
    key = f"expire:{account.pk}:{_fingerprint([(lot.pk, lot.remaining) for lot in lots])[:24]}"
    taken = _take(lots, points)  # every due lot, whole
    oldest = min(lot.expires_at for lot in lots)
    entry = _insert_entry(
        account=account,
        kind=EntryKind.EXPIRE,
        available_delta=-points,
        idempotency_key=key,
        fingerprint=_fingerprint(EntryKind.EXPIRE, key),
        source_type=EntrySource.EXPIRY,
        explanation=f"{points:,} points reached their expiry date ({timezone.localdate(oldest):%d %b %Y})",
        details={"lots": [lot.pk for lot in lots]},
    )
    _record_allocations(entry, taken)
    _move_balances(account, available=-points, expired=points)
    return entry


def expire_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Expire due lots across all accounts (periodic task), one transaction per account."""
    now = now or timezone.now()
    account_ids = list(
        PointsLot.objects.filter(remaining__gt=0, is_pending=False, expires_at__lte=now)
        .order_by("account_id")
        .values_list("account_id", flat=True)
        .distinct()[:limit]
    )
    expired = 0
    for account in PointsAccount.objects.filter(pk__in=account_ids):
        if expire_account(account=account, now=now) is not None:
            expired += 1
    return expired
