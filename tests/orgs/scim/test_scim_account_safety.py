"""Probes of one organisation's SCIM token against people it does not govern: it cannot attach
another organisation's accounts, squat addresses of domains it has not verified, rename accounts
it does not own, sign out or revoke more than its own membership of a shared person, or
deactivate and delete owners."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import UserSession
from apps.audit.models import AuditEvent
from apps.orgs import services
from apps.orgs.models import ApiToken, Group, Membership, MemberSource, Role, ServiceAccount
from apps.orgs.policy import Principal

pytestmark = pytest.mark.django_db(transaction=True)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _patch(*operations) -> dict:
    return {"schemas": [PATCH], "Operations": list(operations)}


def _signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _snapshot(user) -> dict:
    user.refresh_from_db()
    return {
        "email": user.email,
        "sessions": sorted(UserSession.objects.filter(user=user, ended_at__isnull=True).values_list("pk", flat=True)),
        "factors": sorted(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)),
        "addresses": sorted(EmailAddress.objects.filter(user=user).values_list("email", "verified")),
    }


def _token_in(org, user) -> tuple[ApiToken, str]:
    sa = ServiceAccount.objects.create(org=org, name=f"{user.email} robot", role=Role.MEMBER)
    return services.token_create(
        principal=Principal(kind="user", user=user, mfa_verified=True),
        service_account=sa,
        name="mine",
        scopes=["org:read"],
        expires_in_days=30,
    )


# --- 1. creating and linking ----------------------------------------------------------------------
def test_a_token_cannot_attach_another_orgs_owner_and_nothing_about_them_changes(acme, globex, scim_for):
    # given: charlie owns globex, is signed in, has an authenticator and a verified address (factory)
    charlie = globex.owner
    browser = _signed_in(charlie)
    TOTPDevice.objects.create(user=charlie, name="phone", confirmed=True)
    before = _snapshot(charlie)
    _, raw = scim_for(acme.org)
    # when: acme's identity provider provisions charlie's address (any spelling)
    for user_name in (charlie.email, charlie.email.upper()):
        response = raw("POST", "Users", {"schemas": [USER], "userName": user_name, "active": False})
        # then
        assert response.status_code == 400, response.text  # the same answer as for an unknown address
        body = response.json()
        assert body["scimType"] == "invalidValue"
        assert "verified domains (acme.test)" in body["detail"] and "invite the person instead" in body["detail"]
    assert not Membership.objects.filter(org=acme.org, user=charlie).exists()
    assert _snapshot(charlie) == before
    assert browser.get(f"/orgs/{globex.org.pk}/").status_code == 200


def test_a_token_cannot_squat_addresses_outside_its_verified_domains(acme, scim_for):
    _, raw = scim_for(acme.org)
    for user_name in ("newcomer@globex.test", "someone@unclaimed.test", "x@sub.acme.test"):
        response = raw("POST", "Users", {"schemas": [USER], "userName": user_name})
        assert response.status_code == 400, response.text
        assert response.json()["scimType"] == "invalidValue"
        assert "userName must be an address in one of the organisation's verified domains" in response.json()["detail"]
    assert not get_user_model().objects.filter(email__in=["newcomer@globex.test", "someone@unclaimed.test"]).exists()
    # an unverified (pending) domain does not count
    acme.org.domains.filter(name="acme.test").update(verified_at=None)
    response = raw("POST", "Users", {"schemas": [USER], "userName": "fresh@acme.test"})
    assert response.status_code == 400 and "none is verified yet" in response.json()["detail"]


def test_an_existing_account_in_a_verified_domain_is_linked(acme, globex, scim_for):
    # an account made before acme verified acme.test (or by self-service sign-up) is linked
    person = get_user_model().objects.create_user(email="dana@acme.test", password=None)
    _, raw = scim_for(acme.org)
    response = raw("POST", "Users", {"schemas": [USER], "userName": "Dana@Acme.test"})
    assert response.status_code == 201, response.text
    assert Membership.objects.get(pk=response.json()["id"]).user == person


# --- 2. renames -----------------------------------------------------------------------------------
def test_a_token_cannot_rename_a_member_added_in_plaza(acme, globex, scim_for):
    # given: charlie (globex's owner) was invited into acme as a contractor
    charlie = globex.owner
    invited = Membership.objects.create(org=acme.org, user=charlie, role=Role.MEMBER, source=MemberSource.INVITATION)
    before = _snapshot(charlie)
    _, raw = scim_for(acme.org)
    # the contractor is visible and their SCIM attributes can be changed
    assert raw("GET", f"Users/{invited.pk}").json()["userName"] == charlie.email
    response = raw("PATCH", f"Users/{invited.pk}", _patch({"op": "replace", "path": "title", "value": "Contractor"}))
    assert response.status_code == 200 and response.json()["title"] == "Contractor"
    # when: acme renames the account (PATCH or PUT) to an address it controls
    attempts = [
        ("PATCH", _patch({"op": "replace", "path": "userName", "value": "attacker@acme.test"})),
        ("PUT", {"schemas": [USER], "userName": "attacker@acme.test"}),
    ]
    for method, body in attempts:
        response = raw(method, f"Users/{invited.pk}", body)
        # then
        assert response.status_code == 400, response.text
        assert response.json()["scimType"] == "mutability"
        assert "added in Plaza" in response.json()["detail"]
    assert _snapshot(charlie) == before
    assert not get_user_model().objects.filter(email="attacker@acme.test").exists()


def test_renames_need_a_scim_account_of_this_org_alone_in_its_verified_domains(acme, globex, scim_for):
    client, raw = scim_for(acme.org)
    ada = raw("POST", "Users", {"schemas": [USER], "userName": "ada@acme.test"}).json()
    user = Membership.objects.get(pk=ada["id"]).user
    EmailAddress.objects.create(user=user, email="ada@acme.test", verified=True, primary=True)
    # not into a domain acme has not verified
    response = raw(
        "PATCH", f"Users/{ada['id']}", _patch({"op": "replace", "path": "userName", "value": "ada@evil.test"})
    )
    assert response.status_code == 400 and response.json()["scimType"] == "mutability"
    assert "verified domains (acme.test)" in response.json()["detail"]
    # not while the account is also in another organisation
    shared = Membership.objects.create(org=globex.org, user=user, role=Role.MEMBER)
    response = raw("PUT", f"Users/{ada['id']}", {"schemas": [USER], "userName": "lovelace@acme.test"})
    assert response.status_code == 400 and "outside this organisation" in response.json()["detail"]
    shared.delete()
    # not onto an address another account has claimed
    other = get_user_model().objects.create_user(email="other@globex.test", password=None)
    EmailAddress.objects.create(user=other, email="taken@acme.test", verified=False, primary=False)
    response = raw("PUT", f"Users/{ada['id']}", {"schemas": [USER], "userName": "taken@acme.test"})
    assert response.status_code == 400 and "another Plaza account" in response.json()["detail"]
    user.refresh_from_db()
    assert user.email == "ada@acme.test"
    # allowed: a SCIM account of acme alone, from acme.test to acme.test
    response = raw("PUT", f"Users/{ada['id']}", {"schemas": [USER], "userName": "lovelace@acme.test"})
    assert response.status_code == 200, response.text
    user.refresh_from_db()
    assert user.email == "lovelace@acme.test"
    # the old address is gone from the account; the new one is verified by the domain, none unverified
    assert list(EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")) == [
        ("lovelace@acme.test", True, True)
    ]
    entry = AuditEvent.objects.filter(org_id=acme.org.pk, action="member.scim_updated").latest("pk")
    assert entry.changes["userName"] == {"before": "ada@acme.test", "after": "lovelace@acme.test"}


def test_a_rename_of_an_account_without_allauth_addresses_creates_none(acme, scim_for):
    _, raw = scim_for(acme.org)
    ada = raw("POST", "Users", {"schemas": [USER], "userName": "ada@acme.test"}).json()
    response = raw(
        "PATCH", f"Users/{ada['id']}", _patch({"op": "replace", "path": "userName", "value": "al@acme.test"})
    )
    assert response.status_code == 200, response.text
    user = Membership.objects.get(pk=ada["id"]).user
    assert user.email == "al@acme.test" and not EmailAddress.objects.filter(user=user).exists()


# --- 3. deactivation scope ------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["patch", "delete"])
def test_deactivating_a_shared_person_ends_only_this_membership(acme, globex, scim_for, how):
    # given: charlie owns globex and is an invited member of acme, signed in, with a token in each
    charlie = globex.owner
    member = Membership.objects.create(org=acme.org, user=charlie, role=Role.MEMBER, source=MemberSource.INVITATION)
    browser = _signed_in(charlie)
    TOTPDevice.objects.create(user=charlie, name="phone", confirmed=True)
    acme_token, _ = _token_in(acme.org, charlie)
    globex_token, globex_secret = _token_in(globex.org, charlie)
    sessions = _snapshot(charlie)["sessions"]
    assert sessions
    _, raw = scim_for(acme.org)
    # when
    if how == "patch":
        response = raw("PATCH", f"Users/{member.pk}", _patch({"op": "replace", "path": "active", "value": False}))
        assert response.status_code == 200 and response.json()["active"] is False
    else:
        assert raw("DELETE", f"Users/{member.pk}").status_code == 204
    # then: acme is closed to him and his acme token is revoked ...
    assert browser.get(f"/orgs/{acme.org.pk}/").status_code in (403, 404)
    assert ApiToken.objects.get(pk=acme_token.pk).revoked_at is not None
    # ... and nothing else about him changed
    after = _snapshot(charlie)
    assert after["sessions"] == sessions and after["factors"] and after["email"] == "charlie@globex.test"
    assert browser.get(f"/orgs/{globex.org.pk}/").status_code == 200
    assert ApiToken.objects.get(pk=globex_token.pk).revoked_at is None
    assert Client(HTTP_AUTHORIZATION=f"Bearer {globex_secret}").get("/api/v1/orgs").status_code == 200
    entry = AuditEvent.objects.filter(org_id=acme.org.pk, action="member.deprovisioned").latest("pk")
    assert entry.changes["scope"] == "membership" and entry.changes["sessions_ended"] == 0


def test_deactivating_a_person_of_the_orgs_domain_ends_their_sessions_everywhere(acme, globex, scim_for):
    # bob@acme.test is also in globex, but his address is in acme's verified domain
    bob = acme.members[Role.MEMBER]
    Membership.objects.create(org=globex.org, user=bob, role=Role.MEMBER)
    browser = _signed_in(bob)
    member = Membership.objects.get(org=acme.org, user=bob)
    _, raw = scim_for(acme.org)
    response = raw("PATCH", f"Users/{member.pk}", _patch({"op": "replace", "path": "active", "value": False}))
    assert response.status_code == 200
    assert not UserSession.objects.filter(user=bob, ended_at__isnull=True).exists()
    assert browser.get(f"/orgs/{globex.org.pk}/").status_code == 302
    entry = AuditEvent.objects.filter(org_id=acme.org.pk, action="member.deprovisioned").latest("pk")
    assert entry.changes["scope"] == "account"


# --- 4. owners ------------------------------------------------------------------------------------
def test_scim_never_deactivates_or_deletes_an_owner_even_with_another_owner(acme, scim_for):
    second = Membership.objects.get(org=acme.org, user=acme.members[Role.ADMIN])
    second.role = Role.OWNER
    second.save(update_fields=["role"])
    browser = _signed_in(second.user)
    _, raw = scim_for(acme.org)
    for method, body in (
        ("PATCH", _patch({"op": "replace", "path": "active", "value": False})),
        ("PUT", {"schemas": [USER], "userName": second.user.email, "active": False}),
        ("DELETE", None),
    ):
        response = raw(method, f"Users/{second.pk}", body)
        assert response.status_code == 409, response.text
        assert response.json()["scimType"] == "mutability"
        assert "changed by another owner in Plaza" in response.json()["detail"]
    second.refresh_from_db()
    assert second.deactivated_at is None and second.role == Role.OWNER
    assert UserSession.objects.filter(user=second.user, ended_at__isnull=True).exists()
    assert browser.get(f"/orgs/{acme.org.pk}/").status_code == 200


def test_group_roles_never_touch_an_owner_even_one_provisioned_by_scim(acme, scim_for):
    _, raw = scim_for(acme.org)
    ada = raw("POST", "Users", {"schemas": [USER], "userName": "ada@acme.test"}).json()
    Membership.objects.filter(pk=ada["id"]).update(role=Role.OWNER)  # promoted in Plaza
    group = raw("POST", "Groups", {"schemas": [GROUP], "displayName": "Staff", "members": [{"value": ada["id"]}]})
    Group.objects.filter(pk=group.json()["id"]).update(role=Role.MEMBER)
    raw("PATCH", f"Groups/{group.json()['id']}", _patch({"op": "remove", "path": "members"}))
    raw(
        "PATCH",
        f"Groups/{group.json()['id']}",
        _patch({"op": "add", "path": "members", "value": [{"value": ada["id"]}]}),
    )
    assert Membership.objects.get(pk=ada["id"]).role == Role.OWNER
