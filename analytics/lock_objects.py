"""Every lock analytics takes (one place to audit them, as in loyalty.lock_objects)."""

from datetime import date

from django.db import connection

# pg_advisory_xact_lock(namespace, id) key space: one rebuild of a day at a time.
ROLLUP_DAY_NAMESPACE = 0x5A30


def rollup_day_lock(day: date) -> None:
    """Hold the day until the transaction ends: two rebuilds of one day (the periodic task and the command) take
    turns, so the second deletes the first's rows instead of inserting next to them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ROLLUP_DAY_NAMESPACE, day.toordinal()])
