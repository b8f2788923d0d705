"""Sandbox hook messages: running a hook, ingesting what it emitted, and keeping hooks from looping.

A ``kind=hook`` message runs ``module.export`` of the installation through the installs runtime
(which records the invocation: the same accounting as any run). When the run succeeds, the events
the hook emitted (``emit_event``) go to ingestion (``apps.events.ingest.events_emit``) with the
message id as the idempotency key: a hook run again — its attempt was not recorded because the
worker died, or a replay — never stores its events twice. Ingestion failing (the database, not a
refused event) fails the attempt, so the hook runs again later and its events are not lost.

Loops. An emitted event (``source=extension``) fans out like any other, so hooks could trigger each
other forever (an extension reacting to its own event, or two extensions answering each other).
Two rules stop that, in fan-out:

- an extension-emitted event never runs a hook of the installation that emitted it;
- hooks run for an emitted event only while its **emission depth** — how many hook runs led to it,
  followed back through the emitting messages — is at most ``PLAZA_WEBHOOK_HOOK_CHAIN_MAX``
  (default 3). Deeper events are stored and sent to webhook endpoints, but run no hooks.

Webhook endpoints are not affected: they receive emitted events like any other (a loop through an
extension's own backend is that backend's to avoid, as with any webhook).
"""

from __future__ import annotations

import json
import logging
import time

from django.conf import settings

from apps.webhooks import transport
from apps.webhooks.services.claim import Claimed

log = logging.getLogger(__name__)

EMIT_KEY_PREFIX = "emit:"  # apps.events.ingest.events_emit: "emit:{installation id}:{our key}"


def _excerpt_text(text: str) -> str:
    data = text.encode("utf-8", errors="replace")[: transport.EXCERPT_BYTES]
    return data.decode("utf-8", errors="ignore")


def chain_max() -> int:
    return max(0, int(getattr(settings, "PLAZA_WEBHOOK_HOOK_CHAIN_MAX", 3)))


def emission_depth(event, *, limit: int | None = None) -> int:
    """How many hook runs led to ``event``: 0 for an event the host or a tenant sent, 1 for one a
    hook emitted while handling such an event, and so on (followed back through the emitting
    messages; counting stops past ``limit``)."""
    from apps.events.models import Event, EventSource
    from apps.webhooks.models import Message

    limit = chain_max() if limit is None else limit
    depth = 0
    source, key = event.source, event.idempotency_key
    while source == EventSource.EXTENSION and depth <= limit:
        depth += 1
        parts = (key or "").split(":")
        if len(parts) != 3 or f"{parts[0]}:" != EMIT_KEY_PREFIX:
            break  # emitted without a message to follow (not by a hook run)
        parent_id = Message.objects.filter(pk=parts[2]).values_list("event_id", flat=True).first()
        parent = Event.objects.filter(pk=parent_id).values_list("source", "idempotency_key").first()
        if parent is None:
            break
        source, key = parent
    return depth


def hook_policy(event) -> tuple[bool, str | None]:
    """For fan-out: (whether ``event`` runs hooks at all, the installation whose hooks it never runs)."""
    from apps.events.models import EventSource

    if event.source != EventSource.EXTENSION:
        return True, None
    return emission_depth(event) <= chain_max(), event.source_id or None


def _emit(installation, message: Claimed, emitted: list) -> str:
    """Hand ``emitted`` to ingestion; returns a one-line summary for the attempt's excerpt."""
    from apps.events.ingest import events_emit

    results = events_emit(
        tenant=installation.org, installation_id=installation.pk, emitted=emitted, idempotency_key=message.pk
    )
    accepted = [r for r in results if r.get("status") == "accepted"]
    refused = [r for r in results if r.get("status") != "accepted"]
    summary = f"Emitted {len(results)} event(s): {len(accepted)} accepted"
    if refused:
        codes = sorted({(r.get("error") or {}).get("code", "refused") for r in refused})
        summary += f", {len(refused)} refused ({', '.join(codes)})"
        log.warning("webhooks: hook %s of %s emitted refused events: %s", message.hook, installation.pk, codes)
    return summary + ".\n"


def hook_run(message: Claimed) -> transport.Outcome:
    """Run a hook message's export with the envelope as input; a success ingests its emitted events."""
    from apps.installs.models import Installation
    from apps.installs.services.runtime import installation_invoke

    started = time.perf_counter()
    installation = Installation.objects.select_related("org").filter(pk=message.installation_id).first()
    if installation is None:
        return transport.Outcome(error_class="installation_gone", error_message="The installation no longer exists.")
    export = message.hook.split(".", 1)[-1]
    try:
        result = installation_invoke(
            installation=installation, export=export, input_value=json.loads(message.body), correlation_id=message.pk
        )
    except Exception as exc:  # a runtime fault is this attempt's failure, not the batch's
        log.exception("webhooks: hook %s of %s crashed", message.hook, message.installation_id)
        return transport.Outcome(error_class="hook_error", error_message=f"{type(exc).__name__}: {exc}"[:300])
    duration = int((time.perf_counter() - started) * 1000)
    if not result.ok:
        return transport.Outcome(
            error_class=f"hook_{result.outcome}"[:40], error_message=(result.detail or "")[:300], duration_ms=duration
        )
    summary = ""
    if result.emitted:
        try:
            summary = _emit(installation, message, list(result.emitted))
        except Exception as exc:  # not stored: fail the attempt, the retry emits again (same key)
            log.exception("webhooks: events emitted by hook %s of %s not stored", message.hook, installation.pk)
            return transport.Outcome(
                error_class="hook_emit_error",
                error_message=f"The emitted events were not stored: {type(exc).__name__}: {exc}"[:300],
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
    return transport.Outcome(
        status_code=200,
        excerpt=_excerpt_text(summary + (result.logs or "")),
        duration_ms=int((time.perf_counter() - started) * 1000),
    )
