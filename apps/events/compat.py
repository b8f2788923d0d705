"""JSON Schema compatibility: is every instance one schema produces accepted by another?

Used by the event schema registry (Confluent-style compatibility modes) and the OpenAPI breaking-change gate.
The check is structural and conservative: when it cannot prove that the reader accepts what the writer produces
it says why (``unsupported_keyword``, ``unsupported_ref``, ...) rather than guessing, and a malformed schema is
reported, never raised. Semantics and the reasoning behind them: docs/compatibility.md.
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
ARTICLES = {"null": "null", "boolean": "a boolean", "object": "an object", "array": "an array", "number": "a number"}
ARTICLES |= {"integer": "an integer", "string": "a string"}
ANNOTATIONS = frozenset(  # no effect on which instances validate
    {"title", "description", "examples", "example", "default", "$comment", "deprecated", "readOnly", "writeOnly"}
    | {"$schema", "$id", "$anchor", "$dynamicAnchor", "$vocabulary", "$defs", "definitions", "discriminator"}
    | {"contentMediaType", "contentEncoding", "contentSchema", "externalDocs", "xml"}
)
HANDLED = frozenset(  # compared below (additionalItems: next to the pre-2020 array form of items)
    {"type", "nullable", "enum", "const", "$ref", "allOf", "anyOf", "oneOf", "not", "properties", "required"}
    | {"additionalProperties", "patternProperties", "minProperties", "maxProperties", "items", "prefixItems"}
    | {"additionalItems", "minItems", "maxItems", "uniqueItems", "minimum", "exclusiveMinimum", "maximum"}
    | {"exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "format"}
)
# Their meaning depends on sibling keywords or on the dynamic scope, so equal values prove nothing.
NEVER_PROVABLE = frozenset({"unevaluatedProperties", "unevaluatedItems", "$dynamicRef"})
APPLICATORS = frozenset({"allOf", "anyOf", "oneOf", "$ref", "$dynamicRef", "if", "then", "else", "dependentSchemas"})
TIGHTEST = {k: max for k in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")}
TIGHTEST |= {k: min for k in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")}
COUNT_RULES = {"minLength": "min_length_raised", "maxLength": "max_length_lowered", "minItems": "min_items_raised"}
COUNT_RULES |= {"maxItems": "max_items_lowered", "minProperties": "min_properties_raised"}
COUNT_RULES |= {"maxProperties": "max_properties_lowered"}
OBJECT_KEYWORDS = (("properties", dict), ("patternProperties", dict), ("required", list))
MAX_DEPTH, MAX_CHECKS = 200, 20_000  # nesting levels plus $ref hops; comparisons per check
W, R = "producer's", "reader's"  # the two sides, as they appear in messages


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
    message: str  # one plain-English sentence naming the field and what changed
    direction: str = ""  # "backward" or "forward", filled by check_compatibility
    against_version: int | None = None  # the earlier version compared with, filled by check_compatibility

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Malformed(Exception):
    """A keyword whose value is not JSON Schema; reported as ``invalid_schema`` at that keyword."""

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
    except BaseException as exc:  # the promise is "never raises"; referencing's Rust core panics are no Exception
        return [Incompatibility("", "invalid_schema", f"Could not check compatibility ({type(exc).__name__}).")]


def check_compatibility(new: dict, previous: list[tuple[int, dict]], mode: Mode | str) -> list[Incompatibility]:
    """Enforce ``mode`` for ``new`` against ``previous`` ((version, schema) pairs, oldest first).

    BACKWARD: consumers on the new schema read old data, is_subschema(old, new). FORWARD: consumers on the old
    schema read new data, is_subschema(new, old). FULL: both. Non-transitive modes compare with the latest only.
    """
    mode = Mode(str(mode).upper())  # ValueError for a mode that does not exist
    if mode is Mode.NONE or not previous:
        return []
    directions = [d for d in ("backward", "forward") if mode.startswith((d.upper(), "FULL"))]
    found = []
    for version, old in previous if mode.endswith("_TRANSITIVE") else previous[-1:]:
        for direction in directions:
            pairs = is_subschema(old, new) if direction == "backward" else is_subschema(new, old)
            found += [dataclasses.replace(p, direction=direction, against_version=version) for p in pairs]
    return found


# --- messages ---------------------------------------------------------------------------------------------------


def _label(field: str, start: bool = True) -> str:
    text = f"Field '{field}'" if field else "The value"
    return text if start else text[0].lower() + text[1:]


def _broken(path: str, rule: str, field: str, producer: str, reader: str) -> Incompatibility:
    """The usual sentence: what the producer's schema allows, then what the reader demands."""
    return Incompatibility(path, rule, f"{_label(field)} {producer} in the producer's schema but the reader {reader}.")


def _unprovable(path: str, rule: str, field: str, reason: str) -> Incompatibility:
    return Incompatibility(path, rule, f"Cannot prove compatibility for {_label(field, False)}: {reason}.")


def _show(value) -> str:
    text = json.dumps(value, default=repr, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _esc(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _child(field: str, name) -> str:
    return f"{field}.{name}" if field else str(name)


def _plain(types, articles: bool = False) -> str:
    """Types as words: 'integer or null', or with articles 'an integer or null'; None is 'any type'."""
    if types is None:
        return "any type"
    return " or ".join(ARTICLES[t] if articles else t for t in TYPE_ORDER if t in types) or "nothing"


# --- reading schemas --------------------------------------------------------------------------------------------


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


# --- the comparison ---------------------------------------------------------------------------------------------


class _Checker:
    """One is_subschema run: the documents each side's $refs resolve against, and the pairs being compared."""

    def __init__(self, writer_root, reader_root):
        self.roots = {W: writer_root, R: reader_root}
        self.same_roots = writer_root is reader_root or _same(writer_root, reader_root)
        self.active: dict[tuple[str, str], str] = {}  # pairs under comparison -> the field they were met at
        self.validators: dict = {}
        self.budget = MAX_CHECKS  # alternatives multiply, and a schema may be hostile

    def check(self, w, r, path: str, field: str, depth: int) -> list[Incompatibility]:
        if r is True or w is False or (w == r and _same(w, r) and (self.same_roots or not _has_ref(w))):
            return []  # accepts all, produces nothing, or identical
        for side, schema in ((W, w), (R, r)):
            if not isinstance(schema, dict | bool):
                why = f"The {side} schema for {_label(field, False)} is {_show(schema)}, not an object or a boolean."
                return [Incompatibility(path, "invalid_schema", why)]
        if r is False:
            why = f"{_label(field)} is produced but the reader's schema is false, which accepts nothing."
            return [Incompatibility(path, "rejects_everything", why)]
        if not _constraining(r):
            return []
        self.budget -= 1
        if depth > MAX_DEPTH or self.budget < 0:
            deep = depth > MAX_DEPTH
            reason = f"the schemas are {'nested too deep' if deep else 'too complex'} to compare"
            return [_unprovable(path, "invalid_schema" if deep else "too_complex", field, reason)]
        w = {} if w is True else w
        key = (_canon(w), _canon(r))
        if key in self.active:  # a recursive schema came back to a pair under comparison
            if self.active[key] != field:
                return []  # one level deeper in the instance: assume compatible (coinduction)
            return [_unprovable(path, "unresolvable_ref", field, "a $ref cycle never reaches a value")]
        self.active[key] = field
        try:
            found = self._dispatch(w, r, path, field, depth + 1)
            return list({(p.path, p.rule, p.message): p for p in found}.values())  # without duplicates, in order
        except _Malformed as exc:
            why = f"Cannot check {_label(field, False)}: {exc}."
            return [Incompatibility(f"{path}/{_esc(exc.keyword)}", "invalid_schema", why)]
        finally:
            del self.active[key]

    def _dispatch(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Unfold references and the producer's alternatives first, then compare keyword by keyword."""
        if "$ref" in w:
            target = self._follow(w, path)
            return [target] if isinstance(target, Incompatibility) else self.check(target, r, path, field, depth)
        if "$ref" in r:  # the reader's siblings constrain in addition to its target
            target, where = self._resolve(R, r["$ref"], path)
            if isinstance(target, Incompatibility):
                return [target]
            rest = {k: v for k, v in r.items() if k != "$ref"}
            return self.check(w, target, where, field, depth) + self.check(w, rest, path, field, depth)
        for keyword in ("anyOf", "oneOf"):
            if keyword in w:  # every alternative, narrowed by the keywords beside it, must be accepted
                base = {k: v for k, v in w.items() if k != keyword}
                return [p for b in _branches(w, keyword, W) for p in self.check(_merge(base, b), r, path, field, depth)]
        if "allOf" in w:
            merged = self._merge_all(w, path)
            return [merged] if isinstance(merged, Incompatibility) else self.check(merged, r, path, field, depth)
        if "not" in w and (w["not"] is True or (isinstance(w["not"], dict) and not _constraining(w["not"]))):
            return []  # "not: {}" produces nothing
        values = _writer_values(w) if "enum" in w or "const" in w or "enum" in r or "const" in r else None
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
            for token in (t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]):
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
        target, _ = self._resolve(W, w["$ref"], path)
        rest = {k: v for k, v in w.items() if k != "$ref" and k not in ANNOTATIONS}
        return _merge(rest, target) if rest and not isinstance(target, Incompatibility) else target

    def _merge_all(self, w: dict, path: str):
        """A producer's allOf as one schema: the branches (references followed) merged with the siblings."""
        merged = {k: v for k, v in w.items() if k != "allOf"}
        for branch in _branches(w, "allOf", W):
            seen = set()
            while isinstance(branch, dict) and "$ref" in branch and _canon(branch) not in seen:
                seen.add(_canon(branch))
                branch = self._follow(branch, path)
                if isinstance(branch, Incompatibility):
                    return branch
            if isinstance(branch, dict) and "$ref" in branch:  # a cycle: dropping it only widens
                branch = {k: v for k, v in branch.items() if k != "$ref"}
            merged = _merge(merged, branch)
            if not isinstance(merged, dict):
                break
        return merged

    def _validate(self, side: str, schema, value) -> tuple[bool | None, str]:
        """(valid?, reason) per jsonschema, that side's root resolving $refs; None when it cannot be evaluated."""
        try:
            if side not in self.validators:
                checker = Draft202012Validator.FORMAT_CHECKER
                validator = Draft202012Validator(self.roots[side], registry=Registry(), format_checker=checker)
                self.validators[side] = validator
            error = best_match(self.validators[side].evolve(schema=schema).iter_errors(value))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # malformed, unresolvable, endless $ref loop (a Rust panic is no Exception)
            return None, type(exc).__name__
        return (True, "") if error is None else (False, error.message)

    def _values(self, w: dict, r: dict, path: str, field: str, values: list) -> list[Incompatibility]:
        """A finite producer: each value its own schema accepts must validate under the reader."""
        problems, keyword = [], "enum" if "enum" in r else "const"
        allowed = r.get("enum") if isinstance(r.get("enum"), list) else [r["const"]] if "const" in r else None
        for value in values:
            if self._validate(W, w, value)[0] is False:
                continue  # the producer's own schema rejects it, so it is never sent
            ok, reason = self._validate(R, r, value)
            sent = f"may be {_show(value)}"
            if ok is None:
                why = f"the reader's schema cannot be evaluated for {_show(value)} ({reason})"
                problems.append(_unprovable(path, "invalid_schema", field, why))
            elif not ok and allowed is not None and not any(_same(value, a) for a in allowed):
                why = f"does not list it in its {keyword}"
                problems.append(_broken(f"{path}/{keyword}", "enum_value_removed", field, sent, why))
            elif not ok:
                problems.append(_broken(path, "enum_value_not_accepted", field, sent, f"rejects it ({reason})"))
        return problems

    def _combinators(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        problems = []
        for i, branch in enumerate(_branches(r, "allOf", R)):
            problems += self.check(w, branch, f"{path}/allOf/{i}", field, depth)
        for keyword in ("anyOf", "oneOf"):
            if keyword in r:
                problems += self._some_branch(w, _branches(r, keyword, R), f"{path}/{keyword}", field, depth)
        if "not" in r:
            problems += self._not(w, r["not"], path, field)
        return problems

    def _some_branch(self, w: dict, branches: list, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Each producer type must fit one reader branch; oneOf's exclusivity is not proven."""
        types, problems = _types(w, W), []
        plain = {k: v for k, v in w.items() if k != "nullable"}
        for variant in [w] if types is None or len(types) == 1 else [{**plain, "type": t} for t in sorted(types)]:
            results = [self.check(variant, b, f"{path}/{i}", field, depth) for i, b in enumerate(branches)]
            if all(results):
                mine = _types(variant, W)
                near = [i for i, b in enumerate(branches) if _overlap(mine, self._peek(b))]
                if len(near) == 1:  # the one branch of the right type: its problems are the precise report
                    problems += results[near[0]]
                else:
                    what = f"may be {_plain(mine, articles=True)}"
                    why = f"has no {path.rsplit('/', 1)[-1]} branch accepting all of it"
                    problems.append(_broken(path, "no_matching_branch", field, what, why))
        return problems

    def _peek(self, schema) -> frozenset[str] | None:
        """The types a reader branch allows, to pick the branch a report should describe."""
        if schema is False:
            return frozenset()
        try:
            if isinstance(schema, dict) and "$ref" in schema:
                schema = self._resolve(R, schema["$ref"], "")[0]
            return _types(schema, R) if isinstance(schema, dict) else None
        except _Malformed:
            return None

    def _not(self, w: dict, excluded, path: str, field: str) -> list[Incompatibility]:
        """Proved only when the producer excludes the same schema, or its types cannot meet the excluded ones."""
        if "not" in w and _same(w["not"], excluded) and (self.same_roots or not _has_ref(excluded)):
            return []
        if not _overlap(_types(w, W), self._peek(excluded)):
            return []
        return [_unprovable(f"{path}/not", "unsupported_keyword", field, f"the reader excludes {_show(excluded)}")]

    def _typed(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        """Types first, then the keywords of each type the producer may send and the reader accepts."""
        wt, rt = _types(w, W), _types(r, R)
        problems = []
        if rt is not None and any(not _accepts(rt, t) for t in wt or TYPES):
            rule = "type_narrowed" if wt is None or _overlap(wt, rt) else "type_changed"
            what = ("may be " if rule == "type_narrowed" else "is ") + _plain(wt, articles=True)
            problems.append(_broken(f"{path}/type", rule, field, what, f"accepts only {_plain(rt)}"))
        live = frozenset(t for t in wt or TYPES if _accepts(rt, t))
        if ("enum" in r or "const" in r) and live:
            keyword = "enum" if "enum" in r else "const"
            what = "may be any value" if wt is None else f"may be any {_plain(live)}"
            why = f"accepts only {_show(r[keyword])}"
            problems.append(_broken(f"{path}/{keyword}", "enum_added", field, what, why))
        if live & {"number", "integer"}:
            problems += self._numbers(w, r, path, field, wt == {"integer"})
        if "string" in live:
            problems += self._counts(w, r, path, field, ("minLength", "maxLength"), "characters")
            for keyword in ("pattern", "format"):
                if keyword in r and not _same(w.get(keyword), r[keyword]):
                    had = f"has {keyword} {_show(w[keyword])}" if keyword in w else f"has no {keyword}"
                    why = f"requires {keyword} {_show(r[keyword])}"
                    problems.append(_broken(f"{path}/{keyword}", f"{keyword}_changed", field, had, why))
        if "array" in live:
            problems += self._arrays(w, r, path, field, depth)
        if "object" in live:
            problems += self._objects(w, r, path, field, depth)
        return problems + self._unknown(w, r, path, field)

    def _numbers(self, w: dict, r: dict, path: str, field: str, integers: bool) -> list[Incompatibility]:
        problems = []
        for lower, noun, rule in ((True, "minimum", "minimum_raised"), (False, "maximum", "maximum_lowered")):
            wb, rb = _bound(w, lower, integers, W), _bound(r, lower, integers, R)
            if _tighter(rb, wb, lower):
                op = {(True, False): ">=", (True, True): ">", (False, False): "<=", (False, True): "<"}
                had = f"has no {noun}" if wb is None else f"has {noun} {op[lower, wb[1]]} {_show(wb[0])}"
                why = f"requires {op[lower, rb[1]]} {_show(rb[0])}"
                problems.append(_broken(f"{path}/{rb[2]}", rule, field, had, why))
        divisor = _number(r, "multipleOf", R)
        if divisor is not None:
            mine = _number(w, "multipleOf", W) or (1 if integers else None)
            if mine is None or not _is_multiple(mine, divisor):
                had = "has no multipleOf" if mine is None else f"has multipleOf {_show(mine)}"
                why = f"requires multiples of {_show(divisor)}"
                problems.append(_broken(f"{path}/multipleOf", "multiple_of_changed", field, had, why))
        return problems

    def _counts(self, w: dict, r: dict, path: str, field: str, keywords: tuple, unit: str) -> list[Incompatibility]:
        (low, high), problems = keywords, []
        (w_low, r_low), (w_high, r_high) = ((_count(w, k, W), _count(r, k, R)) for k in keywords)
        if r_low is not None and r_low > (w_low or 0):
            had = f"may have as few as {w_low or 0} {unit}"
            problems.append(_broken(f"{path}/{low}", COUNT_RULES[low], field, had, f"requires at least {r_low}"))
        if r_high is not None and (w_high is None or r_high < w_high):
            had = f"may have {'any number of' if w_high is None else f'up to {w_high}'} {unit}"
            problems.append(_broken(f"{path}/{high}", COUNT_RULES[high], field, had, f"allows at most {r_high}"))
        return problems

    def _arrays(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        problems = self._counts(w, r, path, field, ("minItems", "maxItems"), "items")
        if r.get("uniqueItems") is True and w.get("uniqueItems") is not True:
            why = "requires unique items"
            problems.append(_broken(f"{path}/uniqueItems", "unique_items_added", field, "may repeat items", why))
        (w_prefix, w_rest, _), (r_prefix, r_rest, r_keyword) = _items(w, W), _items(r, R)
        limit, n = _count(w, "maxItems", W), max(len(w_prefix), len(r_prefix))
        for i in range(n + 1):  # position n stands for every position after both prefixes
            schema = w_prefix[i] if i < len(w_prefix) else w_rest
            if (limit is not None and i >= limit) or schema is False:
                break  # the producer's arrays never reach this position
            where, reader = (f"{path}/{r_keyword}/{i}", r_prefix[i]) if i < len(r_prefix) else (f"{path}/items", r_rest)
            problems += self.check(schema, reader, where, f"{field}[{i}]" if i < n else f"{field}[]", depth)
        return problems

    def _objects(self, w: dict, r: dict, path: str, field: str, depth: int) -> list[Incompatibility]:
        """The producer sends its declared properties, plus other names where its additionalProperties is a schema
        or its patternProperties allow; the reader must accept each of them and require nothing more."""
        w_props, w_pats, w_req = (_get(w, k, t, W, t()) for k, t in OBJECT_KEYWORDS)
        r_props, r_pats, r_req = (_get(r, k, t, R, t()) for k, t in OBJECT_KEYWORDS)
        extra = w.get("additionalProperties") if isinstance(w.get("additionalProperties"), dict) else None
        reader_extra, problems = r.get("additionalProperties", True), []
        same_patterns = not r_pats or (_same(w_pats, r_pats) and (self.same_roots or not _has_ref(r_pats)))
        if not same_patterns:
            why = "the reader's patternProperties changed"
            problems.append(_unprovable(f"{path}/patternProperties", "unsupported_keyword", field, why))
        for name, schema in w_props.items():
            where, child = f"{path}/properties/{_esc(name)}", _child(field, name)
            if schema is False or (name not in r_props and r_pats and _matching(r_pats, name, R) is not None):
                continue  # never sent, or under patterns both sides share (or that were reported above)
            if name in r_props:
                problems += self.check(schema, r_props[name], where, child, depth)
            elif reader_extra is False:
                why = "does not allow it (additionalProperties is false)"
                problems.append(_broken(where, "property_not_accepted", child, "is declared", why))
            else:
                problems += self.check(schema, reader_extra, f"{path}/additionalProperties", child, depth)
        for name, reader in r_props.items():
            schema = None if name in w_props else _matching(w_pats, name, W)
            if name not in w_props and (schema := extra if schema is None else schema) is not None:
                problems += self.check(schema, reader, f"{path}/properties/{_esc(name)}", _child(field, name), depth)
        for schema in [extra, *([] if r_pats else w_pats.values())] if same_patterns else []:
            if schema is None or schema is False:
                continue
            if reader_extra is False:
                what, where = "may carry properties it does not declare", f"{path}/additionalProperties"
                problems.append(_broken(where, "property_not_accepted", field, what, "allows none"))
            else:
                problems += self.check(schema, reader_extra, f"{path}/additionalProperties", _child(field, "*"), depth)
        for name in r_req:
            if name not in w_req:
                why = f"The reader requires '{_child(field, name)}' but the producer's schema does not, so it may be "
                problems.append(Incompatibility(f"{path}/required", "required_added", why + "missing."))
        return problems + self._counts(w, r, path, field, ("minProperties", "maxProperties"), "properties")

    def _unknown(self, w: dict, r: dict, path: str, field: str) -> list[Incompatibility]:
        """Keywords not modelled here prove nothing unless both sides carry the same self-contained value."""
        problems = []
        for keyword, value in r.items():
            if keyword in HANDLED or keyword in ANNOTATIONS or str(keyword).startswith("x-"):
                continue
            same = keyword in w and _same(w[keyword], value) and (self.same_roots or not _has_ref(value))
            if not same or keyword in NEVER_PROVABLE:
                had = _show(w[keyword]) if keyword in w else "absent"
                reason = f"keyword '{keyword}' is {_show(value)} in the reader and {had} in the producer's schema"
                problems.append(_unprovable(f"{path}/{_esc(keyword)}", "unsupported_keyword", field, reason))
        return problems
