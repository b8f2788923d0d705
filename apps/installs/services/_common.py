"""Pieces the installs services share: locking, guards, history, notifications after commit."""

from __future__ import annotations

from django.db import transaction

from apps.core import clock
from apps.core.errors import Conflict, ValidationFailed
from apps.extensions.models import Channel, ExtensionVersion
from apps.installs.config import config_migrate, config_schema
from apps.installs.models import Installation, InstallationStatus, InstallationVersion, UpdatePolicy
from apps.installs.signals import installation_changed
from apps.orgs.policy import Principal


def actor_id(principal: Principal | None) -> str:
    """The id ``installation_changed`` names as the actor ("" for the platform)."""
    if principal is None:
        return ""
    if principal.kind == "user":
        return str(principal.user.pk) if principal.user is not None else ""
    return principal.service_account.pk if principal.service_account is not None else ""


def acting_user(principal: Principal | None):
    return principal.user if principal is not None and principal.kind == "user" else None


def clean_channel(channel) -> str:
    if channel not in Channel.values:
        raise ValidationFailed(
            f"The channel is one of {', '.join(Channel.values)}.", code="channel_invalid", param="channel"
        )
    return channel


def clean_update_policy(policy) -> str:
    if policy not in UpdatePolicy.values:
        raise ValidationFailed(
            f"The update policy is one of {', '.join(UpdatePolicy.values)}.",
            code="update_policy_invalid",
            param="update_policy",
        )
    return policy


def clean_scopes(scopes, param: str = "granted_scopes") -> list[str]:
    if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
        raise ValidationFailed("The granted scopes are a list of scope names.", code="consent_mismatch", param=param)
    return sorted(set(scopes))


def lock(installation: Installation) -> Installation:
    """The installation's row, locked until the transaction ends: two admins (or an admin and an
    automatic update) changing one installation take turns, and the second sees the first's result.

    The lock is taken without joins, then the row is read with its relations: on PostgreSQL a
    locking query that joins the version would drop a row whose version the lock holder changed."""
    Installation.objects.select_for_update().filter(pk=installation.pk).values_list("pk", flat=True).get()
    return Installation.objects.select_related("org", "extension", "version__extension", "pending_version").get(
        pk=installation.pk
    )


def ensure_live(installation: Installation) -> None:
    if installation.status == InstallationStatus.UNINSTALLED:
        raise Conflict("This installation was uninstalled.", code="installation_uninstalled")


def ensure_active(installation: Installation) -> None:
    ensure_live(installation)
    if installation.status == InstallationStatus.BLOCKED:
        raise Conflict(
            "This installation is blocked by an organisation rule"
            + (f" ({installation.status_reason})" if installation.status_reason else "")
            + "; lift the rule or uninstall it.",
            code="installation_blocked",
        )


def move_to(
    installation: Installation,
    target: ExtensionVersion,
    *,
    granted: list[str],
    action: str,
    by=None,
    extra_fields: tuple[str, ...] = (),
) -> InstallationVersion:
    """Switch a locked installation to ``target`` (rows only: the target's modules are compiled
    already or are compiled by the task that follows), carrying its configuration over, and append
    the history row. Tokens minted with API scopes the new version or grant no longer covers are
    revoked."""
    from apps.installs.services.tokens import installation_tokens_trim  # tokens imports this module

    from_version = installation.version
    installation.version = target
    installation.granted_scopes = sorted(set(granted))
    installation.pending_version = None
    installation.config = config_migrate(config_schema(target), installation.config)
    installation.updated_at = clock.now()
    installation.save(
        update_fields=["version", "granted_scopes", "pending_version", "config", "updated_at", *extra_fields]
    )
    row = InstallationVersion.objects.create(
        installation=installation,
        version=target,
        from_version=from_version,
        action=action,
        granted_scopes=installation.granted_scopes,
        by=by,
    )
    installation_tokens_trim(installation)
    return row


def notify(installation: Installation, action: str, actor: str) -> None:
    """``installation_changed`` once the transaction commits (never for a change rolled back)."""
    transaction.on_commit(
        lambda: installation_changed.send_robust(
            sender=Installation, installation=installation, action=action, actor_id=actor
        )
    )


def precompile_later(version_id: str) -> None:
    """Compile the modules of a version that entered an installation's history, after commit and
    outside the request, so that returning to it later (rollback) never waits for a compile."""

    def schedule() -> None:
        from apps.runtime.tasks import precompile_version

        precompile_version.delay(version_id)

    transaction.on_commit(schedule)
