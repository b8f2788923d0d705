"""SCIM filters (RFC 7644 §3.4.2.2), parsed by ``scim2-filter-parser`` and evaluated on resource
representations, so a filter sees exactly what a client reads (``emails[type eq "work"].value``,
``meta.lastModified gt …``, ``groups.value eq …``).

Comparisons on a few columns (``id``, ``userName``, ``externalId``, ``displayName``, ``active``)
are also translated to SQL (:func:`to_q`): a filter made only of those is answered and paginated by
the database; any other filter is narrowed by them and then evaluated on the remaining rows.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
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


# --- push-down to the database -------------------------------------------------------------------
class Column:
    """How one top-level attribute is compared in SQL.

    ``field`` is the model lookup path; ``case_exact`` follows the attribute's SCIM definition;
    ``ops`` the operators translated; ``optional`` says the attribute is absent from the
    representation when the column is empty (``externalId``), so an empty column never matches;
    ``boolean`` marks ``active`` (``field`` is then ``deactivated_at`` and true means it is null);
    ``json_key`` reads a key of a JSON column (absent key = absent attribute)."""

    def __init__(
        self,
        field: str,
        *,
        case_exact: bool = False,
        ops: tuple[str, ...] = ("eq", "ne", "sw", "co", "ew"),
        optional: bool = False,
        boolean: bool = False,
        json_key: str = "",
    ):
        self.field, self.case_exact, self.ops = field, case_exact, ops
        self.optional, self.boolean, self.json_key = optional, boolean, json_key


USER_COLUMNS = {
    "id": Column("pk", case_exact=True, ops=("eq", "ne")),
    "username": Column("user__email"),
    "externalid": Column("external_id", case_exact=True, optional=True),
    "displayname": Column("scim_attributes", json_key="displayName"),
    "active": Column("deactivated_at", boolean=True, ops=("eq", "ne")),
}
GROUP_COLUMNS = {
    "id": Column("pk", case_exact=True, ops=("eq", "ne")),
    "displayname": Column("display_name"),
    "externalid": Column("external_id", case_exact=True, optional=True),
}

_LOOKUP = {"eq": "exact", "ne": "exact", "sw": "startswith", "co": "contains", "ew": "endswith"}


def _term_q(node, columns: dict[str, Column], schema_id: str, vendor: str):
    """(Q, exact) for one ``attr op value``, or (None, False) when it cannot be translated."""
    path = node.attr_path
    op = node.value.lower()
    if not isinstance(path.attr_name, str) or path.sub_attr is not None or node.comp_value is None:
        return None, False
    if path.uri is not None and path.uri.lower() != schema_id.lower():
        return None, False
    column = columns.get(path.attr_name.lower())
    value = node.comp_value.value
    if column is None or op not in column.ops or not isinstance(value, str):
        return None, False
    if column.boolean:
        if value.lower() not in ("true", "false"):
            return None, False
        active = value.lower() == "true"
        q = Q(**{f"{column.field}__isnull": active})
        return (q if op == "eq" else ~q), True
    if not column.case_exact and not value.isascii() and vendor != "postgresql":
        return None, False  # SQLite folds the case of ASCII letters only
    lookup = _LOOKUP[op]
    if not column.case_exact:
        lookup = "i" + lookup
    # SQLite's LIKE ignores ASCII case: a case-exact sw/co/ew there only narrows the rows.
    exact = not (column.case_exact and op in ("sw", "co", "ew") and vendor != "postgresql")
    if column.json_key:
        q = Q(**{f"{column.field}__has_key": column.json_key}) & Q(
            **{f"{column.field}__{column.json_key}__{lookup}": value}
        )
    else:
        q = Q(**{f"{column.field}__{lookup}": value})
    if column.optional:
        q &= ~Q(**{column.field: ""})
    if op == "ne":
        return (~q, True) if exact else (None, False)
    return q, exact


def to_q(node, columns: dict[str, Column], schema_id: str, vendor: str):
    """The filter as a database condition: (Q or None, exact).

    The Q never excludes a resource the filter matches, so it can always narrow the rows read;
    when ``exact`` it selects exactly the matching resources, and the filter need not be evaluated
    in Python (the caller then paginates in SQL). None means no narrowing is possible."""
    if isinstance(node, ast.Filter):
        if node.namespace is not None:
            return None, False
        q, exact = to_q(node.expr, columns, schema_id, vendor)
        if not node.negated:
            return q, exact
        return (~q, True) if exact and q is not None else (None, False)
    if isinstance(node, ast.LogExpr):
        q1, exact1 = to_q(node.expr1, columns, schema_id, vendor)
        q2, exact2 = to_q(node.expr2, columns, schema_id, vendor)
        if node.op.lower() == "and":
            if q1 is None and q2 is None:
                return None, False
            q = q1 & q2 if q1 is not None and q2 is not None else (q1 if q1 is not None else q2)
            return q, exact1 and exact2 and q1 is not None and q2 is not None
        if q1 is None or q2 is None:
            return None, False
        return q1 | q2, exact1 and exact2
    if isinstance(node, ast.AttrExpr):
        return _term_q(node, columns, schema_id, vendor)
    return None, False
