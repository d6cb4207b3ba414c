"""Periodic work of paid club membership (scheduled in CELERY_BEAT_SCHEDULE as "remind-club-renewals")."""

from celery import shared_task

from loyalty.services import clubs


@shared_task(name="loyalty.tasks.remind_club_renewals")
def remind_club_renewals() -> int:
    """Daily: the owners of partners whose paid year ends within 30 days, and again within 7, hear they can renew
    (each reminder once, none once renewed)."""
    return clubs.remind_club_renewals()
