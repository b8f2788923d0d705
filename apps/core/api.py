"""The API's shared parts: the error envelope, its exception handlers, cursor pagination."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Generic, TypeVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import Query, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from apps.core.errors import PlazaError, ValidationFailed
from apps.core.ids import is_valid_id

log = logging.getLogger("plaza.api")
T = TypeVar("T")

_STATUS_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "unauthenticated"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    409: ("conflict_error", "conflict"),
    413: ("invalid_request_error", "payload_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limited"),
}


def error_body(
    request: HttpRequest,
    *,
    status: int,
    message: str,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    **extra,
) -> dict:
    default_type, default_code = _STATUS_TYPES.get(status, ("api_error", "internal_error"))
    body = {
        "type": type or default_type,
        "code": code or default_code,
        "message": message,
        "param": param,
        "request_id": getattr(request, "request_id", ""),
    }
    body.update(extra)
    return {"error": body}


def error_response(
    request: HttpRequest, *, status: int, message: str, headers: dict | None = None, **kw
) -> JsonResponse:
    response = JsonResponse(error_body(request, status=status, message=message, **kw), status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _loc_to_param(loc) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie", "payload")]
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


# --- request parsing -------------------------------------------------------------------------------
class InvalidBody(PlazaError):
    code = "invalid_request"


# Text PostgreSQL cannot store: NUL, and lone UTF-16 surrogates (JSON's "\ud800" escapes).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def find_unstorable(value, path: tuple = ()) -> tuple | None:
    """The location of the first string (or key) holding unstorable text, or None."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _UNSTORABLE.search(key):
                return path
            found = find_unstorable(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unstorable(item, (*path, index))
            if found is not None:
                return found
    return None


def _nul_error(loc: tuple) -> ValidationFailed:
    param = _loc_to_param(loc)
    return ValidationFailed(f"{param or 'body'} must not contain NUL characters or lone surrogates.", param=param)


class PlazaParser(Parser):
    """JSON bodies must be objects (every payload is one: a bare ``"x"`` or ``[]`` would otherwise
    validate as "all fields defaulted"), and no text anywhere may hold NUL, which PostgreSQL cannot
    store. Errors raised here reach the client through ``http_error`` below."""

    def parse_body(self, request):
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise InvalidBody("The request body must be a JSON object.")
        loc = find_unstorable(data)
        if loc is not None:
            raise _nul_error(loc)
        return data

    def parse_querydict(self, data, list_fields, request):
        result = super().parse_querydict(data, list_fields, request)
        loc = find_unstorable(result)
        if loc is not None:
            raise _nul_error(loc)
        return result


def install_exception_handlers(api) -> None:
    @api.exception_handler(PlazaError)
    def plaza_error(request, exc: PlazaError):
        headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
        extra = {"details": exc.details} if exc.details else {}
        return error_response(
            request,
            status=exc.status,
            type=exc.type,
            code=exc.code,
            message=exc.message,
            param=exc.param,
            headers=headers,
            **extra,
        )

    @api.exception_handler(ValidationError)
    def validation_error(request, exc: ValidationError):
        details = []
        for err in exc.errors:
            details.append({"param": _loc_to_param(err.get("loc", ())), "message": str(err.get("msg", "invalid"))})
        first = details[0] if details else {"param": None, "message": "Invalid request."}
        message = "; ".join(f"{d['param'] or 'body'}: {d['message']}" for d in details)[:1000] or "Invalid request."
        return error_response(
            request, status=400, code="validation_error", message=message, param=first["param"], details=details
        )

    @api.exception_handler(AuthenticationError)
    def auth_error(request, exc):
        return error_response(
            request,
            status=401,
            message="Send a valid API token as 'Authorization: Bearer plz_…' or sign in.",
            headers={"WWW-Authenticate": 'Bearer realm="plaza"'},
        )

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        if isinstance(exc.__cause__, PlazaError):  # raised by PlazaParser, wrapped by django-ninja
            return plaza_error(request, exc.__cause__)
        return error_response(request, status=exc.status_code, message=str(exc))

    @api.exception_handler(SuspiciousOperation)
    def suspicious(request, exc: SuspiciousOperation):
        if isinstance(exc, RequestDataTooBig):
            return error_response(request, status=413, message="The request body is too large.")
        # TooManyFieldsSent, TooManyFilesSent, DisallowedHost, …
        return error_response(request, status=400, message=str(exc)[:300] or "Malformed request.")

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return error_response(request, status=404, message="No such resource.")

    @api.exception_handler(IntegrityError)
    def integrity_error(request, exc: IntegrityError):
        # A uniqueness check that lost a race against a concurrent request (two creates of one
        # slug, domain or invitation): the database refused the duplicate, so it is a conflict.
        log.warning(
            "integrity error answered as 409: %s", exc, extra={"request_id": getattr(request, "request_id", "")}
        )
        return error_response(request, status=409, message="This conflicts with a change made at the same time.")

    @api.exception_handler(Exception)
    def unexpected(request, exc):
        log.exception("unhandled API error", extra={"request_id": getattr(request, "request_id", "")})
        return error_response(
            request,
            status=500,
            message="Something went wrong on our side. Quote the request id if you contact support.",
        )


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class ApiErrorEnvelopeMiddleware:
    """Any error under /api/ that did not come from the handlers above (an unknown path, a wrong
    method, a CSRF failure) is rewritten into the same envelope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        too_big = _declared_length(request) > settings.PLAZA_MAX_REQUEST_BYTES
        if too_big and request.path.startswith("/api/"):
            # Refused before the body is read (under WSGI; an ASGI server buffers it first): multipart
            # files are not bounded by DATA_UPLOAD_MAX_MEMORY_SIZE.
            return error_response(
                request,
                status=413,
                code="payload_too_large",
                message=f"The request body is over {settings.PLAZA_MAX_REQUEST_BYTES} bytes.",
            )
        if too_big and request.path.startswith("/scim/"):
            # SCIM clients expect a SCIM Error body on every error (RFC 7644 §3.12).
            body = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "413",
                "detail": f"The request body is over {settings.PLAZA_MAX_REQUEST_BYTES} bytes.",
            }
            return HttpResponse(json.dumps(body), status=413, content_type="application/scim+json")
        if too_big:
            return HttpResponse("Request body too large.", status=413, content_type="text/plain")
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            message = {
                404: "No such endpoint.",
                405: f"Method {request.method} is not allowed here.",
                403: "CSRF check failed: send the X-CSRFToken header with session requests.",
            }.get(status, "Request failed.")
            new = error_response(request, status=status, message=message)
            if response.has_header("Allow"):
                new["Allow"] = response["Allow"]
            return new
        return response


# --- cursor pagination -----------------------------------------------------------------------------
LIMIT_QUERY = Query(25, ge=1, le=100, description="Items per page (at most 100).")
CURSOR_QUERY = Query(None, max_length=200, description="The next_cursor of the previous page.")


class InvalidCursor(PlazaError):
    code = "invalid_cursor"


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str | None = None) -> str:
    """The id a cursor holds; with ``prefix``, it must be an id of that type (a cursor of another
    list is not one this list gave out)."""
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("The cursor is not one this API gave out.", param="cursor") from None
    if not is_valid_id(value, prefix):
        raise InvalidCursor("The cursor is not one this API gave out.", param="cursor")
    return value


def paginate(queryset, *, limit: int, cursor: str | None, newest_first: bool = True) -> tuple[list, str | None]:
    """Keyset pagination over the time-ordered primary key: stable under inserts, O(limit)."""
    order = "-pk" if newest_first else "pk"
    qs = queryset.order_by(order)
    if cursor:
        after = decode_cursor(cursor, getattr(queryset.model._meta.pk, "prefix", None) or None)
        qs = qs.filter(pk__lt=after) if newest_first else qs.filter(pk__gt=after)
    rows = list(qs[: limit + 1])
    next_cursor = encode_cursor(str(rows[limit - 1].pk)) if len(rows) > limit else None
    return rows[:limit], next_cursor


class Page(Schema, Generic[T]):
    data: list[T]
    next_cursor: str | None = None
