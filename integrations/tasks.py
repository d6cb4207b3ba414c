"""The webhooks' background work: each delivery sent after its event's commit, the periodic sweep of what is due
(retries, and anything whose task was lost), redeliveries from the admin, and the program team's notice of a
subscription disabled. Tasks take ids and are idempotent: a delivery that is not due, or that another worker is
sending, is left alone."""

from celery import shared_task

from integrations import delivery, idempotency


@shared_task(name="integrations.tasks.deliver_webhook")
def deliver_webhook(delivery_id: int) -> str | None:
    """One attempt of a due delivery; returns its status afterwards (None: not due, or someone else has it)."""
    done = delivery.deliver(delivery_id)
    return done.status if done is not None else None


@shared_task(name="integrations.tasks.redeliver_webhook")
def redeliver_webhook(delivery_id: int) -> str | None:
    """A new attempt now, whatever the delivery's status (the admin's Redeliver), with the same webhook-id."""
    done = delivery.deliver(delivery_id, manual=True)
    return done.status if done is not None else None


@shared_task(name="integrations.tasks.deliver_due_webhooks")
def deliver_due_webhooks() -> int:
    """Every minute: queue each delivery whose (re)try is due; returns how many."""
    due = delivery.deliveries_due()
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return len(due)


@shared_task(name="integrations.tasks.notify_subscription_disabled")
def notify_subscription_disabled(subscription_id: int) -> int:
    """Tell the program team that a subscription was disabled (once: queued by the one change that disabled it)."""
    return delivery.disabled_notice_send(subscription_id)


@shared_task(name="integrations.tasks.tidy_idempotency_records")
def tidy_idempotency_records() -> int:
    """Hourly: forget the API's idempotent outcomes older than 24 hours (integrations.idempotency)."""
    return idempotency.tidy()
