"""The compatibility gate: the committed snapshots under ``contracts/`` against what the code and the shipped
event catalog produce now. ``manage.py check_contracts`` runs it; the policy is in docs/compatibility.md.

REST API (N-1): a client written against ``contracts/openapi.json`` keeps working. What old clients send (parameters,
request bodies) must still be accepted: ``is_subschema(old, new)``; what the server sends now (2xx responses) must be
accepted by old clients: ``is_subschema(new, old)``. Event schemas: published versions never change, new versions
obey their type's compatibility mode, and the mode is never loosened.

Every finding is a ``Change``: ``breaking`` ones fail the gate, ``info`` ones (additions, compatible edits) only
need the snapshot to be updated so the PR shows them.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from apps.core import clock
from apps.events.catalog_sync import CATALOG_DIR, CatalogError, load_catalog
from apps.events.compat import Incompatibility, Mode, check_compatibility, is_subschema
from apps.events.services import fingerprint

SNAPSHOT_DIR = Path(settings.BASE_DIR) / "contracts"
OPENAPI_FILE = "openapi.json"
EVENTS_FILE = "events.json"
DEFAULT_MODE = "FULL_TRANSITIVE"  # what catalog_sync registers when a catalog file names no mode
BREAKING, INFO = "breaking", "info"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
UPDATE_COMMAND = "python manage.py check_contracts --update"
# Keywords that say nothing about which instances are valid: a change to them alone is not a contract change.
DOC_KEYWORDS = frozenset({"title", "description", "examples", "example", "$comment", "externalDocs", "xml"})
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
SCHEMA_ONE += ("unevaluatedProperties", "unevaluatedItems", "additionalItems")
# A mode's promises; loosening = dropping one of them.
GUARANTEES = {
    Mode.NONE: frozenset(),
    Mode.BACKWARD: frozenset({"backward"}),
    Mode.BACKWARD_TRANSITIVE: frozenset({"backward", "backward, every version"}),
    Mode.FORWARD: frozenset({"forward"}),
    Mode.FORWARD_TRANSITIVE: frozenset({"forward", "forward, every version"}),
    Mode.FULL: frozenset({"backward", "forward"}),
    Mode.FULL_TRANSITIVE: frozenset({"backward", "forward", "backward, every version", "forward, every version"}),
}
_FIELD_IN_MESSAGE = re.compile(r"(?:[Ff]ield|requires) '([^']*)'")


@dataclass(frozen=True)
class Change:
    area: str  # "api" or "events"
    severity: str  # BREAKING or INFO
    where: str  # "POST /api/v1/orgs request body", "order.created v2", ...
    rule: str  # stable machine code: compat.py's rules plus this module's (operation_removed, ...)
    message: str
    field: str = ""  # "$.name" when the change concerns one field of a payload
    pointer: str = ""  # JSON Pointer into the schema that rejects it (from compat.py), for tooling

    @property
    def breaking(self) -> bool:
        return self.severity == BREAKING

    def line(self) -> str:
        head, at = "BREAKING" if self.breaking else "info", f"{self.field}: " if self.field else ""
        return f"{head} {self.area}: {self.where}: {at}{self.message} (rule {self.rule})"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Report:
    changes: list[Change]
    snapshot_dir: Path
    documents: dict[str, dict | None]  # file name -> what --update writes (None: it could not be built)
    outdated: list[str] = field(default_factory=list)  # snapshot files that differ from ``documents`` or are missing

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def info(self) -> list[Change]:
        return [c for c in self.changes if not c.breaking]

    @property
    def status(self) -> str:
        return "breaking" if self.breaking else "outdated" if self.outdated else "ok"

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "ok" else 1

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "snapshot_dir": str(self.snapshot_dir),
            "outdated": self.outdated,
            "breaking": [c.as_dict() for c in self.breaking],
            "info": [c.as_dict() for c in self.info],
        }

    def text(self) -> str:
        where = _shown_dir(self.snapshot_dir)
        if self.status == "ok":
            api, events = self.documents.get(OPENAPI_FILE) or {}, self.documents.get(EVENTS_FILE) or {}
            return (
                f"contracts OK: the API ({len(_operations(api))} operations) and {len(events)} event types "
                f"match {where}/"
            )
        lines = []
        if self.breaking:
            n = len(self.breaking)
            lines.append(f"contracts FAILED: {n} breaking change{'s' if n != 1 else ''} against {where}/")
        else:
            lines.append(
                f"contracts FAILED: no breaking change, but {where}/ is out of date ({', '.join(self.outdated)})"
            )
        api_breaks = [c for c in self.breaking if c.area == "api"]
        if api_breaks:
            lines += ["", "== REST API: breaking changes"]
            lines.append(
                "   (requests: producer = what clients send per the snapshot, reader = the API now; "
                "responses: producer = the API now, reader = clients per the snapshot)"
            )
            lines += [c.line() for c in api_breaks]
        event_breaks = [c for c in self.breaking if c.area == "events"]
        if event_breaks:
            lines += ["", "== Event schemas: breaking changes"]
            lines += [c.line() for c in event_breaks]
        if self.info:
            lines += ["", "== Not breaking (info)"]
            lines += [c.line() for c in self.info]
        if missing := [name for name in self.outdated if not (self.snapshot_dir / name).exists()]:
            lines += ["", f"No snapshot yet: {', '.join(f'{where}/{name}' for name in missing)}."]
        lines.append("")
        if self.breaking:
            lines.append(
                "Fix the code so existing clients and consumers keep working. If the break is intended and approved "
                "under the N-1 policy (docs/compatibility.md), record it with"
            )
            lines.append(f"  {UPDATE_COMMAND} --allow-breaking")
        else:
            lines.append("Record the changes (and review the diff of contracts/ in the PR):")
            lines.append(f"  {UPDATE_COMMAND}")
        return "\n".join(lines)


class ContractsError(Exception):
    pass


# --- the documents ----------------------------------------------------------------------------------------------


def render(document: dict) -> str:
    """The snapshot text: pretty-printed with sorted keys, so a change is a reviewable diff."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def openapi_document() -> dict:
    """The API's OpenAPI document as plain JSON, generated from the code (no database, no request)."""
    from config.api import api

    return json.loads(render(api.get_openapi_schema()))


def events_document(catalog_dir: Path | str | None = None) -> dict:
    """{name: {compatibility, versions: {"1": {fingerprint, schema}}}} for every type of the shipped catalog."""
    out = {}
    for doc in load_catalog(Path(catalog_dir or CATALOG_DIR)):
        versions = {
            str(v["version"]): {"fingerprint": fingerprint(v["schema"]), "schema": v["schema"]} for v in doc["versions"]
        }
        out[doc["name"]] = {"compatibility": doc.get("compatibility", DEFAULT_MODE), "versions": versions}
    return json.loads(render(out))


def check(
    snapshot_dir: Path | str | None = None,
    catalog_dir: Path | str | None = None,
    *,
    today: dt.date | None = None,
    openapi: dict | None = None,
) -> Report:
    """Compare the current API document (or ``openapi``) and catalog with the snapshots in ``snapshot_dir``."""
    snapshot_dir = Path(snapshot_dir or SNAPSHOT_DIR)
    changes: list[Change] = []
    documents: dict[str, dict | None] = {OPENAPI_FILE: openapi if openapi is not None else openapi_document()}
    try:
        documents[EVENTS_FILE] = events_document(catalog_dir)
    except CatalogError as exc:
        documents[EVENTS_FILE] = None
        changes.append(Change("events", BREAKING, "catalog", "catalog_invalid", str(exc)))
    outdated = []
    for name in (OPENAPI_FILE, EVENTS_FILE):
        path, current = snapshot_dir / name, documents[name]
        if not path.exists():
            outdated.append(name)
            continue
        text = path.read_text(encoding="utf-8")
        if current is None or text != render(current):
            outdated.append(name)
        try:
            snapshot = json.loads(text)
        except json.JSONDecodeError as exc:
            changes.append(
                Change(_area(name), BREAKING, f"{_shown_dir(snapshot_dir)}/{name}", "snapshot_invalid", str(exc))
            )
            continue
        if current is not None and name == OPENAPI_FILE:
            changes += compare_openapi(snapshot, current, today=today)
        elif current is not None:
            changes += compare_events(snapshot, current)
    return Report(changes, snapshot_dir, documents, outdated)


def write_snapshots(report: Report) -> list[str]:
    """Write what ``report`` found to its snapshot directory; a line per file saying what happened."""
    if any(doc is None for doc in report.documents.values()):
        raise ContractsError("The event catalog could not be read; fix it before updating the snapshots.")
    report.snapshot_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, doc in report.documents.items():
        path, text = report.snapshot_dir / name, render(doc)
        shown = f"{_shown_dir(report.snapshot_dir)}/{name}"
        if path.exists() and path.read_text(encoding="utf-8") == text:
            lines.append(f"{shown}: already up to date")
            continue
        existed = path.exists()
        path.write_text(text, encoding="utf-8")
        area = [c for c in report.changes if c.area == _area(name)]
        counts = f"{sum(c.breaking for c in area)} breaking, {sum(not c.breaking for c in area)} info"
        lines.append(f"{shown}: {'updated' if existed else 'created'} ({counts})")
    return lines


def _area(name: str) -> str:
    return "api" if name == OPENAPI_FILE else "events"


def _shown_dir(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        return str(path)


# --- REST API ---------------------------------------------------------------------------------------------------


def compare_openapi(old: dict, new: dict, *, today: dt.date | None = None) -> list[Change]:
    """Changes from the snapshot ``old`` to the current document ``new``, breaking ones for N-1 clients first."""
    return _ApiDiff(old, new, today or clock.now().date()).run()


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _operations(doc: dict) -> dict[tuple[str, str], tuple[str, dict, dict]]:
    """(path template, method) -> (path, operation, path item); templates ignore path parameter names."""
    out = {}
    paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
    for path, item in sorted(paths.items()):
        item = _deref(doc, item)
        for method in METHODS:
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                out[(_template(path), method)] = (path, item[method], item)
    return out


def _pointer(doc, ref: str):
    node = doc
    for token in ref[2:].split("/") if ref.startswith("#/") else []:
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node if ref.startswith("#/") else None


def _deref(doc: dict, obj):
    """A parameter, request body, response or path item with its own ``$ref`` followed."""
    for _ in range(20):
        if not (isinstance(obj, dict) and isinstance(obj.get("$ref"), str)):
            return obj
        obj = _pointer(doc, obj["$ref"])
    return None


def _walk(schema, fn):
    """A copy of ``schema`` with ``fn`` applied to it and every subschema (keyword-aware, so a property named
    'required' or 'properties' is not mistaken for a keyword)."""
    if isinstance(schema, list):
        return [_walk(s, fn) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _walk(s, fn) for name, s in out[key].items()}
    for key in (*SCHEMA_LISTS, *SCHEMA_ONE, "items"):
        if key in out:
            out[key] = _walk(out[key], fn)
    return fn(out)


def _all_present(schema: dict) -> dict:
    """django-ninja serializes every declared field of a response (Plaza uses no exclude_unset/exclude_none) but
    documents fields with defaults as optional; responses are compared as sent: every declared field present."""
    if isinstance(schema.get("properties"), dict) and schema["properties"]:
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        schema["required"] = required + [name for name in schema["properties"] if name not in required]
    return schema


def _as_sent(doc: dict) -> dict:
    """The document with every response schema (and component) in ``_all_present`` form."""
    doc = copy.deepcopy(doc)
    components = doc.get("components") if isinstance(doc.get("components"), dict) else {}
    if isinstance(components.get("schemas"), dict):
        components["schemas"] = {k: _walk(v, _all_present) for k, v in components["schemas"].items()}
    responses = [r for r in (components.get("responses") or {}).values() if isinstance(r, dict)]
    for _path, op, _item in _operations(doc).values():
        responses += [r for r in (op.get("responses") or {}).values() if isinstance(r, dict)]
    for response in responses:
        for media in (response.get("content") or {}).values():
            if isinstance(media, dict) and "schema" in media:
                media["schema"] = _walk(media["schema"], _all_present)
    return doc


def _without_null(schema):
    """Query strings and headers cannot carry JSON null: drop pydantic's ``anyOf: [X, {"type": "null"}]`` arm of
    an optional parameter (and ``null`` from a type list) so ``str | None`` → ``str`` is not reported."""
    if not isinstance(schema, dict):
        return schema
    if isinstance(schema.get("type"), list) and "null" in schema["type"]:
        kept = [t for t in schema["type"] if t != "null"]
        return {**schema, "type": kept[0] if len(kept) == 1 else kept} if kept else schema
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [b for b in branches if b != {"type": "null"}]
    if not kept or len(kept) == len(branches):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    if len(kept) == 1 and isinstance(kept[0], dict) and rest.keys().isdisjoint(kept[0].keys() - DOC_KEYWORDS):
        return {**rest, **kept[0]}
    return {**rest, "anyOf": kept}


def _shape(schema, root, stack=()):
    """The schema with local references inlined and documentation keywords dropped: equal shapes, equal contracts."""
    if isinstance(schema, list):
        return [_shape(s, root, stack) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in stack and len(stack) < 30:
        target = _pointer(root, ref)
        if target is not None:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return _shape({**target, **rest} if rest else target, root, (*stack, ref))

    out = {k: v for k, v in schema.items() if k not in DOC_KEYWORDS}
    for key in SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _shape(s, root, stack) for name, s in out[key].items()}
    for key in (*SCHEMA_LISTS, *SCHEMA_ONE, "items"):
        if key in out:
            out[key] = _shape(out[key], root, stack)
    return out


def _fields(schema, root, prefix: str = "$", stack: tuple = (), out: set | None = None) -> set[str]:
    """Every property path a schema declares ($.a, $.a.b, $.items[].c), references followed."""
    out = set() if out is None else out
    if not isinstance(schema, dict) or len(stack) > 30:
        return out
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in stack:
        _fields(_pointer(root, ref), root, prefix, (*stack, ref), out)
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(key) if isinstance(schema.get(key), list) else []:
            _fields(branch, root, prefix, stack, out)
    for name, sub in (schema.get("properties") or {}).items() if isinstance(schema.get("properties"), dict) else []:
        out.add(f"{prefix}.{name}")
        _fields(sub, root, f"{prefix}.{name}", stack, out)
    if isinstance(schema.get("items"), dict):
        _fields(schema["items"], root, f"{prefix}[]", stack, out)
    if isinstance(schema.get("additionalProperties"), dict):
        _fields(schema["additionalProperties"], root, f"{prefix}.*", stack, out)
    return out


def _field_of(message: str) -> str:
    """ "$.a.b" from a compat.py message naming field 'a.b', "$" for the value itself, "" when it names none."""
    found = _FIELD_IN_MESSAGE.search(message)
    if found:
        name = found.group(1)
        return "$" + ("" if not name else name if name.startswith("[") else "." + name)
    return "$" if re.search(r"\bthe value\b", message, re.IGNORECASE) else ""


def _date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _is_success(code) -> bool:
    return str(code).upper().startswith("2")


def _is_error(code) -> bool:
    return str(code)[:1] in ("4", "5") or str(code) == "default"


def _security(doc: dict, op: dict) -> list:
    security = op["security"] if "security" in op else doc.get("security")
    return [r for r in security if isinstance(r, dict)] if isinstance(security, list) else []


def _is_open(requirements: list) -> bool:
    return not requirements or any(not r for r in requirements)


def _satisfies(old_alternative: dict, new_alternative: dict) -> bool:
    """A client meeting ``old_alternative`` (schemes and scopes) also meets ``new_alternative``."""
    return all(
        name in old_alternative and set(scopes or []) <= set(old_alternative[name] or [])
        for name, scopes in new_alternative.items()
    )


def _names(alternatives: list) -> str:
    return " or ".join(" + ".join(sorted(a)) for a in alternatives if a) or "nothing"


class _ApiDiff:
    def __init__(self, old: dict, new: dict, today: dt.date):
        self.old, self.new, self.today = old, new, today
        self.old_sent, self.new_sent = _as_sent(old), _as_sent(new)  # the roots responses are compared in
        self.old_ops_sent, self.new_ops_sent = _operations(self.old_sent), _operations(self.new_sent)
        self.changes: list[Change] = []
        self.error_problems: dict[tuple, list[str]] = {}

    def add(self, severity: str, where: str, rule: str, message: str, field: str = "", pointer: str = "") -> None:
        self.changes.append(Change("api", severity, where, rule, message, field, pointer))

    def add_problems(self, where: str, problems: list[Incompatibility]) -> None:
        for p in problems:
            self.add(BREAKING, where, p.rule, p.message, _field_of(p.message), p.path)

    def run(self) -> list[Change]:
        old_ops, new_ops = _operations(self.old), _operations(self.new)
        for key in sorted(old_ops.keys() | new_ops.keys(), key=lambda k: (k[0], METHODS.index(k[1]))):
            if key not in new_ops:
                self.removed(*old_ops[key][:2], key[1])
            elif key not in old_ops:
                path, op, _item = new_ops[key]
                self.add(INFO, f"{key[1].upper()} {path}", "operation_added", "New operation.")
            else:
                self.operation(key, old_ops[key], new_ops[key])
        self.security_schemes()
        self.error_envelope()
        if not self.changes and render(self.old) != render(self.new):
            why = "The document changed without changing the contract (descriptions, summaries, titles or order)."
            self.add(INFO, "document", "documentation_changed", why)
        return sorted(self.changes, key=lambda c: not c.breaking)

    def removed(self, path: str, op: dict, method: str) -> None:
        where, sunset = f"{method.upper()} {path}", _date(op.get("x-sunset"))
        if op.get("deprecated") is True and sunset is not None and sunset <= self.today:
            self.add(INFO, where, "removed_after_sunset", f"Removed after its sunset date {sunset.isoformat()}.")
        elif op.get("deprecated") is True and sunset is not None:
            why = f"Removed before its sunset date {sunset.isoformat()}: a deprecated operation stays until then."
            self.add(BREAKING, where, "operation_removed", why)
        elif op.get("deprecated") is True:
            why = "Removed, but the snapshot gives it no x-sunset date: deprecate it with a sunset date first."
            self.add(BREAKING, where, "operation_removed", why)
        else:
            why = "The operation was removed: clients calling it would fail. Deprecate it with a sunset date first."
            self.add(BREAKING, where, "operation_removed", why)

    def operation(self, key, old_entry, new_entry) -> None:
        (old_path, old_op, old_item), (new_path, new_op, new_item) = old_entry, new_entry
        where = f"{key[1].upper()} {new_path}"
        renamed = dict(zip(re.findall(r"\{([^}]*)\}", old_path), re.findall(r"\{([^}]*)\}", new_path), strict=False))
        if old_path != new_path:
            names = ", ".join(f"{{{a}}} → {{{b}}}" for a, b in renamed.items() if a != b)
            self.add(INFO, where, "path_parameter_renamed", f"Path parameter renamed ({names}); URLs are unchanged.")
        if old_op.get("operationId") != new_op.get("operationId"):
            why = f"operationId changed from {old_op.get('operationId')!r} to {new_op.get('operationId')!r} "
            self.add(INFO, where, "operation_id_changed", why + "(generated SDKs rename the method).")
        if (old_op.get("deprecated") is True) != (new_op.get("deprecated") is True):
            if new_op.get("deprecated") is True:
                why = f"Deprecated (sunset {new_op.get('x-sunset') or 'not given'})."
            else:
                why = "No longer deprecated."
            self.add(INFO, where, "deprecation_changed", why)
        self.parameters(where, renamed, (old_path, old_op, old_item), (new_path, new_op, new_item))
        self.request_body(where, old_op, new_op)
        self.responses(where, key)
        self.security(where, old_op, new_op)

    # parameters

    def _parameters(self, doc: dict, op: dict, item: dict, renamed: dict | None = None) -> dict:
        found = {}
        for param in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
            param = _deref(doc, param)
            if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                continue
            place, name = param.get("in"), param["name"]
            name = name.lower() if place == "header" else (renamed or {}).get(name, name) if place == "path" else name
            found[(place, name)] = param
        return found

    @staticmethod
    def _param_schema(param: dict):
        if "schema" in param:
            return param["schema"]
        for media in (param.get("content") or {}).values():
            if isinstance(media, dict) and "schema" in media:
                return media["schema"]
        return None

    def parameters(self, where: str, renamed: dict, old_entry, new_entry) -> None:
        old = self._parameters(self.old, old_entry[1], old_entry[2], renamed)
        new = self._parameters(self.new, new_entry[1], new_entry[2])

        def required(p):
            return p.get("in") == "path" or p.get("required") is True

        for (place, name), param in old.items():
            at = f"{where} {place} parameter '{name}'"
            if (place, name) not in new:
                why = "Parameter removed: old clients may still send it and the API now ignores it."
                self.add(INFO, at, "parameter_removed", why)
                continue
            other = new[(place, name)]
            if required(other) and not required(param):
                self.add(BREAKING, at, "parameter_now_required", "The optional parameter is now required.")
            for key in ("style", "explode", "allowReserved"):
                if param.get(key) != other.get(key):
                    why = f"Its serialization changed ({key}: {param.get(key)!r} → {other.get(key)!r})."
                    self.add(BREAKING, at, "parameter_style_changed", why)
            writer, reader = self._param_schema(param), self._param_schema(other)
            if reader is None:
                continue
            writer = {} if writer is None else writer
            problems = is_subschema(
                _without_null(writer), _without_null(reader), writer_root=self.old, reader_root=self.new
            )
            self.add_problems(at, problems)
            if not problems and _shape(writer, self.old) != _shape(reader, self.new):
                self.add(INFO, at, "parameter_changed", "The parameter's schema changed and accepts every old value.")
        for (place, name), param in new.items():
            if (place, name) not in old:
                at = f"{where} {place} parameter '{name}'"
                if required(param):
                    self.add(BREAKING, at, "parameter_added_required", "New required parameter: old clients omit it.")
                else:
                    self.add(INFO, at, "parameter_added", "New optional parameter.")

    # request bodies

    def request_body(self, where: str, old_op: dict, new_op: dict) -> None:
        at = f"{where} request body"
        old, new = _deref(self.old, old_op.get("requestBody")), _deref(self.new, new_op.get("requestBody"))
        old = old if isinstance(old, dict) else None
        new = new if isinstance(new, dict) else None
        old_required, new_required = (
            bool(old and old.get("required") is True),
            bool(new and new.get("required") is True),
        )
        if new_required and not old_required:
            why = (
                "A request body is now required; old clients send none." if old is None else "The body is now required."
            )
            self.add(BREAKING, at, "body_now_required", why)
        if old is not None and new is None:
            self.add(INFO, at, "body_removed", "The operation no longer reads a body; old clients' bodies are ignored.")
        if old is None and new is not None and not new_required:
            self.add(INFO, at, "body_added", "New optional request body.")
        if old is None or new is None:
            return
        old_content, new_content = old.get("content") or {}, new.get("content") or {}
        for ctype, media in old_content.items():
            if ctype not in new_content:
                why = f"The content type {ctype} is no longer accepted (now: {', '.join(new_content) or 'none'})."
                self.add(BREAKING, at, "request_content_type_changed", why)
                continue
            writer = media.get("schema", {}) if isinstance(media, dict) else {}
            reader = new_content[ctype].get("schema") if isinstance(new_content[ctype], dict) else None
            if reader is None:
                continue
            problems = is_subschema(writer, reader, writer_root=self.old, reader_root=self.new)
            self.add_problems(at, problems)
            old_fields, new_fields = _fields(writer, self.old), _fields(reader, self.new)
            for name in sorted(new_fields - old_fields):
                self.add(INFO, at, "field_added", "New field.", name)
            for name in sorted(old_fields - new_fields):
                self.add(
                    INFO, at, "field_removed", "Field removed: old clients may still send it; it is ignored.", name
                )
            if not problems and old_fields == new_fields and _shape(writer, self.old) != _shape(reader, self.new):
                self.add(INFO, at, "schema_changed", "The body schema changed and accepts everything old clients send.")
        for ctype in new_content.keys() - old_content.keys():
            self.add(INFO, at, "request_content_type_added", f"The content type {ctype} is now accepted too.")

    # responses

    def responses(self, where: str, key) -> None:
        old_responses = self.old_ops_sent[key][1].get("responses") or {}
        new_responses = self.new_ops_sent[key][1].get("responses") or {}
        for code, response in old_responses.items():
            at = f"{where} response {code}"
            old, new = _deref(self.old_sent, response), _deref(self.new_sent, new_responses.get(code))
            if _is_success(code) and new is None:
                why = f"The {code} response is gone (now: {', '.join(sorted(map(str, new_responses))) or 'none'})."
                self.add(BREAKING, at, "response_removed", why)
            elif _is_success(code) and isinstance(old, dict) and isinstance(new, dict):
                self.response(at, old, new)
            elif _is_error(code) and isinstance(old, dict) and isinstance(new, dict):
                self.error_response(f"{code} of {where}", old, new)
        for code in new_responses:
            if _is_success(code) and code not in old_responses:
                self.add(INFO, f"{where} response {code}", "response_added", f"New {code} response.")

    def response(self, at: str, old: dict, new: dict) -> None:
        old_content, new_content = old.get("content") or {}, new.get("content") or {}
        for ctype, media in old_content.items():
            if ctype not in new_content:
                why = f"The response is no longer sent as {ctype} (now: {', '.join(new_content) or 'no body'})."
                self.add(BREAKING, at, "response_content_type_changed", why)
                continue
            reader = media.get("schema") if isinstance(media, dict) else None
            writer = new_content[ctype].get("schema") if isinstance(new_content[ctype], dict) else None
            if reader is None:
                continue  # clients had no schema to rely on
            if writer is None:
                self.add(BREAKING, at, "response_schema_removed", "The response no longer has a schema to check.")
                continue
            problems = is_subschema(writer, reader, writer_root=self.new_sent, reader_root=self.old_sent)
            self.add_problems(at, problems)
            old_fields, new_fields = _fields(reader, self.old_sent), _fields(writer, self.new_sent)
            for name in sorted(new_fields - old_fields):
                self.add(INFO, at, "field_added", "New field.", name)
            if (
                not problems
                and old_fields == new_fields
                and _shape(reader, self.old_sent) != _shape(writer, self.new_sent)
            ):
                self.add(INFO, at, "schema_changed", "The response schema changed; old clients accept what is sent.")
        for ctype in new_content.keys() - old_content.keys():
            self.add(INFO, at, "response_content_type_added", f"The response may also be sent as {ctype}.")

    def error_response(self, label: str, old: dict, new: dict) -> None:
        """4xx/5xx bodies are the one shared error envelope: compared, but reported once per problem."""
        for ctype, media in (old.get("content") or {}).items():
            reader = media.get("schema") if isinstance(media, dict) else None
            other = (new.get("content") or {}).get(ctype)
            writer = other.get("schema") if isinstance(other, dict) else None
            if reader is None or writer is None:
                continue
            for p in is_subschema(writer, reader, writer_root=self.new_sent, reader_root=self.old_sent):
                self.error_problems.setdefault((p.rule, p.message, p.path), []).append(label)

    def error_envelope(self) -> None:
        for (rule, message, pointer), labels in self.error_problems.items():
            more = f" and {len(labels) - 1} more" if len(labels) > 1 else ""
            self.add(BREAKING, f"error envelope ({labels[0]}{more})", rule, message, _field_of(message), pointer)

    # security

    def security(self, where: str, old_op: dict, new_op: dict) -> None:
        at = f"{where} security"
        old, new = _security(self.old, old_op), _security(self.new, new_op)
        if _is_open(old) and not _is_open(new):
            self.add(BREAKING, at, "security_added", f"The operation was open and now requires {_names(new)}.")
        elif not _is_open(old) and _is_open(new):
            self.add(INFO, at, "security_removed", "The operation no longer requires authentication.")
        elif not _is_open(old):
            lost = [a for a in old if not any(_satisfies(a, b) for b in new)]
            if lost:
                why = f"Clients authenticating with {_names(lost)} would be refused: it now requires {_names(new)}."
                self.add(BREAKING, at, "security_changed", why)

    def security_schemes(self) -> None:
        def schemes(doc):
            found = (doc.get("components") or {}).get("securitySchemes")
            return found if isinstance(found, dict) else {}

        old, new = schemes(self.old), schemes(self.new)
        for name, scheme in old.items():
            if name in new and _shape(scheme, self.old) != _shape(new[name], self.new):
                why = "The security scheme changed: credentials clients send today may no longer be accepted."
                self.add(BREAKING, f"security scheme '{name}'", "security_scheme_changed", why)


# --- event schemas ----------------------------------------------------------------------------------------------


def _mode(value) -> Mode | None:
    try:
        return Mode(str(value).upper())
    except ValueError:
        return None


def compare_events(old: dict, new: dict) -> list[Change]:
    """Changes from the snapshot ``old`` to the catalog's ``new`` (both in ``events_document`` form)."""
    changes: list[Change] = []

    def add(severity, where, rule, message, field="", pointer=""):
        changes.append(Change("events", severity, where, rule, message, field, pointer))

    for name in sorted(old):
        before, after = old[name], new.get(name)
        if after is None:
            why = "The event type is gone from the catalog: subscribed consumers would stop receiving it. Deprecate it."
            add(BREAKING, name, "event_type_removed", why)
            continue
        old_mode, new_mode = _mode(before.get("compatibility")), _mode(after.get("compatibility"))
        mode = new_mode
        if new_mode is None:
            add(BREAKING, name, "mode_invalid", f"Unknown compatibility mode {after.get('compatibility')!r}.")
            mode = old_mode
        elif old_mode is not None and not GUARANTEES[old_mode] <= GUARANTEES[new_mode]:
            why = f"Compatibility mode loosened from {old_mode} to {new_mode}: later versions could break consumers."
            add(BREAKING, name, "mode_loosened", why)
            mode = old_mode  # new versions are still held to what consumers were promised
        elif old_mode != new_mode:
            add(INFO, name, "mode_changed", f"Compatibility mode tightened from {old_mode} to {new_mode}.")
        published, current = before.get("versions") or {}, after.get("versions") or {}
        for number in sorted(published, key=int):
            if number not in current:
                why = f"Published version {number} is gone from the catalog; published schema versions never change."
                add(BREAKING, f"{name} v{number}", "version_removed", why)
            elif current[number].get("fingerprint") != published[number].get("fingerprint"):
                why = (
                    f"Published version {number} was edited; published schema versions never change: restore it and "
                    f"add version {len(current) + 1} instead."
                )
                add(BREAKING, f"{name} v{number}", "version_changed", why)
        _new_versions(name, published, current, mode or Mode(DEFAULT_MODE), add)
    for name in sorted(new.keys() - old.keys()):
        mode = _mode(new[name].get("compatibility"))
        count = len(new[name].get("versions") or {})
        add(INFO, name, "event_type_added", f"New event type ({count} version{'s' if count != 1 else ''}, {mode}).")
        if mode is None:
            add(BREAKING, name, "mode_invalid", f"Unknown compatibility mode {new[name].get('compatibility')!r}.")
        _new_versions(name, {}, new[name].get("versions") or {}, mode or Mode(DEFAULT_MODE), add, quiet=True)
    return sorted(changes, key=lambda c: not c.breaking)


def _new_versions(name: str, published: dict, current: dict, mode: Mode, add, quiet: bool = False) -> None:
    """Each version not yet published, checked under ``mode`` against every earlier one (the published text where
    there is one)."""
    for number in sorted(current.keys() - published.keys(), key=int):
        earlier = [
            (int(k), (published.get(k) or current[k]).get("schema"))
            for k in sorted(current.keys() | published.keys(), key=int)
            if int(k) < int(number)
        ]
        problems = check_compatibility(current[number].get("schema"), earlier, mode)
        for p in problems:
            why = f"{p.message} ({p.direction} check against v{p.against_version}, {mode})"
            add(BREAKING, f"{name} v{number}", p.rule, why, _field_of(p.message), p.path)
        if not problems and not quiet:
            add(INFO, f"{name} v{number}", "version_added", f"New version, compatible under {mode}.")
