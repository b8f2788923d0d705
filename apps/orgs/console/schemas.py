from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class GroupMemberOut(Schema):
    id: str  # the membership id
    email: str = Field(..., alias="user.email")
    name: str = Field(..., alias="user.name")
    role: str
    source: str


class GroupOut(Schema):
    id: str
    display_name: str
    external_id: str
    source: str = Field(..., description="manual (made in Plaza) or scim (owned by the identity provider: read-only)")
    role: str = Field(..., description="The role the group gives provisioned members; empty for none")
    workspace_id: str | None
    member_count: int
    read_only: bool = Field(
        ...,
        description="True for SCIM groups: their name and members come from the identity provider; "
        "only role and workspace are set in Plaza",
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class GroupDetailOut(GroupOut):
    members: list[GroupMemberOut]


class GroupCreateIn(Schema):
    display_name: str = Field(..., min_length=1, max_length=255)
    role: str = Field("", max_length=20, description="member, billing, developer or admin (never owner); empty: none")
    workspace_id: str | None = Field(None, max_length=40)
    member_ids: list[str] = Field(default_factory=list, max_length=1000)


class GroupUpdateIn(Schema):
    """Only the fields sent change; ``workspace_id: null`` removes the workspace."""

    display_name: str | None = Field(None, min_length=1, max_length=255)
    role: str | None = Field(None, max_length=20)
    workspace_id: str | None = Field(None, max_length=40)
