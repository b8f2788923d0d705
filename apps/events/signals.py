"""In-process hooks event ingestion sends (first-party code only; see docs/architecture.md)."""

from __future__ import annotations

from django.dispatch import Signal

events_accepted = Signal()
"""Sent after commit when ingestion accepted events (``apps.events.ingest``): once per request —
one id for ``POST /api/v1/events``, one per accepted event for a batch or an extension's emits.

- ``sender``: the ``Event`` class.
- ``dispatch_ids``: the ids (``edp_…``) of the ``EventDispatch`` outbox rows written with the
  events, in the order the events were sent.

Receivers must not raise (sent with ``send_robust``; a failure is logged); return values are
ignored. Receivers should only enqueue work: the outbox rows are the durable record, and a lost
signal is caught by the consumer's sweep. Webhook fan-out (apps/webhooks/receivers.py) listens."""
