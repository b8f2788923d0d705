"""Groups of members: made in the console or provisioned over SCIM.

**Role rule.** A group may carry a ``role`` (never owner) and a ``workspace``:

- A member provisioned by SCIM or SSO has the highest role among the groups they are in that carry
  one (admin > developer > billing > member), or the organisation's default role (the SSO
  connection's ``default_role``, else member) when none does. The role follows every change of
  group membership or of a group's role, at once.
- Owners and members added in Plaza (manually or by invitation) are never changed by groups: their
  role is whatever an admin set.
- A group's ``workspace`` gives its members the ``orgs.manage_workspace`` object permission on that
  workspace while they are in the group. Leaving the last group that grants it withdraws it (also a
  grant an admin had given by hand: a grant is one row, whoever made it).

Every function here is keyword-only, runs in one transaction and appends to the audit log.
Callers pass a group and principal already resolved and authorised (``group.manage`` or
``scim.provision``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from guardian.shortcuts import get_user_perms

from apps.audit.services import audit_record, diff
from apps.core import clock
from apps.core.errors import Conflict, ValidationFailed
from apps.orgs.models import Group, Membership, MemberSource, Organization, Role, SsoConnection, Workspace
from apps.orgs.policy import Principal
from apps.orgs.services.organisations import MANAGE_WORKSPACE, workspace_manager_set

# Higher wins. Billing and developer are not comparable by rights; developer ranks above billing so
# the rule is a total order that a customer can predict.
ROLE_RANK = {Role.MEMBER: 0, Role.BILLING: 1, Role.DEVELOPER: 2, Role.ADMIN: 3}
GROUP_ROLES = tuple(ROLE_RANK)
MAX_GROUP_NAME = 255
_SYNCED_SOURCES = (MemberSource.SCIM, MemberSource.SSO)


def default_role(org: Organization) -> str:
    """The role of a provisioned member that no group gives a role: the SSO connection's default
    role (never owner through this path), else member."""
    role = SsoConnection.objects.filter(org=org).values_list("default_role", flat=True).first() or Role.MEMBER
    return Role.ADMIN if role == Role.OWNER else role


def membership_sync_role(membership: Membership) -> Membership:
    """Apply the role rule (module docstring) to one member; saves and audits only on a change."""
    if membership.role == Role.OWNER or membership.source not in _SYNCED_SOURCES:
        return membership
    roles = [r for r in Group.objects.filter(members=membership).exclude(role="").values_list("role", flat=True)]
    roles = [r for r in roles if r in ROLE_RANK]
    target = max(roles, key=ROLE_RANK.__getitem__) if roles else default_role(membership.org)
    if target == membership.role:
        return membership
    before = membership.role
    membership.role = target
    membership.updated_at = clock.now()
    membership.save(update_fields=["role", "updated_at"])
    audit_record(
        action="member.role_synced",
        org_id=membership.org_id,
        target=membership,
        target_label=membership.user.email,
        changes={"role": {"before": before, "after": target}, "reason": "groups"},
    )
    return membership


def _sync_workspace_grant(membership: Membership, workspace: Workspace | None) -> None:
    """Grant or withdraw the manage permission on ``workspace`` from what the member's groups say."""
    if workspace is None:
        return
    wanted = Group.objects.filter(members=membership, workspace=workspace).exists()
    has = MANAGE_WORKSPACE.split(".")[1] in get_user_perms(membership.user, workspace)
    if wanted != has:
        workspace_manager_set(workspace=workspace, membership=membership, manage=wanted)


def _sync(memberships: Iterable[Membership], workspaces: Iterable[Workspace | None]) -> None:
    workspaces = {w.pk: w for w in workspaces if w is not None}.values()
    for membership in memberships:
        membership_sync_role(membership)
        for workspace in workspaces:
            _sync_workspace_grant(membership, workspace)


def _clean_display_name(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("A group needs a display name.", param="display_name")
    value = value.strip()
    if len(value) > MAX_GROUP_NAME or any(ord(ch) < 32 for ch in value):
        raise ValidationFailed(
            f"A group name has at most {MAX_GROUP_NAME} characters and no control characters.", param="display_name"
        )
    return value


def _clean_group_role(role: str) -> str:
    role = role or ""
    if role and role not in GROUP_ROLES:
        raise ValidationFailed(
            f"A group's role is empty or one of {', '.join(GROUP_ROLES)} (never owner).", param="role"
        )
    return role


def _clean_workspace(org: Organization, workspace: Workspace | None) -> Workspace | None:
    if workspace is not None and workspace.org_id != org.pk:
        raise ValidationFailed("No such workspace in this organisation.", param="workspace")
    return workspace


def _clean_members(org: Organization, members: Iterable[Membership]) -> list[Membership]:
    members = list({m.pk: m for m in members}.values())
    if any(m.org_id != org.pk for m in members):
        raise ValidationFailed("Every member of a group belongs to its organisation.", param="members")
    return members


def _check_name_free(org: Organization, display_name: str, exclude_pk: str | None = None) -> None:
    clash = Group.objects.filter(org=org, display_name__iexact=display_name)
    if exclude_pk:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise Conflict("A group with that name exists.", code="group_name_taken", param="display_name")


def group_create(
    *,
    principal: Principal,
    org: Organization,
    display_name: str,
    external_id: str = "",
    source: str = MemberSource.MANUAL,
    role: str = "",
    workspace: Workspace | None = None,
    members: Iterable[Membership] = (),
) -> Group:
    """Create a group and apply its role and workspace to its members."""
    display_name = _clean_display_name(display_name)
    role = _clean_group_role(role)
    workspace = _clean_workspace(org, workspace)
    members = _clean_members(org, members)
    with transaction.atomic():
        _check_name_free(org, display_name)
        now = clock.now()
        try:
            with transaction.atomic():
                group = Group.objects.create(
                    org=org,
                    display_name=display_name,
                    external_id=(external_id or "")[:255],
                    source=source,
                    role=role,
                    workspace=workspace,
                    created_at=now,
                    updated_at=now,
                )
        except IntegrityError:
            raise Conflict("A group with that name exists.", code="group_name_taken", param="display_name") from None
        group.members.set(members)
        audit_record(
            action="group.created",
            org_id=org.pk,
            target=group,
            changes={
                "display_name": display_name,
                "source": source,
                "role": role,
                "workspace": workspace.pk if workspace else None,
                "members": [m.pk for m in members],
            },
        )
        _sync(members, [workspace])
    return group


def group_update(*, principal: Principal, group: Group, **changes) -> Group:
    """Change ``display_name``, ``external_id``, ``role`` and/or ``workspace``; members follow."""
    allowed = {"display_name", "external_id", "role", "workspace"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))} of a group.", param=sorted(unknown)[0])
    if "display_name" in changes:
        changes["display_name"] = _clean_display_name(changes["display_name"])
    if "role" in changes:
        changes["role"] = _clean_group_role(changes["role"])
    if "workspace" in changes:
        changes["workspace"] = _clean_workspace(group.org, changes["workspace"])
    if "external_id" in changes:
        changes["external_id"] = (changes["external_id"] or "")[:255]
    before = {k: getattr(group, k) for k in changes}
    if all(before[k] == v for k, v in changes.items()):
        return group
    old_workspace = group.workspace
    with transaction.atomic():
        if "display_name" in changes:
            _check_name_free(group.org, changes["display_name"], exclude_pk=group.pk)
        for key, value in changes.items():
            setattr(group, key, value)
        group.updated_at = clock.now()
        group.save(update_fields=[*changes, "updated_at"])
        printable = {k: (v.pk if isinstance(v, Workspace) else v) for k, v in before.items()}
        after = {k: (v.pk if isinstance(v, Workspace) else v) for k, v in changes.items()}
        audit_record(action="group.updated", org_id=group.org_id, target=group, changes=diff(printable, after))
        if "role" in changes or "workspace" in changes:
            _sync(group.members.select_related("user", "org"), [old_workspace, group.workspace])
    return group


def _change_members(principal: Principal, group: Group, *, add=(), remove=(), action: str) -> Group:
    add = _clean_members(group.org, add)
    remove = _clean_members(group.org, remove)
    with transaction.atomic():
        current = set(group.members.values_list("pk", flat=True))
        added = [m for m in add if m.pk not in current]
        removed = [m for m in remove if m.pk in current]
        if not added and not removed:
            return group
        group.members.add(*added)
        group.members.remove(*removed)
        group.updated_at = clock.now()
        group.save(update_fields=["updated_at"])
        audit_record(
            action=action,
            org_id=group.org_id,
            target=group,
            changes={"added": [m.pk for m in added], "removed": [m.pk for m in removed]},
        )
        _sync([*added, *removed], [group.workspace])
    return group


def group_set_members(*, principal: Principal, group: Group, members: Iterable[Membership]) -> Group:
    """Make ``members`` exactly the group's members."""
    members = _clean_members(group.org, members)
    wanted = {m.pk for m in members}
    current = list(group.members.select_related("user", "org"))
    return _change_members(
        principal,
        group,
        add=members,
        remove=[m for m in current if m.pk not in wanted],
        action="group.members_changed",
    )


def group_add_members(*, principal: Principal, group: Group, members: Iterable[Membership]) -> Group:
    return _change_members(principal, group, add=members, action="group.members_changed")


def group_remove_members(*, principal: Principal, group: Group, members: Iterable[Membership]) -> Group:
    return _change_members(principal, group, remove=members, action="group.members_changed")


def group_delete(*, principal: Principal, group: Group) -> None:
    """Delete the group; its members lose the role and workspace it gave them."""
    with transaction.atomic():
        members = list(group.members.select_related("user", "org"))
        workspace = group.workspace
        audit_record(
            action="group.deleted",
            org_id=group.org_id,
            target=group,
            changes={"display_name": group.display_name, "members": [m.pk for m in members]},
        )
        group.delete()
        _sync(members, [workspace])
