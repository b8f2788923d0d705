"""Attribute conditions of the organisation's security policy, and object permissions."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm

from apps.core.errors import NotFound, PermissionDenied
from apps.orgs.models import Workspace
from apps.orgs.policy import Principal, authorize, check


def test_ip_allowlist_applies_to_tokens_and_people(acme, api_for, login_client, alice):
    acme.org.ip_allowlist = ["10.0.0.0/8"]
    acme.org.save()
    api = api_for(acme.org)
    res = api.call("GET", f"orgs/{acme.org.pk}")
    assert res.status_code == 403 and res.json()["error"]["code"] == "ip_not_allowed"
    assert login_client(alice).get(f"/orgs/{acme.org.pk}/").status_code == 403
    allowed = api.call("GET", f"orgs/{acme.org.pk}", REMOTE_ADDR="10.1.2.3")
    assert allowed.status_code == 200


def test_policy_cannot_lock_out_its_author(acme, api_for):
    api = api_for(acme.org, role="owner")
    res = api.call("PUT", f"orgs/{acme.org.pk}/policy", {"ip_allowlist": ["10.0.0.0/8"]})
    assert res.status_code == 400 and res.json()["error"]["code"] == "would_lock_out"
    ok = api.call("PUT", f"orgs/{acme.org.pk}/policy", {"ip_allowlist": ["127.0.0.0/8", "2001:db8::/32"]})
    assert ok.status_code == 200 and ok.json()["ip_allowlist"] == ["127.0.0.0/8", "2001:db8::/32"]


def test_require_mfa_blocks_people_without_a_second_factor(acme, alice, bob, password):
    acme.org.require_mfa = True
    acme.org.save()
    client = Client()
    client.post("/accounts/login/", {"login": bob.email, "password": password})
    # bob has no second factor: he is held at enrolment (tests/orgs/security/test_mfa_enforcement.py)
    res = client.get(f"/api/v1/orgs/{acme.org.pk}")
    assert res.status_code == 403 and res.json()["error"]["code"] == "mfa_enrolment_required"
    page = client.get(f"/orgs/{acme.org.pk}/")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/mfa/")
    # alice has a device and passed the second step: she is let in
    from django_otp.oath import totp

    device = TOTPDevice.objects.create(user=alice, name="authenticator", confirmed=True)
    other = Client()
    other.post("/accounts/login/", {"login": alice.email, "password": password})
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    assert other.post("/accounts/mfa/verify/", {"code": code}).status_code == 302
    assert other.get(f"/api/v1/orgs/{acme.org.pk}").status_code == 200


def test_require_mfa_needs_the_owner_to_have_it_first(acme, alice, login_client):
    client = login_client(alice)
    res = client.put(f"/api/v1/orgs/{acme.org.pk}/policy", {"require_mfa": True}, content_type="application/json")
    assert res.status_code == 400 and res.json()["error"]["code"] == "would_lock_out"


def test_max_session_age_forces_a_new_sign_in(acme, alice, password):
    acme.org.max_session_age_minutes = 5
    acme.org.save()
    client = Client()
    client.post("/accounts/login/", {"login": alice.email, "password": password})
    assert client.get(f"/api/v1/orgs/{acme.org.pk}").status_code == 200
    session = client.session
    session["plaza_login_at"] = time.time() - 6 * 60
    session.save()
    res = client.get(f"/api/v1/orgs/{acme.org.pk}")
    assert res.status_code == 401 and res.json()["error"]["code"] == "session_expired"
    page = client.get(f"/orgs/{acme.org.pk}/")
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]


def test_object_permission_lets_a_member_manage_one_workspace(acme, bob):
    ws = Workspace.objects.get(org=acme.org)
    other = Workspace.objects.create(org=acme.org, name="Other", slug="other")
    principal = Principal(kind="user", user=bob, mfa_verified=True)
    with pytest.raises(PermissionDenied):
        authorize(principal, "workspace.update", ws)
    assign_perm("orgs.manage_workspace", bob, ws)
    bob = type(bob).objects.get(pk=bob.pk)  # guardian caches permissions per user object
    principal = Principal(kind="user", user=bob, mfa_verified=True)
    authorize(principal, "workspace.update", ws)
    assert check(principal, "workspace.update", other) == "role"
    assert check(principal, "workspace.delete", ws) == "role"


def test_outsiders_get_not_found_not_forbidden(acme, charlie):
    principal = Principal(kind="user", user=charlie)
    with pytest.raises(NotFound):
        authorize(principal, "org.view", acme.org)


def test_unknown_actions_are_a_programming_error(acme, alice):
    with pytest.raises(ValueError):
        check(Principal(kind="user", user=alice), "org.destroy", acme.org)


def test_session_age_is_measured_from_sign_in(acme, alice):
    acme.org.max_session_age_minutes = 60
    fresh = Principal(kind="user", user=alice, session_started_at=dt.datetime.now(dt.UTC))
    assert check(fresh, "org.view", acme.org) is None


def test_workspace_manager_grants_through_the_api(acme, bob, api_for, login_client):
    admin = api_for(acme.org, role="admin")
    ws = Workspace.objects.get(org=acme.org)
    bob_member = acme.org.memberships.get(user=bob)
    bob_client = login_client(bob)
    url = f"/api/v1/orgs/{acme.org.pk}/workspaces/{ws.pk}"
    assert bob_client.patch(url, {"name": "Mine"}, content_type="application/json").status_code == 403
    # when an admin lets bob manage this workspace
    assert admin.call("PUT", f"orgs/{acme.org.pk}/workspaces/{ws.pk}/managers/{bob_member.pk}").status_code == 204
    managers = admin.call("GET", f"orgs/{acme.org.pk}/workspaces/{ws.pk}/managers").json()["data"]
    assert [m["id"] for m in managers] == [bob_member.pk]
    # then bob may update it (but still not delete it)
    assert bob_client.patch(url, {"name": "Mine"}, content_type="application/json").status_code == 200
    assert bob_client.delete(url).status_code == 403
    # and withdrawing the grant takes it away again, audited both ways
    assert admin.call("DELETE", f"orgs/{acme.org.pk}/workspaces/{ws.pk}/managers/{bob_member.pk}").status_code == 204
    assert bob_client.patch(url, {"name": "Again"}, content_type="application/json").status_code == 403
    from apps.audit.models import AuditEvent

    actions = list(
        AuditEvent.objects.filter(org_id=acme.org.pk, action__startswith="workspace.manager_")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["workspace.manager_granted", "workspace.manager_revoked"]


def test_removing_a_member_drops_their_workspace_grants(acme, bob, api_for):
    from guardian.models import UserObjectPermission

    admin = api_for(acme.org, role="admin")
    ws = Workspace.objects.get(org=acme.org)
    bob_member = acme.org.memberships.get(user=bob)
    admin.call("PUT", f"orgs/{acme.org.pk}/workspaces/{ws.pk}/managers/{bob_member.pk}")
    assert UserObjectPermission.objects.filter(user=bob).count() == 1
    assert admin.call("DELETE", f"orgs/{acme.org.pk}/members/{bob_member.pk}").status_code == 204
    assert UserObjectPermission.objects.filter(user=bob).count() == 0


def test_portal_grants_and_withdraws_workspace_management(acme, alice, bob, login_client):
    client = login_client(alice)
    ws = Workspace.objects.get(org=acme.org)
    bob_member = acme.org.memberships.get(user=bob)
    page = client.get(f"/orgs/{acme.org.pk}/").content.decode()
    assert "Let manage" in page and bob.email in page
    res = client.post(f"/orgs/{acme.org.pk}/", {"op": "manager_grant", "workspace": ws.pk, "member": bob_member.pk})
    assert res.status_code == 302
    bob_page = login_client(bob)
    assert (
        bob_page.patch(
            f"/api/v1/orgs/{acme.org.pk}/workspaces/{ws.pk}", {"name": "Bob's"}, content_type="application/json"
        ).status_code
        == 200
    )
    assert f"Stop {bob.email} managing" in client.get(f"/orgs/{acme.org.pk}/").content.decode()
    client.post(f"/orgs/{acme.org.pk}/", {"op": "manager_revoke", "workspace": ws.pk, "member": bob_member.pk})
    assert (
        bob_page.patch(
            f"/api/v1/orgs/{acme.org.pk}/workspaces/{ws.pk}", {"name": "Again"}, content_type="application/json"
        ).status_code
        == 403
    )


def test_members_cannot_grant_workspace_management_in_the_portal(acme, bob, login_client):
    ws = Workspace.objects.get(org=acme.org)
    client = login_client(bob)
    assert "Let manage" not in client.get(f"/orgs/{acme.org.pk}/").content.decode()
    res = client.post(
        f"/orgs/{acme.org.pk}/",
        {"op": "manager_grant", "workspace": ws.pk, "member": acme.org.memberships.get(user=bob).pk},
    )
    assert res.status_code == 403
