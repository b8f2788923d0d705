"""Passkeys (django-otp-webauthn) as a second factor: adding one, signing in with it, removing it,
and how it counts for the code prompt and the audit trail. A software passkey answers the
ceremonies (tests/accounts/softkey.py); the browser test drives Chromium's virtual authenticator."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django_otp_webauthn.models import WebAuthnCredential

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.accounts.softkey import ORIGIN, RP_ID, SoftPasskey, register_passkey, verify_with_passkey
from tests.factories import PASSWORD
from tests.orgs.security.conftest import give_factors, signed_in


@pytest.fixture(autouse=True)
def _relying_party(settings):
    settings.OTP_WEBAUTHN_RP_ID = RP_ID
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [ORIGIN]


def password_client(user: User) -> Client:
    client = Client()
    assert client.post("/accounts/login/", {"login": user.email, "password": PASSWORD}).status_code == 302
    return client


def test_adding_a_first_passkey_turns_on_two_factor_and_is_audited(alice):
    # given alice has no second factor and is signed in
    client = password_client(alice)
    passkey = SoftPasskey()
    # when she adds a passkey
    res = register_passkey(client, passkey)
    # then it is stored, named, counts as her second factor and is audited
    assert res.status_code == 200, res.content
    credential = WebAuthnCredential.objects.get(user=alice)
    assert credential.confirmed and credential.name.startswith("Passkey added")
    assert alice.has_mfa()
    assert AuditEvent.objects.filter(action="mfa.enrolled", target_id=alice.pk, changes__method="passkey").exists()
    assert AuditEvent.objects.filter(action="mfa.passkey_added", target_id=alice.pk).exists()
    # this session stays usable; the settings page lists the passkey
    page = client.get("/accounts/mfa/")
    assert page.status_code == 200 and credential.name.encode() in page.content
    assert b"Add a passkey" in page.content


def test_signing_in_with_a_passkey_marks_the_session_verified_like_a_code(alice):
    passkey = SoftPasskey()
    register_passkey(password_client(alice), passkey)
    # given a fresh password sign-in: the second step is owed
    client = password_client(alice)
    blocked = client.get("/orgs/new/")
    assert blocked.status_code == 302 and blocked["Location"].startswith("/accounts/mfa/verify/")
    prompt = client.get("/accounts/mfa/verify/?next=/orgs/new/")
    assert b"Use a passkey" in prompt.content and b'name="code"' not in prompt.content  # no codes to enter
    # registering another passkey is not possible before the second step
    assert client.post("/accounts/mfa/passkeys/registration/begin/").status_code == 302
    key_before = client.session.session_key
    # when the passkey answers the sign-in ceremony
    res = verify_with_passkey(client, passkey, next_url="/orgs/new/")
    # then the session is verified with a new key and goes where it was headed
    assert res.status_code == 200, res.content
    assert res.json()["redirect_url"] == "/orgs/new/"
    assert client.session.session_key != key_before
    assert client.get("/orgs/new/").status_code == 200
    assert client.get("/api/v1/me").json()["mfa_enabled"] is True
    assert WebAuthnCredential.objects.get(user=alice).last_used_at is not None


def test_a_forged_passkey_assertion_is_refused_audited_and_counted(alice, settings):
    settings.PLAZA_MFA_MAX_ATTEMPTS = 2
    passkey = SoftPasskey()
    register_passkey(password_client(alice), passkey)
    client = password_client(alice)
    forger = ec.generate_private_key(ec.SECP256R1())
    for _ in range(2):
        res = verify_with_passkey(client, passkey, key=forger)
        assert res.status_code == 422, res.content
    assert client.get("/orgs/new/").status_code == 302  # still held at the prompt
    assert (
        AuditEvent.objects.filter(action="mfa.verify_failed", target_id=alice.pk, changes__method="passkey").count()
        == 2
    )
    # the attempt limit is the one codes share: even the right passkey waits now
    res = verify_with_passkey(client, passkey)
    assert res.status_code == 429 and res.json()["code"] == "mfa_locked"
    assert client.get("/orgs/new/").status_code == 302


def test_someone_else_s_passkey_does_not_verify_a_session(alice, bob):
    alices = SoftPasskey()
    register_passkey(password_client(alice), alices)
    register_passkey(password_client(bob), SoftPasskey())
    client = password_client(bob)
    res = verify_with_passkey(client, alices)
    assert res.status_code >= 400
    assert client.get("/orgs/new/").status_code == 302


def test_the_passkey_ceremony_does_not_sign_anyone_in(alice):
    passkey = SoftPasskey()
    register_passkey(password_client(alice), passkey)
    anonymous = Client()
    assert anonymous.post("/accounts/mfa/passkeys/authentication/begin/").status_code == 403
    assert anonymous.post("/accounts/mfa/passkeys/registration/begin/").status_code in (302, 401, 403)
    assert "_auth_user_id" not in anonymous.session


def test_a_totp_user_adds_a_passkey_and_may_use_either(bob):
    # given bob has an authenticator app and a verified session
    give_factors(bob)
    client = signed_in(bob)
    passkey = SoftPasskey()
    res = register_passkey(client, passkey)
    assert res.status_code == 200, res.content
    assert not AuditEvent.objects.filter(action="mfa.enrolled", target_id=bob.pk).exists()  # not his first factor
    # the prompt offers both
    other = password_client(bob)
    prompt = other.get("/accounts/mfa/verify/")
    assert b"Use a passkey" in prompt.content and b'name="code"' in prompt.content
    assert verify_with_passkey(other, passkey).status_code == 200
    assert other.get("/orgs/new/").status_code == 200


def test_a_passkey_only_user_can_add_an_authenticator_app(alice):
    client = password_client(alice)
    register_passkey(client, SoftPasskey())
    page = client.get("/accounts/mfa/")
    assert (
        b"Set up an authenticator app" in page.content and b"Signing in asks for one of your passkeys" in page.content
    )


def test_removing_passkeys_from_the_settings_page(alice, bob):
    client = password_client(alice)
    register_passkey(client, SoftPasskey())
    register_passkey(client, SoftPasskey())
    first, second = WebAuthnCredential.objects.filter(user=alice).order_by("pk")
    # nobody removes another person's passkey
    bobs = password_client(bob)
    assert bobs.post(f"/accounts/mfa/passkeys/{first.pk}/delete/").status_code == 302
    assert WebAuthnCredential.objects.filter(pk=first.pk).exists()
    # removing one leaves two-factor on
    assert client.post(f"/accounts/mfa/passkeys/{first.pk}/delete/").status_code == 302
    assert alice.has_mfa()
    assert AuditEvent.objects.filter(action="mfa.passkey_removed", target_id=alice.pk).count() == 1
    # removing the last turns it off, audited as such
    client.post(f"/accounts/mfa/passkeys/{second.pk}/delete/")
    assert not alice.has_mfa()
    assert AuditEvent.objects.filter(action="mfa.disabled", target_id=alice.pk).exists()
    assert client.get("/orgs/new/").status_code == 200
    assert password_client(alice).get("/orgs/new/").status_code == 200  # no prompt any more


@pytest.mark.parametrize("passkey_id", ["²", "٣", "1e3", "-1", "99999999999999999999999"])
def test_removing_a_passkey_by_a_strange_id_is_a_clear_refusal(db, passkey_id, client):
    from tests.factories import UserFactory

    user = UserFactory()
    client.force_login(user)
    res = client.post(f"/accounts/mfa/passkeys/{passkey_id}/delete/")
    assert res.status_code in (302, 404)
