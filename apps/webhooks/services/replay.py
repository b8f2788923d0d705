"""Replay and backfill: resend one message, resend an endpoint's failed messages since a time, or
backfill the events of given types in a time range to an endpoint.

- **Preview first.** ``replay_preview`` counts what a request would send, without writing; the
  job stores that count (``preview_count``) and the portal asks for confirmation with it.
- **Same message, same id.** A resend puts the existing message back in the queue (``pending``,
  due now): Standard Webhooks receivers dedupe on ``webhook-id``, which is the message id on every
  try. A backfill creates *new* messages through the fan-out helper
  (``messages_for_event(event, endpoints=[endpoint])``), so each gets exactly the minimised payload
  and installation the live fan-out would have produced, and events already sent to the endpoint
  are skipped (a unique constraint backs that up).
- **Rate limits.** One bulk job (failed-since or backfill) at a time per endpoint; at most
  ``PLAZA_WEBHOOK_REPLAY_MAX_MESSAGES`` messages per job (default 10,000) and
  ``PLAZA_WEBHOOK_REPLAY_HOURLY_MESSAGES`` per endpoint per hour (default 50,000): refusals say
  which limit and when to try again.
- **Durable.** The ``ReplayJob`` row is written with the request; a task works through it in
  batches of ``PLAZA_WEBHOOK_REPLAY_BATCH`` (default 500), each batch one transaction that moves
  the job's cursor, so a lost task or a killed worker resumes where it stopped (``replay_sweep``).
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Sum

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.errors import Conflict, RateLimited, ValidationFailed
from apps.orgs.policy import Principal
from apps.webhooks.models import (
    Endpoint,
    EndpointStatus,
    Environment,
    Message,
    MessageKind,
    MessageStatus,
    ReplayJob,
    ReplayKind,
    ReplayStatus,
)
from apps.webhooks.services.endpoints import acting_user

log = logging.getLogger(__name__)

ACTIVE = (ReplayStatus.PENDING, ReplayStatus.RUNNING)
MAX_RANGE_DAYS = 90


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def max_messages() -> int:
    return _setting("PLAZA_WEBHOOK_REPLAY_MAX_MESSAGES", 10_000)


def hourly_messages() -> int:
    return _setting("PLAZA_WEBHOOK_REPLAY_HOURLY_MESSAGES", 50_000)


def batch_size() -> int:
    return max(1, _setting("PLAZA_WEBHOOK_REPLAY_BATCH", 500))


# --- what a request would send -------------------------------------------------------------------
def _failed_since(endpoint: Endpoint, since: dt.datetime, until: dt.datetime):
    """The endpoint's failed messages in the range that may still be sent: test messages, and
    messages of installations that are still active (an uninstalled installation's messages are
    emptied and unlinked; a blocked one receives nothing)."""
    from apps.installs.models import InstallationStatus

    return Message.objects.filter(
        Q(is_test=True) | Q(installation__status=InstallationStatus.ACTIVE),
        endpoint=endpoint,
        kind=MessageKind.WEBHOOK,
        status=MessageStatus.FAILED,
        created_at__gte=since,
        created_at__lte=until,
    )


def _tenants(endpoint: Endpoint):
    """The organisations whose installations this endpoint serves: customers for production, the
    publisher's sandbox tenant for sandbox."""
    from apps.orgs.models import Organization

    if endpoint.environment == Environment.SANDBOX:
        return Organization.objects.filter(sandbox_of_id=endpoint.extension.org_id)
    return Organization.objects.filter(sandbox_of__isnull=True)


def _eligible_installations(endpoint: Endpoint):
    from apps.installs.models import Installation, InstallationStatus

    return Installation.objects.filter(
        extension_id=endpoint.extension_id, status=InstallationStatus.ACTIVE, org__in=_tenants(endpoint)
    )


def backfill_events(endpoint: Endpoint, event_types: list[str], since: dt.datetime, until: dt.datetime):
    """The events a backfill considers: of ``event_types``, received in [since, until), in a tenant
    with an active installation of the extension, and not yet sent to this endpoint."""
    from apps.events.models import Event

    # An installation never receives what its tenant sent before it was installed: the live
    # fan-out could not have sent it those events, so neither does a backfill.
    installed = _eligible_installations(endpoint).filter(
        org_id=OuterRef("org_id"), installed_at__lte=OuterRef("received_at")
    )
    already = Message.objects.filter(endpoint=endpoint, event_id=OuterRef("pk"), is_test=False)
    return (
        Event.objects.filter(
            Exists(installed),
            event_type__name__in=event_types,
            received_at__gte=since,
            received_at__lt=until,
        )
        .exclude(Exists(already))
        .order_by("pk")
    )


def _backfill_pairs(endpoint: Endpoint, event_types: list[str], since: dt.datetime, until: dt.datetime) -> int:
    """How many messages a backfill would create: one per (event, active installation in its
    tenant whose grant includes ``events:read:<type>``) — the fan-out's rule — for each event not
    yet sent. Two queries whatever the range."""
    installations = list(
        _eligible_installations(endpoint).values_list("org_id", "granted_scopes", "version__scopes", "installed_at")
    )
    granted: dict[str, list[tuple[set[str], dt.datetime]]] = {}
    for org_id, scopes, asked, installed_at in installations:
        # effective scopes, as the fan-out computes them: granted and asked for by the version
        granted.setdefault(org_id, []).append((set(scopes or ()) & set(asked or ()), installed_at))
    total = 0
    for org_id, type_name, received_at in backfill_events(endpoint, event_types, since, until).values_list(
        "org_id", "event_type__name", "received_at"
    ):
        scope = f"events:read:{type_name}"
        total += sum(1 for scopes, at in granted.get(org_id, ()) if scope in scopes and at <= received_at)
    return total


def utc_moment(moment: dt.datetime | None, param: str) -> dt.datetime | None:
    """``moment`` in UTC (a naive one is read as UTC); 400 when it lies outside what a date holds
    once moved to UTC (``0001-01-01T00:00+14:00``), which would otherwise fail in the database."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ValidationFailed("That time is out of range.", code="time_out_of_range", param=param) from None


def _clean_range(since, until, *, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if not isinstance(since, dt.datetime):
        raise ValidationFailed("Give the start of the time range (since).", code="since_required", param="since")
    since = utc_moment(since, "since")
    until = now if until is None else utc_moment(until, "until")
    until = min(until, now)
    if since >= until:
        raise ValidationFailed("The start of the range must be before its end (and before now).", param="since")
    if until - since > dt.timedelta(days=MAX_RANGE_DAYS):
        raise ValidationFailed(f"A range covers at most {MAX_RANGE_DAYS} days.", code="range_too_long", param="since")
    return since, until


def _clean_types(endpoint: Endpoint, event_types) -> list[str]:
    from apps.webhooks.services.endpoints import event_types_clean, subscribable_event_types

    types = event_types_clean(endpoint.extension, event_types or [])
    if not types:
        types = sorted(endpoint.event_types or subscribable_event_types(endpoint.extension))
    if endpoint.event_types:
        outside = [t for t in types if t not in endpoint.event_types]
        if outside:
            raise ValidationFailed(
                f"This endpoint does not receive {', '.join(outside)[:300]} (its filter).",
                code="event_type_not_subscribed",
                param="event_types",
            )
    if not types:
        raise ValidationFailed("Choose the event types to backfill.", code="event_types_required", param="event_types")
    return types


def replay_preview(
    *,
    endpoint: Endpoint,
    kind: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    event_types: list[str] | None = None,
) -> dict:
    """What a bulk replay would send, without writing: ``{"count", "since", "until",
    "event_types"}`` with the range and types as they will be used."""
    now = clock.now()
    if kind == ReplayKind.FAILED_SINCE:
        since, until = _clean_range(since, until, now=now)
        count = _failed_since(endpoint, since, until).count()
        return {"count": count, "since": since, "until": until, "event_types": []}
    if kind == ReplayKind.BACKFILL:
        since, until = _clean_range(since, until, now=now)
        types = _clean_types(endpoint, event_types)
        return {
            "count": _backfill_pairs(endpoint, types, since, until),
            "since": since,
            "until": until,
            "event_types": types,
        }
    raise ValidationFailed(
        f"The kind is one of {ReplayKind.FAILED_SINCE}, {ReplayKind.BACKFILL}.", code="kind_invalid", param="kind"
    )


# --- guards --------------------------------------------------------------------------------------
def _ensure_sendable(endpoint: Endpoint) -> None:
    if endpoint.deleted_at is not None:
        raise Conflict("This endpoint was deleted.", code="endpoint_deleted")
    if endpoint.status != EndpointStatus.ENABLED:
        raise Conflict(
            "This endpoint is disabled: enable it first, or the replayed messages would fail at once.",
            code="endpoint_disabled",
        )


def _ensure_within_limits(endpoint: Endpoint, count: int, *, bulk: bool, now: dt.datetime) -> None:
    if bulk and ReplayJob.objects.filter(endpoint=endpoint, status__in=ACTIVE).exists():
        raise Conflict("A replay of this endpoint is still running; wait for it to finish.", code="replay_in_progress")
    if count > max_messages():
        raise Conflict(
            f"This would send {count} messages; one replay sends at most {max_messages()}. Narrow the range.",
            code="replay_too_large",
        )
    hour_ago = now - dt.timedelta(hours=1)
    recent = ReplayJob.objects.filter(endpoint=endpoint, created_at__gt=hour_ago)
    used = recent.aggregate(n=Sum("preview_count"))["n"] or 0
    if used + count > hourly_messages():
        oldest = recent.order_by("created_at").values_list("created_at", flat=True).first() or now
        retry = max(1, int((oldest + dt.timedelta(hours=1) - now).total_seconds()))
        raise RateLimited(
            f"Replays of this endpoint sent {used} messages in the last hour; the limit is {hourly_messages()}. "
            f"Try again in {retry // 60 + 1} minutes.",
            code="replay_rate_limited",
            retry_after=retry,
        )


def _audit(job: ReplayJob, endpoint: Endpoint) -> None:
    audit_record(
        action="webhook.replay_requested",
        org_id=endpoint.extension.org_id,
        target=job,
        target_type="webhook_replay",
        target_label=f"{job.kind} → {endpoint.url}"[:254],
        changes={"endpoint": endpoint.pk, "kind": job.kind, "params": job.params, "count": job.preview_count},
    )


# --- requeueing ----------------------------------------------------------------------------------
# Written to ``last_error`` when a message is put back in the queue: the engine records the next
# attempt with ``trigger="replay"`` when it sees it (apps/webhooks/services/delivery.py).
REPLAY_MARK = "Replay requested"


def messages_requeue(message_ids: list[str], *, now: dt.datetime, job_id: str = "") -> int:
    """Put messages back in the queue, due now, keeping their ids, bodies and attempt history (the
    next attempt is numbered after the last). A message that had used up the schedule gets one
    more try; if that fails it is back in the dead-letter queue."""
    return (
        Message.objects.filter(pk__in=message_ids)
        .exclude(status=MessageStatus.PENDING)
        .update(
            status=MessageStatus.PENDING,
            next_attempt_at=now,
            lease_until=None,
            lease_token="",
            failed_at=None,
            delivered_at=None,
            last_error=f"{REPLAY_MARK} ({job_id})" if job_id else REPLAY_MARK,
        )
    )


def _installation_active(installation_id: str | None) -> bool:
    from apps.installs.models import Installation, InstallationStatus

    return bool(installation_id) and (
        Installation.objects.filter(pk=installation_id, status=InstallationStatus.ACTIVE).exists()
    )


def _kick() -> None:
    from apps.webhooks.services.delivery import messages_kick

    messages_kick()


def _enqueue(job_id: str) -> None:
    transaction.on_commit(lambda: replay_run.delay(job_id), robust=True)


# --- use cases -----------------------------------------------------------------------------------
@transaction.atomic
def replay_message(*, principal: Principal | None, endpoint: Endpoint, message: Message) -> ReplayJob:
    """Resend one message now, with the same id and body. 409 ``message_pending`` (it is still in
    the queue), ``endpoint_disabled``, ``endpoint_deleted``; 429 ``replay_rate_limited``."""
    now = clock.now()
    locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    _ensure_sendable(locked)
    if message.endpoint_id != endpoint.pk:
        raise Conflict("This message was not sent to this endpoint.", code="message_not_of_endpoint")
    current = Message.objects.select_for_update().get(pk=message.pk)
    if current.status == MessageStatus.PENDING:
        raise Conflict("This message is still in the queue; it will be sent without a replay.", code="message_pending")
    if current.status == MessageStatus.CANCELLED:
        raise Conflict("This message was cancelled; it is not sent again.", code="message_cancelled")
    if not current.is_test and not _installation_active(current.installation_id):
        raise Conflict(
            "The installation this message was for is no longer active (uninstalled or blocked); "
            "its messages are not sent again.",
            code="installation_inactive",
        )
    _ensure_within_limits(endpoint, 1, bulk=False, now=now)
    job = ReplayJob.objects.create(
        endpoint=endpoint,
        kind=ReplayKind.MESSAGE,
        params={"message_id": message.pk},
        status=ReplayStatus.DONE,
        preview_count=1,
        requested_by=acting_user(principal),
        created_at=now,
        finished_at=now,
    )
    job.processed_count = messages_requeue([message.pk], now=now, job_id=job.pk)
    job.save(update_fields=["processed_count"])
    _audit(job, endpoint)
    _kick()
    return job


@transaction.atomic
def replay_create(
    *,
    principal: Principal | None,
    endpoint: Endpoint,
    kind: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    event_types: list[str] | None = None,
) -> ReplayJob:
    """Start a bulk replay (``failed_since``) or backfill (``backfill``) of ``endpoint``, counted
    as ``replay_preview`` counts it. 400 range or type problems; 409 ``replay_empty``,
    ``replay_in_progress``, ``replay_too_large``, ``endpoint_disabled``; 429 ``replay_rate_limited``."""
    now = clock.now()
    Endpoint.objects.select_for_update().filter(pk=endpoint.pk).values_list("pk", flat=True).get()
    locked = Endpoint.objects.get(pk=endpoint.pk)
    _ensure_sendable(locked)
    preview = replay_preview(endpoint=endpoint, kind=kind, since=since, until=until, event_types=event_types)
    if preview["count"] == 0:
        raise Conflict("Nothing matches: there is no message to send for this range.", code="replay_empty")
    _ensure_within_limits(endpoint, preview["count"], bulk=True, now=now)
    params = {"since": preview["since"].isoformat(), "until": preview["until"].isoformat()}
    if kind == ReplayKind.BACKFILL:
        params["event_types"] = preview["event_types"]
    job = ReplayJob.objects.create(
        endpoint=endpoint,
        kind=kind,
        params=params,
        preview_count=preview["count"],
        requested_by=acting_user(principal),
        created_at=now,
    )
    _audit(job, endpoint)
    _enqueue(job.pk)
    return job


def _fanout(event, endpoint: Endpoint) -> int:
    """New messages for ``event`` to ``endpoint`` through the engine's fan-out (the count made)."""
    from apps.webhooks.services.fanout import messages_for_event

    made = messages_for_event(event, endpoints=[endpoint])
    if isinstance(made, int):
        return made
    return len(made or ())


def replay_job_step(job_id: str) -> bool:
    """Process one batch of a replay job; True while there is more to do. Each batch is one
    transaction that also moves the job's cursor, so running a step twice never sends twice."""
    now = clock.now()
    with transaction.atomic():
        job = ReplayJob.objects.select_for_update().filter(pk=job_id).select_related("endpoint__extension").first()
        if job is None or job.status not in ACTIVE:
            return False
        endpoint = job.endpoint
        if endpoint.deleted_at is not None or endpoint.status != EndpointStatus.ENABLED:
            job.status = ReplayStatus.FAILED
            job.error = "The endpoint was disabled or deleted while the replay ran."
            job.finished_at = now
            job.save(update_fields=["status", "error", "finished_at"])
            return False
        since = dt.datetime.fromisoformat(job.params["since"])
        until = dt.datetime.fromisoformat(job.params["until"])
        size = batch_size()
        budget = max(0, job.preview_count - job.processed_count) if job.kind == ReplayKind.FAILED_SINCE else size
        done_count = 0
        more = False
        if job.kind == ReplayKind.FAILED_SINCE:
            ids = list(
                _failed_since(endpoint, since, until).order_by("pk").values_list("pk", flat=True)[: min(size, budget)]
            )
            done_count = messages_requeue(ids, now=now, job_id=job.pk) if ids else 0
            more = len(ids) == size and budget > size
        elif job.kind == ReplayKind.BACKFILL:
            events = backfill_events(endpoint, job.params.get("event_types") or [], since, until)
            after = job.params.get("after")
            if after:
                events = events.filter(pk__gt=after)
            batch = list(events.select_related("event_type")[:size])
            for event in batch:
                done_count += _fanout(event, endpoint)
            if batch:
                job.params = {**job.params, "after": batch[-1].pk}
            more = len(batch) == size
        job.processed_count += done_count
        job.status = ReplayStatus.RUNNING if more else ReplayStatus.DONE
        if not more:
            job.finished_at = now
        job.save(update_fields=["params", "processed_count", "status", "finished_at"])
        if done_count:
            _kick()
    return more


def replay_job_process(job_id: str, *, max_batches: int | None = None) -> ReplayJob | None:
    """Run a job's batches (all, or ``max_batches``); a job that fails unexpectedly is marked so."""
    batches = 0
    try:
        while replay_job_step(job_id):
            batches += 1
            if max_batches is not None and batches >= max_batches:
                break
    except Exception as exc:
        log.exception("replay %s failed", job_id)
        ReplayJob.objects.filter(pk=job_id, status__in=ACTIVE).update(
            status=ReplayStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:300], finished_at=clock.now()
        )
    return ReplayJob.objects.filter(pk=job_id).first()


def replay_sweep(*, older_than_seconds: int = 300) -> int:
    """Restart active jobs whose task was lost (created or last touched long ago). Returns how
    many were restarted."""
    cutoff = clock.now() - dt.timedelta(seconds=older_than_seconds)
    ids = list(ReplayJob.objects.filter(Q(status__in=ACTIVE), created_at__lt=cutoff).values_list("pk", flat=True)[:50])
    for job_id in ids:
        replay_run.delay(job_id)
    return len(ids)


# --- tasks (registered with the worker by apps/webhooks/tasks.py importing them) -----------------
@shared_task(name="webhooks.replay_run", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def replay_run(job_id: str) -> str:
    """Work through a replay job, a few batches per task run, then hand over to a new task."""
    job = replay_job_process(job_id, max_batches=20)
    if job is not None and job.status in ACTIVE:
        replay_run.delay(job_id)
    return job.status if job is not None else "missing"


@shared_task(name="webhooks.replay_sweep")
def replay_sweep_task() -> int:
    return replay_sweep()
