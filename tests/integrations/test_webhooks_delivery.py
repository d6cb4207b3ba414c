"""Sending webhooks (integrations.delivery): the Standard Webhooks signature checked by an implementation of our
own, the retry schedule, what an attempt logs, disabling a failing subscription with one notice, redelivery and the
periodic sweep. The receiver is a real HTTP server on 127.0.0.1 in a thread."""

import base64
import hashlib
import hmac
import json
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from integrations import delivery, webhooks
from integrations.constants import DeliveryStatus
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from integrations.tasks import deliver_due_webhooks
from loyalty.common.errors import ApplicationError
from tests.integrations.factories import ApiClientFactory, WebhookSubscriptionFactory
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import AccountManagerFactory, ProgramManagerFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


# A receiver and a clock ---------------------------------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers from `answers` (status, body, seconds to
    wait first), then 200 "ok"."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, str, float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.requests.append({"path": self.path, "headers": headers, "body": body})
                status, text, wait = receiver.answers.pop(0) if receiver.answers else (200, "ok", 0)
                time.sleep(wait)
                data = text.encode()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks"

    def answer(self, status: int, text: str = "", wait: float = 0) -> None:
        self.answers.append((status, text, wait))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


class Clock:
    def __init__(self, monkeypatch):
        self.now = START
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def travel_to(self, moment: datetime) -> None:
        self.now = moment


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def verify_standard_webhook(secret: str, headers: dict, body: bytes, *, now: int, tolerance: int = 300) -> dict:
    """The receiver's side, written from the Standard Webhooks specification (not from our code): the signed content
    is "id.timestamp.body", the key the base64-decoded part of the secret after "whsec_", the header a space-separated
    list of "v1,<base64 HMAC-SHA256>"; too old or too new a timestamp is refused."""
    headers = {name.lower(): value for name, value in headers.items()}
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now - int(timestamp)) > tolerance:
        raise ValueError("timestamp outside the tolerance")
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = hmac.new(key, f"{msg_id}.{timestamp}.{body.decode()}".encode(), hashlib.sha256).digest()
    for part in headers["webhook-signature"].split(" "):
        version, _, value = part.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(value), expected):
            return json.loads(body)
    raise ValueError("no valid signature")


def webhook(url: str, *, event_type="points.earned", data=None, **subscription_fields):
    """A subscription at `url` (then given `subscription_fields`) and one pending delivery of an event to it:
    (subscription, delivery)."""
    subscription = WebhookSubscriptionFactory(url=url, event_types=[event_type])
    event = webhooks.event_record(
        event_type=event_type, program_id=subscription.client.program_id, data=data or {"points": 40}
    )
    if subscription_fields:
        WebhookSubscription.objects.filter(pk=subscription.pk).update(**subscription_fields)
        subscription.refresh_from_db()
    return subscription, event.deliveries.get()


def refreshed(row):
    row.refresh_from_db()
    return row


# Signing ------------------------------------------------------------------------------------------------------------


def test_the_signature_matches_the_standard_webhooks_test_vector():
    body = b'{"test": 2432232314}'

    signed = delivery.signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body
    )

    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_delivery_is_posted_signed_and_a_2xx_makes_it_delivered(receiver, clock):
    receiver.answer(204)
    subscription, pending = webhook(receiver.url, data={"account_id": 7, "points": 40})

    done = delivery.deliver(pending.pk)

    [request] = receiver.requests
    payload = verify_standard_webhook(
        subscription.secret, request["headers"], request["body"], now=int(START.timestamp())
    )
    assert payload == {"type": "points.earned", "timestamp": START.isoformat(), "data": {"account_id": 7, "points": 40}}
    assert request["headers"]["webhook-id"] == pending.event.public_id
    assert request["headers"]["webhook-timestamp"] == str(int(START.timestamp()))
    assert request["headers"]["content-type"] == "application/json"
    assert (done.status, done.attempts, done.response_status, done.next_attempt_at) == (
        DeliveryStatus.SUCCEEDED, 1, 204, None,
    )  # fmt: skip
    [attempt] = WebhookAttempt.objects.filter(delivery=pending)
    assert (attempt.at, attempt.response_status, attempt.error) == (START, 204, "")
    assert attempt.milliseconds >= 0


def test_a_receiver_rejects_a_tampered_body_and_an_old_timestamp(receiver, clock):
    subscription, pending = webhook(receiver.url)
    delivery.deliver(pending.pk)
    [request] = receiver.requests
    now = int(START.timestamp())

    with pytest.raises(ValueError, match="no valid signature"):
        verify_standard_webhook(subscription.secret, request["headers"], request["body"].replace(b"40", b"41"), now=now)
    with pytest.raises(ValueError, match="no valid signature"):
        verify_standard_webhook(webhooks.new_secret(), request["headers"], request["body"], now=now)
    with pytest.raises(ValueError, match="tolerance"):
        verify_standard_webhook(subscription.secret, request["headers"], request["body"], now=now + 301)


def test_the_docs_verification_example_accepts_a_delivery_and_refuses_a_forgery_and_an_old_one(receiver, clock):
    example = {}
    exec(
        re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1), example
    )  # the example as docs/webhooks.md shows it
    subscription, pending = webhook(receiver.url, data={"points": 40})
    delivery.deliver(pending.pk)
    [request] = receiver.requests
    headers, body, now = request["headers"], request["body"], START.timestamp()

    assert example["verify"](subscription.secret, headers, body, now=now)["data"] == {"points": 40}
    with pytest.raises(example["InvalidWebhook"], match="No valid signature"):
        example["verify"](subscription.secret, headers, body.replace(b"40", b"4000"), now=now)
    with pytest.raises(example["InvalidWebhook"], match="No valid signature"):
        example["verify"](subscription.secret, {**headers, "webhook-timestamp": str(int(now) - 1)}, body, now=now)
    with pytest.raises(example["InvalidWebhook"], match="too old"):
        example["verify"](subscription.secret, headers, body, now=now + 5 * 60 + 1)


# Retries ------------------------------------------------------------------------------------------------------------


def test_a_failing_delivery_is_retried_on_the_schedule_then_given_up(receiver, clock):
    for _ in range(delivery.MAX_ATTEMPTS):
        receiver.answer(503, "busy")
    _subscription, pending = webhook(receiver.url)
    waits = []

    for _ in range(delivery.MAX_ATTEMPTS):
        assert delivery.deliver(pending.pk) is not None
        row = refreshed(pending)
        if row.next_attempt_at is not None:
            waits.append(row.next_attempt_at - clock.now)
            assert delivery.deliver(pending.pk) is None  # not due yet: nothing is sent
            clock.travel_to(row.next_attempt_at)

    row = refreshed(pending)
    assert waits == list(delivery.RETRY_DELAYS)
    assert timedelta(days=3) >= delivery.RETRY_WINDOW
    assert (row.status, row.attempts, row.next_attempt_at, row.response_status) == (
        DeliveryStatus.FAILED, delivery.MAX_ATTEMPTS, None, 503,
    )  # fmt: skip
    assert len(receiver.requests) == delivery.MAX_ATTEMPTS
    assert len({request["headers"]["webhook-id"] for request in receiver.requests}) == 1
    assert WebhookAttempt.objects.filter(delivery=pending, response_status=503).count() == delivery.MAX_ATTEMPTS
    assert delivery.deliver(pending.pk) is None  # given up: the sweep never sends it again


def test_a_retry_that_succeeds_ends_the_retries(receiver, clock):
    receiver.answer(500, "oops")
    _subscription, pending = webhook(receiver.url)

    delivery.deliver(pending.pk)
    clock.travel_to(START + delivery.RETRY_DELAYS[0])
    delivery.deliver(pending.pk)

    row = refreshed(pending)
    assert (row.status, row.attempts, row.response_status) == (DeliveryStatus.SUCCEEDED, 2, 200)
    assert list(row.attempt_log.values_list("response_status", flat=True)) == [200, 500]  # the latest first


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [
        ((302, "moved", 0), "", 302),  # a redirect is not followed: it is the answer
        ((404, "no such hook", 0), "", 404),
    ],
)
def test_any_answer_but_a_2xx_is_a_failure_and_is_logged(receiver, clock, answer, error, status):
    receiver.answer(*answer)
    _subscription, pending = webhook(receiver.url)

    delivery.deliver(pending.pk)

    row = refreshed(pending)
    assert (row.status, row.response_status, row.response_body, row.error) == (
        DeliveryStatus.RETRYING, status, answer[1], error,
    )  # fmt: skip
    assert [request["path"] for request in receiver.requests] == ["/hooks"]


def test_a_slow_receiver_times_out_and_is_tried_again(receiver, clock, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.2)
    receiver.answer(200, "late", wait=1)
    _subscription, pending = webhook(receiver.url)

    delivery.deliver(pending.pk)

    row = refreshed(pending)
    assert (row.status, row.response_status) == (DeliveryStatus.RETRYING, None)
    assert "timed out" in row.error


def test_an_address_nobody_listens_on_is_an_error_and_tried_again(clock):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _subscription, pending = webhook(f"http://127.0.0.1:{port}/hooks")

    delivery.deliver(pending.pk)

    row = refreshed(pending)
    assert (row.status, row.attempts, row.response_status) == (DeliveryStatus.RETRYING, 1, None)
    assert "refused" in row.error.lower()


def test_only_http_and_https_addresses_are_delivered_to(receiver, clock):
    _subscription, pending = webhook("ftp://127.0.0.1/hooks")

    delivery.deliver(pending.pk)

    row = refreshed(pending)
    assert (row.status, row.error) == (DeliveryStatus.RETRYING, "Only http and https addresses are delivered to.")


def test_the_log_keeps_the_first_2000_characters_of_an_answer(receiver, clock):
    receiver.answer(500, "é" * 5000)
    _subscription, pending = webhook(receiver.url)

    delivery.deliver(pending.pk)

    row = refreshed(pending)
    assert row.response_body == "é" * 2000
    assert row.attempt_log.get().response_body == "é" * 2000


def test_nothing_is_sent_to_a_disabled_subscription_or_a_revoked_client(receiver, clock):
    disabled, first = webhook(receiver.url, is_active=False)
    revoked, second = webhook(receiver.url)
    revoked.client.revoked_at = START
    revoked.client.save()

    assert (delivery.deliver(first.pk), delivery.deliver(second.pk)) == (None, None)
    assert delivery.deliveries_due() == []
    assert receiver.requests == []


# Disabling ----------------------------------------------------------------------------------------------------------


def give_up_next(pending: WebhookDelivery, *, created_at: datetime) -> None:
    """Make the next attempt of `pending` its last."""
    WebhookDelivery.objects.filter(pk=pending.pk).update(
        status=DeliveryStatus.RETRYING, attempts=delivery.MAX_ATTEMPTS - 1, next_attempt_at=START, created_at=created_at
    )


def test_a_subscription_failing_for_3_days_is_disabled_and_the_program_team_told_once(
    receiver, clock, mailoutbox, django_capture_on_commit_callbacks
):
    receiver.answer(500)
    subscription, pending = webhook(receiver.url)
    managers = [subscription.client.created_by, ProgramManagerFactory(), ProgramManagerFactory(is_superuser=False)]
    AccountManagerFactory(is_staff=True)  # not a program manager: not told
    ProgramManagerFactory(is_active=False)  # gone: not told
    give_up_next(pending, created_at=START - delivery.RETRY_WINDOW)

    with django_capture_on_commit_callbacks(execute=True):
        delivery.deliver(pending.pk)

    row = refreshed(subscription)
    assert (row.is_active, row.disabled_at, row.failures_in_a_row) == (False, START, 1)
    assert row.disabled_reason.startswith("Nothing was delivered since 2026-12-04")
    assert sorted(message.to[0] for message in mailoutbox) == sorted(manager.email for manager in managers)
    assert subscription.client.name in mailoutbox[0].subject
    assert receiver.url in mailoutbox[0].body and f"/{subscription.pk}/change/" in mailoutbox[0].body

    with django_capture_on_commit_callbacks(execute=True) as again:
        assert delivery.subscription_disable(subscription_id=subscription.pk, reason="again") is False
    assert (again, len(mailoutbox)) == ([], 3)
    assert refreshed(subscription).disabled_reason.startswith("Nothing was delivered")


def test_a_given_up_delivery_does_not_disable_a_subscription_that_delivered_since(receiver, clock, mailoutbox):
    receiver.answer(500)
    subscription, pending = webhook(receiver.url)
    give_up_next(pending, created_at=START - delivery.RETRY_WINDOW)
    delivered = webhooks.event_record(event_type="points.earned", program_id=subscription.client.program_id, data={})
    WebhookDelivery.objects.filter(event=delivered).update(
        status=DeliveryStatus.SUCCEEDED, last_attempt_at=START - timedelta(hours=1)
    )

    delivery.deliver(pending.pk)

    row = refreshed(subscription)
    assert (row.is_active, row.failures_in_a_row, refreshed(pending).status) == (True, 1, DeliveryStatus.FAILED)
    assert mailoutbox == []


def test_n_deliveries_given_up_in_a_row_disable_the_subscription(receiver, clock):
    receiver.answer(500)
    subscription, pending = webhook(receiver.url)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        failures_in_a_row=delivery.FAILED_DELIVERIES_TO_DISABLE - 1
    )
    give_up_next(pending, created_at=START - timedelta(hours=1))  # not 3 days of failure: the count decides

    delivery.deliver(pending.pk)

    row = refreshed(subscription)
    assert (row.is_active, row.failures_in_a_row) == (False, delivery.FAILED_DELIVERIES_TO_DISABLE)
    assert row.disabled_reason == "5 deliveries in a row failed after every retry."


def test_a_success_resets_the_failures_in_a_row(receiver, clock):
    subscription, pending = webhook(receiver.url)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(failures_in_a_row=3)

    delivery.deliver(pending.pk)

    assert refreshed(subscription).failures_in_a_row == 0


def test_enabling_again_forgets_the_failures_and_sends_what_waits_at_once(receiver, clock):
    receiver.answer(500)
    subscription, pending = webhook(receiver.url)
    delivery.deliver(pending.pk)  # retrying, 5 s from now
    delivery.subscription_disable(subscription_id=subscription.pk, reason="test")
    WebhookSubscription.objects.filter(pk=subscription.pk).update(failures_in_a_row=4)

    webhooks.subscription_enable(subscription=refreshed(subscription))

    row = refreshed(subscription)
    assert (row.is_active, row.disabled_at, row.disabled_reason, row.failures_in_a_row) == (True, None, "", 0)
    assert delivery.deliveries_due() == [pending.pk]
    assert delivery.deliver(pending.pk).status == DeliveryStatus.SUCCEEDED


def test_a_revoked_clients_subscription_cannot_be_enabled(receiver):
    subscription, _pending = webhook(receiver.url, is_active=False)
    subscription.client.revoked_at = START
    subscription.client.save()

    with pytest.raises(ApplicationError, match="is revoked"):
        webhooks.subscription_enable(subscription=subscription)
    assert refreshed(subscription).is_active is False


# Redelivery, the sweep, after commit ------------------------------------------------------------------------------


def test_a_redelivery_is_a_new_attempt_now_with_the_same_webhook_id(
    receiver, clock, django_capture_on_commit_callbacks
):
    subscription, pending = webhook(receiver.url)
    delivery.deliver(pending.pk)
    clock.travel_to(START + timedelta(hours=2))

    with django_capture_on_commit_callbacks(execute=True):
        delivery.delivery_redeliver(delivery=refreshed(pending))

    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == pending.event.public_id
    assert first["body"] == second["body"]
    assert second["headers"]["webhook-timestamp"] == str(int((START + timedelta(hours=2)).timestamp()))
    verify_standard_webhook(subscription.secret, second["headers"], second["body"], now=int(clock.now.timestamp()))
    row = refreshed(pending)
    assert (row.status, row.attempts, row.last_attempt_at) == (DeliveryStatus.SUCCEEDED, 2, clock.now)


@pytest.mark.parametrize(("answer", "status"), [(200, DeliveryStatus.SUCCEEDED), (500, DeliveryStatus.FAILED)])
def test_redelivering_a_given_up_delivery_delivers_it_or_leaves_it_given_up(
    receiver, clock, django_capture_on_commit_callbacks, answer, status
):
    receiver.answer(answer)
    subscription, pending = webhook(receiver.url)
    WebhookDelivery.objects.filter(pk=pending.pk).update(
        status=DeliveryStatus.FAILED, attempts=10, next_attempt_at=None
    )

    with django_capture_on_commit_callbacks(execute=True):
        delivery.delivery_redeliver(delivery=refreshed(pending))

    row = refreshed(pending)
    assert (row.status, row.attempts, row.next_attempt_at, row.response_status) == (status, 11, None, answer)
    assert refreshed(subscription).failures_in_a_row == 0  # a redelivery is not another delivery given up


def test_a_disabled_subscription_is_not_redelivered_to(receiver):
    _subscription, pending = webhook(receiver.url, is_active=False)

    with pytest.raises(ApplicationError, match="enable it again first"):
        delivery.delivery_redeliver(delivery=pending)


def test_the_sweep_sends_what_is_due_and_only_that(receiver, clock):
    _subscription, due = webhook(receiver.url)
    _later, later = webhook(receiver.url)
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=START + timedelta(minutes=5))
    _done, done = webhook(receiver.url)
    WebhookDelivery.objects.filter(pk=done.pk).update(status=DeliveryStatus.SUCCEEDED, next_attempt_at=None)

    assert deliver_due_webhooks() == 1

    assert [request["headers"]["webhook-id"] for request in receiver.requests] == [due.event.public_id]
    assert refreshed(due).status == DeliveryStatus.SUCCEEDED


def test_a_published_event_is_delivered_once_the_transaction_commits(receiver, django_capture_on_commit_callbacks):
    subscription = WebhookSubscriptionFactory(url=receiver.url, client=ApiClientFactory(program=ProgramFactory()))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = webhooks.event_record(event_type="points.earned", program_id=subscription.client.program_id, data={})
    assert receiver.requests == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()

    assert [request["headers"]["webhook-id"] for request in receiver.requests] == [event.public_id]
    assert event.deliveries.get().status == DeliveryStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_one_delivery_at_once_send_it_once(receiver):
    _subscription, pending = webhook(receiver.url)  # sent at once: without a transaction, "after commit" is now
    WebhookDelivery.objects.filter(pk=pending.pk).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
    WebhookAttempt.objects.all().delete()
    receiver.requests.clear()
    receiver.answer(200, "slow", wait=0.5)
    results, start = [], threading.Barrier(2)

    def worker():
        try:
            start.wait(5)
            results.append(delivery.deliver(pending.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(receiver.requests) == 1
    assert sorted(result is None for result in results) == [False, True]
    assert (refreshed(pending).attempts, WebhookAttempt.objects.count()) == (1, 1)
