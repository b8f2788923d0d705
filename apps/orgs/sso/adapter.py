"""allauth adapters for per-organisation single sign-on.

- ``SsoSocialAccountAdapter``: one openid_connect app per organisation, built at request time from
  its ``SsoConnection`` (provider id ``org-<org id>``; nothing is kept in allauth's SocialApp
  table); identities are trusted only for verified addresses in the organisation's verified
  domains (``email_verified`` must be True or "true"); existing accounts are linked by a verified
  address only, and an existing account (linked or found) is signed in only while its e-mail is the
  asserted address in a verified domain and its membership is not deactivated; HTTP goes through
  the SSRF guard.
- ``SsoAccountAdapter``: the SSO-required policy at the one place every password sign-in passes
  (``pre_login``): members of such an organisation are sent to single sign-on; owners pass (break-glass).
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from apps.accounts.adapter import AccountAdapter
from apps.orgs.sso.selectors import PROVIDER_PREFIX, enabled_connection_for_provider
from apps.orgs.sso.services import (
    claim_is_true,
    client_secret_of,
    discovery_url,
    sso_account_refusal,
    sso_email_allowed,
    sso_password_login_check,
    sso_password_login_refused,
)
from apps.orgs.sso.transport import guarded_session

SESSION_PROVIDER = "plaza_sso_provider"  # the provider id that signed this session in ("" for a password)
SESSION_BREAK_GLASS = "plaza_sso_break_glass"  # org ids entered by an owner's break-glass password sign-in


def social_app_for(connection):
    """The allauth app of one organisation's connection (unsaved: allauth only reads it)."""
    from allauth.socialaccount.models import SocialApp

    return SocialApp(
        provider="openid_connect",
        provider_id=connection.provider_id,
        name=connection.name,
        client_id=connection.client_id,
        secret=client_secret_of(connection),
        settings={
            "server_url": discovery_url(connection.issuer),
            "oauth_pkce_enabled": True,
            "scope": connection.scopes.split(),
            "token_auth_method": "client_secret_basic",
            "fetch_userinfo": True,
        },
    )


def asserted_email(sociallogin) -> tuple[str, bool]:
    """The address the identity provider asserted, and whether it said it is verified (the claim
    ``email_verified`` is True or "true": allauth passes it through raw, and "false" is truthy)."""
    for address in sociallogin.email_addresses:
        if address.email:
            return address.email.strip(), claim_is_true(address.verified)
    return "", False


def _normalise_verified(sociallogin) -> None:
    """Make the raw ``email_verified`` claims real booleans, so nothing allauth does later (marking
    the address verified on signup) reads the string "false" as yes."""
    for address in sociallogin.email_addresses:
        address.verified = claim_is_true(address.verified)


class SsoSocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request, provider=None, client_id=None):
        # Only asked-for apps: listing every organisation's IdP on the sign-in page would tell
        # anyone who Plaza's customers are. The e-mail-first page routes people instead.
        if not provider or not str(provider).startswith(PROVIDER_PREFIX):
            return []
        connection = enabled_connection_for_provider(provider)
        if connection is None or (client_id and client_id != connection.client_id):
            return []
        return [social_app_for(connection)]

    def get_requests_session(self):
        return guarded_session()

    def is_open_for_signup(self, request, sociallogin) -> bool:
        # Just-in-time accounts: the organisation vouches for its verified domains (checked in
        # pre_social_login), whether or not self-service signup is open.
        if str(sociallogin.account.provider).startswith(PROVIDER_PREFIX):
            return True
        return super().is_open_for_signup(request, sociallogin)

    def authenticate_by_email(self, sociallogin):
        provider = str(sociallogin.account.provider)
        if not provider.startswith(PROVIDER_PREFIX):
            return None
        connection = enabled_connection_for_provider(provider)
        email, verified = asserted_email(sociallogin)
        if connection is None or sso_email_allowed(connection, email, verified) is not None:
            return None
        # Link only to an account whose owner proved the same address to Plaza.
        address = EmailAddress.objects.select_related("user").filter(email__iexact=email, verified=True).first()
        if address is None or not address.user.is_active:
            return None
        return address.user, address.email

    def pre_social_login(self, request, sociallogin) -> None:
        provider = str(sociallogin.account.provider)
        if not provider.startswith(PROVIDER_PREFIX):
            return
        connection = enabled_connection_for_provider(provider)
        email, verified = asserted_email(sociallogin)
        _normalise_verified(sociallogin)
        reason = (
            "Single sign-on is not enabled for this organisation."
            if connection is None
            else sso_email_allowed(connection, email, verified)
        )
        # An existing account (linked by the subject id, or found by its verified address) is
        # signed in only while it still is this address in the organisation's verified domains and
        # its membership there is not deactivated.
        user = sociallogin.user if sociallogin.is_existing else None
        if reason is None and user is not None:
            reason = sso_account_refusal(connection, user, email)
        if reason is None:
            return
        if connection is not None:
            from apps.audit.services import audit_record

            audit_record(
                action="sso.login_refused",
                org_id=connection.org_id,
                target_type="user",
                target_id=str(user.pk) if user is not None else "",
                target_label=email[:254],
                changes={
                    "reason": reason,
                    "subject": str(sociallogin.account.uid)[:255],
                    "linked": bool(sociallogin.account.pk),
                },
            )
        response = render(request, "orgs/sso/refused.html", {"reason": reason}, status=403)
        raise ImmediateHttpResponse(response)

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        if not getattr(user, "name", "") and data.get("name"):
            user.name = str(data["name"])[:150]
        return user


class SsoAccountAdapter(AccountAdapter):
    def pre_login(self, request, user, **kwargs):
        response = super().pre_login(request, user, **kwargs)
        if response:
            return response
        if (kwargs.get("signal_kwargs") or {}).get("sociallogin") is not None:
            return None  # single sign-on: checked by SsoSocialAccountAdapter
        decision = sso_password_login_check(user=user)
        if not decision.refused_by:
            return None
        from allauth.account.internal.stagekit import clear_login

        clear_login(request)
        sso_password_login_refused(user=user, orgs=decision.refused_by)
        names = ", ".join(org.name for org in decision.refused_by)
        messages.error(
            request,
            f"{names} requires single sign-on: password sign-in is turned off for its members. "
            "Continue with single sign-on.",
        )
        return redirect(f"{reverse('sso_start')}?{urlencode({'email': user.email})}")
