"""Service accounts and their API tokens."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.crypto import new_secret, secret_hash
from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.orgs.models import (
    ApiToken,
    Organization,
    Role,
    ServiceAccount,
)
from apps.orgs.policy import SCOPES, Principal
from apps.orgs.services._validation import _clean_description, _clean_name, _clean_role
from apps.orgs.services.members import _guard_owner_change

TOKEN_PREFIX = "plz_"
MAX_TOKEN_DAYS = 366


# --- service accounts and tokens -----------------------------------------------------------------
def service_account_create(
    *, principal: Principal, org: Organization, name: str, description: str = "", role: str = Role.DEVELOPER
) -> ServiceAccount:
    name = _clean_name(name, "name")
    role = _clean_role(role)
    _guard_owner_change(principal, org, touching_owner=role == Role.OWNER)
    with transaction.atomic():
        sa = ServiceAccount.objects.create(
            org=org,
            name=name,
            description=_clean_description(description),
            role=role,
            created_by=principal.user if principal.kind == "user" else None,
        )
        audit_record(action="service_account.created", org_id=org.pk, target=sa, changes={"role": role})
    return sa


def _refuse_managed(service_account: ServiceAccount) -> None:
    """An installation's account is Plaza's: its tokens are minted for the extension's publisher
    and it is disabled with the installation (apps.installs). Revoking one of its tokens is allowed."""
    if service_account.installation_id:
        raise Conflict(
            f"This service account belongs to the installation {service_account.installation_id}; "
            "manage the installation instead (block, uninstall).",
            code="managed_service_account",
        )


def service_account_disable(*, service_account: ServiceAccount) -> ServiceAccount:
    """Disable the account and revoke every token it holds."""
    _refuse_managed(service_account)
    if service_account.disabled_at:
        return service_account
    with transaction.atomic():
        now = clock.now()
        service_account.disabled_at = now
        service_account.save(update_fields=["disabled_at"])
        revoked = ApiToken.objects.filter(service_account=service_account, revoked_at__isnull=True).update(
            revoked_at=now
        )
        audit_record(
            action="service_account.disabled",
            org_id=service_account.org_id,
            target=service_account,
            changes={"tokens_revoked": revoked},
        )
    return service_account


def _clean_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise ValidationFailed("Choose at least one scope.", param="scopes")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationFailed(f"Unknown scope(s): {', '.join(map(str, unknown))[:200]}.", param="scopes")
    return sorted(set(scopes))


def token_create(
    *,
    principal: Principal,
    service_account: ServiceAccount,
    name: str,
    scopes: list[str],
    expires_in_days: int | None = 90,
    secret: str | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token; returns it and the secret, which is shown once and never stored."""
    name = _clean_name(name, "name")
    scopes = _clean_scopes(scopes)
    _refuse_managed(service_account)
    if service_account.disabled_at:
        raise Conflict("The service account is disabled.", code="service_account_disabled")
    if principal.scopes is not None and not set(scopes) <= principal.scopes:
        raise PermissionDenied("A token cannot issue a token with scopes it does not hold.", code="scope_escalation")
    if expires_in_days is not None and not (1 <= expires_in_days <= MAX_TOKEN_DAYS):
        raise ValidationFailed(f"expires_in_days must be between 1 and {MAX_TOKEN_DAYS}.", param="expires_in_days")
    expires_at = clock.now() + dt.timedelta(days=expires_in_days) if expires_in_days else None
    issuer = principal.token
    if issuer is not None and issuer.expires_at and (expires_at is None or expires_at > issuer.expires_at):
        # A leaked token must not be able to extend its own life by minting a longer-lived one.
        raise ValidationFailed(
            f"A token cannot issue a token that outlives it (this one expires {issuer.expires_at:%Y-%m-%d %H:%M} UTC).",
            param="expires_in_days",
            code="outlives_issuer",
        )
    raw = secret or new_secret(TOKEN_PREFIX, 30)
    if not raw.startswith(TOKEN_PREFIX) or len(raw) < 32:
        raise ValidationFailed("A token secret starts with plz_ and has at least 32 characters.", param="secret")
    with transaction.atomic():
        token = ApiToken.objects.create(
            org_id=service_account.org_id,
            service_account=service_account,
            name=name,
            token_hash=secret_hash(raw),
            last_four=raw[-4:],
            scopes=scopes,
            created_by=principal.user if principal.kind == "user" else None,
            expires_at=expires_at,
        )
        audit_record(
            action="token.created",
            org_id=service_account.org_id,
            target=token,
            changes={
                "scopes": scopes,
                "service_account": service_account.pk,
                "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            },
        )
    return token, raw


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at:
        return token
    with transaction.atomic():
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit_record(action="token.revoked", org_id=token.org_id, target=token)
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    """The usable token for a presented secret, or None. Records last use at most once a minute."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("service_account__org")
        .filter(token_hash=secret_hash(raw), revoked_at__isnull=True, service_account__disabled_at__isnull=True)
        .first()
    )
    now = clock.now()
    if token is None or not token.is_usable(now):
        return None
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
