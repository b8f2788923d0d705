"""Schemas of the ingestion API and the event log (OpenAPI; the ingestion bodies are parsed by
``apps.events.ingest`` itself, so that every event of a batch is answered on its own)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Field, Schema


class EventIn(Schema):
    type: str = Field(..., max_length=200, examples=["order.created"], description="A registered event type.")
    payload: dict[str, Any] = Field(..., description="The event's data, valid against the schema version.")
    schema_version: int | None = Field(None, ge=1, description="The schema version; the type's latest when left out.")
    occurred_at: dt.datetime | None = Field(
        None, description="When it happened (RFC 3339 with a time zone; not in the future, at most 30 days ago)."
    )


class EventSendIn(EventIn):
    tenant: str | None = Field(
        None, description="The tenant organisation (org_…). Required with a host token; else the token's own."
    )


class EventBatchIn(Schema):
    tenant: str | None = Field(None, description="As for one event: the tenant of every event of the batch.")
    events: list[EventIn] = Field(..., min_length=1, max_length=100)


class EventAcceptedOut(Schema):
    id: str
    status: str = Field(..., examples=["accepted"])
    type: str
    schema_version: int
    tenant: str
    occurred_at: dt.datetime
    received_at: dt.datetime


class BatchErrorOut(Schema):
    type: str
    code: str
    message: str
    param: str | None = None
    details: list[dict[str, Any]] | None = None


class BatchItemOut(Schema):
    index: int
    status: str = Field(..., description="accepted | refused")
    id: str | None = None
    type: str | None = None
    schema_version: int | None = None
    tenant: str | None = None
    occurred_at: dt.datetime | None = None
    received_at: dt.datetime | None = None
    error: BatchErrorOut | None = None


class BatchOut(Schema):
    data: list[BatchItemOut]
    accepted: int
    refused: int


class EventOut(Schema):
    id: str
    type: str
    schema_version: int
    occurred_at: dt.datetime
    received_at: dt.datetime
    source: str = Field(..., description="host | tenant | extension")
    source_id: str = Field(..., description="The sending token's id, or the emitting installation's.")
    idempotency_key: str | None = None
    dispatch_status: str | None = Field(None, description="The outbox row: pending | done.")

    @staticmethod
    def resolve_type(obj) -> str:
        return obj.event_type.name

    @staticmethod
    def resolve_dispatch_status(obj) -> str | None:
        dispatch = getattr(obj, "dispatch", None)
        return dispatch.status if dispatch is not None else None


class EventDetailOut(EventOut):
    payload: dict[str, Any]
