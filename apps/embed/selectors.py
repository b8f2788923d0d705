"""Reads of embeds. Organisation-owned rows (settings, theme packs, overrides) are fetched for a
principal through the orgs selectors; launches are found by their id, which is the host page's
capability (the /embed/v1 endpoints carry no other credential), and by their view key on the
installation's own widget origin."""

from __future__ import annotations

import re

from django.conf import settings
from django.db.models import Q

from apps.core.errors import NotFound, PlazaError
from apps.core.ids import is_valid_id
from apps.embed.models import ColorScheme, EmbedSettings, Launch, Slot, SlotOverride, ThemePack
from apps.embed.origins import widget_origin
from apps.embed.registry import builtin_theme, ensure_registry
from apps.embed.widgets import REFERRER_POLICY, allow_for, declared_slots, sandbox_for
from apps.extensions.scopes import SLOT_NAME
from apps.installs.models import Installation, InstallationStatus
from apps.orgs.models import Organization

_SLOT_NAME = re.compile(SLOT_NAME)


class LaunchExpired(PlazaError):
    status = 410
    type = "not_found_error"
    code = "launch_expired"

    def __init__(self, *args, host_origin: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.host_origin = host_origin  # so the host page may read the 410 (CORS) and start a new launch


def get_launch(launch_id: str) -> Launch:
    """The launch named by the host page; 404 when unknown, 410 once expired."""
    if not is_valid_id(launch_id, "lch"):
        raise NotFound("No such launch.", code="launch_not_found")
    launch = Launch.objects.select_related("org", "user").filter(pk=launch_id).first()
    if launch is None:
        raise NotFound("No such launch.", code="launch_not_found")
    if launch.expired:
        raise LaunchExpired(
            "The launch has expired: the host page must start a new one.", host_origin=launch.host_origin
        )
    return launch


def get_launch_by_view(view_key: str) -> Launch:
    if not isinstance(view_key, str) or not 20 <= len(view_key) <= 64:
        raise NotFound("No such widget.", code="launch_not_found")
    launch = Launch.objects.select_related("org", "user").filter(view_key=view_key).first()
    if launch is None:
        raise NotFound("No such widget.", code="launch_not_found")
    if launch.expired:
        raise LaunchExpired("The launch has expired: the host page must start a new one.")
    return launch


def settings_of(org: Organization) -> EmbedSettings:
    """The organisation's embed settings (an unsaved default when it never changed them)."""
    return EmbedSettings.objects.filter(org=org).select_related("theme", "theme_dark").first() or EmbedSettings(
        org=org, host_origins=[]
    )


def host_origins_of(org: Organization) -> list[str]:
    return list(settings_of(org).host_origins or [])


def widget_installations(org: Organization) -> list[Installation]:
    """Active installations of ``org`` whose version declares a granted UI slot, in install order."""
    rows = (
        Installation.objects.filter(org=org, status=InstallationStatus.ACTIVE)
        .select_related("version", "extension")
        .order_by("id")
    )
    return [inst for inst in rows if declared_slots(inst)]


def get_widget_installation(org: Organization, installation_id: str) -> Installation:
    """One active installation of ``org`` with widgets; 404 otherwise (another tenant's included)."""
    if not is_valid_id(installation_id, "inst"):
        raise NotFound("No such installation.", code="installation_not_found")
    inst = (
        Installation.objects.filter(org=org, pk=installation_id, status=InstallationStatus.ACTIVE)
        .select_related("version", "extension")
        .first()
    )
    if inst is None or not declared_slots(inst):
        raise NotFound("No such installation.", code="installation_not_found")
    return inst


def slot_limits(org: Organization, slot: Slot) -> tuple[int, int, bool]:
    """(min height, max height, hidden) of ``slot`` for ``org``: the registry's, as the tenant overrode them."""
    override = SlotOverride.objects.filter(org=org, slot=slot).first()
    low, high, hidden = slot.min_height, slot.max_height, False
    if override is not None:
        low = override.min_height if override.min_height is not None else low
        high = override.max_height if override.max_height is not None else high
        hidden = override.hidden
    return low, max(low, high), hidden


def slots_for_org(org: Organization) -> list[dict]:
    ensure_registry()
    overrides = {o.slot_id: o for o in SlotOverride.objects.filter(org=org)}
    out = []
    for slot in Slot.objects.all():
        override = overrides.get(slot.name)
        low, high, hidden = slot_limits(org, slot) if override else (slot.min_height, slot.max_height, False)
        out.append({"slot": slot, "min_height": low, "max_height": high, "hidden": hidden, "override": override})
    return out


def frames_for(launch: Launch, slot_name: str) -> list[dict]:
    """The iframes the host page shows in ``slot_name``: one per active installation declaring it,
    in install order. An unknown or hidden slot has none."""
    if not settings.PLAZA_WIDGET_ORIGIN:
        return []
    ensure_registry()
    # Only a well-formed slot name reaches the database (PostgreSQL refuses NUL in text: a 500).
    well_formed = isinstance(slot_name, str) and len(slot_name) <= 100 and _SLOT_NAME.fullmatch(slot_name)
    slot = Slot.objects.filter(name=slot_name).first() if well_formed else None
    if slot is None:
        return []
    low, high, hidden = slot_limits(launch.org, slot)
    if hidden:
        return []
    frames = []
    for inst in widget_installations(launch.org):
        declaration = next((s for s in declared_slots(inst) if s["slot"] == slot_name), None)
        if declaration is None or not isinstance(declaration.get("entry"), str):
            continue
        height = declaration.get("height")
        height = slot.default_height if not isinstance(height, int) or isinstance(height, bool) else height
        origin = widget_origin(inst.pk)
        frames.append(
            {
                "installation_id": inst.pk,
                "extension_id": inst.extension_id,
                "title": str(declaration.get("title") or inst.extension.name)[:60],
                "src": f"{origin}/w/{launch.view_key}/{declaration['entry']}",
                "origin": origin,
                "sandbox": sandbox_for(declaration),
                "allow": allow_for(declaration),
                "referrerpolicy": REFERRER_POLICY,
                "height": min(max(height, low), high),
                "min_height": low,
                "max_height": high,
            }
        )
    return frames


def theme_packs_for(org: Organization):
    """Built-in packs and the organisation's own, newest version first."""
    ensure_registry()
    return ThemePack.objects.filter(Q(org__isnull=True) | Q(org=org)).order_by("org_id", "name", "-version")


def get_theme_pack(org: Organization, pack_id: str) -> ThemePack:
    if not is_valid_id(pack_id, "thm"):
        raise NotFound("No such theme pack.", param="theme_id")
    pack = theme_packs_for(org).filter(pk=pack_id).first()
    if pack is None:
        raise NotFound("No such theme pack.", param="theme_id")
    return pack


def theme_for(org: Organization, scheme: str = ColorScheme.LIGHT) -> ThemePack:
    """The pack the organisation chose for ``scheme``, or the built-in one."""
    chosen = settings_of(org)
    pack = chosen.theme_dark if scheme == ColorScheme.DARK else chosen.theme
    return pack or builtin_theme(scheme)
