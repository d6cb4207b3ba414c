from celery import shared_task

from .services import ledger


@shared_task
def expire_due_points() -> int:
    """Daily: expire lots past their date, one transaction per account. Safe to run twice."""
    return ledger.expire_due()


@shared_task
def release_due_points() -> int:
    """Hourly: make pending points available once their hold period is over."""
    return ledger.release_due()
