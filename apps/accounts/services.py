"""Writes about people: MFA devices, backup codes, signed-in sessions."""

from __future__ import annotations

import base64
import io
from importlib import import_module

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from apps.accounts.models import User, UserSession
from apps.audit.services import audit_record
from apps.core import clock
from apps.core.errors import Conflict, NotFound, RateLimited, ValidationFailed

BACKUP_CODE_COUNT = 10


def totp_pending_device(*, user: User) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled (made once, reused until confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False, name="authenticator").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    return device


def totp_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG QR code (data URI), so no image leaves the server."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def totp_secret_b32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def mfa_attempt_check(*, user: User) -> None:
    """Count one second-factor attempt against the per-user limit, or raise ``RateLimited``."""
    _check_attempts(user)


def _check_attempts(user: User) -> None:
    key = f"plaza:mfa-attempts:{user.pk}"
    cache.add(key, 0, timeout=300)
    try:
        attempts = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=300)
        attempts = 1
    if attempts > settings.PLAZA_MFA_MAX_ATTEMPTS:
        raise RateLimited("Too many codes tried. Wait five minutes and try again.", retry_after=300, code="mfa_locked")


def totp_enrolled(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def mfa_enroll_confirm(*, user: User, code: str) -> list[str]:
    """Confirm the pending authenticator with a first code; returns fresh backup codes.

    Someone who has only passkeys may add an authenticator app (their session has been verified
    with a passkey by then: MFARequiredMiddleware)."""
    if totp_enrolled(user):
        # Replacing a working authenticator must prove the current one (disable needs a code), or a
        # hijacked session could swap in its own device and lock the owner out.
        raise Conflict("Two-factor authentication is already on; turn it off first.", code="mfa_already_enrolled")
    _check_attempts(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=False, name="authenticator").first()
    if device is None:
        raise Conflict("Start enrolment first.", code="no_pending_device")
    if not device.verify_token((code or "").strip().replace(" ", "")):
        raise ValidationFailed(
            "That code is not right. Check your device's clock and try the current code.",
            param="code",
            code="invalid_code",
        )
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _replace_backup_codes(user)
        audit_record(action="mfa.enrolled", target=user, changes={"method": "totp"})
    cache.delete(f"plaza:mfa-attempts:{user.pk}")
    return codes


def _replace_backup_codes(user: User) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(user=user, name="backup", defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def mfa_backup_codes_regenerate(*, user: User) -> list[str]:
    if not user.has_mfa():
        raise Conflict("Enrol an authenticator first.", code="mfa_not_enrolled")
    with transaction.atomic():
        codes = _replace_backup_codes(user)
        audit_record(action="mfa.backup_codes_regenerated", target=user)
    return codes


def mfa_verify(*, user: User, code: str):
    """The device that accepts ``code`` (TOTP or single-use backup code), or raise."""
    _check_attempts(user)
    code = (code or "").strip().replace(" ", "").replace("-", "")
    if code:
        for device in devices_for_user(user, confirmed=True):
            if device.verify_token(code):
                cache.delete(f"plaza:mfa-attempts:{user.pk}")
                if isinstance(device, StaticDevice):
                    audit_record(
                        action="mfa.backup_code_used", target=user, changes={"codes_left": device.token_set.count()}
                    )
                return device
    audit_record(action="mfa.verify_failed", target=user)
    raise ValidationFailed("That code is not right.", param="code", code="invalid_code")


def mfa_disable(*, user: User) -> None:
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=None):
            device.delete()
        audit_record(action="mfa.disabled", target=user)


# --- passkeys (django-otp-webauthn credentials, django-otp devices like the others) -----------------
def passkeys_for_user(user: User) -> list[WebAuthnCredential]:
    return list(WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at"))


def mfa_passkey_added(*, user: User, passkey_id: int, first_factor: bool) -> WebAuthnCredential:
    """Name and audit a passkey the registration ceremony has just stored for ``user``.

    Called inside the ceremony's transaction, so the passkey exists exactly when its audit entry
    does. ``first_factor``: the person had no second factor before (``mfa.enrolled`` too)."""
    passkey = WebAuthnCredential.objects.select_for_update().get(pk=passkey_id, user=user)
    if not passkey.name:
        passkey.name = f"Passkey added {clock.now():%Y-%m-%d %H:%M} UTC"
        passkey.save(update_fields=["name"])
    if first_factor:
        audit_record(action="mfa.enrolled", target=user, changes={"method": "passkey"})
    audit_record(action="mfa.passkey_added", target=user, changes={"passkey": passkey.pk, "name": passkey.name})
    cache.delete(f"plaza:mfa-attempts:{user.pk}")
    return passkey


def mfa_passkey_verified(*, user: User, passkey: WebAuthnCredential) -> None:
    """A passkey has just passed the sign-in ceremony: the attempt counter starts again."""
    cache.delete(f"plaza:mfa-attempts:{user.pk}")


def mfa_passkey_verify_failed(*, user: User, reason: str) -> None:
    audit_record(action="mfa.verify_failed", target=user, changes={"method": "passkey", "reason": reason[:100]})


def mfa_passkey_remove(*, user: User, passkey_id: str) -> bool:
    """Delete one of ``user``'s own passkeys; returns whether any second factor is left."""
    with transaction.atomic():
        passkey = WebAuthnCredential.objects.filter(
            user=user, pk=passkey_id if str(passkey_id).isascii() and str(passkey_id).isdigit() else 0
        ).first()
        if passkey is None:
            raise NotFound("No such passkey.", code="passkey_not_found")
        name = passkey.name
        passkey.delete()
        left = user.has_mfa()
        audit_record(action="mfa.passkey_removed", target=user, changes={"passkey": int(passkey_id), "name": name})
        if not left:
            audit_record(action="mfa.disabled", target=user, changes={"method": "passkey"})
    return left


def backup_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__name="backup").count()


# --- sessions --------------------------------------------------------------------------------------
def _session_store(session_key: str):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def user_session_start(*, user: User, session_key: str, ip: str, user_agent: str) -> UserSession:
    return UserSession.objects.update_or_create(
        session_key=session_key,
        defaults={
            "user": user,
            "ip": ip or None,
            "user_agent": user_agent[:400],
            "created_at": clock.now(),
            "last_seen_at": clock.now(),
            "ended_at": None,
        },
    )[0]


def user_session_end(*, session: UserSession, reason: str = "revoked") -> None:
    """End a session at once: its row is closed and its data deleted from the session store."""
    if session.ended_at:
        return
    with transaction.atomic():
        session.ended_at = clock.now()
        session.save(update_fields=["ended_at"])
        _session_store(session.session_key).delete()
        if reason != "logout":
            audit_record(
                action="session.revoked",
                target=session.user,
                target_label=session.user.email,
                changes={"session": session.pk, "reason": reason},
            )


def user_sessions_end_others(*, user: User, keep_session_key: str | None) -> int:
    sessions = UserSession.objects.filter(user=user, ended_at__isnull=True).exclude(session_key=keep_session_key or "")
    count = 0
    for session in sessions.select_related("user"):
        user_session_end(session=session)
        count += 1
    return count


def user_sessions_close(*, user_id: str) -> int:
    """End every live session of one person at once, without an audit entry: for services that
    record their own (sign out everywhere, an admin's forced sign-out). Returns how many ended."""
    with transaction.atomic():
        sessions = list(UserSession.objects.select_for_update().filter(user_id=user_id, ended_at__isnull=True))
        now = clock.now()
        for session in sessions:
            session.ended_at = now
            session.save(update_fields=["ended_at"])
            _session_store(session.session_key).delete()
    return len(sessions)


def user_sessions_end_all(*, user: User) -> int:
    """Sign ``user`` out everywhere, the calling session included; one audit entry for the lot.
    Returns how many sessions ended."""
    with transaction.atomic():
        count = user_sessions_close(user_id=user.pk)
        audit_record(
            action="user.signed_out_everywhere", target=user, target_label=user.email, changes={"sessions": count}
        )
    return count


def user_sessions_sweep() -> int:
    """Mark tracked sessions ended when the session store no longer holds them (expired or
    cleared), so the sessions list shows only live ones. Returns how many were closed."""
    closed = 0
    now = clock.now()
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()  # what `manage.py clearsessions` does
    for session in UserSession.objects.filter(ended_at__isnull=True).only("pk", "session_key").iterator():
        if not _session_store(session.session_key).exists(session.session_key):
            UserSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(ended_at=now)
            closed += 1
    return closed
