"""Input cleaning shared by the organisation services: each raises ValidationFailed naming the field."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils.text import slugify

from apps.core.errors import ValidationFailed
from apps.orgs.models import (
    Role,
)


def _clean_name(value: str, param: str, max_length: int = 100) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(f"{param} must not be empty.", param=param)
    if len(value) > max_length:
        raise ValidationFailed(f"{param} must be at most {max_length} characters.", param=param)
    if any(ord(ch) < 32 for ch in value):
        raise ValidationFailed(f"{param} must not contain control characters.", param=param)
    return value


def _clean_slug(value: str | None, fallback: str, param: str = "slug") -> str:
    # Underscores too are refused: the slug is the publisher part of extension ids (acme.order-tagger).
    slug = slugify(value if value else fallback).replace("_", "-")[:60].strip("-")
    if value and slug != value:
        raise ValidationFailed("slug may hold only lowercase letters, digits and hyphens.", param=param)
    if not slug:
        raise ValidationFailed("Choose a name with at least one letter or digit.", param=param)
    return slug


def _clean_role(role: str, param: str = "role") -> str:
    if role not in Role.values:
        raise ValidationFailed(f"role must be one of {', '.join(Role.values)}.", param=param)
    return role


def _clean_description(value: str | None, param: str = "description") -> str:
    value = (value or "").strip()[:500]
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
        raise ValidationFailed(f"{param} must not contain control characters.", param=param)
    return value


def _clean_email(email: str, param: str = "email") -> str:
    email = (email or "").strip().lower()
    try:
        if len(email) > 254:  # the column's size (RFC 5321); PostgreSQL would refuse a longer one
            raise DjangoValidationError("too long")
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed("Enter a valid e-mail address.", param=param) from None
    return email
