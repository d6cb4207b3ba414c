"""Challenges' background work: announcing the ones that started, settling the ones that ended (both idempotent)."""

from celery import shared_task

from loyalty.services import challenges


@shared_task(name="loyalty.tasks.start_challenges")
def start_challenges() -> int:
    """Every 5 minutes: the audience of each published challenge that has started hears of it, once."""
    return challenges.start_due_challenges()


@shared_task(name="loyalty.tasks.settle_challenges")
def settle_challenges() -> int:
    """Every 15 minutes: ended challenges get their final ranks, prizes and results, once."""
    return challenges.settle_ended_challenges()
