"""Portal pages about the signed-in person: second factor (authenticator app, backup codes,
passkeys), sessions. The passkey ceremonies themselves are in ``apps/accounts/passkeys.py``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import devices_for_user
from django_otp import login as otp_login

from apps.accounts import services
from apps.accounts.models import UserSession
from apps.core.errors import Conflict, NotFound, RateLimited, ValidationFailed
from apps.core.http import safe_next
from apps.core.ids import is_valid_id


def _mfa_settings_context(user) -> dict:
    totp_on = services.totp_enrolled(user)
    ctx = {
        "enrolled": user.has_mfa(),
        "totp_enrolled": totp_on,
        "codes_left": services.backup_codes_left(user) if totp_on else 0,
        "passkeys": services.passkeys_for_user(user),
    }
    if not totp_on:
        device = services.totp_pending_device(user=user)
        ctx.update(qr=services.totp_qr_svg(device), secret=services.totp_secret_b32(device))
    return ctx


@never_cache
@login_required
def mfa_settings(request):
    return render(request, "accounts/mfa.html", _mfa_settings_context(request.user))


@never_cache
@require_POST
@login_required
def mfa_enroll(request):
    try:
        codes = services.mfa_enroll_confirm(user=request.user, code=request.POST.get("code", ""))
    except (ValidationFailed, Conflict, RateLimited) as exc:
        if services.totp_enrolled(request.user):
            messages.error(request, exc.message)
            return redirect("mfa_settings")
        return render(
            request,
            "accounts/mfa.html",
            _mfa_settings_context(request.user) | {"error": exc.message},
            status=429 if isinstance(exc, RateLimited) else 400,
        )
    # The enrolling session counts as verified; other sessions signed in before now must sign in again.
    otp_login(request, request.user.totpdevice_set.filter(confirmed=True).first())
    request.session["plaza_mfa"] = True
    services.user_sessions_end_others(user=request.user, keep_session_key=request.session.session_key)
    return render(request, "accounts/backup_codes.html", {"codes": codes, "first_time": True})


@never_cache
@require_POST
@login_required
def mfa_backup_codes(request):
    """New backup codes need a current code, so a hijacked session cannot mint itself a set."""
    try:
        services.mfa_verify(user=request.user, code=request.POST.get("code", ""))
        codes = services.mfa_backup_codes_regenerate(user=request.user)
    except (Conflict, ValidationFailed, RateLimited) as exc:
        messages.error(request, f"No new backup codes: {exc.message}")
        return redirect("mfa_settings")
    return render(request, "accounts/backup_codes.html", {"codes": codes})


@require_POST
@login_required
def mfa_disable(request):
    try:
        services.mfa_verify(user=request.user, code=request.POST.get("code", ""))
    except (ValidationFailed, RateLimited) as exc:
        messages.error(request, f"Two-factor authentication stays on: {exc.message}")
        return redirect("mfa_settings")
    services.mfa_disable(user=request.user)
    request.session["plaza_mfa"] = False
    messages.success(request, "Two-factor authentication is off.")
    return redirect("mfa_settings")


@require_POST
@login_required
def mfa_passkey_delete(request, passkey_id: str):
    """Remove one passkey. The session has passed its second factor (MFARequiredMiddleware)."""
    verified_with = getattr(request.user, "otp_device", None)
    try:
        left = services.mfa_passkey_remove(user=request.user, passkey_id=passkey_id)
    except NotFound as exc:
        messages.error(request, exc.message)
        return redirect("mfa_settings")
    if not left:
        request.session["plaza_mfa"] = False
    elif verified_with is not None and not type(verified_with).objects.filter(pk=verified_with.pk).exists():
        # This session was verified with the passkey just removed. It did prove a factor, so it stays
        # verified, recorded against one that is left (django-otp would otherwise find no device).
        otp_login(request, next(devices_for_user(request.user, confirmed=True)))
    messages.success(request, "Passkey removed." if left else "Passkey removed. Two-factor authentication is off.")
    return redirect("mfa_settings")


@login_required
def mfa_verify(request):
    """The second step of signing in: an authenticator code, one backup code or a passkey (the
    passkey button runs the ceremony against ``apps/accounts/passkeys.py``, which redirects)."""
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_verified() or not request.session.get("plaza_mfa"):
        return redirect(next_url)
    error, status = None, 200
    if request.method == "POST":
        try:
            device = services.mfa_verify(user=request.user, code=request.POST.get("code", ""))
        except (ValidationFailed, RateLimited) as exc:
            error, status = exc.message, 429 if isinstance(exc, RateLimited) else 400
        else:
            otp_login(request, device)
            request.session.cycle_key()  # a new key once fully signed in (the tracked row follows it)
            return redirect(next_url)
    user = request.user
    ctx = {
        "error": error,
        "next": next_url,
        "has_passkeys": bool(services.passkeys_for_user(user)),
        "has_codes": services.totp_enrolled(user) or services.backup_codes_left(user) > 0,
    }
    return render(request, "accounts/mfa_verify.html", ctx, status=status)


@login_required
def sessions(request):
    if request.method == "POST":
        if request.POST.get("op") == "end_all":
            services.user_sessions_end_all(user=request.user)
            # The store row is gone: drop this request's copy too, so nothing saves it back.
            request.session.flush()
            return redirect("account_login")
        if request.POST.get("op") == "end_others":
            count = services.user_sessions_end_others(user=request.user, keep_session_key=request.session.session_key)
            messages.success(request, f"Signed out {count} other session(s).")
        else:
            session_id = request.POST.get("session", "")
            session = (
                UserSession.objects.select_related("user")
                .filter(user=request.user, pk=session_id, ended_at__isnull=True)
                .first()
                if is_valid_id(session_id, "ses")
                else None
            )
            if session is None:
                messages.error(request, "That session has already ended.")
            elif session.session_key == request.session.session_key:
                logout(request)  # ending the current session is signing out
                return redirect("account_login")
            else:
                services.user_session_end(session=session)
                messages.success(request, "Session signed out.")
        return redirect("sessions")
    rows = UserSession.objects.filter(user=request.user, ended_at__isnull=True)[:100]
    return render(request, "accounts/sessions.html", {"rows": rows, "current_key": request.session.session_key})
