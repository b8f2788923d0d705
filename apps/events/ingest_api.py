"""Event ingestion and the event log. Thin: parse, call ``apps.events.ingest`` / ``eventlog``,
render. The ingestion bodies are read here (not by ninja) so that size, JSON and every event of a
batch are answered precisely, and so that a retried Idempotency-Key gets the first answer byte
for byte."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from ninja import Query, Router

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import ValidationFailed
from apps.events import eventlog, ingest
from apps.events.ingest_schemas import (
    BatchOut,
    EventAcceptedOut,
    EventBatchIn,
    EventDetailOut,
    EventOut,
    EventSendIn,
)
from apps.orgs.selectors import get_org_for_principal

router = Router(tags=["events"])

_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Retrying with the same key and body within 24 hours returns the first answer "
    "(with `Idempotent-Replayed: true`); the same key with another body is `409 idempotency_key_reused`.",
}


def _inline(node, defs: dict):
    """The JSON Schema with its local ``$defs`` references replaced by the definitions (the
    OpenAPI document resolves ``$ref`` against its own root)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _body_doc(schema) -> dict:
    document = schema.model_json_schema()
    return {
        "parameters": [_IDEMPOTENCY_HEADER],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(document, document.get("$defs", {}))}},
        },
    }


def _answer(outcome: ingest.Outcome) -> JsonResponse:
    response = JsonResponse(outcome.body, status=outcome.status)
    if outcome.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _idempotency(request: HttpRequest, sender: ingest.Sender, route: str, body: dict) -> ingest.Idempotency | None:
    key = ingest.clean_idempotency_key(request.headers.get("Idempotency-Key"))
    if key is None:
        return None
    return ingest.Idempotency(key=key, key_org_id=sender.key_org_id, hash=ingest.request_hash(route, body))


@router.post(
    "/events",
    response={202: EventAcceptedOut},
    summary="Send an event",
    openapi_extra=_body_doc(EventSendIn),
    description="Validated against the event type's schema (its latest version, or `schema_version`) and "
    "stored with its outbox row; delivered to the tenant's installations that may receive it. With a tenant "
    "token (`events:write`) the tenant is the token's organisation; a platform host token (`events:host`) "
    "names it in `tenant`. Body at most 256 KiB.",
)
def send_event(request: HttpRequest):
    body = ingest.parse_body(request.body, limit=settings.PLAZA_EVENTS_MAX_BODY_BYTES)
    sender = ingest.sender_resolve(request.auth, body.get("tenant"))
    outcome = ingest.event_ingest(sender=sender, item=body, idempotency=_idempotency(request, sender, "events", body))
    return _answer(outcome)


@router.post(
    "/events/batch",
    response={200: BatchOut},
    summary="Send up to 100 events",
    openapi_extra=_body_doc(EventBatchIn),
    description="Each event is checked and answered on its own (`data[i].status`: `accepted` with the event, "
    "or `refused` with the error); the accepted ones are stored together in one transaction. Body at most "
    "2 MiB, each event at most 256 KiB.",
)
def send_event_batch(request: HttpRequest):
    body = ingest.parse_body(request.body, limit=settings.PLAZA_EVENTS_MAX_BATCH_BYTES)
    unknown = sorted(k for k in body if k not in ("tenant", "events"))
    if unknown:
        raise ValidationFailed(
            f"Unknown field {unknown[0]!r}: a batch has 'events' (and 'tenant').",
            code="unknown_field",
            param=unknown[0][:100],
        )
    sender = ingest.sender_resolve(request.auth, body.get("tenant"))
    outcome = ingest.events_ingest_batch(
        sender=sender, items=body.get("events"), idempotency=_idempotency(request, sender, "events/batch", body)
    )
    return _answer(outcome)


@router.get("/orgs/{org_id}/events", response=Page[EventOut], summary="Search the event log")
def list_events(
    request: HttpRequest,
    org_id: str,
    type: str | None = Query(None, max_length=200, description="An event type, like order.created."),
    since: str | None = Query(None, max_length=64, description="Received at or after (RFC 3339 or a date)."),
    until: str | None = Query(None, max_length=64, description="Received before (RFC 3339 or a date)."),
    id: str | None = Query(None, max_length=64, description="One event id (evt_…)."),
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    """The organisation's events, newest first (payloads in the event itself)."""
    org = get_org_for_principal(request.auth, org_id, "event.view")
    filters = eventlog.clean_filters(type=type, since=since, until=until, id=id)
    rows, next_cursor = paginate(eventlog.events_of(org, filters), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.get("/orgs/{org_id}/events/{event_id}", response=EventDetailOut, summary="Get an event")
def get_event(request: HttpRequest, org_id: str, event_id: str):
    org = get_org_for_principal(request.auth, org_id, "event.view")
    return eventlog.get_event_for_principal(request.auth, org, event_id)
