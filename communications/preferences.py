"""A member's message preferences: the channel of each topic and, for marketing topics, their consent. Saved from
the preferences page (`preferences_save`) and by the one-click unsubscribe link of a marketing e-mail
(`unsubscribe_read`, then `preference_unsubscribe`)."""

from datetime import timedelta

from django.core import signing
from django.db import models, transaction
from django.utils.translation import gettext as _

from communications.consent import consent_default
from communications.constants import Channel, Topic
from communications.models import Preference
from communications.selectors import default_channel, is_marketing, preference_choices
from communications.sending import UNSUBSCRIBE_SALT
from loyalty.common.errors import ApplicationError
from partners.models import Member

# An unsubscribe link works this long after its e-mail was sent; later the member changes their preferences.
UNSUBSCRIBE_MAX_AGE = timedelta(days=60)


class PreferenceError(models.TextChoices):
    """Why a preference or an unsubscribe link was refused (to join communications.error_codes.ErrorCode)."""

    UNKNOWN_TOPIC = "unknown_topic", "No such topic"
    UNKNOWN_CHANNEL = "unknown_channel", "No such channel"
    NOT_SWITCHABLE = "not_switchable", "Transactional messages cannot be switched off"
    NO_PHONE = "no_phone", "SMS needs a phone number"
    LINK_INVALID = "unsubscribe_link_invalid", "The unsubscribe link is not valid"
    LINK_EXPIRED = "unsubscribe_link_expired", "The unsubscribe link has expired"


def _topic_label(topic: str) -> str:
    return Topic(topic).label


@transaction.atomic
def preferences_save(*, member: Member, channels: dict[str, str], opted_in: dict[str, bool]) -> None:
    """Set the channel (`channels`) and the consent (`opted_in`, marketing topics only) of the topics named; the
    others keep theirs. A topic whose choice is the default again loses its row. Nothing is saved if any choice is
    refused."""
    for topic in {*channels, *opted_in}:
        if topic not in Topic.values:
            raise ApplicationError(
                _("There is no topic “%(topic)s”.") % {"topic": topic}, PreferenceError.UNKNOWN_TOPIC
            )
    for topic, channel in channels.items():
        if channel not in Channel.values:
            raise ApplicationError(
                _("Choose e-mail, SMS or the app for messages about %(topic)s.") % {"topic": _topic_label(topic)},
                PreferenceError.UNKNOWN_CHANNEL,
            )
        if channel == Channel.SMS and not member.phone.strip():
            raise ApplicationError(
                _("Add your mobile phone number to your profile before choosing SMS."), PreferenceError.NO_PHONE
            )
    for topic, wanted in opted_in.items():
        if not wanted and not is_marketing(topic):
            raise ApplicationError(
                _("Messages about %(topic)s are part of the program and cannot be switched off.")
                % {"topic": _topic_label(topic)},
                PreferenceError.NOT_SWITCHABLE,
            )
    # A row only for a choice that differs from the default: a topic left as it comes keeps following the
    # profile's "How should we reach you?" and the region's consent rule when either changes later.
    channel_default, consent_by_default = default_channel(member), consent_default(member)
    stored = {p.topic: p for p in Preference.objects.filter(member=member)}
    keep, back_to_default = [], []
    for topic in sorted({*channels, *opted_in}):
        row = stored.get(topic)
        channel = channels.get(topic, row.channel if row else channel_default)
        consent = opted_in.get(topic, row.opted_in if row else None)
        if not is_marketing(topic) or consent == consent_by_default:
            consent = None  # no consent to record, or the region's rule says the same
        if channel == channel_default and consent is None:
            back_to_default.append(topic)
        else:
            keep.append(Preference(member=member, topic=topic, channel=channel, opted_in=consent))
    Preference.objects.filter(member=member, topic__in=back_to_default).delete()
    if keep:
        _upsert(keep, ["channel", "opted_in"])


def unsubscribe_read(token: str) -> tuple[Member, str]:
    """The member and the marketing topic an unsubscribe link names; refused if it was tampered with, is older
    than UNSUBSCRIBE_MAX_AGE, or names someone or something that is gone."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=UNSUBSCRIBE_MAX_AGE)
    except signing.SignatureExpired:
        raise ApplicationError(
            _("This unsubscribe link has expired. Sign in to change which messages you get."),
            PreferenceError.LINK_EXPIRED,
        ) from None
    except signing.BadSignature:
        raise ApplicationError(
            _(
                "This unsubscribe link is not valid. Copy the whole link from the e-mail, or sign in to change which "
                "messages you get."
            ),
            PreferenceError.LINK_INVALID,
        ) from None
    member_id, topic = (data.get("member"), data.get("topic")) if isinstance(data, dict) else (None, None)
    member = Member.objects.filter(pk=member_id).first() if isinstance(member_id, int) else None
    if member is None or topic not in Topic.values:
        raise ApplicationError(
            _("This unsubscribe link is no longer valid. Sign in to change which messages you get."),
            PreferenceError.LINK_INVALID,
        )
    if not is_marketing(topic):
        raise ApplicationError(
            _(
                "Messages about %(topic)s are part of the program and cannot be switched off. Sign in to choose how "
                "they reach you."
            )
            % {"topic": _topic_label(topic)},
            PreferenceError.NOT_SWITCHABLE,
        )
    return member, topic


@transaction.atomic
def preference_unsubscribe(*, member: Member, topic: str) -> None:
    """Stop the marketing `topic` for the member at once; unsubscribing again changes nothing."""
    if not is_marketing(topic):
        raise ApplicationError(
            _("Messages about %(topic)s are part of the program and cannot be switched off.")
            % {"topic": _topic_label(topic)},
            PreferenceError.NOT_SWITCHABLE,
        )
    channel, _opted_in = preference_choices(member=member)[topic]
    _upsert([Preference(member=member, topic=topic, channel=channel, opted_in=False)], ["opted_in"])


def _upsert(rows: list[Preference], fields: list[str]) -> None:
    """One statement: insert the rows, or update `fields` of the member's existing row for the topic."""
    for row in rows:
        # The member is the caller's instance: no query to check it exists; the upsert handles the unique pair.
        row.full_clean(exclude=["member"], validate_unique=False, validate_constraints=False)
    Preference.objects.bulk_create(rows, update_conflicts=True, unique_fields=["member", "topic"], update_fields=fields)
