"""Valid inputs for a tool, made from its input JSON Schema, for the sandbox smoke test.

Deterministic on purpose: a certification report must say the same thing every time it runs.
The schema's own ``examples`` come first; then a *minimal* instance (required properties only)
and a *full* one (every property). Each candidate is validated against the schema and dropped if
it does not match (patterns, ``not``, tricky combinations): a schema we cannot satisfy that way
needs ``examples``, and the smoke check says so."""

from __future__ import annotations

import copy
import json

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apps.core.safe_jsonschema import safe_validator

_MAX_DEPTH = 12
_MAX_NODES = 2000  # values built per candidate: a recursive schema must not make millions
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_TYPE_ORDER = ("object", "string", "integer", "number", "boolean", "array", "null")


class _TooBig(Exception):
    pass


class _Budget:
    def __init__(self):
        self.nodes = 0

    def spend(self) -> None:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise _TooBig


def _resolve(schema, root: dict, depth: int):
    """Follow a local ``$ref`` (``#/$defs/x``); anything else is left as it is. Returns the target
    and the depth after the hops (each hop counts, so ``$ref`` chains cannot dodge the cap)."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth < _MAX_DEPTH:
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return {}, depth
        target = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return {}, depth
            target = target[part]
        schema, depth = target, depth + 1
    return schema, depth


def _number(schema: dict, integer: bool):
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value = 0 if low is None else low + (1 if "minimum" not in schema and "exclusiveMinimum" in schema else 0)
    if high is not None and value > high:
        value = high
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0 and value % step:
        value = value + (step - value % step)
    if integer:
        return int(value) if float(value).is_integer() else int(value) + 1
    return value


def _instance(schema, root: dict, *, full: bool, budget: _Budget, depth: int = 0):
    budget.spend()
    schema, depth = _resolve(schema, root, depth)
    if schema is True or not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if "const" in schema:
        return copy.deepcopy(schema["const"])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return copy.deepcopy(schema["enum"][0])
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    for key in ("allOf",):
        if isinstance(schema.get(key), list) and schema[key]:
            merged = {k: v for k, v in schema.items() if k != key}
            for part in schema[key]:
                part, _ = _resolve(part, root, depth)
                if isinstance(part, dict):
                    merged = {
                        **part,
                        **merged,
                        "properties": {**part.get("properties", {}), **merged.get("properties", {})},
                    }
                    merged["required"] = sorted(set(part.get("required", [])) | set(merged.get("required", [])))
            return _instance(merged, root, full=full, budget=budget, depth=depth + 1)
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _instance(schema[key][0], root, full=full, budget=budget, depth=depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((t for t in _TYPE_ORDER if t in kind and t != "null"), kind[0] if kind else None)
    if kind is None:
        kind = "object" if "properties" in schema else "string" if "minLength" in schema else None
    if kind == "object":
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        wanted = list(properties) if full else [p for p in schema.get("required", []) if isinstance(p, str)]
        value = {}
        for name in wanted:
            value[name] = _instance(properties.get(name, {}), root, full=full, budget=budget, depth=depth + 1)
        return value
    if kind == "array":
        count = schema.get("minItems", 1 if full else 0)
        count = min(count if isinstance(count, int) else 0, 20)
        items = schema.get("items", {})
        return [_instance(items, root, full=full, budget=budget, depth=depth + 1) for _ in range(count)]
    if kind == "string":
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        length = schema.get("minLength", 1 if full else 0)
        return "a" * min(length if isinstance(length, int) else 0, 1000)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return False
    return None


MAX_INPUT_BYTES = 64 * 1024  # the sandbox's input limit: a larger candidate could never run


def valid_inputs(schema: dict, *, limit: int = 5) -> list:
    """Up to ``limit`` distinct instances of ``schema`` that validate against it."""
    try:
        Draft202012Validator.check_schema(schema)
    except (SchemaError, RecursionError):
        return []
    validator = safe_validator(schema)
    candidates = list(schema.get("examples") or []) if isinstance(schema.get("examples"), list) else []
    for full in (False, True):
        try:
            candidates.append(_instance(schema, schema, full=full, budget=_Budget()))
        except (_TooBig, RecursionError, TypeError, ValueError):
            continue
    found, seen = [], set()
    for candidate in candidates:
        try:
            key = json.dumps(candidate, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            continue
        if key in seen or len(key) > MAX_INPUT_BYTES:
            continue
        seen.add(key)
        try:
            if validator.is_valid(candidate):
                found.append(candidate)
        except (RecursionError, TypeError, ValueError):
            continue
        if len(found) >= limit:
            break
    return found
