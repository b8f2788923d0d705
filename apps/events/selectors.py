"""Reads of the event catalog. The catalog is public to every signed-in principal (publishers
build against it); only platform staff write to it."""

from __future__ import annotations

import re

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.events.models import EventSchema, EventType

# The shape of every event type name (services.EVENT_NAME); anything else names nothing.
_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


def _plausible(name) -> bool:
    return isinstance(name, str) and len(name) <= 200 and _NAME.fullmatch(name) is not None


def event_types() -> QuerySet[EventType]:
    return EventType.objects.all()


def get_event_type(name: str) -> EventType:
    event_type = EventType.objects.filter(name=name).first() if _plausible(name) else None
    if event_type is None:
        raise NotFound("No such event type.")
    return event_type


def get_event_schema(name: str, version: int) -> EventSchema:
    found = (
        EventSchema.objects.filter(event_type__name=name, version=version).select_related("event_type").first()
        if _plausible(name) and 0 < version < 2**31
        else None
    )
    if found is None:
        raise NotFound("No such event schema version.")
    return found


def latest_versions(types: list[EventType]) -> dict[str, int]:
    """event type id -> its latest schema version, in one query."""
    from django.db.models import Max

    rows = EventSchema.objects.filter(event_type__in=types).values("event_type_id").annotate(v=Max("version"))
    return {r["event_type_id"]: r["v"] for r in rows}
