"""Reads of a tenant's event log: the events accepted for one organisation, searched by type, time
and id. The organisation is resolved (and ``event.view`` authorised) by the caller through
``apps.orgs.selectors.get_org_for_principal``; nothing here crosses tenants."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from apps.core.errors import NotFound, ValidationFailed
from apps.core.ids import is_valid_id
from apps.events.models import Event, EventType
from apps.orgs.models import Organization
from apps.orgs.policy import Principal, authorize

_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


@dataclass
class LogFilters:
    type: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    id: str = ""


def parse_time(value: str | None, param: str) -> dt.datetime | None:
    """An RFC 3339 date-time (a time without zone counts as UTC) or a date (its midnight, UTC)."""
    if value is None or value == "":
        return None
    parsed = None
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = parse_datetime(value)
            if parsed is None:
                day = parse_date(value)
                parsed = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day else None
        except (ValueError, OverflowError):
            parsed = None
    if parsed is None:
        raise ValidationFailed(
            f"'{param}' is a date-time like 2026-11-01T09:30:00Z (or a date).", code="time_invalid", param=param
        )
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    try:
        # A time valid where it is written may not exist in UTC (0001-01-01T00:00+14:00): the
        # database would fail on it, so it is refused here.
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(f"'{param}' is out of range.", code="time_invalid", param=param) from None


def clean_filters(*, type: str | None = None, since=None, until=None, id: str | None = None) -> LogFilters:
    return LogFilters(
        type=(type or "").strip()[:200],
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        id=(id or "").strip()[:64],
    )


def events_of(org: Organization, filters: LogFilters) -> QuerySet[Event]:
    """The organisation's events matching ``filters``, for ``paginate`` (newest first by id).
    ``since`` is inclusive, ``until`` exclusive, both on the time Plaza received the event."""
    qs = Event.objects.filter(org=org).select_related("event_type", "dispatch")
    if filters.type:
        type_id = (
            EventType.objects.filter(name=filters.type).values_list("pk", flat=True).first()
            if _EVENT_NAME.fullmatch(filters.type)
            else None
        )
        if type_id is None:
            return qs.none()
        qs = qs.filter(event_type_id=type_id)
    if filters.id:
        if not is_valid_id(filters.id, "evt"):
            return qs.none()
        qs = qs.filter(pk=filters.id)
    if filters.since:
        qs = qs.filter(received_at__gte=filters.since)
    if filters.until:
        qs = qs.filter(received_at__lt=filters.until)
    return qs


def get_event_for_principal(principal: Principal, org: Organization, event_id: str) -> Event:
    """One event of ``org`` (resolved by get_org_for_principal); another tenant's is NotFound."""
    event = (
        Event.objects.select_related("event_type", "dispatch").filter(org=org, pk=event_id).first()
        if is_valid_id(event_id, "evt")
        else None
    )
    if event is None:
        raise NotFound("No such event.")
    event.org = org
    authorize(principal, "event.view", event)
    return event
