"""Claiming due messages: the ``Message`` table is the queue, and a claim is a lease.

A worker claims a batch of due messages (``pending``, ``next_attempt_at`` passed, no live lease)
by setting a lease and a token of its own: ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
concurrent workers take disjoint rows without waiting; on SQLite one conditional ``UPDATE``
(SQLite runs one writer at a time, and the ``WHERE`` re-checks that the rows are still due and
unleased), then reading back the rows that carry its token. Only the holder of a message's current
token records its outcome (``delivery``); a worker that dies mid-batch leaves leases that expire,
and the messages are claimed again (at-least-once: receivers dedupe on ``webhook-id``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets as pysecrets
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Q

from apps.core import clock
from apps.webhooks.models import Message, MessageStatus


@dataclass(slots=True)
class Claimed:
    """What delivery reads of a claimed message (plain values: a batch holds hundreds of them, and
    model instances would cost more than the rest of the bookkeeping)."""

    id: str
    org_id: str
    installation_id: str | None
    kind: str
    endpoint_id: str | None
    hook: str
    body: str
    is_test: bool
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str

    @property
    def pk(self) -> str:
        return self.id


CLAIMED_FIELDS = tuple(f.name for f in dataclasses.fields(Claimed))


_T = Message._meta.db_table
_COLUMNS = ", ".join(Message._meta.get_field(name).column for name in CLAIMED_FIELDS)
_PG_CLAIM = f"""
    UPDATE {_T} SET lease_until = %s, lease_token = %s
    WHERE id IN (
        SELECT id FROM {_T}
        WHERE status = %s AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until <= %s)
        ORDER BY next_attempt_at
        LIMIT %s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING {_COLUMNS}
"""  # noqa: S608 (the model's own table and column names; values are parameters)


def _due(now: dt.datetime) -> Q:
    return Q(status=MessageStatus.PENDING, next_attempt_at__lte=now) & (
        Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    )


def messages_claim(*, limit: int | None = None, now: dt.datetime | None = None) -> tuple[str, list[Claimed]]:
    """Lease up to ``limit`` due messages to this caller; returns (lease token, messages). Two
    callers never hold the same message at once."""
    now = now or clock.now()
    limit = limit or settings.PLAZA_WEBHOOK_BATCH_SIZE
    token = pysecrets.token_hex(16)
    lease = now + dt.timedelta(seconds=settings.PLAZA_WEBHOOK_LEASE_SECONDS)
    if connection.vendor == "postgresql":
        # One statement, one round trip: lock due rows others have not locked, lease them, return them.
        with connection.cursor() as cursor:
            cursor.execute(_PG_CLAIM, [lease, token, MessageStatus.PENDING, now, now, limit])
            claimed = [Claimed(*row) for row in cursor.fetchall()]
        claimed.sort(key=lambda m: (m.next_attempt_at, m.id))
        return token, claimed
    candidates = list(
        Message.objects.filter(_due(now)).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
    if not candidates:
        return token, []
    # Atomic under SQLite's single writer: the WHERE re-checks each row is still free.
    Message.objects.filter(pk__in=candidates).filter(_due(now)).update(lease_until=lease, lease_token=token)
    ids = candidates
    rows = (
        Message.objects.filter(pk__in=ids, lease_token=token).order_by("next_attempt_at").values_list(*CLAIMED_FIELDS)
    )
    return token, [Claimed(*row) for row in rows]
