"""Plaza rows as SCIM resources and back.

- **User** = a :class:`Membership` of the token's organisation: ``id`` is the membership id,
  ``userName`` the person's e-mail (spelled as the identity provider sent it), ``externalId`` and
  every other attribute the provider sent (``name``, ``displayName``, ``emails``, ``phoneNumbers``,
  ``title``, the enterprise extension, …) kept in ``scim_attributes`` and returned exactly;
  ``active`` is ``deactivated_at is None``; ``groups`` is read-only, from the groups the member is in.
- **Group** = a :class:`Group`: ``displayName``, ``externalId``, ``members`` (``value`` = membership id).
"""

from __future__ import annotations

import copy
import hashlib
import json

from apps.orgs.models import Group, Membership, Organization
from apps.orgs.scim.errors import bad_request
from apps.orgs.scim.schema import (
    ENTERPRISE,
    GROUP,
    GROUP_ATTRS,
    USER,
    clean_resource,
    clean_scalar,
    clean_value,
)


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def etag_of(doc: dict) -> str:
    body = {k: v for k, v in doc.items() if k != "meta"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f'W/"{digest}"'


def _finish(doc: dict, meta: dict) -> dict:
    doc["meta"] = meta
    meta["version"] = etag_of(doc)
    return doc


def user_doc(membership: Membership, base: str) -> dict:
    attrs = copy.deepcopy(membership.scim_attributes or {})
    user_name = attrs.pop("userName", None)
    email = membership.user.email
    if not isinstance(user_name, str) or user_name.lower() != email.lower():
        user_name = email
    doc: dict = {"schemas": [USER] + ([ENTERPRISE] if ENTERPRISE in attrs else []), "id": membership.pk}
    if membership.external_id:
        doc["externalId"] = membership.external_id
    doc["userName"] = user_name
    doc.update(attrs)
    doc["active"] = membership.active
    groups = [
        {"value": g.pk, "$ref": f"{base}Groups/{g.pk}", "display": g.display_name, "type": "direct"}
        for g in sorted(membership.groups.all(), key=lambda g: g.pk)
    ]
    if groups:
        doc["groups"] = groups
    return _finish(
        doc,
        {
            "resourceType": "User",
            "created": _iso(membership.created_at),
            "lastModified": _iso(membership.updated_at),
            "location": f"{base}Users/{membership.pk}",
        },
    )


def group_doc(group: Group, base: str) -> dict:
    doc: dict = {"schemas": [GROUP], "id": group.pk}
    if group.external_id:
        doc["externalId"] = group.external_id
    doc["displayName"] = group.display_name
    members = [
        {"value": m.pk, "$ref": f"{base}Users/{m.pk}", "display": m.user.display_name, "type": "User"}
        for m in sorted(group.members.all(), key=lambda m: m.pk)
    ]
    if members:
        doc["members"] = members
    return _finish(
        doc,
        {
            "resourceType": "Group",
            "created": _iso(group.created_at),
            "lastModified": _iso(group.updated_at),
            "location": f"{base}Groups/{group.pk}",
        },
    )


_READ_ONLY = ("schemas", "id", "meta", "groups")


def writable(doc: dict) -> dict:
    """The part of a representation a client may change, for PATCH to work on."""
    out = {k: copy.deepcopy(v) for k, v in doc.items() if k not in _READ_ONLY}
    if "members" in out:
        out["members"] = [{"value": m["value"]} for m in out["members"]]
    return out


def _external_id(body: dict):
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == "externalid":
            if value is None:
                return ""
            return clean_scalar({"type": "string"}, value, "externalId")[:255]
    return ""


def _get_ci(body: dict, name: str):
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def parse_user(body: dict) -> dict:
    """Keyword arguments for ``scim_user_create``/``scim_user_replace`` from a User body."""
    user_name = _get_ci(body, "userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise bad_request("userName is required and must be a string.")
    clean_scalar({"type": "string"}, user_name, "userName")
    active = _get_ci(body, "active")
    active = True if active is None else clean_scalar({"type": "boolean"}, active, "active")
    attributes = clean_resource(body, USER, skip=("userName", "externalId", "active"))
    attributes["userName"] = user_name.strip()
    return {
        "user_name": user_name.strip(),
        "external_id": _external_id(body),
        "active": active,
        "attributes": attributes,
    }


def parse_group(body: dict, org: Organization) -> dict:
    """display_name, external_id and the member rows of a Group body (members of ``org`` only)."""
    display_name = _get_ci(body, "displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise bad_request("displayName is required and must be a string.")
    clean_scalar({"type": "string"}, display_name, "displayName")
    members_value = _get_ci(body, "members")
    values: list[str] = []
    if members_value is not None:
        members = clean_value(GROUP_ATTRS["members"], members_value, "members")
        for index, member in enumerate(members):
            value = member.get("value")
            if not isinstance(value, str) or not value:
                raise bad_request(f"members[{index}].value must be a member id.")
            values.append(value)
    if len(values) > 10000:
        raise bad_request("A group has at most 10000 members.")
    found = {m.pk: m for m in Membership.objects.filter(org=org, pk__in=set(values)).select_related("user")}
    missing = sorted(set(values) - set(found))
    if missing:
        raise bad_request(f"Unknown members: {', '.join(missing[:5])[:300]}.")
    return {
        "display_name": display_name.strip(),
        "external_id": _external_id(body),
        "members": [found[v] for v in dict.fromkeys(values)],
    }


def _split(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        parts = value
    elif isinstance(value, str):
        parts = value.split(",")
    else:
        raise bad_request("attributes and excludedAttributes are comma-separated names.")
    if len(parts) > 100:
        raise bad_request("Too many attribute names.")
    out = []
    for part in parts:
        if not isinstance(part, str):
            raise bad_request("attributes and excludedAttributes are comma-separated names.")
        part = part.strip()
        if part:
            out.append(part)
    return out


def _name_path(name: str, schema_id: str) -> tuple[str | None, str, str | None]:
    """(extension key or None, attribute, sub-attribute) of an attribute name (lower-case)."""
    lower = name.lower()
    extension = None
    if lower.startswith(ENTERPRISE.lower() + ":"):
        extension, lower = ENTERPRISE, lower[len(ENTERPRISE) + 1 :]
    elif lower.startswith(schema_id.lower() + ":"):
        lower = lower[len(schema_id) + 1 :]
    elif lower == ENTERPRISE.lower():
        return ENTERPRISE, "", None
    attr, _, sub = lower.partition(".")
    return extension, attr, sub or None


def _pick(obj: dict, attr: str, sub: str | None):
    for key, value in obj.items():
        if key.lower() != attr:
            continue
        if sub is None:
            return key, copy.deepcopy(value)
        if isinstance(value, list):
            kept = [{k: v for k, v in e.items() if k.lower() == sub} for e in value if isinstance(e, dict)]
            return key, [e for e in kept if e]
        if isinstance(value, dict):
            kept = {k: v for k, v in value.items() if k.lower() == sub}
            return (key, kept) if kept else None
    return None


def _merge(out: dict, key: str, value) -> None:
    if key in out and isinstance(out[key], dict) and isinstance(value, dict):
        out[key].update(value)
    elif key in out and isinstance(out[key], list) and isinstance(value, list):
        out[key] = [{**a, **b} for a, b in zip(out[key], value, strict=False)] or value
    else:
        out[key] = value


def project(doc: dict, attributes, excluded, schema_id: str) -> dict:
    """Apply ``attributes``/``excludedAttributes`` (RFC 7644 §3.9); ``schemas`` and ``id`` are
    always returned."""
    wanted, unwanted = _split(attributes), _split(excluded)
    if not wanted and not unwanted:
        return doc
    if wanted:
        out = {"schemas": doc["schemas"], "id": doc["id"]}
        for name in wanted:
            extension, attr, sub = _name_path(name, schema_id)
            if extension:
                source = doc.get(ENTERPRISE)
                if not isinstance(source, dict):
                    continue
                if not attr:
                    out[ENTERPRISE] = copy.deepcopy(source)
                    continue
                picked = _pick(source, attr, sub)
                if picked:
                    out.setdefault(ENTERPRISE, {})
                    _merge(out[ENTERPRISE], *picked)
                continue
            picked = _pick(doc, attr, sub)
            if picked:
                _merge(out, *picked)
        return out
    out = copy.deepcopy(doc)
    for name in unwanted:
        extension, attr, sub = _name_path(name, schema_id)
        target = out.get(ENTERPRISE) if extension else out
        if not isinstance(target, dict):
            continue
        if extension and not attr:
            out.pop(ENTERPRISE, None)
            continue
        for key in list(target):
            if key.lower() != attr or key in ("schemas", "id"):
                continue
            if sub is None:
                del target[key]
            elif isinstance(target[key], dict):
                target[key] = {k: v for k, v in target[key].items() if k.lower() != sub}
            elif isinstance(target[key], list):
                target[key] = [
                    {k: v for k, v in e.items() if k.lower() != sub} if isinstance(e, dict) else e for e in target[key]
                ]
    return out
