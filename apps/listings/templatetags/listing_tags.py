"""Template helpers of the storefront: image addresses, star ratings, scope change wording."""

from __future__ import annotations

from django import template
from django.urls import reverse

register = template.Library()


@register.filter
def media_src(entry) -> str:
    """The address of a listing image entry ({"sha256": …}), or ""."""
    if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64:
        return reverse("listing_media", kwargs={"sha256": entry["sha256"]})
    return ""


@register.filter
def stars(value) -> str:
    """★★★★☆ for 4 (rounded to the nearest whole star)."""
    try:
        n = max(0, min(5, round(float(value or 0))))
    except (TypeError, ValueError):
        n = 0
    return "★" * n + "☆" * (5 - n)


CHANGE_WORDS = {"added": "New permission", "removed": "No longer asks for", "escalation": "More access"}


@register.filter
def change_word(change) -> str:
    return CHANGE_WORDS.get(str(change), str(change))
