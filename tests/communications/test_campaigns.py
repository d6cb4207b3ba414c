from datetime import timedelta

import factory
import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from factory.django import DjangoModelFactory

from communications.campaigns import audience, campaign_reach, campaign_send, campaign_send_due
from communications.constants import Activity, CampaignStatus, Channel, DeliveryStatus, Kind, Topic
from communications.models import Campaign, CampaignMessage, CampaignRecipient, Delivery, MessageTemplate
from loyalty.common.errors import ApplicationError
from loyalty.models import PartnerTier
from loyalty.services import ledger
from partners.constants import MemberStatus, PartnerKind
from rewards.models import RedemptionOrder
from tests.communications.factories import DeliveryFactory, PreferenceFactory
from tests.helpers import messages_of
from tests.loyalty.factories import MemberAccountFactory, ProgramFactory, TierFactory
from tests.partners.factories import MemberFactory, PartnerFactory, RegionFactory, role

pytestmark = pytest.mark.usefixtures("messages_out")


class CampaignFactory(DjangoModelFactory):
    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Spring offer {n}")
    control_percent = 0

    @factory.post_generation
    def message(obj, create, extracted, **kwargs):
        """Every campaign gets a message for everyone; `message=False` makes one without."""
        if create and extracted is not False:
            CampaignMessage.objects.create(
                campaign=obj, subject="Spring for {{ first_name }}", body="Double points at {{ partner_name }}."
            )


def ids(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def sent_to(campaign) -> set[int]:
    return set(
        Delivery.objects.filter(kind=Kind.CAMPAIGN, source_key=f"campaign:{campaign.pk}").values_list(
            "member_id", flat=True
        )
    )


# The audience ----------------------------------------------------------------------------------------------------


def test_the_audience_is_every_active_member_when_the_segment_names_nothing():
    active = MemberFactory()
    MemberFactory(status=MemberStatus.LEFT)
    MemberFactory(status=MemberStatus.INVITED, joined_at=None)

    assert ids(audience(CampaignFactory())) == {active.pk}


def test_the_audience_has_the_partner_types_regions_roles_and_languages_chosen():
    region = RegionFactory()
    wanted = MemberFactory(
        partner=PartnerFactory(kind=PartnerKind.INSTALLER, region=region), role=role("foreman"), language="de"
    )
    MemberFactory(partner=PartnerFactory(kind=PartnerKind.DEALER, region=region), role=role("foreman"), language="de")
    MemberFactory(partner=PartnerFactory(kind=PartnerKind.INSTALLER), role=role("foreman"), language="de")
    MemberFactory(partner=wanted.partner, role=role("sales"), language="de")
    MemberFactory(partner=wanted.partner, role=role("foreman"), language="en")
    campaign = CampaignFactory(partner_kinds=[PartnerKind.INSTALLER], languages=["de"])
    campaign.regions.set([region])
    campaign.roles.set([role("foreman")])

    assert ids(audience(campaign)) == {wanted.pk}


def test_the_audience_by_tier_is_the_members_of_partners_in_those_tiers():
    program = ProgramFactory()
    gold, silver = TierFactory(program=program), TierFactory(program=program)
    in_gold, in_silver = MemberFactory(), MemberFactory()
    MemberFactory()  # a partner with no tier
    today = timezone.localdate()
    for member, tier in ((in_gold, gold), (in_silver, silver)):
        PartnerTier.objects.create(program=program, partner=member.partner, tier=tier, since=today, held_until=today)
    campaign = CampaignFactory(program=program)
    campaign.tiers.set([gold])

    assert ids(audience(campaign)) == {in_gold.pk}


def test_the_audience_without_points_in_n_days_leaves_out_who_earned_since():
    program = ProgramFactory()
    earner, idle = MemberAccountFactory(program=program), MemberAccountFactory(program=program)
    ledger.earn(account=earner, points=100, key="earned-recently")
    campaign = CampaignFactory(program=program, activity=Activity.NO_POINTS, inactive_days=60)

    assert ids(audience(campaign)) == {idle.member_id}


def test_the_audience_never_redeemed_leaves_out_who_placed_an_order():
    program = ProgramFactory()
    redeemer, saver = MemberAccountFactory(program=program), MemberAccountFactory(program=program)
    order_of(redeemer)
    campaign = CampaignFactory(program=program, activity=Activity.NEVER_REDEEMED)

    assert ids(audience(campaign)) == {saver.member_id}


def test_the_audience_invited_but_not_joined_is_the_invited_members():
    invited = MemberFactory(status=MemberStatus.INVITED, joined_at=None)
    MemberFactory()
    campaign = CampaignFactory(activity=Activity.INVITED_NOT_JOINED)

    assert ids(audience(campaign)) == {invited.pk}


def order_of(account, *, at=None) -> RedemptionOrder:
    order = RedemptionOrder.objects.create(
        program=account.program,
        member=account.member,
        account=account,
        paid_by="member",
        total_points=100,
        checkout_key=f"checkout-{account.pk}-{RedemptionOrder.objects.count()}",
    )
    if at is not None:
        RedemptionOrder.objects.filter(pk=order.pk).update(created_at=at)
    return order


# Sending ---------------------------------------------------------------------------------------------------------


def test_sending_tells_each_member_of_the_audience_on_their_channel_with_their_roles_message():
    foreman, sales = MemberFactory(role=role("foreman")), MemberFactory(role=role("sales"))
    campaign = CampaignFactory()
    CampaignMessage.objects.create(campaign=campaign, role=role("foreman"), subject="Site news", body="For the crew")

    campaign_send(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert campaign.sent_at is not None
    email = Delivery.objects.get(member=sales, channel=Channel.EMAIL, kind=Kind.CAMPAIGN)
    assert email.subject == f"Spring for {sales.user.get_short_name()}"
    assert f"Double points at {sales.partner.name}." in email.body
    assert email.topic == Topic.CAMPAIGNS
    assert "List-Unsubscribe" not in email.body
    inbox = Delivery.objects.get(member=foreman, channel=Channel.INBOX, kind=Kind.CAMPAIGN)
    assert (inbox.subject, inbox.body) == ("Site news", "For the crew")
    recipients = {r.member_id: r for r in CampaignRecipient.objects.filter(campaign=campaign)}
    assert recipients[sales.pk].delivery_id == email.pk
    assert recipients[foreman.pk].delivery.channel == Channel.EMAIL


def test_the_control_group_is_drawn_reproducibly_and_sent_nothing():
    members = MemberFactory.create_batch(20)
    campaign = CampaignFactory(control_percent=25)

    campaign_send(campaign=campaign)

    control = set(
        CampaignRecipient.objects.filter(campaign=campaign, in_control_group=True).values_list("member_id", flat=True)
    )
    assert len(control) == 5
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 20
    assert sent_to(campaign) == {member.pk for member in members} - control
    # The same draw again (the same campaign id, the same members) picks the same control group.
    CampaignRecipient.objects.filter(campaign=campaign).delete()
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.DRAFT)
    Delivery.objects.all().delete()
    campaign_send(campaign=Campaign.objects.get(pk=campaign.pk))
    again = CampaignRecipient.objects.filter(campaign=campaign, in_control_group=True)
    assert set(again.values_list("member_id", flat=True)) == control


def test_an_empty_audience_is_refused_and_nothing_changes():
    MemberFactory(language="en")
    campaign = CampaignFactory(languages=["pl"])

    with pytest.raises(ApplicationError, match="No member matches the segment"):
        campaign_send(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert not CampaignRecipient.objects.exists()
    assert not Delivery.objects.exists()


def test_an_audience_with_a_role_that_has_no_message_is_refused():
    MemberFactory(role=role("sales"))
    campaign = CampaignFactory(message=False)
    CampaignMessage.objects.create(campaign=campaign, role=role("foreman"), subject="Site news", body="For the crew")

    with pytest.raises(ApplicationError, match="add a message for everyone else"):
        campaign_send(campaign=campaign)

    assert not CampaignRecipient.objects.exists()


def test_sending_twice_sends_once(django_capture_on_commit_callbacks):
    MemberFactory.create_batch(3)
    campaign = CampaignFactory()

    with django_capture_on_commit_callbacks(execute=True):
        campaign_send(campaign=campaign)
    with pytest.raises(ApplicationError, match="sent only once"):
        campaign_send(campaign=campaign)

    assert Delivery.objects.filter(kind=Kind.CAMPAIGN, channel=Channel.EMAIL).count() == 3
    assert CampaignRecipient.objects.count() == 3


@override_settings(MARKETING_MESSAGES_PER_WEEK=2)
def test_a_member_who_had_the_weeks_marketing_messages_is_skipped():
    capped, once, long_ago = MemberFactory(), MemberFactory(), MemberFactory()
    for n in range(2):
        DeliveryFactory(member=capped, kind=Kind.SURVEY, channel=Channel.INBOX, source_key=f"survey:{n}")
    DeliveryFactory(member=once, kind=Kind.CAMPAIGN, source_key="campaign:old")
    for n in range(2):
        DeliveryFactory(
            member=long_ago,
            kind=Kind.CAMPAIGN,
            source_key=f"campaign:older{n}",
            queued_at=timezone.now() - timedelta(days=8),
        )
    campaign = CampaignFactory()

    campaign_send(campaign=campaign)

    assert sent_to(campaign) == {once.pk, long_ago.pk}
    skipped = CampaignRecipient.objects.get(campaign=campaign, member=capped)
    assert (skipped.in_control_group, skipped.delivery_id) == (False, None)


def test_a_member_who_opted_out_of_campaigns_is_sent_nothing():
    opted_out, listening = MemberFactory(), MemberFactory()
    PreferenceFactory(member=opted_out, topic=Topic.CAMPAIGNS, opted_in=False)
    campaign = CampaignFactory()

    campaign_send(campaign=campaign)

    assert sent_to(campaign) == {listening.pk}


def test_a_member_who_opted_out_of_the_campaigns_own_topic_is_sent_nothing():
    opted_out, listening = MemberFactory(), MemberFactory()
    PreferenceFactory(member=opted_out, topic=Topic.SURVEYS, opted_in=False)
    campaign = CampaignFactory(topic=Topic.SURVEYS)

    campaign_send(campaign=campaign)

    assert sent_to(campaign) == {listening.pk}


def test_the_default_campaign_templates_carry_the_campaigns_text():
    member = MemberFactory()
    campaign = CampaignFactory()
    assert MessageTemplate.objects.get(kind=Kind.CAMPAIGN, channel=Channel.INBOX, language="en").body == "{{ message }}"

    campaign_send(campaign=campaign)

    inbox = Delivery.objects.get(member=member, channel=Channel.INBOX)
    assert inbox.body == f"Double points at {member.partner.name}."


def test_a_scheduled_campaign_is_sent_when_its_time_comes_and_an_empty_one_is_cancelled():
    member = MemberFactory(language="en")
    due = CampaignFactory(status=CampaignStatus.SCHEDULED, scheduled_at=timezone.now() - timedelta(minutes=1))
    later = CampaignFactory(status=CampaignStatus.SCHEDULED, scheduled_at=timezone.now() + timedelta(hours=1))
    empty = CampaignFactory(
        status=CampaignStatus.SCHEDULED, scheduled_at=timezone.now() - timedelta(minutes=1), languages=["pl"]
    )

    assert campaign_send_due() == 1

    statuses = dict(Campaign.objects.values_list("pk", "status"))
    assert statuses == {due.pk: CampaignStatus.SENT, later.pk: CampaignStatus.SCHEDULED, empty.pk: "cancelled"}
    assert sent_to(due) == {member.pk}


def test_a_campaign_message_with_an_unknown_variable_is_refused_on_save():
    message = CampaignMessage(campaign=CampaignFactory(message=False), subject="Hi {{ points }}", body="Text")

    with pytest.raises(Exception, match="Unknown variable"):
        message.full_clean()


# Reach -----------------------------------------------------------------------------------------------------------


def test_reach_counts_each_channel_and_role_and_compares_acting_with_the_control_group():
    program = ProgramFactory()
    accounts = [MemberAccountFactory(program=program, member__role=role("sales")) for _ in range(10)]
    campaign = CampaignFactory(program=program, control_percent=20)
    campaign_send(campaign=campaign)
    # Sent a day ago, so that what the members do now falls inside its 14 days.
    Campaign.objects.filter(pk=campaign.pk).update(sent_at=timezone.now() - timedelta(days=1))
    campaign.refresh_from_db()
    recipients = CampaignRecipient.objects.filter(campaign=campaign).select_related("delivery")
    told = [r for r in recipients if not r.in_control_group]
    control = [r for r in recipients if r.in_control_group]
    by_member = {account.member_id: account for account in accounts}
    # Of the 8 told: 4 e-mails delivered, 2 opened, 1 clicked; 3 acted. Of the 2 in the control group: 1 acted.
    now = timezone.now()
    for n, recipient in enumerate(told):
        Delivery.objects.filter(pk=recipient.delivery_id).update(
            status=DeliveryStatus.SENT,
            sent_at=now,
            delivered_at=now if n < 4 else None,
            opened_at=now if n < 2 else None,
            clicked_at=now if n < 1 else None,
        )
    ledger.earn(account=by_member[told[0].member_id], points=10, key="acted-1")
    order_of(by_member[told[1].member_id])
    ledger.earn(account=by_member[told[2].member_id], points=10, key="acted-2")
    order_of(by_member[told[2].member_id])
    order_of(by_member[control[0].member_id])
    order_of(by_member[control[1].member_id], at=timezone.now() - timedelta(days=3))  # before the campaign

    reach = campaign_reach(campaign)

    email = next(row for row in reach.channels if row.channel == Channel.EMAIL)
    inbox = next(row for row in reach.channels if row.channel == Channel.INBOX)
    assert (email.role, email.sent, email.delivered, email.opened, email.clicked, email.acted) == (
        "Sales rep",
        8,
        4,
        2,
        1,
        3,
    )
    assert (inbox.sent, inbox.delivered, inbox.acted) == (8, 8, 3)
    total = reach.total
    assert (total.members, total.acted, total.control_members, total.control_acted) == (8, 3, 2, 1)
    assert (str(total.rate), str(total.control_rate), str(total.effect)) == ("37.5", "50.0", "-12.5")
    assert [(group.role, group.members, group.control_members) for group in reach.groups] == [("Sales rep", 8, 2)]


def test_reach_is_none_before_sending():
    assert campaign_reach(CampaignFactory()) is None


# The back office -------------------------------------------------------------------------------------------------


def change_url(campaign) -> str:
    return reverse("admin:communications_campaign_change", args=[campaign.pk])


def send_url(campaign) -> str:
    return reverse("admin:communications_campaign_send", args=[campaign.pk])


def test_the_campaign_page_shows_the_audience_size_before_sending(pm_client):
    MemberFactory.create_batch(3)
    campaign = CampaignFactory(control_percent=34)

    response = pm_client.get(change_url(campaign))

    assert response.status_code == 200
    assert "3 members match the segment now; 1 of them will form the control group." in response.text
    assert send_url(campaign) in response.text


def test_the_send_notice_says_who_was_messaged_who_is_the_control_group_and_who_was_skipped(pm_client):
    """A walk saw "5 members match" before sending and "3 members told" after, with nothing saying why."""
    # Everyone opted out, so who is skipped does not depend on who the random draw puts in the control group.
    for member in MemberFactory.create_batch(10):
        PreferenceFactory(member=member, topic=Topic.CAMPAIGNS, channel=Channel.INBOX, opted_in=False)
    campaign = CampaignFactory(control_percent=20)

    response = pm_client.post(send_url(campaign), follow=True)

    assert CampaignRecipient.objects.filter(campaign=campaign, in_control_group=True).count() == 2
    assert not CampaignRecipient.objects.filter(campaign=campaign, delivery__isnull=False).exists()
    assert messages_of(response) == [
        "Campaign sent: 0 members messaged, 2 in the control group (sent nothing), 8 not messaged "
        "(no consent to this topic, or their weekly messages reached)."
    ]


def test_send_now_asks_first_then_sends_once(pm_client, program_manager):
    MemberFactory.create_batch(2)
    campaign = CampaignFactory()

    page = pm_client.get(send_url(campaign))
    assert page.status_code == 200
    assert "2 members match the segment now." in page.text
    assert not CampaignRecipient.objects.exists()

    response = pm_client.post(send_url(campaign), follow=True)

    assert (
        "Campaign sent: 2 members messaged, 0 in the control group (sent nothing), 0 not messaged (no consent to "
        "this topic, or their weekly messages reached)." in messages_of(response)
    )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_by) == (CampaignStatus.SENT, program_manager)
    assert pm_client.post(send_url(campaign)).status_code == 403  # sent: no second sending
    assert pm_client.post(change_url(campaign), {"name": "Renamed"}).status_code == 403  # sent: a record
    assert Delivery.objects.filter(kind=Kind.CAMPAIGN, channel=Channel.EMAIL).count() == 2


def test_send_now_with_an_empty_audience_says_why_and_sends_nothing(pm_client):
    campaign = CampaignFactory(languages=["pl"])

    response = pm_client.post(send_url(campaign), follow=True)

    assert any("No member matches the segment" in message for message in messages_of(response))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_saving_a_campaign_with_a_time_schedules_it(pm_client):
    program = ProgramFactory()
    data = {
        "program": program.pk,
        "name": "Autumn",
        "topic": Topic.CAMPAIGNS,
        "scheduled_at_0": "2030-01-02",
        "scheduled_at_1": "09:00",
        "activity": "",
        "inactive_days": 60,
        "control_percent": 10,
        "acted_within_days": 14,
        "messages-TOTAL_FORMS": 1,
        "messages-INITIAL_FORMS": 0,
        "messages-MIN_NUM_FORMS": 1,
        "messages-MAX_NUM_FORMS": 1000,
        "messages-0-role": "",
        "messages-0-subject": "Autumn {{ bogus }}",
        "messages-0-body": "Text",
    }

    refused = pm_client.post(reverse("admin:communications_campaign_add"), data)
    assert refused.status_code == 200
    assert "Unknown variable(s): bogus" in refused.text
    assert not Campaign.objects.exists()

    data["messages-0-subject"] = "Autumn for {{ first_name }}"
    pm_client.post(reverse("admin:communications_campaign_add"), data)

    campaign = Campaign.objects.get()
    assert campaign.status == CampaignStatus.SCHEDULED
    assert campaign.messages.get().subject == "Autumn for {{ first_name }}"


@pytest.mark.parametrize("client_name", ["partner_staff_client", "am_staff_client"])
def test_only_program_managers_reach_the_campaign_pages(request, client_name):
    client = request.getfixturevalue(client_name)
    MemberFactory()
    campaign = CampaignFactory()

    for url in (change_url(campaign), send_url(campaign)):
        response = client.get(url)
        assert response.status_code in (302, 403)
    assert client.post(send_url(campaign)).status_code in (302, 403)
    assert not CampaignRecipient.objects.exists()


@pytest.mark.parametrize("members", [2, 12])
def test_the_sent_campaigns_page_query_count_does_not_grow_with_its_members(
    pm_client, members, django_assert_num_queries
):
    program = ProgramFactory()
    for n in range(members):
        MemberAccountFactory(program=program, member__role=role("sales" if n % 2 else "foreman"))
    campaign = CampaignFactory(program=program, control_percent=20)
    campaign_send(campaign=campaign)
    pm_client.get(change_url(campaign))  # the content types' cache warmed, as in a running site

    with django_assert_num_queries(PAGE_QUERIES):
        response = pm_client.get(change_url(campaign))

    assert response.status_code == 200
    assert "Acting rate: the campaign group against the control group" in response.text


# Session, user, the signed-in person's membership, the campaign, its message variants, the choices of program,
# tiers, regions and roles, the recipients counted twice and the two reach queries.
PAGE_QUERIES = 13
