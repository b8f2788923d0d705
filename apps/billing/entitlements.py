"""The one entitlement check. Today it answers from the features the extension's listing declares
free and the grants an organisation's admin made to one installation; plans and subscriptions
(a later issue) plug into ``entitlement_check`` and nothing that calls it changes."""

from __future__ import annotations

import re

from apps.billing.models import FEATURE_PATTERN, EntitlementGrant
from apps.core.errors import PermissionDenied, ValidationFailed
from apps.installs.models import Installation, InstallationStatus
from apps.listings.models import Listing

_FEATURE = re.compile(FEATURE_PATTERN)


class EntitlementRequired(PermissionDenied):
    code = "entitlement_required"


def clean_feature(feature, param: str = "feature") -> str:
    if not isinstance(feature, str) or not _FEATURE.fullmatch(feature):
        raise ValidationFailed(
            "A feature name is lowercase letters, digits, '.', '_' and '-', starting with a letter (at most 64).",
            param=param,
            code="feature_invalid",
        )
    return feature


def free_features(installation: Installation) -> list[str]:
    listing = Listing.objects.filter(extension_id=installation.extension_id).only("free_features").first()
    return [f for f in (listing.free_features if listing else []) if isinstance(f, str)]


def entitlement_check(*, installation: Installation, feature: str) -> bool:
    """Whether ``installation`` may use ``feature``: only while active, when its listing offers the
    feature free or an admin of its organisation granted it."""
    if not isinstance(feature, str) or not _FEATURE.fullmatch(feature):
        return False
    if installation.status != InstallationStatus.ACTIVE:
        return False
    if feature in free_features(installation):
        return True
    return EntitlementGrant.objects.filter(
        installation_id=installation.pk, org_id=installation.org_id, feature=feature
    ).exists()


def entitlement_require(*, installation: Installation, feature: str) -> None:
    """Raise ``EntitlementRequired`` (403 ``entitlement_required``, ``param`` = the feature) unless entitled."""
    if not entitlement_check(installation=installation, feature=feature):
        raise EntitlementRequired(
            f"This organisation has not got the feature '{feature[:64]}' for this extension.", param=feature[:64]
        )
