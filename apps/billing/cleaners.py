"""The billing app's uninstall cleaner (``PLAZA_INSTALL_CLEANERS``): an installation's entitlement grants."""

from __future__ import annotations

from apps.billing.models import EntitlementGrant


def installation_entitlements(installation_id: str) -> dict:
    """Delete the installation's entitlement grants."""
    label = "Entitlement grants"
    if not installation_id:
        return {"label": label, "removed": {}, "remaining": {}}
    rows = EntitlementGrant.objects.filter(installation_id=installation_id)
    removed = rows.count()
    rows.delete()
    remaining = EntitlementGrant.objects.filter(installation_id=installation_id).count()
    return {"label": label, "removed": {"grants": removed}, "remaining": {"grants": remaining}}
