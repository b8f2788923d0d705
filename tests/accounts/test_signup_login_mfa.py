"""Signup → e-mail verification → login → MFA enrolment → login with TOTP, then with a backup code."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.core import mail
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import User, UserSession
from apps.audit.models import AuditEvent

PASSWORD = "a-long-enough-passphrase-77"


def _totp_now(device: TOTPDevice, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):06d}"


def _signup_and_verify(client: Client, email: str) -> User:
    res = client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert res.status_code == 302, res.content[:500]
    # then a verification mail is sent and the user cannot use the portal before verifying
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s]+/", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[-1] if "testserver" in link else "/" + link.split("/", 3)[3]
    assert client.get(path).status_code == 200
    res = client.post(path)
    assert res.status_code == 302
    return User.objects.get(email=email)


def _enrol(client: Client, user: User) -> list[str]:
    page = client.get("/accounts/mfa/")
    assert page.status_code == 200
    assert b"data:image/svg+xml;base64," in page.content  # the QR code
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    res = client.post("/accounts/mfa/enroll/", {"code": _totp_now(device)})
    assert res.status_code == 200
    codes = re.findall(r"<li>([a-z0-9]{8})</li>", res.content.decode())
    assert len(codes) == 10
    return codes


@pytest.mark.django_db
def test_full_signup_verify_login_and_mfa_journey():
    client = Client()
    user = _signup_and_verify(client, "newcomer@example.com")
    assert user.emailaddress_set.get().verified
    # verified and logged in at once
    assert client.get("/").status_code == 302
    codes = _enrol(client, user)
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    assert AuditEvent.objects.filter(action="mfa.enrolled", target_id=user.pk).exists()
    client.post("/accounts/logout/")

    # login with password: the second step is required before anything else
    fresh = Client()
    res = fresh.post("/accounts/login/", {"login": "newcomer@example.com", "password": PASSWORD})
    assert res.status_code == 302
    blocked = fresh.get("/orgs/new/")
    assert blocked.status_code == 302 and blocked["Location"].startswith("/accounts/mfa/verify/")
    api = fresh.get("/api/v1/me")
    assert api.status_code == 401 and api.json()["error"]["code"] == "mfa_required"
    # a wrong code is refused
    assert fresh.post("/accounts/mfa/verify/", {"code": "000000", "next": "/orgs/new/"}).status_code == 400
    # a valid code passes once django-otp's back-off after the failure (1 s) is over; the code used
    # at enrolment cannot be replayed, so this is the next step's code (within the device's tolerance)
    time.sleep(1.1)
    device.refresh_from_db()
    res = fresh.post("/accounts/mfa/verify/", {"code": _totp_now(device, drift=1), "next": "/orgs/new/"})
    assert res.status_code == 302 and res["Location"] == "/orgs/new/"
    assert fresh.get("/orgs/new/").status_code == 200
    assert fresh.get("/api/v1/me").json()["mfa_enabled"] is True

    # login again with a backup code instead; the code works once only
    other = Client()
    other.post("/accounts/login/", {"login": "newcomer@example.com", "password": PASSWORD})
    assert other.post("/accounts/mfa/verify/", {"code": codes[0]}).status_code == 302
    assert other.get("/orgs/new/").status_code == 200
    third = Client()
    third.post("/accounts/login/", {"login": "newcomer@example.com", "password": PASSWORD})
    assert third.post("/accounts/mfa/verify/", {"code": codes[0]}).status_code == 400
    assert AuditEvent.objects.filter(action="mfa.backup_code_used").count() == 1


@pytest.mark.django_db
def test_unverified_email_cannot_log_in():
    client = Client()
    client.post("/accounts/signup/", {"email": "x@example.com", "password1": PASSWORD, "password2": PASSWORD})
    other = Client()
    res = other.post("/accounts/login/", {"login": "x@example.com", "password": PASSWORD})
    assert res.status_code == 302 and "confirm-email" in res["Location"]
    assert other.get("/api/v1/me").status_code == 401


@pytest.mark.django_db
def test_login_locks_after_repeated_failures(alice, password):
    client = Client()
    for _ in range(5):
        res = client.post("/accounts/login/", {"login": alice.email, "password": "wrong-password"})
        assert res.status_code == 200
    # the right password no longer works for a while: the account is locked against guessing
    res = client.post("/accounts/login/", {"login": alice.email, "password": password})
    assert res.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="user.login_failed", target_label=alice.email).count() >= 5


@pytest.mark.django_db
def test_mfa_code_guessing_is_rate_limited(alice, password):
    device = TOTPDevice.objects.create(user=alice, name="authenticator", confirmed=True)
    client = Client()
    client.post("/accounts/login/", {"login": alice.email, "password": password})
    statuses = [client.post("/accounts/mfa/verify/", {"code": "123456"}).status_code for _ in range(6)]
    assert statuses[-1] == 429
    # even the right code is refused while locked
    assert client.post("/accounts/mfa/verify/", {"code": _totp_now(device)}).status_code == 429


@pytest.mark.django_db
def test_enrolment_with_wrong_code_keeps_mfa_off(alice, login_client):
    client = login_client(alice)
    client.get("/accounts/mfa/")
    res = client.post("/accounts/mfa/enroll/", {"code": "999999"})
    assert res.status_code == 400
    assert not alice.has_mfa()


@pytest.mark.django_db
def test_backup_codes_regenerate_replaces_old_ones(alice, login_client):
    client = login_client(alice)
    client.get("/accounts/mfa/")
    old = _enrol(client, alice)
    # without a current code nothing changes
    refused = client.post("/accounts/mfa/backup-codes/", {"code": ""}, follow=True)
    assert b"No new backup codes" in refused.content
    res = client.post("/accounts/mfa/backup-codes/", {"code": old[0]})
    assert res["Cache-Control"].startswith("max-age=0") and "no-store" in res["Cache-Control"]
    new = re.findall(r"<li>([a-z0-9]{8})</li>", res.content.decode())
    assert len(new) == 10 and not set(old) & set(new)


@pytest.mark.django_db
def test_disabling_mfa_needs_a_current_code(alice, login_client):
    client = login_client(alice)
    _enrol(client, alice)
    client.post("/accounts/mfa/disable/", {"code": "000000"})
    assert alice.has_mfa()
    time.sleep(1.1)  # django-otp's back-off after a wrong code
    device = TOTPDevice.objects.get(user=alice, confirmed=True)
    client.post("/accounts/mfa/disable/", {"code": _totp_now(device, drift=1)})
    assert not alice.has_mfa()


@pytest.mark.django_db
def test_sessions_are_listed_and_revocable(alice, password):
    # given alice signed in on two browsers
    laptop, phone = Client(HTTP_USER_AGENT="Laptop"), Client(HTTP_USER_AGENT="Phone")
    for c in (laptop, phone):
        c.post("/accounts/login/", {"login": alice.email, "password": password})
    sessions = laptop.get("/api/v1/me/sessions").json()["data"]
    assert {s["user_agent"] for s in sessions} == {"Laptop", "Phone"}
    phone_session = next(s for s in sessions if s["user_agent"] == "Phone")
    assert not phone_session["current"]
    # when the laptop ends the phone's session
    assert laptop.delete(f"/api/v1/me/sessions/{phone_session['id']}").status_code == 204
    # then the phone is signed out at once
    assert phone.get("/api/v1/me").status_code == 401
    assert laptop.get("/api/v1/me").status_code == 200
    assert UserSession.objects.filter(user=alice, ended_at__isnull=True).count() == 1
    assert AuditEvent.objects.filter(action="session.revoked").count() == 1


@pytest.mark.django_db
def test_one_user_cannot_end_anothers_session(alice, bob, password):
    a, b = Client(), Client()
    a.post("/accounts/login/", {"login": alice.email, "password": password})
    b.post("/accounts/login/", {"login": bob.email, "password": password})
    bob_session = UserSession.objects.get(user=bob)
    assert a.delete(f"/api/v1/me/sessions/{bob_session.pk}").status_code == 404
    assert b.get("/api/v1/me").status_code == 200


@pytest.mark.django_db
def test_password_reset_sends_a_mail_without_revealing_accounts(alice):
    client = Client()
    client.post("/accounts/password/reset/", {"email": alice.email})
    client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert any(alice.email in m.to for m in mail.outbox)
    assert all("nobody@example.com" not in m.to or "account" in m.body.lower() for m in mail.outbox)


@pytest.mark.django_db
def test_code_prompt_does_not_claim_you_are_signed_in(alice, password):
    TOTPDevice.objects.create(user=alice, name="authenticator", confirmed=True)
    client = Client()
    res = client.post("/accounts/login/", {"login": alice.email, "password": password}, follow=True)
    assert res.redirect_chain[-1][0].startswith("/accounts/mfa/verify/")
    assert b"Enter your code" in res.content
    assert b"Successfully signed in" not in res.content


@pytest.mark.django_db
def test_sweep_closes_sessions_that_expired_on_their_own(alice, password):
    from django.contrib.sessions.models import Session

    from apps.accounts.tasks import sweep_sessions
    from apps.core import clock

    live, stale = Client(), Client()
    for c in (live, stale):
        c.post("/accounts/login/", {"login": alice.email, "password": password})
    Session.objects.filter(session_key=stale.session.session_key).update(expire_date=clock.now())
    sweep_sessions.delay()  # runs inline on the test executor
    open_sessions = UserSession.objects.filter(user=alice, ended_at__isnull=True)
    assert list(open_sessions.values_list("session_key", flat=True)) == [live.session.session_key]
    assert [s["id"] for s in live.get("/api/v1/me/sessions").json()["data"]] == [open_sessions.get().pk]


@pytest.mark.django_db
def test_turning_mfa_off_elsewhere_releases_a_half_signed_in_session(alice, password):
    TOTPDevice.objects.create(user=alice, name="authenticator", confirmed=True)
    waiting = Client()
    waiting.post("/accounts/login/", {"login": alice.email, "password": password})
    assert waiting.get("/api/v1/me").status_code == 401
    TOTPDevice.objects.filter(user=alice).delete()  # as mfa_disable does from another session
    assert waiting.get("/api/v1/me").status_code == 200


@pytest.mark.django_db
def test_signup_succeeds_while_the_mail_server_is_down_and_the_mail_follows(settings):
    from apps.core import clock
    from apps.core.executor import executor
    from tests.orgs.test_members_and_invitations import FlakyMailBackend

    settings.PLAZA_EMAIL_DELIVERY_BACKEND = "tests.orgs.test_members_and_invitations.FlakyMailBackend"
    FlakyMailBackend.failures = 1
    client = Client()
    res = client.post("/accounts/signup/", {"email": "later@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert res.status_code == 302 and mail.outbox == []
    executor.run_due(clock.now() + dt.timedelta(seconds=31))
    assert len(mail.outbox) == 1 and "confirm-email" in mail.outbox[0].body


@pytest.mark.parametrize(
    "next_url", ["a\x00b", "/x\r\nSet-Cookie: a=b", "//evil.example/", "https://evil.example/", "\x7f"]
)
def test_the_mfa_prompt_never_redirects_to_a_broken_or_foreign_next(db, client, next_url):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    for method in (client.get, client.post):
        res = method("/accounts/mfa/verify/", {"next": next_url})
        assert res.status_code == 302 and res["Location"] == "/", (method, next_url, res.status_code)
