"""Groups through the API and the console: CRUD with audit entries, the role rule seen from the
outside, SCIM groups read-only, and tenant isolation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.orgs.models import Group, Membership, Role, Workspace
from tests.orgs.console.conftest import dana
from tests.orgs.test_authorization import assert_error, caller, session_client

KINDS = ["session", "token"]


def groups_path(org) -> str:
    return f"orgs/{org.pk}/groups"


def audit_actions(org) -> list[str]:
    return list(
        AuditEvent.objects.filter(org_id=org.pk, action__startswith="group.")
        .order_by("seq")
        .values_list("action", flat=True)
    )


# --- the API --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_create_a_group_with_role_workspace_and_members(acme, api_for, provisioned, kind):
    # given an admin and a SCIM-provisioned member (role: member)
    client, _ = caller(kind, acme, Role.ADMIN, api_for)
    workspace = Workspace.objects.get(org=acme.org, slug="default")
    # when the admin creates a developer group with that member in it
    res = client.call(
        "POST",
        groups_path(acme.org),
        {"display_name": "Builders", "role": "developer", "workspace_id": workspace.pk, "member_ids": [provisioned.pk]},
    )
    # then the group exists, the member got its role, and it is audited
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["display_name"] == "Builders" and body["source"] == "manual" and body["read_only"] is False
    assert body["role"] == "developer" and body["workspace_id"] == workspace.pk and body["member_count"] == 1
    assert [m["email"] for m in body["members"]] == ["dana@acme.test"]
    assert Membership.objects.get(pk=provisioned.pk).role == Role.DEVELOPER
    assert "group.created" in audit_actions(acme.org)


def test_list_groups_pages_with_a_cursor(acme, api_for, engineering, scim_group):
    for i in range(3):
        Group.objects.create(org=acme.org, display_name=f"team-{i}")
    api = api_for(acme.org, role=Role.MEMBER, scopes=["members:read"])  # every role may read groups
    first = api.call("GET", groups_path(acme.org), {"limit": 2}).json()
    assert [g["display_name"] for g in first["data"]] == ["Engineering", "Okta Admins"]
    assert first["data"][0]["member_count"] == 1 and first["data"][1]["read_only"] is True
    second = api.call("GET", groups_path(acme.org), {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [g["display_name"] for g in second["data"]] == ["team-0", "team-1"]


def test_rename_change_role_and_clear_workspace(acme, engineering):
    workspace = Workspace.objects.get(org=acme.org, slug="default")
    Group.objects.filter(pk=engineering.pk).update(workspace=workspace)
    client = session_client(acme.owner)
    path = f"{groups_path(acme.org)}/{engineering.pk}"
    res = client.call("PATCH", path, {"display_name": "Platform", "role": "billing"})
    assert res.status_code == 200, res.content
    assert res.json()["display_name"] == "Platform" and res.json()["workspace_id"] == workspace.pk
    res = client.call("PATCH", path, {"workspace_id": None})
    assert res.json()["workspace_id"] is None and res.json()["role"] == "billing"
    assert audit_actions(acme.org) == ["group.updated", "group.updated"]


def test_a_group_cannot_carry_the_owner_role(acme, engineering):
    client = session_client(acme.owner)
    assert_error(client.call("POST", groups_path(acme.org), {"display_name": "Bosses", "role": "owner"}), 400)
    res = client.call("PATCH", f"{groups_path(acme.org)}/{engineering.pk}", {"role": "owner"})
    assert_error(res, 400)
    assert Group.objects.get(pk=engineering.pk).role == ""


def test_group_names_are_unique_in_an_organisation(acme, engineering):
    res = session_client(acme.owner).call("POST", groups_path(acme.org), {"display_name": "engineering"})
    assert_error(res, 409, "group_name_taken")


def test_add_and_remove_a_member(acme, engineering, provisioned):
    client = session_client(acme.owner)
    member_path = f"{groups_path(acme.org)}/{engineering.pk}/members/{provisioned.pk}"
    assert client.call("PUT", member_path).status_code == 204
    assert engineering.members.filter(pk=provisioned.pk).exists()
    assert client.call("PUT", member_path).status_code == 204  # idempotent
    assert client.call("DELETE", member_path).status_code == 204
    assert not engineering.members.filter(pk=provisioned.pk).exists()
    assert audit_actions(acme.org) == ["group.members_changed", "group.members_changed"]


def test_the_group_role_follows_membership_changes_for_provisioned_members(acme, engineering, provisioned):
    client = session_client(acme.owner)
    client.call("PATCH", f"{groups_path(acme.org)}/{engineering.pk}", {"role": "admin"})
    bob = Membership.objects.get(org=acme.org, user=acme.user(Role.MEMBER))
    assert bob.role == Role.MEMBER  # added in Plaza: the group's role does not apply
    client.call("PUT", f"{groups_path(acme.org)}/{engineering.pk}/members/{provisioned.pk}")
    assert Membership.objects.get(pk=provisioned.pk).role == Role.ADMIN
    client.call("DELETE", f"{groups_path(acme.org)}/{engineering.pk}")
    assert Membership.objects.get(pk=provisioned.pk).role == Role.MEMBER


def test_delete_a_group(acme, engineering):
    res = session_client(acme.owner).call("DELETE", f"{groups_path(acme.org)}/{engineering.pk}")
    assert res.status_code == 204
    assert not Group.objects.filter(pk=engineering.pk).exists()
    assert Membership.objects.filter(org=acme.org, user=acme.user(Role.MEMBER)).exists()
    assert audit_actions(acme.org) == ["group.deleted"]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"display_name": "Renamed"}),
        ("DELETE", "", None),
        ("PUT", "/members/{member}", None),
        ("DELETE", "/members/{member}", None),
    ],
    ids=["rename", "delete", "add-member", "remove-member"],
)
@pytest.mark.parametrize("kind", KINDS)
def test_what_the_identity_provider_owns_is_read_only(acme, api_for, scim_group, kind, method, suffix, body):
    # given a group the identity provider owns
    client, _ = caller(kind, acme, Role.OWNER, api_for)
    bob = Membership.objects.get(org=acme.org, user=acme.user(Role.MEMBER))
    member = dana(acme) if method == "DELETE" else bob
    path = f"{groups_path(acme.org)}/{scim_group.pk}" + suffix.format(member=member.pk)
    # when an owner renames it, changes its members or deletes it through the API
    res = client.call(method, path, body)
    # then it is refused with a conflict, and nothing changed
    error = assert_error(res, 409, "group_managed_by_idp")
    assert "identity provider" in error["message"]
    group = Group.objects.get(pk=scim_group.pk)
    assert group.display_name == "Okta Admins"
    assert set(group.members.values_list("pk", flat=True)) == {dana(acme).pk}
    assert audit_actions(acme.org) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_scim_group_gets_its_role_and_workspace_in_plaza(acme, api_for, scim_group, kind):
    # given a SCIM group with a provisioned member (role: member)
    client, _ = caller(kind, acme, Role.ADMIN, api_for)
    workspace = Workspace.objects.get(org=acme.org, slug="default")
    path = f"{groups_path(acme.org)}/{scim_group.pk}"
    # when an admin maps it to a role and a workspace
    res = client.call("PATCH", path, {"role": "developer", "workspace_id": workspace.pk})
    # then the mapping is saved and the member follows the role rule
    assert res.status_code == 200, res.content
    assert res.json()["role"] == "developer" and res.json()["display_name"] == "Okta Admins"
    assert Membership.objects.get(pk=dana(acme).pk).role == Role.DEVELOPER
    # but a change that includes the name is refused as a whole
    res = client.call("PATCH", path, {"role": "admin", "display_name": "Mine"})
    assert_error(res, 409, "group_managed_by_idp")
    assert Group.objects.get(pk=scim_group.pk).role == "developer"


def test_scim_groups_can_be_read(acme, scim_group):
    res = session_client(acme.owner).call("GET", f"{groups_path(acme.org)}/{scim_group.pk}")
    assert res.status_code == 200
    assert res.json()["read_only"] is True and res.json()["external_id"] == "00g1"


def test_members_may_read_but_not_change_groups(acme, engineering):
    bob = session_client(acme.user(Role.MEMBER))
    assert bob.call("GET", f"{groups_path(acme.org)}/{engineering.pk}").status_code == 200
    assert_error(bob.call("PATCH", f"{groups_path(acme.org)}/{engineering.pk}", {"display_name": "x"}), 403, "role")


# --- tenant isolation -----------------------------------------------------------------------------
def test_another_organisations_members_and_workspaces_cannot_be_put_in_a_group(acme, globex, engineering):
    client = session_client(acme.owner)
    theirs = Membership.objects.get(org=globex.org, user=globex.owner)
    their_ws = Workspace.objects.get(org=globex.org)
    res = client.call("POST", groups_path(acme.org), {"display_name": "Moles", "member_ids": [theirs.pk]})
    assert assert_error(res, 400)["param"] == "member_ids[0]"
    res = client.call("POST", groups_path(acme.org), {"display_name": "Moles", "workspace_id": their_ws.pk})
    assert assert_error(res, 400)["param"] == "workspace_id"
    res = client.call("PATCH", f"{groups_path(acme.org)}/{engineering.pk}", {"workspace_id": their_ws.pk})
    assert_error(res, 400)
    res = client.call("PUT", f"{groups_path(acme.org)}/{engineering.pk}/members/{theirs.pk}")
    assert_error(res, 404)
    assert not Group.objects.filter(display_name="Moles").exists()
    assert not engineering.members.filter(pk=theirs.pk).exists()


def test_another_organisations_groups_are_not_found(acme, globex):
    theirs = Group.objects.create(org=globex.org, display_name="Globex Ops")
    client = session_client(acme.owner)
    for org in (acme.org, globex.org):
        assert_error(client.call("GET", f"orgs/{org.pk}/groups/{theirs.pk}"), 404)
        assert_error(client.call("DELETE", f"orgs/{org.pk}/groups/{theirs.pk}"), 404)
    listed = client.call("GET", groups_path(acme.org)).json()["data"]
    assert theirs.pk not in {g["id"] for g in listed}
    assert Group.objects.filter(pk=theirs.pk).exists()


# --- the console ----------------------------------------------------------------------------------
def page(name: str, org, **kwargs) -> str:
    return reverse(name, kwargs={"org_id": org.pk, **kwargs})


def test_console_creates_a_group(acme):
    workspace = Workspace.objects.get(org=acme.org, slug="default")
    res = session_client(acme.owner).post(
        page("org_console_groups", acme.org), {"display_name": "Support", "role": "billing", "workspace": workspace.pk}
    )
    group = Group.objects.get(org=acme.org, display_name="Support")
    assert res.status_code == 302 and res["Location"] == page("org_console_group", acme.org, group_id=group.pk)
    assert group.role == "billing" and group.workspace_id == workspace.pk and group.source == "manual"
    assert audit_actions(acme.org) == ["group.created"]


def test_console_create_reports_errors_next_to_the_field(acme, engineering):
    client = session_client(acme.owner)
    res = client.post(page("org_console_groups", acme.org), {"display_name": "Engineering"})
    assert res.status_code == 409 and res.context["error"]["field"] == "display_name"
    res = client.post(page("org_console_groups", acme.org), {"display_name": "Bosses", "role": "owner"})
    assert res.status_code == 400 and res.context["error"]["field"] == "role"


def test_console_lists_groups_with_source_role_workspace_and_count(acme, engineering, scim_group):
    res = session_client(acme.owner).get(page("org_console_groups", acme.org))
    html = res.content.decode()
    assert "Engineering" in html and "Okta Admins" in html and "read-only" in html
    assert {g.display_name: g.member_count for g in res.context["groups"]} == {"Engineering": 1, "Okta Admins": 1}


def test_console_empty_groups_state(acme):
    res = session_client(acme.owner).get(page("org_console_groups", acme.org))
    assert b"No groups yet." in res.content


def test_console_edits_a_group_and_its_members(acme, engineering, provisioned):
    client = session_client(acme.owner)
    url = page("org_console_group", acme.org, group_id=engineering.pk)
    workspace = Workspace.objects.get(org=acme.org, slug="default")
    # rename, give a role and a workspace
    res = client.post(url, {"op": "update", "display_name": "Platform", "role": "developer", "workspace": workspace.pk})
    assert res.status_code == 302
    engineering.refresh_from_db()
    assert (engineering.display_name, engineering.role, engineering.workspace_id) == (
        "Platform",
        "developer",
        workspace.pk,
    )
    # add a member by e-mail: the provisioned member takes the group's role
    assert client.post(url, {"op": "add_member", "member": "DANA@acme.test"}).status_code == 302
    assert Membership.objects.get(pk=provisioned.pk).role == Role.DEVELOPER
    # remove them again
    assert client.post(url, {"op": "remove_member", "member": provisioned.pk}).status_code == 302
    assert not engineering.members.filter(pk=provisioned.pk).exists()
    assert Membership.objects.get(pk=provisioned.pk).role == Role.MEMBER
    # delete the group
    res = client.post(url, {"op": "delete"})
    assert res.status_code == 302 and res["Location"] == page("org_console_groups", acme.org)
    assert not Group.objects.filter(pk=engineering.pk).exists()
    assert audit_actions(acme.org) == [
        "group.updated", "group.members_changed", "group.members_changed", "group.deleted",
    ]  # fmt: skip


def test_console_add_member_refuses_unknown_people(acme, globex, engineering):
    client = session_client(acme.owner)
    url = page("org_console_group", acme.org, group_id=engineering.pk)
    theirs = Membership.objects.get(org=globex.org, user=globex.owner)
    for value in (globex.owner.email, theirs.pk, "nobody@acme.test", "garbage"):
        res = client.post(url, {"op": "add_member", "member": value})
        assert res.status_code == 400 and res.context["error"]["field"] == "member", value
    assert set(engineering.members.values_list("pk", flat=True)) == {
        Membership.objects.get(org=acme.org, user=acme.user(Role.MEMBER)).pk
    }


def test_console_shows_scim_groups_read_only_but_for_role_and_workspace(acme, scim_group):
    client = session_client(acme.owner)
    url = page("org_console_group", acme.org, group_id=scim_group.pk)
    res = client.get(url)
    html = res.content.decode()
    assert res.status_code == 200
    assert "provisioned by your identity provider" in html
    # only the role and workspace form: no name field, no member or delete forms
    assert 'value="update"' in html and 'name="display_name"' not in html
    assert 'value="add_member"' not in html and 'value="remove_member"' not in html and 'value="delete"' not in html
    workspace = Workspace.objects.get(org=acme.org, slug="default")
    assert client.post(url, {"op": "update", "role": "admin", "workspace": workspace.pk}).status_code == 302
    group = Group.objects.get(pk=scim_group.pk)
    assert (group.role, group.workspace_id, group.display_name) == ("admin", workspace.pk, "Okta Admins")
    assert Membership.objects.get(pk=dana(acme).pk).role == Role.ADMIN
    assert audit_actions(acme.org) == ["group.updated"]
    for form in (
        {"op": "update", "display_name": "Mine now", "role": "admin", "workspace": workspace.pk},
        {"op": "add_member", "member": acme.owner.email},
        {"op": "remove_member", "member": dana(acme).pk},
        {"op": "delete"},
    ):
        res = client.post(url, form)
        assert res.status_code == 409, form
    group = Group.objects.get(pk=scim_group.pk)
    assert group.display_name == "Okta Admins" and group.members.count() == 1
    assert audit_actions(acme.org) == ["group.updated"]


def test_console_group_pages_refuse_non_admins(acme, engineering):
    bob = session_client(acme.user(Role.MEMBER))
    url = page("org_console_group", acme.org, group_id=engineering.pk)
    assert bob.get(url).status_code == 403
    assert bob.post(url, {"op": "delete"}).status_code == 403
    assert bob.post(page("org_console_groups", acme.org), {"display_name": "Mine"}).status_code == 403
    assert Group.objects.filter(pk=engineering.pk).exists()
    assert not Group.objects.filter(display_name="Mine").exists()


def test_console_group_of_another_organisation_is_not_found(acme, globex):
    theirs = Group.objects.create(org=globex.org, display_name="Globex Ops")
    client = session_client(acme.owner)
    for org in (acme.org, globex.org):
        url = page("org_console_group", org, group_id=theirs.pk)
        assert client.get(url).status_code == 404
        assert client.post(url, {"op": "delete"}).status_code == 404
    assert Group.objects.filter(pk=theirs.pk).exists()
