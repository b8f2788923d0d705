"""Regression tests for the findings of the security review (one test per finding).

Tests marked ``postgres_only`` exercise row locks under real concurrency: SQLite serialises every
write transaction (``BEGIN IMMEDIATE``), so the races they show cannot happen there.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models import QuerySet
from django.db.utils import OperationalError
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import UserSession
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record, audit_verify
from apps.core import clock
from apps.core.errors import Conflict
from apps.orgs import services
from apps.orgs.models import Invitation, Membership, Role, Workspace
from apps.orgs.policy import Principal
from apps.orgs.services import members as members_services
from tests.conftest import PRODUCTION_ENV
from tests.factories import UserFactory

postgres_only = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL row locks"
)
NEW_PASSWORD = "N3w-horse-battery-77"


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def _signed_in(user, password: str) -> Client:
    client = Client()
    assert client.post("/accounts/login/", {"login": user.email, "password": password}).status_code == 302
    return client


def _in_threads(*fns, timeout: float = 30) -> list[BaseException]:
    """Run each function in its own thread (own database connection); the exceptions raised."""
    errors: list[BaseException] = []

    def run(fn):
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - collected for the test to inspect
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors


# --- MFA ------------------------------------------------------------------------------------------
def test_enrolled_user_cannot_swap_the_authenticator_without_a_current_code(alice, password):
    # given alice's authenticator, and a second (say hijacked) session that passed the second step
    device = TOTPDevice.objects.create(user=alice, name="authenticator", confirmed=True)
    owner = _signed_in(alice, password)
    assert owner.post("/accounts/mfa/verify/", {"code": _code(device)}).status_code == 302
    other = _signed_in(alice, password)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # let the same code verify again
    assert other.post("/accounts/mfa/verify/", {"code": _code(device)}).status_code == 302
    # when that session posts to the enrolment form (a wrong code, then the new device's code)
    other.post("/accounts/mfa/enroll/", {"code": "000000"})
    pending = TOTPDevice.objects.filter(user=alice, confirmed=False).first()
    if pending is not None:
        other.post("/accounts/mfa/enroll/", {"code": _code(pending)})
    # then alice's authenticator is still the one, and her own session was not signed out
    assert list(TOTPDevice.objects.filter(user=alice, confirmed=True).values_list("pk", flat=True)) == [device.pk]
    assert owner.get("/api/v1/me").status_code == 200


# --- sessions -------------------------------------------------------------------------------------
def test_session_stays_revocable_after_a_password_change(alice, password):
    laptop = _signed_in(alice, password)
    res = laptop.post(
        "/accounts/password/change/", {"oldpassword": password, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert res.status_code == 302
    # the password change cycled the laptop's session key; it must still be tracked under the new one
    assert UserSession.objects.filter(session_key=laptop.session.session_key, ended_at__isnull=True).exists()
    phone = _signed_in(alice, NEW_PASSWORD)
    phone.post("/accounts/sessions/", {"op": "end_others"})
    assert laptop.get("/api/v1/me").status_code == 401


def test_password_and_email_changes_are_audited(alice, password):
    client = _signed_in(alice, password)
    client.post(
        "/accounts/password/change/", {"oldpassword": password, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    client.post("/accounts/email/", {"action_add": "", "email": "alice.second@acme.test"})
    actions = set(AuditEvent.objects.filter(target_id=alice.pk).values_list("action", flat=True))
    assert {"user.password_changed", "user.email_added"} <= actions


def test_session_too_old_in_the_portal_signs_out_instead_of_looping(acme, alice, password):
    acme.org.max_session_age_minutes = 5
    acme.org.save()
    client = _signed_in(alice, password)
    session = client.session
    session["plaza_login_at"] = time.time() - 6 * 60
    session.save()
    res = client.get(f"/orgs/{acme.org.pk}/")
    assert res.status_code == 302 and "/accounts/login/" in res["Location"]
    # the sign-in page must be shown, not bounce a still-signed-in visitor back to the org page
    assert client.get(res["Location"]).status_code == 200


def test_mfa_prompt_keeps_the_whole_next_url(alice, password):
    TOTPDevice.objects.create(user=alice, name="authenticator", confirmed=True)
    client = _signed_in(alice, password)
    res = client.get("/orgs/switch/?org=x&next=/elsewhere")
    assert res.status_code == 302
    from urllib.parse import parse_qs, urlsplit

    assert parse_qs(urlsplit(res["Location"]).query)["next"] == ["/orgs/switch/?org=x&next=/elsewhere"]


# --- organisations --------------------------------------------------------------------------------
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_owner_removals_keep_one_owner(acme, monkeypatch):
    # given two owners who leave at the same moment
    second = acme.members[Role.ADMIN]
    Membership.objects.filter(org=acme.org, user=second).update(role=Role.OWNER)
    counted = threading.Barrier(2, timeout=2)
    real_owners_left = members_services._owners_left

    def owners_left_then_wait(*args, **kwargs):
        left = real_owners_left(*args, **kwargs)
        try:
            counted.wait()  # both have counted before either removes (if the count lets them)
        except threading.BrokenBarrierError:
            pass
        return left

    monkeypatch.setattr(members_services, "_owners_left", owners_left_then_wait)

    def leave(user):
        membership = Membership.objects.select_related("org", "user").get(org=acme.org, user=user)
        principal = Principal(kind="user", user=user, mfa_verified=True)
        return lambda: services.member_remove(principal=principal, membership=membership)

    errors = _in_threads(leave(acme.owner), leave(second))
    # then one of them is refused and the organisation keeps an owner
    assert Membership.objects.filter(org=acme.org, role=Role.OWNER).count() == 1
    assert len(errors) == 1 and isinstance(errors[0], Conflict) and errors[0].code == "last_owner"


def test_expired_invitation_does_not_block_a_new_one(acme, alice, api_for):
    principal = Principal(kind="user", user=alice, mfa_verified=True)
    old, _ = services.invitation_create(principal=principal, org=acme.org, email="late@example.com", role="member")
    Invitation.objects.filter(pk=old.pk).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    # the expired one cannot be revoked (it is not pending) ...
    api = api_for(acme.org)
    assert api.call("DELETE", f"orgs/{acme.org.pk}/invitations/{old.pk}").status_code == 409
    # ... so inviting the address again must work
    res = api.call("POST", f"orgs/{acme.org.pk}/invitations", {"email": "late@example.com"})
    assert res.status_code == 201, res.content
    assert Invitation.objects.get(pk=old.pk).status == "revoked"


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_revoke_racing_an_acceptance_lets_only_one_win(acme, alice, monkeypatch):
    invitee = UserFactory(email="new@example.com")
    principal = Principal(kind="user", user=alice, mfa_verified=True)
    invitation, raw = services.invitation_create(principal=principal, org=acme.org, email=invitee.email, role="member")
    fetched, revoked = threading.Event(), threading.Event()
    real_by_token = members_services.invitation_by_token

    def by_token_then_pause(*args, **kwargs):
        found = real_by_token(*args, **kwargs)
        fetched.set()
        revoked.wait(1.5)  # the revoke runs now, unless it has to wait for this transaction
        return found

    monkeypatch.setattr(members_services, "invitation_by_token", by_token_then_pause)

    def revoke():
        fetched.wait(5)
        try:
            services.invitation_revoke(invitation=Invitation.objects.get(pk=invitation.pk))
        finally:
            revoked.set()

    _in_threads(lambda: services.invitation_accept(user=invitee, raw_token=raw), revoke)
    final = Invitation.objects.get(pk=invitation.pk)
    joined = Membership.objects.filter(org=acme.org, user=invitee).exists()
    assert not (final.accepted_at and final.revoked_at)
    assert joined == bool(final.accepted_at)


def test_api_answers_409_when_a_uniqueness_race_is_lost(acme, api_for, monkeypatch):
    api = api_for(acme.org)
    url = f"orgs/{acme.org.pk}/workspaces"
    assert api.call("POST", url, {"name": "Reports", "slug": "reports"}).status_code == 201
    # a second request whose existence check ran before the first one committed
    real_exists = QuerySet.exists
    monkeypatch.setattr(QuerySet, "exists", lambda qs: False if qs.model is Workspace else real_exists(qs))
    res = api.call("POST", url, {"name": "Reports", "slug": "reports"})
    assert res.status_code == 409 and res.json()["error"]["type"] == "conflict_error"


# --- audit log ------------------------------------------------------------------------------------
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_to_a_brand_new_chain_stay_linked():
    """Guard, not a bug: on PostgreSQL the second creator of a new head row waits on its primary
    key, gets an IntegrityError, and get_or_create re-reads the committed head FOR UPDATE."""
    errors = _in_threads(
        *[lambda i=i: audit_record(action="test.appended", org_id="org_NEWCHAIN", changes={"i": i}) for i in range(8)]
    )
    report = audit_verify(org_id="org_NEWCHAIN")
    assert not errors and report.ok and report.entries == 8


# --- embedded executor ----------------------------------------------------------------------------
def test_executor_thread_survives_a_failing_call():
    from apps.core.executor import EmbeddedExecutor

    threaded = EmbeddedExecutor(manual=False)
    threaded.submit("core.no_such_task")  # a typo in a beat entry does the same
    time.sleep(0.5)
    assert threaded._thread is not None and threaded._thread.is_alive()


# --- settings and probes --------------------------------------------------------------------------
def _production(code: str, tmp_path, **overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("EMAIL_BACKEND", "DATABASE_URL")}
    env.update({**PRODUCTION_ENV, "PLAZA_DATA_DIR": str(tmp_path), **overrides})
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings as s; " + code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_a_wildcard_allowed_host(tmp_path):
    out = _production("print('started')", tmp_path, ALLOWED_HOSTS="*")
    assert out.returncode != 0 and "ALLOWED_HOSTS" in out.stderr, out.stdout + out.stderr


def test_production_mails_by_smtp_and_uses_host_only_cookies(tmp_path):
    out = _production("print(s.PLAZA_EMAIL_DELIVERY_BACKEND, s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME)", tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["django.core.mail.backends.smtp.EmailBackend", "__Host-sessionid", "__Host-csrftoken"]


@pytest.mark.django_db
def test_readyz_does_not_publish_internal_error_details_in_production(client, monkeypatch, settings):
    settings.IS_PRODUCTION = True

    def broken_cursor(*args, **kwargs):
        raise OperationalError('connection to server at "db.internal" (10.0.3.4) failed: password for user "plaza"')

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    res = client.get("/readyz")
    assert res.status_code == 503
    assert res.json()["checks"]["database"] == {"ok": False, "error": "OperationalError"}
