"""Celery tasks of the events app: thin, they call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="events.purge_idempotency_records")
def purge_idempotency_records() -> int:
    """Delete the idempotency records past their expiry (``PLAZA_IDEMPOTENCY_HOURS``); run by beat
    every hour. An expired record is already ignored by ingestion, so a late purge changes nothing."""
    from apps.events.ingest import idempotency_records_purge

    return idempotency_records_purge()
