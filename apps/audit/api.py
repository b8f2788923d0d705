"""The audit log of an organisation: paged JSON and a JSON-lines export."""

from __future__ import annotations

import datetime as dt
import json

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import field_validator

from apps.audit.selectors import audit_event_as_dict, audit_events_for_org
from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, paginate
from apps.orgs.selectors import get_org_for_principal

router = Router(tags=["audit"])


class Party(Schema):
    type: str
    id: str
    label: str


class AuditEventOut(Schema):
    id: str
    org_id: str
    seq: int
    created_at: dt.datetime
    actor: Party
    action: str
    target: Party
    changes: dict
    ip: str
    user_agent: str
    request_id: str
    prev_hash: str
    hash: str


class AuditPage(Schema):
    data: list[AuditEventOut]
    next_cursor: str | None = None


class AuditFilters(Schema):
    action: str = Field("", max_length=80, description="Action or action prefix, e.g. 'member.'")
    actor: str = Field("", max_length=254, description="Actor id or part of the actor's label")
    target: str = Field("", max_length=254, description="Target id or part of the target's label")
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _in_utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        """Compare in UTC: PostgreSQL refuses offsets beyond ±15:59 (a 500), and near year 1 or
        9999 the conversion leaves the calendar."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError("Date out of range.") from None


@router.get("/orgs/{org_id}/audit-events", response=AuditPage, summary="List audit entries, newest first")
def list_audit_events(
    request: HttpRequest,
    org_id: str,
    filters: Query[AuditFilters],
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    org = get_org_for_principal(request.auth, org_id, "audit.view")
    qs = audit_events_for_org(org.pk, **filters.dict())
    rows, next_cursor = paginate(qs, limit=limit, cursor=cursor)
    return {"data": [audit_event_as_dict(e) for e in rows], "next_cursor": next_cursor}


@router.get(
    "/orgs/{org_id}/audit-events/export",
    summary="Export audit entries as JSON lines (oldest first)",
    response={200: None},
    openapi_extra={"responses": {200: {"content": {"application/x-ndjson": {}}}}},
)
def export_audit_events(request: HttpRequest, org_id: str, filters: Query[AuditFilters]):
    org = get_org_for_principal(request.auth, org_id, "audit.view")
    qs = audit_events_for_org(org.pk, **filters.dict()).order_by("seq")

    def lines():
        for event in qs.iterator(chunk_size=1000):
            yield json.dumps(audit_event_as_dict(event), separators=(",", ":"), default=str) + "\n"

    response = StreamingHttpResponse(lines(), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="audit-{org.slug}.jsonl"'
    return response
