"""Queue background work from a service without importing the task module.

Tasks import services, never the other way round (no import circle): a service names the task it needs
and queues it once its transaction commits, so a worker never sees rows that are not there yet. Each app
registers its tasks at start-up (its AppConfig.ready imports its `tasks` package)."""

from celery import current_app
from django.db import transaction


def enqueue_on_commit(task_name: str, *args, countdown: int = 0) -> None:
    """Queue the registered Celery task `task_name` with `args` after the current transaction commits, to run
    `countdown` seconds later (at once, inline, when no broker is configured: CELERY_TASK_ALWAYS_EAGER)."""
    if countdown:
        transaction.on_commit(lambda: current_app.tasks[task_name].apply_async(args, countdown=countdown))
    else:
        transaction.on_commit(lambda: current_app.tasks[task_name].delay(*args))
