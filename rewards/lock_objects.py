"""Row and advisory locks for rewards, taken only here.

The order a checkout takes them in: its checkout key → the paying account (loyalty.lock_objects) → stock and
voucher codes.
"""

from django.db import connection

from rewards.models import RedemptionLine, RedemptionOrder


def checkout_key_lock(key: str) -> None:
    """Serialise every checkout with this key until the transaction ends: a double tap's second request waits for
    the first and then finds its order, instead of racing it to the unique key."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"checkout:{key}"])


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

    The codes are chosen in a MATERIALIZED CTE, evaluated exactly once: as `WHERE id IN (SELECT … LIMIT n FOR
    UPDATE SKIP LOCKED)` the planner may re-run the subquery for each row it updates (seen on PostgreSQL 18 once
    the table had statistics), and each run picks the next free code, so one line got more codes than it asked for.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH free AS MATERIALIZED (
                SELECT id FROM rewards_vouchercode WHERE reward_id = %s AND order_line_id IS NULL
                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE rewards_vouchercode code SET order_line_id = %s, assigned_at = now()
            FROM free WHERE code.id = free.id
            """,
            [reward_id, quantity, line_id],
        )
        return cursor.rowcount


def order_line_lock(pk: int) -> RedemptionLine:
    """One order line (a seat of a dated event, say), locked, with its reward, order, member and program."""
    return (
        RedemptionLine.objects.select_for_update(of=("self",))
        .select_related(
            "reward", "order__program", "order__member__partner", "order__member__role", "order__member__user"
        )
        .get(pk=pk)
    )
