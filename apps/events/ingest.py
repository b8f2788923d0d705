"""Event ingestion: the host product, a tenant or an extension sends an event; Plaza validates it
against the registered schema and stores it with its outbox row in one transaction.

- Who sends decides the tenant (``sender_resolve``): a tenant token with ``events:write`` sends
  into its own organisation (or its publisher's sandbox tenant); a token of the platform
  organisation holding ``events:host`` names the tenant in ``tenant``; an extension emits into
  the tenant that installed it (``events_emit``, called with the sandbox's emitted events).
- Each event is checked on its own (``event_prepare``): a registered type, the payload against
  the type's latest schema version or the ``schema_version`` named, the size, ``occurred_at``.
- The accepted events of one request are written together (``events_store``): every ``Event``
  with its ``EventDispatch`` and, with an ``Idempotency-Key``, the ``IdempotencyRecord`` holding
  the answer — one transaction, so an accepted event always has its outbox row and a retried
  request never stores its events twice. ``events_accepted`` is sent after the commit.

Ingestion is not written to the audit log: events are data, in volumes the hash-chained audit log
is not for; the event log (``source``, ``source_id``) is their record.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from apps.core import clock
from apps.core.api import find_unstorable
from apps.core.errors import Conflict, NotFound, PermissionDenied, PlazaError, ValidationFailed
from apps.core.ids import is_valid_id, new_id
from apps.core.safe_jsonschema import safe_validator
from apps.core.schema_refs import json_path
from apps.events.models import Event, EventDispatch, EventSchema, EventSource, IdempotencyRecord
from apps.events.signals import events_accepted
from apps.orgs.models import Organization
from apps.orgs.policy import Principal, authorize

log = logging.getLogger("plaza.events")

MAX_BATCH = 100
MAX_ERRORS = 10  # validation problems reported per event
MAX_NESTING = 64  # objects and arrays within each other, the body's own object included
EVENT_FIELDS = ("type", "payload", "schema_version", "occurred_at")
# Idempotency-Key: 1–255 visible ASCII characters (a UUID is the usual choice).
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


class PayloadTooLarge(PlazaError):
    status = 413
    code = "payload_too_large"


# --- who sends, into which tenant ----------------------------------------------------------------
@dataclass(frozen=True)
class Sender:
    tenant: Organization  # the events' organisation
    key_org_id: str  # whose Idempotency-Keys these are: the sending token's organisation
    source: str  # EventSource
    source_id: str  # the token's or installation's id


def sender_resolve(principal: Principal | None, tenant_id: Any) -> Sender:
    """The tenant and source of a request to the ingestion API, or a refusal.

    - A token of the platform organisation holding ``events:host`` must name the tenant (any
      organisation): ``400 tenant_required`` without one, ``404 tenant_not_found`` for an unknown one.
    - Any other token sends into its own organisation with ``events:write`` (``event.ingest``);
      naming another organisation is ``403 tenant_not_allowed`` — except the sender's own sandbox
      tenant (a publisher testing its extensions).
    - A browser session cannot send events (``403 token_required``)."""
    if principal is None or principal.kind != "service_account" or principal.token is None:
        raise PermissionDenied(
            "Events are sent with an API token (Authorization: Bearer plz_…).", code="token_required"
        )
    if tenant_id is not None and (not isinstance(tenant_id, str) or len(tenant_id) > 64):
        raise ValidationFailed("'tenant' is an organisation id (org_…).", code="tenant_invalid", param="tenant")
    account = principal.service_account
    own = account.org
    token_id = principal.token.pk
    scopes = principal.scopes or frozenset()
    if own.is_platform and "events:host" in scopes:
        if not tenant_id:
            raise ValidationFailed(
                "A host token sends events on behalf of a tenant: name it in 'tenant' (an organisation id).",
                code="tenant_required",
                param="tenant",
            )
        authorize(principal, "event.host_ingest", own)
        tenant = Organization.objects.filter(pk=tenant_id).first() if is_valid_id(tenant_id, "org") else None
        if tenant is None:
            raise NotFound("No such tenant organisation.", code="tenant_not_found", param="tenant")
        return Sender(tenant=tenant, key_org_id=own.pk, source=EventSource.HOST, source_id=token_id)
    authorize(principal, "event.ingest", own)
    tenant = own
    if tenant_id and tenant_id != own.pk:
        sandbox = (
            Organization.objects.filter(pk=tenant_id, sandbox_of_id=own.pk).first()
            if is_valid_id(tenant_id, "org")
            else None
        )
        if sandbox is None:
            raise PermissionDenied(
                "This token sends events into its own organisation (or its sandbox tenant) only; "
                "sending for other tenants takes the platform's host token.",
                code="tenant_not_allowed",
                param="tenant",
            )
        tenant = sandbox
    return Sender(tenant=tenant, key_org_id=own.pk, source=EventSource.TENANT, source_id=token_id)


# --- the request body ----------------------------------------------------------------------------
def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def parse_body(raw: bytes, *, limit: int) -> dict:
    """The JSON object in a request body, or 413 ``payload_too_large`` / 400 ``invalid_json``."""
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise ValidationFailed("The request body is not UTF-8 text.", code="invalid_json") from None
    except RecursionError:
        raise ValidationFailed("The request body is nested too deeply.", code="invalid_json") from None
    except ValueError as exc:
        raise ValidationFailed(f"The request body is not valid JSON: {str(exc)[:200]}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ValidationFailed("The request body must be a JSON object.", code="invalid_json")
    if _depth(data) > MAX_NESTING:
        raise ValidationFailed(f"The request body is nested deeper than {MAX_NESTING} levels.", code="invalid_json")
    where = _unstorable(data)
    if where is not None:
        raise ValidationFailed(
            f"{where}: text may not hold NUL characters or lone surrogates.", code="text_invalid", param=where
        )
    return data


def _depth(value) -> int:
    """How deeply objects and arrays nest (iteratively: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_NESTING:
                stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _unstorable(value) -> str | None:
    try:
        loc = find_unstorable(value)
    except RecursionError:
        return "body"
    return None if loc is None else json_path(loc, "$").removeprefix("$.") or "body"


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(route: str, body: dict) -> str:
    """What "the same body" means for an Idempotency-Key: the same route and the same JSON value
    (key order and white space do not matter)."""
    return hashlib.sha256(f"{route}\n{canonical(body)}".encode()).hexdigest()


def clean_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise ValidationFailed(
            "Idempotency-Key is 1–255 visible ASCII characters (a UUID, for example).",
            code="idempotency_key_invalid",
            param="Idempotency-Key",
        )
    return value


# --- one event -----------------------------------------------------------------------------------
@dataclass
class Prepared:
    schema: EventSchema
    payload: dict
    occurred_at: dt.datetime | None


@functools.lru_cache(maxsize=256)
def _validator(schema_id: str, schema_json: str):
    # Keyed by the schema version's id: versions never change, so a compiled validator stays right.
    return safe_validator(json.loads(schema_json))


class SchemaCache:
    """Schema versions looked up during one request (a batch names few types)."""

    def __init__(self):
        self._found: dict[tuple[str, int | None], EventSchema | None] = {}

    def get(self, name: str, version: int | None) -> EventSchema | None:
        key = (name, version)
        if key not in self._found:
            qs = EventSchema.objects.select_related("event_type").filter(event_type__name=name)
            self._found[key] = (
                qs.filter(version=version).first() if version is not None else qs.order_by("-version").first()
            )
        return self._found[key]


def _problem(path: str, rule: str, message: str) -> dict:
    return {"path": path, "rule": rule, "message": message[:500]}


def _clean_occurred_at(value, now: dt.datetime) -> dt.datetime | None:
    if value is None:
        return None
    parsed = None
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = parse_datetime(value)
        except (ValueError, OverflowError):
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValidationFailed(
            "'occurred_at' is an RFC 3339 date-time with a time zone, like 2026-11-01T09:30:00Z.",
            code="occurred_at_invalid",
            param="occurred_at",
        )
    try:
        parsed = parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(
            "'occurred_at' is out of range.", code="occurred_at_invalid", param="occurred_at"
        ) from None
    if parsed > now + dt.timedelta(seconds=settings.PLAZA_EVENTS_MAX_FUTURE_SECONDS):
        raise ValidationFailed(
            f"'occurred_at' is more than {settings.PLAZA_EVENTS_MAX_FUTURE_SECONDS} seconds in the future; "
            "check the sender's clock.",
            code="occurred_at_in_future",
            param="occurred_at",
        )
    if parsed < now - dt.timedelta(days=settings.PLAZA_EVENTS_MAX_AGE_DAYS):
        raise ValidationFailed(
            f"'occurred_at' is more than {settings.PLAZA_EVENTS_MAX_AGE_DAYS} days ago.",
            code="occurred_at_too_old",
            param="occurred_at",
        )
    return parsed


def event_prepare(item: Any, *, schemas: SchemaCache, now: dt.datetime, extra_fields: tuple = ()) -> Prepared:
    """One event of a request, checked: raises a PlazaError saying precisely what is wrong."""
    if not isinstance(item, dict):
        raise ValidationFailed("An event is a JSON object with 'type' and 'payload'.", code="event_invalid")
    unknown = sorted(k for k in item if k not in EVENT_FIELDS and k not in extra_fields)
    if unknown:
        raise ValidationFailed(
            f"Unknown field {unknown[0]!r}: an event has {', '.join(EVENT_FIELDS)}.",
            code="unknown_field",
            param=unknown[0][:100],
        )
    name = item.get("type")
    if not isinstance(name, str) or not name:
        raise ValidationFailed(
            "Name the event type in 'type', like 'order.created'.", code="type_required", param="type"
        )
    version = item.get("schema_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or not 0 < version < 2**31):
        raise ValidationFailed(
            "'schema_version' is a positive integer.", code="schema_version_invalid", param="schema_version"
        )
    schema = schemas.get(name, None) if len(name) <= 200 and _EVENT_NAME.fullmatch(name) else None
    if schema is None:
        raise ValidationFailed(
            f"No event type {name[:200]!r} is registered (see GET /api/v1/event-types).",
            code="event_type_unknown",
            param="type",
        )
    if version is not None and version != schema.version:
        latest = schema.version
        schema = schemas.get(name, version)
        if schema is None:
            raise ValidationFailed(
                f"{name} has no schema version {version} (the latest is {latest}).",
                code="schema_version_unknown",
                param="schema_version",
            )
    payload = item.get("payload")
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "'payload' is a JSON object (the event's data, as its schema describes).",
            code="payload_invalid",
            param="payload",
            details=[_problem("$.payload", "type", "The payload must be a JSON object.")],
        )
    _validate_payload(schema, payload)
    return Prepared(schema=schema, payload=payload, occurred_at=_clean_occurred_at(item.get("occurred_at"), now))


def _sort_key(error) -> tuple:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path)


def _validate_payload(schema: EventSchema, payload: dict) -> None:
    validator = _validator(schema.pk, canonical(schema.schema))
    try:
        errors = sorted(validator.iter_errors(payload), key=_sort_key)[:MAX_ERRORS]
    except Exception as exc:  # noqa: BLE001 - an odd schema/payload pair must not become a 500
        log.warning("payload of %s v%s could not be checked: %s", schema.event_type.name, schema.version, exc)
        raise ValidationFailed(
            "The payload could not be checked against the schema.", code="payload_invalid", param="payload"
        ) from None
    if not errors:
        return
    problems = [_problem(json_path(e.absolute_path, "$.payload"), str(e.validator), e.message) for e in errors]
    first = problems[0]["path"].removeprefix("$.")
    raise ValidationFailed(
        f"The payload does not match {schema.event_type.name} v{schema.version}: "
        + "; ".join(f"{p['path']}: {p['message']}" for p in problems[:3])[:900],
        code="payload_invalid",
        param=first,
        details=problems,
    )


# --- storing -------------------------------------------------------------------------------------
def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def accepted_body(event: Event) -> dict:
    return {
        "id": event.id,
        "status": "accepted",
        "type": event.event_type.name,
        "schema_version": event.schema_version,
        "tenant": event.org_id,
        "occurred_at": iso(event.occurred_at),
        "received_at": iso(event.received_at),
    }


def error_item(exc: PlazaError) -> dict:
    body = {"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param}
    if exc.details:
        body["details"] = exc.details
    return body


@dataclass
class Outcome:
    """What to answer: the status and JSON body, and whether it is a stored first answer replayed."""

    status: int
    body: dict
    replayed: bool = False
    events: list = field(default_factory=list)


@dataclass
class Idempotency:
    key: str
    key_org_id: str
    hash: str
    expired_id: str | None = None  # an expired record of the key, replaced when the request is stored


def idempotency_replay(idem: Idempotency | None) -> Outcome | None:
    """The stored answer for a retried key (same body), ``409 idempotency_key_reused`` for the
    same key with another body, or None when the key is new (or expired)."""
    if idem is None:
        return None
    record = IdempotencyRecord.objects.filter(org_id=idem.key_org_id, key=idem.key).first()
    if record is None:
        return None
    if record.expires_at <= clock.now():  # expired (the purge task has not run yet): a new key
        idem.expired_id = record.pk
        return None
    if record.body_hash != idem.hash:
        raise Conflict(
            "This Idempotency-Key was used with a different request body; use a new key for a new request.",
            code="idempotency_key_reused",
            param="Idempotency-Key",
        )
    return Outcome(status=record.response_status, body=record.response_body, replayed=True)


def _announce(dispatch_ids: list[str]) -> None:
    for receiver, result in events_accepted.send_robust(sender=Event, dispatch_ids=dispatch_ids):
        if isinstance(result, Exception):
            log.error("events_accepted receiver %r failed: %s", receiver, result, exc_info=result)


def events_store(
    *,
    sender: Sender,
    prepared: list[Prepared],
    respond,
    idempotency: Idempotency | None = None,
) -> Outcome:
    """Write the accepted events, their outbox rows and (with a key) the idempotency record in one
    transaction; ``respond(events) -> (status, body)`` builds the answer that is stored and
    returned. A concurrent request that stored the same key first wins: its answer is replayed."""
    now = clock.now()
    events = [
        Event(
            id=new_id("evt"),
            org=sender.tenant,
            event_type=p.schema.event_type,
            schema_version=p.schema.version,
            payload=p.payload,
            occurred_at=p.occurred_at or now,
            received_at=now,
            source=sender.source,
            source_id=sender.source_id[:64],
            idempotency_key=idempotency.key if idempotency else None,
        )
        for p in prepared
    ]
    dispatches = [EventDispatch(id=new_id("edp"), event=e, created_at=now) for e in events]
    status, body = respond(events)
    try:
        with transaction.atomic():
            if events:
                Event.objects.bulk_create(events)
                EventDispatch.objects.bulk_create(dispatches)
            if idempotency is not None:
                if idempotency.expired_id:  # lingering until the purge task runs
                    IdempotencyRecord.objects.filter(pk=idempotency.expired_id, expires_at__lte=now).delete()
                IdempotencyRecord.objects.create(
                    org_id=idempotency.key_org_id,
                    key=idempotency.key,
                    body_hash=idempotency.hash,
                    response_status=status,
                    response_body=body,
                    created_at=now,
                    expires_at=now + dt.timedelta(hours=settings.PLAZA_IDEMPOTENCY_HOURS),
                )
            if dispatches:
                ids = [d.id for d in dispatches]
                transaction.on_commit(lambda: _announce(ids))
    except IntegrityError:
        if idempotency is None:
            raise
        replay = idempotency_replay(idempotency)
        if replay is None:  # the winner's record is gone already: nothing sensible to answer
            raise Conflict(
                "A request with this Idempotency-Key is in progress; retry in a moment.",
                code="idempotency_key_in_use",
                param="Idempotency-Key",
            ) from None
        return replay
    return Outcome(status=status, body=body, events=events)


# --- the use cases -------------------------------------------------------------------------------
def event_ingest(*, sender: Sender, item: dict, idempotency: Idempotency | None = None) -> Outcome:
    """Accept one event (``POST /api/v1/events``): ``202`` with the event, or a PlazaError."""
    replay = idempotency_replay(idempotency)
    if replay is not None:
        return replay
    prepared = event_prepare(item, schemas=SchemaCache(), now=clock.now(), extra_fields=("tenant",))
    return events_store(
        sender=sender,
        prepared=[prepared],
        respond=lambda events: (202, accepted_body(events[0])),
        idempotency=idempotency,
    )


def _refuse_malformed_batch_item(index: int, item: Any) -> None:
    """A batch whose events do not have the documented shape (an object; ``type`` a string of at
    most 200 characters; ``payload`` an object; ``schema_version`` a positive integer or null;
    ``occurred_at`` a string or null) is refused whole with ``400 batch_invalid``: that is a broken
    client, not one event to refuse. Events of the right shape are answered one by one."""
    where = f"events[{index}]"
    if not isinstance(item, dict):
        raise ValidationFailed(f"{where} is not a JSON object.", code="batch_invalid", param=where)
    name, version, occurred = item.get("type"), item.get("schema_version"), item.get("occurred_at")
    problem = None
    if not isinstance(name, str) or len(name) > 200:
        problem = "type", "a string of at most 200 characters"
    elif not isinstance(item.get("payload"), dict):
        problem = "payload", "a JSON object"
    elif version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        problem = "schema_version", "a positive integer"
    elif occurred is not None and not isinstance(occurred, str):
        problem = "occurred_at", "an RFC 3339 date-time string"
    if problem:
        field, shape = problem
        raise ValidationFailed(f"{where}.{field} must be {shape}.", code="batch_invalid", param=f"{where}.{field}")


def events_ingest_batch(*, sender: Sender, items: Any, idempotency: Idempotency | None = None) -> Outcome:
    """Accept up to 100 events (``POST /api/v1/events/batch``), each answered on its own: the
    answer lists, in order, ``accepted`` (with the event) or ``refused`` (with the error) per
    event. The accepted ones are stored together in one transaction."""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise ValidationFailed(f"'events' is a list of 1–{MAX_BATCH} events.", code="batch_invalid", param="events")
    for index, item in enumerate(items):
        _refuse_malformed_batch_item(index, item)
    replay = idempotency_replay(idempotency)
    if replay is not None:
        return replay
    schemas, now = SchemaCache(), clock.now()
    results: list[dict] = []
    prepared: list[Prepared] = []
    for index, item in enumerate(items):
        try:
            if len(canonical(item).encode()) > settings.PLAZA_EVENTS_MAX_BODY_BYTES:
                raise PayloadTooLarge(f"The event is over the limit of {settings.PLAZA_EVENTS_MAX_BODY_BYTES} bytes.")
            prepared.append(event_prepare(item, schemas=schemas, now=now))
            results.append({"index": index, "status": "accepted"})
        except PlazaError as exc:
            results.append({"index": index, "status": "refused", "error": error_item(exc)})

    def respond(events):
        accepted = iter(events)
        data = [{**r, **accepted_body(next(accepted))} if r["status"] == "accepted" else r for r in results]
        return 200, {"data": data, "accepted": len(events), "refused": len(results) - len(events)}

    return events_store(sender=sender, prepared=prepared, respond=respond, idempotency=idempotency)


def events_emit(
    *, tenant: Organization, installation_id: str, emitted: list[dict], idempotency_key: str | None = None
) -> list[dict]:
    """Ingest the events an extension emitted from the sandbox (``emit_event`` host function,
    scope ``events:emit:<type>``, already checked by the runtime) into the tenant that installed
    it, with ``source=extension``. Each is validated like any other; returns one result per event
    (``accepted`` with the event id, or ``refused`` with the error), as a batch answers.

    ``idempotency_key``: a key stable across retries of the call that emitted them (the webhook
    message id of a hook run, say), so a retried hook does not store its events twice; a retry
    that emitted different events is refused whole (``idempotency_key_reused``)."""
    sender = Sender(tenant=tenant, key_org_id=tenant.pk, source=EventSource.EXTENSION, source_id=installation_id)
    items = [{"type": e.get("type"), "payload": e.get("payload")} for e in emitted if isinstance(e, dict)][:MAX_BATCH]
    if not items:
        return []
    idempotency = None
    if idempotency_key:
        key = f"emit:{installation_id}:{idempotency_key}"[:255]
        idempotency = Idempotency(key=key, key_org_id=tenant.pk, hash=request_hash("emit", {"events": items}))
    try:
        return events_ingest_batch(sender=sender, items=items, idempotency=idempotency).body["data"]
    except Conflict as exc:
        return [{"index": i, "status": "refused", "error": error_item(exc)} for i in range(len(items))]


def idempotency_records_purge(*, now: dt.datetime | None = None) -> int:
    """Delete expired idempotency records; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or clock.now()).delete()
    return deleted
