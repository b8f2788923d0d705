"""Fan-out: an accepted event becomes one message per subscribed installation and destination.

Ingestion (``apps.events``) writes an ``EventDispatch`` outbox row with every accepted event and
sends ``events_accepted`` after commit; the receiver here only enqueues ``webhooks.process_dispatch``.
:func:`dispatch_process` leases the row, then in **one transaction** writes the event's messages
and marks the row done. A message is unique per (event, installation, endpoint) — or (event,
installation, hook) — so processing a row twice, or backfilling an event again, creates nothing
new. A lost signal or task leaves the row pending: the sweep picks it up.

Who receives an event of type ``T`` of tenant ``O``:

- every **active** installation in ``O`` whose effective scopes (granted ∩ its version's) include
  ``events:read:T``;
- **webhooks**: the installation's extension's enabled endpoints of the environment of ``O``
  (``sandbox`` when ``O`` is a publisher's sandbox tenant, else ``production``) whose
  ``event_types`` is empty or names ``T`` (manifest ``hooks`` with a ``url`` become such endpoints,
  see ``services.endpoints``);
- **sandbox hooks**: each manifest hook ``{"event": T, "module", "export"}`` of the installed
  version, as a ``kind=hook`` message run through the sandbox with the same schedule and attempts
  — except, for an event a hook emitted, the emitting installation's hooks, and every hook once
  the chain of emitting hooks is deeper than ``PLAZA_WEBHOOK_HOOK_CHAIN_MAX`` (``services.hooks``).

Each message's ``data`` is the payload minimised to the installation's scopes
(``apps.events.minimise.payload_for_scopes``). The body (the envelope below) is serialised once:
every retry sends the same bytes.

    {"type": "order.created", "timestamp": "<occurred_at, ISO 8601 UTC>", "data": {...},
     "event_id": "evt_…", "schema_version": 1, "tenant_id": "org_…",
     "installation_id": "inst_…", "environment": "production"}
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from apps.core import clock
from apps.webhooks.models import Endpoint, EndpointStatus, Environment, Message, MessageKind, MessageStatus
from apps.webhooks.services.hooks import hook_policy

log = logging.getLogger(__name__)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def envelope(event, *, installation_id: str, data: dict, environment: str) -> dict:
    """The JSON every destination receives for ``event`` (documented in docs/webhooks.md)."""
    return {
        "type": event.event_type.name,
        "timestamp": _iso(event.occurred_at),
        "data": data,
        "event_id": event.pk,
        "schema_version": event.schema_version,
        "tenant_id": event.org_id,
        "installation_id": installation_id,
        "environment": environment,
    }


def serialise(document: dict) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def environment_of(org) -> str:
    return Environment.SANDBOX if getattr(org, "sandbox_of_id", None) else Environment.PRODUCTION


def _hooks_for(manifest: dict, event_type: str) -> list[str]:
    hooks = []
    for hook in (manifest or {}).get("hooks") or []:
        if not isinstance(hook, dict) or hook.get("event") != event_type:
            continue
        module, export = hook.get("module"), hook.get("export")
        if isinstance(module, str) and isinstance(export, str) and module and export:
            name = f"{module}.{export}"
            if name not in hooks:
                hooks.append(name)
    return hooks


def _subscribes(endpoint: Endpoint, event_type: str) -> bool:
    types = endpoint.event_types or []
    return not types or event_type in types


def messages_for_event(event, *, endpoints: Iterable[Endpoint] | None = None) -> list[Message]:
    """Create the messages of ``event`` that do not exist yet; returns the new ones (pending, due
    now). ``endpoints`` restricts the fan-out to those endpoints and leaves hooks out (a backfill to
    a new endpoint). Call inside a transaction; the caller kicks delivery
    (``delivery.messages_kick``)."""
    from apps.events.minimise import payload_for_scopes
    from apps.events.models import EventSchema
    from apps.installs.models import Installation, InstallationStatus
    from apps.installs.selectors import effective_scopes

    event_type = event.event_type.name
    scope = f"events:read:{event_type}"
    environment = environment_of(event.org)
    installations = [
        inst
        for inst in Installation.objects.filter(org_id=event.org_id, status=InstallationStatus.ACTIVE)
        .select_related("version")
        .order_by("id")
        if scope in effective_scopes(inst)
    ]
    if not installations:
        return []
    extension_ids = {inst.extension_id for inst in installations}
    if endpoints is None:
        candidates = Endpoint.objects.filter(
            extension_id__in=extension_ids,
            environment=environment,
            status=EndpointStatus.ENABLED,
            deleted_at__isnull=True,
        ).order_by("created_at", "id")
        with_hooks = True
    else:
        candidates = [
            e
            for e in endpoints
            if e.extension_id in extension_ids and e.environment == environment and e.deleted_at is None
        ]
        with_hooks = False
    by_extension: dict[str, list[Endpoint]] = {}
    for endpoint in candidates:
        if _subscribes(endpoint, event_type):
            by_extension.setdefault(endpoint.extension_id, []).append(endpoint)

    # Loops of hooks triggered by emitted events stop here (services/hooks.py, docs/webhooks.md).
    hooks_run, hookless_installation = hook_policy(event) if with_hooks else (False, None)

    existing = set(
        Message.objects.filter(event_id=event.pk, is_test=False).values_list("installation_id", "endpoint_id", "hook")
    )
    schema = EventSchema.objects.filter(event_type_id=event.event_type_id, version=event.schema_version).first()
    now = clock.now()
    new: list[Message] = []
    for inst in installations:
        targets = [(MessageKind.WEBHOOK, e, "") for e in by_extension.get(inst.extension_id, [])]
        if hooks_run and inst.pk != hookless_installation:
            targets += [(MessageKind.HOOK, None, h) for h in _hooks_for(inst.version.manifest, event_type)]
        targets = [t for t in targets if (inst.pk, t[1].pk if t[1] else None, t[2]) not in existing]
        if not targets:
            continue
        scopes = set(effective_scopes(inst))
        data = payload_for_scopes(schema, event.payload, scopes) if schema is not None else {}
        body = serialise(envelope(event, installation_id=inst.pk, data=data, environment=environment))
        for kind, endpoint, hook in targets:
            new.append(
                Message(
                    org_id=event.org_id,
                    event_id=event.pk,
                    installation_id=inst.pk,
                    kind=kind,
                    endpoint=endpoint,
                    hook=hook,
                    event_type=event_type,
                    body=body,
                    status=MessageStatus.PENDING,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    if new:
        # ignore_conflicts: a concurrent fan-out of the same event (an expired lease taken over)
        # may have written some of these; the unique constraints keep one of each.
        Message.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return new


def dispatch_claim(dispatch_id: str, now: dt.datetime | None = None) -> bool:
    """Lease a pending dispatch row to this caller; False when it is done or leased elsewhere."""
    from apps.events.models import DispatchStatus, EventDispatch

    now = now or clock.now()
    lease = now + dt.timedelta(seconds=settings.PLAZA_WEBHOOK_DISPATCH_LEASE_SECONDS)
    return bool(
        EventDispatch.objects.filter(pk=dispatch_id, status=DispatchStatus.PENDING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .update(lease_until=lease, attempts=F("attempts") + 1)
    )


def dispatch_process(dispatch_id: str) -> int:
    """Fan out one accepted event: its messages and its row marked done, in one transaction.
    Returns how many messages were created (0 when the row was done or is leased elsewhere)."""
    from apps.events.models import DispatchStatus, EventDispatch

    if not dispatch_claim(dispatch_id):
        return 0
    from apps.webhooks.services.delivery import messages_kick

    with transaction.atomic():
        dispatch = (
            EventDispatch.objects.select_related("event", "event__event_type", "event__org")
            .filter(pk=dispatch_id, status=DispatchStatus.PENDING)
            .first()
        )
        if dispatch is None:
            return 0
        created = messages_for_event(dispatch.event)
        EventDispatch.objects.filter(pk=dispatch_id, status=DispatchStatus.PENDING).update(
            status=DispatchStatus.DONE, done_at=clock.now(), lease_until=None
        )
        if created:
            messages_kick()
    return len(created)


def dispatches_due(*, older_than: float | None = None, limit: int = 500) -> list[str]:
    """Pending dispatch rows whose task seems lost (older than the grace period, lease free)."""
    from apps.events.models import DispatchStatus, EventDispatch

    now = clock.now()
    grace = settings.PLAZA_WEBHOOK_DISPATCH_GRACE_SECONDS if older_than is None else older_than
    return list(
        EventDispatch.objects.filter(status=DispatchStatus.PENDING, created_at__lte=now - dt.timedelta(seconds=grace))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
