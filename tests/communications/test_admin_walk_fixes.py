"""Findings of a new user's walk through the back office (issue #11): the delivery log's resend report, the member's
language in the feedback inbox, the unit of a campaign's effect, the days without points only where they count, and
the feedback answer notice in the member's language, linking to the answer."""

import pytest
from django.contrib.messages import get_messages
from django.template.loader import render_to_string
from django.urls import reverse

from communications.campaigns import GroupReach, campaign_send
from communications.constants import Activity, Channel, DeliveryStatus, FeedbackStatus, FeedbackTopic, Kind
from communications.models import Delivery
from tests.communications.factories import DeliveryFactory
from tests.communications.test_campaigns import CampaignFactory
from tests.communications.test_feedback import FeedbackFactory
from tests.loyalty.factories import MemberAccountFactory, ProgramFactory
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.usefixtures("messages_out")


# Resending from the delivery log -----------------------------------------------------------------------------------


def resend(client, deliveries):
    data = {"action": "resend", "_selected_action": [delivery.pk for delivery in deliveries]}
    return client.post(reverse("admin:communications_delivery_changelist"), data, follow=True)


def test_resend_says_in_one_message_how_many_were_queued_and_which_were_not_and_why(pm_client):
    failed = DeliveryFactory(status=DeliveryStatus.FAILED)
    bounced = DeliveryFactory(status=DeliveryStatus.BOUNCED)
    sent = DeliveryFactory(status=DeliveryStatus.SENT, subject="Claim INV-7 approved")
    inbox = DeliveryFactory(channel=Channel.INBOX, status=DeliveryStatus.DELIVERED, subject="Welcome")

    response = resend(pm_client, [failed, bounced, sent, inbox])

    assert [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)] == [
        (
            "warning",
            f"Queued again: 2 messages (#{failed.pk}, #{bounced.pk}). Not sent again: 2 messages: "
            f"#{sent.pk} “Claim INV-7 approved” (Sent), #{inbox.pk} “Welcome” (Inbox). "
            "Only failed, bounced or suppressed e-mail and SMS messages can be sent again.",
        )
    ]
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses == {
        failed.pk: DeliveryStatus.QUEUED,
        bounced.pk: DeliveryStatus.QUEUED,
        sent.pk: DeliveryStatus.SENT,
        inbox.pk: DeliveryStatus.DELIVERED,
    }


def test_resend_of_nothing_resendable_is_one_error_naming_each_row(pm_client):
    queued = DeliveryFactory.create_batch(12, status=DeliveryStatus.QUEUED, subject="Points")

    response = resend(pm_client, queued)

    messages = [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]
    assert len(messages) == 1
    level, text = messages[0]
    assert level == "error"
    named = ", ".join(f"#{delivery.pk} “Points” (Queued)" for delivery in queued[:10])
    assert text == (
        f"Not sent again: 12 messages: {named} and 2 more. "
        "Only failed, bounced or suppressed e-mail and SMS messages can be sent again."
    )
    assert not Delivery.objects.exclude(status=DeliveryStatus.QUEUED).exists()


# The feedback inbox --------------------------------------------------------------------------------------------------


def test_the_feedback_inbox_shows_the_members_language_and_the_answer_box_says_which(pm_client):
    feedback = FeedbackFactory(member=MemberFactory(language="de"))

    listed = pm_client.get(reverse("admin:communications_feedback_changelist")).text
    page = pm_client.get(reverse("admin:communications_feedback_change", args=[feedback.pk])).text

    assert '<td class="field-member_language">Deutsch</td>' in listed
    assert "Answer in Deutsch" in page
    # Right above the answer box.
    assert page.index("Answer in Deutsch") < page.index('name="answer"')
    assert "field-answer_language" in page[page.index("field-text") : page.index('name="answer"')]


def test_an_answered_feedback_names_the_language_it_was_answered_in(pm_client, program_manager):
    feedback = FeedbackFactory(member=MemberFactory(language="pl"))
    pm_client.post(reverse("admin:communications_feedback_change", args=[feedback.pk]), {"answer": "Dziękujemy."})

    page = pm_client.get(reverse("admin:communications_feedback_change", args=[feedback.pk])).text

    feedback.refresh_from_db()
    assert feedback.status == FeedbackStatus.ANSWERED
    assert "Polski" in page and "Answer in" not in page


# The feedback answer notice ------------------------------------------------------------------------------------------


def test_the_answer_notice_names_the_topic_in_the_members_language_and_opens_the_answer(pm_client):
    feedback = FeedbackFactory(member=MemberFactory(language="de"), topic=FeedbackTopic.POINTS)

    # The program manager reads the back office in English.
    pm_client.post(reverse("admin:communications_feedback_change", args=[feedback.pk]), {"answer": "Erledigt."})

    notice = Delivery.objects.get(kind=Kind.FEEDBACK_ANSWERED, channel=Channel.INBOX)
    assert notice.subject == "Wir haben Ihre Nachricht beantwortet: Punkte und Meldungen"
    assert notice.link == f"https://loyalty.example.com/feedback/#feedback-{feedback.pk}"


def test_the_answer_notice_links_to_the_page_that_shows_the_answer(client, pm_client):
    member = MemberFactory()
    oldest = FeedbackFactory(member=member)
    FeedbackFactory.create_batch(10, member=member)  # a page holds 10: the oldest is on page 2

    pm_client.post(reverse("admin:communications_feedback_change", args=[oldest.pk]), {"answer": "Thanks."})

    notice = Delivery.objects.get(kind=Kind.FEEDBACK_ANSWERED, channel=Channel.INBOX)
    assert notice.link == f"https://loyalty.example.com/feedback/?page=2#feedback-{oldest.pk}"
    client.force_login(member.user)
    page = client.get(notice.link.removeprefix("https://loyalty.example.com")).text
    assert f'id="feedback-{oldest.pk}"' in page and "Thanks." in page


# A campaign's page ---------------------------------------------------------------------------------------------------


def sent_campaign(**kwargs):
    program = ProgramFactory()
    for _ in range(10):
        MemberAccountFactory(program=program)
    campaign = CampaignFactory(program=program, control_percent=20, **kwargs)
    campaign_send(campaign=campaign)
    return campaign


def change_page(client, campaign) -> str:
    return client.get(reverse("admin:communications_campaign_change", args=[campaign.pk])).text


def test_the_effect_carries_its_unit_percentage_points():
    row = render_to_string(
        "admin/communications/campaign/reach_row.html",
        {"label": "All roles", "group": GroupReach("", members=10, acted=5, control_members=10, control_acted=2)},
    )

    assert (
        "<td>+30.0&nbsp;<abbr title=\"percentage points: the told members' acting rate minus the control group's\">"
        "pp</abbr></td>"
    ) in row


def test_the_campaign_page_explains_the_effects_unit(pm_client):
    page = change_page(pm_client, sent_campaign())

    assert "0.0&nbsp;<abbr" in page
    assert "in percentage points (pp); +2 pp means 2 more members in 100 acted." in page


@pytest.mark.parametrize(
    ("activity", "shown"), [(Activity.NEVER_REDEEMED, False), ("", False), (Activity.NO_POINTS, True)]
)
def test_a_sent_campaign_shows_days_without_points_only_for_that_activity(pm_client, activity, shown):
    page = change_page(pm_client, sent_campaign(activity=activity, inactive_days=60))

    assert ("Days without points" in page) is shown


def test_a_draft_keeps_the_days_field_and_hides_it_while_another_activity_is_chosen(pm_client):
    page = change_page(pm_client, CampaignFactory(activity=Activity.NEVER_REDEEMED))

    assert 'name="inactive_days"' in page
    assert 'activity.value !== "no_points"' in page


def test_a_campaigns_partner_types_and_languages_are_ticked_and_a_sent_one_names_them(pm_client):
    from communications.campaigns import campaign_send
    from communications.models import Campaign
    from tests.loyalty.factories import ProgramFactory
    from tests.partners.factories import MemberFactory, PartnerFactory

    program = ProgramFactory()
    form = {
        "program": program.pk, "name": "Dealers in German", "topic": "campaigns", "partner_kinds": ["dealer"],
        "languages": ["de"], "control_percent": 0, "acted_within_days": 30, "inactive_days": 60,
        "messages-TOTAL_FORMS": 1, "messages-INITIAL_FORMS": 0, "messages-0-subject": "Hallo",
        "messages-0-body": "Neu bei {{ partner_name }}.",
    }  # fmt: skip
    add = pm_client.get(reverse("admin:communications_campaign_add")).content.decode()
    assert 'type="checkbox" name="partner_kinds" value="dealer"' in add

    response = pm_client.post(reverse("admin:communications_campaign_add"), form)

    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Dealers in German")
    assert (campaign.partner_kinds, campaign.languages) == (["dealer"], ["de"])
    MemberFactory(language="de", partner=PartnerFactory(kind="dealer"))
    campaign_send(campaign=campaign)
    record = pm_client.get(reverse("admin:communications_campaign_change", args=[campaign.pk])).content.decode()
    assert "Dealer" in record and "Deutsch" in record and "dealer</div>" not in record
