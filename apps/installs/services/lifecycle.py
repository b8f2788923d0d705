"""Installing, configuring and uninstalling an extension in an organisation."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from apps.audit.services import audit_record
from apps.audit.services import diff as audit_diff
from apps.core import clock
from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.extensions.models import Extension, ExtensionVersion
from apps.installs.config import (
    config_masked,
    config_schema,
    config_validate,
    nested_secrets_changed,
    secrets_decrypt,
    secrets_encrypt,
)
from apps.installs.models import (
    CleanupReport,
    HistoryAction,
    Installation,
    InstallationStatus,
    InstallationVersion,
)
from apps.installs.rules import install_refusal
from apps.installs.selectors import installable_version, not_installable_reason, version_installable
from apps.installs.services._common import (
    acting_user,
    actor_id,
    clean_channel,
    clean_scopes,
    clean_update_policy,
    ensure_live,
    lock,
    notify,
    precompile_later,
)
from apps.orgs.models import Organization, Role, ServiceAccount
from apps.orgs.policy import Principal, authorize

log = logging.getLogger(__name__)


def _consent_message(version: ExtensionVersion, granted: list[str]) -> str:
    asked = set(version.scopes or [])
    missing, extra = sorted(asked - set(granted)), sorted(set(granted) - asked)
    parts = []
    if missing:
        parts.append(f"not granted: {', '.join(missing)}")
    if extra:
        parts.append(f"not asked for: {', '.join(extra)}")
    return (
        f"Consent must name exactly the scopes {version.extension.key} {version.version} asks for ({'; '.join(parts)})."
    )[:1000]


def refusal_error(refusal) -> PermissionDenied:
    return PermissionDenied(refusal.message, code=refusal.code, param="extension_id")


def _service_account_create(installation: Installation) -> ServiceAccount:
    """The managed account the installation's API tokens belong to (see services.tokens)."""
    account = ServiceAccount.objects.create(
        org_id=installation.org_id,
        name=f"{installation.extension.name} (extension)"[:100],
        description=(
            f"Managed by Plaza for the installation {installation.pk} of {installation.extension.key}: "
            "holds the extension's short-lived API tokens. Removed on uninstall."
        )[:500],
        role=Role.ADMIN,
        installation_id=installation.pk,
    )
    audit_record(
        action="service_account.created",
        org_id=installation.org_id,
        target=account,
        changes={"role": Role.ADMIN, "installation": installation.pk},
    )
    return account


def installation_create(
    *,
    principal: Principal,
    org: Organization,
    extension: Extension,
    granted_scopes: list[str],
    channel: str = "stable",
    version: ExtensionVersion | None = None,
    config: dict | None = None,
    update_policy: str = "auto",
) -> Installation:
    """Install ``extension`` into ``org`` in one transaction: the installation, its consent grant,
    its configuration (defaults applied, secrets encrypted), its first history row and an audit
    entry; ``installation_changed`` (``created``) follows after commit.

    ``version`` defaults to what ``channel`` serves. ``granted_scopes`` must be exactly the
    version's scopes (the admin consented to each). Refusals: ``consent_mismatch`` (400),
    ``version_not_installable`` (409), an organisation rule (403 with the rule's code),
    ``already_installed`` (409), ``config_invalid`` (400)."""
    authorize(principal, "installation.create", org)
    channel = clean_channel(channel)
    update_policy = clean_update_policy(update_policy)
    if version is None:
        version = installable_version(org, extension, channel)
        if version is None:
            raise Conflict(
                f"The {channel} channel of {extension.key} serves no version this organisation can install.",
                code="version_not_installable",
                param="channel",
            )
    elif version.extension_id != extension.pk:
        raise ValidationFailed(f"That version is not a version of {extension.key}.", param="version_id")
    version.extension = extension
    if not version_installable(org, version):
        raise Conflict(
            not_installable_reason(org, version),
            code="version_not_installable",
            param="version_id",
        )
    granted = clean_scopes(granted_scopes)
    if set(granted) != set(version.scopes or []):
        raise ValidationFailed(_consent_message(version, granted), code="consent_mismatch", param="granted_scopes")
    refusal = install_refusal(org, extension, version.scopes or [])
    if refusal is not None:
        raise refusal_error(refusal)
    public, secrets = config_validate(config_schema(version), {} if config is None else config)
    live = Installation.objects.filter(org=org, extension=extension).exclude(status=InstallationStatus.UNINSTALLED)
    with transaction.atomic():
        if live.exists():
            raise Conflict(f"{extension.key} is already installed in this organisation.", code="already_installed")
        now = clock.now()
        try:
            with transaction.atomic():
                installation = Installation.objects.create(
                    org=org,
                    extension=extension,
                    version=version,
                    channel=channel,
                    update_policy=update_policy,
                    granted_scopes=granted,
                    config=public,
                    config_secrets_encrypted=secrets_encrypt(secrets),
                    installed_at=now,
                    installed_by=acting_user(principal),
                    updated_at=now,
                )
        except IntegrityError:  # a concurrent install of the same extension won
            raise Conflict(
                f"{extension.key} is already installed in this organisation.", code="already_installed"
            ) from None
        InstallationVersion.objects.create(
            installation=installation,
            version=version,
            action=HistoryAction.INSTALL,
            granted_scopes=granted,
            at=now,
            by=acting_user(principal),
        )
        _service_account_create(installation)
        audit_record(
            action="installation.created",
            org_id=org.pk,
            target=installation,
            changes={
                "extension": extension.key,
                "version": version.version,
                "channel": channel,
                "update_policy": update_policy,
                "granted_scopes": granted,
                "config": sorted(public),
                "secrets": sorted(secrets),
            },
        )
        notify(installation, "created", actor_id(principal))
        precompile_later(version.pk)
    return installation


def installation_configure(*, principal: Principal, installation: Installation, config: dict) -> Installation:
    """Save the configuration form: validated against the installed version's config schema,
    defaults applied; a secret left out or empty keeps its stored value. Audited with the fields
    that changed (secret values never appear)."""
    authorize(principal, "installation.update", installation)
    with transaction.atomic():
        locked = lock(installation)
        ensure_live(locked)
        stored = secrets_decrypt(locked.config_secrets_encrypted)
        schema = config_schema(locked.version)
        before = locked.config or {}
        public, secrets = config_validate(schema, config, stored_secrets=stored, stored_config=before)
        changed_secrets = sorted(
            {k for k in set(stored) | set(secrets) if stored.get(k) != secrets.get(k)}
            | set(nested_secrets_changed(schema, before, public))
        )
        # Values only as reads show them: a (legacy) nested writeOnly value never enters the audit log.
        changes = audit_diff(config_masked(schema, before), config_masked(schema, public))
        removed = sorted(set(before) - set(public))
        if not changes and not changed_secrets and not removed:
            return locked
        locked.config = public
        locked.config_secrets_encrypted = secrets_encrypt(secrets)
        locked.updated_at = clock.now()
        locked.save(update_fields=["config", "config_secrets_encrypted", "updated_at"])
        audit_record(
            action="installation.configured",
            org_id=locked.org_id,
            target=locked,
            changes={"config": changes, "removed": removed, "secrets_changed": changed_secrets},
        )
        notify(locked, "configured", actor_id(principal))
    return locked


# --- uninstall --------------------------------------------------------------------------------------
def _counts(value) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    if not all(isinstance(k, str) and isinstance(n, int) and not isinstance(n, bool) for k, n in value.items()):
        return None
    return dict(value)


def _run_cleaner(path: str, installation_id: str) -> dict:
    """One cleaner's answer as a report item; a failure is recorded, never raised. Each runs in a
    savepoint, so a cleaner that fails half-way leaves nothing half-removed."""
    item = {"cleaner": path, "label": path.rsplit(".", 1)[-1], "removed": {},
            "remaining": {}, "error": ""}  # fmt: skip
    try:
        cleaner = import_string(path)
        with transaction.atomic():
            result = cleaner(installation_id)
    except Exception as exc:  # a broken cleaner must not stop the others, nor the uninstall
        log.exception("cleaner %s failed for %s", path, installation_id)
        item["error"] = f"{type(exc).__name__}: {exc}"[:500]
        return item
    removed = _counts(result.get("removed")) if isinstance(result, dict) else None
    remaining = _counts(result.get("remaining")) if isinstance(result, dict) else None
    if removed is None or remaining is None:
        item["error"] = "The cleaner did not answer with removed and remaining counts."
        return item
    label = result.get("label")
    item.update(label=str(label)[:200] if label else item["label"], removed=removed, remaining=remaining)
    return item


def installation_uninstall(*, principal: Principal, installation: Installation) -> CleanupReport:
    """Uninstall: mark the installation uninstalled, run every cleaner of
    ``PLAZA_INSTALL_CLEANERS`` (its configuration and grants, its service account and tokens, its
    stored data, …) and store their answers as the cleanup report. The report is ``verified`` only
    when every cleaner ran and found nothing of the installation remaining."""
    authorize(principal, "installation.delete", installation)
    with transaction.atomic():
        locked = lock(installation)
        ensure_live(locked)
        now = clock.now()
        before = locked.status
        locked.status = InstallationStatus.UNINSTALLED
        locked.status_reason = ""
        locked.uninstalled_at = now
        locked.uninstalled_by = acting_user(principal)
        locked.updated_at = now
        locked.save(update_fields=["status", "status_reason", "uninstalled_at", "uninstalled_by", "updated_at"])
        items = [_run_cleaner(path, locked.pk) for path in settings.PLAZA_INSTALL_CLEANERS]
        verified = all(not item["error"] and not any(item["remaining"].values()) for item in items)
        report = CleanupReport.objects.create(
            installation=locked, org_id=locked.org_id, items=items, verified=verified, created_by=acting_user(principal)
        )
        locked.refresh_from_db()
        totals: dict[str, int] = {}
        for item in items:
            for kind, n in item["removed"].items():
                totals[kind] = totals.get(kind, 0) + n
        audit_record(
            action="installation.uninstalled",
            org_id=locked.org_id,
            target=locked,
            changes={
                "extension": locked.extension.key,
                "status": [before, locked.status],
                "removed": totals,
                "verified": verified,
                "errors": [item["cleaner"] for item in items if item["error"]],
            },
        )
        report.installation = locked
        notify(locked, "uninstalled", actor_id(principal))
    return report
