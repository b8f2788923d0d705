"""Passkeys (WebAuthn) as a second factor: django-otp-webauthn's JSON ceremony endpoints, wired into
Plaza's half-signed-in session (``plaza_mfa``), attempt limit and audit trail.

A passkey is a django-otp device (``WebAuthnCredential``), so ``User.has_mfa()``, "turn off" and
an admin's factor reset cover it with no special case. Passwordless sign-in is off
(``OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN``): the ceremony only ever completes the second step of
someone who has signed in with a password or single sign-on.

Mounted at ``/accounts/mfa/passkeys/`` under the package's ``otp_webauthn`` namespace, so its
template tags (``render_otp_webauthn_register_scripts``, ``render_otp_webauthn_auth_scripts``) find
these views. The authentication endpoints and the script catalogue stay open to a session that
still owes its second factor (``MFARequiredMiddleware``); registration does not.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.urls import path
from django.views.i18n import JavaScriptCatalog
from django_otp import login as otp_login
from django_otp_webauthn import exceptions
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from apps.accounts import services
from apps.core.errors import RateLimited

# What MFARequiredMiddleware lets through before the second factor: the sign-in ceremony only.
OPEN_BEFORE_VERIFIED = ("/accounts/mfa/passkeys/authentication/", "/accounts/mfa/passkeys/jsi18n/")


class TooManyAttempts(exceptions.OTPWebAuthnApiError):
    status_code = 429
    default_detail = "Too many attempts. Wait five minutes and try again."
    default_code = "mfa_locked"


class PasskeyRegistrationCompleteView(CompleteCredentialRegistrationView):
    """Stores the new passkey (the package's checks: a session that has a factor must be verified
    first), then names and audits it; a first factor turns the code prompt on for later sign-ins
    and signs other sessions out, as enrolling an authenticator app does."""

    def post(self, *args, **kwargs):
        user = self.request.user
        first_factor = not user.has_mfa()
        with transaction.atomic():
            response = super().post(*args, **kwargs)
            passkey_id = json.loads(response.content)["id"]
            services.mfa_passkey_added(user=user, passkey_id=passkey_id, first_factor=first_factor)
        self.request.session["plaza_mfa"] = True
        if first_factor:
            services.user_sessions_end_others(user=user, keep_session_key=self.request.session.session_key)
        return response


class PasskeyAuthenticationCompleteView(CompleteCredentialAuthenticationView):
    """The second step of signing in with a passkey: marks the session verified exactly as a code
    does (``otp_login`` and a new session key), counted against the same attempt limit."""

    def check_can_authenticate(self):
        super().check_can_authenticate()  # refuses anyone not signed in (passwordless is off)
        try:
            services.mfa_attempt_check(user=self.request.user)
        except RateLimited as exc:
            raise TooManyAttempts() from exc

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        user = self.request.user
        if user.is_authenticated and not isinstance(exc, TooManyAttempts):
            services.mfa_passkey_verify_failed(user=user, reason=getattr(exc, "code", "error"))
        return response

    def complete_auth(self, device) -> None:
        services.mfa_passkey_verified(user=self.request.user, passkey=device)
        otp_login(self.request, device)
        self.request.session.cycle_key()  # a new key once fully signed in (the tracked row follows it)


urlpatterns = [
    path("registration/begin/", BeginCredentialRegistrationView.as_view(), name="credential-registration-begin"),
    path(
        "registration/complete/",
        PasskeyRegistrationCompleteView.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        BeginCredentialAuthenticationView.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        PasskeyAuthenticationCompleteView.as_view(),
        name="credential-authentication-complete",
    ),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
