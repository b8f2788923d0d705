"""Billing (entitlements for now): what an installation may use beyond what its listing offers
free. Plans and subscriptions come later and answer through the same check
(``apps.billing.entitlements.entitlement_check``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core import clock
from apps.core.ids import PrefixedIdField
from apps.orgs.models import Organization

FEATURE_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"


class EntitlementGrant(models.Model):
    """An organisation admin's grant of one feature to one installation. Referenced by the
    installation's id (installation-bound data never holds a foreign key into ``installs``); the
    cleaner ``apps.billing.cleaners.installation_entitlements`` removes the rows on uninstall."""

    id = PrefixedIdField(prefix="egr")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    installation_id = models.CharField(max_length=32, db_index=True)
    feature = models.CharField(max_length=64)
    note = models.CharField(max_length=200, blank=True)
    granted_at = models.DateTimeField(default=clock.now)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["feature"]
        constraints = [
            models.UniqueConstraint(fields=["installation_id", "feature"], name="entitlement_grant_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.feature} for {self.installation_id}"
