"""Session controls: idle timeout, maximum session age, IP allowlist, forced sign-out, sign out
everywhere, and the organisation's sessions list."""

from __future__ import annotations

import time

import pytest

from apps.accounts.models import UserSession
from apps.audit.models import AuditEvent
from apps.orgs.models import Membership, Role
from apps.orgs.security.middleware import ACTIVITY_KEY
from tests.factories import MembershipFactory
from tests.orgs.security.conftest import password_signed_in, set_policy, signed_in
from tests.orgs.test_authorization import assert_error


def _idle_for(client, minutes: float) -> None:
    session = client.session
    session[ACTIVITY_KEY] = time.time() - minutes * 60
    session.save()


# --- idle timeout --------------------------------------------------------------------------------
def test_an_idle_session_is_ended_on_its_next_api_call(acme, alice):
    # given acme signs sessions out after 15 idle minutes, and alice's session has been idle 16
    set_policy(acme.org, idle_timeout_minutes=15)
    client = signed_in(alice)
    assert client.call("GET", "me").status_code == 200
    session_id = UserSession.objects.get(user=alice).pk
    _idle_for(client, 16)
    # when she calls the API, then the session has expired and is ended for good
    assert_error(client.call("GET", f"orgs/{acme.org.pk}"), 401, "session_expired")
    assert UserSession.objects.get(pk=session_id).ended_at is not None
    assert_error(client.call("GET", "me"), 401, "unauthenticated")
    assert AuditEvent.objects.filter(action="session.revoked", target_id=alice.pk).exists()


def test_an_idle_portal_session_goes_back_to_sign_in_with_a_message(acme, alice):
    set_policy(acme.org, idle_timeout_minutes=15)
    client = signed_in(alice)
    _idle_for(client, 16)
    res = client.get(f"/orgs/{acme.org.pk}/members/")
    assert res.status_code == 302 and res["Location"].startswith("/accounts/login/?next=")
    login = client.get(res["Location"])
    assert b"signed out after 15 minutes without activity" in login.content
    assert client.get(f"/orgs/{acme.org.pk}/").status_code == 302


def test_a_session_used_within_the_idle_timeout_stays(acme, alice):
    set_policy(acme.org, idle_timeout_minutes=15)
    client = signed_in(alice)
    _idle_for(client, 14)
    assert client.call("GET", f"orgs/{acme.org.pk}").status_code == 200
    assert client.get(f"/orgs/{acme.org.pk}/").status_code == 200
    # and the request counted as activity
    assert time.time() - client.session[ACTIVITY_KEY] < 60


def test_the_strictest_idle_timeout_among_the_users_orgs_applies(acme, globex, alice):
    # given alice is also in globex, whose timeout (10) is shorter than acme's (60)
    set_policy(acme.org, idle_timeout_minutes=60)
    set_policy(globex.org, idle_timeout_minutes=10)
    MembershipFactory(org=globex.org, user=alice, role=Role.MEMBER)
    client = signed_in(alice)
    _idle_for(client, 11)
    # then even an acme page is refused
    assert_error(client.call("GET", f"orgs/{acme.org.pk}"), 401, "session_expired")


def test_idle_timeout_does_not_apply_to_tokens(acme, api_for):
    set_policy(acme.org, idle_timeout_minutes=5)
    assert api_for(acme.org).call("GET", f"orgs/{acme.org.pk}").status_code == 200


# --- maximum session age -------------------------------------------------------------------------
@pytest.mark.parametrize(("age_minutes", "allowed"), [(4, True), (6, False)])
def test_max_session_age(acme, alice, age_minutes, allowed):
    set_policy(acme.org, max_session_age_minutes=5)
    client = signed_in(alice)
    session = client.session
    session["plaza_login_at"] = time.time() - age_minutes * 60
    session.save()
    api = client.call("GET", f"orgs/{acme.org.pk}")
    if allowed:
        assert api.status_code == 200
        assert client.get(f"/orgs/{acme.org.pk}/").status_code == 200
    else:
        assert_error(api, 401, "session_expired")
        page = client.get(f"/orgs/{acme.org.pk}/")
        assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")


# --- IP allowlist --------------------------------------------------------------------------------
INSIDE, OUTSIDE = "10.1.2.3", "192.0.2.7"


@pytest.mark.parametrize(("ip", "allowed"), [(INSIDE, True), (OUTSIDE, False)])
def test_ip_allowlist_for_a_session_on_api_and_portal(acme, bob, ip, allowed):
    set_policy(acme.org, ip_allowlist=["10.0.0.0/8"])
    client = signed_in(bob, REMOTE_ADDR=ip)
    api = client.call("GET", f"orgs/{acme.org.pk}/members")
    page = client.get(f"/orgs/{acme.org.pk}/members/")
    if allowed:
        assert api.status_code == 200 and page.status_code == 200
    else:
        assert_error(api, 403, "ip_not_allowed")
        assert page.status_code == 403 and b"allowlist" in page.content


@pytest.mark.parametrize(("ip", "allowed"), [(INSIDE, True), (OUTSIDE, False)])
def test_ip_allowlist_for_a_token(acme, api_for, ip, allowed):
    set_policy(acme.org, ip_allowlist=["10.0.0.0/8"])
    api = api_for(acme.org, role=Role.ADMIN)
    res = api.call("GET", f"orgs/{acme.org.pk}/sessions", REMOTE_ADDR=ip)
    if allowed:
        assert res.status_code == 200
    else:
        assert_error(res, 403, "ip_not_allowed")
        # nor can it act: a forced sign-out from outside changes nothing
        member = Membership.objects.get(org=acme.org, user=acme.user(Role.MEMBER))
        refused = api.call("POST", f"orgs/{acme.org.pk}/members/{member.pk}/sign-out", REMOTE_ADDR=ip)
        assert_error(refused, 403, "ip_not_allowed")


# --- admin-forced sign-out -----------------------------------------------------------------------
def test_forced_sign_out_ends_every_session_of_the_member(acme, bob):
    # given bob signed in on a laptop and a phone
    laptop, phone = signed_in(bob), signed_in(bob)
    assert phone.call("GET", "me").status_code == 200
    member = Membership.objects.get(org=acme.org, user=bob)
    admin = signed_in(acme.user(Role.ADMIN))
    # when an admin signs him out
    res = admin.call("POST", f"orgs/{acme.org.pk}/members/{member.pk}/sign-out")
    # then both clients are signed out on their next request, and the admin is not
    assert res.status_code == 200 and res.json() == {"sessions_ended": 2}
    assert_error(laptop.call("GET", "me"), 401)
    page = phone.get(f"/orgs/{acme.org.pk}/")
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]
    assert admin.call("GET", "me").status_code == 200
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="member.signed_out")
    assert event.target_id == member.pk and event.changes == {"sessions_ended": 2}


def test_an_admin_cannot_sign_out_an_owner_but_an_owner_can(acme, second_owner, api_for):
    olga = signed_in(second_owner.user)
    path = f"orgs/{acme.org.pk}/members/{second_owner.pk}/sign-out"
    assert_error(signed_in(acme.user(Role.ADMIN)).call("POST", path), 403, "owner_only")
    assert_error(api_for(acme.org, role=Role.ADMIN).call("POST", path), 403, "owner_only")
    assert olga.call("GET", "me").status_code == 200
    assert signed_in(acme.owner).call("POST", path).status_code == 200
    assert_error(olga.call("GET", "me"), 401)


def test_a_member_cannot_sign_out_others(acme, bob):
    target = Membership.objects.get(org=acme.org, user=acme.user(Role.DEVELOPER))
    victim = signed_in(target.user)
    assert_error(signed_in(bob).call("POST", f"orgs/{acme.org.pk}/members/{target.pk}/sign-out"), 403, "role")
    assert victim.call("GET", "me").status_code == 200


def test_console_sessions_page_signs_a_member_out(acme, bob):
    bobs = password_signed_in(bob, HTTP_USER_AGENT="BobBrowser/1.0")
    member = Membership.objects.get(org=acme.org, user=bob)
    admin = signed_in(acme.user(Role.ADMIN))
    page = admin.get(f"/orgs/{acme.org.pk}/console/sessions/")
    assert page.status_code == 200 and b"BobBrowser/1.0" in page.content and b"Sign out this member" in page.content
    res = admin.post(f"/orgs/{acme.org.pk}/console/members/{member.pk}/sign-out/", {"back": "sessions"})
    assert res.status_code == 302 and res["Location"] == f"/orgs/{acme.org.pk}/console/sessions/"
    assert_error(bobs.call("GET", "me"), 401)
    assert signed_in(bob).get(f"/orgs/{acme.org.pk}/console/sessions/").status_code == 403


# --- sign out everywhere -------------------------------------------------------------------------
def test_sign_out_everywhere_through_the_api_ends_every_session_including_this_one(acme, bob):
    here, elsewhere = signed_in(bob), signed_in(bob)
    res = here.call("DELETE", "me/sessions")
    assert res.status_code == 204, res.content
    assert not UserSession.objects.filter(user=bob, ended_at__isnull=True).exists()
    assert_error(here.call("GET", "me"), 401)
    assert_error(elsewhere.call("GET", "me"), 401)
    assert AuditEvent.objects.get(action="user.signed_out_everywhere", target_id=bob.pk).changes == {"sessions": 2}


def test_sign_out_everywhere_from_the_sessions_page(acme, bob):
    here, elsewhere = signed_in(bob), signed_in(bob)
    page = here.get("/accounts/sessions/")
    assert b"Sign out everywhere" in page.content
    res = here.post("/accounts/sessions/", {"op": "end_all"})
    assert res.status_code == 302 and res["Location"].startswith("/accounts/login/")
    assert here.get("/accounts/sessions/").status_code == 302
    assert_error(elsewhere.call("GET", "me"), 401)


def test_sign_out_everywhere_touches_only_your_own_sessions(acme, alice, bob):
    alices = signed_in(alice)
    assert signed_in(bob).call("DELETE", "me/sessions").status_code == 204
    assert alices.call("GET", "me").status_code == 200


def test_tokens_cannot_sign_out_everywhere(acme, api_for):
    assert_error(api_for(acme.org, role=Role.OWNER).call("DELETE", "me/sessions"), 403, "users_only")


# --- the organisation's sessions list ------------------------------------------------------------
def test_sessions_list_shows_only_active_members_of_this_org(acme, globex, bob, charlie):
    # given sessions of bob (acme), charlie (globex) and a deactivated acme member
    password_signed_in(bob, HTTP_USER_AGENT="Bob/1", REMOTE_ADDR="10.9.9.9")
    signed_in(charlie)
    gone = Membership.objects.get(org=acme.org, user=acme.user(Role.BILLING))
    signed_in(gone.user)
    gone.deactivated_at = gone.created_at
    gone.save(update_fields=["deactivated_at"])
    admin = signed_in(acme.user(Role.ADMIN))
    # when an acme admin lists acme's sessions
    res = admin.call("GET", f"orgs/{acme.org.pk}/sessions")
    assert res.status_code == 200
    rows = res.json()["data"]
    emails = {row["email"] for row in rows}
    # then bob's and the admin's are there, charlie's and the deactivated member's are not
    assert emails == {bob.email, acme.user(Role.ADMIN).email}
    bobs = next(row for row in rows if row["email"] == bob.email)
    assert bobs["ip"] == "10.9.9.9" and bobs["user_agent"] == "Bob/1"
    assert bobs["member_id"] == Membership.objects.get(org=acme.org, user=bob).pk
    # and globex's admin cannot list acme's at all
    assert_error(signed_in(charlie).call("GET", f"orgs/{acme.org.pk}/sessions"), 404)


def test_sessions_list_is_paginated(acme):
    for role in (Role.MEMBER, Role.DEVELOPER, Role.BILLING):
        signed_in(acme.user(role))
    admin = signed_in(acme.user(Role.ADMIN))
    first = admin.call("GET", f"orgs/{acme.org.pk}/sessions", {"limit": 2}).json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    second = admin.call("GET", f"orgs/{acme.org.pk}/sessions", {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(second["data"]) == 2 and second["next_cursor"] is None
    assert not {r["id"] for r in first["data"]} & {r["id"] for r in second["data"]}


def test_members_cannot_list_the_orgs_sessions(acme, bob):
    assert_error(signed_in(bob).call("GET", f"orgs/{acme.org.pk}/sessions"), 403, "role")
