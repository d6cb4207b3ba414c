"""Marketing consent by region (communications.consent): where a region's law asks for consent first, marketing
reaches a member only once they opt in; elsewhere until they opt out. Transactional messages need none. The same rule
holds for one notice (notify) and for a campaign's audience (one query)."""

import pytest
from django.urls import reverse

from communications.campaigns import campaign_send
from communications.constants import Kind, Topic
from communications.models import Delivery, Preference
from communications.preferences import preferences_save
from communications.services import notify
from partners.constants import MarketingConsent
from tests.communications.factories import PreferenceFactory
from tests.communications.test_campaigns import CampaignFactory, sent_to
from tests.partners.factories import MemberFactory, PartnerFactory, RegionFactory

pytestmark = pytest.mark.usefixtures("messages_out")


def member_in(consent: str, **kwargs):
    region = RegionFactory(marketing_consent=consent)
    return MemberFactory(partner=PartnerFactory(region=region), **kwargs)


def nudged(member) -> bool:
    """Whether a marketing notice (the inactivity nudge, topic campaigns) reached the member."""
    notice = {"kind": Kind.NUDGE_INACTIVE, "source_key": f"nudge:{member.pk}", "variables": {"days": 60}}
    return bool(notify(member=member, **notice))


def test_in_an_opt_in_region_marketing_waits_for_consent_and_transactional_messages_do_not():
    member = member_in(MarketingConsent.OPT_IN)

    assert not nudged(member)
    claim = notify(kind=Kind.CLAIM_APPROVED, member=member, source_key="claim:1:approved", variables={"points": 5})
    assert claim  # a transactional message needs no consent

    PreferenceFactory(member=member, topic=Topic.CAMPAIGNS, opted_in=True)
    assert nudged(member)


def test_in_an_opt_out_region_marketing_goes_until_the_member_opts_out():
    member, opted_out = member_in(MarketingConsent.OPT_OUT), member_in(MarketingConsent.OPT_OUT)
    PreferenceFactory(member=opted_out, topic=Topic.CAMPAIGNS, opted_in=False)

    assert nudged(member)
    assert not nudged(opted_out)


def test_a_channel_chosen_without_a_word_on_consent_keeps_the_regions_rule():
    member = member_in(MarketingConsent.OPT_IN)
    PreferenceFactory(member=member, topic=Topic.CAMPAIGNS, opted_in=None, channel="sms")

    assert not nudged(member)


def test_a_campaign_reaches_in_an_opt_in_region_only_who_opted_in():
    silent = member_in(MarketingConsent.OPT_IN)
    consenting = member_in(MarketingConsent.OPT_IN)
    PreferenceFactory(member=consenting, topic=Topic.CAMPAIGNS, opted_in=True)
    elsewhere = member_in(MarketingConsent.OPT_OUT)
    opted_out = member_in(MarketingConsent.OPT_OUT)
    PreferenceFactory(member=opted_out, topic=Topic.CAMPAIGNS, opted_in=False)
    campaign = CampaignFactory()

    campaign_send(campaign=campaign)

    assert sent_to(campaign) == {consenting.pk, elsewhere.pk}
    # Everyone is a recipient (the audience as drawn); the silent ones are simply not told.
    assert set(campaign.recipients.values_list("member_id", flat=True)) == {
        silent.pk,
        consenting.pk,
        elsewhere.pk,
        opted_out.pk,
    }


def test_saving_channels_alone_records_no_consent_and_saving_the_switch_does():
    member = member_in(MarketingConsent.OPT_IN)

    preferences_save(member=member, channels={Topic.CAMPAIGNS: "inbox"}, opted_in={})
    assert Preference.objects.get(member=member, topic=Topic.CAMPAIGNS).opted_in is None

    preferences_save(member=member, channels={}, opted_in={Topic.CAMPAIGNS: True})
    assert Preference.objects.get(member=member, topic=Topic.CAMPAIGNS).opted_in is True


@pytest.mark.parametrize(("consent", "checked"), [(MarketingConsent.OPT_IN, False), (MarketingConsent.OPT_OUT, True)])
def test_the_preferences_page_shows_the_regions_default_and_says_why(client, consent, checked):
    member = member_in(consent)
    client.force_login(member.user)

    page = client.get(reverse("message_preferences")).content.decode()

    switch = page[page.index('name="campaigns-opted_in"') - 200 : page.index('name="campaigns-opted_in"') + 200]
    assert ("checked" in switch) is checked
    explained = "asks for your consent before we send you news" in page
    assert explained is (consent == MarketingConsent.OPT_IN)


def test_an_opt_in_region_is_stored_and_an_unknown_rule_refused_by_the_database():
    from django.db import IntegrityError, transaction

    region = RegionFactory(marketing_consent=MarketingConsent.OPT_IN)
    assert region.needs_opt_in
    with pytest.raises(IntegrityError), transaction.atomic():
        RegionFactory(marketing_consent="maybe")
    assert not Delivery.objects.exists()


def test_the_campaign_page_says_before_sending_how_many_can_be_reached_and_why_not_the_others(pm_client):
    from django.urls import reverse

    from communications.models import Delivery
    from tests.communications.factories import DeliveryFactory

    member_in(MarketingConsent.OPT_IN)  # no consent yet
    member_in(MarketingConsent.OPT_IN, status="active")
    reachable = member_in(MarketingConsent.OPT_OUT)
    capped = member_in(MarketingConsent.OPT_OUT)
    for week_message in range(3):
        DeliveryFactory(member=capped, topic=Topic.CAMPAIGNS, source_key=f"campaign:{900 + week_message}")
    campaign = CampaignFactory()

    page = pm_client.get(reverse("admin:communications_campaign_change", args=[campaign.pk])).content.decode()
    confirm = pm_client.get(reverse("admin:communications_campaign_send", args=[campaign.pk])).content.decode()

    assert "4 members match the segment now" in page
    assert "1 can be reached now: 2 have not consented to this topic" in page
    assert "1 have had their weekly messages" in page
    assert "1 of them can be reached now; 2 have not consented" in confirm
    assert Delivery.objects.filter(member=reachable).count() == 0  # nothing is sent by looking
