"""Payload minimisation: what of an event an installation may see, as the event's schema declares.

Receiving an event type needs ``events:read:<type>``; that scope carries every property of the
payload except those whose schema is annotated ``"x-plaza-scope": "<scope>"``, which travel only
to installations granted ``<scope>`` as well (``pii:read`` for personal data: names, e-mail
addresses, phone numbers, postal addresses).

Where the annotation counts: on the schema of a property (``properties.<name>``) at any depth of
``properties``, through ``items`` (the properties of an array's objects) and through local
``$ref`` (``#/$defs/…``); the annotation may sit on the property's schema or on the definition it
refers to. A property that is dropped is dropped with everything under it. The registry refuses an
annotation anywhere else (inside ``anyOf``/``oneOf``/``allOf``, ``additionalProperties``,
``patternProperties``, on ``items`` itself, on the root): minimisation would not honour it there,
and a schema that only looks protected is worse than one that is not.

Properties the schema does not name (when it allows additional properties) travel unchanged.
Minimisation is a delivery concern, not part of the payload's shape: the compatibility checker
ignores ``x-…`` keywords, so adding or removing an annotation is compatible in every mode.
"""

from __future__ import annotations

from typing import Any

ANNOTATION = "x-plaza-scope"
MAX_DEPTH = 64  # schema nesting levels plus $ref hops followed; deeper is not walked


def _ref_target(root: dict, ref: Any) -> dict | None:
    """The schema a local ``$ref`` (``#/$defs/x``, ``#/properties/a``) points to, or None."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    node: Any = root
    if ref in ("#", "#/"):
        return root
    if not ref.startswith("#/"):
        return None  # anchors are not followed
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node if isinstance(node, dict) else None


def _chain(root: dict, node: Any) -> list[dict]:
    """``node`` and the schemas its ``$ref`` chain leads to (cycle-safe)."""
    chain: list[dict] = []
    seen: set[int] = set()
    while isinstance(node, dict) and id(node) not in seen and len(chain) < MAX_DEPTH:
        seen.add(id(node))
        chain.append(node)
        node = _ref_target(root, node.get("$ref")) if "$ref" in node else None
    return chain


def _required_scopes(chain: list[dict]) -> set:
    return {n[ANNOTATION] for n in chain if ANNOTATION in n}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _chains(root: dict, nodes: list) -> list[dict]:
    """Every schema that applies to one value: each of ``nodes`` and its ``$ref`` chain, once."""
    out: list[dict] = []
    seen: set[int] = set()
    for node in nodes:
        for n in _chain(root, node):
            if id(n) not in seen:
                seen.add(id(n))
                out.append(n)
    return out


def _minimise(root: dict, nodes: list, value: Any, scopes: set[str] | frozenset[str], depth: int) -> Any:
    # A value may be described by several schemas at once (a node's own ``properties`` and those
    # of the definition its ``$ref`` names, say): all of them are followed further down, so an
    # annotation nested under any one of them is honoured.
    chain = _chains(root, nodes)
    if depth >= MAX_DEPTH or not chain:
        return _copy(value)
    if isinstance(value, dict):
        properties: dict = {}
        for n in chain:
            if isinstance(n.get("properties"), dict):
                for name, sub in n["properties"].items():
                    properties.setdefault(name, []).append(sub)
        if not properties:
            return _copy(value)
        out = {}
        for key, item in value.items():
            subs = properties.get(key)
            if not subs:
                out[key] = _copy(item)
                continue
            needed = _required_scopes(_chains(root, subs))
            if not needed <= scopes:
                continue
            out[key] = _minimise(root, subs, item, scopes, depth + 1)
        return out
    if isinstance(value, list):
        items = [n["items"] for n in chain if isinstance(n.get("items"), dict)]
        if not items:
            return _copy(value)
        return [_minimise(root, items, v, scopes, depth + 1) for v in value]
    return value


def payload_for_scopes(schema, payload: dict, scopes) -> dict:
    """``payload`` as an installation holding ``scopes`` may receive it: every property annotated
    ``x-plaza-scope`` whose scope is not in ``scopes`` is left out (with everything under it).

    ``schema`` is an ``EventSchema`` (the version the event was accepted under) or its JSON Schema
    dict. Returns a new structure; ``payload`` is not changed."""
    document = getattr(schema, "schema", schema)
    if not isinstance(document, dict) or not isinstance(payload, dict):
        return _copy(payload)
    return _minimise(document, [document], payload, frozenset(scopes or ()), 0)


def annotated_paths(schema: dict) -> list[tuple[str, str]]:
    """(JSON path of a property, its scope) for every annotation minimisation honours — for
    documentation and the catalog page. Array elements show as ``[*]``."""
    found: list[tuple[str, str]] = []
    _walk(schema, schema, "$", False, set(), lambda node, path, honoured: found.append((path, node[ANNOTATION]))
          if honoured and ANNOTATION in node else None)  # fmt: skip
    return sorted(set(found))


def _walk(root: dict, node: Any, path: str, on_property: bool, seen: set, visit, depth: int = 0) -> None:
    """Visit every schema node minimisation reaches, by every path (bounded: ``MAX_DEPTH`` levels,
    10,000 visits): ``visit(node, path, honoured)`` where honoured says whether an annotation on it
    would count (it is a property's schema or a definition a property's schema refers to)."""
    if depth > MAX_DEPTH:
        return
    for n in _chain(root, node):
        key = (id(n), on_property, path)
        if key in seen or len(seen) > 10_000:
            continue
        seen.add(key)
        visit(n, path, on_property)
        if isinstance(n.get("properties"), dict):
            for name, sub in n["properties"].items():
                _walk(root, sub, f"{path}.{name}", True, seen, visit, depth + 1)
        if isinstance(n.get("items"), dict):
            _walk(root, n["items"], f"{path}[*]", False, seen, visit, depth + 1)


def _all_nodes(node: Any, path: str, out: list, depth: int = 0) -> None:
    """Every dict in the schema document (schemas and non-schemas alike) with a readable path."""
    if depth > 200:
        return
    if isinstance(node, dict):
        out.append((node, path))
        for key, value in node.items():
            _all_nodes(value, f"{path}.{key}", out, depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _all_nodes(value, f"{path}[{i}]", out, depth + 1)


def annotation_problems(schema: dict, root_path: str = "$.schema") -> list[dict]:
    """Problems with the ``x-plaza-scope`` annotations of a proposed event schema ([] when fine),
    each {path, rule, message}: the value must be a scope of the vocabulary
    (``apps.extensions.scopes``), and the annotation must sit where minimisation honours it."""
    from apps.extensions.scopes import UnknownScope, parse

    if not isinstance(schema, dict):
        return []
    nodes: list = []
    _all_nodes(schema, root_path, nodes)
    annotated = [(n, p) for n, p in nodes if ANNOTATION in n]
    if not annotated:
        return []
    visits: dict[int, list[bool]] = {}
    _walk(
        schema, schema, root_path, False, set(), lambda n, _p, honoured: visits.setdefault(id(n), []).append(honoured)
    )
    problems = []
    for node, path in annotated:
        where = f"{path}.{ANNOTATION}"
        value = node[ANNOTATION]
        try:
            if not isinstance(value, str):
                raise UnknownScope("The value must be a scope name, like 'pii:read'.")
            parse(value)
        except UnknownScope as exc:
            problems.append({"path": where, "rule": "scope_annotation", "message": f"Not a Plaza scope: {exc}"})
            continue
        seen_as = visits.get(id(node), [])
        if not seen_as or not all(seen_as):
            problems.append(
                {
                    "path": where,
                    "rule": "scope_annotation_position",
                    "message": "x-plaza-scope counts only on a property's schema (under 'properties', at any "
                    "depth, through 'items' and local '$ref'); here it would not be honoured.",
                }
            )
    return problems
