"""Routing by host: each origin serves only its own part of Plaza.

- An installation's widget origin (``inst-….<widget host>``) and the widget origin itself serve
  only ``/w/…`` (the base only ``/w/sdk.js``); nothing else of Plaza — no portal, no API, no
  session — is reachable there, so a widget's origin holds no Plaza credential worth stealing.
- The demo host origin serves only ``/demo-host/…``.
- Plaza's own origin never answers ``/w/…`` or ``/demo-host/…``.

It also answers CORS for Plaza's API to installation widget origins (no credentials: a widget
calls the API with its delegated token in the Authorization header, never with cookies).
"""

from __future__ import annotations

from django.http import HttpResponse

from apps.embed.origins import is_demo_host, widget_host_kind

_API_METHODS = "GET, POST, PUT, PATCH, DELETE"
_API_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"


def _not_found() -> HttpResponse:
    response = HttpResponse("Not found.", status=404, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


class EmbedHostMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        host = request.META.get("HTTP_HOST", "")
        path = request.path
        kind, installation_id = widget_host_kind(host)
        if kind:
            if not path.startswith("/w/") or (kind == "base" and path != "/w/sdk.js"):
                return _not_found()
            request.embed_installation_id = installation_id
            return self.get_response(request)
        if is_demo_host(host):
            if not path.startswith("/demo-host/"):
                return _not_found()
            return self.get_response(request)
        if path.startswith("/w/") or path.startswith("/demo-host/"):
            return _not_found()
        if path.startswith("/api/"):
            return self._api_cors(request)
        return self.get_response(request)

    def _api_cors(self, request):
        origin = request.META.get("HTTP_ORIGIN", "")
        allowed = _widget_origin(origin)
        if allowed and request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Methods"] = _API_METHODS
            response["Access-Control-Allow-Headers"] = _API_HEADERS
            response["Access-Control-Max-Age"] = "600"
            response["Vary"] = "Origin"
            return response
        response = self.get_response(request)
        if allowed:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = "X-Request-Id"
            response["Vary"] = "Origin" if not response.get("Vary") else response["Vary"] + ", Origin"
        return response


def _widget_origin(origin: str) -> bool:
    """Whether ``origin`` is exactly an installation's widget origin (scheme included)."""
    from django.conf import settings

    if not origin or not settings.PLAZA_WIDGET_ORIGIN or "://" not in origin:
        return False
    scheme, _, rest = origin.partition("://")
    if scheme != settings.PLAZA_WIDGET_ORIGIN.partition("://")[0] or "/" in rest:
        return False
    return widget_host_kind(rest)[0] == "installation"
