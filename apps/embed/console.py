"""The organisation's embed settings in the console: host origins, light and dark theme (built-in
or uploaded DTCG packs, with every validation problem shown), and slot overrides. Forms post to
the page (post, redirect, get without JavaScript; htmx swaps the ``settings`` partial)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.embed import services
from apps.embed.models import ColorScheme
from apps.embed.selectors import settings_of, slots_for_org, theme_packs_for, widget_installations
from apps.orgs.portal import form_error, org_context, org_page

FIELDS = ("host_origins", "theme_id", "theme_dark_id", "name", "scheme", "tokens", "min_height", "max_height")
MAX_UPLOAD = 64 * 1024


def _int_or_none(value: str, param: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 5:
        raise ValidationFailed(f"{param} is a whole number of pixels.", param=param)
    return int(value)


def _post(request, org, principal) -> str:
    op = request.POST.get("op", "")
    if op == "origins":
        lines = [line.strip() for line in request.POST.get("host_origins", "")[:5000].splitlines() if line.strip()]
        row = services.embed_settings_update(principal=principal, org=org, host_origins=lines)
        return f"Saved {len(row.host_origins)} host origin(s)."
    if op == "themes":
        services.embed_settings_update(
            principal=principal,
            org=org,
            theme_id=request.POST.get("theme_id", "")[:40],
            theme_dark_id=request.POST.get("theme_dark_id", "")[:40],
        )
        return "Themes saved."
    if op == "upload":
        upload = request.FILES.get("file")
        if upload is not None:
            if upload.size > MAX_UPLOAD:
                raise ValidationFailed(f"A theme pack is at most {MAX_UPLOAD} bytes.", param="tokens")
            document = upload.read()
        else:
            document = request.POST.get("tokens", "")[: MAX_UPLOAD + 1].encode()
        pack = services.theme_pack_upload(
            principal=principal,
            org=org,
            name=request.POST.get("name", "")[:100],
            scheme=request.POST.get("scheme", ""),
            document=document,
        )
        return f"Uploaded {pack.name} version {pack.version} ({len(pack.resolved)} tokens)."
    if op == "slot":
        slot = request.POST.get("slot", "")[:100]
        services.slot_override_set(
            principal=principal,
            org=org,
            slot_name=slot,
            min_height=_int_or_none(request.POST.get("min_height", ""), "min_height"),
            max_height=_int_or_none(request.POST.get("max_height", ""), "max_height"),
            hidden=request.POST.get("hidden") == "on",
        )
        return f"Slot {slot} saved."
    raise ValidationFailed("Unknown action.")


@org_page("embed.settings.view")
def embed_settings_page(request, org, principal):
    error, status, notice, values = None, 200, "", {}
    if request.method == "POST":
        values = {key: request.POST.get(key, "")[:5000] for key in FIELDS}
        try:
            notice = _post(request, org, principal)
        except (ValidationFailed, Conflict, PermissionDenied) as exc:
            error, status = form_error(exc, FIELDS), exc.status
            error["op"] = request.POST.get("op", "")
            error["details"] = exc.details or []
        except NotFound as exc:
            error, status = form_error(exc), 404
        else:
            if not request.htmx:
                messages.success(request, notice)
                return redirect("embed_settings", org_id=org.pk)
            values = {}
    chosen = settings_of(org)
    packs = list(theme_packs_for(org))
    ctx = org_context(
        request,
        org,
        principal,
        settings=chosen,
        light_packs=[p for p in packs if p.scheme == ColorScheme.LIGHT],
        dark_packs=[p for p in packs if p.scheme == ColorScheme.DARK],
        packs=packs,
        slots=slots_for_org(org),
        widgets=widget_installations(org),
        schemes=ColorScheme.choices,
        error=error,
        notice=notice,
        values=values,
    )
    if request.htmx:
        return render(request, "embed/settings.html#settings", ctx)
    return render(request, "embed/settings.html", ctx, status=status)
