"""Passkeys end to end in Chromium, with its virtual authenticator (DevTools ``WebAuthn`` domain)
standing in for a platform authenticator: add a passkey on the security page, sign out, sign in with
the password, pass the second step with the passkey, land on the portal."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.helpers import screenshot
from tests.factories import PASSWORD


def _virtual_authenticator(page: Page) -> tuple[object, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, found["authenticatorId"]


def test_member_adds_a_passkey_and_signs_in_with_it(page: Page, login_as, live_server, alice, settings):
    from django_otp_webauthn.models import WebAuthnCredential

    from apps.audit.models import AuditEvent

    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    assert live_server.url.startswith("http://localhost:")
    cdp, authenticator = _virtual_authenticator(page)

    # --- add a passkey on the security page -------------------------------------------------------
    login_as(alice)
    page.goto("/accounts/mfa/")
    passkeys = page.get_by_role("region", name="Passkeys")
    expect(passkeys).to_contain_text("No passkeys yet.")
    passkeys.get_by_role("button", name="Add a passkey").click()
    # the page reloads with the new passkey listed and two-factor on
    expect(passkeys.get_by_role("list", name="Your passkeys").get_by_role("listitem")).to_have_count(1)
    expect(page.get_by_text("Signing in asks for one of your passkeys.")).to_be_visible()
    screenshot(page, "passkey-01-added")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1 and credentials[0]["rpId"] == "localhost"
    assert WebAuthnCredential.objects.filter(user=alice, confirmed=True).count() == 1
    assert alice.has_mfa()

    # --- sign out, sign in with the password ------------------------------------------------------
    page.goto("/accounts/logout/")
    page.get_by_role("button", name="Sign Out").click()
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(alice.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # --- the second step, with the passkey -----------------------------------------------------------
    expect(page.get_by_role("heading", name="Use your passkey")).to_be_visible()
    screenshot(page, "passkey-02-verify")
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url(lambda url: "/accounts/mfa/verify/" not in url)
    expect(page.get_by_role("navigation", name="Account")).to_contain_text(alice.email)
    # the portal opens, not the prompt again
    page.goto("/orgs/new/")
    expect(page.get_by_role("heading", name="Create an organisation")).to_be_visible()
    assert WebAuthnCredential.objects.get(user=alice).last_used_at is not None
    assert AuditEvent.objects.filter(action="mfa.passkey_added", target_id=alice.pk).exists()
    assert not AuditEvent.objects.filter(action="mfa.verify_failed", target_id=alice.pk).exists()
