"""Webhooks, the outbox side: what a domain event becomes for the clients that subscribed to it.

`on_domain_event` listens to loyalty.common.events.domain_event (connected in IntegrationsConfig.ready). Inside the
publishing transaction it writes one WebhookEvent and one WebhookDelivery per active subscription of the event's
program's clients (every program's, for an event of no program) that wants its type, in one statement, and queues
their sending (integrations.delivery) once the transaction commits: the event exists exactly when the change does,
and a worker never sees a delivery whose change was rolled back.

The ledger publishes on every earn, so the common case, nobody listening, must cost nothing: the (program, type)
pairs that have an active subscription are kept in the shared cache with a version that every save or delete of a
subscription or a client replaces (at once and again on commit), and an event nobody wants makes no query at all.
The cache only spares that query: which subscriptions get an event is read in the statement that writes it."""

import base64
import json
import secrets
import uuid
from datetime import datetime

from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Q
from django.utils import timezone

from integrations.constants import DeliveryStatus, EventType
from integrations.models import ApiClient, WebhookDelivery, WebhookEvent, WebhookSubscription
from loyalty.common.background import enqueue_on_commit
from loyalty.common.errors import ApplicationError
from partners.models import Member

EVENT_ID_PREFIX = "msg_"
SECRET_PREFIX = "whsec_"
DELIVER_TASK = "integrations.tasks.deliver_webhook"
# The subscribed pairs and their version, in the shared cache (CACHE_URL: with several processes and no shared
# cache, a process would not hear of another's new subscription until it restarts).
SUBSCRIBED_KEY = "integrations:webhooks:subscribed"
VERSION_KEY = "integrations:webhooks:subscribed-version"

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# Identifiers and secrets --------------------------------------------------------------------------------------------


def new_event_id(moment: datetime | None = None) -> str:
    """ "msg_" and a ULID: 26 Crockford base32 characters, 48 bits of milliseconds then 80 random bits, so the ids of
    later events sort after earlier ones."""
    millis = int((moment or timezone.now()).timestamp() * 1000)
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return EVENT_ID_PREFIX + "".join(reversed(chars))


def new_secret() -> str:
    """A subscription's signing secret: "whsec_" and 32 random bytes in base64 (the Standard Webhooks form)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# Who listens --------------------------------------------------------------------------------------------------------


def _active_subscriptions():
    return WebhookSubscription.objects.filter(is_active=True, client__revoked_at__isnull=True)


def _subscribed_pairs() -> tuple[frozenset[tuple[int, str]], frozenset[str]]:
    """((program id, event type) pairs with an active subscription, the event types any of them wants), cached: valid
    while they carry the current version, which every change of subscriptions or clients replaces."""
    found = cache.get_many([VERSION_KEY, SUBSCRIBED_KEY])
    version, cached = found.get(VERSION_KEY), found.get(SUBSCRIBED_KEY)
    if version is not None and cached is not None and cached[0] == version:
        return cached[1], cached[2]
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(VERSION_KEY)
    # The version is read before the subscriptions: a change committed meanwhile replaces it, and the pairs read here
    # are taken for stale by the next event.
    pairs = frozenset(
        (program_id, event_type)
        for program_id, types in _active_subscriptions().values_list("client__program_id", "event_types")
        for event_type in types
    )
    types = frozenset(event_type for _program, event_type in pairs)
    cache.set(SUBSCRIBED_KEY, (version, pairs, types), timeout=None)
    return pairs, types


def is_subscribed(program_id: int | None, event_type: str) -> bool:
    """Whether some active subscription may want this event (no query once the pairs are cached)."""
    pairs, types = _subscribed_pairs()
    return event_type in types if program_id is None else (program_id, event_type) in pairs


def forget_subscribed(**kwargs) -> None:
    """Subscriptions or clients changed: the cached pairs are stale, now and again once the change commits (a
    receiver may have read them meanwhile, without the change). Also a signal receiver (IntegrationsConfig.ready)."""
    _new_version()
    transaction.on_commit(_new_version)


def subscriptions_warm_up(using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """Read the subscribed pairs into the cache once the tables are there (after migrate: a post_migrate receiver)."""
    if using == DEFAULT_DB_ALIAS and {_SUBSCRIPTIONS, _CLIENTS} <= set(connection.introspection.table_names()):
        _subscribed_pairs()


def _new_version() -> None:
    cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)


# The outbox ---------------------------------------------------------------------------------------------------------


def on_domain_event(sender, *, event_type: str, program_id: int | None, data: dict, **kwargs) -> None:
    """The receiver of loyalty.common.events.domain_event."""
    if is_subscribed(program_id, event_type):
        event_record(event_type=event_type, program_id=program_id, data=data)


def event_record(*, event_type: str, program_id: int | None, data: dict) -> WebhookEvent | None:
    """Write the event and a delivery per active subscription that wants it, in the caller's transaction and in one
    statement, and queue the deliveries for after its commit; None (nothing written) when no subscription wants it."""
    now = timezone.now()
    payload = "%s::jsonb"
    params = [json.dumps(data, cls=DjangoJSONEncoder)]
    if event_type == EventType.POINTS_EARNED and data.get("member_id") and not data.get("partner_id"):
        # The ledger knows the account, not the member's company: only a subscriber needs it, so it is read here.
        payload = f"%s::jsonb || jsonb_build_object('partner_id', (SELECT partner_id FROM {_MEMBERS} WHERE id = %s))"
        params.append(data["member_id"])
    in_program = "" if program_id is None else "AND c.program_id = %s"
    sql = f"""
        WITH subs AS (
            SELECT s.id FROM {_SUBSCRIPTIONS} s JOIN {_CLIENTS} c ON c.id = s.client_id
            WHERE s.is_active AND c.revoked_at IS NULL AND %s = ANY(s.event_types) {in_program}
        ), event AS (
            INSERT INTO {_EVENTS} (public_id, program_id, type, payload, created_at)
            SELECT %s, %s, %s, {payload}, %s WHERE EXISTS (SELECT 1 FROM subs)
            RETURNING id, payload
        ), deliveries AS (
            INSERT INTO {_DELIVERIES} (event_id, subscription_id, status, attempts, next_attempt_at, response_body,
                                       error, created_at)
            SELECT event.id, subs.id, %s, 0, %s, '', '', %s FROM event, subs
            RETURNING id
        )
        SELECT event.id, event.payload, (SELECT array_agg(id ORDER BY id) FROM deliveries) FROM event
    """
    public_id = new_event_id(now)
    arguments = [
        event_type, *([] if program_id is None else [program_id]),
        public_id, program_id, event_type, *params, now,
        DeliveryStatus.PENDING.value, now, now,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, arguments)
        row = cursor.fetchone()
    if row is None:
        return None
    event_id, stored, delivery_ids = row
    for delivery_id in delivery_ids:
        enqueue_on_commit(DELIVER_TASK, delivery_id)
    event = WebhookEvent(
        pk=event_id, public_id=public_id, program_id=program_id, type=event_type, payload=_json(stored), created_at=now
    )
    event._state.adding = False
    return event


def _json(value):
    """jsonb as psycopg returns it: already parsed, or text."""
    return json.loads(value) if isinstance(value, str) else value


_EVENTS, _DELIVERIES = WebhookEvent._meta.db_table, WebhookDelivery._meta.db_table
_SUBSCRIPTIONS, _CLIENTS = WebhookSubscription._meta.db_table, ApiClient._meta.db_table
_MEMBERS = Member._meta.db_table


# Subscriptions ------------------------------------------------------------------------------------------------------


@transaction.atomic
def subscription_enable(*, subscription: WebhookSubscription) -> WebhookSubscription:
    """Deliver to a disabled subscription again: its failures are forgotten, and what waits is sent at once."""
    if subscription.client.revoked_at is not None:
        raise ApplicationError(
            f"{subscription.client} is revoked: its webhooks cannot be enabled.", code="client_revoked"
        )
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=True, disabled_at=None, disabled_reason="", failures_in_a_row=0, updated_at=timezone.now()
    )
    # What was waiting when it was disabled goes at once rather than at its old retry time.
    WebhookDelivery.objects.filter(
        Q(next_attempt_at__gt=timezone.now()) | Q(next_attempt_at__isnull=True),
        subscription=subscription,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
    ).update(next_attempt_at=timezone.now())
    forget_subscribed()
    subscription.refresh_from_db()
    return subscription
