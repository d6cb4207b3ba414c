"""The invitation is a message of communications (kind INVITATION, through partners' invitation-issued hook): logged as
deliveries, stopped by a suppressed address, written with the program's editable template, told once per invitation,
and its sign-up link works; the delivery log never shows the link's token."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from communications.constants import Channel, DeliveryStatus, Kind
from communications.defaults import ensure_default_templates
from communications.handlers import invitation_issued
from communications.models import Delivery, MessageTemplate
from partners import services
from partners.constants import MemberStatus
from partners.models import Member
from tests.communications.factories import SuppressionFactory
from tests.partners.factories import NEW_PASSWORD, OwnerFactory, role

pytestmark = pytest.mark.django_db
EMAIL = "new.rep@dealer.example"


@pytest.fixture(autouse=True)
def templates():
    """The default templates (a transactional test elsewhere may have emptied the table), links on a known site."""
    ensure_default_templates(MessageTemplate)
    with override_settings(SITE_URL="https://loyalty.example.com"):
        yield


@pytest.fixture
def invite(django_capture_on_commit_callbacks):
    """Invite EMAIL to an owner's team (or resend their invitation) and send what it stored, as after a commit."""
    owner = OwnerFactory(user__full_name="Olga Owner")

    def invite(*, resend=False):
        with django_capture_on_commit_callbacks(execute=True):
            if resend:
                member = Member.objects.get(user__email=EMAIL)
                return services.invitation_resend(member=member, actor=owner.user)
            return services.invitation_send(
                partner=owner.partner, email=EMAIL, role=role("sales"), invited_by=owner.user
            )

    return invite


def sign_up_link(message) -> str:
    return re.search(r"https://loyalty\.example\.com/\S+", message.body).group()


def test_an_invitation_is_logged_and_its_emailed_link_signs_the_person_up(client, invite):
    invitation = invite()

    deliveries = Delivery.objects.filter(kind=Kind.INVITATION, source_key=f"invitation:{invitation.pk}")
    # By e-mail alone: signing up proves the address, and there is no inbox before joining.
    assert list(deliveries.values_list("channel", "status")) == [(Channel.EMAIL, DeliveryStatus.SENT)]
    (message,) = mail.outbox
    assert message.to == [EMAIL]
    assert message.subject == "Olga Owner invited you to the partner program"
    assert message.body.startswith("Hello,\n")  # no name yet: not "Hello new.rep@...,"
    assert "Sign up with the link below by" in message.body

    response = client.get(urlsplit(sign_up_link(message)).path, follow=True)
    assert response.status_code == 200
    page = response.request["PATH_INFO"]
    assert page == reverse("invitation_accept", args=[invitation.token])
    response = client.post(page, {"full_name": "Nina New", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert Member.objects.get(user__email=EMAIL).status == MemberStatus.PENDING_APPROVAL


def test_an_invitation_goes_by_email_even_to_someone_whose_channel_is_sms(invite):
    invitation = invite()
    Member.objects.filter(pk=invitation.member_id).update(preferred_channel="sms", phone="+49 151 2345678")

    invite(resend=True)

    assert set(Delivery.objects.filter(kind=Kind.INVITATION).values_list("channel", flat=True)) == {Channel.EMAIL}
    assert len(mail.outbox) == 2


def test_the_programs_edited_template_writes_the_invitation(invite):
    MessageTemplate.objects.filter(kind=Kind.INVITATION, channel=Channel.EMAIL, language="en", role=None).update(
        subject="Join us, says {{ invited_by }}", body="Until {{ expires_on|date }}: {{ link }}"
    )

    invitation = invite()

    (message,) = mail.outbox
    assert message.subject == "Join us, says Olga Owner"
    assert message.body.startswith("Until ")
    stored = Delivery.objects.get(kind=Kind.INVITATION, channel=Channel.EMAIL)
    assert stored.link == f"https://loyalty.example.com{reverse('invitation_accept', args=[invitation.token])}"
    assert stored.body.endswith(f": {stored.link}")


def test_a_suppressed_address_gets_no_invitation_email(invite):
    SuppressionFactory(address=EMAIL)

    invite()

    assert mail.outbox == []
    email = Delivery.objects.get(kind=Kind.INVITATION, channel=Channel.EMAIL)
    assert email.status == DeliveryStatus.SUPPRESSED


def test_a_resend_sends_a_fresh_link_once_and_a_retried_hook_sends_nothing_more(invite):
    first = invite()
    second = invite(resend=True)

    invitation_issued(invitation=second, token=second.token)  # the same event told again: already stored

    assert [message.to for message in mail.outbox] == [[EMAIL], [EMAIL]]
    emails = Delivery.objects.filter(kind=Kind.INVITATION, channel=Channel.EMAIL).order_by("pk")
    assert [(email.source_key, email.link.split("/")[-2]) for email in emails] == [
        (f"invitation:{first.pk}", first.token),
        (f"invitation:{second.pk}", second.token),
    ]


def test_the_delivery_log_masks_the_sign_up_token(pm_client, invite):
    invitation = invite()
    email = Delivery.objects.get(kind=Kind.INVITATION, channel=Channel.EMAIL)

    page = pm_client.get(reverse("admin:communications_delivery_change", args=[email.pk])).content.decode()

    assert invitation.token not in page
    assert "https://loyalty.example.com/invitations/[…]/" in page
