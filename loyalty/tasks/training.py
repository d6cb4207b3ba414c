"""Periodic work of learn to earn (scheduled in CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from loyalty.services import certificate_notices


@shared_task(name="loyalty.tasks.warn_expiring_certificates")
def warn_expiring_certificates() -> int:
    """Daily: tell members whose certificate expires within CERTIFICATE_NOTICE_DAYS (each certificate once)."""
    return certificate_notices.warn_expiring_certificates()
