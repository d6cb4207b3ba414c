"""Periodic analytics work (scheduled in CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from analytics import rollups


@shared_task(name="analytics.tasks.rollup_recent")
def rollup_recent() -> dict:
    """Every 15 minutes: rebuild today's and yesterday's roll-ups, and the older sales days that changed since the
    previous run (analytics.rollups.rollup_recent). Safe to run twice, or while the command rebuilds a range."""
    return rollups.rollup_recent().summary()
