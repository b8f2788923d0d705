"""The orgs app's uninstall cleaner (listed in ``PLAZA_INSTALL_CLEANERS``): an installation's
managed service account and every API token it holds. Knows the installation only by its id."""

from __future__ import annotations

from apps.orgs.models import ApiToken, ServiceAccount


def _held(installation_id: str) -> dict[str, int]:
    return {
        "service_accounts": ServiceAccount.objects.filter(installation_id=installation_id).count(),
        "tokens": ApiToken.objects.filter(service_account__installation_id=installation_id).count(),
    }


def installation_tokens(installation_id: str) -> dict:
    """Delete the installation's service account(s) and their tokens (revoked or not)."""
    if not installation_id:  # "" names the organisation's own accounts, never an installation's
        return {"label": "Service account and API tokens", "removed": {}, "remaining": {}}
    removed = _held(installation_id)
    ApiToken.objects.filter(service_account__installation_id=installation_id).delete()
    ServiceAccount.objects.filter(installation_id=installation_id).delete()
    return {"label": "Service account and API tokens", "removed": removed, "remaining": _held(installation_id)}
