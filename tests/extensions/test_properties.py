"""Property-based tests over manifests and packages: whatever a publisher sends — arbitrary JSON, a valid
manifest with random damage, a package with random bytes flipped, random form fields — is accepted or
refused with a structured error (a list of ManifestError, UnknownScope, or the API's error envelope);
never an exception, never a 5xx.

1. validate_manifest on any JSON value (deep, huge numbers, NaN, any code point) returns structured errors;
2. random mutations of a rich valid manifest too, and a targeted mutation is blamed where it was made;
3. k independent faults give at least k errors, one under each fault's path, and nothing else is blamed;
4. scopes.parse raises only UnknownScope; scopes.diff classifies every change between random scope sets;
5. mutated manifests, packaged and correctly signed, upload as 201, 400 or 409 in the error envelope;
6. so do mutated package bytes, random package contents and random signature, key_id and channel fields;
7. POST /manifests/validate answers any body with {valid, errors} (what the validator says) or a 400.

Every run is deterministic (``derandomize``) and bounded, so the file stays quick on one core;
PLAZA_PROPERTY_SCALE=10 multiplies every example budget for a longer hunt.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from apps.core.schema_refs import json_path
from apps.extensions import scopes
from apps.extensions.manifest import EXTENSION_ID, HTTPS_URL, IDENTIFIER, SEMVER_RE, ManifestError, validate_manifest
from apps.extensions.packages import build_package
from apps.extensions.signing import sign_package
from tests.extensions.conftest import WASM
from tests.orgs.test_authorization import assert_error

# --- the valid starting point -----------------------------------------------------------------------
FILES = {
    "modules/main.wasm": WASM,
    "modules/tools.wasm": WASM,
    "ui/sidebar.html": "<!doctype html><title>Tags</title>",
    "assets/icon.png": b"\x89PNG\r\n\x1a\n",
}
EVENT_TYPES = {"order.created", "order.fulfilled", "customer.created"}

RICH_MANIFEST: dict = {
    "$schema": "https://plaza.example/schemas/extension.v1.json",
    "manifest_version": 1,
    "id": "acme.order-tagger",
    "version": "1.0.0",
    "name": "Order Tagger",
    "summary": "Tags new orders by what is in them.",
    "description": "# Order Tagger\n\nTags every new order. *Markdown* is fine here.",
    "icon": "assets/icon.png",
    "links": {"homepage": "https://tagger.example.com", "support": "https://tagger.example.com/help"},
    "platform": {"api": "^1.0"},
    "scopes": [
        "events:read:order.created",
        "kv:read",
        "kv:write",
        "http:fetch:api.example.com",
        "ui:slot:order.sidebar",
        "agent:tools",
        "billing:usage",
        "api:members:read",
    ],
    "modules": {"main": "modules/main.wasm", "tools": "modules/tools.wasm"},
    "hooks": [
        {"event": "order.created", "module": "main", "export": "on_order_created"},
        {"event": "order.created", "url": "https://hooks.example.com/plaza"},
    ],
    "ui_slots": [
        {
            "slot": "order.sidebar",
            "entry": "ui/sidebar.html",
            "title": "Tags",
            "height": 240,
            "permissions": ["popups"],
            "connect_src": ["https://api.example.com"],
        }
    ],
    "config_schema": {
        "type": "object",
        "properties": {
            "api_key": {"type": "string", "writeOnly": True},
            "threshold": {"type": "integer", "minimum": 0, "default": 3},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
        },
        "$defs": {"tag": {"type": "string", "maxLength": 30}},
        "required": ["api_key"],
    },
    "tool_packs": [
        {
            "name": "tagging",
            "description": "Tag and untag orders.",
            "tools": [
                {
                    "name": "tag_order",
                    "description": "Add a tag to an order.",
                    "module": "tools",
                    "export": "tag_order",
                    "input_schema": {
                        "type": "object",
                        "properties": {"order_id": {"type": "string"}, "tag": {"type": "string"}},
                        "required": ["order_id", "tag"],
                    },
                    "output_schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                }
            ],
        }
    ],
    "pricing": {"model": "usage", "currency": "EUR", "usage_unit": "order", "usage_price": "0.01"},
}

# PLAZA_PROPERTY_SCALE=10 for a longer hunt; the default keeps the file well under a minute.
SCALE = int(os.environ.get("PLAZA_PROPERTY_SCALE", "1"))
FAST = settings(
    max_examples=150 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


def fast(max_examples: int):
    return settings(FAST, max_examples=max_examples * SCALE)


def db_settings(max_examples: int):
    return settings(
        max_examples=max_examples * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,
    )


def check(doc, *, files=FILES, event_types=EVENT_TYPES) -> list[ManifestError]:
    """validate_manifest as an upload runs it, and the shape every answer must have."""
    errors = validate_manifest(doc, files=None if files is None else set(files), known_event_types=event_types)
    assert isinstance(errors, list)
    for error in errors:
        assert isinstance(error, ManifestError), error
        assert isinstance(error.path, str) and error.path.startswith("$"), error
        assert isinstance(error.rule, str) and error.rule, error
        assert isinstance(error.message, str) and error.message, error
        assert error.as_dict() == {"path": error.path, "rule": error.rule, "message": error.message}
    assert len({(e.path, e.rule) for e in errors}) == len(errors), errors
    return errors


def under(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or a location inside it ($.hooks[0] holds $.hooks[0].event, not $.hooks[01])."""
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


# --- strategies ---------------------------------------------------------------------------------------
MANIFEST_KEYS = sorted(
    {*RICH_MANIFEST, "type", "properties", "$ref", "items", "event", "module", "export", "url", "slot", "model"}
)
EDGE_CHARACTERS = ["\x00", "\n", "\r", "\t", "\ud800", "\udfff", "\u202e", "\ufeff", "\u0301", "\U0001f600", "\uffff"]
# Any code point, lone surrogates included: a JSON document may spell them ("\ud800"), and Python then holds them.
# (lists, not st.text: text() merges its alphabet into one range of code points and the edge cases drown in it)
wild_character = st.one_of(st.characters(), st.sampled_from(EDGE_CHARACTERS))
wild_text = st.lists(wild_character, max_size=80).map("".join)
short_wild_text = st.lists(wild_character, min_size=1, max_size=30).map("".join)
keys = st.one_of(st.sampled_from(MANIFEST_KEYS), st.text(max_size=12))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),  # far beyond 64 bits
    st.floats(),  # NaN and infinities included
    st.text(max_size=40),
    wild_text,
    st.sampled_from(["", "\x00", "\ud800", "\n", "1.0.0\n", "\u202eevil", "é" * 70]),
    st.integers(61, 12000).map(lambda n: "a" * n),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=40,
)


def dumps(value) -> str:
    """JSON text for any value the strategies make, however deep (json.dumps recurses and gives up near 1000);
    lone surrogates escaped, NaN and Infinity written as Python writes them."""
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif isinstance(item, dict):
            sequence = [_Raw("{")]
            for i, (key, child) in enumerate(item.items()):
                sequence += [_Raw(("," if i else "") + json.dumps(key) + ":"), child]
            stack.extend(reversed([*sequence, _Raw("}")]))
        elif isinstance(item, list):
            sequence = [_Raw("[")]
            for i, child in enumerate(item):
                sequence += [_Raw(","), child] if i else [child]
            stack.extend(reversed([*sequence, _Raw("]")]))
        else:
            out.append(json.dumps(item, allow_nan=True))
    return "".join(out)


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def nest(value, depth: int, kind: str):
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


deep_values = st.builds(nest, json_values, st.integers(50, 3000), st.sampled_from(["list", "dict"]))
any_json = st.one_of(json_values, deep_values)

semvers = st.builds(
    lambda a, b, c, pre: f"{a}.{b}.{c}" + (f"-{pre}" if pre else ""),
    st.integers(0, 30),
    st.integers(0, 30),
    st.integers(0, 10**12),
    st.one_of(st.none(), st.sampled_from(["beta.1", "rc.2", "alpha"])),
)

VALID_SCOPES = [
    "events:read:order.created",
    "events:read:order.fulfilled",
    "events:read:customer.created",
    "events:emit:order.tagged",
    "kv:read",
    "kv:write",
    "http:fetch:api.example.com",
    "http:fetch:cdn.example.org",
    "ui:slot:order.sidebar",
    "ui:slot:customer.header",
    "agent:tools",
    "billing:usage",
    "api:org:read",
    "api:members:read",
    "api:domains:read",
    "api:audit:read",
]
generated_scopes = st.one_of(
    st.from_regex(r"events:(read|emit):[a-z]{1,6}\.[a-z]{1,6}", fullmatch=True),
    st.from_regex(r"http:fetch:[a-z]{1,8}\.(com|org|example)", fullmatch=True),
    st.from_regex(r"ui:slot:[a-z]{1,6}([.-][a-z0-9]{1,4})?", fullmatch=True),
)
valid_scopes = st.one_of(st.sampled_from(VALID_SCOPES), generated_scopes)
almost_scopes = st.builds(
    lambda family, rest: f"{family}{rest}",
    st.sampled_from([f.prefix + ":" for f in scopes.FAMILIES] + [f.prefix for f in scopes.FAMILIES]),
    st.text(max_size=30),
)
scope_like_text = st.one_of(st.text(max_size=40), almost_scopes, valid_scopes, json_values)

GARBAGE_SCHEMAS = [
    {"type": 5},
    {"type": "object", "properties": {"a": {"type": "strin"}}},
    {"$ref": "http://x"},
    {"$ref": "https://evil.example/schema.json#/a"},
    {"type": "object", "$defs": {"a": {"$ref": "file:///etc/passwd"}}},
    {"type": "object", "pattern": "("},
    {"type": "object", "minProperties": -1},
    {"type": "object", "required": "a"},
    {"type": ["object", "object"]},
    {"type": "object", "allOf": []},
    {"type": "object", "properties": {"a": {"minimum": "x"}}},
]  # each refused wherever a JSON Schema goes
ODD_SCHEMAS = [{"$schema": "http://nope.example", "type": "object"}, {"type": "array"}, {}]  # refused, or not, by use
# (copies: a mutation may later edit the schema in place, and the lists must stay as they are between examples)
refused_schemas = st.sampled_from(GARBAGE_SCHEMAS).map(copy.deepcopy)
garbage_schemas = st.one_of(st.sampled_from(GARBAGE_SCHEMAS + ODD_SCHEMAS).map(copy.deepcopy), json_values, deep_values)


# --- mutation engine ------------------------------------------------------------------------------------
def paths_of(node, prefix: tuple = (), max_depth: int = 8):
    """Every location in ``node`` down to ``max_depth`` (mutations need not reach into deep garbage)."""
    yield prefix
    if len(prefix) >= max_depth:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_of(value, (*prefix, key), max_depth)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths_of(value, (*prefix, index), max_depth)


def get(doc, path: tuple):
    for part in path:
        doc = doc[part]
    return doc


def put(doc, path: tuple, value):
    if not path:
        return value
    get(doc, path[:-1])[path[-1]] = value
    return doc


def string_edits(text: str):
    return st.one_of(
        st.text(max_size=60),
        st.sampled_from([text + "\n", text.upper(), " " + text, text + "\x00", text * 40, "", text[:-1]]),
        st.builds(lambda extra: text + extra, st.text(min_size=1, max_size=5)),
    )


MUTATIONS = (
    "delete",
    "replace",
    "unknown_key",
    "retext",
    "duplicate",
    "wrap",
    "garbage_schema",
    "bump_version",
    "reshuffle_scopes",
)


def mutate(draw, doc, count: int):
    """``count`` random mutations of a deep copy of ``doc``, drawn one after the other on the current tree."""
    doc = copy.deepcopy(doc)
    for _ in range(count):
        kind = draw(st.sampled_from(MUTATIONS))
        if kind == "garbage_schema" and isinstance(doc, dict):
            targets = [("config_schema",)] + [
                path for path in paths_of(doc) if path and path[-1] in ("input_schema", "output_schema")
            ]
            doc = put(doc, draw(st.sampled_from(targets)), draw(garbage_schemas))
            continue
        if kind == "bump_version" and isinstance(doc, dict):
            doc["version"] = draw(semvers)
            continue
        if kind == "reshuffle_scopes" and isinstance(doc, dict):
            doc["scopes"] = draw(st.lists(valid_scopes, max_size=10, unique=True))
            continue
        path = draw(st.sampled_from(list(paths_of(doc))))
        node = get(doc, path)
        if kind == "delete" and path:
            parent = get(doc, path[:-1])
            del parent[path[-1]]
        elif kind == "unknown_key" and isinstance(node, dict):
            taken = frozenset(node)  # (not the node itself: Hypothesis describes the filter, and node may be deep)
            node[draw(keys.filter(lambda k, taken=taken: k not in taken))] = draw(json_values)
        elif kind == "retext" and isinstance(node, str):
            doc = put(doc, path, draw(string_edits(node)))
        elif kind == "duplicate" and isinstance(node, list) and node:
            node.append(node[draw(st.integers(0, len(node) - 1))])  # shared, as deep values cannot be copied
        elif kind == "wrap":
            doc = put(doc, path, [node])
        else:
            doc = put(doc, path, draw(any_json))
    return doc


@st.composite
def mutated_manifests(draw, max_mutations: int = 4, fresh_version: bool = False):
    """RICH_MANIFEST with 1..max_mutations mutations; ``fresh_version`` first gives it a random version number,
    so that uploads which survive the mutations are not all refused as a reused version."""
    base = {**RICH_MANIFEST, "version": draw(semvers)} if fresh_version else RICH_MANIFEST
    return mutate(draw, base, draw(st.integers(1, max_mutations)))


# --- 1. arbitrary JSON ----------------------------------------------------------------------------------
def test_the_rich_manifest_is_valid():
    assert check(RICH_MANIFEST) == []


@FAST
@given(any_json)
def test_any_json_value_gets_structured_errors(value):
    errors = check(value)
    if not isinstance(value, dict):
        assert [(e.path, e.rule) for e in errors] == [("$", "type")]


@FAST
@given(st.dictionaries(st.sampled_from(MANIFEST_KEYS), any_json, max_size=12))
def test_any_object_with_manifest_keys_gets_structured_errors(value):
    check(value)
    check(value, files=None, event_types=None)


# --- 2. mutated valid manifests ---------------------------------------------------------------------------
@fast(300)
@given(mutated_manifests())
def test_mutated_manifests_get_structured_errors(doc):
    check(doc)
    check(doc, files=None, event_types=None)


def _not(pattern: str):
    """Values ``pattern`` is meant to refuse: the whole string must fit (a trailing newline does not)."""
    return lambda value: not (isinstance(value, str) and re.fullmatch(pattern, value))


def _other_than(*allowed):
    return lambda value: value not in allowed


def _integer_between(value, low: int, high: int) -> bool:
    """What JSON Schema calls an integer in range (3.0 is an integer there; True is not)."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high and value == int(value)
    )


def _usable_scope(text) -> bool:
    try:
        scopes.parse(text)
    except scopes.UnknownScope:
        return False
    event_type = text.split(":", 2)[2] if text.startswith("events:read:") else None
    return event_type is None or event_type in EVENT_TYPES


unusable_scopes = st.one_of(st.text(max_size=40), almost_scopes, json_values).filter(lambda t: not _usable_scope(t))


# (where, the prefix an error must be under, values that must be refused there)
TARGETED = [
    (("hooks", 0, "event"), "$.hooks[0]", any_json.filter(_other_than("order.created"))),
    (("hooks", 0, "module"), "$.hooks[0]", any_json.filter(_other_than("main", "tools"))),
    (("hooks", 1, "url"), "$.hooks[1]", any_json.filter(_not(HTTPS_URL))),
    (("version",), "$.version", any_json.filter(_not(SEMVER_RE))),
    (("name",), "$.name", any_json.filter(lambda v: not (isinstance(v, str) and 1 <= len(v) <= 60))),
    (("modules", "main"), "$.modules", any_json.filter(_other_than(*FILES))),
    (("icon",), "$.icon", any_json.filter(_other_than("assets/icon.png"))),
    (("ui_slots", 0, "slot"), "$.ui_slots[0]", any_json.filter(_other_than("order.sidebar"))),
    (("ui_slots", 0, "entry"), "$.ui_slots[0]", any_json.filter(_other_than("ui/sidebar.html"))),
    (
        ("ui_slots", 0, "connect_src", 0),
        "$.ui_slots[0].connect_src",
        st.one_of(st.from_regex(r"https://[a-z]{1,8}\.example\.org", fullmatch=True), any_json).filter(
            lambda v: not (isinstance(v, str) and v.startswith("https://api.example.com"))
        ),
    ),
    (("ui_slots", 0, "height"), "$.ui_slots[0]", any_json.filter(lambda v: not _integer_between(v, 40, 2000))),
    (
        ("config_schema",),
        "$.config_schema",
        st.sampled_from([*GARBAGE_SCHEMAS, {"type": "array"}, {}]).map(copy.deepcopy),
    ),
    (("tool_packs", 0, "tools", 0, "input_schema"), "$.tool_packs[0].tools[0]", refused_schemas),
    (("tool_packs", 0, "tools", 0, "name"), "$.tool_packs[0].tools[0]", any_json.filter(_not(IDENTIFIER))),
    (("pricing", "model"), "$.pricing", any_json.filter(_other_than("usage"))),
    (("pricing", "currency"), "$.pricing", any_json.filter(_not(r"^[A-Z]{3}$"))),
    (("links", "homepage"), "$.links", any_json.filter(_not(HTTPS_URL))),
    (("scopes", 1), "$.scopes", unusable_scopes),
    (("manifest_version",), "$.manifest_version", any_json.filter(lambda v: not (v == 1 and type(v) in (int, float)))),
]


@fast(300)
@given(st.data())
def test_a_targeted_mutation_is_reported_where_it_was_made(data):
    where, prefix, values = data.draw(st.sampled_from(TARGETED))
    doc = put(copy.deepcopy(RICH_MANIFEST), where, data.draw(values))
    errors = check(doc)
    if [(e.path, e.rule) for e in errors] == [("$", "depth")]:  # nested past what the validator walks
        return
    assert any(under(e.path, prefix) for e in errors), (prefix, errors)


range_text = st.one_of(
    st.lists(
        st.sampled_from(["^", "~", "<", ">", "=", "*", "x", "|", "||", "-", " - ", " ", ".", "+", "0", "1", "2.3"]),
        max_size=8,
    ).map("".join),
    wild_text,
)


@fast(200)
@given(range_text)
@example("^1 - 2")
def test_any_platform_range_gets_structured_errors(text):
    try:
        errors = check({**RICH_MANIFEST, "platform": {"api": text}})
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(f"validate_manifest raised on platform.api = {text!r}") from exc
    assert all(under(e.path, "$.platform.api") for e in errors), errors


identifiers = st.from_regex(IDENTIFIER, fullmatch=True)
# Fields whose pattern must fit the whole value. JSON Schema's "pattern" searches, and in Python's regexes "$"
# also matches before a final newline: a pattern ending in "$" rather than "\Z" lets "1.0.0\n" through.
ANCHORED = {
    ("version",): semvers,
    ("id",): st.from_regex(EXTENSION_ID, fullmatch=True),
    ("hooks", 0, "export"): identifiers,
    ("hooks", 1, "url"): st.from_regex(r"https://[a-z]{1,10}\.example\.com(/[a-z]{0,8})?", fullmatch=True),
    ("tool_packs", 0, "name"): identifiers,
    ("tool_packs", 0, "tools", 0, "name"): identifiers,
    ("tool_packs", 0, "tools", 0, "export"): identifiers,
    ("pricing", "currency"): st.from_regex(r"[A-Z]{3}", fullmatch=True),
    ("pricing", "usage_price"): st.from_regex(r"[0-9]{1,7}(\.[0-9]{1,6})?", fullmatch=True),
    ("links", "homepage"): st.from_regex(r"https://[a-z]{1,10}\.example\.com(/[a-z]{0,8})?", fullmatch=True),
    ("ui_slots", 0, "slot"): st.just("order.sidebar"),
    ("ui_slots", 0, "entry"): st.just("ui/sidebar.html"),
    ("icon",): st.just("assets/icon.png"),
    ("hooks", 0, "event"): st.just("order.created"),
}


@fast(100)
@given(st.data())
def test_a_trailing_newline_never_fits_a_pattern(data):
    where = data.draw(st.sampled_from(sorted(ANCHORED)), label="where")
    value = data.draw(ANCHORED[where], label="value")
    doc = put(copy.deepcopy(RICH_MANIFEST), where, value)
    assert not [e for e in check(doc) if under(e.path, json_path(where))]  # the value itself fits
    errors = check(put(doc, where, value + "\n"))
    assert any(under(e.path, json_path(where)) for e in errors), (where, value + "\n", errors)


# --- 3. every error, not just the first -------------------------------------------------------------------
def _append_scope(doc, value):
    doc["scopes"].append(value)


# Independent faults: each leaves the others' fields alone and is reported under its own prefix only.
FAULTS = {
    "version": ("$.version", lambda d, v: d.update(version=v), st.sampled_from(["1.0", "v1.0.0", "01.0.0", "1.0.0+b"])),
    "name": ("$.name", lambda d, v: d.update(name=v), st.sampled_from(["", "x" * 61, 7, None])),
    "summary": ("$.summary", lambda d, v: d.update(summary=v), st.sampled_from(["", "y" * 141, ["s"]])),
    "manifest_version": ("$.manifest_version", lambda d, v: d.update(manifest_version=v), st.sampled_from([0, 2, "1"])),
    "extra": ("$.colour", lambda d, v: d.update(colour=v), json_values),
    "icon": ("$.icon", lambda d, v: d.update(icon=v), st.sampled_from(["icon.gif", "assets/missing.png", "/abs.png"])),
    "links": ("$.links", lambda d, v: d["links"].update(homepage=v), st.sampled_from(["http://x.example", "ftp://a"])),
    "module": (
        "$.modules.main",
        lambda d, v: d["modules"].update(main=v),
        st.sampled_from(["modules/missing.wasm", "main.js", "../main.wasm"]),
    ),
    "hook_event": (
        "$.hooks[0].event",
        lambda d, v: d["hooks"][0].update(event=v),
        st.sampled_from(["Order Created", "order", "order.fulfilled", 3]),
    ),
    "ui_height": (
        "$.ui_slots[0].height",
        lambda d, v: d["ui_slots"][0].update(height=v),
        st.sampled_from([5, 1e9, "x"]),
    ),
    "config_schema": ("$.config_schema", lambda d, v: d.update(config_schema=v), refused_schemas),
    "input_schema": (
        "$.tool_packs[0].tools[0].input_schema",
        lambda d, v: d["tool_packs"][0]["tools"][0].update(input_schema=v),
        refused_schemas,
    ),
    "currency": ("$.pricing.currency", lambda d, v: d["pricing"].update(currency=v), st.sampled_from(["eur", "EURO"])),
    "scope": (f"$.scopes[{len(RICH_MANIFEST['scopes'])}]", _append_scope, st.sampled_from(["kv:admin", "api:x:y"])),
}


@fast(200)
@given(st.data())
def test_every_fault_is_reported_at_its_own_path(data):
    chosen = data.draw(st.lists(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=4, unique=True))
    doc = copy.deepcopy(RICH_MANIFEST)
    for name in chosen:
        _, apply, values = FAULTS[name]
        apply(doc, data.draw(values, label=name))
    errors = check(doc)
    prefixes = [FAULTS[name][0] for name in chosen]
    assert len(errors) >= len(chosen), errors
    for prefix in prefixes:
        assert any(under(e.path, prefix) for e in errors), (prefix, errors)
    for error in errors:  # and nothing else is blamed
        assert any(under(error.path, prefix) for prefix in prefixes), (error, prefixes)


# --- 4. scopes -----------------------------------------------------------------------------------------------
@FAST
@given(scope_like_text)
def test_parse_accepts_or_raises_unknown_scope_only(text):
    try:
        scope = scopes.parse(text)
    except scopes.UnknownScope as exc:
        assert str(exc)
        return
    assert scope.name == text
    assert scope.describe() and scope.reaches() and scope.resource and scope.level in (1, 2)


scope_sets = st.lists(valid_scopes, max_size=8)


@FAST
@given(scope_sets, scope_sets)
def test_diff_classifies_every_change(old, new):
    changes = scopes.diff(old, new)
    assert scopes.diff(old, old) == [] and scopes.diff(new, new) == []
    assert changes == sorted(changes, key=lambda c: (c.scope, c.change))
    parsed_old = {s.name: s for s in map(scopes.parse, old)}
    parsed_new = {s.name: s for s in map(scopes.parse, new)}
    by_scope = {c.scope: c for c in changes}
    assert len(by_scope) == len(changes), changes
    for name, scope in parsed_new.items():
        if name in parsed_old:
            assert name not in by_scope, changes
            continue
        same_resource = [o for o in parsed_old.values() if o.resource == scope.resource]
        if any(o.level >= scope.level for o in same_resource):  # a weaker form of an old scope: no new power
            assert name not in by_scope, (name, changes)
        elif same_resource:
            change = by_scope[name]
            assert change.change == "escalation" and change.replaces in parsed_old, change
            assert parsed_old[change.replaces].resource == scope.resource
        else:
            assert by_scope[name].change == "added", changes
    superseded = {c.replaces for c in changes if c.change == "escalation"}
    for name in parsed_old:
        if name not in parsed_new and name not in superseded:
            assert by_scope[name].change == "removed", (name, changes)
    assert scopes.needs_consent(changes) == any(c.change in ("added", "escalation") for c in changes)


@FAST
@given(st.lists(scope_like_text, max_size=5), scope_sets)
def test_diff_on_unparsable_input_raises_unknown_scope_only(old, new):
    try:
        scopes.diff(old, new)
        scopes.diff(new, old)
    except scopes.UnknownScope:
        pass


# --- the API -------------------------------------------------------------------------------------------------
ENVELOPE_KEYS = {"type", "code", "message", "param", "request_id"}


def _shown(res, sent) -> str:
    # (this Hypothesis prints a failing example's arguments blank, so every assertion names what was sent)
    return f"{res.status_code} for {ascii(sent)[:600]}: {res.content[:1500]!r}"


def assert_refusal(res, sent=None) -> dict:
    """A 400 or 409 in the error envelope; manifest problems itemised with their path, rule and message."""
    assert res.status_code in (400, 409), _shown(res, sent)
    error = assert_error(res, res.status_code)
    assert ENVELOPE_KEYS <= set(error) <= ENVELOPE_KEYS | {"details"}, error
    if error["code"] == "manifest_invalid":
        assert error["details"], error
        for item in error["details"]:
            assert {"path", "rule", "message"} <= set(item), item
            assert item["path"].startswith("$") and item["rule"] and item["message"], item
    return error


def assert_accepted_or_refused(res, sent=None) -> None:
    assert res.status_code in (201, 400, 409), _shown(res, sent)
    if res.status_code == 201:
        event("201")
    else:
        event(f"{res.status_code} {assert_refusal(res, sent)['code']}")


def manifest_package(doc) -> bytes:
    """``doc`` as extension.json, whatever it holds (lone surrogates escaped, NaN written as NaN)."""
    return build_package({**FILES, "extension.json": dumps(doc).encode()})


RICH_PACKAGE = manifest_package(RICH_MANIFEST)


@pytest.mark.django_db
def test_the_rich_package_uploads(publisher):
    res = publisher.upload(data=RICH_PACKAGE)
    assert res.status_code == 201, res.content


# --- 5. mutated manifests, packaged and signed -----------------------------------------------------------------
@pytest.mark.django_db
@db_settings(40)
@given(doc=mutated_manifests(max_mutations=2, fresh_version=True), channel=st.sampled_from(["stable", "beta"]))
def test_uploading_a_mutated_manifest_is_accepted_or_refused(publisher, doc, channel):
    res = publisher.upload(data=manifest_package(doc), channel=channel)
    assert_accepted_or_refused(res, doc)


FREE_TEXT = [
    ("name",),
    ("summary",),
    ("description",),
    ("$schema",),
    ("platform", "api"),
    ("ui_slots", 0, "title"),
    ("tool_packs", 0, "description"),
    ("tool_packs", 0, "tools", 0, "description"),
    ("pricing", "usage_unit"),
    ("config_schema", "properties", "api_key", "description"),
]
VERSIONS = itertools.count(2)  # every upload a new, higher number, so that each one reaches the database


free_texts = st.dictionaries(st.sampled_from(FREE_TEXT), st.one_of(short_wild_text, range_text), min_size=1, max_size=3)


@pytest.mark.django_db
@db_settings(60)
@given(texts=free_texts)
@example(texts={("name",): "\ud800"})  # a lone surrogate, as JSON spells it: "\\ud800"
@example(texts={("summary",): "a\x00b"})
@example(texts={("platform", "api"): "^1 - 2"})
def test_uploading_any_text_in_free_text_fields_is_accepted_or_refused(publisher, texts):
    doc = copy.deepcopy(RICH_MANIFEST)
    for where, text in texts.items():
        put(doc, where, text)
    doc["version"] = f"2.0.{next(VERSIONS)}"
    assert_accepted_or_refused(publisher.upload(data=manifest_package(doc)), texts)


@pytest.mark.django_db
@db_settings(20)
@given(
    depth=st.integers(1, 1500),
    where=st.sampled_from(["config_schema", "input_schema", "default"]),
    kind=st.sampled_from(["list", "dict"]),
)
def test_uploading_deeply_nested_but_valid_json_is_accepted_or_refused(publisher, depth, where, kind):
    """JSON Schema keywords a validator does not know may hold anything, at any depth."""
    doc = copy.deepcopy(RICH_MANIFEST)
    doc["version"] = f"3.0.{next(VERSIONS)}"
    deep = nest(1, depth, kind)
    if where == "config_schema":
        doc["config_schema"]["x-deep"] = deep
    elif where == "input_schema":
        doc["tool_packs"][0]["tools"][0]["input_schema"]["x-deep"] = deep
    else:
        doc["config_schema"]["properties"]["threshold"]["default"] = deep
    res = publisher.upload(data=manifest_package(doc), channel="beta")
    assert_accepted_or_refused(res, (where, kind, depth))


# --- 6. mutated package bytes and random form fields --------------------------------------------------------------
byte_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("duplicate"), st.integers(0, 10**6), st.integers(1, 400)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
)


def mutate_bytes(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, position, value in mutations:
        if not out:
            break
        at = position % len(out)
        if kind == "flip":
            out[at] ^= value
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = value
        elif kind == "duplicate":
            out[at:at] = out[at : at + value]
        else:
            del out[at : at + value]
    return bytes(out)


@pytest.mark.django_db
@db_settings(40)
@given(mutations=st.lists(byte_mutation, min_size=1, max_size=5))
def test_uploading_mutated_package_bytes_is_accepted_or_refused(publisher, mutations):
    res = publisher.upload(data=mutate_bytes(RICH_PACKAGE, mutations))
    assert_accepted_or_refused(res, mutations)


@pytest.mark.django_db
@db_settings(25)
@given(data=st.one_of(st.binary(max_size=4096), st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b)))
def test_uploading_random_bytes_is_refused(publisher, data):
    event(assert_refusal(publisher.upload(data=data), data)["code"])


hostile_names = st.one_of(
    st.sampled_from(
        [
            "../evil.wasm",
            "/abs.wasm",
            "a\\b",
            "C:x",
            "a//b",
            "./x",
            "dir/",
            "modules/",
            "modules/MAIN.wasm",
            "modules/main.wasm/x",
            "EXTENSION.JSON",
            "sub/extension.json",
            "e\u0301.txt",
            "\u00e9.txt",
            "x" * 300,
            "sbom.cdx.json",
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30),
)


@pytest.mark.django_db
@db_settings(40)
@given(
    extra=st.dictionaries(hostile_names, st.binary(max_size=64), max_size=4),
    drop=st.sets(st.sampled_from(sorted(FILES))),
    doc=st.one_of(st.just(RICH_MANIFEST), mutated_manifests(max_mutations=1)),
    sbom=st.one_of(st.none(), st.just({"bomFormat": "CycloneDX", "specVersion": "1.6"}), json_values),
)
def test_uploading_random_package_contents_is_accepted_or_refused(publisher, extra, drop, doc, sbom):
    files = {name: content for name, content in FILES.items() if name not in drop}
    files.update(extra)
    files["extension.json"] = dumps(doc).encode()
    if sbom is not None:
        files["sbom.cdx.json"] = dumps(sbom).encode()
    assert_accepted_or_refused(publisher.upload(data=build_package(files)), files)


form_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=250)


@pytest.mark.django_db
@db_settings(40)
@given(
    field=st.sampled_from(["signature", "key_id", "channel"]),
    value=st.one_of(form_text, st.sampled_from(["", " ", "\x00", "A" * 88, "=" * 88, "STABLE", "stable\n"])),
)
@example(field="key_id", value="0" * 41)
@example(field="channel", value="")
@example(field="signature", value="")
def test_random_signature_key_or_channel_is_refused(publisher, field, value):
    if field == "channel" and value in ("stable", "beta", "canary"):
        return
    data = manifest_package({**RICH_MANIFEST, "version": "2.0.0"})
    if field == "signature" and value.strip() == sign_package(publisher.private, hashlib.sha256(data).hexdigest()):
        return
    res = publisher.upload(data=data, **{field: value})
    error = assert_refusal(res, {field: value})
    event(f"{field}: {error['code']}")
    assert error["param"] == field, (field, value, error)  # the refusal names the field that is wrong


# --- 7. POST /manifests/validate with random bodies ----------------------------------------------------------------
def post_validate(publisher, body: bytes):
    return publisher.api.post(
        "/api/v1/manifests/validate",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {publisher.api.token}",
    )


def assert_validation_answer(res, sent=None) -> None:
    assert res.status_code in (200, 400), _shown(res, sent)
    if res.status_code == 400:
        event(f"400 {assert_refusal(res, sent)['code']}")
        return
    body = res.json()
    event(f"200 valid={body['valid']}")
    assert set(body) == {"valid", "errors"}, body
    assert body["valid"] is (body["errors"] == []), body
    for item in body["errors"]:
        assert set(item) == {"path", "rule", "message"}, item
        assert item["path"].startswith("$") and item["rule"] and item["message"], item


validate_bodies = st.one_of(
    any_json.map(lambda v: dumps(v).encode()),
    mutated_manifests().map(lambda v: dumps(v).encode()),
    st.builds(lambda n, open_, close: (open_ * n + close * n).encode(), st.integers(1, 20000), *map(st.just, "[]")),
    st.builds(lambda n: ('{"a":' * n + "1" + "}" * n).encode(), st.integers(1, 20000)),
    st.binary(max_size=200),
)


@pytest.mark.django_db
@db_settings(60)
@given(body=validate_bodies)
def test_validate_endpoint_answers_every_body(publisher, body):
    res = post_validate(publisher, body)
    assert_validation_answer(res, body)
    if res.status_code == 200:  # and it reports exactly what the validator does
        expected = validate_manifest(json.loads(body), known_event_types=EVENT_TYPES)
        assert res.json()["errors"] == [e.as_dict() for e in expected], body[:600]


@pytest.mark.django_db
@db_settings(60)
@given(texts=free_texts)
@example(texts={("platform", "api"): "^1 - 2"})
def test_validate_endpoint_answers_any_text_in_free_text_fields(publisher, texts):
    doc = copy.deepcopy(RICH_MANIFEST)
    for where, text in texts.items():
        put(doc, where, text)
    assert_validation_answer(post_validate(publisher, dumps(doc).encode()), texts)


@pytest.mark.django_db
def test_validate_endpoint_agrees_with_the_validator(publisher):
    res = post_validate(publisher, json.dumps(RICH_MANIFEST).encode())
    assert res.status_code == 200 and res.json() == {"valid": True, "errors": []}, res.content
