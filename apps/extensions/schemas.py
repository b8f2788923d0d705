from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class ExtensionOut(Schema):
    id: str
    key: str = Field(..., description="The immutable extension id, publisher.name.")
    name: str
    summary: str
    created_at: dt.datetime


class ExtensionCreateIn(Schema):
    name: str = Field(..., min_length=1, max_length=64, description="Lowercase; the id becomes <org slug>.<name>.")
    display_name: str = Field("", max_length=60)
    summary: str = Field("", max_length=140)


class ScopeChangeOut(Schema):
    scope: str
    change: str = Field(..., description="added | removed | escalation")
    replaces: str | None


class SigningKeyRef(Schema):
    id: str
    fingerprint: str
    status: str


class VersionSummaryOut(Schema):
    """A version in a list: everything but the manifest (up to 256 KiB each; get the version for it)."""

    id: str
    extension_id: str
    version: str
    channel: str
    status: str
    status_reason: str
    scopes: list[str]
    previous_version: str | None = Field(None, description="The version the scope changes are computed against.")
    scope_changes: list[ScopeChangeOut]
    requires_consent: bool = Field(..., description="True when the scope changes add or escalate a scope.")
    package_sha256: str
    package_size: int
    signing_key: SigningKeyRef
    signature: str
    countersignature: dict | None
    created_at: dt.datetime
    submitted_at: dt.datetime | None

    @staticmethod
    def resolve_previous_version(obj) -> str | None:
        return obj.previous.version if obj.previous_id else None

    @staticmethod
    def resolve_requires_consent(obj) -> bool:
        return any(c.get("change") in ("added", "escalation") for c in obj.scope_changes)


class VersionOut(VersionSummaryOut):
    manifest: dict


class SigningKeyOut(Schema):
    id: str
    name: str
    public_key: str = Field(..., description="base64 of the raw 32-byte ed25519 public key.")
    fingerprint: str
    status: str
    replaced_by_id: str | None
    created_at: dt.datetime
    status_changed_at: dt.datetime | None
    revoke_reason: str
    last_used_at: dt.datetime | None


class SigningKeyCreateIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    public_key: str = Field(
        ..., min_length=1, max_length=2000, description="PEM, OpenSSH 'ssh-ed25519 …' line or base64 of 32 bytes."
    )


class SigningKeyRevokeIn(Schema):
    reason: str = Field("", max_length=500)


class ManifestProblem(Schema):
    path: str
    rule: str
    message: str


class ManifestCheckOut(Schema):
    valid: bool
    errors: list[ManifestProblem]


class PromoteIn(Schema):
    channel: str = Field(..., description="stable | beta | canary")


class ReleaseOut(Schema):
    id: str
    extension_id: str
    channel: str
    version_id: str
    version: str
    promoted_at: dt.datetime

    @staticmethod
    def resolve_version(obj) -> str:
        return obj.version.version
