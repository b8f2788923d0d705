"""Reads of the extension registry. Tenant scoping and authorisation happen here and only here."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.core.ids import is_valid_id
from apps.extensions.models import ChannelRelease, Extension, ExtensionVersion, SigningKey
from apps.orgs.models import Organization
from apps.orgs.policy import Principal, authorize
from apps.orgs.selectors import get_object_for_principal


def extensions_of(org: Organization) -> QuerySet[Extension]:
    return Extension.objects.filter(org=org, deleted_at__isnull=True)


def versions_of(extension: Extension) -> QuerySet[ExtensionVersion]:
    return ExtensionVersion.objects.filter(extension=extension).select_related("signing_key", "previous")


def version_summaries_of(extension: Extension) -> QuerySet[ExtensionVersion]:
    """For lists: manifests (up to 256 KiB each) stay in the database."""
    return versions_of(extension).defer("manifest", "previous__manifest")


def releases_of(extension: Extension) -> QuerySet[ChannelRelease]:
    return ChannelRelease.objects.filter(extension=extension).select_related("version")


def signing_keys_of(org: Organization) -> QuerySet[SigningKey]:
    return SigningKey.objects.filter(org=org)


def get_extension_for_principal(principal: Principal, org: Organization, extension_id: str, action: str) -> Extension:
    return get_object_for_principal(principal, Extension, org, extension_id, action, queryset=extensions_of(org))


def get_signing_key_for_principal(principal: Principal, org: Organization, key_id: str, action: str) -> SigningKey:
    return get_object_for_principal(principal, SigningKey, org, key_id, action)


def get_version_for_principal(
    principal: Principal, extension: Extension, version_id: str, action: str
) -> ExtensionVersion:
    """A version of ``extension`` (already resolved for this principal)."""
    if not is_valid_id(version_id, "ver"):
        raise NotFound("No such extension version.")
    version = versions_of(extension).filter(pk=version_id).first()
    if version is None:
        raise NotFound("No such extension version.")
    version.extension = extension
    authorize(principal, action, version)
    return version
