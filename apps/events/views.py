"""Public, cacheable JSON Schema documents: /schemas/events/<type>/<version>.json."""

from __future__ import annotations

import hashlib
import json

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.utils.http import parse_etags
from django.views.decorators.http import require_GET

from apps.core.api import error_response
from apps.core.errors import NotFound
from apps.events.selectors import get_event_schema

_PUBLIC = {"Access-Control-Allow-Origin": "*"}


def schema_response(request: HttpRequest, document: dict, *, max_age: int) -> HttpResponse:
    """A document anyone may fetch (CORS *), with a strong ETag over its exact content, answered
    304 when the client holds it (If-None-Match, weak or strong, one tag or a list)."""
    body = json.dumps(document, indent=2, ensure_ascii=False).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    held = {tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))}
    if etag in held or "*" in held:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/schema+json")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={max_age}"
    for key, value in _PUBLIC.items():
        response[key] = value
    return response


def not_found(request: HttpRequest, message: str) -> JsonResponse:
    return error_response(request, status=404, message=message, headers=_PUBLIC)


@require_GET
def event_schema(request: HttpRequest, name: str, version: int):
    try:
        found = get_event_schema(name, version)
    except NotFound as exc:
        return not_found(request, exc.message)
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": request.build_absolute_uri(),
        "title": f"{name} v{version}",
        "description": found.event_type.description,
        "examples": found.examples,
        **{k: v for k, v in found.schema.items() if k not in ("$id", "$schema")},
    }
    # The schema never changes, but the type's description may: a day, revalidated by ETag.
    return schema_response(request, document, max_age=86400)
