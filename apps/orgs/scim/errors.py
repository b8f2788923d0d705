"""SCIM error responses (RFC 7644 §3.12): every error, whatever its cause, is a SCIM Error body
with ``status`` as a string, an optional ``scimType`` and a ``detail``, served as
``application/scim+json``. Built on django-scim2's ``SCIMException``."""

from __future__ import annotations

import json

from django.http import HttpResponse
from django_scim.constants import SCIM_CONTENT_TYPE, SchemaURI
from django_scim.exceptions import SCIMException

from apps.core.errors import Conflict, NotFound, PermissionDenied, PlazaError, Unauthenticated, ValidationFailed


class ScimError(SCIMException):
    """Raise with ``status`` and, for 400/409, one of RFC 7644's ``scimType`` values."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail, status=status, scim_type=scim_type)

    def to_dict(self) -> dict:
        body = {"schemas": [SchemaURI.ERROR], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def bad_request(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type)


def from_plaza_error(exc: PlazaError) -> ScimError:
    """A domain exception from a service, as the SCIM error a client expects."""
    if isinstance(exc, NotFound):
        return ScimError(404, exc.message)
    if isinstance(exc, Unauthenticated):
        return ScimError(401, exc.message)
    if isinstance(exc, PermissionDenied):
        return ScimError(403, exc.message)
    if isinstance(exc, Conflict):
        if exc.code == "mutability":
            return ScimError(400 if exc.param == "userName" else 409, exc.message, "mutability")
        return ScimError(409, exc.message, "uniqueness")
    if isinstance(exc, ValidationFailed):
        return ScimError(400, exc.message, "invalidValue")
    return ScimError(exc.status if 400 <= exc.status < 500 else 400, exc.message)


def error_response(error: ScimError) -> HttpResponse:
    response = HttpResponse(json.dumps(error.to_dict()), status=error.status, content_type=SCIM_CONTENT_TYPE)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="scim"'
    return response
