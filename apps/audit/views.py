from __future__ import annotations

import datetime as dt

from django.shortcuts import render
from django.utils.dateparse import parse_datetime

from apps.audit.selectors import audit_events_for_org
from apps.core.api import InvalidCursor, decode_cursor, encode_cursor
from apps.orgs.portal import org_context, org_page

PAGE_SIZE = 50


def _parse_when(value: str) -> dt.datetime | None:
    """A filter date, in UTC; anything unusable (month 13, an offset of 23 hours that PostgreSQL
    refuses, a date that leaves the calendar in UTC) is ignored like any unparsable value."""
    try:
        parsed = parse_datetime(value) if value else None
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC) if parsed is not None else None
    except (ValueError, OverflowError):
        return None


def audit_log_context(request, org, *, action_prefixes: tuple[str, ...] = ()) -> dict:
    """The viewer's filters (from the query string), one page of entries and the next page's
    cursor; ``action_prefixes`` narrows the log to those actions (the console's identity view)."""
    filters = {
        # PostgreSQL refuses NUL in a query parameter (a 500); no stored label holds one
        key: request.GET.get(key, "").replace("\x00", "").strip()[:254]
        for key in ("action", "actor", "target", "since", "until")
    }
    qs = audit_events_for_org(
        org.pk,
        action=filters["action"],
        actor=filters["actor"],
        target=filters["target"],
        since=_parse_when(filters["since"]),
        until=_parse_when(filters["until"]),
        action_prefixes=action_prefixes,
    )
    before = request.GET.get("before", "")
    try:
        if before:
            qs = qs.filter(pk__lt=decode_cursor(before))
    except InvalidCursor:
        pass
    events = list(qs.order_by("-pk")[: PAGE_SIZE + 1])
    next_before = encode_cursor(events[PAGE_SIZE - 1].pk) if len(events) > PAGE_SIZE else ""
    return {"events": events[:PAGE_SIZE], "filters": filters, "next_before": next_before}


@org_page("audit.view")
def org_audit(request, org, principal):
    """The audit log with filters; htmx requests get only the table (the ``rows`` partial)."""
    ctx = org_context(request, org, principal, **audit_log_context(request, org))
    template = "audit/log.html#rows" if request.htmx else "audit/log.html"
    return render(request, template, ctx)
