"""What a person's organisations demand of every signed-in request, before any view runs:

- **MFA enrolment**: when an organisation the person is an active member of requires MFA and they
  have no confirmed second factor, nothing but enrolment, sign-out and static files is reachable
  (portal pages redirect to enrolment; API calls with the session answer 403
  ``mfa_enrolment_required``).
- **Idle timeout** and **maximum session age**: a session idle for longer than the shortest
  ``idle_timeout_minutes`` among those organisations, or older than the shortest
  ``max_session_age_minutes``, is ended on its next request, whatever page it asks for (portal:
  back to sign-in with a message; API calls with the session: 401 ``session_expired``). The
  policy engine also refuses an organisation's resources to a session that is too old for that
  organisation; this makes the strictest limit hold for the account pages too (changing the
  e-mail or the password).

API and SCIM calls carrying ``Authorization`` are left to the token's own checks
(``apps.orgs.policy.authorize``): the session is not what they act with.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.messages.storage import default_storage
from django.shortcuts import redirect
from django.urls import reverse

from apps.core.api import error_response
from apps.orgs.security import services
from apps.orgs.security.selectors import session_demands_for_user

# Idle time is measured from the last request, recorded at most once a minute (one session write a
# minute, not one per request): a session may end up to a minute before its limit, never after.
ACTIVITY_KEY = "plaza_active_at"
_ACTIVITY_EVERY = 60

_ALWAYS_OPEN = ("/static/", "/healthz", "/readyz")
# Enrolment: the MFA settings pages (set up an authenticator), signing out.
_ENROLMENT_OPEN = ("/accounts/mfa/", "/accounts/logout/")
_BEARER_PATHS = ("/api/", "/scim/")


class OrgSessionPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        path = request.path
        if (
            user is None
            or not user.is_authenticated
            or path.startswith(_ALWAYS_OPEN)
            or (path.startswith(_BEARER_PATHS) and "Authorization" in request.headers)
        ):
            return self.get_response(request)
        demands = session_demands_for_user(user)
        session = request.session
        now = time.time()
        if demands.idle_timeout_minutes:
            last = session.get(ACTIVITY_KEY) or session.get("plaza_login_at")
            if last and now - last > demands.idle_timeout_minutes * 60:
                minutes = demands.idle_timeout_minutes
                return self._expire(
                    request,
                    f"idle_timeout_{minutes}m",
                    f"You were signed out after {minutes} minutes without activity.",
                )
        if demands.max_session_age_minutes:
            started = session.get("plaza_login_at")
            if started and now - started > demands.max_session_age_minutes * 60:
                minutes = demands.max_session_age_minutes
                return self._expire(
                    request, f"max_age_{minutes}m", f"Your organisation signs sessions out after {minutes} minutes."
                )
        if now - session.get(ACTIVITY_KEY, 0) >= _ACTIVITY_EVERY:
            session[ACTIVITY_KEY] = now
        # is_verified() is False for anyone without a factor, so has_mfa() runs only for them.
        if (
            demands.mfa_required
            and not path.startswith(_ENROLMENT_OPEN)
            and not user.is_verified()
            and not user.has_mfa()
        ):
            return self._enrol(request)
        return self.get_response(request)

    @staticmethod
    def _expire(request, reason: str, why: str):
        services.session_end_expired(session_key=request.session.session_key or "", reason=reason)
        logout(request)
        message = f"{why} Sign in again."
        if request.path.startswith("/api/"):
            return error_response(request, status=401, code="session_expired", message=message)
        # MessageMiddleware runs after this one (and not at all for a response made here): store the
        # message through a storage of our own, in the fresh session.
        storage = default_storage(request)
        storage.add(messages.INFO, message)
        response = redirect(f"{reverse('account_login')}?{urlencode({'next': request.get_full_path()})}")
        storage.update(response)
        return response

    @staticmethod
    def _enrol(request):
        if request.path.startswith("/api/"):
            return error_response(
                request,
                status=403,
                code="mfa_enrolment_required",
                message="An organisation you belong to requires two-factor authentication. "
                "Set up a second factor in the portal (/accounts/mfa/) to continue.",
            )
        return redirect(f"{reverse('mfa_settings')}?{urlencode({'next': request.get_full_path()})}")
