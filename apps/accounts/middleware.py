from __future__ import annotations

import time
from urllib.parse import urlencode

from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from apps.accounts.models import UserSession
from apps.accounts.passkeys import OPEN_BEFORE_VERIFIED
from apps.core import clock, context

_TOUCH_EVERY = 300  # seconds between last-seen updates of one session


class SessionTrackingMiddleware:
    """Keeps each tracked session's last-seen time fresh (at most one write per five minutes)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            context.update(actor_type="user", actor_id=user.pk, actor_label=user.email)
            session = request.session
            sid = session.get("plaza_session_id")
            now = time.time()
            if sid and now - session.get("plaza_seen_at", 0) > _TOUCH_EVERY:
                UserSession.objects.filter(pk=sid).update(last_seen_at=clock.now())
                session["plaza_seen_at"] = now
        key_before = request.session.session_key if hasattr(request, "session") else None
        response = self.get_response(request)
        self._follow_cycled_key(request, key_before)
        return response

    @staticmethod
    def _follow_cycled_key(request, key_before: str | None) -> None:
        """A password change cycles the session key (update_session_auth_hash): move the tracked row
        to the new key, or the session could no longer be listed, ended or signed out with the others."""
        session = getattr(request, "session", None)
        key_now = session.session_key if session is not None else None
        if not key_before or not key_now or key_now == key_before:
            return
        sid = session.get("plaza_session_id")
        if sid:
            UserSession.objects.filter(pk=sid, session_key=key_before, ended_at__isnull=True).update(
                session_key=key_now
            )


class MFARequiredMiddleware:
    """A user with a confirmed second factor reaches nothing but the code prompt and sign-out
    until they have entered a code in this session."""

    _open_prefixes = (
        "/static/",
        "/healthz",
        "/readyz",
        "/accounts/logout/",
        "/accounts/mfa/verify/",
        *OPEN_BEFORE_VERIFIED,  # the passkey sign-in ceremony
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and request.session.get("plaza_mfa")
            and not request.path.startswith(self._open_prefixes)
            and not user.is_verified()
        ):
            if not user.has_mfa():  # turned off from another session since this one signed in
                request.session["plaza_mfa"] = False
                return self.get_response(request)
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "error": {
                            "type": "authentication_error",
                            "code": "mfa_required",
                            "message": "Enter your second-factor code in the portal to finish signing in.",
                            "param": None,
                            "request_id": getattr(request, "request_id", ""),
                        }
                    },
                    status=401,
                )
            return redirect(f"{reverse('mfa_verify')}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
