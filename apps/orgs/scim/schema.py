"""The SCIM schemas Plaza serves (django-scim2's copies of RFC 7643 §8.7, with Group.members
``display`` added), and validation of incoming resources against them.

Attribute names are case-insensitive on input (RFC 7643 §2.1) and stored under their canonical
spelling. Attributes Plaza does not know are ignored; read-only ones in a request are ignored
(RFC 7643 §7: "readOnly ... SHALL be ignored"); values of the wrong type are ``invalidValue``.
"""

from __future__ import annotations

import copy

from django_scim.constants import SchemaURI
from django_scim.schemas import ALL as _DJANGO_SCIM_SCHEMAS

from apps.orgs.scim.errors import bad_request

USER = SchemaURI.USER
GROUP = SchemaURI.GROUP
ENTERPRISE = SchemaURI.ENTERPRISE_USER
LIST_RESPONSE = SchemaURI.LIST_RESPONSE
SEARCH_REQUEST = SchemaURI.SERACH_REQUEST
PATCH_OP = SchemaURI.PATCH_OP
SERVICE_PROVIDER_CONFIG = SchemaURI.SERVICE_PROVIDER_CONFIG
RESOURCE_TYPE = SchemaURI.RESOURCE_TYPE
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

MAX_STRING = 2048
MAX_VALUES = 100
MAX_RESULTS = 200

SCHEMAS: dict[str, dict] = {s["id"]: copy.deepcopy(s) for s in _DJANGO_SCIM_SCHEMAS}
for _attr in SCHEMAS[GROUP]["attributes"]:
    if _attr["name"] == "displayName":
        _attr["required"] = True  # Plaza groups always have a name, unique in the organisation
    if _attr["name"] == "members" and not any(s["name"] == "display" for s in _attr["subAttributes"]):
        _attr["subAttributes"].append(
            {
                "name": "display",
                "type": "string",
                "multiValued": False,
                "description": "The member's name, for display only.",
                "required": False,
                "caseExact": False,
                "mutability": "readOnly",
                "returned": "default",
                "uniqueness": "none",
            }
        )

# Common attributes (RFC 7643 §3.1) are in no schema; describe them for filters and paths.
_COMMON = {
    "id": {"name": "id", "type": "string", "multiValued": False, "mutability": "readOnly", "caseExact": True},
    "externalId": {
        "name": "externalId",
        "type": "string",
        "multiValued": False,
        "mutability": "readWrite",
        "caseExact": True,
    },
    "meta": {
        "name": "meta",
        "type": "complex",
        "multiValued": False,
        "mutability": "readOnly",
        "subAttributes": [
            {"name": "resourceType", "type": "string", "caseExact": True},
            {"name": "created", "type": "dateTime"},
            {"name": "lastModified", "type": "dateTime"},
            {"name": "location", "type": "reference", "caseExact": True},
            {"name": "version", "type": "string", "caseExact": True},
        ],
    },
}


def attributes_of(schema_id: str) -> dict[str, dict]:
    """lower-case name -> attribute definition, common attributes included for core schemas."""
    attrs = {a["name"].lower(): a for a in SCHEMAS[schema_id]["attributes"]}
    if schema_id in (USER, GROUP):
        attrs.update({k.lower(): v for k, v in _COMMON.items()})
    return attrs


USER_ATTRS = attributes_of(USER)
GROUP_ATTRS = attributes_of(GROUP)
ENTERPRISE_ATTRS = attributes_of(ENTERPRISE)


def sub_attribute(attr: dict, name: str) -> dict | None:
    for sub in attr.get("subAttributes", ()):
        if sub["name"].lower() == name.lower():
            return sub
    return None


def _check_text(value: str, path: str) -> str:
    if len(value) > MAX_STRING:
        raise bad_request(f"{path} is longer than {MAX_STRING} characters.")
    if "\x00" in value:
        raise bad_request(f"{path} contains a NUL character.")
    return value


def clean_scalar(attr: dict, value, path: str):
    kind = attr.get("type", "string")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        # Azure AD sends "True"/"False" strings.
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise bad_request(f"{path} must be a boolean.")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
            return value
        raise bad_request(f"{path} must be an integer.")
    if kind == "decimal":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise bad_request(f"{path} must be a number.")
    if not isinstance(value, str):
        raise bad_request(f"{path} must be a string.")
    return _check_text(value, path)


def clean_value(attr: dict, value, path: str, *, single: bool = False):
    """A value of ``attr`` (the whole list for a multi-valued one, unless ``single``)."""
    if attr.get("multiValued") and not single:
        if not isinstance(value, list):
            raise bad_request(f"{path} must be a list.")
        if len(value) > MAX_VALUES:
            raise bad_request(f"{path} has more than {MAX_VALUES} values.")
        cleaned = [clean_value(attr, item, f"{path}[{i}]", single=True) for i, item in enumerate(value)]
        if sum(1 for item in cleaned if isinstance(item, dict) and item.get("primary") is True) > 1:
            raise bad_request(f"At most one of {path} may be primary.")
        return cleaned
    if attr.get("type") == "complex":
        if not isinstance(value, dict):
            raise bad_request(f"{path} must be an object.")
        out = {}
        for key, sub_value in value.items():
            sub = sub_attribute(attr, key)
            if sub is None or sub_value is None:
                continue
            out[sub["name"]] = clean_scalar(sub, sub_value, f"{path}.{sub['name']}")
        return out
    return clean_scalar(attr, value, path)


def clean_resource(body: dict, schema_id: str, *, skip: tuple[str, ...] = ()) -> dict:
    """The writable attributes of ``body`` under canonical names, cleaned. Read-only, write-only,
    unknown attributes and those in ``skip`` (handled by the caller) are left out."""
    attrs = attributes_of(schema_id)
    out: dict = {}
    extension_key = ENTERPRISE.lower() if schema_id == USER else None
    for key, value in body.items():
        if not isinstance(key, str):
            continue
        lower = key.lower()
        if extension_key and lower == extension_key:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise bad_request(f"{ENTERPRISE} must be an object.")
            ext = clean_resource(value, ENTERPRISE)
            if ext:
                out[ENTERPRISE] = ext
            continue
        if extension_key and lower.startswith(extension_key + ":"):
            # Some clients flatten extension attributes ("urn:…:User:department": "x").
            name = key[len(ENTERPRISE) + 1 :]
            ext = clean_resource({name: value}, ENTERPRISE)
            if ext:
                out.setdefault(ENTERPRISE, {}).update(ext)
            continue
        if lower.startswith(schema_id.lower() + ":"):
            lower = lower[len(schema_id) + 1 :]
        attr = attrs.get(lower)
        if attr is None or attr["name"] in skip or value is None:
            continue
        if attr.get("mutability") in ("readOnly", "writeOnly"):
            continue
        out[attr["name"]] = clean_value(attr, value, attr["name"])
    return out


def check_schemas(body: dict, expected: str) -> None:
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise bad_request(f'"schemas" must be a list that includes "{expected}".', "invalidSyntax")
    if expected.lower() not in {s.lower() for s in schemas}:
        raise bad_request(f'"schemas" must include "{expected}".', "invalidSyntax")
