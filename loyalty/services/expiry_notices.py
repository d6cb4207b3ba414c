"""Members hear of their points before they expire: one message per account and expiry day, sent once the day
is within the program's `expiry_notice_days` (the daily task loyalty.tasks.warn_expiring_points)."""

from datetime import timedelta

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from communications.constants import Kind
from communications.services import Notice, notify_many
from loyalty.models import PointsLot, Program


def warn_expiring_points(*, now=None) -> int:
    """Tell every member whose available points expire within their program's notice period: per account and
    expiry day, how many. Idempotent by (account, day): running it daily tells each expiry once. Returns how many
    notices were made (told before or not)."""
    now = now or timezone.now()
    notices = 0
    for program in Program.objects.filter(is_active=True, expiry_months__isnull=False):
        expiring = (
            PointsLot.objects.filter(
                account__program=program,
                account__member__isnull=False,
                remaining__gt=0,
                is_pending=False,
                expires_at__gt=now,
                expires_at__lte=now + timedelta(days=program.expiry_notice_days),
            )
            .annotate(day=TruncDate("expires_at", tzinfo=timezone.get_current_timezone()))
            .values_list("account_id", "account__member_id", "day")
            .annotate(points=Sum("remaining"))
            .order_by("account_id", "day")
        )
        batch = [
            Notice(member_id, f"expiring:{account_id}:{day.isoformat()}", {"points": points, "expires_on": day})
            for account_id, member_id, day, points in expiring
        ]
        notify_many(kind=Kind.POINTS_EXPIRING, notices=batch, link_path=reverse("catalogue"))
        notices += len(batch)
    return notices
