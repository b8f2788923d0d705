"""The browser-facing side of embeds.

On Plaza's origin, called cross-origin by ``embed.js`` on the host page with the launch id (the
host page's capability): the frames of a slot, delegated tokens and the theme — each answering
CORS for exactly the launch's host origin and nothing else. The JWKS and the loader script.

On an installation's widget origin: the widget document (the manifest entry from the installed
version's package, with its security policy) and the package's other files; on any widget origin
the SDK script.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from apps.core.api import error_response
from apps.core.errors import NotFound, PermissionDenied, PlazaError, ValidationFailed
from apps.core.http import client_ip
from apps.embed import keys
from apps.embed.models import ColorScheme
from apps.embed.selectors import (
    LaunchExpired,
    frames_for,
    get_launch,
    get_launch_by_view,
    get_widget_installation,
    theme_for,
)
from apps.embed.services import launch_reference
from apps.embed.tokens import delegated_token_issue
from apps.embed.widgets import (
    ASSET_TYPES,
    REFERRER_POLICY,
    content_security_policy,
    declared_slots,
    package_of,
    widget_document,
)
from apps.installs.selectors import effective_scopes

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static" / "embed"
MAX_BODY = 2048


# --- Plaza's origin: the endpoints embed.js calls -------------------------------------------------
def _cors(response, origin: str):
    response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    response["Cache-Control"] = "no-store"
    return response


def _unlogged(response, request, launch_id: str):
    """Django logs every 4xx/5xx with its path ("Forbidden: /embed/v1/launches/lch_…/tokens"): the
    launch id is a capability, so log the answer here with the id replaced by its reference."""
    if response.status_code >= 400:
        response._has_been_logged = True
        logger.warning(
            "%s: %s", response.reason_phrase, request.path.replace(launch_id, launch_reference(launch_id))[:300]
        )
    return response


def _launch_endpoint(methods: tuple[str, ...]):
    """Resolve the launch, refuse any Origin but its host origin (and answer the preflight for it),
    map domain errors to the API error envelope. A request without Origin (not a browser's) passes
    for GET; the token endpoint requires the exact Origin."""

    def decorator(view):
        @csrf_exempt
        def wrapper(request, launch_id: str, *args, **kwargs):
            return _unlogged(answer(request, launch_id, *args, **kwargs), request, launch_id)

        def answer(request, launch_id: str, *args, **kwargs):
            origin = request.META.get("HTTP_ORIGIN")
            try:
                launch = get_launch(launch_id)
            except PlazaError as exc:
                response = error_response(request, status=exc.status, message=exc.message, code=exc.code)
                response["Cache-Control"] = "no-store"
                # An expired launch's own host page may read the 410 (embed.js reports it and the
                # page starts a new launch); nobody else learns anything from CORS.
                if origin and origin == getattr(exc, "host_origin", None):
                    return _cors(response, origin)
                return response
            if origin is not None and origin != launch.host_origin:
                response = error_response(
                    request, status=403, code="origin_not_allowed", message="This launch belongs to another origin."
                )
                response["Cache-Control"] = "no-store"
                return response
            if request.method == "OPTIONS":
                if origin is None or request.META.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD") not in methods:
                    return error_response(request, status=403, code="origin_not_allowed", message="Preflight refused.")
                response = HttpResponse(status=204)
                response["Access-Control-Allow-Methods"] = ", ".join(methods)
                response["Access-Control-Allow-Headers"] = "Content-Type"
                response["Access-Control-Max-Age"] = "600"
                return _cors(response, origin)
            if request.method not in methods:
                response = error_response(
                    request, status=405, message=f"Method {request.method[:10]} is not allowed here."
                )
                return _cors(response, origin) if origin else response
            try:
                response = view(request, launch, *args, **kwargs)
            except PlazaError as exc:
                response = error_response(
                    request, status=exc.status, message=exc.message, code=exc.code, param=exc.param
                )
            response["Cache-Control"] = "no-store"
            return _cors(response, origin) if origin else response

        return wrapper

    return decorator


@_launch_endpoint(("GET",))
def launch_slot_frames(request, launch, slot: str):
    """``{"frames": [...], "context": {...}}``: one iframe description per active installation
    declaring ``slot``, and the context the host's backend gave the launch (handed to widgets in
    ``init``)."""
    return JsonResponse({"frames": frames_for(launch, slot), "context": launch.context})


@_launch_endpoint(("POST",))
def launch_token(request, launch):
    """``{token, expires_at, expires_in, scope}``: a delegated token for one installation's widget."""
    if request.META.get("HTTP_ORIGIN") != launch.host_origin:
        raise PermissionDenied("Tokens are issued to the host page only.", code="origin_not_allowed")
    if len(request.body or b"") > MAX_BODY:
        raise ValidationFailed("The body is too large.")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("The body is not JSON.", code="invalid_json") from None
    installation_id = body.get("installation_id") if isinstance(body, dict) else None
    if not isinstance(installation_id, str):
        raise ValidationFailed("installation_id is required.", param="installation_id")
    installation = get_widget_installation(launch.org, installation_id)
    answer = delegated_token_issue(launch=launch, installation=installation, ip=client_ip(request))
    answer["expires_at"] = answer["expires_at"].isoformat().replace("+00:00", "Z")
    return JsonResponse(answer)


@_launch_endpoint(("GET",))
def launch_theme(request, launch):
    """``{"theme": {css variable: {type, value}}, name, scheme, version}`` of the tenant's theme."""
    scheme = request.GET.get("scheme", ColorScheme.LIGHT)
    if scheme not in ColorScheme.values:
        raise ValidationFailed("scheme is light or dark.", param="scheme")
    pack = theme_for(launch.org, scheme)
    return JsonResponse({"theme": pack.resolved, "name": pack.name, "scheme": pack.scheme, "version": pack.version})


@require_GET
def jwks(request):
    response = JsonResponse(keys.jwks())
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"  # public keys: anyone may fetch them
    return response


def _script(name: str) -> HttpResponse:
    path = STATIC_DIR / name
    if not path.is_file():
        return HttpResponse("Not found.", status=404, content_type="text/plain; charset=utf-8")
    response = HttpResponse(path.read_bytes(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def embed_loader(request):
    """``/embed/embed.js`` on Plaza's origin: the loader a host page includes."""
    response = _script("embed.js")
    response["Access-Control-Allow-Origin"] = "*"  # a module script from another origin needs CORS
    return response


# --- widget origins ----------------------------------------------------------------------------
@require_GET
def widget_sdk(request):
    """``/w/sdk.js`` on any widget origin: the SDK widgets import (same origin as the widget)."""
    return _script("sdk.js")


def _widget_error(request, status: int, message: str) -> HttpResponse:
    nonce = secrets.token_urlsafe(18)
    response = render(request, "embed/widget_error.html", {"message": message, "nonce": nonce}, status=status)
    # Static text only. Framable anywhere: the launch (and so its host origin) may be unknown here.
    response["Content-Security-Policy"] = f"default-src 'none'; style-src 'nonce-{nonce}'; frame-ancestors *"
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = REFERRER_POLICY
    return response


@xframe_options_exempt
@require_GET
def widget_file(request, view_key: str, path: str):
    """An installation's widget document (a declared entry) or another file of its package."""
    installation_id = getattr(request, "embed_installation_id", None)
    if not installation_id:
        return _widget_error(request, 404, "No such widget.")
    try:
        launch = get_launch_by_view(view_key)
        installation = get_widget_installation(launch.org, installation_id)
    except LaunchExpired:
        return _widget_error(request, 410, "This widget's session has expired. Reload the page.")
    except NotFound:
        return _widget_error(request, 404, "No such widget.")
    slots = [s for s in declared_slots(installation) if s.get("entry") == path]
    extension = path.rpartition(".")[2].lower() if "." in path.rpartition("/")[2] else ""
    if not slots and extension not in ASSET_TYPES:
        return _widget_error(request, 404, "No such file.")
    package = package_of(installation.version.package_sha256)
    try:
        raw = package.read(path)
    except KeyError:
        return _widget_error(request, 404, "No such file.")
    nonce = secrets.token_urlsafe(18)
    if slots:
        body = widget_document(raw, nonce=nonce, parent_origin=launch.host_origin, installation_id=installation.pk)
        response = HttpResponse(body, content_type="text/html; charset=utf-8")
    else:
        response = HttpResponse(raw, content_type=ASSET_TYPES[extension])
    policy_slots = slots or declared_slots(installation)
    response["Content-Security-Policy"] = content_security_policy(
        policy_slots, host_origin=launch.host_origin, nonce=nonce, granted=set(effective_scopes(installation))
    )
    response["Referrer-Policy"] = REFERRER_POLICY
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
