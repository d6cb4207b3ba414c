import base64
import json
import logging
from datetime import UTC, datetime

import pytest
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason, tracking
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from communications.constants import Channel, DeliveryStatus, Kind, SuppressionReason
from communications.models import Delivery, Suppression
from communications.sending import delivery_send
from communications.services import notify
from tests.communications.factories import DeliveryFactory, SuppressionFactory
from tests.partners.factories import AccountManagerFactory, MemberFactory, OwnerFactory, UserFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
WEBHOOK_SECRET = "dev-only:webhook-secret"  # the TESTING default of ANYMAIL["WEBHOOK_SECRET"]


def report(message_id: str, event_type: str, *, reject_reason=None, at=AT) -> None:
    """What anymail sends us for a provider's webhook call."""
    event = AnymailTrackingEvent(
        event_type=event_type, timestamp=at, message_id=message_id, reject_reason=reject_reason, description="550"
    )
    tracking.send(sender=object, event=event, esp_name="Test")


def sent_email(**kwargs) -> Delivery:
    fields = {"status": DeliveryStatus.SENT, "provider_id": "<abc@loyalty.example.com>", "sent_at": AT}
    return DeliveryFactory(**{**fields, **kwargs})


def test_a_delivered_report_marks_the_delivery_delivered_at_the_reported_time():
    delivery = sent_email()

    report("<abc@loyalty.example.com>", EventType.DELIVERED)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at) == (DeliveryStatus.DELIVERED, AT)


def test_a_report_naming_our_message_id_without_angle_brackets_finds_the_delivery():
    delivery = sent_email()

    report("abc@loyalty.example.com", EventType.OPENED)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.opened_at) == (DeliveryStatus.OPENED, AT)


def test_reports_arriving_out_of_order_never_move_a_delivery_back():
    delivery = sent_email()
    later = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    report("<abc@loyalty.example.com>", EventType.CLICKED, at=later)
    report("<abc@loyalty.example.com>", EventType.OPENED)
    report("<abc@loyalty.example.com>", EventType.DELIVERED)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.clicked_at, delivery.opened_at, delivery.delivered_at) == (
        DeliveryStatus.CLICKED,
        later,
        AT,
        AT,
    )


def test_a_repeated_report_keeps_the_first_time():
    delivery = sent_email()

    report("<abc@loyalty.example.com>", EventType.OPENED)
    report("<abc@loyalty.example.com>", EventType.OPENED, at=datetime(2026, 12, 2, tzinfo=UTC))

    delivery.refresh_from_db()
    assert delivery.opened_at == AT


def test_a_hard_bounce_suppresses_the_address_and_the_next_message_to_it_is_not_sent(messages_out):
    member = MemberFactory(user__email="Anna@Example.com")
    delivery = sent_email(member=member, address="anna@example.com")

    report("<abc@loyalty.example.com>", EventType.BOUNCED, reject_reason=RejectReason.BOUNCED)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.BOUNCED, "bounced: 550")
    assert list(Suppression.objects.values_list("address", "reason")) == [
        ("anna@example.com", SuppressionReason.BOUNCED)
    ]
    [_inbox, email] = notify(
        kind=Kind.MEMBER_APPROVED, member=member, source_key=f"member:{member.pk}:approved", variables={}
    )
    assert (email.channel, email.status) == (Channel.EMAIL, DeliveryStatus.SUPPRESSED)


def test_a_complaint_suppresses_the_address_and_leaves_the_delivery_delivered():
    delivery = sent_email(status=DeliveryStatus.DELIVERED, address="bob@example.com")

    report("<abc@loyalty.example.com>", EventType.COMPLAINED, reject_reason=RejectReason.SPAM)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert list(Suppression.objects.values_list("address", "reason")) == [
        ("bob@example.com", SuppressionReason.COMPLAINED)
    ]


def test_a_second_bounce_of_a_suppressed_address_keeps_its_first_reason():
    SuppressionFactory(address="bob@example.com", reason=SuppressionReason.COMPLAINED)
    sent_email(address="bob@example.com")

    report("<abc@loyalty.example.com>", EventType.BOUNCED)

    assert list(Suppression.objects.values_list("address", "reason")) == [
        ("bob@example.com", SuppressionReason.COMPLAINED)
    ]


def test_a_provider_rejecting_an_address_it_knows_bounced_suppresses_it():
    delivery = sent_email(address="gone@example.com")

    report("<abc@loyalty.example.com>", EventType.REJECTED, reject_reason=RejectReason.BOUNCED)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert list(Suppression.objects.values_list("address", flat=True)) == ["gone@example.com"]


def test_a_rejection_for_another_reason_fails_the_delivery_but_suppresses_nothing():
    delivery = sent_email()

    report("<abc@loyalty.example.com>", EventType.REJECTED, reject_reason=RejectReason.BLOCKED)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert not Suppression.objects.exists()


def test_a_report_for_an_unknown_message_is_logged_and_changes_nothing(caplog):
    delivery = sent_email()

    with caplog.at_level(logging.WARNING, logger="communications.tracking"):
        report("<someone-else@example.com>", EventType.BOUNCED)
        report("", EventType.BOUNCED)

    delivery.refresh_from_db()
    assert (delivery.status, Suppression.objects.count()) == (DeliveryStatus.SENT, 0)
    assert [r.getMessage() for r in caplog.records] == [
        "Test bounced report for an unknown message '<someone-else@example.com>': ignored",
        "Test bounced report for an unknown message '': ignored",
    ]


@override_settings(MAILERS={"default": {"BACKEND": "anymail.backends.test.EmailBackend"}})
def test_an_e_mail_sent_through_an_anymail_provider_is_tracked_by_the_providers_id(messages_out):
    delivery = DeliveryFactory(channel=Channel.EMAIL)

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    provider_id = str(mail.outbox[-1].anymail_status.message_id)
    assert (delivery.status, delivery.provider_id) == (DeliveryStatus.SENT, provider_id)
    report(provider_id, EventType.DELIVERED)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


# Through the webhook: anymail's Postmark view (basic auth is its only signature).


def post_postmark(client, payload: dict, *, secret: str = WEBHOOK_SECRET):
    auth = base64.b64encode(secret.encode()).decode()
    return client.post(
        reverse("anymail:postmark_tracking_webhook"),
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def bounce_payload(message_id: str) -> dict:
    return {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "MessageID": message_id,
        "Email": "anna@example.com",
        "BouncedAt": "2026-12-01T09:30:00Z",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    }


def test_a_signed_provider_webhook_bounces_the_delivery(client):
    delivery = sent_email(address="anna@example.com", provider_id="8c1f2d3e-postmark")

    response = post_postmark(client, bounce_payload("8c1f2d3e-postmark"))

    delivery.refresh_from_db()
    assert (response.status_code, delivery.status) == (200, DeliveryStatus.BOUNCED)
    assert list(Suppression.objects.values_list("address", flat=True)) == ["anna@example.com"]


def test_a_webhook_with_a_bad_signature_is_refused_and_changes_nothing(client):
    delivery = sent_email(address="anna@example.com", provider_id="8c1f2d3e-postmark")

    response = post_postmark(client, bounce_payload("8c1f2d3e-postmark"), secret="dev-only:guessed")

    delivery.refresh_from_db()
    assert (response.status_code, delivery.status, Suppression.objects.count()) == (400, DeliveryStatus.SENT, 0)


def test_a_signed_webhook_for_an_unknown_message_is_accepted_and_changes_nothing(client):
    delivery = sent_email(address="anna@example.com", provider_id="8c1f2d3e-postmark")

    response = post_postmark(client, bounce_payload("not-ours"))

    delivery.refresh_from_db()
    assert (response.status_code, delivery.status, Suppression.objects.count()) == (200, DeliveryStatus.SENT, 0)


@pytest.mark.parametrize("esp", ["postmark", "brevo", "mailgun", "amazon_ses", "mailjet"])
def test_an_unreadable_webhook_body_is_refused_not_a_server_error(client, esp, caplog):
    delivery = sent_email()
    auth = base64.b64encode(WEBHOOK_SECRET.encode()).decode()

    with caplog.at_level(logging.WARNING, logger="communications.tracking"):
        response = client.post(
            reverse(f"anymail:{esp}_tracking_webhook"),
            data="not json",
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Basic {auth}",
        )

    delivery.refresh_from_db()
    assert (response.status_code, delivery.status, Suppression.objects.count()) == (400, DeliveryStatus.SENT, 0)
    refusals = [r.getMessage() for r in caplog.records if r.name == "communications.tracking"]
    assert [message.split(":")[0] for message in refusals] == [f"Refused a delivery report at /anymail/{esp}/tracking/"]


# The people who look after a member see that e-mail no longer reaches them.


def test_the_owners_team_page_marks_a_member_whose_address_bounced(client):
    owner = OwnerFactory()
    MemberFactory(partner=owner.partner, user=UserFactory(email="Gone@Example.com"))
    MemberFactory(partner=owner.partner, user=UserFactory(email="fine@example.com"))
    SuppressionFactory(address="gone@example.com")
    client.force_login(owner.user)

    response = client.get(reverse("team"))

    unreachable = [m.user.email for m in response.context["page"] if m.user.email_unreachable]
    assert unreachable == ["Gone@Example.com"]
    assert response.content.decode().count("Not reachable by e-mail") == 1


def test_the_account_managers_partner_page_marks_a_member_whose_address_bounced(client):
    manager = AccountManagerFactory()
    member = MemberFactory(partner__account_manager=manager, user=UserFactory(email="gone@example.com"))
    MemberFactory(partner=member.partner, user=UserFactory(email="fine@example.com"))
    SuppressionFactory(address="gone@example.com")
    client.force_login(manager)

    response = client.get(reverse("partner_detail", args=[member.partner.pk]))

    unreachable = [m.user.email for m in response.context["page"] if m.user.email_unreachable]
    assert unreachable == ["gone@example.com"]
    assert response.content.decode().count("Not reachable by e-mail") == 1
