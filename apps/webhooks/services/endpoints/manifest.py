"""The manifest's hooks with a ``url`` as ``source=manifest`` endpoints: production follows what
the channels serve, sandbox follows the version installed in the publisher's sandbox tenant.
Importing this module connects its receivers (``apps/webhooks/receivers.py`` imports the package)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import receiver

from apps.core import clock
from apps.core.errors import ValidationFailed
from apps.extensions.models import Channel, ChannelRelease, Extension, VersionStatus
from apps.extensions.signals import channel_released
from apps.installs.signals import installation_changed
from apps.webhooks.models import (
    Endpoint,
    EndpointSource,
    EndpointStatus,
    Environment,
)
from apps.webhooks.services.endpoints._common import (
    MANIFEST_REMOVED,
    MAX_DESCRIPTION,
    MAX_URL_LENGTH,
    _audit,
    _secret_add,
)
from apps.webhooks.services.endpoints.checks import endpoint_url_clean

log = logging.getLogger(__name__)


# --- the manifest's hooks ------------------------------------------------------------------------
def manifest_hooks(manifests: list[dict]) -> dict[str, list[str]]:
    """{url: sorted event types} of the hooks with a ``url`` in ``manifests`` (merged)."""
    out: dict[str, set[str]] = {}
    for manifest in manifests:
        hooks = manifest.get("hooks") if isinstance(manifest, dict) else None
        for hook in hooks if isinstance(hooks, list) else ():
            if isinstance(hook, dict) and isinstance(hook.get("url"), str) and isinstance(hook.get("event"), str):
                out.setdefault(hook["url"].strip(), set()).add(hook["event"])
    return {url: sorted(types) for url, types in out.items()}


def production_manifests(extension: Extension) -> tuple[list[dict], str]:
    """The manifests production installations run: what each channel serves now (its newest
    release, unless yanked), and a label naming those versions. One query per channel."""
    manifests, labels = [], []
    for channel in Channel.values:
        release = (
            ChannelRelease.objects.filter(extension=extension, channel=channel)
            .select_related("version")
            .order_by("-promoted_at", "-id")
            .first()
        )
        if release is None or release.version.status == VersionStatus.YANKED:
            continue
        manifests.append(release.version.manifest)
        labels.append(f"{channel} {release.version.version}")
    return manifests, ", ".join(labels)


@transaction.atomic
def manifest_endpoints_sync(
    *, extension: Extension, environment: str, manifests: list[dict], label: str = ""
) -> list[Endpoint]:
    """Make the extension's ``source=manifest`` endpoints of ``environment`` match the hooks with a
    ``url`` in ``manifests``: new URLs become endpoints (with a fresh secret — rotate it in the
    portal to see one), existing ones take the new event types and come back if they had been
    removed, and URLs no longer declared are disabled (``Removed from the manifest``), kept for
    their history. A URL the save-time check refuses becomes a disabled endpoint saying why.
    Endpoints the publisher added by hand are never touched. Returns the endpoints changed."""
    wanted = manifest_hooks(manifests)
    Extension.objects.select_for_update().filter(pk=extension.pk).values_list("pk", flat=True).get()
    existing = {
        e.url: e
        for e in Endpoint.objects.filter(
            extension=extension, environment=environment, source=EndpointSource.MANIFEST, deleted_at__isnull=True
        )
    }
    now = clock.now()
    changed: list[Endpoint] = []
    for url, types in wanted.items():
        refusal = ""
        try:
            endpoint_url_clean(url)
        except ValidationFailed as exc:
            refusal = exc.message
        endpoint = existing.get(url)
        if endpoint is None:
            endpoint = Endpoint.objects.create(
                extension=extension,
                environment=environment,
                url=url[:MAX_URL_LENGTH],
                event_types=types,
                source=EndpointSource.MANIFEST,
                description=f"Declared in the manifest ({label})"[:MAX_DESCRIPTION] if label else "",
                status=EndpointStatus.DISABLED if refusal else EndpointStatus.ENABLED,
                disabled_reason=refusal[:300],
                disabled_at=now if refusal else None,
                created_at=now,
                updated_at=now,
            )
            _secret_add(endpoint)
            endpoint.extension = extension
            _audit("webhook_endpoint.created", endpoint, {"source": "manifest", "event_types": types, "label": label})
            changed.append(endpoint)
            continue
        fields = []
        if list(endpoint.event_types or []) != types:
            endpoint.event_types = types
            fields.append("event_types")
        if endpoint.status == EndpointStatus.DISABLED and endpoint.disabled_reason.startswith(MANIFEST_REMOVED):
            if refusal:  # back in the manifest, but still a URL Plaza does not send to
                endpoint.disabled_reason, endpoint.disabled_at = refusal[:300], now
            else:
                endpoint.status, endpoint.disabled_reason, endpoint.disabled_at = EndpointStatus.ENABLED, "", None
            fields += ["status", "disabled_reason", "disabled_at"]
        if fields:
            endpoint.updated_at = now
            endpoint.save(update_fields=[*fields, "updated_at"])
            endpoint.extension = extension
            _audit("webhook_endpoint.synced", endpoint, {"fields": fields, "event_types": types, "label": label})
            changed.append(endpoint)
    for url, endpoint in existing.items():
        if url in wanted or endpoint.disabled_reason.startswith(MANIFEST_REMOVED):
            continue
        endpoint.status = EndpointStatus.DISABLED
        endpoint.disabled_reason = f"{MANIFEST_REMOVED} ({label})"[:300] if label else MANIFEST_REMOVED
        endpoint.disabled_at = endpoint.updated_at = now
        endpoint.save(update_fields=["status", "disabled_reason", "disabled_at", "updated_at"])
        endpoint.extension = extension
        _audit("webhook_endpoint.disabled", endpoint, {"reason": endpoint.disabled_reason})
        changed.append(endpoint)
    return changed


def manifest_sync_for_release(release: ChannelRelease) -> list[Endpoint]:
    """Production endpoints follow what every channel serves now (a beta release adds its hooks
    without dropping the stable channel's)."""
    extension = release.extension
    manifests, label = production_manifests(extension)
    return manifest_endpoints_sync(
        extension=extension, environment=Environment.PRODUCTION, manifests=manifests, label=label
    )


def manifest_sync_for_sandbox(installation) -> list[Endpoint]:
    """Sandbox endpoints follow the version installed in the publisher's sandbox tenant, which may
    be a draft: that is the only tenant where such a version runs."""
    org = installation.org
    extension = installation.extension
    if not org.sandbox_of_id or org.sandbox_of_id != extension.org_id:
        return []
    if installation.status == "uninstalled":
        manifests, label = [], "uninstalled from the sandbox"
    else:
        version = installation.version
        manifests, label = [version.manifest], f"sandbox {version.version}"
    return manifest_endpoints_sync(
        extension=extension, environment=Environment.SANDBOX, manifests=manifests, label=label
    )


# --- receivers (connected when this module is imported: apps/webhooks/receivers.py imports it) ----
@receiver(channel_released, sender=ChannelRelease, dispatch_uid="webhooks.manifest_endpoints_on_release")
def manifest_endpoints_on_release(sender, release, **kwargs) -> None:
    """A version was released: production endpoints follow the manifests the channels serve."""
    try:
        manifest_sync_for_release(release)
    except Exception:  # a receiver must not raise; the next release syncs again
        log.exception("manifest endpoint sync failed for %s", release.pk)


@receiver(installation_changed, dispatch_uid="webhooks.manifest_endpoints_on_sandbox_install")
def manifest_endpoints_on_sandbox_install(sender, installation, action, **kwargs) -> None:
    """A version was installed, updated or removed in the publisher's sandbox tenant: sandbox
    endpoints follow it."""
    if action not in ("created", "updated", "rolled_back", "uninstalled"):
        return
    try:
        manifest_sync_for_sandbox(installation)
    except Exception:
        log.exception("sandbox endpoint sync failed for %s", installation.pk)
