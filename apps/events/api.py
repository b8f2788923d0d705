"""The event catalog: event types and their schema versions. Reading is open to every signed-in
principal; registering is for platform staff (members of the platform organisation)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Path, Router, Status

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.events import services
from apps.events.schemas import (
    CompatibilityCheckIn,
    CompatibilityCheckOut,
    EventSchemaIn,
    EventSchemaOut,
    EventTypeCreateIn,
    EventTypeOut,
    EventTypeUpdateIn,
)
from apps.events.selectors import event_types, get_event_schema, get_event_type, latest_versions
from apps.orgs.selectors import get_platform_org_for_principal

router = Router(tags=["event catalog"])
VERSION = Path(..., ge=1, le=2**31 - 1)


def _with_latest(types):
    latest = latest_versions(types)
    for t in types:
        t.latest_version = latest.get(t.pk)
    return types


@router.get("/event-types", response=Page[EventTypeOut], summary="List event types")
def list_event_types(request: HttpRequest, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    rows, next_cursor = paginate(event_types(), limit=limit, cursor=cursor, newest_first=False)
    return {"data": _with_latest(rows), "next_cursor": next_cursor}


@router.post("/event-types", response={201: EventTypeOut}, summary="Register an event type (platform staff)")
def create_event_type(request: HttpRequest, payload: EventTypeCreateIn):
    platform = get_platform_org_for_principal(request.auth, "event_type.manage")
    event_type = services.event_type_create(
        principal=request.auth,
        platform_org=platform,
        name=payload.name,
        description=payload.description,
        schema=payload.schema_,
        examples=payload.examples,
        compatibility=payload.compatibility,
        changelog=payload.changelog,
    )
    return Status(201, _with_latest([event_type])[0])


@router.get("/event-types/{name}", response=EventTypeOut, summary="Get an event type")
def get_type(request: HttpRequest, name: str):
    return _with_latest([get_event_type(name)])[0]


@router.patch("/event-types/{name}", response=EventTypeOut, summary="Update an event type (platform staff)")
def update_event_type(request: HttpRequest, name: str, payload: EventTypeUpdateIn):
    platform = get_platform_org_for_principal(request.auth, "event_type.manage")
    event_type = services.event_type_update(
        principal=request.auth,
        platform_org=platform,
        event_type=get_event_type(name),
        description=payload.description,
        compatibility=payload.compatibility,
        deprecated=payload.deprecated,
    )
    return _with_latest([event_type])[0]


@router.get(
    "/event-types/{name}/versions", response=Page[EventSchemaOut], by_alias=True, summary="List an event type's schemas"
)
def list_event_schemas(request: HttpRequest, name: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    event_type = get_event_type(name)
    rows, next_cursor = paginate(event_type.schemas.all(), limit=limit, cursor=cursor, newest_first=False)
    for row in rows:
        row.event_type = event_type
    return {"data": rows, "next_cursor": next_cursor}


@router.post(
    "/event-types/{name}/versions",
    response={201: EventSchemaOut},
    by_alias=True,
    summary="Register the next schema version (platform staff)",
    description="Refused with 409 `event_schema_incompatible` when the schema breaks the type's compatibility "
    "mode; `error.details` lists every incompatibility with its path, rule and the version it breaks.",
)
def register_event_schema(request: HttpRequest, name: str, payload: EventSchemaIn):
    platform = get_platform_org_for_principal(request.auth, "event_type.manage")
    created = services.event_schema_register(
        principal=request.auth,
        platform_org=platform,
        event_type=get_event_type(name),
        schema=payload.schema_,
        examples=payload.examples,
        changelog=payload.changelog,
    )
    return Status(201, created)


@router.get(
    "/event-types/{name}/versions/{version}", response=EventSchemaOut, by_alias=True, summary="Get one schema version"
)
def get_schema_version(request: HttpRequest, name: str, version: int = VERSION):
    return get_event_schema(name, version)


@router.post(
    "/event-types/{name}/compatibility",
    response=CompatibilityCheckOut,
    summary="Check a candidate schema without registering it (platform staff)",
)
def check_schema(request: HttpRequest, name: str, payload: CompatibilityCheckIn):
    get_platform_org_for_principal(request.auth, "event_type.manage")
    event_type = get_event_type(name)
    mode = services.clean_mode(payload.compatibility or event_type.compatibility)
    services.refuse_invalid(services.schema_problems(payload.schema_))
    problems = services.compatibility_report(event_type, payload.schema_, mode)
    return {"compatible": not problems, "mode": mode, "problems": [p.as_dict() for p in problems]}


# Event ingestion and the event log (apps.events.ingest_api), under the same router.
from apps.events.ingest_api import router as _ingest_router  # noqa: E402

router.add_router("", _ingest_router)
