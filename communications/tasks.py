from celery import shared_task

from communications import campaigns, nudges, sending


@shared_task(name="communications.tasks.send_delivery")
def send_delivery(delivery_id: int) -> None:
    """Send one queued e-mail or SMS; idempotent (a delivery that is not queued any more is left alone)."""
    sending.delivery_send(delivery_id=delivery_id)


@shared_task(name="communications.tasks.send_due_deliveries")
def send_due_deliveries() -> int:
    """Every few minutes: send what quiet hours or a retry's wait held, and what lost its task."""
    due = sending.deliveries_due()
    for delivery_id in due:
        sending.delivery_send(delivery_id=delivery_id)
    return len(due)


@shared_task(name="communications.tasks.send_scheduled_campaigns")
def send_scheduled_campaigns() -> int:
    """Every few minutes: send the scheduled campaigns whose time has come."""
    return campaigns.campaign_send_due()


@shared_task(name="communications.tasks.send_nudges")
def send_nudges() -> dict[str, int]:
    """Daily: remind the invited who have not joined, and nudge the members who have done nothing for a while."""
    return {"invited": nudges.remind_invited(), "inactive": nudges.nudge_inactive()}
