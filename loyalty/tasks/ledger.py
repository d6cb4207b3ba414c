"""Periodic ledger work: expiry and the release of pending points (scheduled in CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from loyalty.services import ledger


@shared_task(name="loyalty.tasks.expire_due_points")
def expire_due_points() -> int:
    """Daily: expire lots past their date, one transaction per account. Safe to run twice."""
    return ledger.expire_due()


@shared_task(name="loyalty.tasks.release_due_points")
def release_due_points() -> int:
    """Hourly: make pending points available once their hold period is over."""
    return ledger.release_due()
