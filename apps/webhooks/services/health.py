"""Endpoint health: the circuit breaker, the per-endpoint rate limit and auto-disable.

- **Breaker.** ``PLAZA_WEBHOOK_BREAKER_THRESHOLD`` consecutive failed attempts open it: the
  endpoint's due messages are rescheduled (never failed, no attempt is spent) until
  ``circuit_retry_at``; then one worker wins the move to half-open and sends a single message as a
  probe. The probe's success closes the breaker; its failure opens it for another pause. A probe
  whose worker died is taken over when its lease-long deadline passes.
- **Rate limit.** At most ``rate_limit_per_second`` (or ``PLAZA_WEBHOOK_RATE_LIMIT``) messages per
  endpoint per second across all workers: a counter per endpoint and second in Django's cache
  (Redis when ``REDIS_URL`` is set, so every worker shares it; in-process otherwise). Messages
  over the limit wait for a later second.
- **Auto-disable.** An endpoint failing without one success for ``PLAZA_WEBHOOK_DISABLE_AFTER_DAYS``
  is disabled with a reason, and its publisher's owners and admins get an e-mail; so does a 410
  Gone. Re-enabling is the publisher's (``apps.webhooks.services.endpoints``), which calls
  :func:`endpoint_health_reset`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q

from apps.audit.services import audit_record
from apps.core import clock
from apps.webhooks.models import CircuitState, Endpoint, EndpointStatus

log = logging.getLogger(__name__)


@dataclass
class Admission:
    """How many of an endpoint's claimed messages may be sent now, and when the rest come back."""

    allowed: int
    retry_at: dt.datetime | None = None
    closed_reason: str = ""  # the endpoint is disabled or deleted: its messages fail


def _pause() -> dt.timedelta:
    return dt.timedelta(seconds=settings.PLAZA_WEBHOOK_BREAKER_PAUSE_SECONDS)


def _probe_deadline(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=settings.PLAZA_WEBHOOK_LEASE_SECONDS)


def _take_probe(endpoint: Endpoint, now: dt.datetime, *, from_state: str) -> bool:
    """Move the endpoint to half-open with this worker's probe; True for the one worker that won."""
    won = Endpoint.objects.filter(
        pk=endpoint.pk, circuit_state=from_state, circuit_retry_at=endpoint.circuit_retry_at
    ).update(circuit_state=CircuitState.HALF_OPEN, circuit_retry_at=_probe_deadline(now))
    return bool(won)


def rate_take(endpoint: Endpoint, wanted: int, now: dt.datetime) -> int:
    """Take up to ``wanted`` sends from this second's allowance of the endpoint (shared by every
    worker through the cache); returns how many were granted."""
    limit = endpoint.rate_limit_per_second or settings.PLAZA_WEBHOOK_RATE_LIMIT
    if not limit or limit <= 0 or wanted <= 0:
        return wanted
    key = f"plaza:whrl:{endpoint.pk}:{int(now.timestamp())}"
    cache.add(key, 0, timeout=3)
    try:
        used_after = cache.incr(key, wanted)
    except ValueError:  # expired between add and incr
        cache.add(key, wanted, timeout=3)
        used_after = wanted
    used_before = used_after - wanted
    return max(0, min(wanted, limit - used_before))


def endpoint_admit(endpoint: Endpoint | None, wanted: int, now: dt.datetime) -> Admission:
    """Decide how many of ``wanted`` claimed messages of ``endpoint`` go out now."""
    if endpoint is None or endpoint.deleted_at is not None:
        return Admission(0, closed_reason="The endpoint was deleted.")
    if endpoint.status != EndpointStatus.ENABLED:
        reason = endpoint.disabled_reason or "The endpoint is disabled."
        return Admission(0, closed_reason=f"Endpoint disabled: {reason}"[:300])
    allowed = wanted
    state = endpoint.circuit_state
    if state == CircuitState.OPEN:
        if endpoint.circuit_retry_at and endpoint.circuit_retry_at > now:
            return Admission(0, retry_at=endpoint.circuit_retry_at)
        if not _take_probe(endpoint, now, from_state=CircuitState.OPEN):
            return Admission(0, retry_at=now + _pause())
        allowed = 1
    elif state == CircuitState.HALF_OPEN:
        if endpoint.circuit_retry_at and endpoint.circuit_retry_at > now:
            return Admission(0, retry_at=endpoint.circuit_retry_at)
        if not _take_probe(endpoint, now, from_state=CircuitState.HALF_OPEN):
            return Admission(0, retry_at=now + _pause())
        allowed = 1
    granted = rate_take(endpoint, min(allowed, wanted), now)
    if granted < wanted:
        # The rest wait for the next second (or the breaker's pause for a probe's companions).
        later = now + (_pause() if allowed < wanted else dt.timedelta(seconds=1))
        return Admission(granted, retry_at=later)
    return Admission(granted)


def nothing_to_record(endpoint: Endpoint | None, results: list[bool]) -> bool:
    """True when a batch of successes finds the endpoint healthy (as the batch saw it): the common
    case costs no row lock and no write. A failure recorded meanwhile by another worker is reset by
    the next batch that sees it."""
    return (
        endpoint is not None
        and all(results)
        and endpoint.circuit_state == CircuitState.CLOSED
        and endpoint.consecutive_failures == 0
        and endpoint.failing_since is None
    )


def endpoint_record(endpoint_id: str, results: list[bool], now: dt.datetime) -> str | None:
    """Fold a batch's attempt results (True = delivered, False = failed; in completion order)
    into the endpoint's breaker and failure streak. Runs inside the caller's transaction and
    returns the reason when this batch auto-disabled the endpoint (the caller notifies)."""
    if not results:
        return None
    endpoint = Endpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        return None
    fields: dict = {}
    if any(results):
        last_ok = len(results) - 1 - results[::-1].index(True)
        failures = len(results) - 1 - last_ok
        consecutive = failures
        failing_since = now if failures else None
        if endpoint.circuit_state != CircuitState.CLOSED or endpoint.consecutive_failures != consecutive:
            fields.update(circuit_state=CircuitState.CLOSED, circuit_opened_at=None, circuit_retry_at=None)
    else:
        consecutive = endpoint.consecutive_failures + len(results)
        failing_since = endpoint.failing_since or now
    fields.update(consecutive_failures=consecutive, failing_since=failing_since)
    threshold = max(1, settings.PLAZA_WEBHOOK_BREAKER_THRESHOLD)
    state = fields.get("circuit_state", endpoint.circuit_state)
    if consecutive and (state == CircuitState.HALF_OPEN or (state == CircuitState.CLOSED and consecutive >= threshold)):
        fields.update(circuit_state=CircuitState.OPEN, circuit_opened_at=now, circuit_retry_at=now + _pause())
    disabled = None
    limit = dt.timedelta(days=settings.PLAZA_WEBHOOK_DISABLE_AFTER_DAYS)
    if failing_since is not None and now - failing_since >= limit and endpoint.status == EndpointStatus.ENABLED:
        disabled = (
            f"Disabled automatically: every attempt failed for {settings.PLAZA_WEBHOOK_DISABLE_AFTER_DAYS} days "
            f"(since {failing_since:%Y-%m-%d %H:%M} UTC)."
        )
        fields.update(status=EndpointStatus.DISABLED, disabled_reason=disabled[:300], disabled_at=now)
    fields["updated_at"] = now
    Endpoint.objects.filter(pk=endpoint.pk).update(**fields)
    if disabled:
        _audit_disabled(endpoint, disabled)
    return disabled


def endpoint_gone(endpoint_id: str, now: dt.datetime) -> str | None:
    """The endpoint answered 410 Gone: disable it (inside the caller's transaction). Returns the
    reason when this call disabled it."""
    reason = f"Disabled automatically: the endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC."
    changed = Endpoint.objects.filter(pk=endpoint_id, status=EndpointStatus.ENABLED).update(
        status=EndpointStatus.DISABLED, disabled_reason=reason, disabled_at=now, updated_at=now
    )
    if not changed:
        return None
    endpoint = Endpoint.objects.select_related("extension").get(pk=endpoint_id)
    _audit_disabled(endpoint, reason)
    return reason


def _audit_disabled(endpoint: Endpoint, reason: str) -> None:
    org_id = Endpoint.objects.filter(pk=endpoint.pk).values_list("extension__org_id", flat=True).first() or ""
    audit_record(
        action="webhooks.endpoint_disabled",
        org_id=org_id,
        target=endpoint,
        target_label=endpoint.url[:200],
        changes={"status": [EndpointStatus.ENABLED, EndpointStatus.DISABLED], "reason": reason},
    )


def endpoint_disabled_notify(endpoint_id: str, reason: str) -> None:
    """E-mail the publisher organisation's owners and admins that an endpoint was disabled."""
    from apps.orgs.models import Membership, Role

    endpoint = Endpoint.objects.select_related("extension", "extension__org").filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    extension = endpoint.extension
    emails = sorted(
        set(
            Membership.objects.filter(
                org_id=extension.org_id, role__in=[Role.OWNER, Role.ADMIN], deactivated_at__isnull=True
            )
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )
    if not emails:
        return
    link = f"{settings.PLAZA_BASE_URL.rstrip('/')}/orgs/{extension.org_id}/webhooks/endpoints/{endpoint.pk}/"
    body = (
        f"The {endpoint.environment} webhook endpoint {endpoint.url} of {extension.key} was disabled.\n\n"
        f"Reason: {reason}\n\n"
        "Messages for it are kept in the dead-letter queue. Fix the endpoint, re-enable it and replay "
        f"the failed messages from the portal: {link}\n"
    )
    send_mail(f"[Plaza] Webhook endpoint disabled: {extension.key}", body, None, emails)


def notify_after_commit(endpoint_id: str, reason: str) -> None:
    transaction.on_commit(lambda: endpoint_disabled_notify(endpoint_id, reason))


def endpoint_health_reset(endpoint: Endpoint) -> None:
    """Close the breaker and forget the failure streak (re-enabling calls this; the caller saves
    nothing else and runs it inside its own transaction)."""
    now = clock.now()
    Endpoint.objects.filter(pk=endpoint.pk).update(
        circuit_state=CircuitState.CLOSED,
        consecutive_failures=0,
        circuit_opened_at=None,
        circuit_retry_at=None,
        failing_since=None,
        updated_at=now,
    )
    for name, value in (
        ("circuit_state", CircuitState.CLOSED),
        ("consecutive_failures", 0),
        ("circuit_opened_at", None),
        ("circuit_retry_at", None),
        ("failing_since", None),
    ):
        setattr(endpoint, name, value)


def endpoints_stale_disable(now: dt.datetime | None = None) -> int:
    """Disable endpoints whose failure streak outlived the limit though no attempt ran lately
    (their messages wait behind an open breaker). Called by the sweep."""
    now = now or clock.now()
    limit = now - dt.timedelta(days=settings.PLAZA_WEBHOOK_DISABLE_AFTER_DAYS)
    count = 0
    for endpoint_id in Endpoint.objects.filter(
        Q(status=EndpointStatus.ENABLED), failing_since__lte=limit, deleted_at__isnull=True
    ).values_list("pk", flat=True)[:100]:
        with transaction.atomic():
            endpoint = Endpoint.objects.select_for_update().filter(pk=endpoint_id).first()
            if endpoint is None or endpoint.status != EndpointStatus.ENABLED or endpoint.failing_since is None:
                continue
            reason = (
                f"Disabled automatically: every attempt failed for {settings.PLAZA_WEBHOOK_DISABLE_AFTER_DAYS} "
                f"days (since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC)."
            )
            Endpoint.objects.filter(pk=endpoint_id).update(
                status=EndpointStatus.DISABLED, disabled_reason=reason[:300], disabled_at=now, updated_at=now
            )
            _audit_disabled(endpoint, reason)
            notify_after_commit(endpoint_id, reason)
            count += 1
    return count
