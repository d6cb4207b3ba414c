"""Sending what notify stored, in batches. `enqueue_sending` queues one task per CHUNK of stored deliveries;
`deliveries_send` (that task's body) sends a batch: the due rows locked (a row another worker holds is skipped),
suppressed addresses checked at send time, SMS held in the member's quiet hours, every e-mail over one connection of
the mailer, a failure retried later without stopping the others, every row written back in one statement.
`delivery_send` is the same for one delivery; `deliveries_send_due` is the periodic sweep; `delivery_resend` queues a
failed message again from the program team's log."""

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta
from email.utils import make_msgid
from itertools import batched
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.mail import mailers
from django.db import connection, transaction
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
from communications.delivery_links import tracked_link
from communications.error_codes import ErrorCode
from communications.lock_objects import deliveries_lock_due, delivery_lock
from communications.mail import Email
from communications.models import Delivery, Suppression, suppression_key
from loyalty.common.background import enqueue_on_commit
from loyalty.common.errors import ApplicationError
from loyalty.common.links import absolute_url, site_hostname
from partners.models import Member

logger = logging.getLogger(__name__)

SEND_TASK = "communications.tasks.send_deliveries"
# Deliveries per sending task: each batch takes one lock query, one mail connection and one UPDATE.
CHUNK = 500


def enqueue_sending(delivery_ids: list[int]) -> None:
    """Queue the sending of these stored e-mail and SMS deliveries, CHUNK to a task, once the caller's transaction
    commits."""
    for chunk in batched(delivery_ids, CHUNK):
        enqueue_on_commit(SEND_TASK, list(chunk))


def delivery_send(*, delivery_id: int) -> Delivery | None:
    """Send one queued e-mail or SMS as `deliveries_send` sends a batch; returns the row as it is now (None if it is
    gone)."""
    handled = deliveries_send([delivery_id])
    return handled[0] if handled else Delivery.objects.filter(pk=delivery_id).first()


def deliveries_send(delivery_ids: Iterable[int]) -> list[Delivery]:
    """Send the queued e-mail and SMS among `delivery_ids` that are due (the sending task's body); returns the rows it
    handled, as written back. A row that is not queued any more, is held until later or is being sent by another
    worker is left alone, so a repeated or concurrent task sends nothing twice. An address suppressed since the
    message was stored is not sent to (SUPPRESSED); an SMS in the member's quiet hours waits for the morning; a
    failure is tried again later (RETRY_DELAYS_SECONDS), marked failed after MAX_ATTEMPTS, and the others still go."""
    with transaction.atomic():
        now = timezone.now()
        deliveries = deliveries_lock_due(delivery_ids, now=now)
        if not deliveries:
            return []
        suppressed = _suppressed(deliveries)
        emails, texts = [], []
        for delivery in deliveries:
            if delivery.address and suppression_key(delivery.address) in suppressed:
                delivery.status = DeliveryStatus.SUPPRESSED
            elif delivery.channel == Channel.SMS:
                texts.append(delivery)
            else:
                emails.append(delivery)
        _send_texts(texts, now)
        _send_emails(emails, now)
        _write_back(deliveries, now)
    return deliveries


def _suppressed(deliveries: list[Delivery]) -> set[str]:
    """The addresses among the deliveries' that nothing may be sent to, as Suppression keeps them (suppression_key)."""
    addresses = {suppression_key(delivery.address) for delivery in deliveries if delivery.address}
    return set(Suppression.objects.filter(address__in=addresses).values_list("address", flat=True))


def _send_texts(deliveries: list[Delivery], now: datetime) -> None:
    if not deliveries:
        return
    members = Member.objects.select_related("partner__region").in_bulk({d.member_id for d in deliveries})
    for delivery in deliveries:
        delivery.member = members[delivery.member_id]
        morning = quiet_hours_end(now, _member_zone(delivery.member))
        if morning is not None:
            delivery.not_before = morning
        else:
            _attempt(delivery, now, _send_sms, delivery)


def _send_emails(deliveries: list[Delivery], now: datetime) -> None:
    """All the e-mails over one connection of the mailer; after a failure the next one gets a fresh connection, and
    when none can be had, every e-mail left waits for its retry."""
    mailer = mailers.default
    opened = False
    try:
        for index, delivery in enumerate(deliveries):
            if not opened:
                try:
                    mailer.open()
                except Exception as exc:  # the server is down or refuses us: recorded, tried again
                    for waiting in deliveries[index:]:
                        waiting.attempts += 1
                        _failed(waiting, exc, now)
                    return
                opened = True
            if not _attempt(delivery, now, _send_email, mailer, delivery):
                _close(mailer)
                opened = False
    finally:
        _close(mailer)


def _close(mailer) -> None:
    try:
        mailer.close()
    except Exception as exc:  # a broken connection cannot be closed politely; nothing is lost
        logger.info("Closing the mail connection failed: %s", exc)


def _attempt(delivery: Delivery, now: datetime, send: Callable[..., str], *args) -> bool:
    """Send `delivery` by `send(*args)` (which returns the provider's id of it) and record how it went; False if it
    failed."""
    delivery.attempts += 1
    try:
        delivery.provider_id = send(*args)
    except Exception as exc:  # a provider's or a network's failure: recorded and tried again
        _failed(delivery, exc, now)
        return False
    delivery.status, delivery.sent_at, delivery.last_error = DeliveryStatus.SENT, now, ""
    return True


def _failed(delivery: Delivery, exc: Exception, now: datetime) -> None:
    """Record a failed attempt: tried again after its delay, or failed for good after MAX_ATTEMPTS (at once when
    the provider refused the message for good)."""
    logger.warning("Delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts, exc)
    delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
    hopeless = isinstance(exc, sms.SmsError) and not exc.retryable
    if hopeless or delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.FAILED
    else:
        delivery.not_before = now + timedelta(seconds=RETRY_DELAYS_SECONDS[delivery.attempts - 1])


# What a batch writes back to each row it handled (`link_code`: the short link the message carries).
_WRITTEN = ("status", "attempts", "provider_id", "last_error", "sent_at", "not_before", "link_code")
_WRITTEN_TYPES = ("text", "smallint", "text", "text", "timestamptz", "timestamptz", "text")


def _write_back(deliveries: list[Delivery], now: datetime) -> None:
    """Every handled row's outcome in one UPDATE ... FROM unnest(...)."""
    arrays = [[delivery.pk for delivery in deliveries]]
    arrays += [[getattr(delivery, column) for delivery in deliveries] for column in _WRITTEN]
    unnest = ", ".join(f"%s::{kind}[]" for kind in ("bigint", *_WRITTEN_TYPES))
    columns = ", ".join(_WRITTEN)
    sql = (
        f"UPDATE {Delivery._meta.db_table} AS d SET {', '.join(f'{c} = r.{c}' for c in _WRITTEN)}, updated_at = %s "
        f"FROM unnest({unnest}) AS r(id, {columns}) WHERE d.id = r.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, *arrays])


def deliveries_send_due() -> int:
    """The periodic sweep: send, CHUNK at a time, what quiet hours or a retry's wait held and what lost its task;
    returns how many were due."""
    due = deliveries_due()
    for chunk in batched(due, CHUNK):
        deliveries_send(chunk)
    return len(due)


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
    return member.zone()


def quiet_hours_end(moment: datetime, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours around `moment` end in `zone` (08:00 of the same or the next day), or None if
    `moment` is outside them."""
    local = moment.astimezone(zone)
    if QUIET_HOURS_END <= local.hour < QUIET_HOURS_START:
        return None
    day = local.date() if local.hour < QUIET_HOURS_END else local.date() + timedelta(days=1)
    return datetime.combine(day, time(QUIET_HOURS_END), tzinfo=zone)


def _send_sms(delivery: Delivery) -> str:
    return sms.send_sms(delivery.address, _sms_text(delivery))


def _send_email(mailer, delivery: Delivery) -> str:
    """Hand the e-mail to the open `mailer`; returns the provider's id of it. Its link is the short one."""
    body = delivery.body.replace(delivery.link, tracked_link(delivery)) if delivery.link else delivery.body
    message = Email(
        subject=delivery.subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.address],
        headers=_headers(delivery),
    )
    if mailer.send_messages([message]) != 1:
        raise NotSent(f"The mailer sent nothing to {delivery.address!r}.")
    # An anymail provider reports by its own id of the message; any other backend, by our Message-ID.
    status = getattr(message, "anymail_status", None)
    if status is not None and status.message_id is not None:
        return str(status.message_id)
    return message.extra_headers["Message-ID"]


class NotSent(Exception):
    """The mailer took the message without an error but sent nothing (no address it could use)."""


def _sms_text(delivery: Delivery) -> str:
    """The text in at most two segments, ending in the message's short link (kept whole) in place of its long one."""
    return sms.fit_sms(delivery.body.replace(delivery.link, ""), tracked_link(delivery))


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
    enqueue_sending([locked.pk])
    return locked
