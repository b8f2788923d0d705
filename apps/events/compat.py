"""JSON Schema compatibility: does every instance one schema produces validate under another?

Used by the event schema registry (Confluent-style compatibility modes) and by the OpenAPI breaking-change gate.
The check is structural and conservative: whenever it cannot prove that the reader accepts what the writer
produces it says so with a reason (``unsupported_keyword``, ``unsupported_ref``, ...) instead of guessing, and
it never raises on a malformed schema. The semantics and the reasoning behind them are in docs/compatibility.md.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry

TYPE_ORDER = ("null", "boolean", "object", "array", "number", "integer", "string")
TYPES = frozenset(TYPE_ORDER)
ARTICLES = {"null": "null", "boolean": "a boolean", "object": "an object", "array": "an array"}
ARTICLES |= {"number": "a number", "integer": "an integer", "string": "a string"}
# No effect on which instances validate.
ANNOTATIONS = frozenset(
    {"title", "description", "examples", "example", "default", "$comment", "deprecated", "readOnly", "writeOnly"}
    | {"$schema", "$id", "$anchor", "$dynamicAnchor", "$vocabulary", "$defs", "definitions", "discriminator"}
    | {"contentMediaType", "contentEncoding", "contentSchema", "externalDocs", "xml"}
)
# Compared structurally below (additionalItems only matters next to a legacy array-valued ``items``).
HANDLED = frozenset(
    {"type", "nullable", "enum", "const", "$ref", "allOf", "anyOf", "oneOf", "not", "properties", "required"}
    | {"additionalProperties", "patternProperties", "minProperties", "maxProperties", "items", "prefixItems"}
    | {"additionalItems", "minItems", "maxItems", "uniqueItems", "minimum", "exclusiveMinimum", "maximum"}
    | {"exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "format"}
)
# Their meaning depends on sibling keywords or the dynamic scope, so equal values do not prove anything.
NEVER_PROVABLE = frozenset({"unevaluatedProperties", "unevaluatedItems", "$dynamicRef"})
APPLICATORS = frozenset({"allOf", "anyOf", "oneOf", "$ref", "$dynamicRef", "if", "then", "else", "dependentSchemas"})
TIGHTEST = {"minimum": max, "exclusiveMinimum": max, "minLength": max, "minItems": max, "minProperties": max}
TIGHTEST |= {"maximum": min, "exclusiveMaximum": min, "maxLength": min, "maxItems": min, "maxProperties": min}
COUNT_RULES = {"minLength": "min_length_raised", "maxLength": "max_length_lowered", "minItems": "min_items_raised"}
COUNT_RULES |= {"maxItems": "max_items_lowered", "minProperties": "min_properties_raised"}
COUNT_RULES |= {"maxProperties": "max_properties_lowered"}
MAX_DEPTH = 80


class Mode(enum.StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"


@dataclass(frozen=True)
class Incompatibility:
    path: str  # JSON Pointer to where it breaks ("" = root); inside the reader's $ref target once one is followed
    rule: str  # stable machine code, e.g. "type_narrowed"
    message: str  # one plain-English sentence
    direction: str = ""  # "backward" or "forward", filled by check_compatibility
    against_version: int | None = None  # filled by check_compatibility

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Malformed(Exception):
    """A keyword whose value is not valid JSON Schema; reported as ``invalid_schema`` at that keyword."""

    def __init__(self, keyword: str, reason: str):
        super().__init__(reason)
        self.keyword = keyword


def is_subschema(writer, reader, *, writer_root=None, reader_root=None) -> list[Incompatibility]:
    """Every instance the writer schema produces is accepted by the reader schema; [] when compatible."""
    checker = _Checker(writer if writer_root is None else writer_root, reader if reader_root is None else reader_root)
    try:
        return checker.check(writer, reader, "", "", 0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # "never raises"; BaseException: Rust-backed referencing panics on deep recursion
        return [Incompatibility("", "invalid_schema", f"Could not check compatibility ({type(exc).__name__}).")]


def check_compatibility(new: dict, previous: list[tuple[int, dict]], mode: Mode | str) -> list[Incompatibility]:
    """Enforce ``mode`` for ``new`` against ``previous`` ((version, schema) pairs, oldest first).

    BACKWARD: readers on the new schema read old data, is_subschema(old, new). FORWARD: readers on the old schema
    read new data, is_subschema(new, old). FULL: both. Non-transitive modes compare with the latest only.
    """
    mode = Mode(str(mode).upper())  # ValueError for a mode that does not exist
    if mode is Mode.NONE or not previous:
        return []
    directions = [d for d, m in (("backward", "BACKWARD"), ("forward", "FORWARD")) if mode.startswith((m, "FULL"))]
    found = []
    for version, old in previous if mode.endswith("_TRANSITIVE") else previous[-1:]:
        for direction in directions:
            pairs = is_subschema(old, new) if direction == "backward" else is_subschema(new, old)
            found += [dataclasses.replace(p, direction=direction, against_version=version) for p in pairs]
    return found


# --- small pure helpers ---------------------------------------------------------------------------------------


def _esc(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _label(field: str, start: bool = True) -> str:
    text = f"Field '{field}'" if field else "The value"
    return text if start else text[0].lower() + text[1:]


def _child(field: str, name) -> str:
    return f"{field}.{name}" if field else str(name)


def _show(value) -> str:
    text = json.dumps(value, default=repr, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _same(a, b) -> bool:
    """JSON equality: 1 == 1.0, but unlike Python's ``==``, true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    return (numbers or type(a) is type(b)) and a == b


def _has_ref(value) -> bool:
    """A reference inside means equal text can still mean different schemas when the roots differ."""
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


def _types(schema: dict, side: str) -> frozenset[str] | None:
    """The declared type set (None: any type), with OpenAPI 3.0's ``nullable: true`` adding null."""
    declared = schema.get("type")
    if declared is None:
        return None
    names = [declared] if isinstance(declared, str) else declared
    if not isinstance(names, list) or not all(isinstance(n, str) and n in TYPES for n in names):
        raise _Malformed("type", f"the {side} 'type' is not a JSON Schema type name or a list of them")
    return frozenset(names) | ({"null"} if schema.get("nullable") is True else set())


def _accepts(reader_types, t: str) -> bool:
    return reader_types is None or t in reader_types or (t == "integer" and "number" in reader_types)


def _overlap(a, b) -> bool:
    if a is None or b is None:
        return True
    return any(_accepts(b, t) or (t == "number" and "integer" in b) for t in a)


def _plain(types) -> str:
    return " or ".join(t for t in TYPE_ORDER if t in types) or "nothing"


def _article(types) -> str:
    return " or ".join(ARTICLES[t] for t in TYPE_ORDER if t in types) if types is not None else "any type"


def _get(schema: dict, keyword: str, kind: type, side: str, default=None):
    value = schema.get(keyword, default)
    if value is not default and not isinstance(value, kind):
        raise _Malformed(keyword, f"the {side} '{keyword}' has the wrong type")
    return value


def _count(schema: dict, keyword: str, side: str) -> int | None:
    value = schema.get(keyword)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        raise _Malformed(keyword, f"the {side} '{keyword}' is not a non-negative integer")
    return int(value)


def _number(schema: dict, keyword: str, side: str):
    value = schema.get(keyword)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)):
        raise _Malformed(keyword, f"the {side} '{keyword}' is not a number")
    return value


def _bound(schema: dict, lower: bool, integers: bool, side: str):
    """The tightest bound as (value, exclusive, keyword); also reads Draft 4 / OpenAPI 3.0 boolean exclusives."""
    inclusive, exclusive = ("minimum", "exclusiveMinimum") if lower else ("maximum", "exclusiveMaximum")
    found, flag = [], schema.get(exclusive)
    if isinstance(flag, bool):
        if (value := _number(schema, inclusive, side)) is not None:
            found.append((value, flag, inclusive))
    else:
        for keyword, is_exclusive in ((inclusive, False), (exclusive, True)):
            if (value := _number(schema, keyword, side)) is not None:
                found.append((value, is_exclusive, keyword))
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
    if reader is None:
        return False
    if writer is None:
        return True
    if reader[0] == writer[0]:
        return reader[1] and not writer[1]
    return reader[0] > writer[0] if lower else reader[0] < writer[0]


def _op(bound, lower: bool) -> str:
    return (">" if bound[1] else ">=") if lower else ("<" if bound[1] else "<=")


def _is_multiple(value, divisor) -> bool:
    try:
        return Decimal(str(value)) % Decimal(str(divisor)) == 0
    except (InvalidOperation, ValueError):
        return False


def _merge(base: dict, extra) -> dict | bool:
    """Both writer schemas at once, over-approximated: dropping a constraint can only make the check stricter.

    Properties and required names are united, because a producer of an intersection produces every declared name.
    """
    if extra is True:
        return base
    if not isinstance(extra, dict):
        return extra  # False (produces nothing) or malformed; check() reports the latter
    out = dict(base)
    for group in (("if", "then", "else"), ("contains", "minContains", "maxContains")):
        if not extra.keys().isdisjoint(group):  # these only mean something together: keep one side's set
            out = {k: v for k, v in out.items() if k not in group}
    for key, value in extra.items():
        mine = out.get(key)
        if key not in out or _same(mine, value):
            out[key] = value
        elif key in ("items", "additionalProperties", "propertyNames"):
            out[key] = {"allOf": [mine, value]}
        elif key == "not":
            out[key] = {"anyOf": [mine, value]}
        elif key == "properties" and isinstance(mine, dict) and isinstance(value, dict):
            both = {n: {"allOf": [mine[n], s]} for n, s in value.items() if n in mine and not _same(mine[n], s)}
            out[key] = {**mine, **value, **both}
        elif key in ("required", "allOf") and isinstance(mine, list) and isinstance(value, list):
            out[key] = mine + [v for v in value if v not in mine]
        elif key in ("anyOf", "oneOf") and isinstance(out.get("allOf", []), list):
            kept = out.get("allOf", [])
            out["allOf"] = kept if {key: mine} in kept else [*kept, {key: mine}]  # keep both sets of alternatives
            out[key] = value
        elif key == "type" and (both := _intersect_types(mine, value)) is not None:
            if not both:
                return False  # no instance has two disjoint types: this combination produces nothing
            out[key] = both
        elif key in TIGHTEST and all(isinstance(v, int | float) and not isinstance(v, bool) for v in (mine, value)):
            out[key] = TIGHTEST[key](mine, value)
        else:
            out[key] = value
    return out


def _intersect_types(a, b) -> list[str] | None:
    a, b = ([t] if isinstance(t, str) else t for t in (a, b))
    if not (isinstance(a, list) and isinstance(b, list) and all(t in TYPES for t in [*a, *b])):
        return None
    a, b = set(a), set(b)
    both = a & b
    if ("integer" in a and "number" in b) or ("number" in a and "integer" in b):
        both.add("integer")
    return sorted(str(t) for t in both)


def _normalized(schema: dict) -> dict:
    """``unevaluated*`` without applicators around it means exactly ``additionalProperties`` / ``items``."""
    if APPLICATORS & schema.keys():
        return schema
    out = dict(schema)
    if "unevaluatedProperties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = out.pop("unevaluatedProperties")
    if "unevaluatedItems" in out and "items" not in out and "contains" not in out:
        out["items"] = out.pop("unevaluatedItems")
    return out


def _branches(schema: dict, keyword: str, side: str) -> list:
    value = schema.get(keyword, [])
    if not isinstance(value, list) or (keyword in schema and not value):
        raise _Malformed(keyword, f"the {side} '{keyword}' is not a non-empty list")
    return value


def _items(schema: dict, side: str) -> tuple[list, object, str]:
    """(positional schemas, schema of the rest, keyword of the positions), also for the pre-2020 array ``items``."""
    items = schema.get("items", True)
    if isinstance(items, list):
        return items, schema.get("additionalItems", True), "items"
    return _get(schema, "prefixItems", list, side, []), items, "prefixItems"


def _matching(patterns: dict, name, side: str):
    """The schema of the first pattern matching ``name`` (Python's re stands in for ECMA-262 regexes)."""
    for pattern, schema in patterns.items():
        try:
            if re.search(pattern, name):
                return schema
        except (re.error, TypeError):
            raise _Malformed("patternProperties", f"the {side} pattern {_show(pattern)} is not a valid regex")
    return None


def _writer_values(w: dict) -> list | None:
    if "enum" not in w and "const" not in w:
        return None
    values = list(_get(w, "enum", list, "producer's", []))
    return values + [w["const"]] if "const" in w else values


def _finite_values(w: dict) -> list | None:
    """Every instance of a null/boolean-only producer, so a reader's enum can be checked value by value."""
    types = _types(w, "producer's")
    if not types or not types <= {"null", "boolean"}:
        return None
    return ([None] if "null" in types else []) + ([True, False] if "boolean" in types else [])


def _dedupe(problems: list[Incompatibility]) -> list[Incompatibility]:
    seen, out = set(), []
    for p in problems:
        if (p.path, p.rule, p.message) not in seen:
            seen.add((p.path, p.rule, p.message))
            out.append(p)
    return out


class _Checker:
    """One is_subschema run: the documents each side's $refs resolve against, and the pairs being compared."""

    def __init__(self, writer_root, reader_root):
        self.roots = {"producer's": writer_root, "reader's": reader_root}
        self.same_roots = writer_root is reader_root or _same(writer_root, reader_root)
        self.active: set[tuple[str, str]] = set()
        self.validators: dict = {}

    def check(self, w, r, path: str, field: str, depth: int) -> list[Incompatibility]:
        if r is True or w is False:
            return []
        if w == r and _same(w, r) and (self.same_roots or not _has_ref(w)):
            return []  # identical schemas accept identical instances
        for side, schema in (("producer's", w), ("reader's", r)):
            if not isinstance(schema, dict | bool):
                why = f"The {side} schema for {_label(field, False)} is {_show(schema)}, not an object or a boolean."
                return [Incompatibility(path, "invalid_schema", why)]
        if r is False:
            why = f"{_label(field)} is produced but the reader's schema is false, which accepts nothing."
            return [Incompatibility(path, "rejects_everything", why)]
        if not _constraining(r):
            return []
        w = {} if w is True else w
        if depth > MAX_DEPTH:
            why = f"Cannot prove compatibility for {_label(field, False)}: schemas nest deeper than {MAX_DEPTH} levels."
            return [Incompatibility(path, "invalid_schema", why)]
        key = (_canon(w), _canon(r))
        if key in self.active:
            return []  # a recursive schema came back to a pair being compared: assume compatible (coinduction)
        self.active.add(key)
        try:
            return _dedupe(self._dispatch(w, r, path, field, depth + 1))
        except _Malformed as exc:
            why = f"Cannot check {_label(field, False)}: {exc}."
            return [Incompatibility(f"{path}/{_esc(exc.keyword)}", "invalid_schema", why)]
        finally:
            self.active.discard(key)

    def _dispatch(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Unfold references and the producer's combinators first, then compare keyword by keyword."""
        if "$ref" in w:
            target = self._follow(w, path)
            return [target] if isinstance(target, Incompatibility) else self.check(target, r, path, field, depth)
        if "$ref" in r:  # the reader's siblings constrain in addition to its target
            target, where = self._resolve("reader's", r["$ref"], path)
            if isinstance(target, Incompatibility):
                return [target]
            rest = {k: v for k, v in r.items() if k != "$ref"}
            return self.check(w, target, where, field, depth) + self.check(w, rest, path, field, depth)
        for keyword in ("anyOf", "oneOf"):
            if keyword in w:  # every alternative, narrowed by the keywords next to it, must be accepted
                base = {k: v for k, v in w.items() if k != keyword}
                branches = _branches(w, keyword, "producer's")
                return [p for b in branches for p in self.check(_merge(base, b), r, path, field, depth)]
        if "allOf" in w:
            return self.check(self._merge_all(w, path), r, path, field, depth)
        if "not" in w and (w["not"] is True or (isinstance(w["not"], dict) and not _constraining(w["not"]))):
            return []  # "not: {}" produces nothing
        values = _writer_values(w)
        if values is None and ("enum" in r or "const" in r):
            values = _finite_values(w)
        if values is not None:
            return self._values(w, r, path, field, values)
        w, r = _normalized(w), _normalized(r)
        return self._combinators(w, r, path, field, depth) + self._typed(w, r, path, field, depth)

    def _resolve(self, side: str, ref, path: str):
        """(target, its JSON Pointer) for a local reference, or (Incompatibility, "") when it cannot be followed."""
        seen: list[str] = []
        while True:
            if not isinstance(ref, str):
                raise _Malformed("$ref", f"the {side} '$ref' is not a string")
            if ref in seen:
                return Incompatibility(f"{path}/$ref", "unresolvable_ref", f"The {side} $ref '{ref}' is a cycle."), ""
            seen.append(ref)
            if ref != "#" and not ref.startswith("#/"):
                why = f"Cannot prove compatibility: the {side} $ref '{ref}' is not a local JSON Pointer."
                return Incompatibility(f"{path}/$ref", "unsupported_ref", why), ""
            node, pointer = self.roots[side], unquote(ref[1:])
            for token in pointer.split("/")[1:]:
                token = token.replace("~1", "/").replace("~0", "~")
                if isinstance(node, dict) and token in node:
                    node = node[token]
                elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                    node = node[int(token)]
                else:
                    why = f"The {side} $ref '{ref}' points to nothing."
                    return Incompatibility(f"{path}/$ref", "unresolvable_ref", why), ""
            if not (isinstance(node, dict) and node.keys() - ANNOTATIONS == {"$ref"}):
                return node, pointer
            ref = node["$ref"]  # a bare alias: keep following

    def _follow(self, w: dict, path: str):
        """A producer's $ref target narrowed by its siblings, or the Incompatibility saying why it cannot be read."""
        target, _ = self._resolve("producer's", w["$ref"], path)
        rest = {k: v for k, v in w.items() if k != "$ref" and k not in ANNOTATIONS}
        return _merge(rest, target) if rest and not isinstance(target, Incompatibility) else target

    def _merge_all(self, w: dict, path: str):
        """A producer's allOf as one schema: its branches (references followed) merged with the siblings."""
        merged = {k: v for k, v in w.items() if k != "allOf"}
        for branch in _branches(w, "allOf", "producer's"):
            seen = set()
            while isinstance(branch, dict) and "$ref" in branch and _canon(branch) not in seen:
                seen.add(_canon(branch))
                target = self._follow(branch, path)
                branch = (
                    {k: v for k, v in branch.items() if k != "$ref"} if isinstance(target, Incompatibility) else target
                )
            if isinstance(branch, dict) and "$ref" in branch:
                branch = {k: v for k, v in branch.items() if k != "$ref"}  # a cycle: dropping it only widens
            merged = _merge(merged, branch)
            if not isinstance(merged, dict):
                return merged
        return merged

    def _validate(self, side: str, schema, value) -> tuple[bool | None, str]:
        """(valid?, reason) by jsonschema with that side's root for $refs; None when it cannot be evaluated."""
        try:
            if side not in self.validators:
                checker = Draft202012Validator.FORMAT_CHECKER
                self.validators[side] = Draft202012Validator(
                    self.roots[side], registry=Registry(), format_checker=checker
                )
            error = best_match(self.validators[side].evolve(schema=schema).iter_errors(value))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # malformed, unresolvable, endless $ref loop (a pyo3 panic is no Exception)
            return None, type(exc).__name__
        return (True, "") if error is None else (False, error.message)

    def _values(self, w: dict, r: dict, path: str, field: str, values: list) -> list[Incompatibility]:
        """A finite producer: each value its own schema accepts must validate under the reader."""
        problems = []
        keyword = "enum" if "enum" in r else "const"
        allowed = r.get("enum") if isinstance(r.get("enum"), list) else [r["const"]] if "const" in r else None
        for value in values:
            if self._validate("producer's", w, value)[0] is False:
                continue  # the producer's own schema rejects it, so it is never produced
            ok, reason = self._validate("reader's", r, value)
            shown = f"{_label(field)} may be {_show(value)} in the producer's schema but"
            if ok is None:
                why = f"{shown} the reader's schema could not be evaluated ({reason})."
                problems.append(Incompatibility(path, "invalid_schema", why))
            elif ok is False and allowed is not None and not any(_same(value, a) for a in allowed):
                why = f"{shown} the reader's {keyword} does not include it."
                problems.append(Incompatibility(f"{path}/{keyword}", "enum_value_removed", why))
            elif ok is False:
                problems.append(
                    Incompatibility(path, "enum_value_not_accepted", f"{shown} the reader rejects it: {reason}")
                )
        return problems

    def _combinators(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        problems = []
        for i, branch in enumerate(_branches(r, "allOf", "reader's")):
            problems += self.check(w, branch, f"{path}/allOf/{i}", field, depth)
        for keyword in ("anyOf", "oneOf"):
            if keyword in r:
                problems += self._some_branch(w, _branches(r, keyword, "reader's"), f"{path}/{keyword}", field, depth)
        if "not" in r:
            problems += self._not(w, r["not"], path, field)
        return problems

    def _some_branch(self, w: dict, branches: list, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Each producer type must fit one reader branch (oneOf's exclusivity is not proven)."""
        types = _types(w, "producer's")
        plain = {k: v for k, v in w.items() if k != "nullable"}
        variants = [w] if types is None or len(types) == 1 else [{**plain, "type": t} for t in sorted(types)]
        problems = []
        for variant in variants:
            results = [self.check(variant, b, f"{path}/{i}", field, depth) for i, b in enumerate(branches)]
            if any(not result for result in results):
                continue
            near = [i for i, b in enumerate(branches) if _overlap(_types(variant, "producer's"), self._peek(b))]
            if len(near) == 1:  # the one branch of the right type: its problems are the precise report
                problems += results[near[0]]
            else:
                what = _article(_types(variant, "producer's"))
                why = f"{_label(field)} may be {what} in the producer's schema but no branch of the reader's "
                why += f"{path.rsplit('/', 1)[-1]} accepts all of those values."
                problems.append(Incompatibility(path, "no_matching_branch", why))
        return problems

    def _peek(self, schema) -> frozenset[str] | None:
        """The types a reader branch allows, for choosing which branch a report should describe."""
        if schema is False:
            return frozenset()
        try:
            if isinstance(schema, dict) and "$ref" in schema:
                schema = self._resolve("reader's", schema["$ref"], "")[0]
            return _types(schema, "reader's") if isinstance(schema, dict) else None
        except _Malformed:
            return None

    def _not(self, w: dict, excluded, path: str, field: str) -> list[Incompatibility]:
        """Proved only when the producer excludes the same schema or its types cannot meet the excluded ones."""
        if "not" in w and _same(w["not"], excluded) and (self.same_roots or not _has_ref(excluded)):
            return []
        if not _overlap(_types(w, "producer's"), self._peek(excluded)):
            return []
        why = (
            f"Cannot prove compatibility for {_label(field, False)}: the reader excludes {_show(excluded)} with 'not'."
        )
        return [Incompatibility(f"{path}/not", "unsupported_keyword", why)]

    def _typed(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Types first; then the keywords of each type the producer may send and the reader accepts."""
        wt, rt = _types(w, "producer's"), _types(r, "reader's")
        problems = []
        if rt is not None and any(not _accepts(rt, t) for t in wt or TYPES):
            rule = "type_narrowed" if wt is None or _overlap(wt, rt) else "type_changed"
            what = "may be any type" if wt is None else ("may be " if rule == "type_narrowed" else "is ") + _article(wt)
            why = f"{_label(field)} {what} in the producer's schema but the reader accepts only {_plain(rt)}."
            problems.append(Incompatibility(f"{path}/type", rule, why))
        live = frozenset(t for t in wt or TYPES if _accepts(rt, t))
        if ("enum" in r or "const" in r) and live:
            keyword = "enum" if "enum" in r else "const"
            what = "any value" if wt is None else f"any {_plain(live)}"
            why = f"{_label(field)} may be {what} in the producer's schema but the reader accepts only {_show(r[keyword])}."
            problems.append(Incompatibility(f"{path}/{keyword}", "enum_added", why))
        if live & {"number", "integer"}:
            problems += self._numbers(w, r, path, field, wt == {"integer"})
        if "string" in live:
            problems += self._strings(w, r, path, field)
        if "array" in live:
            problems += self._arrays(w, r, path, field, depth)
        if "object" in live:
            problems += self._objects(w, r, path, field, depth)
        return problems + self._unknown(w, r, path, field)

    def _numbers(self, w: dict, r: dict, path: str, field: str, integers: bool) -> list[Incompatibility]:
        problems = []
        for lower, noun, rule in ((True, "minimum", "minimum_raised"), (False, "maximum", "maximum_lowered")):
            wb, rb = _bound(w, lower, integers, "producer's"), _bound(r, lower, integers, "reader's")
            if _tighter(rb, wb, lower):
                had = f"has no {noun}" if wb is None else f"has {noun} {_op(wb, lower)} {_show(wb[0])}"
                why = f"{_label(field)} {had} in the producer's schema but the reader requires {_op(rb, lower)} "
                why += f"{_show(rb[0])}."
                problems.append(Incompatibility(f"{path}/{rb[2]}", rule, why))
        divisor = _number(r, "multipleOf", "reader's")
        if divisor is not None:
            mine = _number(w, "multipleOf", "producer's") or (1 if integers else None)
            if mine is None or not _is_multiple(mine, divisor):
                had = f"has multipleOf {_show(mine)}" if mine is not None else "has no multipleOf"
                why = f"{_label(field)} {had} in the producer's schema but the reader requires multiples of {_show(divisor)}."
                problems.append(Incompatibility(f"{path}/multipleOf", "multiple_of_changed", why))
        return problems

    def _strings(self, w: dict, r: dict, path: str, field: str) -> list[Incompatibility]:
        problems = self._counts(w, r, path, field, ("minLength", "maxLength"), "characters")
        for keyword in ("pattern", "format"):
            if keyword in r and not _same(w.get(keyword), r[keyword]):
                had = f"has {keyword} {_show(w[keyword])}" if keyword in w else f"has no {keyword}"
                why = f"{_label(field)} {had} in the producer's schema but the reader requires {keyword} {_show(r[keyword])}."
                problems.append(Incompatibility(f"{path}/{keyword}", f"{keyword}_changed", why))
        return problems

    def _counts(self, w: dict, r: dict, path: str, field: str, keywords: tuple, unit: str) -> list[Incompatibility]:
        (low, high), problems = keywords, []
        (w_low, r_low), (w_high, r_high) = ((_count(w, k, "producer's"), _count(r, k, "reader's")) for k in keywords)
        if r_low is not None and r_low > (w_low or 0):
            why = f"{_label(field)} may have as few as {w_low or 0} {unit} in the producer's schema but the reader "
            problems.append(Incompatibility(f"{path}/{low}", COUNT_RULES[low], why + f"requires at least {r_low}."))
        if r_high is not None and (w_high is None or r_high < w_high):
            had = f"up to {w_high}" if w_high is not None else "any number of"
            why = f"{_label(field)} may have {had} {unit} in the producer's schema but the reader allows at most {r_high}."
            problems.append(Incompatibility(f"{path}/{high}", COUNT_RULES[high], why))
        return problems

    def _arrays(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        problems = self._counts(w, r, path, field, ("minItems", "maxItems"), "items")
        if r.get("uniqueItems") is True and w.get("uniqueItems") is not True:
            why = f"{_label(field)} may repeat items in the producer's schema but the reader requires unique items."
            problems.append(Incompatibility(f"{path}/uniqueItems", "unique_items_added", why))
        (w_prefix, w_rest, _), (r_prefix, r_rest, r_keyword) = _items(w, "producer's"), _items(r, "reader's")
        limit, n = _count(w, "maxItems", "producer's"), max(len(w_prefix), len(r_prefix))
        for i in range(n + 1):  # position n stands for every position after both prefixes
            schema = w_prefix[i] if i < len(w_prefix) else w_rest
            if (limit is not None and i >= limit) or schema is False:
                break  # the producer's arrays never reach this position
            where = f"{path}/{r_keyword}/{i}" if i < len(r_prefix) else f"{path}/items"
            reader = r_prefix[i] if i < len(r_prefix) else r_rest
            problems += self.check(schema, reader, where, f"{field}[{i}]" if i < n else f"{field}[]", depth)
        return problems

    def _objects(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Producers send the properties they declare, plus other names only where their additionalProperties is a
        schema or patternProperties allow them; the reader must accept each and require nothing more."""
        (w_props, w_pats, w_req), (r_props, r_pats, r_req) = (
            (
                _get(s, "properties", dict, side, {}),
                _get(s, "patternProperties", dict, side, {}),
                _get(s, "required", list, side, []),
            )
            for s, side in ((w, "producer's"), (r, "reader's"))
        )
        extra = w.get("additionalProperties") if isinstance(w.get("additionalProperties"), dict) else None
        reader_extra = r.get("additionalProperties", True)
        problems = []
        same_patterns = not r_pats or (_same(w_pats, r_pats) and (self.same_roots or not _has_ref(r_pats)))
        if not same_patterns:
            why = f"Cannot prove compatibility for {_label(field, False)}: the reader's patternProperties differ."
            problems.append(Incompatibility(f"{path}/patternProperties", "unsupported_keyword", why))
        for name, schema in w_props.items():
            where, child = f"{path}/properties/{_esc(name)}", _child(field, name)
            if schema is False or (name not in r_props and r_pats and _matching(r_pats, name, "reader's") is not None):
                continue  # never sent, or under patterns both sides share (or that were reported above)
            if name in r_props:
                problems += self.check(schema, r_props[name], where, child, depth)
            elif reader_extra is False:
                why = f"{_label(child)} may be sent by producers but the reader does not allow it (additionalProperties is false)."
                problems.append(Incompatibility(where, "property_not_accepted", why))
            else:
                problems += self.check(schema, reader_extra, f"{path}/additionalProperties", child, depth)
        for name, reader in r_props.items():
            schema = _matching(w_pats, name, "producer's") if name not in w_props else None
            if name not in w_props and (schema := extra if schema is None else schema) is not None:
                problems += self.check(schema, reader, f"{path}/properties/{_esc(name)}", _child(field, name), depth)
        for schema in [extra, *([] if r_pats else w_pats.values())] if same_patterns else []:
            if schema is None or schema is False:
                continue
            if reader_extra is False:
                why = f"{_label(field)} may carry properties the producer's schema does not name, but the reader allows none."
                problems.append(Incompatibility(f"{path}/additionalProperties", "property_not_accepted", why))
            else:
                problems += self.check(schema, reader_extra, f"{path}/additionalProperties", _child(field, "*"), depth)
        for name in r_req:
            if name not in w_req:
                why = f"The reader requires '{_child(field, name)}' but the producer's schema does not, so it may be missing."
                problems.append(Incompatibility(f"{path}/required", "required_added", why))
        return problems + self._counts(w, r, path, field, ("minProperties", "maxProperties"), "properties")

    def _unknown(self, w: dict, r: dict, path: str, field: str) -> list[Incompatibility]:
        """Keywords not modelled here prove nothing unless both sides carry the same self-contained value."""
        problems = []
        for keyword, value in r.items():
            if keyword in HANDLED or keyword in ANNOTATIONS or str(keyword).startswith("x-"):
                continue
            same = keyword in w and _same(w[keyword], value) and (self.same_roots or not _has_ref(value))
            if same and keyword not in NEVER_PROVABLE:
                continue
            had = _show(w[keyword]) if keyword in w else "absent"
            why = (
                f"Cannot prove compatibility for {_label(field, False)}: keyword '{keyword}' is {_show(value)} in the "
            )
            why += f"reader and {had} in the producer's schema."
            problems.append(Incompatibility(f"{path}/{_esc(keyword)}", "unsupported_keyword", why))
        return problems
