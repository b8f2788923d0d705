"""The organisation's entitlement grants in the console: per installed extension, the features its
listing offers free and the ones an admin granted, with forms to grant and revoke."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from apps.billing import services
from apps.billing.models import EntitlementGrant
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.installs.models import Installation, InstallationStatus
from apps.installs.selectors import get_installation_for_principal
from apps.listings.models import Listing
from apps.orgs.portal import form_error, org_context, org_page

FIELDS = ("feature", "note")


def _post(request, org, principal) -> str:
    op = request.POST.get("op", "")
    installation = get_installation_for_principal(
        principal, org, request.POST.get("installation", "")[:40], "entitlement.manage"
    )
    feature = request.POST.get("feature", "")[:100].strip()
    if op == "grant":
        services.entitlement_grant(
            principal=principal, installation=installation, feature=feature, note=request.POST.get("note", "")
        )
        return f"Granted {feature} to {installation.extension.name}."
    if op == "revoke":
        services.entitlement_revoke(principal=principal, installation=installation, feature=feature)
        return f"Revoked {feature} from {installation.extension.name}."
    raise ValidationFailed("Unknown action.")


@org_page("entitlement.view")
def entitlements_page(request, org, principal):
    error, status, notice, values = None, 200, "", {}
    if request.method == "POST":
        values = {key: request.POST.get(key, "")[:200] for key in (*FIELDS, "installation")}
        try:
            notice = _post(request, org, principal)
        except (ValidationFailed, Conflict, PermissionDenied) as exc:
            error, status = form_error(exc, FIELDS), exc.status
            error["installation"] = values["installation"]
        except NotFound as exc:
            error, status = form_error(exc), 404
        else:
            if not request.htmx:
                messages.success(request, notice)
                return redirect("billing_entitlements", org_id=org.pk)
            values = {}
    installations = list(
        Installation.objects.filter(org=org, status=InstallationStatus.ACTIVE)
        .select_related("extension")
        .order_by("id")[:200]
    )
    ids = [i.pk for i in installations]
    grants: dict[str, list] = {}
    for grant in EntitlementGrant.objects.filter(org=org, installation_id__in=ids).order_by("feature"):
        grants.setdefault(grant.installation_id, []).append(grant)
    free = dict(
        Listing.objects.filter(extension_id__in=[i.extension_id for i in installations]).values_list(
            "extension_id", "free_features"
        )
    )
    for inst in installations:
        inst.grants = grants.get(inst.pk, [])
        inst.free_features = free.get(inst.extension_id) or []
    ctx = org_context(request, org, principal, installations=installations, error=error, notice=notice, values=values)
    if request.htmx:
        return render(request, "billing/entitlements.html#grants", ctx)
    return render(request, "billing/entitlements.html", ctx, status=status)
