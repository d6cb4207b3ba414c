"""Campaigns: the audience of a segment (`audience`), the sending (`campaign_send`: a random control group that
receives nothing, everyone else told within their consent and the frequency cap, as notify_many would, in one
statement: communications.fanout) and the reach measured afterwards (`campaign_reach`). What members did (earned,
claimed, redeemed) and the partners' tiers come from loyalty and rewards through communications.hooks."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from itertools import batched

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.template import Context
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from communications import fanout, hooks
from communications.consent import marketing_refusers
from communications.constants import MARKETING_TOPICS, Activity, CampaignStatus, Channel, Kind
from communications.error_codes import ErrorCode
from communications.lock_objects import campaign_lock
from communications.models import Campaign, CampaignMessage, CampaignRecipient, Delivery
from communications.rendering import engine
from communications.services import Notice, notify_many
from loyalty.common.errors import ApplicationError
from partners.constants import MemberStatus
from partners.models import Member

logger = logging.getLogger(__name__)

# Members told per notify_many call: bounded memory for an audience of 100,000.
BATCH = 2000
CAP_WINDOW = timedelta(days=7)


def source_key(campaign: Campaign) -> str:
    return f"campaign:{campaign.pk}"


# The audience ----------------------------------------------------------------------------------------------------


def audience(campaign: Campaign) -> QuerySet[Member]:
    """The members the campaign's segment names: active members (invited ones for "invited but not joined") of the
    chosen partner types, tiers, regions, roles and languages (none chosen: all), filtered by their activity."""
    invited = campaign.activity == Activity.INVITED_NOT_JOINED
    members = Member.objects.filter(status=MemberStatus.INVITED if invited else MemberStatus.ACTIVE).order_by()
    if campaign.partner_kinds:
        members = members.filter(partner__kind__in=campaign.partner_kinds)
    if campaign.languages:
        members = members.filter(language__in=campaign.languages)
    regions, roles, tiers = _chosen(campaign)
    if regions:
        members = members.filter(partner__region_id__in=regions)
    if roles:
        members = members.filter(role_id__in=roles)
    if tiers:
        in_tiers = Q(pk__in=[])
        for provider in hooks.tier_partner_providers:
            in_tiers |= Q(partner_id__in=provider(tier_ids=tiers))
        members = members.filter(in_tiers)
    if campaign.activity == Activity.NO_POINTS:
        since = timezone.now() - timedelta(days=campaign.inactive_days)
        members = _excluding(members, hooks.EARNED, program_id=campaign.program_id, since=since)
    elif campaign.activity == Activity.NEVER_REDEEMED:
        members = _excluding(members, hooks.REDEEMED, program_id=campaign.program_id)
    return members


def _chosen(campaign: Campaign) -> tuple[list[int], list[int], list[int]]:
    """The ids of the regions, roles and tiers the segment names (empty: all)."""
    if campaign.pk is None:
        return [], [], []
    return (
        list(campaign.regions.values_list("pk", flat=True)),
        list(campaign.roles.values_list("pk", flat=True)),
        list(campaign.tiers.values_list("pk", flat=True)),
    )


def _excluding(members: QuerySet, activity: str, **window) -> QuerySet:
    did = hooks.members_who(activity, **window)
    return members if did is None else members.exclude(pk__in=did)


@dataclass(frozen=True)
class AudienceNow:
    """A campaign's audience before it is sent: how many match the segment, and how many of them it cannot reach
    now — no consent to its topic (opted out, or not opted in where their region asks for consent first), or their
    weekly marketing messages reached. One query."""

    size: int
    no_consent: int
    capped: int

    @property
    def reachable(self) -> int:
        return self.size - self.no_consent - self.capped


def audience_now(campaign: Campaign) -> AudienceNow:
    refusing = Q(pk__in=marketing_refusers(campaign.topic))
    counts = audience(campaign).aggregate(
        size=Count("pk"),
        no_consent=Count("pk", filter=refusing),
        capped=Count("pk", filter=Q(pk__in=capped_members()) & ~refusing),
    )
    return AudienceNow(**counts)


def control_size(audience_size: int, percent: int) -> int:
    """How many of the audience form the control group (rounded half up)."""
    return (audience_size * percent + 50) // 100


# Sending ---------------------------------------------------------------------------------------------------------


def campaign_send(*, campaign: Campaign, actor=None) -> Campaign:
    """Send the campaign once: store its audience as recipients with a random control group (reproducible: ordered
    by a hash of the campaign and member ids), and tell the others (not opted out of the campaign's topic, under
    the frequency cap) as notify_many would; the deliveries go out after commit. Refused when it was sent or
    cancelled before, when its audience is empty, or when some members would have no message."""
    with transaction.atomic():
        locked = campaign_lock(campaign.pk)
        if locked is None or not locked.can_send():
            raise ApplicationError(
                _("The campaign “%(name)s” was sent or cancelled before: it is sent only once.") % {"name": campaign},
                code=ErrorCode.CAMPAIGN_SENT,
            )
        members = audience(locked)
        size = members.count()
        if size == 0:
            raise ApplicationError(
                _("No member matches the segment of “%(name)s”: widen it before sending.") % {"name": locked},
                code=ErrorCode.CAMPAIGN_EMPTY,
            )
        variants = {message.role_id: message for message in locked.messages.all()}
        if None not in variants and members.exclude(role_id__in=list(variants)).exists():
            raise ApplicationError(
                _("Some members of the audience have a role with no message: add a message for everyone else."),
                code=ErrorCode.CAMPAIGN_NO_MESSAGE,
            )
        _tell(locked, variants, members, size)
        locked.status, locked.sent_at, locked.sent_by = CampaignStatus.SENT, timezone.now(), actor
        locked.save(update_fields=["status", "sent_at", "sent_by", "updated_at"])
    return locked


def _tell(campaign: Campaign, variants: dict[int | None, CampaignMessage], members: QuerySet, size: int) -> None:
    """Store the recipients and everyone's messages in one statement (communications.fanout); when a template uses
    what differs per member (their name, company, tip, ...) in a way only Python renders (under a filter, in an
    {% if %}), store the recipients, then tell them through notify_many, BATCH members at a time."""
    drawn = _drawn(campaign, members, size)
    if not fanout.tell(
        campaign=campaign,
        source_key=source_key(campaign),
        variants=variants,
        members=members,
        drawn=drawn,
        told=_told(campaign),
    ):
        _store_recipients(campaign, drawn)
        _tell_each(campaign, variants)


def _drawn(campaign: Campaign, members: QuerySet, size: int) -> tuple[str, list]:
    """SQL: each member of the audience (member_id) and whether they are in the control group (in_control_group):
    the first control_size of them in the order of md5(campaign id, member id)."""
    select, params = members.values("pk").query.sql_with_params()
    return (
        "SELECT a.id AS member_id, "
        "row_number() OVER (ORDER BY md5(%s || ':' || a.id::text), a.id) <= %s AS in_control_group "
        f"FROM ({select}) AS a(id)",
        [str(campaign.pk), control_size(size, campaign.control_percent), *params],
    )


def capped_members() -> QuerySet:
    """The ids of the members who have had MARKETING_MESSAGES_PER_WEEK marketing messages in the last 7 days (a
    subquery): the frequency cap, for campaigns and nudges alike."""
    return (
        Delivery.objects.filter(topic__in=MARKETING_TOPICS, queued_at__gte=timezone.now() - CAP_WINDOW)
        .values("member_id")
        .annotate(messages=Count("source_key", distinct=True))
        .filter(messages__gte=settings.MARKETING_MESSAGES_PER_WEEK)
        .values("member_id")
    )


def _told(campaign: Campaign) -> tuple[str, list]:
    """SQL: the condition on a recipient (member_id, in_control_group) to be told: outside the control group,
    consenting to the campaign's topic (communications.consent) and under the frequency cap. Both ways of telling
    use it."""
    capped, capped_params = capped_members().query.sql_with_params()
    refusers, refusers_params = marketing_refusers(campaign.topic).query.sql_with_params()
    return (
        f"NOT in_control_group AND member_id NOT IN ({capped}) AND member_id NOT IN ({refusers})",
        [*capped_params, *refusers_params],
    )


def _store_recipients(campaign: Campaign, drawn: tuple[str, list]) -> None:
    """Every member of the audience, with their place in or out of the control group, in one INSERT ... SELECT."""
    select, params = drawn
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {CampaignRecipient._meta.db_table} (campaign_id, member_id, in_control_group) "
            f"SELECT %s, member_id, in_control_group FROM ({select}) AS drawn "
            "ON CONFLICT (campaign_id, member_id) DO NOTHING",
            [campaign.pk, *params],
        )


def _to_tell(campaign: Campaign) -> list[int]:
    """The ids of the campaign's recipients to tell (_told), in order."""
    told, params = _told(campaign)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT member_id FROM {CampaignRecipient._meta.db_table} WHERE campaign_id = %s AND {told} "
            "ORDER BY member_id",
            [campaign.pk, *params],
        )
        return [member_id for (member_id,) in cursor.fetchall()]


def _tell_each(campaign: Campaign, variants: dict[int | None, CampaignMessage]) -> None:
    """Tell the stored recipients to tell through notify_many, BATCH members at a time, each given their role's
    variant rendered for them as its title and message; link each recipient to their delivery."""
    # Each variant is compiled once (rendering.render compiles per call) and rendered for each member.
    compiled = {
        role_id: (engine.from_string(message.subject), engine.from_string(message.body))
        for role_id, message in variants.items()
    }
    for batch in batched(_to_tell(campaign), BATCH):
        members = Member.objects.select_related("user", "partner").in_bulk(batch)
        notices = []
        for member in members.values():
            subject, body = compiled.get(member.role_id) or compiled[None]
            variables = Context(
                {"first_name": member.user.get_short_name(), "partner_name": member.partner.name, "link": ""},
                autoescape=False,  # plain text, like every message (rendering.engine): pages escape it
                use_l10n=True,
            )
            with override(member.language):
                title, message = subject.render(variables).strip(), body.render(variables).strip()
            notices.append(Notice(member.pk, source_key(campaign), {"title": title[:200], "message": message}))
        _link_deliveries(campaign, notify_many(kind=Kind.CAMPAIGN, notices=notices))


def _link_deliveries(campaign: Campaign, deliveries: list[Delivery]) -> None:
    """Each recipient's delivery on their chosen channel (the inbox one when the inbox is their channel)."""
    chosen: dict[int, int] = {}
    for delivery in deliveries:
        if delivery.channel != Channel.INBOX or delivery.member_id not in chosen:
            chosen[delivery.member_id] = delivery.pk
    if not chosen:
        return
    table = CampaignRecipient._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS r SET delivery_id = d.delivery_id "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS d(member_id, delivery_id) "
            "WHERE r.campaign_id = %s AND r.member_id = d.member_id",
            [list(chosen), list(chosen.values()), campaign.pk],
        )


def campaigns_due() -> list[int]:
    return list(
        Campaign.objects.filter(status=CampaignStatus.SCHEDULED, scheduled_at__lte=timezone.now())
        .order_by("scheduled_at", "pk")
        .values_list("pk", flat=True)
    )


def campaign_send_due() -> int:
    """Send the scheduled campaigns whose time has come (the periodic task); one that is refused (an empty
    audience, say) is logged and cancelled, so it is not tried again every few minutes."""
    sent = 0
    for campaign_id in campaigns_due():
        campaign = Campaign.objects.get(pk=campaign_id)
        try:
            campaign_send(campaign=campaign)
        except ApplicationError as exc:
            logger.warning("Scheduled campaign %s not sent: %s", campaign_id, exc.message)
            Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SCHEDULED).update(
                status=CampaignStatus.CANCELLED, updated_at=timezone.now()
            )
        else:
            sent += 1
    return sent


def campaign_save(*, campaign: Campaign) -> Campaign:
    """Save a campaign that was not sent: scheduled when it has a time to be sent at, else a draft."""
    if not campaign.can_send():
        raise ApplicationError(
            _("The campaign “%(name)s” was sent or cancelled: it cannot change any more.") % {"name": campaign},
            code=ErrorCode.CAMPAIGN_SENT,
        )
    campaign.status = CampaignStatus.SCHEDULED if campaign.scheduled_at else CampaignStatus.DRAFT
    campaign.full_clean()
    campaign.save()
    return campaign


# Reach -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelReach:
    channel: str
    role: str
    sent: int
    delivered: int
    opened: int
    clicked: int
    acted: int

    @property
    def channel_label(self) -> str:
        return Channel(self.channel).label


@dataclass(frozen=True)
class GroupReach:
    """The members of one role (or all: role "") in the told group (everyone outside the control group, told or
    not: the groups are compared as drawn) and in the control group, and how many of each acted."""

    role: str
    members: int
    acted: int
    control_members: int
    control_acted: int

    @property
    def rate(self) -> Decimal | None:
        return _percent(self.acted, self.members)

    @property
    def control_rate(self) -> Decimal | None:
        return _percent(self.control_acted, self.control_members)

    @property
    def effect(self) -> Decimal | None:
        """The difference in acting rate, in percentage points: the campaign's effect."""
        if self.rate is None or self.control_rate is None:
            return None
        return self.rate - self.control_rate


@dataclass(frozen=True)
class Reach:
    channels: list[ChannelReach]
    groups: list[GroupReach]
    total: GroupReach


def _percent(part: int, whole: int) -> Decimal | None:
    return None if not whole else (Decimal(100) * part / whole).quantize(Decimal("0.1"))


def _acted(campaign: Campaign, field: str) -> Q:
    """Whether the member (`field` names their id) earned, claimed or redeemed within acted_within_days after the
    campaign was sent."""
    until = campaign.sent_at + timedelta(days=campaign.acted_within_days)
    acted = Q(pk__in=[])
    for activity in (hooks.EARNED, hooks.CLAIMED, hooks.REDEEMED):
        did = hooks.members_who(activity, program_id=campaign.program_id, since=campaign.sent_at, until=until)
        if did is not None:
            acted |= Q(**{f"{field}__in": did})
    return acted


def campaign_reach(campaign: Campaign) -> Reach | None:
    """Per channel and role: messages sent, delivered, opened (or read in the inbox), clicked, and the members who
    acted; per role and in all: the acting rate of the told group against the control group. Two queries; None
    before the campaign is sent."""
    if campaign.sent_at is None:
        return None
    acted = _acted(campaign, "member_id")
    channels = [
        ChannelReach(row["channel"], row["member__role__name"], *(row[key] for key in _COUNTS))
        for row in Delivery.objects.filter(
            kind=Kind.CAMPAIGN,
            source_key=source_key(campaign),
            member_id__in=campaign.recipients.values("member_id"),
        )
        .values("channel", "member__role__sort_order", "member__role__name")
        .annotate(
            sent=Count("pk", filter=Q(sent_at__isnull=False) | Q(channel=Channel.INBOX)),
            delivered=Count("pk", filter=Q(delivered_at__isnull=False)),
            opened=Count("pk", filter=Q(opened_at__isnull=False) | Q(read_at__isnull=False)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
            acted=Count("pk", filter=acted),
        )
        .order_by("channel", "member__role__sort_order", "member__role__name")
    ]
    counts: dict[str, list[int]] = {}
    for row in (
        campaign.recipients.values("in_control_group", "member__role__sort_order", "member__role__name")
        .annotate(members=Count("pk"), acted=Count("pk", filter=acted))
        .order_by("member__role__sort_order", "member__role__name")
    ):
        group = counts.setdefault(row["member__role__name"], [0, 0, 0, 0])
        offset = 2 if row["in_control_group"] else 0
        group[offset], group[offset + 1] = row["members"], row["acted"]
    groups = [GroupReach(role, *numbers) for role, numbers in counts.items()]
    total = GroupReach("", *(sum(numbers[i] for numbers in counts.values()) for i in range(4)))
    return Reach(channels=channels, groups=groups, total=total)


_COUNTS = ("sent", "delivered", "opened", "clicked", "acted")
