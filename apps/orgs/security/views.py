"""Admin console pages of the enforced security policy: members' active sessions, and one member's
second factors and sessions with "reset factors" and "sign out everywhere"."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from apps.core.errors import PermissionDenied
from apps.orgs.models import Membership
from apps.orgs.policy import authorize
from apps.orgs.portal import org_context, org_page, page_of
from apps.orgs.security import selectors, services
from apps.orgs.selectors import get_object_for_principal, members_of

_FACTOR_LABELS = {
    TOTPDevice: "Authenticator app (TOTP)",
    StaticDevice: "Backup codes",
    WebAuthnCredential: "Passkey",
}


def _factors(user) -> list[dict]:
    """The member's second factors by type (never their secrets)."""
    factors = []
    for device in devices_for_user(user, confirmed=None):
        label = _FACTOR_LABELS.get(type(device), type(device).__name__)
        detail = f"{device.token_set.count()} unused" if isinstance(device, StaticDevice) else ""
        factors.append({"label": label, "confirmed": device.confirmed, "detail": detail})
    return factors


@org_page("session.view")
def org_sessions(request, org, principal):
    rows, next_page = page_of(request, selectors.sessions_of_org(org))
    member_ids = selectors.membership_ids_by_user(org, [row.user_id for row in rows])
    for row in rows:
        row.member_id = member_ids.get(row.user_id)
    ctx = org_context(request, org, principal, rows=rows, next_page=next_page)
    template = "orgs/console/sessions.html#rows" if request.htmx else "orgs/console/sessions.html"
    return render(request, template, ctx)


def _member(principal, org, member_id: str, action: str) -> Membership:
    membership = get_object_for_principal(principal, Membership, org, member_id, "member.view", members_of(org))
    authorize(principal, action, membership)
    return membership


@org_page("session.view")
def member_security(request, org, principal, member_id: str):
    membership = _member(principal, org, member_id, "session.view")
    user = membership.user
    ctx = org_context(
        request,
        org,
        principal,
        member=membership,
        mfa_enabled=user.has_mfa(),
        factors=_factors(user),
        sessions=list(selectors.sessions_of_member(membership)[:100]),
        is_self=membership.user_id == principal.user.pk,
    )
    return render(request, "orgs/console/member_security.html", ctx)


def _after(request, org, membership: Membership):
    back = request.POST.get("back")
    if back == "sessions":
        return redirect("console_sessions", org_id=org.pk)
    return redirect("member_security", org_id=org.pk, member_id=membership.pk)


@require_POST
@org_page("member.view")
def member_sign_out(request, org, principal, member_id: str):
    membership = _member(principal, org, member_id, "member.sign_out")
    try:
        count = services.member_sign_out(principal=principal, membership=membership)
    except PermissionDenied as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Signed {membership.user.email} out of {count} session(s).")
    return _after(request, org, membership)


@require_POST
@org_page("member.view")
def member_mfa_reset(request, org, principal, member_id: str):
    membership = _member(principal, org, member_id, "member.mfa_reset")
    try:
        result = services.member_mfa_reset(principal=principal, membership=membership)
    except PermissionDenied as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Removed {result['devices_removed']} factor(s) of {membership.user.email} and ended "
            f"{result['sessions_ended']} session(s).",
        )
    return _after(request, org, membership)
