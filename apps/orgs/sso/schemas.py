from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class SsoConnectionOut(Schema):
    id: str = Field(..., description="The connection's id (sso_…).")
    name: str = Field(..., description="Shown on the sign-in button and in the console.")
    issuer: str = Field(
        ..., description="The identity provider's issuer URL (discovery at <issuer>/.well-known/openid-configuration)."
    )
    client_id: str = Field(..., description="The client id registered at the identity provider.")
    client_secret_last_four: str = Field(
        ..., description="The last four characters of the stored client secret; the secret itself is never returned."
    )
    scopes: str = Field(..., description="Space-separated scopes requested at sign-in; always includes openid.")
    default_role: str = Field(..., description="The role of people who join just in time through single sign-on.")
    enabled: bool = Field(
        ..., description="Whether sign-ins for the organisation's verified domains go to this provider."
    )
    provider_id: str = Field(..., description="The connection's provider id in Plaza's sign-in URLs (org-<org id>).")
    redirect_uri: str = Field(..., description="The redirect (callback) URI to register at the identity provider.")
    routed_domains: list[str] = Field(
        ..., description="The organisation's verified domains, whose people are sent here."
    )
    last_tested_at: dt.datetime | None = Field(None, description="When the connection was last tested.")
    last_test_ok: bool | None = Field(
        None, description="Whether that test passed (null: never tested since the last change)."
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class SsoConnectionIn(Schema):
    name: str = Field("Single sign-on", max_length=100, description="Shown on the sign-in button and in the console.")
    issuer: str = Field(..., max_length=500, description="The issuer URL, https:// (e.g. https://example.okta.com).")
    client_id: str = Field(..., min_length=1, max_length=255, description="The client id registered at the IdP.")
    client_secret: str | None = Field(
        None,
        max_length=1000,
        description="The client secret. Write-only: required when creating, omit it to keep the stored one.",
    )
    scopes: str = Field("openid email profile", max_length=255, description="Space-separated; must include openid.")
    default_role: str = Field(
        "member", description="Role for just-in-time members: admin, developer, billing or member."
    )
    enabled: bool | None = Field(
        None,
        description="Turn routing on (needs a passed test, 409 sso_test_required) or off (409 sso_required while "
        "the organisation requires SSO); omit to leave as it is.",
    )


class SsoCheckOut(Schema):
    name: str = Field(..., description="discovery, issuer, endpoints, code_flow, pkce, jwks, scopes or client_secret.")
    ok: bool
    detail: str = Field(..., description="What was found, or what to fix.")


class SsoTestOut(Schema):
    ok: bool = Field(..., description="Whether every check passed.")
    tested_at: dt.datetime
    checks: list[SsoCheckOut]
