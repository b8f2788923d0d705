"""The event log in the admin console (HTMX pages, thin): search a tenant's events by type, time and
id, and read one event. For the organisation's admins (``event.view``)."""

from __future__ import annotations

import json

from django.shortcuts import render

from apps.core.errors import NotFound, ValidationFailed
from apps.events import eventlog
from apps.events.minimise import annotated_paths
from apps.events.models import EventSchema
from apps.events.selectors import event_types
from apps.orgs.portal import org_context, org_page, page_of

LOG_FILTERS = ("type", "since", "until", "id")


@org_page("event.view")
def console_events(request, org, principal):
    """The event log: newest first, filtered; htmx requests get only the results (``rows``)."""
    values = {key: request.GET.get(key, "").replace("\x00", "").strip()[:64] for key in LOG_FILTERS}
    values["type"] = request.GET.get("type", "").replace("\x00", "").strip()[:200]
    error = None
    try:
        filters = eventlog.clean_filters(**values)
        rows, next_url = page_of(request, eventlog.events_of(org, filters))
    except ValidationFailed as exc:
        error, rows, next_url = {"field": exc.param, "message": exc.message}, [], ""
    ctx = org_context(
        request,
        org,
        principal,
        events=rows,
        next_page=next_url,
        filters=values,
        types=list(event_types().values_list("name", flat=True)),
        filtered=any(values.values()),
        error=error,
    )
    template = "events/console_log.html#rows" if request.htmx else "events/console_log.html"
    return render(request, template, ctx, status=400 if error else 200)


@org_page("event.view")
def console_event(request, org, principal, event_id: str):
    """One event: its metadata and payload (pretty-printed; the template escapes it), and which
    fields are personal data that only installations granted the scope receive."""
    try:
        event = eventlog.get_event_for_principal(principal, org, event_id)
    except NotFound as exc:
        return render(request, "errors/404.html", {"message": exc.message}, status=404)
    schema = EventSchema.objects.filter(event_type_id=event.event_type_id, version=event.schema_version).first()
    ctx = org_context(
        request,
        org,
        principal,
        event=event,
        payload_json=json.dumps(event.payload, indent=2, ensure_ascii=False, sort_keys=True),
        restricted=annotated_paths(schema.schema) if schema else [],
    )
    return render(request, "events/console_event.html", ctx)
