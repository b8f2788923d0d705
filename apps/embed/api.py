"""Embeds over the API: a host product's backend starts a launch for one of the organisation's
members; the organisation's admins register host origins, choose or upload themes and adjust
slots. The browser-facing endpoints (frames, tokens, theme, JWKS, widget documents) are plain
views in ``views.py``: they are called cross-origin with the launch id, not with API credentials."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.embed import services
from apps.embed.models import Slot
from apps.embed.schemas import (
    EmbedSettingsIn,
    EmbedSettingsOut,
    LaunchIn,
    LaunchOut,
    SlotOut,
    SlotOverrideIn,
    ThemePackIn,
    ThemePackOut,
)
from apps.embed.selectors import settings_of, slot_limits, slots_for_org, theme_packs_for
from apps.orgs.selectors import get_org_for_principal

router = Router(tags=["embed"])


@router.post("/orgs/{org_id}/embed/launches", response={201: LaunchOut}, summary="Start a launch for a member")
def create_launch(request: HttpRequest, org_id: str, payload: LaunchIn):
    """The host product's backend, with a token holding `embed:launch`, starts an embedded session
    for `user_id` (an active member) on `host_origin` (a registered host origin). The page passes
    the launch id to `/embed/embed.js`. Errors: `not_a_member`, `host_origin_not_registered`,
    `validation_error` (`context` over 4 KB) — all 400."""
    org = get_org_for_principal(request.auth, org_id, "embed.launch")
    launch = services.launch_create(
        principal=request.auth,
        org=org,
        user_id=payload.user_id,
        host_origin=payload.host_origin,
        context=payload.context,
    )
    return Status(201, {"id": launch.pk, "expires_at": launch.expires_at})


def _settings_out(row) -> dict:
    return {"host_origins": list(row.host_origins or []), "theme_id": row.theme_id, "theme_dark_id": row.theme_dark_id}


@router.get("/orgs/{org_id}/embed/settings", response=EmbedSettingsOut, summary="The embed settings")
def get_embed_settings(request: HttpRequest, org_id: str):
    org = get_org_for_principal(request.auth, org_id, "embed.settings.view")
    return _settings_out(settings_of(org))


@router.patch("/orgs/{org_id}/embed/settings", response=EmbedSettingsOut, summary="Change the embed settings")
def update_embed_settings(request: HttpRequest, org_id: str, payload: EmbedSettingsIn):
    """Only the fields sent change. `host_origins` are exact origins (`https://shop.example.com`,
    no path or wildcard); `theme_id` / `theme_dark_id` name a light / dark theme pack ("" for the built-in)."""
    org = get_org_for_principal(request.auth, org_id, "embed.settings.manage")
    row = services.embed_settings_update(
        principal=request.auth,
        org=org,
        host_origins=payload.host_origins,
        theme_id=payload.theme_id,
        theme_dark_id=payload.theme_dark_id,
    )
    return _settings_out(row)


@router.get("/orgs/{org_id}/embed/themes", response=Page[ThemePackOut], summary="List theme packs")
def list_theme_packs(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    """The built-in packs and the organisation's own, every version."""
    org = get_org_for_principal(request.auth, org_id, "embed.settings.view")
    rows, next_cursor = paginate(theme_packs_for(org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/embed/themes", response={201: ThemePackOut}, summary="Upload a theme pack (DTCG JSON)")
def upload_theme_pack(request: HttpRequest, org_id: str, payload: ThemePackIn):
    """A new version of the pack `name`. Errors: `theme_invalid` (400) with every problem in
    `error.details` ({path, message}): unsupported types, invalid values, alias cycles, dangling aliases."""
    org = get_org_for_principal(request.auth, org_id, "embed.settings.manage")
    pack = services.theme_pack_upload(
        principal=request.auth, org=org, name=payload.name, scheme=payload.scheme, document=payload.tokens
    )
    return Status(201, pack)


def _slot_out(org, slot: Slot) -> dict:
    low, high, hidden = slot_limits(org, slot)
    return {
        "name": slot.name,
        "description": slot.description,
        "placement": slot.placement,
        "default_height": slot.default_height,
        "min_height": low,
        "max_height": high,
        "hidden": hidden,
    }


@router.get(
    "/orgs/{org_id}/embed/slots", response=Page[SlotOut], summary="The slot registry, as this organisation sees it"
)
def list_slots(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "embed.settings.view")
    rows = slots_for_org(org)
    data = [
        {
            "name": r["slot"].name,
            "description": r["slot"].description,
            "placement": r["slot"].placement,
            "default_height": r["slot"].default_height,
            "min_height": r["min_height"],
            "max_height": r["max_height"],
            "hidden": r["hidden"],
        }
        for r in rows
    ]
    start = next((i + 1 for i, row in enumerate(data) if row["name"] == cursor), 0) if cursor else 0
    page = data[start : start + limit]
    return {"data": page, "next_cursor": page[-1]["name"] if start + limit < len(data) and page else None}


@router.put("/orgs/{org_id}/embed/slots/{slot}", response=SlotOut, summary="Override a slot for this organisation")
def override_slot(request: HttpRequest, org_id: str, slot: str, payload: SlotOverrideIn):
    """Other height limits, or `hidden` to show no widgets there. Sending only defaults removes the override."""
    org = get_org_for_principal(request.auth, org_id, "embed.settings.manage")
    services.slot_override_set(
        principal=request.auth,
        org=org,
        slot_name=slot,
        min_height=payload.min_height,
        max_height=payload.max_height,
        hidden=payload.hidden,
    )
    return _slot_out(org, Slot.objects.get(name=slot))
