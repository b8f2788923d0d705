"""Writes of billing: an admin's entitlement grants, a publisher's free features."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.billing.entitlements import clean_feature
from apps.billing.models import EntitlementGrant
from apps.core import clock
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.extensions.models import Extension
from apps.installs.models import Installation
from apps.listings.models import Listing
from apps.orgs.policy import Principal, authorize

MAX_FREE_FEATURES = 50
MAX_GRANTS_PER_INSTALLATION = 100


def _user(principal: Principal):
    return principal.user if principal.kind == "user" else None


def entitlement_grant(
    *, principal: Principal, installation: Installation, feature: str, note: str = ""
) -> EntitlementGrant:
    """Grant ``feature`` to ``installation`` (its organisation's admin). Granting twice is a conflict."""
    authorize(principal, "entitlement.manage", installation.org)
    feature = clean_feature(feature)
    note = (note or "").strip()[:200] if isinstance(note, str) else ""
    with transaction.atomic():
        if EntitlementGrant.objects.filter(installation_id=installation.pk).count() >= MAX_GRANTS_PER_INSTALLATION:
            raise ValidationFailed(f"An installation has at most {MAX_GRANTS_PER_INSTALLATION} grants.")
        try:
            with transaction.atomic():
                grant = EntitlementGrant.objects.create(
                    org_id=installation.org_id,
                    installation_id=installation.pk,
                    feature=feature,
                    note=note,
                    granted_at=clock.now(),
                    granted_by=_user(principal),
                )
        except IntegrityError:
            raise Conflict(f"'{feature}' is already granted to this installation.", code="already_granted") from None
        audit_record(
            action="entitlement.granted",
            org_id=installation.org_id,
            target=grant,
            changes={"installation": installation.pk, "feature": feature},
        )
    return grant


def entitlement_revoke(*, principal: Principal, installation: Installation, feature: str) -> None:
    authorize(principal, "entitlement.manage", installation.org)
    with transaction.atomic():
        grant = EntitlementGrant.objects.filter(installation_id=installation.pk, feature=feature).first()
        if grant is None:
            raise NotFound("No such grant.", param="feature")
        audit_record(
            action="entitlement.revoked",
            org_id=installation.org_id,
            target=grant,
            changes={"installation": installation.pk, "feature": feature},
        )
        grant.delete()


def listing_free_features_set(*, principal: Principal, extension: Extension, features: list[str]) -> Listing:
    """The features every installation of ``extension`` may use without a grant. The caller resolved
    the extension for the publisher with ``listing.manage`` (as the listing services' callers do)."""
    if not isinstance(features, list) or len(features) > MAX_FREE_FEATURES:
        raise ValidationFailed(f"free_features is a list of at most {MAX_FREE_FEATURES} names.", param="free_features")
    cleaned = sorted({clean_feature(f, param=f"free_features[{i}]") for i, f in enumerate(features)})
    with transaction.atomic():
        listing = Listing.objects.select_for_update().filter(extension=extension).first()
        if listing is None:
            raise NotFound("The extension has no listing yet: create its listing first.", code="listing_not_found")
        before = list(listing.free_features or [])
        if before != cleaned:
            listing.free_features = cleaned
            listing.updated_at = clock.now()
            listing.save(update_fields=["free_features", "updated_at"])
            audit_record(
                action="listing.free_features_updated",
                org_id=listing.org_id,
                target=listing,
                changes={"from": before, "to": cleaned},
            )
    return listing
