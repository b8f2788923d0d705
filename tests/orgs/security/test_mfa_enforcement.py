"""MFA required: an unenrolled member reaches nothing but enrolment until they have a factor; admins
reset a member's factors; backup codes can be regenerated."""

from __future__ import annotations

from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import UserSession
from apps.audit.models import AuditEvent
from apps.orgs.models import Membership, Role
from apps.orgs.security.selectors import session_demands_for_user
from tests.orgs.security.conftest import give_factors, set_policy, signed_in, totp_now
from tests.orgs.test_authorization import assert_error


def test_mfa_required_blocks_every_portal_page_until_enrolment(acme, bob):
    # given acme requires MFA and bob has no second factor
    set_policy(acme.org, require_mfa=True)
    client = signed_in(bob)
    # when he opens portal pages, then each sends him to enrolment
    for path in (f"/orgs/{acme.org.pk}/", f"/orgs/{acme.org.pk}/members/", "/accounts/sessions/", "/orgs/new/"):
        res = client.get(path)
        assert res.status_code == 302, path
        assert res["Location"].startswith("/accounts/mfa/?next="), res["Location"]
    # and only enrolment and sign-out stay open
    assert client.get("/accounts/mfa/").status_code == 200
    assert client.get("/accounts/logout/").status_code == 200


def test_mfa_required_refuses_session_api_calls_with_enrolment_code(acme, bob):
    set_policy(acme.org, require_mfa=True)
    client = signed_in(bob)
    for path in ("me", "orgs", f"orgs/{acme.org.pk}", "me/sessions"):
        assert_error(client.call("GET", path), 403, "mfa_enrolment_required")
    assert_error(client.call("DELETE", "me/sessions"), 403, "mfa_enrolment_required")
    assert UserSession.objects.filter(user=bob, ended_at__isnull=True).exists()


def test_after_enrolment_everything_opens(acme, bob):
    # given bob is held at enrolment
    set_policy(acme.org, require_mfa=True)
    client = signed_in(bob)
    assert client.get(f"/orgs/{acme.org.pk}/").status_code == 302
    # when he enrols an authenticator in the same session
    client.get("/accounts/mfa/")
    device = TOTPDevice.objects.get(user=bob, confirmed=False)
    assert client.post("/accounts/mfa/enroll/", {"code": totp_now(device)}).status_code == 200
    # then the portal and the API let him in
    assert client.get(f"/orgs/{acme.org.pk}/").status_code == 200
    assert client.call("GET", f"orgs/{acme.org.pk}").status_code == 200
    assert client.call("GET", "me").json()["mfa_enabled"] is True


def test_a_member_with_a_factor_is_not_held_at_enrolment(acme, bob):
    set_policy(acme.org, require_mfa=True)
    give_factors(bob)
    client = signed_in(bob)
    assert client.get(f"/orgs/{acme.org.pk}/").status_code == 200
    assert client.call("GET", f"orgs/{acme.org.pk}").status_code == 200


def test_mfa_policy_of_another_or_a_left_organisation_does_not_apply(acme, globex, bob, charlie):
    # given globex requires MFA; charlie (globex) has none, bob (acme) is not in globex
    set_policy(globex.org, require_mfa=True)
    assert signed_in(bob).call("GET", "me").status_code == 200
    assert_error(signed_in(charlie).call("GET", "me"), 403, "mfa_enrolment_required")
    # when charlie's globex membership is deactivated, globex's policy no longer holds him
    Membership.objects.filter(org=globex.org, user=charlie).update(deactivated_at="2026-01-01T00:00:00Z")
    assert signed_in(charlie).call("GET", "me").status_code == 200


def test_tokens_are_not_held_at_enrolment(acme, api_for):
    set_policy(acme.org, require_mfa=True)
    assert api_for(acme.org, role=Role.ADMIN).call("GET", f"orgs/{acme.org.pk}").status_code == 200


def test_demands_take_one_query(acme, bob, django_assert_num_queries):
    set_policy(acme.org, require_mfa=True, idle_timeout_minutes=30)
    with django_assert_num_queries(1):
        demands = session_demands_for_user(bob)
    assert demands.mfa_required and demands.idle_timeout_minutes == 30


# --- admin reset of a member's factors ------------------------------------------------------------
def test_admin_resets_a_members_factors_and_ends_their_sessions(acme, bob):
    # given bob has factors and is signed in on a client
    give_factors(bob)
    bobs = signed_in(bob)
    member = Membership.objects.get(org=acme.org, user=bob)
    admin = signed_in(acme.user(Role.ADMIN))
    # when an admin resets his factors
    res = admin.call("POST", f"orgs/{acme.org.pk}/members/{member.pk}/mfa-reset")
    # then his devices are gone, his session ended, and the reset is in acme's audit log
    assert res.status_code == 200, res.content
    assert res.json() == {"devices_removed": 2, "sessions_ended": 1}
    assert not TOTPDevice.objects.filter(user=bob).exists() and not StaticDevice.objects.filter(user=bob).exists()
    assert_error(bobs.call("GET", "me"), 401)
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="member.mfa_reset")
    assert event.target_id == member.pk and event.changes["sessions_ended"] == 1
    assert event.actor_id == acme.user(Role.ADMIN).pk


def test_after_a_reset_a_member_must_enrol_again_where_mfa_is_required(acme, bob):
    set_policy(acme.org, require_mfa=True)
    give_factors(bob)
    give_factors(acme.owner)
    member = Membership.objects.get(org=acme.org, user=bob)
    owner = signed_in(acme.owner)
    assert owner.call("POST", f"orgs/{acme.org.pk}/members/{member.pk}/mfa-reset").status_code == 200
    res = signed_in(bob).get(f"/orgs/{acme.org.pk}/")
    assert res.status_code == 302 and res["Location"].startswith("/accounts/mfa/")


def test_an_admin_cannot_reset_an_owners_factors_but_an_owner_can(acme, second_owner, api_for):
    give_factors(second_owner.user)
    path = f"orgs/{acme.org.pk}/members/{second_owner.pk}/mfa-reset"
    # an admin, by session or by token, is refused and nothing changes
    assert_error(signed_in(acme.user(Role.ADMIN)).call("POST", path), 403, "owner_only")
    assert_error(api_for(acme.org, role=Role.ADMIN).call("POST", path), 403, "owner_only")
    assert TOTPDevice.objects.filter(user=second_owner.user).exists()
    assert not AuditEvent.objects.filter(action="member.mfa_reset").exists()
    # another owner may
    assert signed_in(acme.owner).call("POST", path).status_code == 200
    assert not TOTPDevice.objects.filter(user=second_owner.user).exists()


def test_nobody_resets_their_own_factors_through_the_admin_endpoint(acme, alice):
    give_factors(alice)
    own = Membership.objects.get(org=acme.org, user=alice)
    res = signed_in(alice).call("POST", f"orgs/{acme.org.pk}/members/{own.pk}/mfa-reset")
    assert_error(res, 403, "own_account")
    assert TOTPDevice.objects.filter(user=alice).exists()


def test_another_tenants_admin_cannot_reset_factors(acme, globex, bob):
    give_factors(bob)
    member = Membership.objects.get(org=acme.org, user=bob)
    charlie = signed_in(globex.owner)
    assert_error(charlie.call("POST", f"orgs/{acme.org.pk}/members/{member.pk}/mfa-reset"), 404)
    assert_error(charlie.call("POST", f"orgs/{globex.org.pk}/members/{member.pk}/mfa-reset"), 404)
    assert TOTPDevice.objects.filter(user=bob).exists()


def test_console_member_security_page_shows_factors_and_resets_them(acme, bob):
    give_factors(bob)
    member = Membership.objects.get(org=acme.org, user=bob)
    admin = signed_in(acme.user(Role.ADMIN))
    page = admin.get(f"/orgs/{acme.org.pk}/console/members/{member.pk}/security/")
    assert page.status_code == 200
    assert b"Authenticator app (TOTP)" in page.content and b"Backup codes" in page.content
    assert b"abcd2345" not in page.content  # types, never secrets
    res = admin.post(f"/orgs/{acme.org.pk}/console/members/{member.pk}/mfa-reset/")
    assert res.status_code == 302
    assert not TOTPDevice.objects.filter(user=bob).exists()
    # a plain member cannot open the page
    assert (
        signed_in(acme.user(Role.DEVELOPER))
        .get(f"/orgs/{acme.org.pk}/console/members/{member.pk}/security/")
        .status_code
        == 403
    )


def test_console_refuses_an_admin_resetting_an_owner(acme, second_owner):
    give_factors(second_owner.user)
    admin = signed_in(acme.user(Role.ADMIN))
    res = admin.post(f"/orgs/{acme.org.pk}/console/members/{second_owner.pk}/mfa-reset/", follow=True)
    assert b"Only an owner can reset the factors of an owner." in res.content
    assert TOTPDevice.objects.filter(user=second_owner.user).exists()


# --- recovery codes ------------------------------------------------------------------------------
def test_backup_code_regeneration_is_offered_audited_and_needs_a_code(acme, bob):
    give_factors(bob)
    client = signed_in(bob)
    page = client.get("/accounts/mfa/")
    assert b"Make new backup codes" in page.content
    # with a current code (here a backup code: the TOTP step was spent signing in): ten new codes,
    # audited, and the old one is gone
    res = client.post("/accounts/mfa/backup-codes/", {"code": "abcd2345"})
    assert res.status_code == 200
    backup = StaticDevice.objects.get(user=bob, name="backup")
    new_codes = set(backup.token_set.values_list("token", flat=True))
    assert len(new_codes) == 10 and "abcd2345" not in new_codes
    assert AuditEvent.objects.filter(action="mfa.backup_codes_regenerated", target_id=bob.pk).count() == 1
    # without one: refused, the codes stay as they are
    refused = client.post("/accounts/mfa/backup-codes/", {"code": "000000"})
    assert refused.status_code == 302
    assert set(backup.token_set.values_list("token", flat=True)) == new_codes
    assert AuditEvent.objects.filter(action="mfa.backup_codes_regenerated").count() == 1


def test_a_passkey_only_member_is_not_held_at_enrolment_where_mfa_is_required(acme, bob, settings):
    from tests.accounts.softkey import ORIGIN, RP_ID, SoftPasskey, register_passkey, verify_with_passkey

    settings.OTP_WEBAUTHN_RP_ID, settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = RP_ID, [ORIGIN]
    # given acme requires MFA and bob, with no factor yet, is held at enrolment
    set_policy(acme.org, require_mfa=True)
    client = signed_in(bob)
    held = client.get(f"/orgs/{acme.org.pk}/")
    assert held.status_code == 302 and held["Location"].startswith("/accounts/mfa/")
    # when he adds a passkey (from the enrolment page) and nothing else
    passkey = SoftPasskey()
    assert register_passkey(client, passkey).status_code == 200
    # then the organisation opens, now and after signing in again with the passkey
    assert client.get(f"/orgs/{acme.org.pk}/").status_code == 200
    again = signed_in(bob)
    assert again.get(f"/orgs/{acme.org.pk}/").status_code == 302  # the passkey step is owed first
    assert verify_with_passkey(again, passkey).status_code == 200
    assert again.get(f"/orgs/{acme.org.pk}/").status_code == 200


def test_admin_reset_removes_a_members_passkeys(acme, bob, settings):
    from django_otp_webauthn.models import WebAuthnCredential

    from tests.accounts.softkey import ORIGIN, RP_ID, SoftPasskey, register_passkey

    settings.OTP_WEBAUTHN_RP_ID, settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = RP_ID, [ORIGIN]
    assert register_passkey(signed_in(bob), SoftPasskey()).status_code == 200
    member = Membership.objects.get(org=acme.org, user=bob)
    admin = signed_in(acme.user(Role.ADMIN))
    page = admin.get(f"/orgs/{acme.org.pk}/console/members/{member.pk}/security/")
    assert b"Passkey" in page.content
    res = admin.call("POST", f"orgs/{acme.org.pk}/members/{member.pk}/mfa-reset")
    assert res.status_code == 200 and res.json()["devices_removed"] == 1
    assert not WebAuthnCredential.objects.filter(user=bob).exists()
    assert not bob.has_mfa()
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="member.mfa_reset")
    assert event.changes["device_types"] == ["WebAuthnCredential"]
