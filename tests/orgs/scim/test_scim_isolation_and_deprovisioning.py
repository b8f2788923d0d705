"""Tenant isolation (one organisation's SCIM token never sees another's users or groups) and
deprovisioning that takes effect at once (sessions ended, tokens revoked, audited)."""

from __future__ import annotations

import pytest
from django.test import Client
from scim2_models import Group, SearchRequest, User

from apps.audit.models import AuditEvent
from apps.orgs import services
from apps.orgs.models import ApiToken, Membership, Role, ServiceAccount
from apps.orgs.policy import Principal

pytestmark = pytest.mark.django_db(transaction=True)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_another_orgs_token_gets_404_and_never_sees_users_or_groups(acme, globex, scim_for):
    # given: a user and a group provisioned into acme
    acme_client, acme_raw = scim_for(acme.org)
    ada = acme_client.create(User(user_name="ada@acme.test", external_id="acme-ada"))
    group = acme_client.create(Group(display_name="Acme team", members=[{"value": ada.id}]))
    # when: globex's SCIM token asks for them
    _, raw = scim_for(globex.org)
    # then
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}
        assert raw(method, f"Users/{ada.id}", body).status_code == 404
        assert raw(method, f"Groups/{group.id}", body).status_code == 404
    listed = raw("GET", "Users").json()
    assert ada.id not in {r["id"] for r in listed["Resources"]}
    assert all(r["userName"].endswith("@globex.test") for r in listed["Resources"])
    for flt in ('userName eq "ada@acme.test"', 'externalId eq "acme-ada"', f'id eq "{ada.id}"'):
        assert raw("GET", "Users", params={"filter": flt}).json()["totalResults"] == 0
    assert raw("GET", "Groups", params={"filter": 'displayName eq "Acme team"'}).json()["totalResults"] == 0
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": 'userName sw "ada"'}
    assert raw("POST", ".search", search).json()["totalResults"] == 0
    # globex cannot put acme's member into its own group either
    response = raw("POST", "Groups", {"schemas": [GROUP], "displayName": "Steal", "members": [{"value": ada.id}]})
    assert response.status_code == 400 and response.json()["scimType"] == "invalidValue"
    # nor attach acme's person: acme.test is not one of globex's verified domains
    response = raw("POST", "Users", {"schemas": [USER], "userName": "ada@acme.test"})
    assert response.status_code == 400 and response.json()["scimType"] == "invalidValue"
    assert "verified domains (globex.test)" in response.json()["detail"]
    assert list(Membership.objects.filter(user__email="ada@acme.test").values_list("org_id", flat=True)) == [
        acme.org.pk
    ]


def test_deactivation_ends_sessions_and_revokes_tokens_at_once(acme, scim_for):
    # given: bob is signed in and holds a token he created in acme
    bob = acme.members[Role.MEMBER]
    browser = Client()
    browser.force_login(bob)
    assert browser.get(f"/orgs/{acme.org.pk}/").status_code == 200
    sa = ServiceAccount.objects.create(org=acme.org, name="bob's robot", role=Role.MEMBER)
    token, secret = services.token_create(
        principal=Principal(kind="user", user=bob, mfa_verified=True),
        service_account=sa,
        name="bob",
        scopes=["org:read"],
        expires_in_days=30,
    )
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/orgs").status_code == 200
    client, raw = scim_for(acme.org)
    member = client.query(User, query_parameters=SearchRequest(filter=f'userName eq "{bob.email}"')).resources[0]
    # when: the identity provider deactivates him
    response = raw(
        "PATCH",
        f"Users/{member.id}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    # then
    assert response.status_code == 200 and response.json()["active"] is False
    signed_out = browser.get(f"/orgs/{acme.org.pk}/")
    assert signed_out.status_code == 302 and "/accounts/" in signed_out["Location"]
    assert api.get("/api/v1/orgs").status_code == 401
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    entry = AuditEvent.objects.filter(org_id=acme.org.pk, action="member.deprovisioned").latest("pk")
    assert entry.changes["reason"] == "scim" and token.pk in entry.changes["tokens_revoked"]
    # reactivation restores the membership (not the sessions or tokens)
    response = raw(
        "PATCH",
        f"Users/{member.id}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]},
    )
    assert response.json()["active"] is True
    assert api.get("/api/v1/orgs").status_code == 401


def test_delete_deactivates_then_removes_and_refuses_owners(acme, scim_for):
    client, raw = scim_for(acme.org)
    bob = acme.members[Role.MEMBER]
    browser = Client()
    browser.force_login(bob)
    bob_member = Membership.objects.get(org=acme.org, user=bob)
    client.delete(User, bob_member.pk)
    assert not Membership.objects.filter(pk=bob_member.pk).exists()
    assert browser.get(f"/orgs/{acme.org.pk}/").status_code == 302
    assert raw("GET", f"Users/{bob_member.pk}").status_code == 404
    owner = Membership.objects.get(org=acme.org, user=acme.owner)
    response = raw("DELETE", f"Users/{owner.pk}")
    assert response.status_code == 409 and response.json()["scimType"] == "mutability"
    assert "changed by another owner in Plaza" in response.json()["detail"]
    response = raw(
        "PATCH",
        f"Users/{owner.pk}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    assert response.status_code == 409 and response.json()["scimType"] == "mutability"
    assert Membership.objects.get(pk=owner.pk).deactivated_at is None


def test_a_revoked_scim_token_answers_401(acme, scim_for):
    from tests.orgs.scim.conftest import scim_token

    secret = scim_token(acme.org)
    _, raw = scim_for(acme.org, token=secret)
    token = ApiToken.objects.get(last_four=secret[-4:], org=acme.org)
    services.token_revoke(token=token)
    response = raw("GET", "Users")
    assert response.status_code == 401 and response.json()["status"] == "401"
