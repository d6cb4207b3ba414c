"""A campaign's messages stored in one INSERT ... SELECT for its whole audience, instead of one Python round per member
(campaigns._tell_each stores the same rows through notify_many). Each template a group of members gets (their role's
variant and the campaign kind's template for their language and channel) is rendered once with placeholders for what
differs per member (first name, company, tip, and the campaign's title and message made from those), and the database
joins the pieces with each member's values. That is exact only while a template shows each such variable as it is,
`{{ first_name }}`: no filter, no lookup, no {% if %} on it. `tell` checks and refuses otherwise (the campaign then
goes the Python way). Who gets which channel, at which address and in which status is notify_many's rule
(services._store, _channels), said again here in SQL; tests/communications/test_fanout.py compares both ways."""

import re
import zlib
from functools import partial

from django.db import connection, transaction
from django.db.models import QuerySet
from django.template import Context
from django.template.base import VariableNode
from django.template.defaulttags import IfNode
from django.utils import timezone
from django.utils.translation import override

from communications.constants import Channel, DeliveryStatus, Kind, topic_of
from communications.models import Campaign, CampaignMessage, CampaignRecipient, Delivery, Preference, Suppression
from communications.rendering import _condition_names, _names, compiled
from communications.selectors import inbox_forget_unread_counts
from communications.sending import enqueue_sending
from communications.services import _TemplateChooser
from communications.tips import TipPicker, _specificity
from loyalty.common.links import absolute_url
from partners.constants import Channel as MemberChannel
from partners.models import Member, Partner, User

# What differs per member, by the name a template uses: in a variant (campaigns._tell_each gives it these and `link`,
# always empty), and in the campaign kind's template (notify_many adds the tip and the variant's title and message).
VARIANT_VALUES = ("first_name", "partner_name")
TEMPLATE_VALUES = ("first_name", "partner_name", "tip", "title", "message")

# Every character str.strip() and str.split() take for whitespace (str.isspace()), so that the database trims and
# splits names as Python does (tests/communications/test_fanout.py checks the list).
WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"  # noqa: E501
# User.get_short_name: the first word of the full name, else the e-mail address.
FIRST_WORD = f"^[{WHITESPACE}]*([^{WHITESPACE}]+)"

# A placeholder cannot occur in a template's own text: the database cannot store the NUL character.
_PLACEHOLDER = re.compile("\x00([a-z_]+)\x00")


def shows_as_is(text: str, names) -> bool:
    """Whether the template `text` shows each of `names` only as it is ({{ name }}), never under a filter or a
    lookup, as a filter's argument or in an {% if %}: then its output is the same text around each value."""
    nodelist = compiled(text).nodelist
    for node in nodelist.get_nodes_by_type(VariableNode):
        expression = node.filter_expression
        lookups = getattr(expression.var, "lookups", None) or ()
        if (expression.filters or len(lookups) > 1) and _names(expression) & set(names):
            return False
    for node in nodelist.get_nodes_by_type(IfNode):
        if any(_condition_names(condition) & set(names) for condition, _nodes in node.conditions_nodelists):
            return False
    return True


def tell(
    *,
    campaign: Campaign,
    source_key: str,
    variants: dict[int | None, CampaignMessage],
    members: QuerySet[Member],
    drawn: tuple[str, list],
    told: tuple[str, list],
) -> bool:
    """Store the campaign's recipients (`drawn`: SQL of each member of the audience `members` and whether they are in
    the control group) and the deliveries of those to tell (`told`: SQL of the condition on a recipient) as
    notify_many would (kind campaign, event `source_key`), each recipient linked to theirs; queue the sending of the
    new e-mails and SMS and forget the bells of who got a new inbox message, once it commits. False, with nothing
    stored, when a template shows a per-member variable other than as it is."""
    groups = list(members.values_list("role_id", "language").distinct().order_by("role_id", "language"))
    if not groups:
        return True
    chooser, picker = _TemplateChooser(Kind.CAMPAIGN), TipPicker()
    templates = [chooser.choose(channel, language, role_id) for role_id, language in groups for channel in Channel]
    if not all(
        shows_as_is(variant.subject, VARIANT_VALUES) and shows_as_is(variant.body, VARIANT_VALUES)
        for variant in variants.values()
    ) or not all(
        shows_as_is(template["subject"], TEMPLATE_VALUES) and shows_as_is(template["body"], TEMPLATE_VALUES)
        for template in templates
    ):
        return False
    sql, params = _statement(
        campaign_id=campaign.pk,
        source_key=source_key,
        groups=[
            _Group(number, role_id, language, variants.get(role_id) or variants[None], chooser, picker, source_key)
            for number, (role_id, language) in enumerate(groups, 1)
        ],
        drawn=drawn,
        told=told,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Compiling this statement's many text expressions (JIT) would take longer than running them: seconds.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        queued, in_inbox = cursor.fetchone()
        enqueue_sending(queued or [])
        if in_inbox:  # their bells count again once the messages are there
            transaction.on_commit(partial(inbox_forget_unread_counts, in_inbox))
    return True


class _Group:
    """The members of one role and language: the SQL of their campaign title and message, and of the subject and
    body of each channel's message."""

    def __init__(self, number, role_id, language, variant: CampaignMessage, chooser, picker: TipPicker, source_key):
        self.number, self.role_id, self.language = number, role_id, language
        self.picker, self.source_key = picker, source_key
        self._tips: list[str] | None = None
        with override(language):  # as campaigns._tell_each renders the variant
            self.title = _trimmed(self._sql(_pieces(variant.subject, VARIANT_VALUES)), limit=200)
            self.message = _trimmed(self._sql(_pieces(variant.body, VARIANT_VALUES)))
        self.channels = {}
        for channel in Channel:
            template = chooser.choose(channel, language, role_id)
            with override(template["language"] or language):  # as services.render renders the kind's template
                self.channels[channel] = (
                    _trimmed(self._sql(_pieces(template["subject"], TEMPLATE_VALUES)), limit=200),
                    _trimmed(self._sql(_pieces(template["body"], TEMPLATE_VALUES))),
                )

    def _sql(self, pieces: list[str]) -> tuple[str, list]:
        """The SQL joining `pieces` (text, then a placeholder's name, then text, ...) with the member's values (the
        columns of the fan-out's `t`), and its parameters."""
        parts, params = [], []
        for n, piece in enumerate(pieces):
            if n % 2 == 0:
                if piece:
                    parts.append("%s::text")
                    params.append(piece)
            elif piece == "tip":
                part, tip_params = self._tip_sql()
                parts.append(part)
                params += tip_params
            else:
                parts.append(f"t.{piece}")
        if not parts:
            return "''::text", []
        return f"({' || '.join(parts)})", params

    def _tip_sql(self) -> tuple[str, list]:
        """The member's tip, as TipPicker.tip picks it: among the best-fitting tips of the pool for the group's role
        and language (ordered by id), the one at (member id + crc32 of the event) modulo their number."""
        if self._tips is None:
            self._tips = _tip_choices(self.picker, role_id=self.role_id, language=self.language)
        if not self._tips:
            return "''::text", []
        return "(%s::text[])[1 + (t.member_id + %s) %% %s]", [
            self._tips,
            zlib.crc32(self.source_key.encode()),
            len(self._tips),
        ]


def _pieces(text: str, names) -> list[str]:
    """The template `text` rendered (in the active language) with a placeholder for each of `names` and an empty
    link, split around the placeholders: text, a value's name, text, ..."""
    placeholders = {name: f"\x00{name}\x00" for name in names}
    rendered = compiled(text).render(Context({**placeholders, "link": ""}, autoescape=False, use_l10n=True))
    return _PLACEHOLDER.split(rendered)


def _trimmed(sql: tuple[str, list], *, limit: int | None = None) -> tuple[str, list]:
    """`sql` stripped as str.strip() strips (services.render), cut to `limit` characters as [:limit] cuts."""
    text, params = sql
    trimmed = f"btrim({text}, %s)"
    if limit is not None:
        trimmed = f"left({trimmed}, {int(limit)})"
    return trimmed, [*params, WHITESPACE]


def _tip_choices(picker: TipPicker, *, role_id: int, language: str) -> list[str]:
    """The tips TipPicker.tip chooses among for a member of this role and language when the event names no
    product line, in its order, as the message shows them."""
    fitting = [
        tip
        for tip in picker._active()
        if tip.role_id in (None, role_id) and tip.language in ("", language) and tip.product_line == ""
    ]
    if not fitting:
        return []
    best = max(_specificity(tip) for tip in fitting)
    return [
        f"{tip.text} {absolute_url(tip.link_path)}" if tip.link_path else tip.text
        for tip in fitting
        if _specificity(tip) == best
    ]


def _emails_lowered() -> tuple[list[int], list[str]]:
    """The users whose e-mail address is not all ASCII, and their address lower-cased as str.lower() does it
    (services._channels): the database's lower() differs for a few letters, such as İ or a final Σ."""
    rows = list(User.objects.filter(email__regex=r"[^[:ascii:]]").values_list("pk", "email"))
    return [pk for pk, _email in rows], [email.lower() for _pk, email in rows]


def _case(groups: list[_Group], value) -> tuple[str, list]:
    """CASE on the member's group of `value(group)`, an (sql, params) pair."""
    sql, params = ["CASE t.group_number"], []
    for group in groups:
        text, more = value(group)
        sql.append(f"WHEN {group.number} THEN {text}")
        params += more
    sql.append("END")
    return " ".join(sql), params


def _by_channel(group: _Group, index: int) -> tuple[str, list]:
    sql, params = ["CASE d.channel"], []
    for channel, texts in group.channels.items():
        text, more = texts[index]
        sql.append(f"WHEN '{channel.value}' THEN {text}")
        params += more
    sql.append("END")
    return " ".join(sql), params


def _statement(
    *, campaign_id: int, source_key: str, groups: list[_Group], drawn: tuple[str, list], told: tuple[str, list]
) -> tuple[str, list]:
    """The one statement: the members to tell with their values and channel (services._channels: the topic's
    preference, else the preferred channel; an SMS without a phone number goes by e-mail), a row for the inbox and
    one for that channel, suppressed addresses marked, stored unless their idempotency key was (ON CONFLICT DO
    NOTHING); then every recipient, linked to their new row (their channel's, else the inbox's: as
    campaigns._link_deliveries). Answers the ids of the new queued e-mails and SMS and the members who got a new
    inbox message."""
    drawn_sql, drawn_params = drawn
    told_sql, told_params = told
    title_sql, title_params = _case(groups, lambda group: group.title)
    message_sql, message_params = _case(groups, lambda group: group.message)
    subject_sql, subject_params = _case(groups, lambda group: _by_channel(group, 0))
    body_sql, body_params = _case(groups, lambda group: _by_channel(group, 1))
    inbox, email, sms = Channel.INBOX.value, Channel.EMAIL.value, Channel.SMS.value
    queued, delivered, suppressed = (
        DeliveryStatus.QUEUED.value,
        DeliveryStatus.DELIVERED.value,
        DeliveryStatus.SUPPRESSED.value,
    )
    sql = f"""
WITH drawn AS MATERIALIZED (
    {drawn_sql}
), told AS (
    SELECT member_id FROM drawn WHERE {told_sql}
), stored AS (
    INSERT INTO {Delivery._meta.db_table} (
        kind, channel, topic, member_id, source_key, idempotency_key, address, subject, body, link, status,
        queued_at, delivered_at, attempts, last_error, provider_id, created_at, updated_at
    )
    SELECT %s, d.channel, %s, t.member_id, %s, %s || t.member_id || ':' || d.channel, d.address,
           {subject_sql}, {body_sql}, '',
           CASE WHEN s.id IS NOT NULL THEN '{suppressed}' WHEN d.channel = '{inbox}' THEN '{delivered}'
                ELSE '{queued}' END,
           %s::timestamptz, CASE WHEN d.channel = '{inbox}' THEN %s::timestamptz END, 0, '', '', now(), now()
    FROM (
        -- The member's values are t's columns, here as in the query around; OFFSET 0 keeps this subquery apart, so
        -- that the title and message are made once per member, not again for each of their rows.
        SELECT t.*, {title_sql} AS title, {message_sql} AS message
        FROM (
            SELECT m.id AS member_id, g.number AS group_number,
                   coalesce(substring(u.full_name FROM %s), u.email) AS first_name, p.name AS partner_name,
                   ch.channel,
                   CASE ch.channel WHEN '{email}' THEN coalesce(e.address, lower(u.email))
                        WHEN '{sms}' THEN btrim(m.phone, %s) ELSE '' END AS address
            FROM told AS a
            JOIN {Member._meta.db_table} m ON m.id = a.member_id
            JOIN {User._meta.db_table} u ON u.id = m.user_id
            JOIN {Partner._meta.db_table} p ON p.id = m.partner_id
            JOIN unnest(%s::bigint[], %s::text[]) WITH ORDINALITY AS g(role_id, language, number)
                ON g.role_id = m.role_id AND g.language = m.language
            LEFT JOIN unnest(%s::bigint[], %s::text[]) AS e(user_id, address) ON e.user_id = u.id
            LEFT JOIN {Preference._meta.db_table} pr ON pr.member_id = m.id AND pr.topic = %s
            CROSS JOIN LATERAL (
                SELECT coalesce(
                    pr.channel,
                    CASE m.preferred_channel WHEN '{MemberChannel.IN_APP.value}' THEN '{inbox}'
                         ELSE m.preferred_channel END
                ) AS chosen
            ) AS c
            CROSS JOIN LATERAL (
                SELECT CASE WHEN c.chosen = '{sms}' AND btrim(m.phone, %s) = '' THEN '{email}' ELSE c.chosen END
                    AS channel
            ) AS ch
        ) AS t
        OFFSET 0
    ) AS t
    CROSS JOIN LATERAL (VALUES (1, '{inbox}', ''), (2, t.channel, t.address)) AS d(n, channel, address)
    LEFT JOIN {Suppression._meta.db_table} s ON s.address = d.address AND d.address <> ''
    WHERE d.n = 1 OR t.channel <> '{inbox}'
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, member_id, channel, status
), recipients AS (
    INSERT INTO {CampaignRecipient._meta.db_table} (campaign_id, member_id, in_control_group, delivery_id)
    SELECT %s, drawn.member_id, drawn.in_control_group, chosen.id
    FROM drawn LEFT JOIN (
        SELECT DISTINCT ON (member_id) member_id, id FROM stored ORDER BY member_id, channel = '{inbox}'
    ) AS chosen ON chosen.member_id = drawn.member_id
    ON CONFLICT (campaign_id, member_id) DO NOTHING
)
SELECT array_agg(id ORDER BY id) FILTER (WHERE status = '{queued}'),
       array_agg(member_id ORDER BY member_id) FILTER (WHERE channel = '{inbox}')
FROM stored
"""
    now = timezone.now()
    topic = topic_of(Kind.CAMPAIGN)
    params = [
        *drawn_params,
        *told_params,
        Kind.CAMPAIGN.value, topic, source_key, f"{Kind.CAMPAIGN.value}:{source_key}:",
        *subject_params, *body_params,
        now, now,
        *title_params, *message_params,
        FIRST_WORD, WHITESPACE,
        [group.role_id for group in groups], [group.language for group in groups],
        *_emails_lowered(),
        topic,
        WHITESPACE,
        campaign_id,
    ]  # fmt: skip
    return sql, params
