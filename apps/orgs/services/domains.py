"""Domains and their DNS TXT verification."""

from __future__ import annotations

import re
import secrets

from django.db import transaction

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.errors import Conflict, ValidationFailed
from apps.orgs.dns import DnsLookupError, get_resolver
from apps.orgs.models import (
    Domain,
    Organization,
)

# --- domains -------------------------------------------------------------------------------------
_DOMAIN_RE = re.compile(r"^(?=.{4,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$")


def domain_add(*, org: Organization, name: str) -> Domain:
    name = (name or "").strip().lower().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationFailed("That is not a valid domain name.", param="name") from None
    if not _DOMAIN_RE.fullmatch(name):
        raise ValidationFailed("Enter a domain name such as example.com.", param="name")
    with transaction.atomic():
        if Domain.objects.filter(org=org, name=name).exists():
            raise Conflict("This domain is already listed.", code="domain_exists", param="name")
        domain = Domain.objects.create(org=org, name=name, verification_token=secrets.token_hex(16))
        audit_record(action="domain.added", org_id=org.pk, target=domain, target_label=name)
    return domain


def domain_verify(*, domain: Domain) -> Domain:
    """Look for the TXT record; a domain verified by another organisation cannot be claimed twice."""
    error = ""
    try:
        found = domain.txt_record_value in get_resolver().txt(domain.txt_record_name)
    except DnsLookupError as exc:
        found, error = False, str(exc)[:300]
    if found and Domain.objects.filter(name=domain.name, verified_at__isnull=False).exclude(pk=domain.pk).exists():
        found, error = False, "Another organisation has verified this domain."
    if not found and not error:
        error = f"No TXT record {domain.txt_record_value!r} found at {domain.txt_record_name}."
    with transaction.atomic():
        now = clock.now()
        domain.last_checked_at = now
        domain.last_check_error = "" if found else error
        newly_verified = found and domain.verified_at is None
        if newly_verified:
            domain.verified_at = now
        domain.save(update_fields=["last_checked_at", "last_check_error", "verified_at"])
        if newly_verified:
            audit_record(action="domain.verified", org_id=domain.org_id, target=domain, target_label=domain.name)
    return domain


def domain_remove(*, domain: Domain) -> None:
    with transaction.atomic():
        audit_record(action="domain.removed", org_id=domain.org_id, target=domain, target_label=domain.name)
        domain.delete()
