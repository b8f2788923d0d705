"""Signal receivers of the webhooks app (connected in ``WebhooksConfig.ready``, so in every
process: web, worker, beat, shell).

- ``events_accepted`` → fan-out (below);
- ``channel_released`` and ``installation_changed`` → manifest endpoint sync, connected by
  importing ``apps.webhooks.services.endpoints`` (its ``manifest`` module declares them)."""

from __future__ import annotations

from django.dispatch import receiver

from apps.events.signals import events_accepted
from apps.webhooks.services import endpoints as _endpoints  # noqa: F401  (manifest endpoint sync receivers)


@receiver(events_accepted, dispatch_uid="webhooks.fanout_on_events_accepted")
def fanout_on_events_accepted(sender, dispatch_ids: list[str] | None = None, **kwargs) -> None:
    """Enqueue the fan-out of each accepted event (sent after the ingestion commit). Only enqueues:
    the outbox row is the durable record, and the sweep catches a lost task."""
    from apps.webhooks.tasks import process_dispatch

    for dispatch_id in dispatch_ids or []:
        process_dispatch.delay(dispatch_id)
