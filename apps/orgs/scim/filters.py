"""SCIM filters (RFC 7644 §3.4.2.2), parsed by ``scim2-filter-parser`` and evaluated on resource
representations, so a filter sees exactly what a client reads (``emails[type eq "work"].value``,
``meta.lastModified gt …``, ``groups.value eq …``).

Top-level ``eq`` on a few indexed attributes (userName, externalId, displayName, id) is also pushed
down to the database first (:func:`equality_hints`), which is what identity providers send.
"""

from __future__ import annotations

import datetime as dt

from scim2_filter_parser import ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser

from apps.orgs.scim.errors import bad_request
from apps.orgs.scim.schema import ENTERPRISE, GROUP, USER

MAX_FILTER = 4096
_CASE_EXACT = {"id", "externalid", "value", "$ref", "version", "location", "resourcetype"}
_OPS = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"}


def parse(text) -> ast.Filter:
    """The filter's syntax tree, or ``invalidFilter``."""
    if not isinstance(text, str) or not text.strip():
        raise bad_request("The filter is empty.", "invalidFilter")
    if len(text) > MAX_FILTER or "\x00" in text:
        raise bad_request("The filter is too long or contains a NUL character.", "invalidFilter")
    try:
        tree = SCIMParser().parse(SCIMLexer().tokenize(text))
    except RecursionError:
        raise bad_request("The filter is nested too deeply.", "invalidFilter") from None
    except Exception as exc:  # the parser raises its own and lexer errors of several types
        raise bad_request(f"Invalid filter: {str(exc)[:200]}", "invalidFilter") from None
    if tree is None:
        raise bad_request("Invalid filter.", "invalidFilter")
    return tree


def _get(obj, name: str):
    if not isinstance(obj, dict):
        return None
    lower = name.lower()
    for key, value in obj.items():
        if key.lower() == lower:
            return value
    return None


def _strip_uri(uri: str | None, name: str, resource: dict):
    """The object an attribute name is looked up in, honouring a schema URN prefix."""
    if uri:
        if uri.lower() == ENTERPRISE.lower():
            return _get(resource, ENTERPRISE)
        if uri.lower() in (USER.lower(), GROUP.lower()):
            return resource
        return None
    if name.lower().startswith(ENTERPRISE.lower() + ":"):
        return _get(resource, ENTERPRISE)
    return resource


def _as_datetime(value):
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _literal(raw):
    if raw is None:
        return None
    if isinstance(raw, (bool, int, float)):
        return raw
    return raw


def _compare(op: str, actual, expected, case_exact: bool) -> bool:
    if op == "pr":
        return actual not in (None, "", [], {})
    if isinstance(actual, (dict, list)) or actual is None:
        return op == "ne" if actual is None and expected is not None else (op == "eq" and expected is None)
    if isinstance(actual, bool):
        if isinstance(expected, str) and expected.lower() in ("true", "false"):
            expected = expected.lower() == "true"
        if not isinstance(expected, bool):
            return op == "ne"
        if op not in ("eq", "ne"):
            raise bad_request("Booleans can only be compared with eq or ne.", "invalidFilter")
        return (actual == expected) == (op == "eq")
    if isinstance(actual, (int, float)):
        try:
            expected = float(expected)
        except (TypeError, ValueError):
            return op == "ne"
    elif isinstance(actual, str):
        if expected is None:
            return op == "ne"
        expected = str(expected)
        when, other = _as_datetime(actual), _as_datetime(expected)
        if op in ("gt", "ge", "lt", "le") and when and other:
            actual, expected = when, other
        elif not case_exact:
            actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op in ("co", "sw", "ew"):
        if not isinstance(actual, str):
            raise bad_request(f"'{op}' needs a string attribute.", "invalidFilter")
        return {"co": expected in actual, "sw": actual.startswith(expected), "ew": actual.endswith(expected)}[op]
    try:
        return {"gt": actual > expected, "ge": actual >= expected, "lt": actual < expected, "le": actual <= expected}[
            op
        ]
    except TypeError:
        return False


def _values(container, name: str, sub: str | None) -> tuple[list, bool]:
    """The values an attribute path designates (multi-valued attributes are flattened), and
    whether the comparison is case-exact."""
    value = _get(container, name)
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and sub is None and any(isinstance(i, dict) for i in value):
        sub = "value"  # RFC 7644 §3.4.2.2: a complex multi-valued attribute compares its "value"
    if sub is not None:
        items = [_get(i, sub) for i in items if isinstance(i, dict)]
        items = [x for i in items for x in (i if isinstance(i, list) else [i])]
    case_exact = (sub or name).lower() in _CASE_EXACT and name.lower() not in ("emails",)
    return items, case_exact


def matches(node, resource: dict) -> bool:
    """Whether ``resource`` (a representation dict) satisfies the filter ``node``."""
    if isinstance(node, ast.Filter):
        if node.namespace is not None:
            # A value filter on its own: attr[expr] — true when some value matches expr.
            path = node.namespace
            container = _strip_uri(path.uri, path.attr_name, resource)
            elements = _get(container, path.attr_name)
            elements = elements if isinstance(elements, list) else [elements] if isinstance(elements, dict) else []
            result = any(matches(node.expr, e) for e in elements if isinstance(e, dict))
        else:
            result = matches(node.expr, resource)
        return not result if node.negated else result
    if isinstance(node, ast.LogExpr):
        if node.op.lower() == "and":
            return matches(node.expr1, resource) and matches(node.expr2, resource)
        return matches(node.expr1, resource) or matches(node.expr2, resource)
    if isinstance(node, ast.AttrExpr):
        op = node.value.lower()
        if op not in _OPS:
            raise bad_request(f"Unknown operator {node.value!r}.", "invalidFilter")
        path = node.attr_path
        expected = _literal(node.comp_value.value) if node.comp_value is not None else None
        if op != "pr" and node.comp_value is None:
            raise bad_request(f"'{op}' needs a value.", "invalidFilter")
        if isinstance(path.attr_name, ast.Filter):
            # attr[expr].sub op value
            inner = path.attr_name
            ns = inner.namespace
            container = _strip_uri(ns.uri, ns.attr_name, resource)
            elements = _get(container, ns.attr_name)
            elements = [e for e in (elements if isinstance(elements, list) else []) if isinstance(e, dict)]
            chosen = [e for e in elements if matches(inner.expr, e)]
            sub = ns.sub_attr.value if ns.sub_attr is not None else "value"
            values = [_get(e, sub) for e in chosen]
            case_exact = sub.lower() in _CASE_EXACT and ns.attr_name.lower() != "emails"
        else:
            name = path.attr_name
            container = _strip_uri(path.uri, name, resource)
            if name.lower().startswith(ENTERPRISE.lower() + ":"):
                name = name[len(ENTERPRISE) + 1 :]
            sub = path.sub_attr.value if path.sub_attr is not None else None
            values, case_exact = _values(container, name, sub)
        if op == "ne":
            return not any(_compare("eq", v, expected, case_exact) for v in values)
        return any(_compare(op, v, expected, case_exact) for v in values)
    raise bad_request("Unsupported filter expression.", "invalidFilter")


def equality_hints(node) -> dict[str, str]:
    """Top-level ``attr eq "value"`` terms joined by ``and``: {lower-case attribute: value}. The
    caller narrows its query with them; the full filter is still evaluated afterwards."""
    hints: dict[str, str] = {}

    def walk(n):
        if isinstance(n, ast.Filter) and not n.negated and n.namespace is None:
            walk(n.expr)
        elif isinstance(n, ast.LogExpr) and n.op.lower() == "and":
            walk(n.expr1)
            walk(n.expr2)
        elif (
            isinstance(n, ast.AttrExpr)
            and n.value.lower() == "eq"
            and isinstance(n.attr_path.attr_name, str)
            and n.attr_path.sub_attr is None
            and n.comp_value is not None
            and isinstance(n.comp_value.value, str)
        ):
            hints.setdefault(n.attr_path.attr_name.lower(), n.comp_value.value)

    walk(node)
    return hints
