"""Row locks for rewards, taken only here."""

from django.db import connection

from rewards.models import RedemptionOrder


def order_lock(pk: int) -> RedemptionOrder:
    return (
        RedemptionOrder.objects.select_for_update(of=("self",))
        .select_related("program", "member__user", "member__partner", "account")
        .get(pk=pk)
    )


def free_codes_assign(*, reward_id: int, line_id: int, quantity: int) -> int:
    """Hand up to `quantity` free codes of a reward to an order line, lowest id first, and say how many it got.

    The free codes are locked with SKIP LOCKED: codes another checkout is taking at the same moment are passed
    over instead of waited for, so concurrent checkouts never hand one code to two orders nor queue up behind
    each other. Fewer than `quantity` means the pool ran dry; the caller refuses the order (and rolls back).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE rewards_vouchercode SET order_line_id = %s, assigned_at = now()
            WHERE id IN (
                SELECT id FROM rewards_vouchercode WHERE reward_id = %s AND order_line_id IS NULL
                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
            )
            """,
            [line_id, reward_id, quantity],
        )
        return cursor.rowcount
