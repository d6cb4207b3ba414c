"""Making, checking, rotating and revoking the API's secrets: machine clients' keys and members' tokens.

A secret reads `plk_<prefix>_<secret>` (a client's key) or `plt_<prefix>_<secret>` (a member's token): the prefix
finds the row, the SHA-256 of the secret is compared in constant time. The whole secret is returned once, by
the function that makes it; nothing can show it again (docs/decisions.md #29)."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.models import ApiClient, ApiKey, MemberToken
from loyalty.common.errors import ApplicationError

CLIENT_KEY, MEMBER_TOKEN = "plk", "plt"
# last_used_at is written at most this often per key: a busy client would otherwise update its row on every call.
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Issued:
    """A key or token just made, with its whole secret: shown once, then only its prefix is known."""

    row: ApiKey | MemberToken
    secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(kind: str, model) -> tuple[str, str, str]:
    """(prefix, secret part, whole secret) for a new row of `model`."""
    while True:
        prefix = secrets.token_hex(6)
        if not model.objects.filter(prefix=prefix).exists():
            break
    part = secrets.token_urlsafe(32)
    return prefix, part, f"{kind}_{prefix}_{part}"


def key_issue(*, client: ApiClient, by) -> Issued:
    """A new key for `client`. Its other keys stay valid until revoked, so a client can rotate without a gap."""
    if not client.is_active:
        raise ApplicationError(f"{client} is revoked: it gets no new keys.", code="client_revoked")
    prefix, part, whole = _new_secret(CLIENT_KEY, ApiKey)
    row = ApiKey.objects.create(client=client, prefix=prefix, secret_hash=_hash(part), created_by=by)
    return Issued(row=row, secret=whole)


def key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def client_revoke(*, client: ApiClient) -> ApiClient:
    """Stop a client: every key of it fails from now on, and its webhooks stop."""
    with transaction.atomic():
        now = timezone.now()
        if client.revoked_at is None:
            client.revoked_at = now
            client.save(update_fields=["revoked_at", "updated_at"])
        client.keys.filter(revoked_at__isnull=True).update(revoked_at=now)
        client.webhooks.filter(is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason="client revoked"
        )
    return client


def token_issue(*, user, name: str = "") -> Issued:
    """A member's token for a phone app, valid MEMBER_TOKEN_DAYS."""
    prefix, part, whole = _new_secret(MEMBER_TOKEN, MemberToken)
    row = MemberToken.objects.create(
        user=user,
        name=name[:80],
        prefix=prefix,
        secret_hash=_hash(part),
        expires_at=timezone.now() + timedelta(days=settings.API_MEMBER_TOKEN_DAYS),
    )
    return Issued(row=row, secret=whole)


def token_revoke(*, token: MemberToken) -> MemberToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def find(secret: str) -> ApiKey | MemberToken | None:
    """The key or token a presented secret belongs to, if it is genuine, unrevoked and unexpired (and, for a key,
    its client not revoked); its last use recorded. None otherwise: the caller says only "invalid"."""
    kind, _, rest = secret.partition("_")
    prefix, _, part = rest.partition("_")
    model = {CLIENT_KEY: ApiKey, MEMBER_TOKEN: MemberToken}.get(kind)
    if model is None or not prefix or not part:
        return None
    related = "client__program" if model is ApiKey else "user"
    row = model.objects.select_related(related).filter(prefix=prefix).first()
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(part)):
        return None
    now = timezone.now()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if model is ApiKey and row.client.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        model.objects.filter(pk=row.pk).update(last_used_at=now)
        if model is ApiKey:
            ApiClient.objects.filter(pk=row.client_id).update(last_used_at=now)
        row.last_used_at = now
    return row
