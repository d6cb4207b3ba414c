"""Reads a member sees: their inbox (the `inbox` deliveries), its unread count for the bell, and their message
preferences. Scoped through partners.visibility: a viewer sees their own current membership's messages only;
staff and people without a membership see none."""

from django.core.cache import cache
from django.db.models import QuerySet

from communications.consent import marketing_allowed
from communications.constants import MARKETING_TOPICS, Channel, Topic
from communications.models import Delivery, Preference
from partners.constants import Channel as MemberChannel
from partners.models import Member
from partners.visibility import viewer_for

# The bell's count is cached this long; reading a message (and storing a new one) forgets it at once.
UNREAD_COUNT_SECONDS = 120


def inbox_list(*, viewer) -> QuerySet[Delivery]:
    """The viewer's inbox, newest first."""
    member = viewer_for(viewer).member
    if member is None:
        return Delivery.objects.none()
    return Delivery.objects.filter(member=member, channel=Channel.INBOX).order_by("-queued_at", "-pk")


def _unread_count_key(member_id: int) -> str:
    return f"communications:inbox-unread:{member_id}"


def inbox_unread_count(*, viewer) -> int:
    """How many of the viewer's inbox messages are unread: one query, then the cache until it is forgotten."""
    member = viewer_for(viewer).member
    if member is None:
        return 0
    key = _unread_count_key(member.pk)
    count = cache.get(key)
    if count is None:
        count = inbox_list(viewer=viewer).filter(read_at__isnull=True).count()
        cache.set(key, count, UNREAD_COUNT_SECONDS)
    return count


def inbox_forget_unread_counts(member_ids) -> None:
    """Drop the cached counts of these members (call it once the change that makes them wrong has committed)."""
    cache.delete_many([_unread_count_key(member_id) for member_id in member_ids])


def default_channel(member: Member) -> str:
    """The channel a topic comes on while the member has not chosen one for it: their preferred channel."""
    return Channel.INBOX if member.preferred_channel == MemberChannel.IN_APP else member.preferred_channel


def preference_choices(*, member: Member) -> dict[str, tuple[str, bool]]:
    """Each topic's (channel, opted in) as it applies to the member now: their choice, or the default (their
    preferred channel; consent as their region's rule has it)."""
    chosen = {p.topic: p for p in Preference.objects.filter(member=member)}
    return {
        topic: (
            chosen[topic].channel if topic in chosen else default_channel(member),
            marketing_allowed(member, chosen.get(topic)),
        )
        for topic in Topic.values
    }


def is_marketing(topic: str) -> bool:
    """Marketing topics need consent and can be switched off; every other topic is transactional."""
    return topic in MARKETING_TOPICS
