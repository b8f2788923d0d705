"""Organisations, their security policy and workspaces (with workspace manager grants)."""

from __future__ import annotations

import ipaddress
import secrets

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils.text import slugify
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, get_user_perms, remove_perm

from apps.audit.services import audit_record, diff
from apps.core.errors import Conflict, ValidationFailed
from apps.orgs.models import (
    Membership,
    Organization,
    Role,
    Workspace,
)
from apps.orgs.policy import Principal, ip_allowed
from apps.orgs.services._validation import _clean_description, _clean_name, _clean_slug


# --- organisations -------------------------------------------------------------------------------
def org_create(*, user, name: str, slug: str | None = None) -> Organization:
    """Create an organisation with ``user`` as its owner and a first workspace."""
    name = _clean_name(name, "name")
    slug = _clean_slug(slug, name)
    with transaction.atomic():
        if Organization.objects.filter(slug=slug).exists():
            if slug != slugify(name)[:60]:
                raise Conflict("That slug is taken.", code="slug_taken", param="slug")
            slug = f"{slug[:52]}-{secrets.token_hex(3)}"
        org = Organization.objects.create(name=name, slug=slug)
        Membership.objects.create(org=org, user=user, role=Role.OWNER)
        Workspace.objects.create(org=org, name="Default", slug="default")
        audit_record(action="org.created", org_id=org.pk, target=org, changes={"name": name, "slug": slug})
    return org


def org_update(*, org: Organization, name: str) -> Organization:
    name = _clean_name(name, "name")
    before = {"name": org.name}
    with transaction.atomic():
        org.name = name
        org.save(update_fields=["name"])
        audit_record(action="org.updated", org_id=org.pk, target=org, changes=diff(before, {"name": name}))
    return org


def _clean_allowlist(entries: list[str]) -> list[str]:
    cleaned = []
    for index, entry in enumerate(entries or []):
        try:
            cleaned.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
        except ValueError:
            raise ValidationFailed(
                f"'{entry}' is not an IP address or CIDR range.", param=f"ip_allowlist[{index}]"
            ) from None
    if len(cleaned) > 100:
        raise ValidationFailed("At most 100 allowlist entries.", param="ip_allowlist")
    return cleaned


def _sso_configured(org: Organization) -> bool:
    from apps.orgs.sso.services import sso_can_require  # imported late: the SSO services import this package

    return sso_can_require(org)


def org_policy_update(
    *,
    principal: Principal,
    org: Organization,
    require_mfa: bool,
    max_session_age_minutes: int | None,
    ip_allowlist: list[str],
    idle_timeout_minutes: int | None = None,
    sso_required: bool = False,
) -> Organization:
    """Change the security policy. Refuses a policy that would lock out the person setting it, and
    "SSO required" while the organisation has no enabled SSO connection (``sso_not_configured``)."""
    allowlist = _clean_allowlist(ip_allowlist)
    if max_session_age_minutes is not None and not (5 <= max_session_age_minutes <= 60 * 24 * 90):
        raise ValidationFailed("max_session_age_minutes must be between 5 and 129600.", param="max_session_age_minutes")
    if idle_timeout_minutes is not None and not (5 <= idle_timeout_minutes <= 1440):
        raise ValidationFailed("idle_timeout_minutes must be between 5 and 1440.", param="idle_timeout_minutes")
    if allowlist and not ip_allowed(principal.ip, allowlist):
        raise ValidationFailed(
            f"The allowlist must include your own address ({principal.ip or 'unknown'}).",
            param="ip_allowlist",
            code="would_lock_out",
        )
    if require_mfa and principal.kind == "user" and not principal.mfa_verified:
        raise ValidationFailed(
            "Enrol two-factor authentication yourself before requiring it.", param="require_mfa", code="would_lock_out"
        )
    if sso_required and not org.sso_required and not _sso_configured(org):
        raise Conflict(
            "Set up and enable an SSO connection before requiring single sign-on.",
            param="sso_required",
            code="sso_not_configured",
        )
    fields = ("require_mfa", "max_session_age_minutes", "idle_timeout_minutes", "ip_allowlist", "sso_required")
    before = {key: getattr(org, key) for key in fields}
    after = {
        "require_mfa": require_mfa,
        "max_session_age_minutes": max_session_age_minutes,
        "idle_timeout_minutes": idle_timeout_minutes,
        "ip_allowlist": allowlist,
        "sso_required": sso_required,
    }
    with transaction.atomic():
        for key, value in after.items():
            setattr(org, key, value)
        org.save(update_fields=list(after))
        audit_record(action="org.policy_updated", org_id=org.pk, target=org, changes=diff(before, after))
    return org


# --- workspaces ----------------------------------------------------------------------------------
def workspace_create(*, org: Organization, name: str, slug: str | None = None, description: str = "") -> Workspace:
    name = _clean_name(name, "name")
    slug = _clean_slug(slug, name)
    description = _clean_description(description)
    with transaction.atomic():
        if Workspace.objects.filter(org=org, slug=slug).exists():
            raise Conflict("A workspace with that slug exists.", code="slug_taken", param="slug")
        ws = Workspace.objects.create(org=org, name=name, slug=slug, description=description)
        audit_record(action="workspace.created", org_id=org.pk, target=ws, changes={"name": name, "slug": slug})
    return ws


def workspace_update(*, workspace: Workspace, name: str | None = None, description: str | None = None) -> Workspace:
    before = {"name": workspace.name, "description": workspace.description}
    if name is not None:
        workspace.name = _clean_name(name, "name")
    if description is not None:
        workspace.description = _clean_description(description)
    with transaction.atomic():
        workspace.save(update_fields=["name", "description"])
        audit_record(
            action="workspace.updated",
            org_id=workspace.org_id,
            target=workspace,
            changes=diff(before, {"name": workspace.name, "description": workspace.description}),
        )
    return workspace


MANAGE_WORKSPACE = "orgs.manage_workspace"


def workspace_manager_set(*, workspace: Workspace, membership: Membership, manage: bool) -> None:
    """Grant or withdraw ``membership``'s object permission to manage this one workspace (a
    django-guardian grant the policy engine honours for ``workspace.update`` when the role does not)."""
    user = membership.user
    with transaction.atomic():
        has = MANAGE_WORKSPACE.split(".")[1] in get_user_perms(user, workspace)
        if has == manage:
            return
        (assign_perm if manage else remove_perm)(MANAGE_WORKSPACE, user, workspace)
        audit_record(
            action="workspace.manager_granted" if manage else "workspace.manager_revoked",
            org_id=workspace.org_id,
            target=workspace,
            changes={"member": membership.pk, "user": user.email},
        )


def _drop_workspace_grants(*, org_id: str, user=None, workspace: Workspace | None = None) -> None:
    """Object permissions are not foreign keys: remove them with the member or the workspace."""
    qs = UserObjectPermission.objects.filter(content_type=ContentType.objects.get_for_model(Workspace))
    if workspace is not None:
        qs = qs.filter(object_pk=workspace.pk)
    else:
        ids = [str(pk) for pk in Workspace.objects.filter(org_id=org_id).values_list("pk", flat=True)]
        qs = qs.filter(user=user, object_pk__in=ids)
    qs.delete()


def workspace_delete(*, workspace: Workspace) -> None:
    with transaction.atomic():
        # Lock the organisation so two concurrent deletes cannot both see "more than one left".
        Organization.objects.select_for_update().filter(pk=workspace.org_id).first()
        _drop_workspace_grants(org_id=workspace.org_id, workspace=workspace)
        if Workspace.objects.filter(org_id=workspace.org_id).count() <= 1:
            raise Conflict("An organisation keeps at least one workspace.", code="last_workspace")
        audit_record(action="workspace.deleted", org_id=workspace.org_id, target=workspace)
        workspace.delete()
