"""Managing an extension's webhook endpoints: create, update, disable/enable, delete, rotate the
signing secret, send a test event, and keep ``source=manifest`` endpoints in step with the
manifest's ``hooks`` that carry a ``url``.

Every function here is keyword-only, runs in one transaction and writes an audit entry on the
publisher organisation's chain. A secret is returned once, by the call that creates it, and never
again: lists show its last four characters.

URL checks at save time run **without DNS** (``endpoint_url_clean``): a name's addresses change,
so resolving now proves nothing about the next send, and tests stay offline. The SSRF guard
(``apps.core.netguard``) runs again at every send after resolving, which is what protects Plaza;
the save-time check only refuses what can never be valid: a scheme other than https (outside
development), credentials in the URL, IP literals (in any notation) of private, loopback,
link-local or otherwise non-public addresses, and names that are internal by construction
(``localhost``, ``*.internal``, ``*.local``, single-label names).
"""

from __future__ import annotations

import datetime as dt
import json

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from apps.core import clock
from apps.core.errors import Conflict, RateLimited, ValidationFailed
from apps.core.ids import new_id
from apps.extensions.models import Extension
from apps.orgs.policy import Principal
from apps.webhooks.models import (
    Endpoint,
    EndpointSecret,
    EndpointSource,
    EndpointStatus,
    Environment,
    Message,
    MessageKind,
    MessageStatus,
)
from apps.webhooks.services.endpoints._common import (  # noqa: F401  (the package's interface)
    _UNSET,
    DEFAULT_OVERLAP_HOURS,
    MANIFEST_REMOVED,
    MAX_OVERLAP_HOURS,
    _audit,
    _ensure_live,
    _ensure_manual,
    _lock,
    _secret_add,
    acting_user,
    max_endpoints,
    secret_plaintexts,
)
from apps.webhooks.services.endpoints.checks import (  # noqa: F401
    _clean_description,
    _clean_environment,
    _clean_rate,
    endpoint_url_clean,
    event_types_clean,
    host_refusal,
    subscribable_event_types,
)


# --- use cases -----------------------------------------------------------------------------------
@transaction.atomic
def endpoint_create(
    *,
    principal: Principal | None,
    extension: Extension,
    url: str,
    environment: str = Environment.PRODUCTION,
    description: str = "",
    event_types: list[str] | None = None,
    rate_limit_per_second: int | None = None,
) -> tuple[Endpoint, str]:
    """Add an endpoint to ``extension`` and return it with its signing secret — the only time the
    secret is shown. 400 ``url_*``, ``event_type_not_subscribed``; 409 ``endpoint_limit``."""
    environment = _clean_environment(environment)
    url = endpoint_url_clean(url)
    types = event_types_clean(extension, event_types)
    description = _clean_description(description)
    rate = _clean_rate(rate_limit_per_second)
    Extension.objects.select_for_update().filter(pk=extension.pk).values_list("pk", flat=True).get()
    if Endpoint.objects.filter(extension=extension, environment=environment, deleted_at__isnull=True).count() >= (
        max_endpoints()
    ):
        raise Conflict(
            f"{extension.key} already has {max_endpoints()} {environment} endpoints; delete one first.",
            code="endpoint_limit",
        )
    now = clock.now()
    endpoint = Endpoint.objects.create(
        extension=extension,
        environment=environment,
        url=url,
        description=description,
        event_types=types,
        source=EndpointSource.MANUAL,
        rate_limit_per_second=rate,
        created_at=now,
        updated_at=now,
        created_by=acting_user(principal),
    )
    secret, raw = _secret_add(endpoint)
    _audit(
        "webhook_endpoint.created",
        endpoint,
        {"url": url, "environment": environment, "event_types": types, "secret": f"…{secret.last4}"},
    )
    return endpoint, raw


@transaction.atomic
def endpoint_update(
    *,
    principal: Principal | None,
    endpoint: Endpoint,
    url=_UNSET,
    description=_UNSET,
    event_types=_UNSET,
    rate_limit_per_second=_UNSET,
) -> Endpoint:
    """Change an endpoint's URL, description, event filter or rate limit (fields left out stay).
    A manifest endpoint's URL and event types come from the manifest (409
    ``endpoint_managed_by_manifest``)."""
    endpoint = _lock(endpoint)
    _ensure_live(endpoint)
    changes: dict = {}
    if url is not _UNSET:
        url = endpoint_url_clean(url)
        if url != endpoint.url:
            _ensure_manual(endpoint, "URL")
            changes["url"] = [endpoint.url, url]
            endpoint.url = url
    if event_types is not _UNSET:
        types = event_types_clean(endpoint.extension, event_types)
        if types != list(endpoint.event_types or []):
            _ensure_manual(endpoint, "event types")
            changes["event_types"] = [endpoint.event_types, types]
            endpoint.event_types = types
    if description is not _UNSET:
        text = _clean_description(description)
        if text != endpoint.description:
            changes["description"] = [endpoint.description, text]
            endpoint.description = text
    if rate_limit_per_second is not _UNSET:
        rate = _clean_rate(rate_limit_per_second)
        if rate != endpoint.rate_limit_per_second:
            changes["rate_limit_per_second"] = [endpoint.rate_limit_per_second, rate]
            endpoint.rate_limit_per_second = rate
    if not changes:
        return endpoint
    endpoint.updated_at = clock.now()
    endpoint.save(update_fields=[*(k for k in changes), "updated_at"])
    _audit("webhook_endpoint.updated", endpoint, changes)
    return endpoint


@transaction.atomic
def endpoint_disable(*, principal: Principal | None, endpoint: Endpoint, reason: str = "") -> Endpoint:
    """Stop sending to the endpoint until it is enabled again: new events make no messages for it,
    and its messages that come due meanwhile go to the dead-letter queue with the reason (replay
    them after enabling)."""
    endpoint = _lock(endpoint)
    _ensure_live(endpoint)
    reason = (reason or "").strip()[:300] or "Disabled by the publisher"
    if endpoint.status == EndpointStatus.DISABLED and endpoint.disabled_reason == reason:
        return endpoint
    endpoint.status = EndpointStatus.DISABLED
    endpoint.disabled_reason = reason
    endpoint.disabled_at = endpoint.updated_at = clock.now()
    endpoint.save(update_fields=["status", "disabled_reason", "disabled_at", "updated_at"])
    _audit("webhook_endpoint.disabled", endpoint, {"reason": reason})
    return endpoint


def _health_reset(endpoint: Endpoint) -> None:
    """Close the breaker and forget the failure streak (the engine's health module owns how)."""
    from apps.webhooks.services.health import endpoint_health_reset

    endpoint_health_reset(endpoint)


@transaction.atomic
def endpoint_enable(*, principal: Principal | None, endpoint: Endpoint) -> Endpoint:
    """Re-enable an endpoint (disabled by the publisher, by a 410, or automatically after days of
    failures): the breaker closes, the failure streak restarts, and messages still pending go out
    (those that failed while it was disabled are in the dead-letter queue, ready to replay)."""
    endpoint = _lock(endpoint)
    _ensure_live(endpoint)
    if endpoint.source == EndpointSource.MANIFEST and endpoint.disabled_reason.startswith(MANIFEST_REMOVED):
        raise Conflict(
            "This endpoint was removed from the manifest; add its hook back and release a version.",
            code="endpoint_removed_from_manifest",
        )
    # The URL is checked again: a manifest endpoint disabled because its URL was refused, or one
    # saved under looser rules, must not start sending by being enabled.
    endpoint_url_clean(endpoint.url)
    before = {"status": endpoint.status, "reason": endpoint.disabled_reason, "circuit": endpoint.circuit_state}
    endpoint.status = EndpointStatus.ENABLED
    endpoint.disabled_reason = ""
    endpoint.disabled_at = None
    endpoint.updated_at = clock.now()
    endpoint.save(update_fields=["status", "disabled_reason", "disabled_at", "updated_at"])
    _health_reset(endpoint)
    _audit("webhook_endpoint.enabled", endpoint, {"before": before})
    _kick_after_commit()
    return endpoint


@transaction.atomic
def endpoint_delete(*, principal: Principal | None, endpoint: Endpoint) -> Endpoint:
    """Delete an endpoint: it is kept (``deleted_at``) for its message history, stops receiving,
    and its pending messages are cancelled. Manifest endpoints go away by leaving the manifest."""
    endpoint = _lock(endpoint)
    if endpoint.deleted_at is not None:
        return endpoint
    _ensure_manual(endpoint, "hooks")
    now = clock.now()
    cancelled = Message.objects.filter(endpoint=endpoint, status=MessageStatus.PENDING).update(
        status=MessageStatus.CANCELLED, next_attempt_at=None, last_error="The endpoint was deleted."
    )
    endpoint.deleted_at = endpoint.updated_at = now
    endpoint.status = EndpointStatus.DISABLED
    endpoint.disabled_reason = "Deleted"
    endpoint.disabled_at = now
    endpoint.save(update_fields=["deleted_at", "updated_at", "status", "disabled_reason", "disabled_at"])
    _audit("webhook_endpoint.deleted", endpoint, {"cancelled_messages": cancelled})
    return endpoint


@transaction.atomic
def endpoint_secret_rotate(
    *, principal: Principal | None, endpoint: Endpoint, overlap_hours: int = DEFAULT_OVERLAP_HOURS
) -> tuple[EndpointSecret, str]:
    """A new signing secret, returned once. The secrets in use now stay valid for
    ``overlap_hours`` (0 to 168, default 24): until then every message carries a signature with
    each, so receivers switch over without losing a message."""
    if (
        isinstance(overlap_hours, bool)
        or not isinstance(overlap_hours, int)
        or not (0 <= overlap_hours <= MAX_OVERLAP_HOURS)
    ):
        raise ValidationFailed(
            f"The overlap is a whole number of hours from 0 to {MAX_OVERLAP_HOURS}.",
            code="overlap_invalid",
            param="overlap_hours",
        )
    endpoint = _lock(endpoint)
    _ensure_live(endpoint)
    now = clock.now()
    until = now + dt.timedelta(hours=overlap_hours)
    live = EndpointSecret.objects.filter(endpoint=endpoint).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    # A secret already expiring keeps the earlier end: rotating again never lengthens an overlap.
    live.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=until)).update(expires_at=until)
    secret, raw = _secret_add(endpoint, now=now)
    endpoint.updated_at = now
    endpoint.save(update_fields=["updated_at"])
    _audit(
        "webhook_endpoint.secret_rotated",
        endpoint,
        {"secret": f"…{secret.last4}", "previous_expire_at": until.isoformat(), "overlap_hours": overlap_hours},
    )
    return secret, raw


# --- test events ---------------------------------------------------------------------------------
def sample_payload(event_type: str) -> tuple[dict, int]:
    """The first example of the newest schema version of ``event_type`` (or ``{}``), and that
    version."""
    from apps.events.models import EventSchema

    schema = EventSchema.objects.filter(event_type__name=event_type).order_by("-version").first()
    if schema is None:
        return {}, 1
    examples = schema.examples if isinstance(schema.examples, list) else []
    example = next((e for e in examples if isinstance(e, dict)), None)
    return (example or {}), schema.version


def _kick_after_commit() -> None:
    """Ask the engine to look for due messages once this transaction commits."""
    from apps.webhooks.services.delivery import messages_kick

    messages_kick()


@transaction.atomic
def endpoint_test_send(*, principal: Principal | None, endpoint: Endpoint, event_type: str = "") -> Message:
    """Send a test message (``is_test``) to the endpoint through the normal engine: an example
    payload of one of the types it receives. It carries no tenant data and no installation."""
    endpoint = _lock(endpoint)  # parallel requests take turns, so the hourly count holds
    _ensure_live(endpoint)
    allowed = sorted(endpoint.event_types or subscribable_event_types(endpoint.extension))
    if not allowed:
        raise Conflict(
            f"{endpoint.extension.key} subscribes to no event type: declare events:read:<type> in its scopes.",
            code="no_event_types",
        )
    event_type = (event_type or "").strip() or allowed[0]
    if event_type not in allowed:
        raise ValidationFailed(
            f"This endpoint does not receive {event_type[:200]}; choose one of {', '.join(allowed)[:500]}.",
            code="event_type_not_subscribed",
            param="event_type",
        )
    now = clock.now()
    hourly = int(getattr(settings, "PLAZA_WEBHOOK_TEST_EVENTS_PER_HOUR", 60))
    recent = Message.objects.filter(endpoint=endpoint, is_test=True, created_at__gt=now - dt.timedelta(hours=1))
    if recent.count() >= hourly:
        raise RateLimited(
            f"At most {hourly} test events per endpoint per hour; try again later.",
            code="test_events_rate_limited",
            retry_after=600,
        )
    payload, version = sample_payload(event_type)
    message = Message(
        id=new_id("msg"),
        org_id=endpoint.extension.org_id,  # the publisher's own: no customer is involved
        kind=MessageKind.WEBHOOK,
        endpoint=endpoint,
        event_type=event_type,
        is_test=True,
        status=MessageStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
    )
    # The fan-out's envelope (services/fanout.py), with no tenant or installation, marked as a test.
    body = {
        "type": event_type,
        "timestamp": now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": payload,
        "event_id": None,
        "schema_version": version,
        "tenant_id": None,
        "installation_id": None,
        "environment": endpoint.environment,
        "test": True,
    }
    message.body = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    message.save(force_insert=True)
    _audit("webhook_endpoint.test_sent", endpoint, {"message": message.pk, "event_type": event_type})
    _kick_after_commit()
    return message


# The manifest sync and its receivers (imported last: it uses the helpers above).
from apps.webhooks.services.endpoints.manifest import (  # noqa: E402, F401
    manifest_endpoints_sync,
    manifest_hooks,
    manifest_sync_for_release,
    manifest_sync_for_sandbox,
    production_manifests,
)
