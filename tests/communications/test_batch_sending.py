"""Batch sending: one task per chunk of stored messages, each message sent once over one connection, rows another
worker holds skipped, suppression checked at send time, a failure retried on its own, one UPDATE for the batch."""

import email.policy
import re
import smtplib
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery import current_app
from django.core import mail
from django.core.mail.backends import locmem
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

from communications import sending, sms
from communications.constants import Channel, DeliveryStatus, Kind
from communications.lock_objects import delivery_lock
from communications.models import Delivery
from communications.sending import SEND_TASK, deliveries_send, enqueue_sending
from communications.tasks import send_deliveries, send_due_deliveries
from tests.communications.factories import DeliveryFactory, SuppressionFactory
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.usefixtures("messages_out")
BERLIN = ZoneInfo("Europe/Berlin")
NOON = datetime(2026, 12, 7, 12, tzinfo=BERLIN)


class CountingBackend(locmem.EmailBackend):
    """The test outbox, counting the connections opened and refusing the addresses in `refused`."""

    opened = 0
    refused: set[str] = set()
    down = False

    def open(self):
        if CountingBackend.down:
            raise ConnectionRefusedError("Connection refused")
        CountingBackend.opened += 1
        return True

    def send_messages(self, messages):
        for message in messages:
            if set(message.to) & CountingBackend.refused:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"No such user")})
        return super().send_messages(messages)


@pytest.fixture
def mailer():
    CountingBackend.opened, CountingBackend.refused, CountingBackend.down = 0, set(), False
    backend = f"{__name__}.CountingBackend"
    with override_settings(MAILERS={"default": {"BACKEND": backend}}):
        yield CountingBackend


@pytest.fixture
def clock(monkeypatch, settings):
    """timezone.now() answers `clock.now` (noon in Berlin, the program's time zone, unless a test moves it)."""
    settings.TIME_ZONE = "Europe/Berlin"

    class Clock:
        now = NOON

    monkeypatch.setattr(timezone, "now", lambda: Clock.now)
    return Clock


def sms_delivery(**kwargs):
    return DeliveryFactory(channel=Channel.SMS, member=MemberFactory(phone="+49 151 2345678"), body="Hi", **kwargs)


def statuses(*deliveries):
    return [Delivery.objects.get(pk=d.pk).status for d in deliveries]


def test_stored_messages_are_queued_one_task_per_chunk(monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(sending, "CHUNK", 2)
    queued = []
    monkeypatch.setattr(current_app.tasks[SEND_TASK], "delay", queued.append)

    with django_capture_on_commit_callbacks(execute=True):
        enqueue_sending([11, 12, 13, 14, 15])

    assert queued == [[11, 12], [13, 14], [15]]


def test_a_batch_sends_each_message_once_over_one_connection(mailer, clock):
    deliveries = DeliveryFactory.create_batch(3)

    assert send_deliveries([d.pk for d in deliveries]) == 3

    assert sorted(m.to[0] for m in mail.outbox) == sorted(d.address for d in deliveries)
    assert mailer.opened == 1
    for delivery in deliveries:
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.sent_at) == (DeliveryStatus.SENT, 1, NOON)
        assert delivery.provider_id.startswith("<")  # our Message-ID


def test_a_repeated_batch_sends_nothing_twice(mailer):
    deliveries = DeliveryFactory.create_batch(2)
    ids = [d.pk for d in deliveries]

    send_deliveries(ids)
    assert send_deliveries(ids) == 0

    assert len(mail.outbox) == 2
    assert mailer.opened == 1  # the second batch had nothing to send and opened nothing


@pytest.mark.django_db(transaction=True)
def test_a_row_another_worker_is_sending_is_skipped_and_left_to_it(mailer):
    held, free = DeliveryFactory(), DeliveryFactory()
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        try:
            with transaction.atomic():
                delivery_lock(held.pk)
                locked.set()
                release.wait(timeout=5)  # a batch that waited for the lock would get it after this and fail the test
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert locked.wait(timeout=30)
    try:
        handled = deliveries_send([held.pk, free.pk])
    finally:
        release.set()
        thread.join()

    assert [d.pk for d in handled] == [free.pk]
    assert [m.to for m in mail.outbox] == [[free.address]]
    held.refresh_from_db()
    assert (held.status, held.attempts) == (DeliveryStatus.QUEUED, 0)

    deliveries_send([held.pk, free.pk])  # once the other worker let go without sending it
    assert [m.to for m in mail.outbox] == [[free.address], [held.address]]


def test_an_address_suppressed_after_the_message_was_queued_is_not_sent(mailer):
    bounced, fine = DeliveryFactory(), DeliveryFactory()
    SuppressionFactory(address=bounced.address.upper())  # stored lower-case

    send_deliveries([bounced.pk, fine.pk])

    assert [m.to for m in mail.outbox] == [[fine.address]]
    bounced.refresh_from_db()
    assert (bounced.status, bounced.attempts, bounced.sent_at) == (DeliveryStatus.SUPPRESSED, 0, None)
    assert statuses(fine) == [DeliveryStatus.SENT]


def test_a_suppressed_phone_number_gets_no_sms(mailer, clock):
    text = sms_delivery()
    SuppressionFactory(address=text.address)

    send_deliveries([text.pk])

    assert (statuses(text), sms.outbox) == ([DeliveryStatus.SUPPRESSED], [])


def test_one_failing_message_does_not_stop_the_others_and_is_tried_again_later(mailer, clock):
    first, refused, last = DeliveryFactory.create_batch(3)
    mailer.refused = {refused.address}

    send_deliveries([first.pk, refused.pk, last.pk])

    assert sorted(m.to[0] for m in mail.outbox) == sorted([first.address, last.address])
    assert statuses(first, refused, last) == [DeliveryStatus.SENT, DeliveryStatus.QUEUED, DeliveryStatus.SENT]
    refused.refresh_from_db()
    assert (refused.attempts, refused.not_before) == (1, NOON + timedelta(minutes=1))
    assert refused.last_error.startswith("SMTPRecipientsRefused: ")
    assert mailer.opened == 2  # the e-mail after the failure went over a fresh connection

    mailer.refused = set()
    clock.now = NOON + timedelta(minutes=1)
    assert send_due_deliveries() == 1

    refused.refresh_from_db()
    assert (refused.status, refused.attempts) == (DeliveryStatus.SENT, 2)
    assert len(mail.outbox) == 3


def test_when_no_connection_can_be_had_every_email_waits_for_its_retry(mailer, clock):
    deliveries = DeliveryFactory.create_batch(2)
    mailer.down = True

    send_deliveries([d.pk for d in deliveries])

    assert mail.outbox == []
    for delivery in deliveries:
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.not_before) == (
            DeliveryStatus.QUEUED,
            1,
            NOON + timedelta(minutes=1),
        )
        assert delivery.last_error == "ConnectionRefusedError: Connection refused"


def test_sms_in_the_quiet_hours_wait_while_the_emails_of_the_batch_go(mailer, clock):
    clock.now = datetime(2026, 12, 7, 21, 30, tzinfo=BERLIN)
    text, email = sms_delivery(), DeliveryFactory()

    send_deliveries([text.pk, email.pk])

    assert ([m.to for m in mail.outbox], sms.outbox) == ([[email.address]], [])
    text.refresh_from_db()
    assert (text.status, text.attempts, text.not_before) == (
        DeliveryStatus.QUEUED,
        0,
        datetime(2026, 12, 8, 8, tzinfo=BERLIN),
    )
    assert statuses(email) == [DeliveryStatus.SENT]


def test_an_email_carries_its_short_link_and_the_batch_saves_its_code(mailer):
    link = "https://loyalty.example.com/claims/12/"
    delivery = DeliveryFactory(link=link, body=f"Your claim was approved: {link}")

    send_deliveries([delivery.pk])

    delivery.refresh_from_db()
    assert len(delivery.link_code) == 16
    assert mail.outbox[0].body == f"Your claim was approved: https://loyalty.example.com/m/{delivery.link_code}"


def test_a_marketing_emails_unsubscribe_link_goes_out_whole_on_its_line(mailer):
    delivery = DeliveryFactory(kind=Kind.CAMPAIGN)

    send_deliveries([delivery.pk])

    # what the SMTP backend sends: the link, not RFC 2047 encoded words mail clients cannot follow
    sent = mail.outbox[0].message(policy=email.policy.SMTP).as_bytes()
    header = next(line for line in sent.split(b"\r\n") if line.startswith(b"List-Unsubscribe:"))
    assert re.fullmatch(rb"List-Unsubscribe: <https://loyalty\.example\.com/messages/unsubscribe/[\w:-]+/>", header)


@pytest.mark.parametrize("size", [1, 25])
def test_a_batch_takes_the_same_queries_whatever_its_size(mailer, clock, size, django_assert_num_queries):
    ids = [d.pk for d in DeliveryFactory.create_batch(size)] + [sms_delivery().pk for _ in range(size)]

    # savepoint, lock, suppressions, the SMS members, the one UPDATE, release
    with django_assert_num_queries(6):
        deliveries_send(ids)

    assert (len(mail.outbox), len(sms.outbox)) == (size, size)
    assert set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {DeliveryStatus.SENT}
