"""What the e-mail provider tells us after a send: django-anymail turns each provider's webhook (at /anymail/<esp>/
tracking/, signed with ANYMAIL["WEBHOOK_SECRET"]) into one tracking signal, and `delivery_track` applies it to the
delivery it names (Delivery.provider_id): status and timestamps, and a hard bounce or a complaint suppresses the
address. A report naming no delivery of ours is logged and dropped (the provider would only send it again); a bad
signature never reaches us (anymail answers 400)."""

import logging
from datetime import datetime

from anymail.signals import EventType, RejectReason
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Lower
from django.utils import timezone

from communications.constants import Channel, DeliveryStatus, SuppressionReason
from communications.lock_objects import delivery_lock
from communications.models import Delivery, Suppression

logger = logging.getLogger(__name__)

# A delivery only moves forward: reports may arrive out of order (an "opened" before its "delivered").
_PROGRESS = [DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.OPENED, DeliveryStatus.CLICKED]
_STATUS_OF = {
    EventType.DELIVERED: DeliveryStatus.DELIVERED,
    EventType.OPENED: DeliveryStatus.OPENED,
    EventType.CLICKED: DeliveryStatus.CLICKED,
    EventType.BOUNCED: DeliveryStatus.BOUNCED,
    EventType.REJECTED: DeliveryStatus.FAILED,
}
_TIMESTAMP_OF = {
    EventType.DELIVERED: "delivered_at",
    EventType.OPENED: "opened_at",
    EventType.CLICKED: "clicked_at",
}
# A provider rejects an address it knows to be dead (it bounced, or its owner complained, before): that is final too.
_REJECTED_FOR = {RejectReason.BOUNCED: SuppressionReason.BOUNCED, RejectReason.SPAM: SuppressionReason.COMPLAINED}


def tracking_received(sender, event, esp_name, **kwargs) -> None:
    """anymail's `tracking` signal handler (connected in CommunicationsConfig.ready)."""
    delivery_track(
        message_id=event.message_id or "",
        event_type=event.event_type,
        reject_reason=event.reject_reason,
        at=event.timestamp,
        description=event.description or event.mta_response or "",
        esp_name=esp_name,
    )


def delivery_track(
    *,
    message_id: str,
    event_type: str,
    reject_reason: str | None = None,
    at: datetime | None = None,
    description: str = "",
    esp_name: str = "",
) -> Delivery | None:
    """Apply one provider report to the e-mail delivery whose provider id is `message_id`; returns it, or None when
    no delivery of ours has that id (logged)."""
    at = at or timezone.now()
    with transaction.atomic():
        delivery_id = _delivery_id(message_id)
        if delivery_id is None:
            logger.warning("%s %s report for an unknown message %r: ignored", esp_name, event_type, message_id)
            return None
        delivery = delivery_lock(delivery_id)
        changed = _advance(delivery, event_type, at, description)
        if changed:
            delivery.save(update_fields=[*changed, "updated_at"])
        suppression = _suppression_reason(event_type, reject_reason)
        if suppression and delivery.address:
            Suppression.objects.get_or_create(
                address=delivery.address.strip().lower(), defaults={"reason": suppression}
            )
        return delivery


def _delivery_id(message_id: str) -> int | None:
    """Our e-mail delivery with this provider id; providers that report our own Message-ID may drop its <>."""
    message_id = message_id.strip()
    if not message_id:
        return None
    candidates = {message_id, f"<{message_id.strip('<>')}>", message_id.strip("<>")}
    return (
        Delivery.objects.filter(channel=Channel.EMAIL, provider_id__in=candidates)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )


def _advance(delivery: Delivery, event_type: str, at: datetime, description: str) -> list[str]:
    """Set the report's timestamp (the first one counts) and move the status forward; returns the changed fields."""
    changed = []
    stamp = _TIMESTAMP_OF.get(event_type)
    if stamp and getattr(delivery, stamp) is None:
        setattr(delivery, stamp, at)
        changed.append(stamp)
    status = _STATUS_OF.get(event_type)
    if status in _PROGRESS:
        moves = delivery.status in _PROGRESS and _PROGRESS.index(status) > _PROGRESS.index(delivery.status)
    else:
        moves = status is not None and delivery.status in _PROGRESS
    if moves:
        delivery.status = status
        changed.append("status")
        if status in (DeliveryStatus.BOUNCED, DeliveryStatus.FAILED):
            delivery.last_error = f"{event_type}: {description}"[:500]
            changed.append("last_error")
    return changed


def delivery_clicked(delivery: Delivery, at: datetime) -> list[str]:
    """A click on the message's own short link (communications/delivery_links.py), applied as a provider's click
    report is; returns the changed fields for the caller, who holds the row's lock, to save."""
    return _advance(delivery, EventType.CLICKED, at, "")


def _suppression_reason(event_type: str, reject_reason: str | None) -> str | None:
    if event_type == EventType.BOUNCED:
        return SuppressionReason.BOUNCED
    if event_type == EventType.COMPLAINED:
        return SuppressionReason.COMPLAINED
    if event_type == EventType.REJECTED:
        return _REJECTED_FOR.get(reject_reason)
    return None


def email_unreachable():
    """For partners.hooks.provides_email_unreachable: the user's address is suppressed (addresses are lower-case)."""
    return Exists(Suppression.objects.filter(address=Lower(OuterRef("email"))))
