from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from apps.audit.models import AuditEvent


def audit_events_for_org(
    org_id: str,
    *,
    action: str = "",
    actor: str = "",
    target: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    action_prefixes: tuple[str, ...] = (),
) -> QuerySet[AuditEvent]:
    """One organisation's entries, filtered. ``action`` matches a prefix (``member.`` or an exact action);
    ``actor`` and ``target`` match an id or a label. ``action_prefixes`` keeps only entries whose
    action starts with one of them (the admin console's identity view); ``action`` narrows further."""
    qs = AuditEvent.objects.filter(org_id=org_id)
    if action_prefixes:
        any_prefix = Q()
        for prefix in action_prefixes:
            any_prefix |= Q(action__startswith=prefix)
        qs = qs.filter(any_prefix)
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_id=actor) if "_" in actor and "@" not in actor else qs.filter(actor_label__icontains=actor)
    if target:
        qs = (
            qs.filter(target_id=target)
            if "_" in target and "@" not in target
            else qs.filter(target_label__icontains=target)
        )
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until)
    return qs


def audit_event_as_dict(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "org_id": event.org_id,
        "seq": event.seq,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor": {"type": event.actor_type, "id": event.actor_id, "label": event.actor_label},
        "action": event.action,
        "target": {"type": event.target_type, "id": event.target_id, "label": event.target_label},
        "changes": event.changes,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
