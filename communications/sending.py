"""Sending what notify stored: `delivery_send` (the sending task's body) hands one queued e-mail or SMS to its
channel, holding an SMS in the member's quiet hours and retrying failures; `deliveries_due` is what the periodic
sweep sends; `delivery_resend` queues a failed message again from the program team's log."""

import logging
from datetime import datetime, time, timedelta
from email.utils import make_msgid
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from communications import sms
from communications.constants import (
    MARKETING_TOPICS,
    MAX_ATTEMPTS,
    QUIET_HOURS_END,
    QUIET_HOURS_START,
    RETRY_DELAYS_SECONDS,
    Channel,
    DeliveryStatus,
)
from communications.error_codes import ErrorCode
from communications.lock_objects import delivery_lock
from communications.models import Delivery
from loyalty.common.background import enqueue_on_commit
from loyalty.common.errors import ApplicationError
from loyalty.common.links import absolute_url, site_hostname
from partners.models import Member

logger = logging.getLogger(__name__)

SEND_TASK = "communications.tasks.send_delivery"


def enqueue_sending(delivery_ids: list[int]) -> None:
    """Queue the sending of these stored e-mail and SMS deliveries once the caller's transaction commits."""
    for delivery_id in delivery_ids:
        enqueue_on_commit(SEND_TASK, delivery_id)


def delivery_send(*, delivery_id: int) -> Delivery | None:
    """Send one queued e-mail or SMS (the task's body): a delivery that is not queued, or held until later, is left
    alone, so a repeated task sends nothing twice. A failure is tried again later (RETRY_DELAYS_SECONDS) and marked
    failed after MAX_ATTEMPTS; an SMS in the member's quiet hours is held until the morning."""
    with transaction.atomic():
        delivery = delivery_lock(delivery_id)
        now = timezone.now()
        if delivery is None or delivery.status != DeliveryStatus.QUEUED:
            return delivery
        if delivery.not_before is not None and delivery.not_before > now:
            return delivery
        if delivery.channel == Channel.SMS:
            morning = quiet_hours_end(now, _member_zone(delivery.member))
            if morning is not None:
                delivery.not_before = morning
                delivery.save(update_fields=["not_before", "updated_at"])
                return delivery
        delivery.attempts += 1
        try:
            delivery.provider_id = _send(delivery)
        except Exception as exc:  # a provider's or a network's failure: recorded and tried again
            logger.warning("Delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts, exc)
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
            hopeless = isinstance(exc, sms.SmsError) and not exc.retryable
            if hopeless or delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.FAILED
            else:
                delivery.not_before = now + timedelta(seconds=RETRY_DELAYS_SECONDS[delivery.attempts - 1])
        else:
            delivery.status, delivery.sent_at, delivery.last_error = DeliveryStatus.SENT, now, ""
        delivery.save(
            update_fields=["attempts", "provider_id", "last_error", "status", "sent_at", "not_before", "updated_at"]
        )
        return delivery


# A queued row nobody held and nobody sent within this time lost its task (a broker restart): the sweep sends it.
LOST_AFTER = timedelta(minutes=10)


def deliveries_due(limit: int = 1000) -> list[int]:
    """The queued e-mail and SMS whose hold (quiet hours, a retry's wait) is over, or whose task was lost."""
    now = timezone.now()
    return list(
        Delivery.objects.filter(status=DeliveryStatus.QUEUED)
        .filter(Q(not_before__lte=now) | Q(not_before__isnull=True, queued_at__lte=now - LOST_AFTER))
        .order_by("queued_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def _member_zone(member: Member) -> ZoneInfo:
    # Members carry no time zone yet: the program's (settings.TIME_ZONE) stands for everyone's.
    return ZoneInfo(settings.TIME_ZONE)


def quiet_hours_end(moment: datetime, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours around `moment` end in `zone` (08:00 of the same or the next day), or None if
    `moment` is outside them."""
    local = moment.astimezone(zone)
    if QUIET_HOURS_END <= local.hour < QUIET_HOURS_START:
        return None
    day = local.date() if local.hour < QUIET_HOURS_END else local.date() + timedelta(days=1)
    return datetime.combine(day, time(QUIET_HOURS_END), tzinfo=zone)


def _send(delivery: Delivery) -> str:
    """Hand the message to its channel; returns the provider's id of it."""
    if delivery.channel == Channel.SMS:
        return sms.send_sms(delivery.address, _sms_text(delivery))
    message = EmailMessage(
        subject=delivery.subject,
        body=delivery.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.address],
        headers=_headers(delivery),
    )
    message.send()
    # An anymail provider reports by its own id of the message; any other backend, by our Message-ID.
    status = getattr(message, "anymail_status", None)
    if status is not None and status.message_id is not None:
        return str(status.message_id)
    return message.extra_headers["Message-ID"]


def _sms_text(delivery: Delivery) -> str:
    """The text in at most two segments, the link kept whole at the end."""
    return sms.fit_sms(delivery.body, delivery.link)


UNSUBSCRIBE_SALT = "communications.unsubscribe"


def unsubscribe_token(delivery: Delivery) -> str:
    """A signed token naming the member and topic of `delivery`, for the one-click unsubscribe link."""
    return signing.dumps({"member": delivery.member_id, "topic": delivery.topic}, salt=UNSUBSCRIBE_SALT)


def _headers(delivery: Delivery) -> dict[str, str]:
    """Our own Message-ID (the provider's reports name it); a marketing e-mail can be unsubscribed from in one
    click (RFC 8058), through a signed link that needs no sign-in."""
    headers = {"Message-ID": make_msgid(domain=site_hostname())}
    if delivery.topic in MARKETING_TOPICS:
        headers["List-Unsubscribe"] = f"<{absolute_url(f'/messages/unsubscribe/{unsubscribe_token(delivery)}/')}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


RESENDABLE = (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED, DeliveryStatus.SUPPRESSED)


@transaction.atomic
def delivery_resend(*, delivery: Delivery) -> Delivery:
    """Queue a failed (or bounced, or suppressed) e-mail or SMS again, from the program team's log."""
    locked = delivery_lock(delivery.pk)
    if locked.channel == Channel.INBOX or locked.status not in RESENDABLE:
        raise ApplicationError(
            "Only failed, bounced or suppressed e-mail and SMS messages can be sent again.",
            code=ErrorCode.NOT_RESENDABLE,
        )
    locked.status, locked.attempts, locked.not_before, locked.last_error = DeliveryStatus.QUEUED, 0, None, ""
    locked.save(update_fields=["status", "attempts", "not_before", "last_error", "updated_at"])
    enqueue_on_commit(SEND_TASK, locked.pk)
    return locked
