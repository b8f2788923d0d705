"""Writes of embeds: a tenant's host origins and themes, uploaded theme packs, slot overrides, and
launches. Each is transactional and audited; authorisation happens here (``authorize``), so the
API and the console cannot disagree."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets

from django.conf import settings
from django.db import transaction

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.api import find_unstorable
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.ids import is_valid_id
from apps.embed.models import ColorScheme, EmbedSettings, Launch, Slot, SlotOverride, ThemePack
from apps.embed.origins import normalise_origin
from apps.embed.registry import ensure_registry
from apps.embed.selectors import get_theme_pack
from apps.embed.themes import load_document, parse_theme
from apps.orgs.models import Membership, Organization
from apps.orgs.policy import Principal, authorize

MAX_HOST_ORIGINS = 20
MAX_CONTEXT_BYTES = 4096
MAX_THEME_PACKS_PER_ORG = 200


def _acting_user(principal: Principal):
    return principal.user if principal.kind == "user" else None


def clean_host_origins(values) -> list[str]:
    if not isinstance(values, list):
        raise ValidationFailed("host_origins is a list of origins.", param="host_origins")
    if len(values) > MAX_HOST_ORIGINS:
        raise ValidationFailed(f"At most {MAX_HOST_ORIGINS} host origins.", param="host_origins")
    cleaned: list[str] = []
    for index, value in enumerate(values):
        origin = normalise_origin(value, param=f"host_origins[{index}]")
        if origin not in cleaned:
            cleaned.append(origin)
    return cleaned


def embed_settings_update(
    *,
    principal: Principal,
    org: Organization,
    host_origins: list[str] | None = None,
    theme_id: str | None = None,
    theme_dark_id: str | None = None,
) -> EmbedSettings:
    """Change the organisation's host origins and/or chosen themes ("" resets a theme to the built-in)."""
    authorize(principal, "embed.settings.manage", org)
    origins = clean_host_origins(host_origins) if host_origins is not None else None
    themes = {}
    for field, value, scheme in (
        ("theme", theme_id, ColorScheme.LIGHT),
        ("theme_dark", theme_dark_id, ColorScheme.DARK),
    ):
        if value is None:
            continue
        if value == "":
            themes[field] = None
            continue
        pack = get_theme_pack(org, value)
        if pack.scheme != scheme:
            raise ValidationFailed(f"{pack.name} is a {pack.scheme} theme.", param=f"{field}_id", code="theme_scheme")
        themes[field] = pack
    with transaction.atomic():
        row, _ = EmbedSettings.objects.select_for_update().get_or_create(org=org)
        changes = {}
        if origins is not None and origins != row.host_origins:
            changes["host_origins"] = {"from": row.host_origins, "to": origins}
            row.host_origins = origins
        for field, pack in themes.items():
            if getattr(row, f"{field}_id") != (pack.pk if pack else None):
                changes[field] = pack.pk if pack else None
                setattr(row, field, pack)
        if changes:
            row.updated_at, row.updated_by = clock.now(), _acting_user(principal)
            row.save()
            audit_record(action="embed.settings_updated", org_id=org.pk, target=row, changes=changes)
    return row


def theme_pack_upload(*, principal: Principal, org: Organization, name: str, scheme: str, document) -> ThemePack:
    """Validate a DTCG document and store it as the next version of the organisation's pack ``name``."""
    authorize(principal, "embed.settings.manage", org)
    name = (name or "").strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= 60 or any(ord(c) < 32 for c in name):
        raise ValidationFailed("A theme pack's name has 1 to 60 characters.", param="name")
    if scheme not in ColorScheme.values:
        raise ValidationFailed("scheme is light or dark.", param="scheme")
    source = load_document(document)
    resolved = parse_theme(source)
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=org.pk).first()  # serialises version numbers
        existing = ThemePack.objects.filter(org=org)
        if existing.count() >= MAX_THEME_PACKS_PER_ORG:
            raise ValidationFailed(f"An organisation keeps at most {MAX_THEME_PACKS_PER_ORG} theme pack versions.")
        latest = existing.filter(name=name).order_by("-version").first()
        pack = ThemePack.objects.create(
            org=org,
            name=name,
            version=(latest.version + 1) if latest else 1,
            scheme=scheme,
            source=source,
            resolved=resolved,
            created_by=_acting_user(principal),
        )
        audit_record(
            action="theme_pack.uploaded",
            org_id=org.pk,
            target=pack,
            changes={"name": name, "version": pack.version, "scheme": scheme, "tokens": len(resolved)},
        )
    return pack


def slot_override_set(
    *,
    principal: Principal,
    org: Organization,
    slot_name: str,
    min_height: int | None = None,
    max_height: int | None = None,
    hidden: bool = False,
) -> SlotOverride | None:
    """Override a slot's height limits or hide it for the organisation; all defaults removes the override."""
    authorize(principal, "embed.settings.manage", org)
    ensure_registry()
    slot = Slot.objects.filter(name=slot_name).first() if isinstance(slot_name, str) else None
    if slot is None:
        raise NotFound("No such slot.", param="slot")
    for param, value in (("min_height", min_height), ("max_height", max_height)):
        if value is not None and not (isinstance(value, int) and 20 <= value <= 4000):
            raise ValidationFailed(f"{param} is between 20 and 4000 pixels.", param=param)
    low = min_height if min_height is not None else slot.min_height
    high = max_height if max_height is not None else slot.max_height
    if low > high:
        raise ValidationFailed("min_height cannot exceed max_height.", param="min_height")
    with transaction.atomic():
        SlotOverride.objects.filter(org=org, slot=slot).delete()
        override = None
        if min_height is not None or max_height is not None or hidden:
            override = SlotOverride.objects.create(
                org=org, slot=slot, min_height=min_height, max_height=max_height, hidden=bool(hidden)
            )
        audit_record(
            action="embed.slot_overridden",
            org_id=org.pk,
            target_type="slot",
            target_id=slot.name,
            target_label=slot.name,
            changes={"min_height": min_height, "max_height": max_height, "hidden": bool(hidden)},
        )
    return override


def clean_context(context) -> dict:
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise ValidationFailed("context is a JSON object.", param="context")
    try:  # NaN and Infinity are not JSON (the database refuses them); nor is NUL storable text
        size = len(json.dumps(context, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
        raise ValidationFailed("context must be plain JSON (no NaN or Infinity).", param="context") from None
    if find_unstorable(context) is not None:
        raise ValidationFailed("context must not contain NUL characters or lone surrogates.", param="context")
    if size > MAX_CONTEXT_BYTES:
        raise ValidationFailed(f"context is at most {MAX_CONTEXT_BYTES} bytes of JSON ({size}).", param="context")
    return context


def launch_create(
    *, principal: Principal, org: Organization, user_id: str, host_origin: str, context: dict | None = None
) -> Launch:
    """Start an embedded session for ``user_id`` (an active member of ``org``) on ``host_origin``
    (one of the organisation's registered host origins). The host's backend calls this."""
    authorize(principal, "embed.launch", org)
    if not settings.PLAZA_WIDGET_ORIGIN:
        raise Conflict("Embeds are not configured on this Plaza (PLAZA_WIDGET_ORIGIN).", code="embeds_disabled")
    membership = (
        Membership.objects.select_related("user").filter(org=org, user_id=user_id, deactivated_at__isnull=True).first()
        if is_valid_id(user_id, "usr")
        else None
    )
    if membership is None:
        raise ValidationFailed("user_id is not an active member of the organisation.", param="user_id",
                               code="not_a_member")  # fmt: skip
    origin = normalise_origin(host_origin)
    registered = list(EmbedSettings.objects.filter(org=org).values_list("host_origins", flat=True).first() or [])
    if origin not in registered:
        raise ValidationFailed(
            f"{origin} is not one of the organisation's registered host origins.",
            param="host_origin",
            code="host_origin_not_registered",
        )
    cleaned = clean_context(context)
    now = clock.now()
    with transaction.atomic():
        launch = Launch.objects.create(
            org=org,
            user=membership.user,
            host_origin=origin,
            context=cleaned,
            view_key=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + dt.timedelta(minutes=settings.PLAZA_EMBED_LAUNCH_MINUTES),
        )
        # Never the launch id: it is the host page's capability to mint tokens, and the audit log is
        # readable by extensions granted api:audit:read (and their widgets' delegated tokens).
        audit_record(
            action="embed.launch_created",
            org_id=org.pk,
            target_type="launch",
            target_id=launch_reference(launch.pk),
            target_label=f"launch for {membership.user.pk} on {origin}",
            changes={"user": membership.user.pk, "host_origin": origin, "expires_at": launch.expires_at.isoformat()},
        )
    return launch


def launch_reference(launch_id: str) -> str:
    """A stable, non-secret name of a launch for the audit log (a launch id holder can match it)."""
    return "lchref_" + hashlib.sha256(f"plaza launch reference v1:{launch_id}".encode()).hexdigest()[:20]
