"""Extension manifest v1 (``extension.json``): the published JSON Schema and the full validator.

Validation runs in two passes and reports **every** problem at once, each with the JSON path and
the rule it breaks: first the JSON Schema (shapes, patterns, sizes), then the semantic rules a
schema cannot express (a hook needs its event scope, a module named by a hook must exist, nested
config and tool schemas must themselves be valid JSON Schemas, files must be in the package …).
docs/manifest.md documents every field; the schema is served at /schemas/extension.v1.json.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import semantic_version
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apps.core.schema_refs import external_refs, json_path
from apps.extensions import scopes as scope_vocab

SCHEMA_ID = "/schemas/extension.v1.json"
DRAFT_2020_12_HASH = "https://json-schema.org/draft/2020-12/schema#"
EXTENSION_ID = r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
IDENTIFIER = r"^[a-z_][a-z0-9_]{0,63}$"  # export and tool names: what a C/Zig/AssemblyScript symbol can be
PACKAGE_PATH = r"^(?!/)(?!.*(?:^|/)\.\.?(?:/|$))[A-Za-z0-9._/-]{1,200}$"
HTTPS_URL = r"^https://[^\s/?#]+(?:[/?#]\S*)?$"
SEMVER_RE = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$"
)

_text = {"type": "string", "minLength": 1}
_json_schema_object = {"type": "object", "description": "A JSON Schema (draft 2020-12)."}

MANIFEST_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Plaza extension manifest v1",
    "type": "object",
    "additionalProperties": False,
    "required": ["manifest_version", "id", "version", "name", "summary", "platform", "scopes"],
    "properties": {
        "$schema": {"type": "string"},
        "manifest_version": {"const": 1},
        "id": {
            "type": "string",
            "pattern": EXTENSION_ID,
            "description": "publisher.name, lowercase; immutable and never reusable.",
        },
        "version": {"type": "string", "maxLength": 64, "pattern": SEMVER_RE, "description": "Semantic version."},
        "name": {**_text, "maxLength": 60},
        "summary": {**_text, "maxLength": 140},
        "description": {"type": "string", "maxLength": 10000, "description": "Markdown."},
        "icon": {
            "type": "string",
            "pattern": PACKAGE_PATH + r"(?<=\.png|\.svg)",
            "description": "Path of a PNG or SVG in the package.",
        },
        "links": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: {"type": "string", "pattern": HTTPS_URL, "maxLength": 500}
                for k in ("homepage", "documentation", "support", "privacy_policy", "terms")
            },
        },
        "platform": {
            "type": "object",
            "additionalProperties": False,
            "required": ["api"],
            "properties": {
                "api": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 100,
                    "description": "npm-style semver range of Plaza API versions, e.g. '^1.0'.",
                }
            },
        },
        "scopes": {
            "type": "array",
            "maxItems": 100,
            "uniqueItems": True,
            "items": {"type": "string", "maxLength": 300},
        },
        "modules": {
            "type": "object",
            "maxProperties": 8,
            "propertyNames": {"pattern": IDENTIFIER},
            "additionalProperties": {"type": "string", "pattern": PACKAGE_PATH + r"(?<=\.wasm)"},
            "description": "Module name -> path of a .wasm file in the package.",
        },
        "hooks": {
            "type": "array",
            "maxItems": 100,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["event"],
                "properties": {
                    "event": {"type": "string", "pattern": f"^{scope_vocab.DOTTED_NAME}$", "maxLength": 200},
                    "module": {"type": "string", "pattern": IDENTIFIER},
                    "export": {"type": "string", "pattern": IDENTIFIER},
                    "url": {"type": "string", "pattern": HTTPS_URL, "maxLength": 2000},
                },
                "oneOf": [
                    {"required": ["module", "export"], "not": {"required": ["url"]}},
                    {"required": ["url"], "not": {"anyOf": [{"required": ["module"]}, {"required": ["export"]}]}},
                ],
            },
        },
        "ui_slots": {
            "type": "array",
            "maxItems": 20,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["slot", "entry", "title"],
                "properties": {
                    "slot": {"type": "string", "pattern": f"^{scope_vocab.SLOT_NAME}$", "maxLength": 100},
                    "entry": {"type": "string", "pattern": PACKAGE_PATH + r"(?<=\.html)"},
                    "title": {**_text, "maxLength": 60},
                    "height": {"type": "integer", "minimum": 40, "maximum": 2000},
                    "permissions": {
                        "type": "array",
                        "uniqueItems": True,
                        "items": {"enum": ["popups", "clipboard-write", "fullscreen"]},
                    },
                    "connect_src": {
                        "type": "array",
                        "maxItems": 20,
                        "uniqueItems": True,
                        "items": {"type": "string", "pattern": r"^https://[a-z0-9.-]+(?::\d{1,5})?$"},
                    },
                    "script_hashes": {
                        "type": "array",
                        "maxItems": 50,
                        "uniqueItems": True,
                        "items": {"type": "string", "pattern": r"^sha256-[A-Za-z0-9+/]{43}=$"},
                        "description": "CSP hashes of the entry's inline scripts: sha256-<base64 of SHA-256>.",
                    },
                },
            },
        },
        "config_schema": {
            **_json_schema_object,
            "description": (
                "JSON Schema (type object) of the settings form; its top-level writeOnly properties are secrets."
            ),
        },
        "tool_packs": {
            "type": "array",
            "maxItems": 10,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "description", "tools"],
                "properties": {
                    "name": {"type": "string", "pattern": IDENTIFIER},
                    "description": {**_text, "maxLength": 500},
                    "tools": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 50,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "description", "module", "export", "input_schema"],
                            "properties": {
                                "name": {"type": "string", "pattern": IDENTIFIER},
                                "description": {**_text, "maxLength": 1000},
                                "module": {"type": "string", "pattern": IDENTIFIER},
                                "export": {"type": "string", "pattern": IDENTIFIER},
                                "input_schema": _json_schema_object,
                                "output_schema": _json_schema_object,
                            },
                        },
                    },
                },
            },
        },
        "pricing": {
            "type": "object",
            "additionalProperties": False,
            "required": ["model"],
            "properties": {
                "model": {"enum": ["free", "paid", "freemium", "trial", "usage", "tiered"]},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "monthly_price": {"type": "string", "pattern": r"^\d{1,7}(\.\d{1,2})?$"},
                "trial_days": {"type": "integer", "minimum": 1, "maximum": 90},
                "usage_unit": {**_text, "maxLength": 40},
                "usage_price": {"type": "string", "pattern": r"^\d{1,7}(\.\d{1,6})?$"},
            },
        },
    },
}

# What each patterned field must look like, in words (keyed by the field's name).
_PATTERN_HINTS = {
    "id": "publisher.name in lowercase letters, digits and hyphens, e.g. acme.order-tagger",
    "version": "a semantic version such as 1.2.0 or 1.3.0-beta.1 (no build metadata)",
    "event": "an event type such as order.created",
    "slot": "a slot name such as order.sidebar",
    "module": "an identifier such as main (lowercase letters, digits, underscores)",
    "export": "an export name such as on_order_created (lowercase letters, digits, underscores)",
    "name": "an identifier such as tag_order (lowercase letters, digits, underscores)",
    "url": "an https:// URL",
    "entry": "a path inside the package ending in .html",
    "icon": "a path inside the package ending in .png or .svg",
    "currency": "an ISO 4217 code such as EUR",
}


def _anchor_ends(node):
    """In Python's ``re`` (which jsonschema uses) ``$`` also matches before a final newline, so
    "1.0.0\n" would pass; ``$(?!\n)`` means the same in ECMA-262 and the true end in Python."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                node[key] = re.sub(r"\$(?=$|\(\?<=)", lambda _: r"$(?!\n)", value)
            else:
                _anchor_ends(value)
    elif isinstance(node, list):
        for value in node:
            _anchor_ends(value)


_anchor_ends(MANIFEST_SCHEMA)
_VALIDATOR = Draft202012Validator(MANIFEST_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass(frozen=True)
class ManifestError:
    path: str  # JSON path of the offending value, e.g. "$.hooks[0].event"
    rule: str  # the JSON Schema keyword or semantic rule broken
    message: str

    def as_dict(self) -> dict:
        return {"path": self.path, "rule": self.rule, "message": self.message}


def _join(path: str, key) -> str:
    return json_path([key], root=path)


def _schema_errors(manifest) -> list[ManifestError]:
    errors = []
    for error in _VALIDATOR.iter_errors(manifest):
        path = json_path(error.absolute_path)
        message = error.message
        if error.validator == "required":
            missing = [p for p in error.validator_value if isinstance(error.instance, dict) and p not in error.instance]
            for name in missing:
                errors.append(ManifestError(_join(path, name), "required", f"'{name}' is required."))
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for name in sorted(k for k in error.instance if k not in allowed):
                errors.append(ManifestError(_join(path, name), "additionalProperties", f"'{name}' is not a field."))
            continue
        if error.validator == "oneOf" and path.startswith("$.hooks") and isinstance(error.instance, dict):
            message = _hook_shape_message(error.instance)
        elif error.validator == "pattern":
            hint = _PATTERN_HINTS.get(str(error.absolute_path[-1]) if error.absolute_path else "", "")
            message = f"{error.instance!r} does not have the required form{': ' + hint if hint else ''}."
        errors.append(ManifestError(path, str(error.validator), message[:500]))
    return errors


def parse_version(text: str) -> semantic_version.Version:
    """A strict semantic version (build metadata refused: it does not order versions)."""
    if not isinstance(text, str) or "+" in text or len(text) > 64:
        raise ValueError("Not a semantic version without build metadata (e.g. 1.2.0 or 1.3.0-beta.1).")
    return semantic_version.Version(text)


def parse_range(text: str) -> semantic_version.NpmSpec:
    return semantic_version.NpmSpec(text)


def _hook_shape_message(hook: dict) -> str:
    has = {k for k in ("module", "export", "url") if k in hook}
    if "url" in has and has & {"module", "export"}:
        return "A hook runs either in the sandbox (module and export) or as a webhook (url), not both."
    if has & {"module", "export"}:
        missing = ({"module", "export"} - has).pop()
        return f"A sandbox hook needs both 'module' and 'export'; '{missing}' is missing."
    return "A hook needs either 'module' and 'export' (sandbox) or 'url' (webhook)."


_PRICING_NEEDS = {
    "paid": ("currency", "monthly_price"),
    "freemium": ("currency", "monthly_price"),
    "trial": ("currency", "monthly_price", "trial_days"),
    "usage": ("currency", "usage_unit", "usage_price"),
    "tiered": ("currency", "monthly_price"),
}


def _pricing_errors(pricing) -> list[ManifestError]:
    if not isinstance(pricing, dict) or not isinstance(pricing.get("model"), str):
        return []
    model = pricing["model"]
    missing = [f for f in _PRICING_NEEDS.get(model, ()) if f not in pricing]
    errors = [ManifestError(f"$.pricing.{f}", "pricing_incomplete", f"A '{model}' price needs '{f}'.") for f in missing]
    if model == "free" and set(pricing) - {"model"}:
        errors.append(ManifestError("$.pricing", "pricing_inconsistent", "A free extension has no prices."))
    return errors


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _semantic_errors(
    m: dict, *, files: set[str] | None, supported_api_versions: list[str], known_event_types: set[str] | None
) -> list[ManifestError]:
    errors: list[ManifestError] = []

    def err(path: str, rule: str, message: str) -> None:
        errors.append(ManifestError(path, rule, message))

    api_range = m.get("platform", {}).get("api") if isinstance(m.get("platform"), dict) else None
    if isinstance(api_range, str):
        try:
            spec = parse_range(api_range)
        except (ValueError, AttributeError, TypeError):  # semantic_version raises AttributeError on some inputs
            err("$.platform.api", "semver_range", f"{api_range!r} is not a semver range (try '^1.0').")
        else:
            if not any(spec.match(semantic_version.Version(v)) for v in supported_api_versions):
                err(
                    "$.platform.api",
                    "platform_unsupported",
                    f"{api_range!r} matches none of the API versions Plaza serves "
                    f"({', '.join(supported_api_versions)}).",
                )

    granted: set[str] = set()
    for i, name in enumerate(_list(m.get("scopes"))):
        if not isinstance(name, str):
            continue
        try:
            granted.add(scope_vocab.parse(name).name)
        except scope_vocab.UnknownScope as exc:
            err(f"$.scopes[{i}]", "scope_unknown", str(exc))
            continue
        if name.startswith("events:read:") and known_event_types is not None:
            event = name.split(":", 2)[2]
            if event not in known_event_types:
                err(f"$.scopes[{i}]", "event_type_unknown", f"There is no event type '{event}' in the catalog.")

    modules = m.get("modules") if isinstance(m.get("modules"), dict) else {}

    def check_module(path: str, module) -> None:
        if isinstance(module, str) and module not in modules:
            err(path, "module_undeclared", f"Module '{module}' is not declared in 'modules'.")

    def check_file(path: str, file) -> None:
        if files is not None and isinstance(file, str) and file not in files:
            err(path, "file_missing", f"The package has no file '{file}'.")

    for name, file in modules.items():
        check_file(_join("$.modules", name), file)
    check_file("$.icon", m.get("icon"))

    for i, hook in enumerate(_list(m.get("hooks"))):
        if not isinstance(hook, dict):
            continue
        event = hook.get("event")
        if isinstance(event, str) and f"events:read:{event}" not in granted:
            err(f"$.hooks[{i}].event", "scope_missing", f"A hook on '{event}' needs the scope 'events:read:{event}'.")
        check_module(f"$.hooks[{i}].module", hook.get("module"))

    seen_slots: set[str] = set()
    for i, widget in enumerate(_list(m.get("ui_slots"))):
        if not isinstance(widget, dict):
            continue
        slot = widget.get("slot")
        if isinstance(slot, str):
            if f"ui:slot:{slot}" not in granted:
                err(f"$.ui_slots[{i}].slot", "scope_missing", f"A widget in '{slot}' needs the scope 'ui:slot:{slot}'.")
            if slot in seen_slots:
                err(f"$.ui_slots[{i}].slot", "duplicate", f"Slot '{slot}' has more than one widget.")
            seen_slots.add(slot)
        check_file(f"$.ui_slots[{i}].entry", widget.get("entry"))
        for j, origin in enumerate(_list(widget.get("connect_src"))):
            host = origin.split("://", 1)[-1].split(":", 1)[0] if isinstance(origin, str) else ""
            if host and f"http:fetch:{host}" not in granted:
                err(
                    f"$.ui_slots[{i}].connect_src[{j}]",
                    "scope_missing",
                    f"A widget connecting to {origin} needs the scope 'http:fetch:{host}', so admins consent to it.",
                )

    config = m.get("config_schema")
    if isinstance(config, dict):
        errors.extend(_nested_schema_errors("$.config_schema", config))
        if config.get("type") != "object":
            err("$.config_schema.type", "config_type", "The config schema must describe an object ('type': 'object').")
        for where in _misplaced_write_only(config):
            err(
                where,
                "config_secret_nested",
                "Only a top-level property of the config schema may be 'writeOnly' (a secret, stored "
                "encrypted and never shown again); move it to the top level.",
            )

    errors.extend(_pricing_errors(m.get("pricing")))
    tool_names: set[str] = set()
    pack_names: set[str] = set()
    packs = _list(m.get("tool_packs"))
    if packs and "agent:tools" not in granted:
        err("$.tool_packs", "scope_missing", "Tool packs need the scope 'agent:tools'.")
    for p, pack in enumerate(packs):
        if not isinstance(pack, dict):
            continue
        if isinstance(pack.get("name"), str):
            if pack["name"] in pack_names:
                err(f"$.tool_packs[{p}].name", "duplicate", f"Tool pack name '{pack['name']}' is used twice.")
            pack_names.add(pack["name"])
        for t, tool in enumerate(_list(pack.get("tools"))):
            if not isinstance(tool, dict):
                continue
            path = f"$.tool_packs[{p}].tools[{t}]"
            name = tool.get("name")
            if isinstance(name, str):
                if name in tool_names:
                    err(f"{path}.name", "duplicate", f"Tool name '{name}' is used twice.")
                tool_names.add(name)
            check_module(f"{path}.module", tool.get("module"))
            for key in ("input_schema", "output_schema"):
                if isinstance(tool.get(key), dict):
                    errors.extend(_nested_schema_errors(f"{path}.{key}", tool[key]))
    return errors


# Keywords whose value is a schema, a list of schemas, or a map of names to schemas (draft 2020-12).
_SUBSCHEMA = ("additionalProperties", "items", "contains", "not", "if", "then", "else", "propertyNames",
              "unevaluatedItems", "unevaluatedProperties", "contentSchema")  # fmt: skip
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")


def _misplaced_write_only(config: dict, limit: int = 20) -> list[str]:
    """Paths of ``"writeOnly": true`` anywhere in the config schema but directly on a top-level
    property: only those are kept apart as secrets (apps.installs.config), so one anywhere else
    would be stored, shown and audited like any other value."""
    found: list[str] = []
    stack: list[tuple[str, object, bool]] = [("$.config_schema", config, False)]
    seen = 0
    while stack and len(found) < limit and seen < 10_000:
        path, node, top_property = stack.pop()
        seen += 1
        if not isinstance(node, dict):
            continue
        if node.get("writeOnly") is True and not top_property:
            found.append(_join(path, "writeOnly"))
        for key in _SUBSCHEMA:
            if key in node:
                stack.append((_join(path, key), node[key], False))
        for key in _SUBSCHEMA_LISTS:
            for i, sub in enumerate(_list(node.get(key))):
                stack.append((f"{_join(path, key)}[{i}]", sub, False))
        for key in _SUBSCHEMA_MAPS:
            subs = node.get(key)
            if isinstance(subs, dict):
                top = key == "properties" and path == "$.config_schema"
                for name, sub in subs.items():
                    stack.append((_join(_join(path, key), name), sub, top))
    return sorted(found)


def _nested_schema_errors(path: str, schema: dict) -> list[ManifestError]:
    dialect = schema.get("$schema")
    if dialect is not None and dialect not in ("https://json-schema.org/draft/2020-12/schema", DRAFT_2020_12_HASH):
        return [
            ManifestError(f"{path}.$schema", "json_schema_dialect", "Nested schemas are JSON Schema draft 2020-12.")
        ]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [
            ManifestError(
                json_path(exc.absolute_path, root=path), "json_schema", f"Not a valid JSON Schema: {exc.message[:300]}"
            )
        ]
    except (RecursionError, ValueError, TypeError) as exc:
        return [ManifestError(path, "json_schema", f"Not a valid JSON Schema: {exc}"[:300])]
    refs = external_refs(schema)
    if not refs:
        return []
    shown = ", ".join(repr(r) for r in refs[:5])
    return [ManifestError(path, "json_schema_ref", f"Only local '$ref's (#/…) are allowed; found {shown}.")]


def _text_errors(node, path: str = "$", depth: int = 0) -> list[ManifestError]:
    """NUL and lone surrogates anywhere (keys or values): databases refuse to store them."""
    if depth > 200:
        return []
    found: list[ManifestError] = []
    if isinstance(node, str):
        if "\x00" in node or any("\ud800" <= ch <= "\udfff" for ch in node):
            found.append(ManifestError(path, "text_invalid", "Text may not hold NUL characters or lone surrogates."))
    elif isinstance(node, dict):
        for key, value in node.items():
            child = json_path([key], root=path)
            found += _text_errors(key, child, depth + 1) + _text_errors(value, child, depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _text_errors(value, f"{path}[{i}]", depth + 1)
    return found


def validate_manifest(
    manifest,
    *,
    files: set[str] | None = None,
    supported_api_versions: list[str] | None = None,
    known_event_types: set[str] | None = None,
) -> list[ManifestError]:
    """Every problem with ``manifest`` ([] when valid).

    ``files``: the package's file paths, to check references (skipped when None);
    ``known_event_types``: the event catalog, to check event scopes (skipped when None)."""
    from django.conf import settings

    if not isinstance(manifest, dict):
        return [ManifestError("$", "type", "The manifest must be a JSON object.")]
    text_errors = _text_errors(manifest)[:50]
    try:
        errors = text_errors + _schema_errors(manifest)
    except RecursionError:
        return [ManifestError("$", "depth", "The manifest is nested too deeply.")]
    errors += _semantic_errors(
        manifest,
        files=files,
        supported_api_versions=supported_api_versions or settings.PLAZA_API_VERSIONS,
        known_event_types=known_event_types,
    )
    seen, unique = set(), []
    for error in errors:
        if (error.path, error.rule) not in seen:
            seen.add((error.path, error.rule))
            unique.append(error)
    return unique


def public_schema(base_url: str = "") -> dict:
    """The schema as served, with an absolute $id when the base URL is known."""
    return {**MANIFEST_SCHEMA, "$id": f"{base_url.rstrip('/')}{SCHEMA_ID}" if base_url else SCHEMA_ID}
