"""Entitlements over the API: a widget's backend (or the widget itself, with its delegated token)
asks whether its installation may use a feature; an organisation's admins grant features to
installations; a publisher declares which features of its extension are free."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from apps.billing import services
from apps.billing.entitlements import clean_feature, entitlement_require
from apps.billing.models import EntitlementGrant
from apps.billing.schemas import EntitlementOut, FreeFeaturesIn, FreeFeaturesOut, GrantIn, GrantOut
from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import NotFound, PermissionDenied
from apps.extensions.selectors import get_extension_for_principal
from apps.installs.models import Installation
from apps.installs.selectors import get_installation_for_principal
from apps.listings.models import Listing
from apps.orgs.policy import ip_allowed
from apps.orgs.selectors import get_org_for_principal

router = Router(tags=["billing"])
GRANTS = "/orgs/{org_id}/installations/{installation_id}/entitlements"


@router.get(
    "/entitlements/{feature}",
    response=EntitlementOut,
    summary="Whether the calling installation may use a feature",
)
def check_entitlement(request: HttpRequest, feature: str):
    """Called with an installation's credential: a widget's delegated token or an installation
    access token. 200 `{feature, entitled: true}`, or 403 `entitlement_required` with `param` = the
    feature (a widget then sends `upgrade` to its host). Other callers: 403 `installation_token_required`."""
    principal = request.auth
    account = principal.service_account if principal.kind == "service_account" else None
    installation_id = getattr(account, "installation_id", None) if account is not None else None
    if not installation_id:
        raise PermissionDenied(
            "Only an installation's token (a widget's delegated token or an installation access token) may ask.",
            code="installation_token_required",
        )
    if not ip_allowed(principal.ip, account.org.ip_allowlist):  # as every policy check does
        raise PermissionDenied("Your organisation's IP allowlist does not include this address.", code="ip_not_allowed")
    feature = clean_feature(feature)
    installation = Installation.objects.filter(pk=installation_id, org_id=account.org_id).first()
    if installation is None:
        raise NotFound("No such installation.")
    entitlement_require(installation=installation, feature=feature)
    return {"feature": feature, "entitled": True}


def _installation(request: HttpRequest, org_id: str, installation_id: str, action: str) -> Installation:
    org = get_org_for_principal(request.auth, org_id, action)
    return get_installation_for_principal(request.auth, org, installation_id, action)


@router.get(GRANTS, response=Page[GrantOut], summary="List the features granted to an installation")
def list_grants(
    request: HttpRequest, org_id: str, installation_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY
):
    installation = _installation(request, org_id, installation_id, "entitlement.view")
    rows, next_cursor = paginate(
        EntitlementGrant.objects.filter(installation_id=installation.pk, org_id=installation.org_id),
        limit=limit,
        cursor=cursor,
    )
    return {"data": rows, "next_cursor": next_cursor}


@router.post(GRANTS, response={201: GrantOut}, summary="Grant a feature to an installation")
def create_grant(request: HttpRequest, org_id: str, installation_id: str, payload: GrantIn):
    """Errors: `feature_invalid` (400), `already_granted` (409)."""
    installation = _installation(request, org_id, installation_id, "entitlement.manage")
    grant = services.entitlement_grant(
        principal=request.auth, installation=installation, feature=payload.feature, note=payload.note
    )
    return Status(201, grant)


@router.delete(GRANTS + "/{feature}", response={204: None}, summary="Revoke a feature granted to an installation")
def delete_grant(request: HttpRequest, org_id: str, installation_id: str, feature: str):
    installation = _installation(request, org_id, installation_id, "entitlement.manage")
    services.entitlement_revoke(principal=request.auth, installation=installation, feature=feature)
    return Status(204, None)


FREE = "/orgs/{org_id}/extensions/{extension_id}/free-features"


@router.get(FREE, response=FreeFeaturesOut, summary="The features of an extension every installation gets free")
def get_free_features(request: HttpRequest, org_id: str, extension_id: str):
    org = get_org_for_principal(request.auth, org_id, "listing.view")
    extension = get_extension_for_principal(request.auth, org, extension_id, "listing.view")
    listing = Listing.objects.filter(extension=extension).first()
    return {"extension_id": extension.pk, "free_features": list(listing.free_features if listing else [])}


@router.put(FREE, response=FreeFeaturesOut, summary="Declare the features of an extension that are free")
def put_free_features(request: HttpRequest, org_id: str, extension_id: str, payload: FreeFeaturesIn):
    """The listing must exist. Errors: `feature_invalid` (400, `param` names the entry), `listing_not_found` (404)."""
    org = get_org_for_principal(request.auth, org_id, "listing.manage")
    extension = get_extension_for_principal(request.auth, org, extension_id, "listing.manage")
    listing = services.listing_free_features_set(
        principal=request.auth, extension=extension, features=payload.free_features
    )
    return {"extension_id": extension.pk, "free_features": listing.free_features}
