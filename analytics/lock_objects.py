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


def report_subscription_lock(subscription_id: int):
    """Lock one scheduled report's subscription (with its user and program, unlocked) until the transaction ends, or
    None when there is none: two runs of the daily task take turns on it, and the second sees the period sent."""
    from analytics.models import ReportSubscription

    return (
        ReportSubscription.objects.select_for_update(of=("self",))
        .select_related("user", "program")
        .filter(pk=subscription_id)
        .first()
    )
