"""The one way the other apps tell a member something: `notify` (one member) and `notify_many` (a digest or a
fan-out, one statement for all). Both store one Delivery row per member and channel in the caller's transaction,
idempotently (INSERT ... ON CONFLICT DO NOTHING on kind:source:member:channel), and queue the sending of the new
e-mail and SMS rows once it commits (communications.sending); the inbox rows are delivered as they are stored."""

import logging
from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from communications.consent import marketing_allowed
from communications.constants import (
    MARKETING_TOPICS,
    Channel,
    DeliveryStatus,
    Kind,
    topic_of,
)
from communications.defaults import default_rows
from communications.models import Delivery, MessageTemplate, Preference, Suppression
from communications.rendering import render
from communications.selectors import default_channel, inbox_forget_unread_counts
from communications.sending import enqueue_sending
from communications.tips import TipPicker
from loyalty.common.links import absolute_url
from partners.models import Member

logger = logging.getLogger(__name__)

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
    members = Member.objects.select_related("user", "partner__region").in_bulk([n.member_id for n in notices])
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
        if topic in MARKETING_TOPICS and not marketing_allowed(member, preference):
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
        rendered = {}  # a text the inbox and the e-mail share (the subject, by default) is rendered once
        for channel, address in _channels(member, preference, kind):
            template = chooser.choose(channel, member.language, member.role_id)
            language = template["language"] or member.language
            subject = _render_once(rendered, template["subject"], variables, language)
            body = _render_once(rendered, template["body"], variables, language)
            rows.append(
                Delivery(
                    kind=kind,
                    channel=channel,
                    topic=topic,
                    member=member,
                    source_key=notice.source_key,
                    idempotency_key=f"{kind}:{notice.source_key}:{member.pk}:{channel}",
                    address=address,
                    subject=subject[:200],
                    body=body,
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
    enqueue_sending([delivery.pk for delivery in stored if delivery.status == DeliveryStatus.QUEUED])
    new_in_inbox = {delivery.member_id for delivery in stored if delivery.channel == Channel.INBOX}
    if new_in_inbox:  # the bells of these members count again once the messages are there
        transaction.on_commit(lambda: inbox_forget_unread_counts(new_in_inbox))
    return stored


def _render_once(rendered: dict[tuple[str, str], str], text: str, variables: dict, language: str) -> str:
    """`text` rendered with one notice's `variables` in `language`, remembered in `rendered` for its other channels."""
    key = (text, language)
    if key not in rendered:
        rendered[key] = render(text, variables, language=language)
    return rendered[key]


def _channels(member: Member, preference: Preference | None, kind: str) -> list[tuple[str, str]]:
    """(channel, address) pairs: the inbox always, and the member's channel for the topic (their choice for it, else
    their preferred one); an SMS without a phone number goes by e-mail. An invitation goes by e-mail alone: signing
    up with its link proves the address, and the invited person has no inbox yet."""
    if kind == Kind.INVITATION:
        return [(Channel.EMAIL, member.user.email.lower())]
    chosen = preference.channel if preference is not None else default_channel(member)
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
