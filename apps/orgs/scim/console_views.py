"""The admin console's SCIM page: the base URL, SCIM tokens (issue, shown once; list; revoke) and
a "test connection" view of when the identity provider last called and what it did."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.audit.models import AuditEvent
from apps.core.errors import PlazaError
from apps.orgs import services
from apps.orgs.models import Organization
from apps.orgs.policy import Principal
from apps.orgs.portal import form_error, org_context, org_page
from apps.orgs.services.provisioning import scim_token_issue, scim_tokens

_SCIM_ACTIONS = ("member.", "group.")


@org_page("scim.provision")
@require_http_methods(["GET", "POST"])
def scim_console(request: HttpRequest, org: Organization, principal: Principal) -> HttpResponse:
    created = error = None
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "issue":
                token, secret = scim_token_issue(
                    principal=principal, org=org, name=request.POST.get("name", "").strip()
                )
                created = {"token": token, "secret": secret}
            elif op == "revoke":
                token = next((t for t in scim_tokens(org) if t.pk == request.POST.get("token")), None)
                if token is not None:
                    services.token_revoke(token=token)
                return redirect(request.path)
        except PlazaError as exc:
            error = form_error(exc, ("name",))
    tokens = scim_tokens(org)
    used = [t.last_used_at for t in tokens if t.last_used_at]
    account_ids = {t.service_account_id for t in tokens}
    recent = (
        AuditEvent.objects.filter(org_id=org.pk, actor_id__in=account_ids).order_by("-seq")[:20] if account_ids else []
    )
    context = org_context(
        request,
        org,
        principal,
        base_url=request.build_absolute_uri("/scim/v2/"),
        tokens=tokens,
        created=created,
        error=error,
        last_call=max(used) if used else None,
        recent=[e for e in recent if e.action.startswith(_SCIM_ACTIONS) or e.action.startswith("token.")],
        tested=request.method == "POST" and request.POST.get("op") == "test",
    )
    template = "orgs/console/scim.html"
    if request.htmx and request.POST.get("op") == "test":
        template += "#connection"
    return render(request, template, context)
