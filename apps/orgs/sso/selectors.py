"""Reads for single sign-on: an organisation's connection (tenant-scoped through the policy engine)
and the routing of an e-mail address to the connection of the organisation that verified its domain."""

from __future__ import annotations

import re

from apps.core.errors import NotFound
from apps.orgs.models import Domain, Organization, SsoConnection
from apps.orgs.policy import Principal
from apps.orgs.selectors import get_org_for_principal

PROVIDER_PREFIX = "org-"
_PROVIDER_RE = re.compile(r"^org-(org_[A-Za-z0-9]{1,40})$")


def get_sso_connection_for_principal(principal: Principal, org_id: str, action: str) -> SsoConnection:
    """The organisation's connection after ``action`` is authorised; NotFound ``sso_not_configured``
    when it has none (and the usual NotFound for another tenant's organisation)."""
    org = get_org_for_principal(principal, org_id, action)
    connection = SsoConnection.objects.filter(org=org).select_related("org").first()
    if connection is None:
        raise NotFound("This organisation has no single sign-on connection.", code="sso_not_configured")
    return connection


def email_domain(email: str) -> str:
    return (email or "").rsplit("@", 1)[-1].strip().lower().rstrip(".") if "@" in (email or "") else ""


def verified_domain_names(org: Organization) -> list[str]:
    return list(
        Domain.objects.filter(org=org, verified_at__isnull=False).order_by("name").values_list("name", flat=True)
    )


def connection_for_email(email: str) -> SsoConnection | None:
    """The enabled connection of the organisation that verified ``email``'s domain, if any. A domain
    is verified by at most one organisation (a database constraint), so the answer is unique."""
    domain = email_domain(email)
    if not domain:
        return None
    return (
        SsoConnection.objects.select_related("org")
        .filter(enabled=True, org__domains__name=domain, org__domains__verified_at__isnull=False)
        .first()
    )


def org_id_of_provider(provider_id: str) -> str | None:
    """``org-<org id>`` → the organisation id; None for any other provider id."""
    match = _PROVIDER_RE.match(provider_id or "")
    return match.group(1) if match else None


def enabled_connection_for_provider(provider_id: str) -> SsoConnection | None:
    org_id = org_id_of_provider(provider_id)
    if org_id is None:
        return None
    return SsoConnection.objects.select_related("org").filter(org_id=org_id, enabled=True).first()
