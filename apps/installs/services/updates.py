"""Moving an installation between versions: settings (channel, update policy), updates with
re-consent, automatic updates when a channel gets a new release, and rollback."""

from __future__ import annotations

import logging

from django.db import transaction

from apps.audit.services import audit_record
from apps.core import clock, context
from apps.core.errors import Conflict, ValidationFailed
from apps.extensions import scopes as scope_vocab
from apps.extensions.models import ExtensionVersion
from apps.installs.models import HistoryAction, Installation, InstallationStatus, InstallationVersion, UpdatePolicy
from apps.installs.rules import install_refusal
from apps.installs.selectors import (
    CERTIFIED,
    is_newer,
    not_installable_reason,
    rollback_candidates,
    update_offer,
    version_installable,
)
from apps.installs.services._common import (
    acting_user,
    actor_id,
    clean_channel,
    clean_scopes,
    clean_update_policy,
    ensure_active,
    ensure_live,
    lock,
    move_to,
    notify,
    precompile_later,
)
from apps.installs.services.lifecycle import refusal_error
from apps.orgs.policy import Principal, authorize

log = logging.getLogger(__name__)


def installation_settings_update(
    *, principal: Principal, installation: Installation, channel: str | None = None, update_policy: str | None = None
) -> Installation:
    """Change the channel an installation follows and whether it updates automatically. Changing the
    channel withdraws a pending offer from the old one (the new channel's newer release, if any, is
    offered by ``update_offer``); nothing is installed by this call."""
    authorize(principal, "installation.update", installation)
    if channel is not None:
        channel = clean_channel(channel)
    if update_policy is not None:
        update_policy = clean_update_policy(update_policy)
    with transaction.atomic():
        locked = lock(installation)
        ensure_live(locked)
        before = {"channel": locked.channel, "update_policy": locked.update_policy}
        fields = []
        if channel is not None and channel != locked.channel:
            locked.channel, locked.pending_version = channel, None
            fields += ["channel", "pending_version"]
        if update_policy is not None and update_policy != locked.update_policy:
            locked.update_policy = update_policy
            fields.append("update_policy")
        if not fields:
            return locked
        locked.updated_at = clock.now()
        locked.save(update_fields=[*fields, "updated_at"])
        after = {"channel": locked.channel, "update_policy": locked.update_policy}
        audit_record(
            action="installation.settings_changed",
            org_id=locked.org_id,
            target=locked,
            changes={k: [before[k], after[k]] for k in after if before[k] != after[k]},
        )
        notify(locked, "settings_changed", actor_id(principal))
    return locked


def _describe_changes(changes) -> str:
    parts = []
    for change in changes:
        if change.change == "escalation":
            parts.append(f"{change.scope} (replaces {change.replaces})")
        elif change.change == "added":
            parts.append(change.scope)
    return ", ".join(parts)


def _consent_required(target: ExtensionVersion, changes) -> Conflict:
    return Conflict(
        f"{target.extension.key} {target.version} asks for new or broader scopes: {_describe_changes(changes)}. "
        "Review them and send granted_scopes equal to the version's scopes to consent.",
        code="consent_required",
        param="granted_scopes",
        details=[c.as_dict() for c in changes if c.change in ("added", "escalation")],
    )


def installation_update(
    *,
    principal: Principal,
    installation: Installation,
    version: ExtensionVersion | None = None,
    granted_scopes: list[str] | None = None,
) -> Installation:
    """Move the installation to a newer version: ``version``, else the one waiting for the admin
    (``pending_version``), else what its channel serves. When the target adds or escalates scopes,
    ``granted_scopes`` must name exactly the target's scopes (the admin re-consents), otherwise
    ``consent_required`` (409) says which scopes are new. The organisation's rules are judged again."""
    authorize(principal, "installation.update", installation)
    granted = clean_scopes(granted_scopes) if granted_scopes is not None else None
    with transaction.atomic():
        locked = lock(installation)
        ensure_active(locked)
        if version is None:
            offer = update_offer(locked)
            if offer is None:
                raise Conflict(
                    f"{locked.extension.key} {locked.version.version} is the newest version.", code="no_update"
                )
            target = offer.version
        else:
            if version.extension_id != locked.extension_id:
                raise ValidationFailed(f"That version is not a version of {locked.extension.key}.", param="version_id")
            target = version
            target.extension = locked.extension
            if target.pk == locked.version_id:
                raise Conflict(f"The installation already runs {target.version}.", code="no_update", param="version_id")
            if not is_newer(target, locked.version):
                raise Conflict(
                    f"{target.version} is older than {locked.version.version}: roll back instead.",
                    code="version_downgrade",
                    param="version_id",
                )
        target.extension = locked.extension
        if not version_installable(locked.org, target):
            raise Conflict(
                not_installable_reason(locked.org, target),
                code="version_not_installable",
                param="version_id",
            )
        changes = scope_vocab.diff(locked.granted_scopes or [], target.scopes or [])
        if scope_vocab.needs_consent(changes):
            if granted is None or set(granted) != set(target.scopes or []):
                raise _consent_required(target, changes)
        elif granted is not None and set(granted) != set(target.scopes or []):
            raise ValidationFailed(
                f"Consent must name exactly the scopes {target.extension.key} {target.version} asks for.",
                code="consent_mismatch",
                param="granted_scopes",
            )
        refusal = install_refusal(locked.org, locked.extension, target.scopes or [])
        if refusal is not None:
            raise refusal_error(refusal)
        from_version, old_grant = locked.version, sorted(locked.granted_scopes or [])
        # The grant becomes the target's scopes: consented to just now, or (no consent needed)
        # covered by the old grant. So a scope the target drops leaves the grant, and asking for it
        # again later needs consent again; a weaker scope (kv:write → kv:read) is granted as such.
        new_grant = list(target.scopes or [])
        move_to(locked, target, granted=new_grant, action=HistoryAction.UPDATE, by=acting_user(principal))
        audit_record(
            action="installation.updated",
            org_id=locked.org_id,
            target=locked,
            changes={
                "version": [from_version.version, target.version],
                "scope_changes": [c.as_dict() for c in changes],
                **({"granted_scopes": locked.granted_scopes} if locked.granted_scopes != old_grant else {}),
            },
        )
        notify(locked, "updated", actor_id(principal))
        precompile_later(target.pk)
    return locked


def installation_rollback(*, principal: Principal, installation: Installation, version) -> Installation:
    """Return at once to an earlier version the installation ran (one of ``rollback_candidates``),
    with the grant the admin gave it then. The installation is pinned there, so automatic updates do
    not undo the rollback; the newer version stays on offer. Only rows change: the version's modules
    were compiled when it entered the history."""
    authorize(principal, "installation.update", installation)
    version_id = getattr(version, "pk", version)
    with transaction.atomic():
        locked = lock(installation)
        ensure_active(locked)
        target = next((v for v in rollback_candidates(locked) if v.pk == version_id), None)
        # A version it ran before: certified then, though perhaps never on a channel (a sandbox's).
        if target is None or not version_installable(locked.org, target, released=False):
            raise Conflict(
                "That version is not one this installation can roll back to (the versions it ran before, "
                "not yanked, the most recent few).",
                code="rollback_unavailable",
                param="version_id",
            )
        row = (
            InstallationVersion.objects.filter(installation=locked, version=target)
            .order_by("-at", "-pk")
            .values_list("granted_scopes", flat=True)
            .first()
        )
        granted = list(row or [])
        refusal = install_refusal(locked.org, locked.extension, sorted(set(granted) & set(target.scopes or [])))
        if refusal is not None:
            raise refusal_error(refusal)
        from_version = locked.version
        locked.update_policy = UpdatePolicy.PINNED
        move_to(
            locked,
            target,
            granted=granted,
            action=HistoryAction.ROLLBACK,
            by=acting_user(principal),
            extra_fields=("update_policy",),
        )
        audit_record(
            action="installation.rolled_back",
            org_id=locked.org_id,
            target=locked,
            changes={"version": [from_version.version, target.version], "update_policy": UpdatePolicy.PINNED},
        )
        notify(locked, "rolled_back", actor_id(principal))
    return locked


# --- channel releases -------------------------------------------------------------------------------
def _apply_release(installation_id: str, version: ExtensionVersion, channel: str) -> Installation | None:
    with transaction.atomic():
        locked = lock(Installation(pk=installation_id))
        if locked.status == InstallationStatus.UNINSTALLED or locked.channel != channel:
            return None
        if not is_newer(version, locked.version):
            return None  # never downgrades, never re-applies
        if locked.pending_version_id and not is_newer(version, locked.pending_version):
            return None  # already offered (or something newer is)
        version.extension = locked.extension
        changes = scope_vocab.diff(locked.granted_scopes or [], version.scopes or [])
        consent = scope_vocab.needs_consent(changes)
        refusal = install_refusal(locked.org, locked.extension, version.scopes or [])
        automatic = (
            locked.update_policy == UpdatePolicy.AUTO
            and locked.status == InstallationStatus.ACTIVE
            and not consent
            and refusal is None
        )
        if automatic:
            from_version, old_grant = locked.version, sorted(locked.granted_scopes or [])
            # No consent needed: the old grant covers the new version's scopes, which become the grant.
            move_to(locked, version, granted=list(version.scopes or []), action=HistoryAction.UPDATE)
            audit_record(
                action="installation.updated",
                org_id=locked.org_id,
                target=locked,
                changes={
                    "version": [from_version.version, version.version],
                    "automatic": True,
                    "scope_changes": [c.as_dict() for c in changes],
                    **({"granted_scopes": locked.granted_scopes} if locked.granted_scopes != old_grant else {}),
                },
            )
            notify(locked, "updated", "")
            precompile_later(version.pk)
            return locked
        if consent:
            reason = "consent_required"
        elif refusal is not None:
            reason = refusal.code
        elif locked.status != InstallationStatus.ACTIVE:
            reason = "installation_blocked"
        else:
            reason = "pinned"
        locked.pending_version = version
        locked.updated_at = clock.now()
        locked.save(update_fields=["pending_version", "updated_at"])
        audit_record(
            action="installation.update_offered",
            org_id=locked.org_id,
            target=locked,
            changes={"version": version.version, "reason": reason, "scope_changes": [c.as_dict() for c in changes]},
        )
        notify(locked, "update_offered", "")
        return locked


def channel_release_apply(*, release) -> list[Installation]:
    """A version was promoted to a channel: every live installation following that channel either
    updates in place (automatic policy, no new consent needed, allowed by its organisation's rules)
    or gets the version offered (``pending_version``). Never downgrades. The platform is the actor.
    Each installation changes in its own transaction, so one failure does not hold up the others."""
    version = ExtensionVersion.objects.select_related("extension").filter(pk=release.version_id).first()
    if version is None or version.status not in CERTIFIED or version.extension.deleted_at is not None:
        return []
    ids = list(
        Installation.objects.filter(extension_id=release.extension_id, channel=release.channel)
        .exclude(status=InstallationStatus.UNINSTALLED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    changed: list[Installation] = []
    with context.bind(actor_type="system", actor_id="", actor_label=f"Plaza ({release.channel} release)"):
        for installation_id in ids:
            try:
                result = _apply_release(installation_id, version, release.channel)
            except (
                Exception
            ):  # one installation's failure must not hold up the others; logged, retried by the next release
                log.exception("applying release %s to %s failed", release.pk, installation_id)
                continue
            if result is not None:
                changed.append(result)
    return changed
