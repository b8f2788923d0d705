"""Request and response bodies of the installations API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Field, Schema

from apps.installs.config import config_public
from apps.installs.selectors import effective_scopes

_SCOPES = Field(..., max_length=100, description="Exactly the scopes the version asks for: the admin's consent.")


class InstallationCreateIn(Schema):
    extension_id: str = Field(..., max_length=40, description="The extension to install (ext_…).")
    granted_scopes: list[str] = _SCOPES
    channel: str = Field("stable", max_length=10, description="stable | beta | canary")
    version_id: str | None = Field(
        None, max_length=40, description="A specific version (ver_…); by default what the channel serves."
    )
    config: Any = Field(None, description="Values for the manifest's config schema (defaults fill the rest).")
    update_policy: str = Field("auto", max_length=10, description="auto | pinned")


class InstallationSettingsIn(Schema):
    channel: str | None = Field(None, max_length=10, description="stable | beta | canary")
    update_policy: str | None = Field(None, max_length=10, description="auto | pinned")


class ConfigIn(Schema):
    config: Any = Field(
        ..., description='The whole configuration. A secret left out, empty or sent as {"set": …} keeps its value.'
    )


class UpdateIn(Schema):
    version_id: str | None = Field(
        None, max_length=40, description="The version to move to; by default the offered one (GET …/update)."
    )
    granted_scopes: list[str] | None = Field(
        None, max_length=100, description="Needed when the version adds or escalates scopes: exactly its scopes."
    )


class RollbackIn(Schema):
    version_id: str = Field(..., max_length=40, description="One of the installation's rollback candidates.")


class ScopeLineOut(Schema):
    scope: str
    describe: str
    reaches: str


class ScopeChangeOut(Schema):
    scope: str
    change: str = Field(..., description="added | removed | escalation")
    replaces: str | None = None
    describe: str = ""


class VersionRefOut(Schema):
    id: str
    version: str
    status: str


class InstallationSummaryOut(Schema):
    """An installation in a list (its configuration is on the installation itself)."""

    id: str
    org_id: str
    extension_id: str
    extension_key: str
    extension_name: str
    version: VersionRefOut
    channel: str
    update_policy: str = Field(..., description="auto | pinned")
    status: str = Field(..., description="active | blocked | uninstalled")
    status_reason: str
    granted_scopes: list[str]
    pending_version: VersionRefOut | None = Field(None, description="An update waiting for the admin.")
    installed_at: dt.datetime
    updated_at: dt.datetime
    uninstalled_at: dt.datetime | None

    @staticmethod
    def resolve_extension_key(obj) -> str:
        return obj.extension.key

    @staticmethod
    def resolve_extension_name(obj) -> str:
        return obj.extension.name


class InstallationOut(InstallationSummaryOut):
    effective_scopes: list[str] = Field(..., description="What it may use now: granted ∩ the version's scopes.")
    scopes: list[ScopeLineOut] = Field(..., description="The effective scopes in plain words.")
    config: dict = Field(..., description='Configuration values; each secret shows only {"set": true|false}.')

    @staticmethod
    def resolve_effective_scopes(obj) -> list[str]:
        return effective_scopes(obj)

    @staticmethod
    def resolve_scopes(obj) -> list[dict]:
        from apps.installs.selectors import scope_lines

        return scope_lines(effective_scopes(obj))

    @staticmethod
    def resolve_config(obj) -> dict:
        return config_public(obj)


class UpdateOfferOut(Schema):
    version: VersionRefOut
    needs_consent: bool = Field(
        ..., description="The version adds or escalates scopes: POST …/update with granted_scopes."
    )
    changes: list[ScopeChangeOut]
    scopes: list[ScopeLineOut] = Field(..., description="Every scope the version asks for, in plain words.")


class HistoryOut(Schema):
    id: str
    action: str = Field(..., description="install | update | rollback")
    version: VersionRefOut
    from_version: VersionRefOut | None
    granted_scopes: list[str]
    at: dt.datetime
    by: str | None = Field(None, description="The person's e-mail; null for the platform (automatic updates).")

    @staticmethod
    def resolve_by(obj) -> str | None:
        return obj.by.email if obj.by_id else None


class CleanupItemOut(Schema):
    cleaner: str
    label: str
    removed: dict[str, int]
    remaining: dict[str, int]
    error: str


class CleanupReportOut(Schema):
    id: str
    installation_id: str
    org_id: str
    verified: bool = Field(..., description="Every cleaner ran and found nothing of the installation remaining.")
    items: list[CleanupItemOut]
    created_at: dt.datetime


class PublisherInstallationOut(Schema):
    """An installation of the publisher's extension, as the publisher sees it."""

    id: str
    org_id: str
    org_name: str
    version: VersionRefOut
    channel: str
    update_policy: str
    status: str
    installed_at: dt.datetime
    sandbox: bool = Field(..., description="Installed in the publisher's own sandbox tenant.")

    @staticmethod
    def resolve_org_name(obj) -> str:
        return obj.org.name

    @staticmethod
    def resolve_sandbox(obj) -> bool:
        return bool(obj.org.sandbox_of_id)


class InstallationTokenOut(Schema):
    token: str = Field(..., description="The secret (plz_…), shown once.")
    token_id: str
    installation_id: str
    org_id: str = Field(..., description="The customer organisation the token acts in.")
    scopes: list[str]
    expires_at: dt.datetime
