"""Installation access tokens (GitHub-app style): the publisher's backend exchanges its own
credentials for a short-lived token that acts in the customer organisation with exactly the Plaza
API scopes the customer's admin granted (``api:org:read`` grants ``org:read``)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.crypto import new_secret, secret_hash
from apps.core.errors import Conflict
from apps.installs.models import Installation, InstallationStatus
from apps.installs.selectors import api_scopes, effective_scopes
from apps.installs.services._common import acting_user, lock
from apps.installs.services.lifecycle import _service_account_create
from apps.orgs.models import ApiToken, ServiceAccount
from apps.orgs.policy import Principal, authorize
from apps.orgs.services import TOKEN_PREFIX


def installation_tokens_trim(installation: Installation) -> list[ApiToken]:
    """Revoke the installation's live tokens that carry a scope its grant no longer covers (after
    an update or a rollback changed its version or its grant), so a token never outlives the
    consent it was minted under. Called inside the transaction that changed the installation."""
    allowed = set(api_scopes(effective_scopes(installation)))
    now = clock.now()
    # The caller holds the installation's lock, which token issue takes too: no token is minted meanwhile.
    live = (
        ApiToken.objects.filter(service_account__installation_id=installation.pk, revoked_at__isnull=True)
        .exclude(expires_at__lte=now)
        .order_by("pk")
    )
    revoked = [token for token in live if not set(token.scopes or []) <= allowed]
    for token in revoked:
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
        audit_record(
            action="token.revoked",
            org_id=token.org_id,
            target=token,
            changes={"installation": installation.pk, "reason": "scopes_no_longer_granted", "scopes": token.scopes},
        )
    return revoked


def installation_token_issue(*, principal: Principal, installation: Installation) -> tuple[ApiToken, str]:
    """Mint a token for ``installation``'s managed service account, valid
    ``PLAZA_INSTALLATION_TOKEN_MINUTES``, scoped to the installation's granted API scopes. The caller
    acts for the publisher (``installation.token`` on the extension). Returns the token and its
    secret (shown once). Refused (409) for an installation that is not active or granted no API scope."""
    authorize(principal, "installation.token", installation.extension)
    with transaction.atomic():
        locked = lock(installation)
        if locked.status != InstallationStatus.ACTIVE:
            raise Conflict(
                f"The installation is {locked.status}; it cannot get tokens.", code="installation_not_active"
            )
        scopes = api_scopes(effective_scopes(locked))
        if not scopes:
            raise Conflict(
                "The installation granted no Plaza API scope (api:…), so it has no use for a token.",
                code="no_api_scopes",
            )
        account = (
            ServiceAccount.objects.select_for_update()
            .filter(org_id=locked.org_id, installation_id=locked.pk)
            .order_by("pk")
            .first()
        ) or _service_account_create(locked)
        if account.disabled_at is not None:
            raise Conflict("The installation's service account is disabled.", code="installation_not_active")
        now = clock.now()
        # Expired tokens of the account are of no use to anyone: keep the table from growing hourly.
        ApiToken.objects.filter(service_account=account, expires_at__lte=now).delete()
        raw = new_secret(TOKEN_PREFIX, 30)
        token = ApiToken.objects.create(
            org_id=locked.org_id,
            service_account=account,
            name=f"installation token ({locked.extension.key})"[:100],
            token_hash=secret_hash(raw),
            last_four=raw[-4:],
            scopes=scopes,
            created_by=acting_user(principal),
            expires_at=now + dt.timedelta(minutes=settings.PLAZA_INSTALLATION_TOKEN_MINUTES),
        )
        changes = {"installation": locked.pk, "scopes": scopes, "expires_at": token.expires_at.isoformat()}
        audit_record(action="installation.token_issued", org_id=locked.org_id, target=token, changes=changes)
        audit_record(
            action="installation.token_issued",
            org_id=locked.extension.org_id,
            target=locked,
            changes={**changes, "token": token.pk, "org": locked.org_id},
        )
    return token, raw
