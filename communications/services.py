"""The one way the other apps tell a member something: `notify` (one member) and `notify_many` (a digest or a
fan-out, one statement for all). Both store one Delivery row per member and channel in the caller's transaction,
idempotently (INSERT ... ON CONFLICT DO NOTHING on kind:source:member:channel), and queue the sending of the new
e-mail and SMS rows once it commits; the inbox rows are delivered as they are stored. `delivery_send` is the body
of the sending task."""

import logging
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from email.utils import make_msgid
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from communications import sms
from communications.constants import (
    MARKETING_TOPICS,
    MAX_ATTEMPTS,
    QUIET_HOURS_END,
    QUIET_HOURS_START,
    RETRY_DELAYS_SECONDS,
    Channel,
    DeliveryStatus,
    topic_of,
)
from communications.defaults import default_rows
from communications.error_codes import ErrorCode
from communications.lock_objects import delivery_lock
from communications.models import Delivery, MessageTemplate, Preference, Suppression
from communications.rendering import render
from communications.selectors import inbox_forget_unread_counts
from communications.tips import TipPicker
from loyalty.common.background import enqueue_on_commit
from loyalty.common.errors import ApplicationError
from loyalty.common.links import absolute_url, site_hostname
from partners.constants import Channel as MemberChannel
from partners.models import Member

logger = logging.getLogger(__name__)

SEND_TASK = "communications.tasks.send_delivery"
FALLBACK_LANGUAGE = "en"


class Notice(NamedTuple):
    """One member's part of a notify_many: the event it tells about and the kind's variables (plain values)."""

    member_id: int
    source_key: str
    variables: dict


def notify(*, kind: str, member: Member, source_key: str, variables: dict, link_path: str = "") -> list[Delivery]:
    """Tell `member` about the event `source_key` (e.g. "claim:12:approved") with a message of `kind`; returns the
    deliveries stored now (none when the event was told before)."""
    return notify_many(kind=kind, notices=[Notice(member.pk, source_key, variables)], link_path=link_path)


def notify_many(*, kind: str, notices: Iterable[Notice], link_path: str = "") -> list[Delivery]:
    """Tell each notice's member; a fixed number of queries however many members (a digest of an import), none
    for no one."""
    notices = list(notices)
    if not notices:
        return []
    with transaction.atomic():
        return _store(kind, notices, link_path)


def _store(kind: str, notices: list[Notice], link_path: str) -> list[Delivery]:
    topic = topic_of(kind)
    members = Member.objects.select_related("user", "partner").in_bulk([n.member_id for n in notices])
    preferences = {p.member_id: p for p in Preference.objects.filter(member_id__in=list(members), topic=topic)}
    chooser = _TemplateChooser(kind)
    tips = TipPicker()
    link = absolute_url(link_path) if link_path else ""
    now = timezone.now()
    rows = []
    for notice in notices:
        member = members.get(notice.member_id)
        if member is None:
            continue
        preference = preferences.get(member.pk)
        if topic in MARKETING_TOPICS and preference is not None and not preference.opted_in:
            continue
        variables = {
            "first_name": member.user.get_short_name(),
            "partner_name": member.partner.name,
            "link": link,
            # Read (one query for all) only if a template shows it; a notice may name the event's product line.
            "tip": tips.lazy_tip(
                member=member, source_key=notice.source_key, product_line=notice.variables.get("product_line", "")
            ),
            **notice.variables,
        }
        for channel, address in _channels(member, preference):
            template = chooser.choose(channel, member.language, member.role_id)
            language = template["language"] or member.language
            rows.append(
                Delivery(
                    kind=kind,
                    channel=channel,
                    topic=topic,
                    member=member,
                    source_key=notice.source_key,
                    idempotency_key=f"{kind}:{notice.source_key}:{member.pk}:{channel}",
                    address=address,
                    subject=render(template["subject"], variables, language=language)[:200],
                    body=render(template["body"], variables, language=language),
                    link=link,
                    status=DeliveryStatus.DELIVERED if channel == Channel.INBOX else DeliveryStatus.QUEUED,
                    queued_at=now,
                    delivered_at=now if channel == Channel.INBOX else None,
                )
            )
    suppressed = set(
        Suppression.objects.filter(address__in={row.address for row in rows if row.address}).values_list(
            "address", flat=True
        )
    )
    for row in rows:
        if row.address in suppressed:
            row.status = DeliveryStatus.SUPPRESSED
    stored = _insert_new(rows)
    for delivery in stored:
        if delivery.status == DeliveryStatus.QUEUED:
            enqueue_on_commit(SEND_TASK, delivery.pk)
    new_in_inbox = {delivery.member_id for delivery in stored if delivery.channel == Channel.INBOX}
    if new_in_inbox:  # the bells of these members count again once the messages are there
        transaction.on_commit(lambda: inbox_forget_unread_counts(new_in_inbox))
    return stored


def _channels(member: Member, preference: Preference | None) -> list[tuple[str, str]]:
    """(channel, address) pairs: the inbox always, and the member's channel for the topic (their preferred one
    unless they chose another for it); an SMS without a phone number goes by e-mail."""
    chosen = preference.channel if preference is not None else member.preferred_channel
    if chosen == MemberChannel.IN_APP:
        chosen = Channel.INBOX
    if chosen == Channel.SMS and not member.phone.strip():
        chosen = Channel.EMAIL
    pairs = [(Channel.INBOX, "")]
    if chosen == Channel.EMAIL:
        pairs.append((Channel.EMAIL, member.user.email.lower()))
    elif chosen == Channel.SMS:
        pairs.append((Channel.SMS, member.phone.strip()))
    return pairs


class _TemplateChooser:
    """The kind's active templates, read once; `choose` walks the fallback chain for one member: language and
    role, language, role, any, then the same in English, then the built-in default."""

    def __init__(self, kind: str):
        self.kind = kind
        self.templates = {
            (t.channel, t.language, t.role_id): {"subject": t.subject, "body": t.body, "language": t.language}
            for t in MessageTemplate.objects.filter(kind=kind, active=True)
        }

    def choose(self, channel: str, language: str, role_id: int | None) -> dict:
        for lang in dict.fromkeys([language, FALLBACK_LANGUAGE]):
            for key in ((channel, lang, role_id), (channel, lang, None), (channel, "", role_id), (channel, "", None)):
                if key in self.templates:
                    return self.templates[key]
        return next(
            {**row, "language": FALLBACK_LANGUAGE}
            for row in default_rows()
            if row["kind"] == self.kind and row["channel"] == channel and row["language"] == FALLBACK_LANGUAGE
        )


_COLUMNS = (
    "kind", "channel", "topic", "member_id", "source_key", "idempotency_key", "address", "subject", "body", "link",
    "status", "queued_at", "delivered_at",
)  # fmt: skip
_TYPES = (
    "text", "text", "text", "bigint", "text", "text", "text", "text", "text", "text", "text", "timestamptz",
    "timestamptz",
)  # fmt: skip


def _insert_new(rows: list[Delivery]) -> list[Delivery]:
    """Store the rows whose idempotency key is new, in one statement; returns those (with their ids)."""
    if not rows:
        return []
    arrays = [[getattr(row, column) for row in rows] for column in _COLUMNS]
    unnest = ", ".join(f"%s::{kind}[]" for kind in _TYPES)
    names = ", ".join(_COLUMNS)
    sql = (
        f"INSERT INTO {Delivery._meta.db_table} ({names}, attempts, last_error, provider_id, created_at, updated_at) "
        f"SELECT {names}, 0, '', '', now(), now() FROM unnest({unnest}) AS r({names}) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        ids = dict((key, pk) for pk, key in cursor.fetchall())
    stored = []
    for row in rows:
        if row.idempotency_key in ids:
            row.pk = ids[row.idempotency_key]
            row._state.adding = False
            stored.append(row)
    return stored


# Sending --------------------------------------------------------------------------------------------------------


def delivery_send(*, delivery_id: int) -> Delivery | None:
    """Send one queued e-mail or SMS (the task's body): a delivery that is not queued, or held until later, is left
    alone, so a repeated task sends nothing twice. A failure is tried again later (RETRY_DELAYS_SECONDS) and marked
    failed after MAX_ATTEMPTS; an SMS in the member's quiet hours is held until the morning."""
    with transaction.atomic():
        delivery = delivery_lock(delivery_id)
        now = timezone.now()
        if delivery is None or delivery.status != DeliveryStatus.QUEUED:
            return delivery
        if delivery.not_before is not None and delivery.not_before > now:
            return delivery
        if delivery.channel == Channel.SMS:
            morning = quiet_hours_end(now, _member_zone(delivery.member))
            if morning is not None:
                delivery.not_before = morning
                delivery.save(update_fields=["not_before", "updated_at"])
                return delivery
        delivery.attempts += 1
        try:
            delivery.provider_id = _send(delivery)
        except Exception as exc:  # a provider's or a network's failure: recorded and tried again
            logger.warning("Delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts, exc)
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
            hopeless = isinstance(exc, sms.SmsError) and not exc.retryable
            if hopeless or delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.FAILED
            else:
                delivery.not_before = now + timedelta(seconds=RETRY_DELAYS_SECONDS[delivery.attempts - 1])
        else:
            delivery.status, delivery.sent_at, delivery.last_error = DeliveryStatus.SENT, now, ""
        delivery.save(
            update_fields=["attempts", "provider_id", "last_error", "status", "sent_at", "not_before", "updated_at"]
        )
        return delivery


# A queued row nobody held and nobody sent within this time lost its task (a broker restart): the sweep sends it.
LOST_AFTER = timedelta(minutes=10)


def deliveries_due(limit: int = 1000) -> list[int]:
    """The queued e-mail and SMS whose hold (quiet hours, a retry's wait) is over, or whose task was lost."""
    now = timezone.now()
    return list(
        Delivery.objects.filter(status=DeliveryStatus.QUEUED)
        .filter(Q(not_before__lte=now) | Q(not_before__isnull=True, queued_at__lte=now - LOST_AFTER))
        .order_by("queued_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def _member_zone(member: Member) -> ZoneInfo:
    # Members carry no time zone yet: the program's (settings.TIME_ZONE) stands for everyone's.
    return ZoneInfo(settings.TIME_ZONE)


def quiet_hours_end(moment: datetime, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours around `moment` end in `zone` (08:00 of the same or the next day), or None if
    `moment` is outside them."""
    local = moment.astimezone(zone)
    if QUIET_HOURS_END <= local.hour < QUIET_HOURS_START:
        return None
    day = local.date() if local.hour < QUIET_HOURS_END else local.date() + timedelta(days=1)
    return datetime.combine(day, time(QUIET_HOURS_END), tzinfo=zone)


def _send(delivery: Delivery) -> str:
    """Hand the message to its channel; returns the provider's id of it."""
    if delivery.channel == Channel.SMS:
        return sms.send_sms(delivery.address, _sms_text(delivery))
    message = EmailMessage(
        subject=delivery.subject,
        body=delivery.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.address],
        headers=_headers(delivery),
    )
    message.send()
    # An anymail provider reports by its own id of the message; any other backend, by our Message-ID.
    status = getattr(message, "anymail_status", None)
    if status is not None and status.message_id is not None:
        return str(status.message_id)
    return message.extra_headers["Message-ID"]


def _sms_text(delivery: Delivery) -> str:
    """The text in at most two segments, the link kept whole at the end."""
    return sms.fit_sms(delivery.body, delivery.link)


UNSUBSCRIBE_SALT = "communications.unsubscribe"


def unsubscribe_token(delivery: Delivery) -> str:
    """A signed token naming the member and topic of `delivery`, for the one-click unsubscribe link."""
    return signing.dumps({"member": delivery.member_id, "topic": delivery.topic}, salt=UNSUBSCRIBE_SALT)


def _headers(delivery: Delivery) -> dict[str, str]:
    """Our own Message-ID (the provider's reports name it); a marketing e-mail can be unsubscribed from in one
    click (RFC 8058), through a signed link that needs no sign-in."""
    headers = {"Message-ID": make_msgid(domain=site_hostname())}
    if delivery.topic in MARKETING_TOPICS:
        headers["List-Unsubscribe"] = f"<{absolute_url(f'/messages/unsubscribe/{unsubscribe_token(delivery)}/')}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


RESENDABLE = (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED, DeliveryStatus.SUPPRESSED)


@transaction.atomic
def delivery_resend(*, delivery: Delivery) -> Delivery:
    """Queue a failed (or bounced, or suppressed) e-mail or SMS again, from the program team's log."""
    locked = delivery_lock(delivery.pk)
    if locked.channel == Channel.INBOX or locked.status not in RESENDABLE:
        raise ApplicationError(
            "Only failed, bounced or suppressed e-mail and SMS messages can be sent again.",
            code=ErrorCode.NOT_RESENDABLE,
        )
    locked.status, locked.attempts, locked.not_before, locked.last_error = DeliveryStatus.QUEUED, 0, None, ""
    locked.save(update_fields=["status", "attempts", "not_before", "last_error", "updated_at"])
    enqueue_on_commit(SEND_TASK, locked.pk)
    return locked
