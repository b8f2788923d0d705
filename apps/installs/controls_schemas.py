"""Request and response bodies of the install controls API (rules, mode, requests, sandbox)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema


class InstallRuleIn(Schema):
    kind: Literal["extension", "publisher", "scope"] = Field(
        ..., description="What the rule is about: an extension, every extension of a publisher, or a scope."
    )
    effect: Literal["allow", "deny"] = Field(..., description="allow | deny (scope rules deny only). Deny wins.")
    value: str = Field(
        ...,
        max_length=200,
        description="extension: its id (ext_…) or key (publisher.name); publisher: the organisation's id (org_…) "
        "or slug; scope: a scope or a prefix pattern ending in '*' (http:fetch:*, events:read:order.*).",
    )
    note: str = Field("", max_length=500, description="Why, for the other admins.")


class InstallRuleOut(Schema):
    id: str
    org_id: str
    kind: str
    effect: str
    value: str = Field(..., description="As stored: an extension id, an organisation id, or a scope pattern.")
    target: str = Field("", description="What the value names, in words.")
    note: str
    created_at: dt.datetime
    blocks: list[str] = Field(
        default_factory=list, description="Ids of the organisation's live installations this rule refuses now."
    )


class InstallPolicyOut(Schema):
    mode: str = Field(..., description="open | allowlist (only extensions or publishers with an allow rule)")
    requests_enabled: bool = Field(..., description="Whether members may ask admins for extensions.")
    updated_at: dt.datetime | None = None
    blocked_installations: list[str] = Field(
        default_factory=list, description="Ids of the live installations the organisation's rules block now."
    )


class InstallPolicyPatchIn(Schema):
    mode: Literal["open", "allowlist"] | None = None
    requests_enabled: bool | None = None


class InstallRequestIn(Schema):
    extension_id: str | None = Field(None, max_length=40, description="The extension's id (ext_…)…")
    extension_key: str | None = Field(None, max_length=125, description="…or its key (publisher.name).")
    reason: str = Field("", max_length=1000, description="Why you need it, for the admins.")


class PersonOut(Schema):
    id: str
    email: str


class InstallRequestOut(Schema):
    id: str
    org_id: str
    extension_id: str
    extension_key: str
    extension_name: str
    requested_by: PersonOut
    reason: str
    status: str = Field(..., description="pending | approved | denied | withdrawn")
    created_at: dt.datetime
    decided_at: dt.datetime | None = None
    decided_by: PersonOut | None = None
    decision_note: str

    @staticmethod
    def resolve_extension_key(obj) -> str:
        return obj.extension.key

    @staticmethod
    def resolve_extension_name(obj) -> str:
        return obj.extension.name


class InstallRequestDecisionIn(Schema):
    decision: Literal["approve", "deny"]
    note: str = Field("", max_length=1000, description="Shown to the member who asked (and e-mailed to them).")


class SandboxOut(Schema):
    id: str
    slug: str
    name: str
    sandbox_of: str = Field(..., description="The publisher organisation's id.")
    created_at: dt.datetime
