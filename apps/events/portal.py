"""The event catalog in the portal: every signed-in person reads it (publishers build against it);
platform staff register types and versions here, with the compatibility report shown in place."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from apps.core.errors import Conflict, NotFound, PermissionDenied, PlazaError, ValidationFailed
from apps.events import services
from apps.events.models import CompatibilityMode
from apps.events.selectors import event_types, get_event_type, latest_versions
from apps.orgs.portal import page_of
from apps.orgs.selectors import get_platform_org_for_principal, principal_from_request

MAX_JSON = 128 * 1024


def _staff(principal):
    """The platform organisation when ``principal`` may manage the catalog, else None."""
    try:
        return get_platform_org_for_principal(principal, "event_type.manage")
    except (PermissionDenied, PlazaError):
        return None


def _json_field(request, name: str, fallback):
    text = request.POST.get(name, "")
    if not text.strip():
        return fallback
    if len(text) > MAX_JSON:
        raise ValidationFailed(f"At most {MAX_JSON // 1024} KiB of JSON.", param=name)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed(f"Not JSON: {str(exc)[:200]}", param=name) from None


def _problems(exc: PlazaError) -> list[dict]:
    return exc.details or [{"path": exc.param or "", "rule": exc.code, "message": exc.message}]


@login_required
def catalog(request):
    principal = principal_from_request(request)
    platform = _staff(principal)
    problems = None
    if request.method == "POST" and platform is not None:
        try:
            created = services.event_type_create(
                principal=principal,
                platform_org=platform,
                name=request.POST.get("name", "").strip(),
                description=request.POST.get("description", ""),
                schema=_json_field(request, "schema", None),
                examples=_json_field(request, "examples", None),
                compatibility=request.POST.get("compatibility", CompatibilityMode.FULL_TRANSITIVE),
                changelog=request.POST.get("changelog", ""),
            )
            messages.success(request, f"{created.name} registered with version 1.")
            return redirect("event_type_page", name=created.name)
        except (ValidationFailed, Conflict) as exc:
            problems = _problems(exc)
    types, next_page = page_of(request, event_types(), newest_first=False)
    latest = latest_versions(types)
    for t in types:
        t.latest_version = latest.get(t.pk)
    ctx = {
        "types": types,
        "next_page": next_page,
        "staff": platform is not None,
        "modes": CompatibilityMode.choices,
        "problems": problems,
    }
    return render(request, "events/catalog.html", ctx, status=400 if problems else 200)


@login_required
def event_type_page(request, name: str):
    principal = principal_from_request(request)
    try:
        event_type = get_event_type(name)
    except NotFound as exc:
        return render(request, "errors/404.html", {"message": exc.message}, status=404)
    platform = _staff(principal)
    problems, report = None, None
    if request.method == "POST" and platform is not None:
        try:
            schema = _json_field(request, "schema", None)
            if request.POST.get("op") == "check":
                services.refuse_invalid(services.schema_problems(schema))
                report = [p.as_dict() for p in services.compatibility_report(event_type, schema)]
            else:
                created = services.event_schema_register(
                    principal=principal,
                    platform_org=platform,
                    event_type=event_type,
                    schema=schema,
                    examples=_json_field(request, "examples", None),
                    changelog=request.POST.get("changelog", ""),
                )
                messages.success(request, f"{event_type.name} v{created.version} registered.")
                return redirect("event_type_page", name=event_type.name)
        except (ValidationFailed, Conflict) as exc:
            problems = _problems(exc)
    versions = [
        {"v": s, "schema": json.dumps(s.schema, indent=2), "examples": json.dumps(s.examples, indent=2)}
        for s in event_type.schemas.order_by("-version")
    ]
    ctx = {
        "event_type": event_type,
        "versions": versions,
        "staff": platform is not None,
        "problems": problems,
        "report": report,
        "draft": request.POST.get("schema", versions[0]["schema"] if versions else ""),
        "draft_examples": request.POST.get("examples", versions[0]["examples"] if versions else ""),
    }
    return render(request, "events/type.html", ctx, status=400 if problems else 200)
