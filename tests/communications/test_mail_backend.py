"""communications/mail.py: the quick header factory writes the bytes the email package writes, the SMTP backend gives
the envelope addresses Django's gives and parses a batch's shared From once; notify renders a text shared by the
inbox and the e-mail once."""

import email._header_value_parser as header_parser
import email.policy

import pytest
from django.core.mail import EmailMessage, mailers
from django.core.mail.backends import smtp
from django.test import override_settings

from communications import services
from communications.constants import Channel, Kind
from communications.mail import Email, EmailBackend
from communications.models import Delivery
from communications.services import notify
from tests.partners.factories import MemberFactory

FIXED = {"Date": "Mon, 07 Dec 2026 12:00:00 +0100", "Message-ID": "<179662.1.42@loyalty.example.com>"}
LONG = "Your distributor reported 14 sale lines for the spring softener promotion: 12,500 points for you, well done"
MESSAGES = [
    {"subject": "You earned 1,250 points", "to": ["anna.berg@example.com"]},
    {"subject": "Sie haben 1.250 Punkte für Verkäufe erhalten", "to": ["jörg@example.com"]},  # encoded words
    {"subject": LONG, "to": ["Anna Berg <anna@example.com>", "b@example.com"]},  # folded over lines
    {"subject": "=?utf-8?q?already_encoded?= and (comment) <x>", "to": ["anna@bücher.example"]},  # IDNA domain
    {"subject": "  spaced  out  ", "to": ["o'neil+tag@" + "sub." * 20 + "example.com"]},  # longer than a line
    {"subject": "Reply", "to": ["a@example.com"], "cc": ["c@example.com"], "reply_to": ["r@example.com"]},
    {"subject": "Tab\tin it", "to": ['"quoted local"@example.com']},
]


@pytest.mark.parametrize("fields", MESSAGES)
@pytest.mark.parametrize("policy", [email.policy.SMTP, email.policy.default])
def test_a_message_has_the_same_bytes_as_the_email_package_makes(fields, policy):
    headers = {**FIXED, "X-Campaign": fields["subject"]}

    def built(cls):
        message = cls(body="Hallo Jörg,\n\ndanke.\n", from_email="Partner Loyalty <loyalty@example.com>", **fields)
        message.extra_headers = dict(headers)
        return message.message(policy=policy).as_bytes()

    assert built(Email) == built(EmailMessage)


def test_a_message_without_date_and_message_id_gets_both():
    message = Email(subject="Hi", body="Body", from_email="loyalty@example.com", to=["a@example.com"]).message()

    assert message["Date"].datetime is not None
    assert message["Message-ID"].startswith("<")
    assert message["To"].addresses[0].domain == "example.com"


ADDRESSES = [
    "anna@example.com",
    "Partner Loyalty <loyalty@example.com>",
    "O'Neil+tag@Example.COM",
    "anna@bücher.example",
    '"quoted local"@example.com',
    "webmaster",
]
BAD_ADDRESSES = ["a@example.com, b@example.com", "jörg@example.com", "<broken", "a@example.com\nBcc: x@example.com"]


SMTP = {"default": {"BACKEND": "communications.mail.EmailBackend", "OPTIONS": {"host": "localhost", "port": 25}}}


def backend() -> EmailBackend:
    """A new SMTP backend, as MAILERS makes it (nothing remembered yet)."""
    with override_settings(MAILERS=SMTP):
        return mailers["default"]


def stock_prep(address, force_ascii):
    return smtp.EmailBackend.prep_address(None, address, force_ascii=force_ascii)


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("force_ascii", [True, False])
def test_an_envelope_address_is_what_djangos_backend_makes_of_it(address, force_ascii):
    mailer = backend()

    assert mailer.prep_address(address, force_ascii) == stock_prep(address, force_ascii)
    assert mailer.prep_address(address, force_ascii) == stock_prep(address, force_ascii)  # remembered alike


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_bad_envelope_address_is_refused_as_djangos_backend_refuses_it(address):
    with pytest.raises(ValueError) as stock:
        stock_prep(address, True)

    for _twice in range(2):
        with pytest.raises(ValueError) as ours:
            backend().prep_address(address)
        assert str(ours.value) == str(stock.value)


class Connection:
    """An open SMTP connection that keeps what it is given."""

    def __init__(self):
        self.sent = []

    def sendmail(self, sender, recipients, data):
        self.sent.append((sender, recipients, data))


def test_a_batch_parses_the_shared_from_once_and_no_plain_address(monkeypatch):
    parsed = []
    stock = header_parser.get_address_list
    monkeypatch.setattr(header_parser, "get_address_list", lambda value: parsed.append(value) or stock(value))
    mailer = backend()
    mailer.connection = Connection()
    sender = "Partner Loyalty <batch-sender@example.com>"  # a From no earlier test made the factory remember
    messages = [
        Email(subject=f"News {n}", body="Body", from_email=sender, to=[f"member{n}@example.com"]) for n in range(5)
    ]

    assert mailer.send_messages(messages) == 5

    assert parsed == [sender, sender]  # the From header once, its envelope address once
    assert [(s, r) for s, r, _data in mailer.connection.sent] == [
        ("batch-sender@example.com", [f"member{n}@example.com"]) for n in range(5)
    ]
    assert b"To: member4@example.com\r\n" in mailer.connection.sent[4][2]


@pytest.mark.usefixtures("messages_out")
def test_the_inbox_and_the_email_render_a_text_they_share_once(monkeypatch):
    rendered = []
    stock = services.render
    monkeypatch.setattr(services, "render", lambda text, *a, **kw: rendered.append(text) or stock(text, *a, **kw))
    member = MemberFactory(user__full_name="Anna Berg")

    notify(kind=Kind.MEMBER_APPROVED, member=member, source_key="member:1:approved", variables={})

    rows = {d.channel: d for d in Delivery.objects.filter(member=member)}
    assert rows[Channel.INBOX].subject == rows[Channel.EMAIL].subject == "Welcome to the partner program"
    assert rows[Channel.EMAIL].body.startswith("Hello Anna,\n\nYour place in")  # the e-mail's own body
    assert rows[Channel.INBOX].body.startswith("Your place in")
    assert len(rendered) == 3  # the shared subject once, each body once
