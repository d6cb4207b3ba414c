import pytest
from django.core import mail
from django.urls import reverse

from communications.constants import Channel, Kind
from communications.models import Delivery, MessageTemplate
from tests.communications.factories import MessageTemplateFactory, TipFactory
from tests.partners.factories import MemberFactory, PartnerFactory, UserFactory, role

pytestmark = pytest.mark.django_db

PREVIEW = reverse("admin:communications_messagetemplate_preview")
SEND_TEST = reverse("admin:communications_messagetemplate_send_test")


def typed(**fields) -> dict[str, str]:
    """What the change form holds while the program manager types."""
    return {
        "kind": Kind.CLAIM_APPROVED,
        "channel": Channel.EMAIL,
        "language": "en",
        "role": "",
        "subject": "Claim {{ invoice_number }} approved",
        "body": "Hello {{ first_name }} of {{ partner_name }}, {{ points }} points.",
        "preview_member": "",
        **fields,
    }


@pytest.fixture
def anna():
    return MemberFactory(
        user=UserFactory(email="anna@example.com", full_name="Anna Berg"),
        partner=PartnerFactory(name="Aqua GmbH"),
        role=role("foreman"),
    )


def test_the_preview_shows_the_message_as_the_chosen_member_reads_it(pm_client, anna):
    response = pm_client.post(PREVIEW, typed(preview_member="ANNA@example.com"))

    assert response.status_code == 200
    assert response.context["subject"] == "Claim [invoice_number] approved"
    assert response.context["body"] == "Hello Anna of Aqua GmbH, [points] points."
    assert "As anna@example.com reads it:" in response.content.decode()


def test_the_preview_shows_the_members_tip(pm_client, anna):
    TipFactory(text="Scan the box.", role=role("foreman"))

    response = pm_client.post(PREVIEW, typed(preview_member="anna@example.com", body="{{ tip }}"))

    assert response.context["body"] == "Scan the box."


def test_the_preview_for_nobody_in_particular_shows_a_sample_person(pm_client):
    response = pm_client.post(PREVIEW, typed())

    assert response.context["body"] == "Hello [first_name] of [partner_name], [points] points."
    assert "As a sample person reads it:" in response.content.decode()


def test_the_preview_says_when_no_member_has_the_e_mail_address(pm_client):
    response = pm_client.post(PREVIEW, typed(preview_member="nobody@example.com"))

    assert response.context["member_missing"] is True
    assert "No member has this e-mail address" in response.content.decode()
    assert response.context["body"] == "Hello [first_name] of [partner_name], [points] points."


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"body": "{% if points %}"}, "Body: The template has an error:"),
        ({"subject": "{{ reward }}"}, "Subject: Unknown variable(s): reward."),
        ({"kind": "nonsense"}, "Choose the kind of message."),
    ],
)
def test_the_preview_of_a_broken_template_says_what_is_wrong(pm_client, fields, problem):
    response = pm_client.post(PREVIEW, typed(**fields))

    assert response.status_code == 200
    assert "subject" not in response.context
    assert problem in str(response.context["problems"])


def test_send_me_a_test_e_mails_the_program_manager_and_stores_no_delivery(pm_client, program_manager, anna):
    response = pm_client.post(SEND_TEST, typed(preview_member="anna@example.com", channel=Channel.SMS))

    assert response.status_code == 200
    assert "Test sent to pm@maker.example." in response.content.decode()
    [message] = mail.outbox
    assert (message.to, message.subject, message.body) == (
        ["pm@maker.example"],
        "[Test] Claim [invoice_number] approved",
        "Hello Anna of Aqua GmbH, [points] points.",
    )
    assert message.extra_headers["Message-ID"].startswith("<")
    assert not Delivery.objects.exists()


def test_a_broken_template_is_not_sent_as_a_test(pm_client):
    response = pm_client.post(SEND_TEST, typed(body="{{ secret_key }}"))

    assert "Nothing was sent." in response.content.decode()
    assert mail.outbox == []


def test_preview_and_test_are_for_program_managers_only(am_staff_client, partner_staff_client):
    for client in (am_staff_client, partner_staff_client):
        assert client.post(PREVIEW, typed()).status_code in (302, 403)
        assert client.post(SEND_TEST, typed()).status_code in (302, 403)
    assert mail.outbox == []


def test_the_preview_answers_only_a_post(pm_client):
    assert pm_client.get(PREVIEW).status_code == 404


def test_the_change_page_offers_the_live_preview_and_the_test(pm_client, django_assert_max_num_queries):
    template = MessageTemplateFactory(kind=Kind.CLAIM_APPROVED, channel=Channel.EMAIL, language="en")

    with django_assert_max_num_queries(12):
        response = pm_client.get(reverse("admin:communications_messagetemplate_change", args=[template.pk]))

    page = response.content.decode()
    assert f'hx-post="{PREVIEW}"' in page
    assert f'hx-post="{SEND_TEST}"' in page
    assert "Send me a test (pm@maker.example)" in page
    assert 'name="preview_member"' in page
    assert "<code>{{ tip }}</code>" in page  # the variables this kind may use, the tip among them


def test_saving_the_template_ignores_the_preview_member(pm_client, anna):
    template = MessageTemplateFactory(kind=Kind.CLAIM_APPROVED, channel=Channel.EMAIL, language="en")
    url = reverse("admin:communications_messagetemplate_change", args=[template.pk])

    response = pm_client.post(url, {**typed(preview_member="anna@example.com"), "active": "on"})

    assert response.status_code == 302
    template.refresh_from_db()
    assert template.body == "Hello {{ first_name }} of {{ partner_name }}, {{ points }} points."
    assert MessageTemplate.objects.filter(kind=Kind.CLAIM_APPROVED, channel=Channel.EMAIL, language="en").count() == 1
