"""Reading schemas: keyword values checked and normalised, JSON equality, bounds, and a producer's
schemas merged into one."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation

from apps.events.compat.messages import _Malformed, _show
from apps.events.compat.vocabulary import ANNOTATIONS, APPLICATORS, TIGHTEST, TYPES, W


def _same(a, b) -> bool:
    """JSON equality: 1 == 1.0 but, unlike Python's ``==``, true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return (type(a) is type(b) or (isinstance(a, int | float) and isinstance(b, int | float))) and a == b


def _has_ref(value) -> bool:
    """With different roots, equal text holding a reference can still mean different schemas."""
    if isinstance(value, dict):
        return "$ref" in value or "$dynamicRef" in value or any(map(_has_ref, value.values()))
    return isinstance(value, list) and any(map(_has_ref, value))


def _canon(value) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def _constraining(schema: dict) -> bool:
    return any(k not in ANNOTATIONS and not str(k).startswith("x-") for k in schema)


def _get(schema: dict, keyword: str, kind: type, side: str, default=None):
    value = schema.get(keyword, default)
    if value is not default and not isinstance(value, kind):
        raise _Malformed(keyword, f"the {side} '{keyword}' has the wrong type")
    return value


def _types(schema: dict, side: str) -> frozenset[str] | None:
    """The declared types (None: any), with OpenAPI 3.0's ``nullable: true`` adding null."""
    declared = schema.get("type")
    if declared is None:
        return None
    names = [declared] if isinstance(declared, str) else declared
    if not isinstance(names, list) or not all(isinstance(n, str) and n in TYPES for n in names):
        raise _Malformed("type", f"the {side} 'type' is not a type name or a list of them")
    return frozenset(names) | ({"null"} if schema.get("nullable") is True else set())


def _accepts(reader_types, t: str) -> bool:
    return reader_types is None or t in reader_types or (t == "integer" and "number" in reader_types)


def _overlap(a, b) -> bool:
    return a is None or b is None or any(_accepts(b, t) or (t == "number" and "integer" in b) for t in a)


def _count(schema: dict, keyword: str, side: str) -> int | None:
    value = schema.get(keyword)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e300):
        raise _Malformed(keyword, f"the {side} '{keyword}' is not a non-negative integer")
    return None if value is None else math.ceil(value) if keyword.startswith("min") else math.floor(value)


def _number(schema: dict, keyword: str, side: str):
    value = schema.get(keyword)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)):
        raise _Malformed(keyword, f"the {side} '{keyword}' is not a number")
    return value


def _bound(schema: dict, lower: bool, integers: bool, side: str):
    """The tightest bound as (value, exclusive, keyword); also reads Draft 4's boolean exclusiveMinimum/Maximum."""
    inclusive, exclusive = ("minimum", "exclusiveMinimum") if lower else ("maximum", "exclusiveMaximum")
    found, flag = [], schema.get(exclusive)
    for keyword, is_exclusive in ((inclusive, flag is True), (exclusive, True)):
        if not (keyword == exclusive and isinstance(flag, bool)) and (v := _number(schema, keyword, side)) is not None:
            found.append((v, is_exclusive, keyword))
    if integers:  # for integer-only producers "> 0" and ">= 1" are the same bound
        found = [(_integer_bound(v, x, lower), False, k) if math.isfinite(v) else (v, x, k) for v, x, k in found]
    if not found:
        return None
    return max(found, key=lambda b: (b[0], b[1])) if lower else min(found, key=lambda b: (b[0], not b[1]))


def _integer_bound(value, exclusive: bool, lower: bool) -> int:
    if lower:
        return math.floor(value) + 1 if exclusive else math.ceil(value)
    return math.ceil(value) - 1 if exclusive else math.floor(value)


def _tighter(reader, writer, lower: bool) -> bool:
    if reader is None or writer is None:
        return reader is not None
    if reader[0] == writer[0]:
        return reader[1] and not writer[1]
    return reader[0] > writer[0] if lower else reader[0] < writer[0]


def _is_multiple(value, divisor) -> bool:
    try:
        return Decimal(str(value)) % Decimal(str(divisor)) == 0
    except (InvalidOperation, ValueError):
        return False


def _branches(schema: dict, keyword: str, side: str) -> list:
    value = schema.get(keyword, [])
    if not isinstance(value, list) or (keyword in schema and not value):
        raise _Malformed(keyword, f"the {side} '{keyword}' is not a non-empty list")
    return value


def _items(schema: dict, side: str) -> tuple[list, object, str]:
    """(positional schemas, schema of the rest, keyword of the positions), also for pre-2020 array ``items``."""
    items = schema.get("items", True)
    if isinstance(items, list):
        return items, schema.get("additionalItems", True), "items"
    return _get(schema, "prefixItems", list, side, []), items, "prefixItems"


def _matching(patterns: dict, name, side: str):
    """The schema of the first pattern matching ``name`` (Python's re standing in for ECMA-262)."""
    for pattern, schema in patterns.items():
        try:
            if re.search(pattern, name):
                return schema
        except (re.error, TypeError):
            raise _Malformed("patternProperties", f"the {side} pattern {_show(pattern)} is not a valid regex")
    return None


def _writer_values(w: dict) -> list | None:
    """Everything a producer can send when that is a finite list: its enum/const, or null/booleans only."""
    if "enum" in w or "const" in w:
        return list(_get(w, "enum", list, W, [])) + ([w["const"]] if "const" in w else [])
    types = _types(w, W)
    if types and types <= {"null", "boolean"}:
        return ([None] if "null" in types else []) + ([True, False] if "boolean" in types else [])
    return None


def _intersect_types(a, b) -> list[str] | None:
    a, b = ([t] if isinstance(t, str) else t for t in (a, b))
    if not (isinstance(a, list) and isinstance(b, list) and all(t in TYPES for t in [*a, *b])):
        return None
    both = set(a) & set(b)
    if ("integer" in a and "number" in b) or ("number" in a and "integer" in b):
        both.add("integer")
    return sorted(both)


def _merge(base: dict, extra) -> dict | bool:
    """A producer's two schemas at once, over-approximated: what cannot be combined is dropped, which only makes
    the check stricter. Properties and required names are united: the producer sends every declared name."""
    if extra is True or not isinstance(extra, dict):
        return base if extra is True else extra  # False (produces nothing) or malformed (reported by check)
    out = dict(base)
    for group in (("if", "then", "else"), ("contains", "minContains", "maxContains")):
        if not extra.keys().isdisjoint(group):  # these only mean something together: keep one side's set
            out = {k: v for k, v in out.items() if k not in group}
    for key, value in extra.items():
        mine = out.get(key)
        if key not in out or _same(mine, value):
            out[key] = value
        elif key == "properties" and isinstance(mine, dict) and isinstance(value, dict):
            both = {n: {"allOf": [mine[n], s]} for n, s in value.items() if n in mine and not _same(mine[n], s)}
            out[key] = {**mine, **value, **both}
        elif key in ("required", "allOf") and isinstance(mine, list) and isinstance(value, list):
            out[key] = mine + [v for v in value if v not in mine]
        elif key in ("items", "additionalProperties", "propertyNames"):
            out[key] = {"allOf": [mine, value]}
        elif key == "not":
            out[key] = {"anyOf": [mine, value]}
        elif key in ("anyOf", "oneOf") and isinstance(kept := out.get("allOf", []), list):
            out["allOf"], out[key] = (kept if {key: mine} in kept else [*kept, {key: mine}]), value
        elif key == "type" and (types := _intersect_types(mine, value)) is not None:
            if not types:
                return False  # no instance has two disjoint types: this combination produces nothing
            out[key] = types
        elif key in TIGHTEST and all(isinstance(v, int | float) and not isinstance(v, bool) for v in (mine, value)):
            out[key] = TIGHTEST[key](mine, value)
        else:
            out[key] = value
    return out


def _normalized(schema: dict) -> dict:
    """``unevaluated*`` with no applicator beside it means exactly ``additionalProperties`` / ``items``."""
    if APPLICATORS & schema.keys():
        return schema
    out = dict(schema)
    if "unevaluatedProperties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = out.pop("unevaluatedProperties")
    if "unevaluatedItems" in out and "items" not in out and "contains" not in out:
        out["items"] = out.pop("unevaluatedItems")
    return out
