"""A campaign's messages stored in one statement (communications.fanout) are exactly those notify_many stores for the
same members, one by one: channel, address, status, subject and body, for every combination of choices."""

import itertools
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from communications import fanout, sms
from communications.campaigns import campaign_send
from communications.constants import CampaignStatus, Channel, DeliveryStatus, Kind, Topic, allowed_variables
from communications.models import Campaign, CampaignMessage, CampaignRecipient, Delivery, MessageTemplate
from communications.selectors import _unread_count_key
from partners.constants import Channel as MemberChannel
from partners.constants import MarketingConsent
from partners.models import Member
from tests.communications.factories import (
    DeliveryFactory,
    MessageTemplateFactory,
    PreferenceFactory,
    SuppressionFactory,
    TipFactory,
)
from tests.communications.test_campaigns import CampaignFactory
from tests.partners.factories import MemberFactory, PartnerFactory, RegionFactory, role

pytestmark = pytest.mark.usefixtures("messages_out")


def stored(campaign) -> dict:
    """What sending the campaign stored: each delivery by member and channel, and each recipient with whether they
    are in the control group and the channel of the delivery they are linked to."""
    deliveries = {
        (d.member_id, d.channel): (d.address, d.status, d.subject, d.body, d.topic, d.link, d.idempotency_key)
        + (d.attempts, d.delivered_at is not None)
        for d in Delivery.objects.filter(kind=Kind.CAMPAIGN, source_key=f"campaign:{campaign.pk}")
    }
    recipients = {
        r.member_id: (r.in_control_group, r.delivery.channel if r.delivery else None)
        for r in CampaignRecipient.objects.filter(campaign=campaign).select_related("delivery")
    }
    return {"deliveries": deliveries, "recipients": recipients}


def sent_both_ways(campaign, monkeypatch) -> tuple[dict, dict]:
    """What campaign_send stores in one statement, and what it stores (everything sent forgotten in between) when
    it goes the Python way, one notify_many per batch of members."""
    told_in_sql = []
    tell = fanout.tell
    monkeypatch.setattr(fanout, "tell", lambda **kwargs: told_in_sql.append(tell(**kwargs)) or told_in_sql[-1])
    campaign_send(campaign=campaign)
    assert told_in_sql == [True]
    in_sql = stored(campaign)

    CampaignRecipient.objects.filter(campaign=campaign).delete()
    Delivery.objects.filter(kind=Kind.CAMPAIGN).delete()
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.DRAFT)
    monkeypatch.setattr(fanout, "tell", lambda **kwargs: False)
    campaign_send(campaign=Campaign.objects.get(pk=campaign.pk))
    return in_sql, stored(campaign)


@override_settings(MARKETING_MESSAGES_PER_WEEK=2)
def test_every_channel_choice_stores_the_rows_notify_many_stores(monkeypatch):
    opt_out, opt_in = (RegionFactory(marketing_consent=c) for c in (MarketingConsent.OPT_OUT, MarketingConsent.OPT_IN))
    partners = [PartnerFactory(region=opt_out), PartnerFactory(region=opt_in)]
    topic_choices = [None, *itertools.product([Channel.EMAIL, Channel.SMS, Channel.INBOX], [True, False, None])]
    names = ["Anna Maria", "\u3000Jörg\u00a0 Weber ", "", "Zoë"]
    combinations = itertools.product(topic_choices, MemberChannel.values, [True, False], [True, False], partners)
    for n, (choice, preferred, has_phone, suppressed, partner) in enumerate(combinations):
        member = MemberFactory(
            partner=partner,
            preferred_channel=preferred,
            # Half the numbers as Suppression keeps them (E.164), half with spaces (notify_many compares them as typed).
            phone=(f" +49170{n:05d} " if n % 7 < 4 else f" +49 170 {n:05d}") if has_phone else " ",
            role=role("foreman" if n % 5 < 2 else "sales"),
            language="de" if n % 3 else "en",
            user__full_name=names[n % len(names)],
            user__email=f"Member.{n}@Example.COM",
        )
        if choice is not None:
            PreferenceFactory(member=member, topic=Topic.CAMPAIGNS, channel=choice[0], opted_in=choice[1])
        if suppressed:
            SuppressionFactory(address=member.user.email.lower())
            SuppressionFactory(address=f"+49170{n:05d}")
    capped = MemberFactory(partner=partners[0])
    for n in range(2):
        DeliveryFactory(member=capped, kind=Kind.SURVEY, channel=Channel.INBOX, source_key=f"survey:{n}")
    campaign = CampaignFactory(control_percent=10)
    CampaignMessage.objects.create(
        campaign=campaign, role=role("foreman"), subject="Site news, {{ first_name }}", body="{{ partner_name }} crew"
    )

    in_sql, in_python = sent_both_ways(campaign, monkeypatch)

    assert in_sql == in_python
    # Every case came up: each channel, queued and suppressed, and members told nothing (control group, refusal, cap).
    cases = {(channel, row[1]) for (_member, channel), row in in_python["deliveries"].items()}
    assert cases == {
        (Channel.INBOX, DeliveryStatus.DELIVERED),
        (Channel.EMAIL, DeliveryStatus.QUEUED),
        (Channel.EMAIL, DeliveryStatus.SUPPRESSED),
        (Channel.SMS, DeliveryStatus.QUEUED),
        (Channel.SMS, DeliveryStatus.SUPPRESSED),
    }
    recipients = in_python["recipients"]
    assert len(recipients) == 241
    assert {linked for _control, linked in recipients.values()} == {None, Channel.INBOX, Channel.EMAIL, Channel.SMS}
    assert sum(control for control, _linked in recipients.values()) == 24
    assert recipients[capped.pk][1] is None


def test_texts_tips_and_cuts_are_those_notify_many_renders(monkeypatch):
    long_name = "Hydro " + "x" * 93  # 99 characters: a title of two of them and more is cut at 200
    foreman = MemberFactory(
        role=role("foreman"), partner__name=long_name, user__full_name="", user__email="ΟΔΟΣ.İNCİ@example.com"
    )
    engineer = MemberFactory(role=role("engineer"), language="de", user__full_name="  Zoë\u2003Ann ")
    sales = MemberFactory(role=role("sales"), preferred_channel=MemberChannel.SMS, phone="\t+49 171 5550\n")
    MemberFactory(role=role("sales"), language="de", preferred_channel=MemberChannel.IN_APP)
    MessageTemplate.objects.filter(kind=Kind.CAMPAIGN, channel=Channel.INBOX, language="en").update(
        body="{{ message }}\n\n{{ tip }}"
    )
    MessageTemplateFactory(
        kind=Kind.CAMPAIGN,
        channel=Channel.EMAIL,
        role=role("foreman"),
        subject="{{ title }} – {{ partner_name }}",
        body="  {{ first_name }},\n{{ message }}\n{{ title }}{% if link %} {{ link }}{% endif %}\n{{ tip }}  ",
    )
    MessageTemplateFactory(
        kind=Kind.CAMPAIGN, channel=Channel.SMS, role=role("sales"), subject="", body="{{ title }} {{ tip }}"
    )
    TipFactory(text="Any role, any language.", link_path="/rewards/")
    TipFactory(text="For foremen.", role=role("foreman"))
    TipFactory(text="For foremen too.", role=role("foreman"), link_path="/claims/new/")
    TipFactory(text="Auf Deutsch.", language="de")
    TipFactory(text="About softeners.", product_line="softeners")
    TipFactory(text="Retired.", active=False)
    campaign = CampaignFactory()
    CampaignMessage.objects.create(
        campaign=campaign,
        role=role("foreman"),
        subject="{{ partner_name }} {{ partner_name }} x",
        body="{{ first_name }} at {{ partner_name }}{{ tip }}",  # a variant is given no tip: it shows nothing
    )
    CampaignMessage.objects.create(
        campaign=campaign, role=role("engineer"), subject="{{ first_name }}", body="{{ first_name }}, {{ link }}!"
    )

    in_sql, in_python = sent_both_ways(campaign, monkeypatch)

    assert in_sql == in_python
    rows = {
        key: dict(zip(("address", "status", "subject", "body"), row, strict=False))
        for key, row in in_python["deliveries"].items()
    }
    title = f"{long_name} {long_name} x"[:200]  # ends with a space: the subject of the inbox strips it
    email, message = "ΟΔΟΣ.İNCİ@example.com", f"ΟΔΟΣ.İNCİ@example.com at {long_name}"
    foremens_tips = {"For foremen.", "For foremen too. https://loyalty.example.com/claims/new/"}
    inbox = rows[foreman.pk, Channel.INBOX]
    assert inbox["subject"] == title.strip()
    assert inbox["body"].removeprefix(f"{message}\n\n") in foremens_tips
    by_email = rows[foreman.pk, Channel.EMAIL]
    assert (by_email["address"], by_email["subject"]) == (email.lower(), f"{title} – {long_name}"[:200])
    assert by_email["body"].removeprefix(f"{email},\n{message}\n{title}\n") in foremens_tips
    assert rows[engineer.pk, Channel.EMAIL]["subject"] == "Zoë"
    assert rows[engineer.pk, Channel.EMAIL]["body"] == "Hallo Zoë,\n\nZoë, !\n\nIhr Partnerprogramm-Team"
    assert rows[sales.pk, Channel.SMS] == {
        "address": "+49 171 5550",
        "status": DeliveryStatus.QUEUED,
        "subject": "",
        "body": f"Spring for {sales.user.get_short_name()} Any role, any language. https://loyalty.example.com/rewards/",
    }


@pytest.mark.parametrize(
    ("text", "as_is"),
    [
        ("Hello {{ first_name }}, {{ first_name }}!", True),
        ("{% if link %}{{ first_name }} {{ link }}{% endif %}", True),
        ("{{ link|default:'none' }} {{ first_name }}", True),
        ("Hello {{ first_name|upper }}", False),
        ("Hello {{ first_name.0 }}", False),
        ("{{ link|default:first_name }}", False),
        ("{% if first_name %}Hello {{ first_name }}{% endif %}", False),
        ("{% if link and partner_name %}x{% endif %}", False),
    ],
)
def test_a_variable_is_shown_as_it_is_only_plain(text, as_is):
    assert fanout.shows_as_is(text, fanout.VARIANT_VALUES) is as_is


def test_a_name_under_a_filter_goes_the_python_way_with_the_same_message():
    member = MemberFactory(user__full_name="Ada Lovelace", partner__name="Aqua Ltd")
    campaign = CampaignFactory(message=False)
    CampaignMessage.objects.create(
        campaign=campaign,
        subject="Hi {{ first_name|upper }}",
        body="{% if partner_name %}{{ partner_name }} earns double.{% endif %}",
    )

    campaign_send(campaign=campaign)

    inbox = Delivery.objects.get(member=member, channel=Channel.INBOX)
    assert (inbox.subject, inbox.body) == ("Hi ADA", "Aqua Ltd earns double.")
    recipient = CampaignRecipient.objects.get(campaign=campaign)
    assert recipient.delivery == Delivery.objects.get(member=member, channel=Channel.EMAIL)


def test_a_template_with_a_tip_in_an_if_goes_the_python_way(monkeypatch):
    MessageTemplate.objects.filter(kind=Kind.CAMPAIGN, channel=Channel.INBOX, language="en").update(
        body="{{ message }}{% if tip %} Did you know? {{ tip }}{% endif %}"
    )
    member = MemberFactory()
    TipFactory(text="Scan the box.")
    told_in_sql = []
    tell = fanout.tell
    monkeypatch.setattr(fanout, "tell", lambda **kwargs: told_in_sql.append(tell(**kwargs)) or told_in_sql[-1])

    campaign_send(campaign=CampaignFactory())

    assert told_in_sql == [False]
    inbox = Delivery.objects.get(member=member, channel=Channel.INBOX)
    assert inbox.body == f"Double points at {member.partner.name}. Did you know? Scan the box."


def queries_to_send(campaign) -> int:
    """The queries of sending `campaign` (to every member, by e-mail and in the inbox)."""
    with CaptureQueriesContext(connection) as queries:
        campaign_send(campaign=campaign)
    assert Delivery.objects.filter(source_key=f"campaign:{campaign.pk}").count() == 2 * Member.objects.count()
    return len(queries)


def test_the_queries_of_a_sending_do_not_grow_with_its_audience():
    MemberFactory.create_batch(3)
    to_three = queries_to_send(CampaignFactory())
    MemberFactory.create_batch(40)

    assert queries_to_send(CampaignFactory()) == to_three


def test_after_commit_the_emails_and_texts_go_out_and_the_bells_count_again(
    django_capture_on_commit_callbacks, monkeypatch, settings
):
    settings.TIME_ZONE = "Europe/Berlin"  # at noon there: no quiet hours holding the text back
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 6, 3, 12, tzinfo=ZoneInfo(settings.TIME_ZONE)))
    by_email = MemberFactory()
    by_sms = MemberFactory(preferred_channel=MemberChannel.SMS, phone="+49 170 1234")
    in_app = MemberFactory(preferred_channel=MemberChannel.IN_APP)
    for member in (by_email, by_sms, in_app):
        cache.set(_unread_count_key(member.pk), 0)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_send(campaign=CampaignFactory())

    assert [message.to for message in mail.outbox] == [[by_email.user.email.lower()]]
    assert [message.to for message in sms.outbox] == ["+491701234"]
    assert set(Delivery.objects.filter(channel__in=[Channel.EMAIL, Channel.SMS]).values_list("status", flat=True)) == {
        DeliveryStatus.SENT
    }
    assert all(cache.get(_unread_count_key(member.pk)) is None for member in (by_email, by_sms, in_app))


def test_the_per_member_values_are_the_campaign_kinds_variables_but_the_link():
    assert set(fanout.TEMPLATE_VALUES) == set(allowed_variables(Kind.CAMPAIGN)) - {"link"}


def test_the_whitespace_trimmed_is_pythons():
    assert "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()) == fanout.WHITESPACE


def test_a_delivery_stored_before_is_kept_and_not_stored_again():
    member = MemberFactory()
    campaign = CampaignFactory()
    DeliveryFactory(
        member=member, kind=Kind.CAMPAIGN, channel=Channel.EMAIL, source_key=f"campaign:{campaign.pk}", subject="Before"
    )

    campaign_send(campaign=campaign)

    assert Delivery.objects.get(member=member, channel=Channel.EMAIL).subject == "Before"
    recipient = CampaignRecipient.objects.get(campaign=campaign)
    assert recipient.delivery == Delivery.objects.get(member=member, channel=Channel.INBOX)
