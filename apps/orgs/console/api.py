"""Groups of members (the admin console's API). A group's role applies to members provisioned by
SSO or SCIM; its workspace lets its members manage that workspace (see docs/enterprise.md).

Groups provisioned over SCIM belong to the identity provider: renaming one, changing its members or
deleting it answers 409 ``group_managed_by_idp``. Their role and workspace (which SCIM does not
carry) are set here."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import NotFound, ValidationFailed
from apps.core.ids import is_valid_id
from apps.orgs.console.schemas import GroupCreateIn, GroupDetailOut, GroupOut, GroupUpdateIn
from apps.orgs.console.selectors import (
    check_group_change,
    get_group_for_principal,
    group_members,
    groups_of,
    is_managed_by_idp,
)
from apps.orgs.models import Group, Membership, Workspace
from apps.orgs.selectors import get_object_for_principal, get_org_for_principal, members_of
from apps.orgs.services import groups as group_services

router = Router(tags=["groups"])


def _out(group: Group, *, members: bool = False) -> dict:
    out = {
        "id": group.pk,
        "display_name": group.display_name,
        "external_id": group.external_id,
        "source": group.source,
        "role": group.role,
        "workspace_id": group.workspace_id,
        "member_count": getattr(group, "member_count", None),
        "read_only": is_managed_by_idp(group),
        "created_at": group.created_at,
        "updated_at": group.updated_at,
    }
    if out["member_count"] is None or members:
        rows = list(group_members(group).order_by("pk"))
        out["member_count"] = len(rows)
        if members:
            out["members"] = rows
    return out


def _workspace(principal, org, workspace_id: str | None) -> Workspace | None:
    """A body's workspace reference: another organisation's (or no such) workspace is a 400."""
    if workspace_id is None:
        return None
    try:
        return get_object_for_principal(principal, Workspace, org, workspace_id, "workspace.view")
    except NotFound:
        raise ValidationFailed("No such workspace in this organisation.", param="workspace_id") from None


def _members(org, member_ids: list[str]) -> list[Membership]:
    ids = list(dict.fromkeys(member_ids))
    found = {m.pk: m for m in members_of(org).filter(pk__in=[i for i in ids if is_valid_id(i, "mem")])}
    for index, member_id in enumerate(ids):
        if member_id not in found:
            raise ValidationFailed("No such member in this organisation.", param=f"member_ids[{index}]")
    return [found[i] for i in ids]


@router.get("/orgs/{org_id}/groups", response=Page[GroupOut], summary="List groups")
def list_groups(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "group.view")
    rows, next_cursor = paginate(groups_of(org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": [_out(g) for g in rows], "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/groups", response={201: GroupDetailOut}, summary="Create a group")
def create_group(request: HttpRequest, org_id: str, payload: GroupCreateIn):
    """A group made in Plaza (source ``manual``); its role and workspace apply to its members at once."""
    org = get_org_for_principal(request.auth, org_id, "group.manage")
    group = group_services.group_create(
        principal=request.auth,
        org=org,
        display_name=payload.display_name,
        role=payload.role,
        workspace=_workspace(request.auth, org, payload.workspace_id),
        members=_members(org, payload.member_ids),
    )
    return Status(201, _out(group, members=True))


@router.get("/orgs/{org_id}/groups/{group_id}", response=GroupDetailOut, summary="Get a group and its members")
def get_group(request: HttpRequest, org_id: str, group_id: str):
    org = get_org_for_principal(request.auth, org_id, "group.view")
    return _out(get_group_for_principal(request.auth, org, group_id, "group.view"), members=True)


@router.patch(
    "/orgs/{org_id}/groups/{group_id}",
    response=GroupDetailOut,
    summary="Rename a group or change its role or workspace",
)
def update_group(request: HttpRequest, org_id: str, group_id: str, payload: GroupUpdateIn):
    """Only the fields sent change. On a SCIM group only ``role`` and ``workspace_id`` may."""
    org = get_org_for_principal(request.auth, org_id, "group.view")
    group = get_group_for_principal(request.auth, org, group_id, "group.manage")
    changes = payload.dict(exclude_unset=True)
    if "display_name" in changes and changes["display_name"] is None:
        raise ValidationFailed("A group needs a display name.", param="display_name")
    if "role" in changes:
        changes["role"] = changes["role"] or ""
    if "workspace_id" in changes:
        changes["workspace"] = _workspace(request.auth, org, changes.pop("workspace_id"))
    check_group_change(group, set(changes))
    group = group_services.group_update(principal=request.auth, group=group, **changes)
    return _out(group, members=True)


@router.delete("/orgs/{org_id}/groups/{group_id}", response={204: None}, summary="Delete a group")
def delete_group(request: HttpRequest, org_id: str, group_id: str):
    """Its members stay, and lose the role and workspace the group gave them."""
    org = get_org_for_principal(request.auth, org_id, "group.view")
    group = get_group_for_principal(request.auth, org, group_id, "group.manage")
    check_group_change(group, {"delete"})
    group_services.group_delete(principal=request.auth, group=group)
    return Status(204, None)


def _group_and_member(request: HttpRequest, org_id: str, group_id: str, member_id: str):
    org = get_org_for_principal(request.auth, org_id, "group.view")
    group = get_group_for_principal(request.auth, org, group_id, "group.manage")
    check_group_change(group, {"members"})
    membership = get_object_for_principal(request.auth, Membership, org, member_id, "member.view", members_of(org))
    return group, membership


@router.put(
    "/orgs/{org_id}/groups/{group_id}/members/{member_id}", response={204: None}, summary="Add a member to a group"
)
def add_group_member(request: HttpRequest, org_id: str, group_id: str, member_id: str):
    group, membership = _group_and_member(request, org_id, group_id, member_id)
    group_services.group_add_members(principal=request.auth, group=group, members=[membership])
    return Status(204, None)


@router.delete(
    "/orgs/{org_id}/groups/{group_id}/members/{member_id}", response={204: None}, summary="Remove a member from a group"
)
def remove_group_member(request: HttpRequest, org_id: str, group_id: str, member_id: str):
    group, membership = _group_and_member(request, org_id, group_id, member_id)
    group_services.group_remove_members(principal=request.auth, group=group, members=[membership])
    return Status(204, None)
