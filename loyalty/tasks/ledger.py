"""Periodic ledger work: expiry and the release of pending points (scheduled in CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from loyalty.services import expiry_notices, ledger


@shared_task(name="loyalty.tasks.expire_due_points")
def expire_due_points() -> int:
    """Daily: expire lots past their date, one transaction per account. Safe to run twice."""
    return ledger.expire_due()


@shared_task(name="loyalty.tasks.release_due_points")
def release_due_points() -> int:
    """Hourly: make pending points available once their hold period is over."""
    return ledger.release_due()


@shared_task(name="loyalty.tasks.warn_expiring_points")
def warn_expiring_points() -> int:
    """Daily: tell members of their points expiring within their program's notice period (each expiry once)."""
    return expiry_notices.warn_expiring_points()
