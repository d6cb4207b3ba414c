"""Sending one delivery: quiet hours for SMS, retries then failure, marketing headers, idempotent tasks, resend;
templates refused on save. Batches: test_batch_sending.py."""

import contextlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from communications import sms
from communications.admin import MessageTemplateForm
from communications.constants import MAX_ATTEMPTS, Channel, DeliveryStatus, Kind
from communications.models import MessageTemplate
from communications.sending import deliveries_due, delivery_resend, delivery_send
from communications.tasks import send_deliveries, send_delivery, send_due_deliveries
from tests.communications.factories import DeliveryFactory, MessageTemplateFactory
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.usefixtures("messages_out")
BERLIN = ZoneInfo("Europe/Berlin")


def at(hour, minute=0, day=7):
    return datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)


class Clock:
    """timezone.now() answers what the test sets."""

    def __init__(self, monkeypatch):
        self.now = at(12)
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def travel(self, moment):
        self.now = moment
        return contextlib.nullcontext()


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def sms_delivery(**kwargs):
    return DeliveryFactory(
        channel=Channel.SMS, member=MemberFactory(phone="+49 151 2345678"), body="Claim approved", **kwargs
    )


def test_an_sms_in_the_quiet_hours_is_held_until_eight_and_sent_then(settings, clock):
    settings.TIME_ZONE = "Europe/Berlin"
    delivery = sms_delivery()

    with clock.travel(at(21, 30)):
        send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.not_before, sms.outbox) == (DeliveryStatus.QUEUED, at(8, day=8), [])

    with clock.travel(at(7, 59, day=8)):
        assert send_due_deliveries() == 0
    with clock.travel(at(8, 1, day=8)):
        assert send_due_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert [(m.to, m.text) for m in sms.outbox] == [("+491512345678", "Claim approved")]


def test_an_email_goes_out_in_the_quiet_hours(settings, clock):
    settings.TIME_ZONE = "Europe/Berlin"
    delivery = DeliveryFactory()

    with clock.travel(at(23)):
        send_delivery(delivery.pk)

    assert len(mail.outbox) == 1


def test_a_failing_sms_is_tried_again_with_backoff_then_marked_failed(monkeypatch, clock):
    def down(to, text):
        raise sms.SmsError("Provider answered 500", retryable=True)

    monkeypatch.setattr(sms, "send_sms", down)
    delivery = sms_delivery()
    start = at(10)

    with clock.travel(start):
        send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.not_before) == (
        DeliveryStatus.QUEUED,
        1,
        start + timedelta(minutes=1),
    )
    assert delivery.last_error == "SmsError: Provider answered 500"

    with clock.travel(start + timedelta(seconds=30)):
        send_delivery(delivery.pk)  # a repeated task before the wait is over does nothing
    delivery.refresh_from_db()
    assert delivery.attempts == 1

    moment = start
    for _attempt in range(MAX_ATTEMPTS - 1):
        moment = max(moment, delivery.not_before.astimezone(BERLIN))
        with clock.travel(moment):
            send_due_deliveries()
        delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)
    assert deliveries_due() == []


def test_an_sms_the_provider_refuses_for_good_fails_at_once(monkeypatch, clock):
    def refused(to, text):
        raise sms.SmsError("Invalid number", retryable=False)

    monkeypatch.setattr(sms, "send_sms", refused)
    delivery = sms_delivery()

    with clock.travel(at(10)):
        send_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)


def test_a_sent_delivery_is_not_sent_again_by_a_repeated_task():
    delivery = DeliveryFactory()

    send_delivery(delivery.pk)  # the one-delivery task of before the batches, which a broker may still hold
    send_delivery(delivery.pk)
    send_deliveries([delivery.pk])

    assert len(mail.outbox) == 1


def test_a_failed_delivery_can_be_resent(django_capture_on_commit_callbacks):
    delivery = DeliveryFactory(status=DeliveryStatus.FAILED, attempts=MAX_ATTEMPTS, last_error="timeout")

    with django_capture_on_commit_callbacks(execute=True):
        delivery_resend(delivery=delivery)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, len(mail.outbox)) == (DeliveryStatus.SENT, 1, 1)


def test_marketing_email_carries_one_click_unsubscribe_headers_and_transactional_does_not():
    campaign = DeliveryFactory(kind=Kind.CAMPAIGN)
    claim = DeliveryFactory(kind=Kind.CLAIM_APPROVED)

    delivery_send(delivery_id=campaign.pk)
    delivery_send(delivery_id=claim.pk)

    marketing, transactional = mail.outbox
    assert marketing.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert marketing.extra_headers["List-Unsubscribe"].startswith("<https://loyalty.example.com/messages/unsubscribe/")
    assert "List-Unsubscribe" not in transactional.extra_headers
    message = marketing.message()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{ points }} for {{ password }}", "Unknown variable(s): password."),
        ("{% if points > 1 %}{{ points }}", "The template has an error: Unclosed tag"),
        ("{% load static %}", "The template has an error: Invalid block tag on line 1: 'load'."),
        ("{{ points|safe }}", "The template has an error: Invalid filter: 'safe'"),
        ("{% if secret %}x{% endif %}", "Unknown variable(s): secret."),
    ],
)
def test_a_broken_template_is_refused_on_save_and_nothing_changes(body, message):
    template = MessageTemplateFactory(channel=Channel.INBOX, language="fr")
    form = MessageTemplateForm(
        instance=template,
        data={"kind": Kind.CLAIM_APPROVED, "channel": Channel.INBOX, "language": "fr", "subject": "Hi", "body": body},
    )

    assert not form.is_valid()
    assert form.errors["body"][0].startswith(message)
    template.body = body
    with pytest.raises(ValidationError):
        template.full_clean()
    assert MessageTemplate.objects.get(pk=template.pk).body == "{{ points }} points"


def test_a_template_using_only_documented_variables_is_accepted():
    form = MessageTemplateForm(
        data={
            "kind": Kind.CLAIM_APPROVED,
            "channel": Channel.INBOX,
            "language": "pl",
            "subject": "{{ first_name|upper }}",
            "body": "{% if points > 100 %}{{ points|intcomma }}{% endif %} {{ link }}",
            "active": "on",
        }
    )

    assert form.is_valid(), form.errors
