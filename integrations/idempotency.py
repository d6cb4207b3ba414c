"""Idempotent POSTs with Stripe's semantics (docs/decisions.md #29).

A POST with an `Idempotency-Key` header: the first request with the key runs and its outcome (status and body) is
stored; a later request with the same key and the same method, path and body gets that outcome again (with
`Idempotent-Replayed: true`) for REPLAY_HOURS; the same key with another body is refused (422,
`idempotency_key_reused`). Requests with one key at the same time make one effect: the first runs, the others wait
for its outcome (up to WAIT_SECONDS, then 409 `idempotency_key_in_use`). Keys are the caller's own (a client's,
a person's). What is not stored, so the same key may be sent again: a request refused before it ran (bad
JSON or fields, 400; too large, 413; not JSON, 415), 409 and 429, and a server error; a run that never finished is
taken over after ABANDONED_AFTER."""

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from integrations.constants import IdempotencyState
from integrations.models import IdempotencyRecord
from loyalty.common.errors import ApplicationError

REPLAY_HOURS = 24
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.05
ABANDONED_AFTER = timedelta(minutes=5)
MAX_KEY_LENGTH = 255
NOT_STORED = {400, 409, 413, 415, 429}

_CLAIM = """
INSERT INTO integrations_idempotencyrecord (owner, key, fingerprint, state, content_type, body, created_at)
VALUES (%s, %s, %s, 'running', '', ''::bytea, %s)
ON CONFLICT (owner, key) DO NOTHING
RETURNING id
"""


@dataclass(frozen=True)
class Outcome:
    status_code: int
    content_type: str
    body: bytes


def fingerprint(*, method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + body).hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApplicationError(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable characters.",
            code="idempotency_key_invalid",
        )


def _claim(owner: str, key: str, print_: str) -> int | None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM, [owner, key, print_, timezone.now()])
        row = cursor.fetchone()
    return row[0] if row else None


def begin(*, owner: str, key: str, print_: str) -> int | Outcome:
    """Start the request with this key: the new record's id when it is the first (run it, then `finish`), or the
    stored outcome to send again. Raises Problem 422 for another body, 409 when the first is still running."""
    check_key(key)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        record_id = _claim(owner, key, print_)
        if record_id is not None:
            return record_id
        record = IdempotencyRecord.objects.filter(owner=owner, key=key).first()
        if record is None:  # finished and forgotten (abandoned) meanwhile: claim it again
            continue
        now = timezone.now()
        stale = record.created_at < now - timedelta(hours=REPLAY_HOURS)
        abandoned = record.state == IdempotencyState.RUNNING and record.created_at < now - ABANDONED_AFTER
        if stale or abandoned:
            IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            continue
        if record.fingerprint != print_:
            raise ApplicationError(
                "This Idempotency-Key was used with another request (method, path or body); use a new key.",
                code="idempotency_key_reused",
            )
        if record.state == IdempotencyState.DONE:
            return Outcome(record.status_code, record.content_type, bytes(record.body))
        if time.monotonic() >= deadline:
            raise ApplicationError(
                "A request with this Idempotency-Key is still running; send it again in a moment.",
                code="idempotency_key_in_use",
                extra={"retry_after": 1},
            )
        time.sleep(POLL_SECONDS)


def finish(record_id: int, outcome: Outcome) -> None:
    """Store the first request's outcome, or forget the key when that outcome is not to be replayed."""
    records = IdempotencyRecord.objects.filter(pk=record_id)
    if outcome.status_code in NOT_STORED or outcome.status_code >= 500:
        records.delete()
        return
    records.update(
        state=IdempotencyState.DONE,
        status_code=outcome.status_code,
        content_type=outcome.content_type,
        body=outcome.body,
        completed_at=timezone.now(),
    )


def forget(record_id: int) -> None:
    """The request failed without an outcome (an exception): the key may be used again."""
    IdempotencyRecord.objects.filter(pk=record_id).delete()


def tidy(*, now=None) -> int:
    """Delete the records older than REPLAY_HOURS (a periodic task). Returns how many."""
    now = now or timezone.now()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - timedelta(hours=REPLAY_HOURS)).delete()
    return deleted
