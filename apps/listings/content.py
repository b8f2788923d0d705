"""Checking what a publisher writes into a listing draft: lengths, characters, tags, categories,
links (https only) and pricing. One function per field so the page and the API say the same."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from apps.core.errors import ValidationFailed
from apps.listings.models import Category, Pricing

MAX_TAGS = 10
MAX_CATEGORIES = 3
MAX_SCREENSHOTS = 8
MAX_DESCRIPTION = 20_000
TAG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,29}")
# Control characters (newlines and tabs are allowed only where the text may span lines) and lone
# surrogates, which PostgreSQL cannot store.
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f]|[\ud800-\udfff]")
_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\ud800-\udfff]")

TEXT_FIELDS = ("name", "tagline", "description", "pricing_text")
LINK_FIELDS = ("docs_url", "support_url", "privacy_url")
CONTENT_FIELDS = (*TEXT_FIELDS, *LINK_FIELDS, "tags", "categories", "pricing")


def clean_line(value, field: str, *, max_length: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text.", param=field)
    if _CONTROL_LINE.search(value):
        raise ValidationFailed(f"{field} must not contain control characters or line breaks.", param=field)
    value = value.strip()
    if required and not value:
        raise ValidationFailed(f"{field} is required.", param=field)
    if len(value) > max_length:
        raise ValidationFailed(f"{field} is at most {max_length} characters.", param=field)
    return value


def clean_text(value, field: str, *, max_length: int) -> str:
    """Multi-line text (Markdown, reviews, replies): newlines and tabs allowed, other controls not."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text.", param=field)
    if _CONTROL_TEXT.search(value):
        raise ValidationFailed(f"{field} must not contain control characters.", param=field)
    value = value.replace("\r\n", "\n").strip()
    if len(value) > max_length:
        raise ValidationFailed(f"{field} is at most {max_length:,} characters.", param=field)
    return value


def clean_https_url(value, field: str) -> str:
    """An absolute https URL with a host (no credentials), or ""."""
    value = clean_line(value, field, max_length=500)
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        host, scheme = parts.hostname, parts.scheme
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        host = scheme = None
    if scheme is None or scheme.lower() != "https" or not host or "." not in host or " " in value:
        raise ValidationFailed(f"{field} must be an https:// address.", code="url_invalid", param=field)
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed(f"{field} must not contain a user name or password.", code="url_invalid", param=field)
    return value


def clean_tags(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # the page's form: comma or space separated
        value = [t for t in re.split(r"[,\s]+", value) if t]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValidationFailed("tags must be a list of words.", param="tags")
    tags: list[str] = []
    for index, tag in enumerate(value):
        tag = tag.strip().lower().lstrip("#")
        if not TAG_RE.fullmatch(tag):
            raise ValidationFailed(
                "A tag is 1–30 lowercase letters, digits and hyphens.", code="tag_invalid", param=f"tags[{index}]"
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationFailed(f"At most {MAX_TAGS} tags.", param="tags")
    return tags


def clean_categories(value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ValidationFailed("categories must be a list of category slugs.", param="categories")
    known = set(Category.objects.values_list("slug", flat=True))
    slugs: list[str] = []
    for index, slug in enumerate(value):
        if slug not in known:
            raise ValidationFailed(
                f"Unknown category; choose from {', '.join(sorted(known))}.",
                code="category_invalid",
                param=f"categories[{index}]",
            )
        if slug not in slugs:
            slugs.append(slug)
    if len(slugs) > MAX_CATEGORIES:
        raise ValidationFailed(f"Choose at most {MAX_CATEGORIES} categories.", param="categories")
    return slugs


def clean_pricing(value) -> str:
    if value not in Pricing.values:
        raise ValidationFailed(
            f"pricing is one of {', '.join(Pricing.values)}.", code="pricing_invalid", param="pricing"
        )
    return value


def clean_content(data: dict) -> dict:
    """The draft fields of ``data`` (every field of CONTENT_FIELDS), checked and normalised."""
    return {
        "name": clean_line(data.get("name"), "name", max_length=60, required=True),
        "tagline": clean_line(data.get("tagline"), "tagline", max_length=140),
        "description": clean_text(data.get("description"), "description", max_length=MAX_DESCRIPTION),
        "tags": clean_tags(data.get("tags")),
        "categories": clean_categories(data.get("categories")),
        "docs_url": clean_https_url(data.get("docs_url"), "docs_url"),
        "support_url": clean_https_url(data.get("support_url"), "support_url"),
        "privacy_url": clean_https_url(data.get("privacy_url"), "privacy_url"),
        "pricing": clean_pricing(data.get("pricing") or Pricing.FREE),
        "pricing_text": clean_line(data.get("pricing_text"), "pricing_text", max_length=80),
    }


def submission_problems(draft) -> list[dict]:
    """What a draft still lacks before staff can review it (each {"param", "message"})."""
    problems = []
    if not draft.name:
        problems.append({"param": "name", "message": "Give the listing a name."})
    if not draft.tagline:
        problems.append({"param": "tagline", "message": "Write a tagline: one sentence on what it does."})
    if not draft.description:
        problems.append({"param": "description", "message": "Describe the extension."})
    if not draft.categories:
        problems.append({"param": "categories", "message": "Choose at least one category."})
    if not draft.privacy_url:
        problems.append({"param": "privacy_url", "message": "Link your privacy policy."})
    return problems
