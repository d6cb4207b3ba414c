import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from communications.constants import Channel, Kind
from communications.models import Delivery, MessageTemplate, Tip
from communications.rendering import template_problem
from communications.services import Notice, notify, notify_many
from tests.communications.factories import TipFactory
from tests.partners.factories import MemberFactory, role

pytestmark = pytest.mark.django_db


def welcome_with_a_tip(channel: str = Channel.INBOX) -> None:
    """The default welcome (member approved) template, ending with the tip."""
    MessageTemplate.objects.filter(kind=Kind.MEMBER_APPROVED, channel=channel, language="en", role=None).update(
        body="Welcome.{% if tip %} Did you know? {{ tip }}{% endif %}"
    )


def welcome(member, source_key: str = "member:approved", **variables) -> dict[str, str]:
    """The bodies of the messages the member gets, per channel."""
    deliveries = notify(kind=Kind.MEMBER_APPROVED, member=member, source_key=source_key, variables=variables)
    return {delivery.channel: delivery.body for delivery in deliveries}


def test_a_template_shows_a_tip_for_the_members_role_with_its_absolute_link(messages_out):
    welcome_with_a_tip()
    foreman = MemberFactory(role=role("foreman"))
    TipFactory(text="Scan the QR code on the box.", link_path="/claims/new/", role=role("foreman"))
    TipFactory(text="Owners can invite their team.", role=role("owner"))

    bodies = welcome(foreman)

    assert bodies[Channel.INBOX] == (
        "Welcome. Did you know? Scan the QR code on the box. https://loyalty.example.com/claims/new/"
    )


def test_news_about_a_product_line_brings_that_lines_tip_before_the_general_ones(messages_out):
    welcome_with_a_tip()
    foreman = MemberFactory(role=role("foreman"))
    TipFactory(text="General tip for foremen.", role=role("foreman"))
    TipFactory(text="Softeners: check the salt.", product_line="softeners", link_path="/catalog/softeners/")
    TipFactory(text="Pumps: bleed the air first.", product_line="pumps")

    with_line = welcome(foreman, source_key="sale:1", product_line="softeners")
    without_line = welcome(foreman, source_key="sale:2")

    assert with_line[Channel.INBOX] == (
        "Welcome. Did you know? Softeners: check the salt. https://loyalty.example.com/catalog/softeners/"
    )
    assert without_line[Channel.INBOX] == "Welcome. Did you know? General tip for foremen."


def test_no_fitting_tip_leaves_the_tip_out(messages_out):
    welcome_with_a_tip()
    member = MemberFactory(role=role("sales"), language="en")
    TipFactory(text="For owners only.", role=role("owner"))
    TipFactory(text="Nur auf Deutsch.", language="de")
    TipFactory(text="Switched off.", active=False)

    assert welcome(member)[Channel.INBOX] == "Welcome."


def test_tips_rotate_over_events_and_one_event_shows_the_same_tip_on_every_channel(messages_out):
    welcome_with_a_tip(Channel.INBOX)
    welcome_with_a_tip(Channel.EMAIL)
    member = MemberFactory(preferred_channel=Channel.EMAIL)
    TipFactory(text="First.")
    TipFactory(text="Second.")

    shown = [welcome(member, source_key=f"event:{n}") for n in range(6)]

    assert {bodies[Channel.INBOX] for bodies in shown} == {
        "Welcome. Did you know? First.",
        "Welcome. Did you know? Second.",
    }
    assert all(bodies[Channel.INBOX] == bodies[Channel.EMAIL] for bodies in shown)


def test_the_tip_pool_is_read_once_for_all_members_and_not_at_all_when_no_template_shows_a_tip(messages_out):
    members = MemberFactory.create_batch(3)
    TipFactory(text="A tip.")

    def queries_for(source: str) -> int:
        notices = [Notice(m.pk, f"{source}:{m.pk}", {}) for m in members]
        with CaptureQueriesContext(connection) as queries:
            notify_many(kind=Kind.MEMBER_APPROVED, notices=notices)
        return len(queries)

    without_tip = queries_for("plain")
    welcome_with_a_tip(Channel.INBOX)
    welcome_with_a_tip(Channel.EMAIL)
    with_tip = queries_for("tipped")

    assert with_tip == without_tip + 1
    assert set(Delivery.objects.filter(source_key__startswith="tipped").values_list("body", flat=True)) == {
        "Welcome. Did you know? A tip."
    }


def test_only_good_news_may_show_a_tip():
    assert template_problem(Kind.CLAIM_APPROVED, "{{ tip }}") is None
    assert "Unknown variable(s): tip." in template_problem(Kind.CLAIM_REJECTED, "{{ tip }}")


@pytest.mark.parametrize("link", ["https://elsewhere.example/", "//elsewhere.example/", "rewards/"])
def test_a_tips_link_must_be_a_page_of_this_site(link):
    with pytest.raises(ValidationError) as error:
        Tip(text="Look here.", link_path=link).full_clean()

    assert error.value.message_dict == {"link_path": ["Give a page of this site, starting with /, e.g. /rewards/."]}


def test_the_program_manager_adds_a_tip_in_the_admin(pm_client):
    response = pm_client.post(
        reverse("admin:communications_tip_add"),
        {"text": "Softeners: check the salt.", "link_path": "/rewards/", "product_line": "softeners", "role": "",
         "language": "", "active": "on"},
    )  # fmt: skip

    assert response.status_code == 302
    assert list(Tip.objects.values_list("text", "product_line", "link_path")) == [
        ("Softeners: check the salt.", "softeners", "/rewards/")
    ]


def test_the_tip_list_takes_a_fixed_number_of_queries(pm_client, django_assert_max_num_queries):
    TipFactory.create_batch(5, role=role("foreman"))

    with django_assert_max_num_queries(8):
        response = pm_client.get(reverse("admin:communications_tip_changelist"))

    assert response.status_code == 200
    assert response.content.decode().count("Tip ") >= 5


def test_the_tip_admin_is_for_program_managers_only(am_staff_client):
    assert am_staff_client.get(reverse("admin:communications_tip_changelist")).status_code == 403
