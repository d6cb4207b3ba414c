"""Manual corrections by program managers. Small ones post at once; large ones need a second person."""

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from communications.constants import Kind
from communications.services import Notice, notify_many
from loyalty.common.errors import ApplicationError
from loyalty.constants import AdjustmentStatus
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import adjustment_lock
from loyalty.models import PointsAccount, PointsAdjustment
from loyalty.services import ledger


def _require_program_manager(user) -> None:
    if not getattr(user, "is_program_manager", False):
        raise ApplicationError("Only program managers can adjust points.", code=ErrorCode.FORBIDDEN)


@transaction.atomic
def adjustment_request(*, account: PointsAccount, points: int, reason: str, requested_by) -> PointsAdjustment:
    _require_program_manager(requested_by)
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise ApplicationError(
            "An adjustment must be a whole number of points other than zero.", code=ErrorCode.INVALID_POINTS
        )
    if not reason.strip():
        raise ApplicationError("Give a reason for the adjustment; the member sees it.", code=ErrorCode.REASON_REQUIRED)
    available = PointsAccount.objects.values_list("available", flat=True).get(pk=account.pk)
    if points < 0 and available < -points:
        # Checked at request time too: a debit that can never post should not wait for a second approver.
        raise ApplicationError(
            f"Not enough points: {available:,} available, {-points:,} to take away.", code=ErrorCode.INSUFFICIENT_POINTS
        )
    adjustment = PointsAdjustment.objects.create(
        account=account,
        points=points,
        reason=reason.strip(),
        status=AdjustmentStatus.PENDING_APPROVAL,
        requested_by=requested_by,
    )
    if abs(points) <= account.program.adjustment_approval_threshold:
        _post(adjustment, decided_by=requested_by)
    return adjustment


@transaction.atomic
def adjustment_approve(*, adjustment: PointsAdjustment, approver) -> PointsAdjustment:
    _require_program_manager(approver)
    adjustment = adjustment_lock(adjustment.pk, with_program=True)
    if adjustment.status != AdjustmentStatus.PENDING_APPROVAL:
        raise ApplicationError(
            f"This adjustment is already {adjustment.get_status_display().lower()}.", code=ErrorCode.DECIDED
        )
    if adjustment.requested_by_id == approver.pk:
        raise ApplicationError(
            "A second program manager must approve this adjustment, not its requester.", code=ErrorCode.FOUR_EYES
        )
    _post(adjustment, decided_by=approver)
    return adjustment


@transaction.atomic
def adjustment_reject(*, adjustment: PointsAdjustment, approver, reason: str) -> PointsAdjustment:
    _require_program_manager(approver)
    if not reason.strip():
        raise ApplicationError(
            "Say why the adjustment is rejected; the requester sees it.", code=ErrorCode.REASON_REQUIRED
        )
    adjustment = adjustment_lock(adjustment.pk)
    if adjustment.status != AdjustmentStatus.PENDING_APPROVAL:
        raise ApplicationError(
            f"This adjustment is already {adjustment.get_status_display().lower()}.", code=ErrorCode.DECIDED
        )
    adjustment.status = AdjustmentStatus.REJECTED
    adjustment.decided_by, adjustment.decided_at = approver, timezone.now()
    adjustment.rejection_reason = reason.strip()
    adjustment.save(update_fields=["status", "decided_by", "decided_at", "rejection_reason", "updated_at"])
    return adjustment


def _post(adjustment: PointsAdjustment, *, decided_by) -> None:
    adjustment.entry = ledger.adjust(
        account=adjustment.account,
        points=adjustment.points,
        key=f"adjustment:{adjustment.pk}",
        reason=adjustment.reason,
        created_by=adjustment.requested_by,
        source_id=str(adjustment.pk),
    )
    adjustment.status = AdjustmentStatus.POSTED
    adjustment.decided_by, adjustment.decided_at = decided_by, timezone.now()
    adjustment.save(update_fields=["entry", "status", "decided_by", "decided_at", "updated_at"])
    _tell_member(adjustment)


def _tell_member(adjustment: PointsAdjustment) -> None:
    """A member's own account changed by hand: they hear how much and why (a company account's owners see it on
    the company statement)."""
    member_id = adjustment.account.member_id
    if member_id is None:
        return
    variables = {"points": adjustment.points, "reason": adjustment.reason}
    notice = Notice(member_id, f"adjustment:{adjustment.pk}", variables)
    notify_many(kind=Kind.ADJUSTMENT_POSTED, notices=[notice], link_path=reverse("points_statement"))
