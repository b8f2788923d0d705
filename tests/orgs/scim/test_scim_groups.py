"""SCIM Groups over HTTP with scim2-client, and the role rule groups apply to provisioned members."""

from __future__ import annotations

import pytest
from guardian.shortcuts import get_user_perms
from scim2_models import Group, GroupMember, PatchOp, PatchOperation, SearchRequest, User

from apps.orgs.models import Group as GroupRow
from apps.orgs.models import Membership, Role, Workspace
from apps.orgs.policy import Principal
from apps.orgs.services import groups as group_services

pytestmark = pytest.mark.django_db(transaction=True)
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_group_lifecycle_create_filter_patch_members_delete(acme, scim_for):
    client, raw = scim_for(acme.org)
    ada = client.create(User(user_name="ada@acme.test"))
    grace = client.create(User(user_name="grace@acme.test"))
    # create with one member
    group = client.create(Group(display_name="Engineering", external_id="g-1", members=[GroupMember(value=ada.id)]))
    assert [m.value for m in group.members] == [ada.id]
    # filter
    found = client.query(Group, query_parameters=SearchRequest(filter='displayName eq "engineering"'))
    assert found.total_results == 1 and found.resources[0].id == group.id
    # PATCH add a member, then remove one by value filter
    client.modify(
        Group,
        group.id,
        PatchOp[Group](operations=[PatchOperation(op="add", path="members", value=[{"value": grace.id}])]),
    )
    body = raw("GET", f"Groups/{group.id}").json()
    assert sorted(m["value"] for m in body["members"]) == sorted([ada.id, grace.id])
    assert raw("GET", f"Users/{grace.id}").json()["groups"][0]["value"] == group.id
    response = raw(
        "PATCH",
        f"Groups/{group.id}",
        {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{ada.id}"]'}]},
    )
    assert [m["value"] for m in response.json()["members"]] == [grace.id]
    # Azure AD: remove with a value list; then a path-less replace of displayName
    raw(
        "PATCH",
        f"Groups/{group.id}",
        {"schemas": [PATCH], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": grace.id}]}]},
    )
    response = raw(
        "PATCH",
        f"Groups/{group.id}",
        {"schemas": [PATCH], "Operations": [{"op": "Replace", "value": {"displayName": "Eng"}}]},
    )
    assert response.json()["displayName"] == "Eng" and "members" not in response.json()
    # delete
    client.delete(Group, group.id)
    assert raw("GET", f"Groups/{group.id}").status_code == 404


def test_duplicate_group_name_is_uniqueness(acme, scim_for):
    client, raw = scim_for(acme.org)
    client.create(Group(display_name="Ops"))
    response = raw("POST", "Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "ops"})
    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"


def test_group_role_applies_to_provisioned_members_but_never_to_owners_or_manual_members(acme, scim_for):
    client, raw = scim_for(acme.org)
    ada = client.create(User(user_name="ada@acme.test"))
    owner = Membership.objects.get(org=acme.org, user=acme.owner)
    bob = Membership.objects.get(org=acme.org, role=Role.MEMBER, user__email="member@acme.test")
    workspace = Workspace.objects.get(org=acme.org, slug="default")
    group = client.create(Group(display_name="Admins"))
    row = GroupRow.objects.get(pk=group.id)
    principal = Principal(kind="user", user=acme.owner, mfa_verified=True)
    group_services.group_update(principal=principal, group=row, role=Role.ADMIN, workspace=workspace)
    members = [{"value": ada.id}, {"value": owner.pk}, {"value": bob.pk}]
    raw(
        "PATCH",
        f"Groups/{group.id}",
        {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": members}]},
    )
    ada_row = Membership.objects.get(pk=ada.id)
    assert ada_row.role == Role.ADMIN
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER
    assert Membership.objects.get(pk=bob.pk).role == Role.MEMBER
    assert "manage_workspace" in get_user_perms(ada_row.user, workspace)
    # leaving the group takes the role and the workspace grant away
    raw(
        "PATCH",
        f"Groups/{group.id}",
        {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{ada.id}"]'}]},
    )
    ada_row.refresh_from_db()
    assert ada_row.role == Role.MEMBER
    assert "manage_workspace" not in get_user_perms(ada_row.user, workspace)


def test_group_services_refuse_owner_role(acme):
    principal = Principal(kind="user", user=acme.owner, mfa_verified=True)
    from apps.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        group_services.group_create(principal=principal, org=acme.org, display_name="Owners", role=Role.OWNER)
