"""Delivering messages: claim the due ones, sign, send concurrently, record every attempt.

The ``Message`` table is the queue; claiming a batch under a lease (and the lease token that alone
may record a message's outcome) is ``services/claim.py``. A worker that dies mid-batch leaves
leases that expire, and the messages are claimed again (at-least-once: receivers dedupe on
``webhook-id``).

Outcomes: 2xx delivered; 410 disables the endpoint and fails the message; 429/503 wait for
``Retry-After`` (bounded); ``webhook-delivery: abort-message`` fails the message at once;
anything else (3xx included: redirects are never followed) is retried on
``PLAZA_WEBHOOK_RETRY_SCHEDULE`` with jitter, then the message is ``failed`` — the dead-letter
queue. Delays live in ``next_attempt_at``: Celery only carries "look for due messages".
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q

from apps.core import clock, crypto
from apps.webhooks import signing, transport
from apps.webhooks.models import (
    AttemptOutcome,
    Endpoint,
    EndpointSecret,
    Message,
    MessageKind,
    MessageStatus,
)
from apps.webhooks.services import health, hooks, record
from apps.webhooks.services.claim import CLAIMED_FIELDS, Claimed, messages_claim  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    rescheduled: int = 0
    cancelled: int = 0
    lost_leases: int = 0
    outcomes: dict = field(default_factory=dict)

    def add(self, other: BatchReport) -> None:
        for name in ("claimed", "sent", "succeeded", "retried", "failed", "rescheduled", "cancelled", "lost_leases"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        return {
            name: getattr(self, name)
            for name in ("claimed", "sent", "succeeded", "retried", "failed", "rescheduled", "cancelled", "lost_leases")
        }


# --- enqueueing -----------------------------------------------------------------------------------


def messages_kick() -> None:
    """Ask a worker to look for due messages (after the current transaction commits). Callers
    that set messages back to ``pending`` (replay) or create them (fan-out) call this; a lost kick
    only delays them until the next sweep."""
    from apps.webhooks.tasks import deliver_due

    transaction.on_commit(deliver_due.delay)


def message_enqueue(*, message: Message, when: dt.datetime | None = None) -> None:
    """Make ``message`` due again (pending, ``when`` or now, lease dropped) and kick delivery.
    Its attempt count is kept, so the next attempt is numbered after the last one: a message
    with retries left on the schedule continues it; an exhausted one (a replay from the
    dead-letter queue) gets exactly one more try, then goes back to the dead-letter queue."""
    now = clock.now()
    fields = {
        "status": MessageStatus.PENDING,
        "next_attempt_at": when or now,
        "lease_until": None,
        "lease_token": "",
        "failed_at": None,
    }
    Message.objects.filter(pk=message.pk).update(**fields)
    for name, value in fields.items():
        setattr(message, name, value)
    messages_kick()


# --- outcome rules --------------------------------------------------------------------------------


def retry_delay(attempts_made: int, *, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` attempts, jittered; None when the
    schedule is exhausted (the message goes to the dead-letter queue)."""
    schedule = settings.PLAZA_WEBHOOK_RETRY_SCHEDULE
    if attempts_made >= len(schedule):
        return None
    base = float(schedule[attempts_made])
    jitter = settings.PLAZA_WEBHOOK_RETRY_JITTER
    return max(0.0, base * (1 + (rng or random).uniform(-jitter, jitter)))


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 10**7))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def _excerpt(text: str) -> str:
    data = text.encode("utf-8", errors="replace")[: transport.EXCERPT_BYTES]
    # PostgreSQL text cannot hold NUL: a receiver answering one must not keep its attempt unrecorded.
    return data.decode("utf-8", errors="ignore").replace("\x00", "\ufffd")


# --- sending --------------------------------------------------------------------------------------


def _secrets_for(endpoint_ids: set[str], now: dt.datetime) -> dict[str, list[bytes]]:
    """Each endpoint's valid signing keys (newest first), decrypted and decoded once per batch."""
    found: dict[str, list[bytes]] = defaultdict(list)
    rows = (
        EndpointSecret.objects.filter(endpoint_id__in=endpoint_ids)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("-created_at", "-id")
        .values_list("endpoint_id", "secret_encrypted")
    )
    for endpoint_id, encrypted in rows:
        plain = crypto.decrypt(encrypted)
        if not plain:
            continue
        try:
            found[endpoint_id].append(signing.secret_key(plain))
        except signing.SignatureError:
            log.warning("webhooks: endpoint %s has a malformed signing secret", endpoint_id)
    return found


def _installation_states(messages: list[Claimed]) -> dict[str, str]:
    from apps.installs.models import Installation

    ids = {m.installation_id for m in messages if m.installation_id}
    if not ids:
        return {}
    return dict(Installation.objects.filter(pk__in=ids).values_list("pk", "status"))


def _request_headers(message: Claimed, keys: list[bytes], body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": transport.USER_AGENT,
        "webhook-id": message.pk,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header_for_keys(keys, message.pk, timestamp, body),
    }


@dataclass
class _Batch:
    """A claimed batch between its phases: prepared, in flight, recorded."""

    token: str
    report: BatchReport
    endpoints: dict = field(default_factory=dict)
    settled: list = field(default_factory=list)
    results: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    sendable: list = field(default_factory=list)
    to_run: list = field(default_factory=list)
    started_at: dt.datetime | None = None
    future: object = None


def deliver_batch(*, limit: int | None = None, now: dt.datetime | None = None, trigger: str = "") -> BatchReport:
    """Claim one batch of due messages, send it, record it."""
    batch = _prepare(limit=limit, now=now)
    if batch is None:
        return BatchReport()
    batch.future = transport.submit_batch(batch.requests)
    _finish(batch, trigger=trigger)
    return batch.report


def _prepare(*, limit: int | None = None, now: dt.datetime | None = None) -> _Batch | None:
    """Claim a batch and decide what goes out: admitted, signed requests; the rest settled."""
    token, messages = messages_claim(limit=limit, now=now)
    if not messages:
        return None
    report = BatchReport(claimed=len(messages))
    now = clock.now()
    endpoint_ids = {m.endpoint_id for m in messages if m.endpoint_id}
    endpoints = Endpoint.objects.in_bulk(endpoint_ids)
    installation_status = _installation_states(messages)

    to_send: list[Claimed] = []
    to_run: list[Claimed] = []
    settled: list[tuple[Message, dict]] = []  # rescheduled / cancelled / failed without an attempt
    by_endpoint: dict[str, list[Claimed]] = defaultdict(list)
    for message in messages:
        state = installation_status.get(message.installation_id) if message.installation_id else "active"
        if message.installation_id and state != "active":
            error = f"The installation is {state or 'gone'}; nothing is delivered to it."[:300]
            settled.append((message, {"status": MessageStatus.CANCELLED, "last_error": error}))
            report.cancelled += 1
        elif message.kind == MessageKind.HOOK:
            to_run.append(message)
        else:
            by_endpoint[message.endpoint_id or ""].append(message)

    for endpoint_id, group in by_endpoint.items():
        admission = health.endpoint_admit(endpoints.get(endpoint_id), len(group), now)
        if admission.closed_reason:
            closed = {"status": MessageStatus.FAILED, "failed_at": now, "last_error": admission.closed_reason[:300]}
            settled.extend((message, closed) for message in group)
            report.failed += len(group)
            continue
        to_send.extend(group[: admission.allowed])
        waiting = {"next_attempt_at": admission.retry_at or now}
        settled.extend((message, waiting) for message in group[admission.allowed :])
        report.rescheduled += len(group) - admission.allowed

    secrets_by_endpoint = _secrets_for({m.endpoint_id for m in to_send}, now)
    timestamp = int(time.time())
    requests: list[transport.Request] = []
    sendable: list[Claimed] = []
    results: list[tuple[Message, transport.Outcome, dict]] = []
    for message in to_send:
        body = message.body.encode()
        secrets_ = secrets_by_endpoint.get(message.endpoint_id, [])
        if not secrets_:
            outcome = transport.Outcome(
                error_class="no_secret", error_message="The endpoint has no readable signing secret."
            )
            results.append((message, outcome, {}))
            continue
        headers = _request_headers(message, secrets_, body, timestamp)
        url = endpoints[message.endpoint_id].url
        requests.append(transport.Request(url=url, headers=headers, body=body, key=message.pk))
        sendable.append(message)
    return _Batch(
        token=token,
        report=report,
        endpoints=endpoints,
        settled=settled,
        results=results,
        requests=requests,
        sendable=sendable,
        to_run=to_run,
        started_at=clock.now(),
    )


def _finish(batch: _Batch, *, trigger: str = "") -> None:
    """Wait for the batch's requests, run its hooks, record everything."""
    outcomes = batch.future.result() if batch.future is not None else []
    report = batch.report
    report.sent = len(batch.requests) + len(batch.to_run)
    results = batch.results
    for message, request, outcome in zip(batch.sendable, batch.requests, outcomes, strict=True):
        results.append((message, outcome, request.headers))
    for message in batch.to_run:
        results.append((message, hooks.hook_run(message), {}))
    _record(batch.token, results, batch.settled, batch.endpoints, batch.started_at, report, trigger=trigger)


# What replay (services/replay.py) writes to ``last_error`` when it puts a message back in the queue.
REPLAY_MARK = "Replay requested"


def _trigger_of(message: Claimed) -> str:
    if message.is_test:
        return "test"
    if (message.last_error or "").startswith(REPLAY_MARK):
        return "replay"
    return "scheduled"


def _record(token, results, settled, endpoints, started_at, report: BatchReport, *, trigger: str) -> None:
    now = clock.now()
    attempts: list[dict] = []
    writes: list[tuple[str, dict, bool]] = [(m.pk, changes, False) for m, changes in settled]
    health_results: dict[str, list[bool]] = defaultdict(list)
    gone: set[str] = set()
    for message, outcome, headers in results:
        number = message.attempts + 1
        code = outcome.status_code
        response_headers = outcome.headers or {}
        if outcome.ok:
            result = AttemptOutcome.SUCCEEDED
            changes = {"status": MessageStatus.SUCCEEDED, "delivered_at": now, "last_status_code": code}
            changes["last_error"] = ""
            report.succeeded += 1
        elif code == 410 and message.endpoint_id:
            result = AttemptOutcome.GONE
            changes = {"status": MessageStatus.FAILED, "failed_at": now, "last_status_code": code}
            changes["last_error"] = "The endpoint answered 410 Gone and was disabled."
            gone.add(message.endpoint_id)
            report.failed += 1
        else:
            error = outcome.error_message or (f"HTTP {code}" if code else outcome.error_class)
            if code and 300 <= code < 400:
                error = f"HTTP {code}: redirects are not followed"
            abort = response_headers.get("webhook-delivery", "").strip().lower() == "abort-message"
            delay = None if abort else retry_delay(number)
            if delay is not None and code in (429, 503):
                asked = parse_retry_after(response_headers.get("retry-after"), now)
                if asked is not None:
                    delay = max(delay, min(asked, float(settings.PLAZA_WEBHOOK_RETRY_AFTER_MAX_SECONDS)))
            changes = {"last_status_code": code, "last_error": error[:300]}
            if delay is None:
                result = AttemptOutcome.FAILED
                changes.update(status=MessageStatus.FAILED, failed_at=now)
                if abort:
                    changes["last_error"] = "The receiver asked to stop (webhook-delivery: abort-message)."
                report.failed += 1
            else:
                result = AttemptOutcome.RETRY
                changes["next_attempt_at"] = now + dt.timedelta(seconds=delay)
                report.retried += 1
        writes.append((message.pk, changes, True))
        if message.endpoint_id and code != 429:
            health_results[message.endpoint_id].append(outcome.ok)
        report.outcomes[message.pk] = result
        stored_headers = {k: v for k, v in headers.items() if k != "webhook-signature"}
        if "webhook-signature" in headers:
            # The signatures are not secrets, but they are not needed to debug a delivery either.
            stored_headers["webhook-signature"] = " ".join(
                s.split(",", 1)[0] + ",…" for s in headers["webhook-signature"].split(" ")
            )
        attempts.append(
            {
                "message_id": message.pk,
                "number": number,
                "trigger": trigger or _trigger_of(message),
                "started_at": started_at,
                "duration_ms": outcome.duration_ms,
                "url": (endpoints[message.endpoint_id].url if message.endpoint_id in endpoints else message.hook)[
                    :2000
                ],
                "request_headers": stored_headers,
                "status_code": code,
                "response_excerpt": _excerpt(outcome.excerpt),
                "error_class": outcome.error_class[:40] if not outcome.ok else "",
                "error_message": outcome.error_message[:300].replace("\x00", "\ufffd") if not outcome.ok else "",
                "outcome": result,
            }
        )
    with transaction.atomic():
        written = record.messages_write(token, writes)
        report.lost_leases = len(writes) - written
        if attempts:
            record.attempts_insert(attempts)
        disabled: list[tuple[str, str]] = []
        for endpoint_id in sorted(health_results):
            if health.nothing_to_record(endpoints.get(endpoint_id), health_results[endpoint_id]):
                continue
            reason = health.endpoint_record(endpoint_id, health_results[endpoint_id], now)
            if reason:
                disabled.append((endpoint_id, reason))
        for endpoint_id in sorted(gone):
            reason = health.endpoint_gone(endpoint_id, now)
            if reason:
                disabled.append((endpoint_id, reason))
        for endpoint_id, reason in disabled:
            health.notify_after_commit(endpoint_id, reason)
    if report.lost_leases:
        log.warning("webhooks: %s message(s) were claimed again while this worker sent them", report.lost_leases)


# Batches on the wire at once in ``deliver_due``: while they are, the one before them is recorded and
# the next claimed, so the HTTP client never waits for the database (and the other way round).
PIPELINE_DEPTH = 2


def deliver_due(*, budget_seconds: float | None = None, limit: int | None = None) -> BatchReport:
    """Deliver batches while messages are due, for at most ``budget_seconds``."""
    budget = settings.PLAZA_WEBHOOK_TASK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    total = BatchReport()
    in_flight: deque[_Batch] = deque()
    try:
        while True:
            batch = _prepare(limit=limit) if time.monotonic() < deadline else None
            if batch is not None:
                batch.future = transport.submit_batch(batch.requests)
                in_flight.append(batch)
            if in_flight and (batch is None or len(in_flight) >= PIPELINE_DEPTH):
                done = in_flight.popleft()
                _finish(done)
                total.add(done.report)
            if batch is None and not in_flight:
                break
    finally:
        while in_flight:  # an error while batches were on the wire: record them still
            done = in_flight.popleft()
            _finish(done)
            total.add(done.report)
    return total


def next_due_in(now: dt.datetime | None = None) -> float | None:
    """Seconds until the earliest pending message is due (0 when one is due now), or None."""
    now = now or clock.now()
    # Leased messages are their worker's (and the sweep's, should it die): not counted here.
    earliest = (
        Message.objects.filter(status=MessageStatus.PENDING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .aggregate(at=Min("next_attempt_at"))["at"]
    )
    if earliest is None:
        return None
    return max(0.0, (earliest - now).total_seconds())
