"""Periodic work of prize draws (scheduled in CELERY_BEAT_SCHEDULE as "run-draws")."""

from celery import shared_task

from loyalty.services import draws


@shared_task(name="loyalty.tasks.run_draws")
def run_draws() -> int:
    """Every few minutes: close the draws whose entries have closed, then draw them (each once)."""
    return draws.run_due_draws()
