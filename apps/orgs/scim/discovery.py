"""Discovery documents (RFC 7644 §4): ServiceProviderConfig, Schemas and ResourceTypes."""

from __future__ import annotations

import copy

from apps.orgs.scim.schema import (
    ENTERPRISE,
    GROUP,
    LIST_RESPONSE,
    MAX_RESULTS,
    RESOURCE_TYPE,
    SCHEMAS,
    SERVICE_PROVIDER_CONFIG,
    USER,
)

DOCS_PATH = "/docs/scim"


def list_of(resources: list[dict]) -> dict:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def service_provider_config(base: str) -> dict:
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "documentationUri": base.removesuffix("/scim/v2/") + DOCS_PATH,
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "The organisation's SCIM token (plz_…) from the admin console, as a Bearer token.",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "documentationUri": base.removesuffix("/scim/v2/") + DOCS_PATH,
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}ServiceProviderConfig"},
    }


def schemas(base: str) -> list[dict]:
    out = []
    for schema_id in sorted(SCHEMAS):
        doc = copy.deepcopy(SCHEMAS[schema_id])
        doc["schemas"] = ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
        doc["meta"] = {"resourceType": "Schema", "location": f"{base}Schemas/{schema_id}"}
        out.append(doc)
    return out


def resource_types(base: str) -> list[dict]:
    return [
        {
            "schemas": [RESOURCE_TYPE],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A group of members; may give its members a role and a workspace.",
            "schema": GROUP,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": f"{base}ResourceTypes/Group"},
        },
        {
            "schemas": [RESOURCE_TYPE],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A member of the organisation.",
            "schema": USER,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": f"{base}ResourceTypes/User"},
        },
    ]
