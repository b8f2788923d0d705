"""Authorization-table rows of event ingestion and the event log (see tests/orgs/marketplace_endpoints.py).

The target tenant gets one ``order.fulfilled`` event in its log. Sending needs an API token (a
browser session is refused with ``token_required``); the table's tokens send into their own
organisation."""

from __future__ import annotations

from apps.core import clock
from apps.events.models import Event, EventDispatch, EventType
from tests.orgs.endpoint import API, ORG, Endpoint

FULFILLED = {"type": "order.fulfilled", "payload": {"order_id": "ord_t1", "fulfilled_at": "2026-11-02T15:00:00Z"}}

ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", f"{API}/events", ("event.ingest",), ok=202, body=FULFILLED, tokens_only=True),
    Endpoint("POST", f"{API}/events/batch", ("event.ingest",), body={"events": [FULFILLED]}, tokens_only=True),
    Endpoint("GET", f"{ORG}/events", ("event.view",)),
    Endpoint("GET", f"{ORG}/events/{{event_id}}", ("event.view",)),
]


def _event(org) -> Event:
    return Event.objects.create(
        org=org,
        event_type=EventType.objects.get(name="order.fulfilled"),
        schema_version=1,
        payload=FULFILLED["payload"],
        occurred_at=clock.now(),
        source="tenant",
    )


def make_targets(tenant, targets) -> dict:
    return {"event_id": _event(tenant.org).pk}


def snapshot(org) -> dict:
    return {
        "events": list(Event.objects.filter(org=org).order_by("pk").values_list("pk", flat=True)),
        "event_dispatches": list(EventDispatch.objects.filter(event__org=org).values_list("pk", flat=True)),
    }


PORTAL_PAGES = ["org_console_events"]
PAGE_FORMS = {"org_console_events": {}}
PORTAL_ACTIONS = {"org_console_event": ("event_id",)}
OTHER_KIND = {"event_id": lambda t: t.extension.pk}


def fuzz_targets(tenant, ids) -> dict:
    return {"event_id": [_event(tenant.org).pk]}
