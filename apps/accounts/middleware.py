from __future__ import annotations

import time

from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from apps.accounts.models import UserSession
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
        return self.get_response(request)


class MFARequiredMiddleware:
    """A user with a confirmed second factor reaches nothing but the code prompt and sign-out
    until they have entered a code in this session."""

    _open_prefixes = ("/static/", "/healthz", "/readyz", "/accounts/logout/", "/accounts/mfa/verify/")

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
            return redirect(f"{reverse('mfa_verify')}?next={request.get_full_path()}")
        return self.get_response(request)
