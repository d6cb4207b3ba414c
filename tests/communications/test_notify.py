"""notify / notify_many: channel, language, role and fallback of the template, idempotency, suppression."""

import pytest
from django.core import mail

from communications.constants import Channel, DeliveryStatus, Kind
from communications.models import Delivery
from communications.services import Notice, notify, notify_many
from partners.constants import Channel as MemberChannel
from tests.communications.factories import MessageTemplateFactory, PreferenceFactory, SuppressionFactory
from tests.partners.factories import MemberFactory, UserFactory, role

pytestmark = pytest.mark.usefixtures("messages_out")

CLAIM = {"invoice_number": "INV-7", "points": 1250, "explanation": "Softeners v1: 5 units × 250 pts = 1250"}


def tell(member, source="claim:1:approved", **kwargs):
    return notify(kind=Kind.CLAIM_APPROVED, member=member, source_key=source, variables=CLAIM, **kwargs)


def test_an_email_member_gets_one_email_and_one_inbox_message_in_english(django_capture_on_commit_callbacks):
    member = MemberFactory(user=UserFactory(email="Anna@Example.com", full_name="Anna Berg"))

    with django_capture_on_commit_callbacks(execute=True):
        tell(member, link_path="/claims/1/")

    rows = {d.channel: d for d in Delivery.objects.filter(member=member)}
    assert set(rows) == {Channel.EMAIL, Channel.INBOX}
    assert rows[Channel.INBOX].status == DeliveryStatus.DELIVERED
    assert rows[Channel.EMAIL].status == DeliveryStatus.SENT
    assert rows[Channel.EMAIL].address == "anna@example.com"
    assert [m.to for m in mail.outbox] == [["anna@example.com"]]
    assert mail.outbox[0].subject == "Claim INV-7 approved: 1,250 points"
    assert mail.outbox[0].body.startswith("Hello Anna,\n\nYour claim for invoice INV-7 was approved.")
    # The row keeps the long link; the e-mail carries its short link (communications/delivery_links.py).
    assert "https://loyalty.example.com/claims/1/" in rows[Channel.EMAIL].body
    assert f"https://loyalty.example.com/m/{rows[Channel.EMAIL].link_code}" in mail.outbox[0].body
    assert rows[Channel.INBOX].subject == "Claim INV-7 approved: 1,250 points"


def test_a_german_member_reads_german_with_german_numbers(django_capture_on_commit_callbacks):
    member = MemberFactory(language="de")

    with django_capture_on_commit_callbacks(execute=True):
        tell(member)

    assert mail.outbox[0].subject == "Meldung INV-7 genehmigt: 1.250 Punkte"


def test_a_french_member_falls_back_to_english():
    member = MemberFactory(language="fr")

    tell(member)

    assert Delivery.objects.get(member=member, channel=Channel.INBOX).subject == "Claim INV-7 approved: 1,250 points"


def test_the_most_specific_template_wins_language_and_role_first():
    sales, owner = role("sales"), role("owner")
    MessageTemplateFactory(channel=Channel.INBOX, language="de", role=sales, subject="de+sales")
    MessageTemplateFactory(channel=Channel.INBOX, language="", role=owner, subject="any+owner")
    german_rep, german_owner = MemberFactory(language="de", role=sales), MemberFactory(language="de", role=owner)
    french_owner = MemberFactory(language="fr", role=owner)

    for member in (german_rep, german_owner, french_owner):
        tell(member)

    subjects = {d.member_id: d.subject for d in Delivery.objects.filter(channel=Channel.INBOX)}
    assert subjects == {
        german_rep.pk: "de+sales",
        german_owner.pk: "Meldung INV-7 genehmigt: 1.250 Punkte",  # the language before the role
        french_owner.pk: "any+owner",
    }


def test_an_sms_member_gets_an_sms_and_without_a_phone_an_email():
    texter = MemberFactory(preferred_channel=MemberChannel.SMS, phone="+49 151 2345678")
    no_phone = MemberFactory(preferred_channel=MemberChannel.SMS, phone="")
    app_only = MemberFactory(preferred_channel=MemberChannel.IN_APP)

    for member in (texter, no_phone, app_only):
        tell(member)

    channels = sorted(Delivery.objects.values_list("member_id", "channel", "address"))
    assert channels == sorted(
        [
            (texter.pk, Channel.SMS, "+49 151 2345678"),
            (texter.pk, Channel.INBOX, ""),
            (no_phone.pk, Channel.EMAIL, no_phone.user.email),
            (no_phone.pk, Channel.INBOX, ""),
            (app_only.pk, Channel.INBOX, ""),
        ]
    )


def test_the_same_event_twice_stores_and_sends_once(django_capture_on_commit_callbacks):
    member = MemberFactory()

    with django_capture_on_commit_callbacks(execute=True):
        first = tell(member)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = tell(member)

    assert (len(first), second, callbacks) == (2, [], [])
    assert Delivery.objects.filter(member=member).count() == 2
    assert len(mail.outbox) == 1


def test_a_suppressed_address_is_not_sent_to(django_capture_on_commit_callbacks):
    member = MemberFactory(user=UserFactory(email="gone@example.com"))
    SuppressionFactory(address="Gone@Example.com")

    with django_capture_on_commit_callbacks(execute=True):
        tell(member)

    email = Delivery.objects.get(member=member, channel=Channel.EMAIL)
    assert (email.status, mail.outbox) == (DeliveryStatus.SUPPRESSED, [])
    assert Delivery.objects.get(member=member, channel=Channel.INBOX).status == DeliveryStatus.DELIVERED


def test_a_member_who_opted_out_of_campaigns_gets_none_but_still_gets_transactional_messages():
    member = MemberFactory()
    PreferenceFactory(member=member, opted_in=False)

    notify(kind=Kind.CAMPAIGN, member=member, source_key="campaign:1", variables={"title": "Spring"})
    tell(member)

    assert set(Delivery.objects.filter(member=member).values_list("kind", flat=True)) == {Kind.CLAIM_APPROVED}


def test_notify_many_is_one_message_per_member_in_a_fixed_number_of_queries(django_assert_num_queries):
    members = [MemberFactory() for _ in range(5)]
    notices = [Notice(m.pk, "sales_import:9", {"points": 10 * i, "lines": i}) for i, m in enumerate(members, 1)]

    # members, preferences, templates, suppressions, the insert (plus the savepoint pair)
    with django_assert_num_queries(7):
        notify_many(kind=Kind.POINTS_IMPORTED, notices=notices)

    assert Delivery.objects.filter(channel=Channel.EMAIL).count() == 5
    assert Delivery.objects.get(member=members[2], channel=Channel.INBOX).subject == "You earned 30 points"


def test_messages_are_plain_text_and_the_inbox_escapes_them_once(client):
    """A walk found "Your crew&#x27;s …" in the inbox: variables were HTML-escaped into the stored text, and the
    page escaped them again."""
    member = MemberFactory(partner__name="O'Brien & Sons <Water>", language="en")

    notify(kind=Kind.MEMBER_APPROVED, member=member, source_key="member:1:approved", variables={})

    inbox = Delivery.objects.get(member=member, channel=Channel.INBOX)
    assert "O'Brien & Sons <Water>" in inbox.subject + inbox.body
    client.force_login(member.user)
    page = client.get("/messages/").content.decode()
    assert "O&#x27;Brien &amp; Sons &lt;Water&gt;" in page
    assert "&amp;#x27;" not in page and "&amp;amp;" not in page
