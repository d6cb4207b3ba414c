from celery import shared_task

from communications import campaigns, nudges, sending


@shared_task(name="communications.tasks.send_deliveries")
def send_deliveries(delivery_ids: list[int]) -> int:
    """Send a batch of queued e-mail and SMS (enqueue_sending queues one per chunk); idempotent (what is not queued
    any more, or is being sent by another worker, is left alone). Returns how many rows it handled."""
    return len(sending.deliveries_send(delivery_ids))


@shared_task(name="communications.tasks.send_delivery")
def send_delivery(delivery_id: int) -> None:
    """Send one queued e-mail or SMS: the task of before the batches, kept for the messages a broker may still
    hold."""
    sending.deliveries_send([delivery_id])


@shared_task(name="communications.tasks.send_due_deliveries")
def send_due_deliveries() -> int:
    """Every few minutes: send what quiet hours or a retry's wait held, and what lost its task."""
    return sending.deliveries_send_due()


@shared_task(name="communications.tasks.send_scheduled_campaigns")
def send_scheduled_campaigns() -> int:
    """Every few minutes: send the scheduled campaigns whose time has come."""
    return campaigns.campaign_send_due()


@shared_task(name="communications.tasks.send_nudges")
def send_nudges() -> dict[str, int]:
    """Daily: remind the invited who have not joined, and nudge the members who have done nothing for a while."""
    return {"invited": nudges.remind_invited(), "inactive": nudges.nudge_inactive()}
