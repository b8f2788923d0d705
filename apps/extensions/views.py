from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from apps.events.views import schema_response
from apps.extensions import signing
from apps.extensions.manifest import public_schema


@require_GET
def manifest_schema(request: HttpRequest):
    """The manifest v1 JSON Schema, with an absolute $id for this deployment."""
    return schema_response(request, public_schema(request.build_absolute_uri("/")), max_age=3600)


@require_GET
def platform_keys(request: HttpRequest):
    """The public keys certification countersignatures verify against."""
    response = JsonResponse({"keys": signing.platform_public_keys()})
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=3600"
    return response
