"""Writes to the event schema registry (platform staff only), transactional and audited against the
platform organisation's audit chain."""

from __future__ import annotations

import hashlib
import json
import re

from django.db import IntegrityError, transaction
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apps.audit.services import audit_record, diff
from apps.core import clock
from apps.core.api import find_unstorable
from apps.core.errors import Conflict, ValidationFailed
from apps.core.schema_refs import external_refs, json_path
from apps.events.compat import Incompatibility, check_compatibility
from apps.events.minimise import annotation_problems
from apps.events.models import CompatibilityMode, EventSchema, EventType

# order.created, customer.address.updated: dotted lowercase words (also the scope's argument).
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
MAX_SCHEMA_BYTES = 64 * 1024
MAX_EXAMPLES = 10


def _actor(principal):
    return principal.user if principal is not None and principal.kind == "user" else None


def _audit_org(platform_org) -> str:
    """Staff changes go to the platform organisation's chain; commands without one to the platform chain ("")."""
    return platform_org.pk if platform_org is not None else ""


def canonical(schema) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(schema) -> str:
    return hashlib.sha256(canonical(schema).encode()).hexdigest()


def clean_mode(mode) -> str:
    if mode not in CompatibilityMode.values:
        raise ValidationFailed(
            f"The compatibility mode is one of {', '.join(CompatibilityMode.values)}.",
            code="compatibility_mode_invalid",
            param="compatibility",
        )
    return mode


def _clean_description(description) -> str:
    description = (description or "").strip() if isinstance(description, str) else ""
    if not description or len(description) > 2000:
        raise ValidationFailed(
            "Describe the event in 1–2000 characters.", code="description_invalid", param="description"
        )
    return description


def _problem(path: str, rule: str, message: str) -> dict:
    return {"path": path, "rule": rule, "message": message[:500]}


def _unstorable(value, root: str) -> list[dict]:
    try:
        where = find_unstorable(value)
    except RecursionError:
        return [_problem(root, "depth", "Nested too deeply.")]
    if where is None:
        return []
    return [_problem(json_path(where, root), "text_invalid", "Text may not hold NUL characters or lone surrogates.")]


def schema_problems(schema) -> list[dict]:
    """Problems with a proposed payload schema itself ([] when fine), each {path, rule, message}."""
    if not isinstance(schema, dict):
        return [_problem("$.schema", "type", "The schema must be a JSON object.")]
    unstorable = _unstorable(schema, "$.schema")
    if unstorable:
        return unstorable
    if len(canonical(schema).encode()) > MAX_SCHEMA_BYTES:
        return [_problem("$.schema", "size", f"The schema is over {MAX_SCHEMA_BYTES} bytes.")]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [
            _problem(json_path(exc.absolute_path, "$.schema"), "json_schema", f"Not a valid JSON Schema: {exc.message}")
        ]
    except (RecursionError, ValueError, TypeError) as exc:
        return [_problem("$.schema", "json_schema", f"Not a valid JSON Schema: {exc}")]
    problems = []
    if schema.get("type") != "object":
        problems.append(_problem("$.schema.type", "event_type", "An event payload is an object ('type': 'object')."))
    refs = external_refs(schema)
    if refs:
        problems.append(
            _problem("$.schema", "json_schema_ref", f"Only local '$ref's (#/…) are allowed; found {refs[0]!r}.")
        )
    problems.extend(annotation_problems(schema))  # x-plaza-scope: a known scope, where it counts
    return problems


def validate_event_schema(schema, examples) -> list[dict]:
    """Problems with a proposed schema and its examples ([] when fine): every example must validate."""
    problems = schema_problems(schema)
    if problems:
        return problems
    if not isinstance(examples, list) or not examples or len(examples) > MAX_EXAMPLES:
        return [_problem("$.examples", "examples", f"Give 1–{MAX_EXAMPLES} example payloads as a list.")]
    unstorable = _unstorable(examples, "$.examples")
    if unstorable:
        return unstorable
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for i, example in enumerate(examples):
        try:
            errors = list(validator.iter_errors(example))
        except Exception as exc:  # noqa: BLE001 - an odd schema/example pair must not become a 500
            problems.append(_problem(f"$.examples[{i}]", "example", f"Could not be checked: {exc}"))
            continue
        for error in errors[:5]:
            where = json_path(error.absolute_path, f"$.examples[{i}]")
            problems.append(_problem(where, str(error.validator), error.message))
    return problems


def refuse_invalid(problems: list[dict]) -> None:
    if problems:
        raise ValidationFailed(
            "; ".join(f"{p['path']}: {p['message']}" for p in problems[:5])[:1000],
            code="event_schema_invalid",
            param=problems[0]["path"].removeprefix("$.").split(".")[0].split("[")[0],
            details=problems,
        )


def event_type_create(
    *,
    principal,
    platform_org,
    name: str,
    description: str,
    schema,
    examples,
    compatibility: str = "FULL_TRANSITIVE",
    changelog: str = "",
) -> EventType:
    """Register a new event type with its first schema version."""
    if not isinstance(name, str) or len(name) > 200 or not EVENT_NAME.fullmatch(name):
        raise ValidationFailed(
            "An event type name is dotted lowercase words, like 'order.created'.",
            code="event_name_invalid",
            param="name",
        )
    description, compatibility = _clean_description(description), clean_mode(compatibility)
    refuse_invalid(validate_event_schema(schema, examples))
    try:
        with transaction.atomic():
            event_type = EventType.objects.create(
                name=name, description=description, compatibility=compatibility, created_by=_actor(principal)
            )
            first = _create_schema(principal, event_type, 1, schema, examples, changelog)
            audit_record(
                action="event_type.created",
                org_id=_audit_org(platform_org),
                target=event_type,
                changes={"compatibility": compatibility, "version": 1, "fingerprint": first.fingerprint},
            )
    except IntegrityError:
        raise Conflict(f"The event type '{name}' exists.", code="event_type_exists", param="name") from None
    return event_type


def _create_schema(principal, event_type, version, schema, examples, changelog) -> EventSchema:
    return EventSchema.objects.create(
        event_type=event_type,
        version=version,
        schema=schema,
        examples=examples,
        changelog=(changelog or "")[:1000],
        fingerprint=fingerprint(schema),
        created_by=_actor(principal),
    )


def compatibility_report(event_type: EventType, schema: dict, mode: str | None = None) -> list[Incompatibility]:
    """What would break if ``schema`` became the next version (under the type's mode, or ``mode``)."""
    previous = [(s.version, s.schema) for s in event_type.schemas.order_by("version")]
    return check_compatibility(schema, previous, mode or event_type.compatibility)


def event_schema_register(
    *, principal, platform_org, event_type: EventType, schema, examples, changelog: str = ""
) -> EventSchema:
    """Add the next schema version, refused with a precise report when it breaks the type's mode."""
    refuse_invalid(validate_event_schema(schema, examples))
    with transaction.atomic():
        EventType.objects.select_for_update().filter(pk=event_type.pk).first()
        latest = event_type.schemas.order_by("-version").first()
        if latest is not None and latest.fingerprint == fingerprint(schema):
            raise Conflict(
                f"This schema is identical to version {latest.version}.", code="event_schema_unchanged", param="schema"
            )
        breaks = compatibility_report(event_type, schema)
        if breaks:
            raise Conflict(
                f"The schema breaks {event_type.compatibility} compatibility in {len(breaks)} way"
                f"{'s' if len(breaks) != 1 else ''}: " + "; ".join(b.message for b in breaks[:3])[:800],
                code="event_schema_incompatible",
                param="schema",
                details=[b.as_dict() for b in breaks],
            )
        created = _create_schema(
            principal, event_type, (latest.version if latest else 0) + 1, schema, examples, changelog
        )
        audit_record(
            action="event_schema.registered",
            org_id=_audit_org(platform_org),
            target=event_type,
            changes={"version": created.version, "fingerprint": created.fingerprint},
        )
    return created


def event_type_update(
    *, principal, platform_org, event_type: EventType, description=None, compatibility=None, deprecated=None
) -> EventType:
    """Change the description, the compatibility mode (for future versions) or deprecation."""
    before = {"description": event_type.description, "compatibility": event_type.compatibility,
              "deprecated": event_type.deprecated_at is not None}  # fmt: skip
    fields = []
    if description is not None:
        event_type.description = _clean_description(description)
        fields.append("description")
    if compatibility is not None:
        event_type.compatibility = clean_mode(compatibility)
        fields.append("compatibility")
    if deprecated is not None and deprecated != before["deprecated"]:
        event_type.deprecated_at = clock.now() if deprecated else None
        fields.append("deprecated_at")
    if not fields:
        return event_type
    after = {"description": event_type.description, "compatibility": event_type.compatibility,
             "deprecated": event_type.deprecated_at is not None}  # fmt: skip
    with transaction.atomic():
        event_type.save(update_fields=fields)
        audit_record(
            action="event_type.updated", org_id=_audit_org(platform_org), target=event_type, changes=diff(before, after)
        )
    return event_type
