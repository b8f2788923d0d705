"""API authentication: a service account's bearer token, or the browser session."""

from __future__ import annotations

import functools

from django.conf import settings
from django.http import HttpRequest
from django.utils.module_loading import import_string
from ninja.security import HttpBearer
from ninja.utils import check_csrf

from apps.core import context
from apps.core.errors import PermissionDenied
from apps.core.http import client_ip
from apps.orgs.policy import Principal
from apps.orgs.selectors import principal_from_request
from apps.orgs.services import TOKEN_PREFIX, token_authenticate


@functools.cache
def _bearer_authenticators(paths: tuple[str, ...]) -> list:
    """The functions of ``PLAZA_BEARER_AUTHENTICATORS`` (imported on first use: the apps that
    provide them sit above this one and are never imported from here)."""
    return [import_string(path) for path in paths]


def other_bearer_principal(request: HttpRequest, token: str) -> Principal | None:
    """A principal for a bearer token that is not a ``plz_`` token (e.g. an embedded widget's
    delegated token, ``apps.embed.tokens``), from the registered authenticators in order."""
    if token.startswith(TOKEN_PREFIX):
        return None
    for authenticate in _bearer_authenticators(tuple(getattr(settings, "PLAZA_BEARER_AUTHENTICATORS", ()) or ())):
        principal = authenticate(request, token)
        if principal is not None:
            return principal
    return None


class PlazaAuth(HttpBearer):
    """``Authorization: Bearer plz_…`` when the header is present (and then only that), otherwise
    the signed-in session, with Django's CSRF check on unsafe methods."""

    openapi_description = "An API token (plz_…) of a service account, or the portal's session cookie."

    def __call__(self, request: HttpRequest):
        if "Authorization" not in request.headers:
            return self._session(request)
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        api_token = token_authenticate(token)
        if api_token is None:
            return other_bearer_principal(request, token)
        sa = api_token.service_account
        principal = Principal(
            kind="service_account",
            service_account=sa,
            token=api_token,
            scopes=frozenset(api_token.scopes),
            ip=client_ip(request),
        )
        request.principal = principal
        context.update(actor_type="service_account", actor_id=sa.pk, actor_label=f"{sa.name} ({api_token.pk})")
        return principal

    def _session(self, request: HttpRequest) -> Principal | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.method not in ("GET", "HEAD", "OPTIONS") and check_csrf(request) is not None:
            raise PermissionDenied(
                "CSRF check failed: send the X-CSRFToken header with session requests.", code="csrf_failed"
            )
        return principal_from_request(request)
