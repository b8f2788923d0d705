"""Reading an OpenAPI document for the REST API gate (``api_diff``): operations by path template, local ``$ref``s
followed, schemas walked keyword by keyword and normalised (responses as sent, null dropped from parameters, shapes
without documentation, declared fields), security, parameter serialization and base URLs with OpenAPI's defaults
filled in, and what the gate does not check itself (``_unchecked``)."""

from __future__ import annotations

import copy
import re

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keywords that say nothing about which instances are valid: a change to them alone is not a contract change.
DOC_KEYWORDS = frozenset({"title", "description", "examples", "example", "$comment", "externalDocs", "xml"})
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
SCHEMA_ONE += ("unevaluatedProperties", "unevaluatedItems", "additionalItems")
# Fields of OpenAPI objects (operations, parameters, responses, media types, …) that only document. ``x-*``
# extensions count as documentation too; the deprecation ones the gate reads are compared on their own.
DOC_FIELDS = frozenset({"summary", "description", "tags", "externalDocs", "example", "examples", "title"})
# What each OpenAPI object holds that the gate compares itself; the rest (minus DOC_FIELDS) must stay equal.
_CHECKED_DOCUMENT = frozenset({"openapi", "info", "paths", "components", "servers", "security"})
_CHECKED_COMPONENTS = frozenset({"schemas", "securitySchemes", "parameters", "requestBodies", "responses", "headers"})
_CHECKED_COMPONENTS |= frozenset({"examples"})
_CHECKED_OPERATION = frozenset({"operationId", "deprecated", "parameters", "requestBody", "responses", "security"})
_CHECKED_OPERATION |= frozenset({"servers"})
_CHECKED_PATH_ITEM = frozenset({*METHODS, "parameters", "servers", "$ref"})
_CHECKED_PARAMETER = frozenset({"name", "in", "required", "schema", "style", "explode", "allowReserved", "deprecated"})
_CHECKED_BODY = frozenset({"required", "content"})
_CHECKED_RESPONSE = frozenset({"content", "headers"})
_CHECKED_MEDIA = frozenset({"schema"})
_CHECKED_HEADER = frozenset({"schema", "required", "deprecated"})


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


def _security(doc: dict, op: dict) -> list:
    security = op["security"] if "security" in op else doc.get("security")
    return [r for r in security if isinstance(r, dict)] if isinstance(security, list) else []


def _serialization(param: dict) -> dict:
    """A parameter's style, explode and allowReserved with OpenAPI's defaults filled in, so spelling out a default
    is not a change: style ``form`` for query and cookie parameters, ``simple`` for path and header ones; explode
    true exactly for ``form``."""
    style = param.get("style") or ("form" if param.get("in") in ("query", "cookie") else "simple")
    explode = param["explode"] if isinstance(param.get("explode"), bool) else style == "form"
    return {"style": style, "explode": explode, "allowReserved": param.get("allowReserved") is True}


def _server_urls(servers) -> set[str]:
    """The base URLs a ``servers`` list allows: variables expanded over their ``enum`` (else their default); no
    servers means "/" (OpenAPI's default). A trailing slash does not count."""
    urls = set()
    for server in servers if isinstance(servers, list) and servers else [{"url": "/"}]:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        expanded = [server["url"]]
        variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}
        for name, variable in sorted(variables.items()):
            variable = variable if isinstance(variable, dict) else {}
            values = variable.get("enum") if isinstance(variable.get("enum"), list) else [variable.get("default")]
            expanded = [u.replace(f"{{{name}}}", str(v)) for u in expanded for v in values[:20]][:200]
        urls |= {u.rstrip("/") or "/" for u in expanded}
    return urls


def _servers(doc: dict, op: dict, item: dict):
    """The servers an operation is called on: its own, else its path item's, else the document's."""
    for obj in (op, item, doc):
        if isinstance(obj, dict) and "servers" in obj:
            return obj["servers"]
    return None


def _undocumented(value):
    """``value`` without documentation fields and ``x-*`` extensions, at any depth."""
    if isinstance(value, list):
        return [_undocumented(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {
        k: _undocumented(v)
        for k, v in value.items()
        if k not in DOC_FIELDS and not (isinstance(k, str) and k.startswith("x-"))
    }


def _rest(obj, checked: frozenset) -> dict:
    """What ``obj`` holds besides the fields the gate checks itself and documentation."""
    return _undocumented({k: v for k, v in obj.items() if k not in checked}) if isinstance(obj, dict) else {}


def _unchecked(doc: dict) -> dict[tuple, tuple[str, dict]]:
    """Where the gate does not look: location -> (label, what is there besides the fields compared elsewhere and
    documentation). Locations are the document, its components, and per operation: the operation and its path
    item, each parameter, the request body, each response, media type and response header. A location only one
    document has (a new operation, a removed parameter, another content type) is reported by the checks; where
    both have it, equal values mean the documents differ only in checked or documentation fields."""
    components = doc.get("components") if isinstance(doc.get("components"), dict) else {}
    out: dict[tuple, tuple[str, dict]] = {
        ("document",): ("document", _rest(doc, _CHECKED_DOCUMENT)),
        ("components",): ("components", _rest(components, _CHECKED_COMPONENTS)),
    }

    def content(key: tuple, label: str, obj: dict) -> None:
        media = obj.get("content") if isinstance(obj.get("content"), dict) else {}
        for ctype, value in media.items():
            out[(*key, ctype)] = (f"{label} {ctype}", _rest(value, _CHECKED_MEDIA))

    for (template, method), (path, op, item) in _operations(doc).items():
        key, label = (template, method), f"{method.upper()} {path}"
        out[key] = (label, _rest(op, _CHECKED_OPERATION))
        out[(template, "path item")] = (f"{path} path item", _rest(item, _CHECKED_PATH_ITEM))
        slots = {name: i for i, name in enumerate(re.findall(r"\{([^}]*)\}", path))}  # path parameters by position
        for param in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
            param = _deref(doc, param)
            if not isinstance(param, dict):
                continue
            place, name = param.get("in"), str(param.get("name"))
            at = (*key, "parameter", place, slots.get(name, name) if place == "path" else name.lower())
            out[at] = (f"{label} {place} parameter '{name}'", _rest(param, _CHECKED_PARAMETER | {"content"}))
            content(at, f"{label} {place} parameter '{name}'", param)
        body = _deref(doc, op.get("requestBody"))
        if isinstance(body, dict):
            out[(*key, "body")] = (f"{label} request body", _rest(body, _CHECKED_BODY))
            content((*key, "body"), f"{label} request body", body)
        for code, response in (op.get("responses") or {}).items():
            response = _deref(doc, response)
            if not isinstance(response, dict):
                continue
            at = (*key, "response", str(code))
            out[at] = (f"{label} response {code}", _rest(response, _CHECKED_RESPONSE))
            content(at, f"{label} response {code}", response)
            headers = response.get("headers") if isinstance(response.get("headers"), dict) else {}
            for name, header in headers.items():
                rest = _rest(_deref(doc, header), _CHECKED_HEADER | {"content"})
                out[(*at, "header", name.lower())] = (f"{label} response {code} header '{name.lower()}'", rest)
                content((*at, "header", name.lower()), f"{label} response {code} header '{name.lower()}'", header)
    return out
