"""PATCH operations (RFC 7644 §3.5.2) applied to a resource's writable representation.

The result is validated and saved by the same code as PUT, so PATCH and PUT cannot disagree.
Tolerated identity-provider quirks: capitalised ``op`` ("Replace", Azure AD), path-less
``replace`` whose keys are paths (``{"name.givenName": "…"}``, Azure AD), ``remove`` of a
multi-valued attribute with a ``value`` listing what to remove (Azure AD ``members``), and ``add``
to ``emails[type eq "work"].value`` when no such e-mail exists yet (the element is created).
"""

from __future__ import annotations

import re

from apps.orgs.scim import filters
from apps.orgs.scim.errors import bad_request
from apps.orgs.scim.schema import ENTERPRISE, ENTERPRISE_ATTRS, GROUP, USER, attributes_of, sub_attribute

MAX_OPERATIONS = 1000
_PATH = re.compile(r"^([A-Za-z$][\w$-]*)(?:\[(.+)\])?(?:\.([A-Za-z$][\w$-]*))?$", re.S)


def _parse_path(path, schema_id: str):
    """(extension?, attribute definition or None for the whole extension, value filter, sub-attribute)."""
    if not isinstance(path, str) or not path.strip() or len(path) > 1024 or "\x00" in path:
        raise bad_request("The path is not a valid attribute path.", "invalidPath")
    path = path.strip()
    attrs = attributes_of(schema_id)
    extension = False
    lower = path.lower()
    if schema_id == USER and lower.startswith(ENTERPRISE.lower()):
        extension, path = True, path[len(ENTERPRISE) :]
        if not path:
            return True, None, None, None
        if not path.startswith(":"):
            raise bad_request(f"Unknown attribute path {path!r}.", "invalidPath")
        path, attrs = path[1:], ENTERPRISE_ATTRS
    elif lower.startswith(schema_id.lower() + ":"):
        path = path[len(schema_id) + 1 :]
    match = _PATH.match(path)
    if not match:
        raise bad_request(f"The path {path!r} is not a valid attribute path.", "invalidPath")
    name, value_filter, sub = match.groups()
    attr = attrs.get(name.lower())
    if attr is None:
        raise bad_request(f"Unknown attribute {name!r}.", "invalidPath")
    if attr.get("mutability") in ("readOnly", "immutable") or attr["name"] in ("id", "meta", "groups"):
        raise bad_request(f"{attr['name']} is read-only.", "mutability")
    if sub is not None:
        sub_attr = sub_attribute(attr, sub)
        if sub_attr is None:
            raise bad_request(f"Unknown sub-attribute {attr['name']}.{sub}.", "invalidPath")
        sub = sub_attr["name"]
    node = None
    if value_filter is not None:
        if not attr.get("multiValued"):
            raise bad_request(f"{attr['name']} is single-valued: it cannot take a value filter.", "invalidPath")
        node = filters.parse(value_filter)
    return extension, attr, node, sub


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _new_element(node, sub: str | None, value, attr: dict) -> dict:
    element = {}
    for key, expected in filters.equality_hints(node).items():
        sub_attr = sub_attribute(attr, key)
        if sub_attr is not None:
            element[sub_attr["name"]] = expected
    if sub is not None:
        element[sub] = value
    elif isinstance(value, dict):
        element.update(value)
    return element


def _apply_path(doc: dict, kind: str, path: str, value, schema_id: str) -> None:
    extension, attr, node, sub = _parse_path(path, schema_id)
    if attr is None:  # the whole enterprise extension
        if kind == "remove":
            doc.pop(ENTERPRISE, None)
        elif isinstance(value, dict):
            for key, sub_value in value.items():
                if isinstance(key, str) and key.lower() != "schemas":
                    _apply_path(doc, kind, f"{ENTERPRISE}:{key}", sub_value, schema_id)
        else:
            raise bad_request(f"{ENTERPRISE} takes an object.")
        return
    container = doc.setdefault(ENTERPRISE, {}) if extension else doc
    name, multi = attr["name"], bool(attr.get("multiValued"))
    current = container.get(name)
    if kind != "remove" and value is None:
        raise bad_request(f"'{kind}' of {path} needs a value.")

    if node is None and sub is None:
        if kind == "remove":
            if multi and value is not None and isinstance(current, list):
                drop = [v.get("value") if isinstance(v, dict) else v for v in _as_list(value)]
                container[name] = [e for e in current if not (isinstance(e, dict) and e.get("value") in drop)]
            else:
                container.pop(name, None)
        elif multi:
            items = _as_list(value)
            if kind == "add":
                existing = current if isinstance(current, list) else []
                container[name] = existing + [i for i in items if i not in existing]
            else:
                container[name] = items
        elif attr.get("type") == "complex" and isinstance(value, dict) and isinstance(current, dict):
            container[name] = {**current, **value}
        else:
            container[name] = value
        return

    if node is None:  # attr.sub
        if multi:
            elements = [e for e in (current or []) if isinstance(e, dict)]
            if not elements and kind == "add":
                container[name] = [{sub: value}]
                return
            for element in elements:
                if kind == "remove":
                    element.pop(sub, None)
                else:
                    element[sub] = value
        else:
            obj = dict(current) if isinstance(current, dict) else {}
            if kind == "remove":
                obj.pop(sub, None)
            else:
                obj[sub] = value
            container[name] = obj
        return

    elements = current if isinstance(current, list) else []
    chosen = [e for e in elements if isinstance(e, dict) and filters.matches(node, e)]
    chosen_ids = {id(e) for e in chosen}
    if kind == "remove":
        if sub is None:
            container[name] = [e for e in elements if id(e) not in chosen_ids]
        else:
            for element in chosen:
                element.pop(sub, None)
        return
    if not chosen:
        if kind == "replace":
            raise bad_request(f"No value of {name} matches the filter in {path!r}.", "noTarget")
        container[name] = [*elements, _new_element(node, sub, value, attr)]
        return
    if sub is not None:
        for element in chosen:
            element[sub] = value
        return
    if not isinstance(value, dict):
        raise bad_request(f"A value of {name} is an object.")
    container[name] = [({**e, **value} if id(e) in chosen_ids else e) for e in elements]


def apply_operations(doc: dict, body: dict, schema_id: str) -> dict:
    """Apply a PatchOp request body to ``doc`` (changed in place and returned)."""
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise bad_request('A PATCH request needs a non-empty "Operations" list.', "invalidSyntax")
    if len(operations) > MAX_OPERATIONS:
        raise bad_request(f"At most {MAX_OPERATIONS} operations per request.", "invalidSyntax")
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise bad_request(f"Operations[{index}] must be an object.", "invalidSyntax")
        kind = operation.get("op")
        kind = kind.lower() if isinstance(kind, str) else kind
        if kind not in ("add", "remove", "replace"):
            raise bad_request(f'Operations[{index}].op must be "add", "remove" or "replace".', "invalidSyntax")
        path = operation.get("path")
        value = operation.get("value")
        if path is None or path == "":
            if kind == "remove":
                raise bad_request(f"Operations[{index}]: remove needs a path.", "noTarget")
            if not isinstance(value, dict):
                raise bad_request(f"Operations[{index}]: without a path, the value must be an object.", "invalidValue")
            for key, sub_value in value.items():
                if not isinstance(key, str) or key.lower() == "schemas":
                    continue
                if key.lower() in ("id", "meta") and schema_id in (USER, GROUP):
                    continue  # read-only: ignored in a path-less value, as in PUT
                if key.lower() == ENTERPRISE.lower() and isinstance(sub_value, dict):
                    for ext_key, ext_value in sub_value.items():
                        if not isinstance(ext_key, str) or ext_key.lower() == "schemas":
                            continue
                        _apply_path(doc, kind, f"{ENTERPRISE}:{ext_key}", ext_value, schema_id)
                    continue
                _apply_path(doc, kind, key, sub_value, schema_id)
            continue
        _apply_path(doc, kind, path, value, schema_id)
    return doc
