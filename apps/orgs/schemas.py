from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class OrgOut(Schema):
    id: str
    name: str
    slug: str
    created_at: dt.datetime


class OrgCreateIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    slug: str | None = Field(None, max_length=60)


class OrgUpdateIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)


class PolicyOut(Schema):
    require_mfa: bool
    max_session_age_minutes: int | None
    idle_timeout_minutes: int | None
    ip_allowlist: list[str]
    sso_required: bool


class PolicyIn(Schema):
    require_mfa: bool = False
    max_session_age_minutes: int | None = Field(None, ge=5, le=129600)
    idle_timeout_minutes: int | None = Field(
        None, ge=5, le=1440, description="Sign a session out after this many minutes without a request."
    )
    ip_allowlist: list[str] = Field(default_factory=list, max_length=100)
    sso_required: bool = Field(
        False, description="Members must sign in through SSO (409 sso_not_configured without an enabled connection)."
    )


class WorkspaceOut(Schema):
    id: str
    name: str
    slug: str
    description: str
    created_at: dt.datetime


class WorkspaceCreateIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    slug: str | None = Field(None, max_length=60)
    description: str = Field("", max_length=500)


class WorkspaceUpdateIn(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)


class MemberUser(Schema):
    id: str
    email: str
    name: str


class MemberOut(Schema):
    id: str
    role: str
    user: MemberUser
    created_at: dt.datetime


class MemberUpdateIn(Schema):
    role: str


class InvitationOut(Schema):
    id: str
    email: str
    role: str
    status: str
    created_at: dt.datetime
    expires_at: dt.datetime


class InvitationCreateIn(Schema):
    email: str = Field(..., max_length=254)
    role: str = "member"


class DomainOut(Schema):
    id: str
    name: str
    status: str
    txt_record_name: str
    txt_record_value: str
    verified_at: dt.datetime | None
    last_checked_at: dt.datetime | None
    last_check_error: str
    created_at: dt.datetime


class DomainCreateIn(Schema):
    name: str = Field(..., max_length=253)


class ServiceAccountOut(Schema):
    id: str
    name: str
    description: str
    role: str
    disabled: bool
    created_at: dt.datetime
    installation_id: str | None = Field(
        None, description="Set when the account belongs to an installation (managed by Plaza, not by admins)."
    )

    @staticmethod
    def resolve_installation_id(obj) -> str | None:
        return obj.installation_id or None

    @staticmethod
    def resolve_disabled(obj) -> bool:
        return obj.disabled_at is not None


class ServiceAccountCreateIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    description: str = Field("", max_length=500)
    role: str = "developer"


class TokenOut(Schema):
    id: str
    name: str
    service_account_id: str
    scopes: list[str]
    last_four: str
    status: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenCreateIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    scopes: list[str] = Field(..., min_length=1, max_length=20)
    expires_in_days: int | None = Field(90, ge=1, le=366)


class TokenCreatedOut(TokenOut):
    token: str = Field(..., description="The secret. Shown once; Plaza keeps only its hash.")
