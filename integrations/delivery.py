"""Webhooks, the sending side: POST each delivery to its subscription's address, signed the Standard Webhooks way,
until it succeeds or its retries run out (docs/webhooks.md is what receivers read).

- A request carries `webhook-id` (the event's msg_… id, the same on every attempt and redelivery: receivers drop
  repeats by it), `webhook-timestamp` (this attempt's Unix seconds) and `webhook-signature` ("v1," and the base64
  HMAC-SHA256 of "id.timestamp.body" keyed with the secret's bytes, the base64 after "whsec_"); the body is
  {"type", "timestamp", "data"}, the same bytes on every attempt.
- Only http and https addresses, 10 seconds at most, no redirect followed; any 2xx is success. Anything else is
  tried again after RETRY_DELAYS (about 3 days in all), then given up; every attempt is logged (WebhookAttempt).
- An attempt claims its delivery first (a conditional UPDATE that moves its next attempt LEASE ahead), so two
  workers never send one delivery at once, no transaction stays open during the request, and a worker that dies
  mid-request leaves the delivery to the sweep once the lease is over.
- A subscription whose deliveries keep failing is disabled (FAILED_DELIVERIES_TO_DISABLE given up in a row, or one
  given up with nothing delivered to the address since it was first tried, RETRY_WINDOW before: 3 days of
  failure), and the program
  team hears of it once, by e-mail.
"""

import base64
import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid

from celery import current_app
from django.conf import settings
from django.core.mail import mailers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from communications.mail import Email
from integrations.constants import DeliveryStatus
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription
from integrations.webhooks import SECRET_PREFIX, forget_subscribed
from loyalty.common.background import enqueue_on_commit
from loyalty.common.errors import ApplicationError
from loyalty.common.links import absolute_url, site_hostname
from partners.constants import StaffRole
from partners.models import User

logger = logging.getLogger(__name__)

# After the n-th failed attempt the next one waits RETRY_DELAYS[n - 1]; after the last, the delivery is given up.
# 1 + 9 attempts over 71 h 35 min: "retried with exponential backoff for up to 3 days".
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
RETRY_WINDOW = sum(RETRY_DELAYS, timedelta())
TIMEOUT_SECONDS = 10
RESPONSE_CHARS = 2000
# An attempt holds its delivery this long (the request's timeout and then some): nobody else sends it meanwhile.
LEASE = timedelta(seconds=60)
# A subscription is disabled after this many deliveries given up in a row, or once one is given up with nothing
# delivered to the address since its first attempt, RETRY_WINDOW (about 3 days) before.
FAILED_DELIVERIES_TO_DISABLE = 5
# A retry this soon is queued with a countdown (when a broker runs the tasks); later ones wait for the sweep.
COUNTDOWN_UP_TO = timedelta(minutes=10)
DUE_PER_SWEEP = 1000

DELIVER_TASK = "integrations.tasks.deliver_webhook"
REDELIVER_TASK = "integrations.tasks.redeliver_webhook"
NOTIFY_TASK = "integrations.tasks.notify_subscription_disabled"
USER_AGENT = "PartnerLoyalty-Webhooks/1"
WAITING = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)


# Signing ------------------------------------------------------------------------------------------------------------


def body_of(event: WebhookEvent) -> bytes:
    """What every attempt of the event sends: its type, when it happened and its data, as compact JSON."""
    content = {"type": event.type, "timestamp": event.created_at.isoformat(), "data": event.payload}
    return json.dumps(content, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body", keyed with the bytes
    the secret's base64 (after "whsec_") stands for."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers_for(*, subscription: WebhookSubscription, event: WebhookEvent, body: bytes, timestamp: int) -> dict:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": event.public_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(subscription.secret, event.public_id, timestamp, body),
    }


# Sending ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one attempt got: the status (None: no answer), the start of the body, the error, how long it took."""

    status: int | None
    body: str = ""
    error: str = ""
    milliseconds: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the receiver's answer (a failure), never a second request to somewhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict) -> Answer:
    """POST `body` to `url` (http or https only) within TIMEOUT_SECONDS; never raises for what the network or the
    receiver does."""
    if not url.lower().startswith(("http://", "https://")):
        return Answer(None, error="Only http and https addresses are delivered to.")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.monotonic()
    status, text, error = None, "", ""
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status, text = response.status, _read(response)
    except urllib.error.HTTPError as exc:  # an answer all the same: 3xx, 4xx, 5xx
        status, text = exc.code, _read(exc)
        exc.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:  # refused, timed out, TLS, a broken answer
        reason = getattr(exc, "reason", None) or exc
        error = f"{type(exc).__name__}: {reason}"
    milliseconds = round((time.monotonic() - started) * 1000)
    return Answer(status, text, error[:300], milliseconds)


def _read(response) -> str:
    """The first RESPONSE_CHARS characters of the answer's body (at most four bytes each in UTF-8)."""
    try:
        raw = response.read(RESPONSE_CHARS * 4)
    except (OSError, http.client.HTTPException):
        return ""
    return raw.decode("utf-8", errors="replace")[:RESPONSE_CHARS]


def deliver(delivery_id: int, *, manual: bool = False) -> WebhookDelivery | None:
    """One attempt of a delivery, if it is due (`manual`: whatever its status, for a redelivery) and nobody else is
    attempting it; returns the delivery as it is after the attempt, None when nothing was attempted."""
    now = timezone.now()
    delivery = WebhookDelivery.objects.select_related("event", "subscription__client").filter(pk=delivery_id).first()
    if delivery is None or not _may_attempt(delivery, now, manual=manual):
        return None
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=delivery.status, next_attempt_at=delivery.next_attempt_at
    ).update(next_attempt_at=now + LEASE)
    if not claimed:  # another worker took it first
        return None
    body = body_of(delivery.event)
    headers = headers_for(
        subscription=delivery.subscription, event=delivery.event, body=body, timestamp=int(now.timestamp())
    )
    answer = post(delivery.subscription.url, body, headers)
    return _record(delivery, answer, timezone.now(), manual=manual)


def _may_attempt(delivery: WebhookDelivery, now: datetime, *, manual: bool) -> bool:
    subscription = delivery.subscription
    if not subscription.is_active or subscription.client.revoked_at is not None:
        return False
    if manual:
        return True
    return delivery.status in WAITING and delivery.next_attempt_at is not None and delivery.next_attempt_at <= now


@transaction.atomic
def _record(delivery: WebhookDelivery, answer: Answer, now: datetime, *, manual: bool) -> WebhookDelivery:
    """Log the attempt and move the delivery on: delivered, tried again later, or given up."""
    WebhookAttempt.objects.create(
        delivery=delivery,
        at=now,
        response_status=answer.status,
        response_body=answer.body,
        error=answer.error,
        milliseconds=answer.milliseconds,
    )
    before = delivery.status
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_status, delivery.response_body, delivery.error = answer.status, answer.body, answer.error
    gave_up = False
    if answer.ok:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, None
    elif before not in WAITING:  # a redelivery of a finished delivery that failed: it stays as it was
        delivery.next_attempt_at = None
    elif delivery.attempts < MAX_ATTEMPTS:
        delay = RETRY_DELAYS[delivery.attempts - 1]
        delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, now + delay
        _queue_retry(delivery.pk, delay)
    else:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        gave_up = True
    delivery.save(
        update_fields=[
            "status", "attempts", "next_attempt_at", "last_attempt_at", "response_status", "response_body", "error",
        ]
    )  # fmt: skip
    subscription = delivery.subscription
    if answer.ok and subscription.failures_in_a_row:
        WebhookSubscription.objects.filter(pk=subscription.pk).update(failures_in_a_row=0)
    elif gave_up:
        _given_up(delivery, now)
    if not answer.ok:
        logger.info("Webhook delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts,
                    answer.error or answer.status)  # fmt: skip
    return delivery


def _queue_retry(delivery_id: int, delay: timedelta) -> None:
    """A soon retry goes with a countdown when a broker runs the tasks (inline, it would run now and find the
    delivery not due); the periodic sweep sends every retry anyway."""
    if delay <= COUNTDOWN_UP_TO and not settings.CELERY_TASK_ALWAYS_EAGER:
        seconds = delay.total_seconds()
        transaction.on_commit(lambda: current_app.tasks[DELIVER_TASK].apply_async((delivery_id,), countdown=seconds))


def deliveries_due(limit: int = DUE_PER_SWEEP) -> list[int]:
    """The waiting deliveries of active subscriptions whose time has come (oldest first)."""
    return list(
        WebhookDelivery.objects.filter(
            status__in=WAITING,
            next_attempt_at__lte=timezone.now(),
            subscription__is_active=True,
            subscription__client__revoked_at__isnull=True,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def delivery_redeliver(*, delivery: WebhookDelivery) -> None:
    """Send a delivery again now, with the same webhook-id (a new attempt, whatever its status), once the caller's
    transaction commits."""
    subscription = delivery.subscription
    if subscription.client.revoked_at is not None:
        raise ApplicationError(
            f"Delivery {delivery.pk}: {subscription.client} is revoked, so nothing is sent to it.",
            code="client_revoked",
        )
    if not subscription.is_active:
        raise ApplicationError(
            f"Delivery {delivery.pk}: the subscription is disabled; enable it again first.",
            code="subscription_disabled",
        )
    enqueue_on_commit(REDELIVER_TASK, delivery.pk)


# Disabling ----------------------------------------------------------------------------------------------------------


def _given_up(delivery: WebhookDelivery, now: datetime) -> None:
    """A delivery was given up: count it, and disable the subscription when it keeps failing."""
    subscription_id = delivery.subscription_id
    WebhookSubscription.objects.filter(pk=subscription_id).update(failures_in_a_row=F("failures_in_a_row") + 1)
    failures = WebhookSubscription.objects.values_list("failures_in_a_row", flat=True).get(pk=subscription_id)
    if failures >= FAILED_DELIVERIES_TO_DISABLE:
        subscription_disable(
            subscription_id=subscription_id, reason=f"{failures} deliveries in a row failed after every retry."
        )
        return
    failing_since = delivery.created_at
    delivered_since = WebhookDelivery.objects.filter(
        subscription_id=subscription_id, status=DeliveryStatus.SUCCEEDED, last_attempt_at__gte=failing_since
    ).exists()
    if not delivered_since and now - failing_since >= RETRY_WINDOW:
        subscription_disable(
            subscription_id=subscription_id,
            reason=f"Nothing was delivered since {failing_since:%Y-%m-%d %H:%M} UTC: the address failed for 3 days.",
        )


def subscription_disable(*, subscription_id: int, reason: str) -> bool:
    """Stop delivering to a subscription and tell the program team, once: False when it was disabled already."""
    now = timezone.now()
    changed = WebhookSubscription.objects.filter(pk=subscription_id, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300], updated_at=now
    )
    if changed:
        forget_subscribed()
        enqueue_on_commit(NOTIFY_TASK, subscription_id)
    return bool(changed)


def disabled_notice_send(subscription_id: int) -> int:
    """E-mail the program managers that a subscription was disabled; returns how many were written to."""
    subscription = WebhookSubscription.objects.select_related("client__program").filter(pk=subscription_id).first()
    if subscription is None or subscription.is_active:
        return 0
    managers = User.objects.filter(is_active=True, is_staff=True).filter(
        Q(is_superuser=True) | Q(staff_role=StaffRole.PROGRAM_MANAGER)
    )
    addresses = sorted({email for email in managers.values_list("email", flat=True) if email})
    if not addresses:
        return 0
    client = subscription.client
    subject = _("Webhooks to %(client)s are disabled") % {"client": client.name}
    lines = [
        _("The webhook subscription of %(client)s (%(program)s) at %(url)s keeps failing, so it was disabled:")
        % {"client": client.name, "program": client.program.name, "url": subscription.url},
        subscription.disabled_reason,
        "",
        _("Nothing is sent to it until you enable it again; what failed stays in the delivery log:"),
        absolute_url(reverse("admin:integrations_webhooksubscription_change", args=[subscription.pk])),
    ]
    message_id_domain = site_hostname()
    letters = [
        Email(
            subject=subject,
            body="\n".join(lines),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            headers={"Message-ID": make_msgid(domain=message_id_domain)},
        )
        for address in addresses
    ]
    try:
        mailers.default.send_messages(letters)
    except OSError as exc:  # the mail server is down (SMTPException is an OSError): the admin's list still says it
        logger.warning("Telling the program team that subscription %s is disabled failed: %s", subscription_id, exc)
        return 0
    return len(letters)
