"""Portal pages for organisations. Thin: parse the form, call one service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.orgs import services
from apps.orgs.models import ApiToken, Domain, Invitation, Membership, Role, ServiceAccount, Workspace
from apps.orgs.policy import SCOPES, authorize, can
from apps.orgs.portal import form_error, org_context, org_page
from apps.orgs.selectors import (
    get_object_for_principal,
    invitations_of,
    leave_or_remove,
    members_of,
    memberships_for_user,
    org_reachable_by_user,
    tokens_of,
    workspace_managers_by_workspace,
)


def home(request):
    if not request.user.is_authenticated:
        return render(request, "orgs/landing.html")
    first = memberships_for_user(request.user).first()
    if first is None:
        return redirect("org_create")
    return redirect("org_overview", org_id=first.org_id)


@login_required
def org_switch(request):
    org_id = request.GET.get("org", "")
    if org_reachable_by_user(request.user, org_id):
        return redirect("org_overview", org_id=org_id)
    return redirect("home")


@login_required
def org_create(request):
    error, values = None, {}
    if request.method == "POST":
        values = {"name": request.POST.get("name", ""), "slug": request.POST.get("slug", "")}
        try:
            org = services.org_create(user=request.user, name=values["name"], slug=values["slug"] or None)
        except (ValidationFailed, Conflict) as exc:
            error = form_error(exc, ("name", "slug"))
        else:
            messages.success(request, f"Created {org.name}. You are its owner.")
            return redirect("org_overview", org_id=org.pk)
    return render(request, "orgs/create.html", {"error": error, "values": values}, status=400 if error else 200)


@org_page("org.view")
def org_overview(request, org, principal):
    error = None
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "rename":
                org = services.org_update(org=get_org(principal, org, "org.update"), name=request.POST.get("name", ""))
                messages.success(request, "Saved.")
            elif op == "workspace_create":
                get_org(principal, org, "workspace.create")
                ws = services.workspace_create(
                    org=org, name=request.POST.get("ws_name", ""), description=request.POST.get("ws_description", "")
                )
                messages.success(request, f"Workspace {ws.name} created.")
            elif op == "workspace_delete":
                ws = get_object_for_principal(
                    principal, Workspace, org, request.POST.get("workspace", ""), "workspace.delete"
                )
                services.workspace_delete(workspace=ws)
                messages.success(request, f"Workspace {ws.name} deleted.")
            elif op in ("manager_grant", "manager_revoke"):
                ws = get_object_for_principal(
                    principal, Workspace, org, request.POST.get("workspace", ""), "workspace.grant"
                )
                membership = get_object_for_principal(
                    principal, Membership, org, request.POST.get("member", ""), "member.view", members_of(org)
                )
                grant = op == "manager_grant"
                services.workspace_manager_set(workspace=ws, membership=membership, manage=grant)
                who = membership.user.email
                messages.success(request, f"{who} {'may now manage' if grant else 'no longer manages'} {ws.name}.")
            else:
                raise ValidationFailed("Unknown action.")
            return redirect("org_overview", org_id=org.pk)
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = form_error(exc, ("name",) if op == "rename" else ())
    workspaces = list(Workspace.objects.filter(org=org))
    members = list(members_of(org))
    managers = workspace_managers_by_workspace(org, workspaces, members)
    for ws in workspaces:
        ws.managers = managers.get(ws.pk, [])
        ws.candidates = [m for m in members if m not in ws.managers and m.role not in ("owner", "admin")]
    return render(
        request,
        "orgs/overview.html",
        org_context(request, org, principal, workspaces=workspaces, error=error),
        status=400 if error else 200,
    )


def get_org(principal, org, action: str):
    """Re-check a stronger action on an organisation already resolved for viewing."""
    authorize(principal, action, org)
    return org


@org_page("member.view")
def org_members(request, org, principal):
    error, invited = None, None
    if request.method == "POST":
        try:
            get_org(principal, org, "invitation.create")
            invitation, _ = services.invitation_create(
                principal=principal,
                org=org,
                email=request.POST.get("email", ""),
                role=request.POST.get("role", Role.MEMBER),
            )
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("org_members", org_id=org.pk)
        except (ValidationFailed, Conflict) as exc:
            error = form_error(exc, ("email",))
            invited = request.POST.get("email", "")
    ctx = org_context(
        request, org, principal, members=members_of(org), roles=Role.choices, error=error, invited=invited
    )
    ctx["invitations"] = (
        invitations_of(org).filter(accepted_at__isnull=True, revoked_at__isnull=True)
        if ctx["can"]["invitation_view"]
        else []
    )
    return render(request, "orgs/members.html", ctx, status=400 if error else 200)


def _mutation(request, org, redirect_to: str, fn, success: str):
    try:
        fn()
        messages.success(request, success)
    except (ValidationFailed, Conflict, PermissionDenied) as exc:
        messages.error(request, exc.message)
    return redirect(redirect_to, org_id=org.pk)


@require_POST
@org_page("member.view")
def member_update(request, org, principal, member_id: str):
    membership = get_object_for_principal(principal, Membership, org, member_id, "member.update", members_of(org))
    return _mutation(
        request,
        org,
        "org_members",
        lambda: services.member_update(principal=principal, membership=membership, role=request.POST.get("role", "")),
        f"{membership.user.email} is now {request.POST.get('role', '')}.",
    )


@require_POST
@org_page("member.view")
def member_remove(request, org, principal, member_id: str):
    membership = get_object_for_principal(principal, Membership, org, member_id, "member.view", members_of(org))
    action = leave_or_remove(principal, membership)
    authorize(principal, action, membership)
    if action == "member.leave":
        try:
            services.member_remove(principal=principal, membership=membership)
        except Conflict as exc:
            messages.error(request, exc.message)
            return redirect("org_members", org_id=org.pk)
        messages.success(request, f"You left {org.name}.")
        return redirect("home")
    return _mutation(
        request,
        org,
        "org_members",
        lambda: services.member_remove(principal=principal, membership=membership),
        f"{membership.user.email} was removed.",
    )


@require_POST
@org_page("invitation.view")
def invitation_revoke(request, org, principal, invitation_id: str):
    invitation = get_object_for_principal(principal, Invitation, org, invitation_id, "invitation.revoke")
    return _mutation(
        request,
        org,
        "org_members",
        lambda: services.invitation_revoke(invitation=invitation),
        f"Invitation to {invitation.email} revoked.",
    )


@login_required
def invitation_accept(request, token: str):
    try:
        invitation = services.invitation_by_token(token)
    except NotFound as exc:
        return render(request, "errors/404.html", {"message": exc.message}, status=404)
    error = None
    if request.method == "POST":
        try:
            membership = services.invitation_accept(user=request.user, raw_token=token)
        except (Conflict, PermissionDenied) as exc:
            error = exc.message
        else:
            messages.success(request, f"Welcome to {membership.org.name}.")
            return redirect("org_overview", org_id=membership.org_id)
    return render(
        request, "orgs/invitation.html", {"invitation": invitation, "error": error}, status=400 if error else 200
    )


@org_page("domain.view")
def org_domains(request, org, principal):
    error = None
    if request.method == "POST":
        try:
            get_org(principal, org, "domain.create")
            domain = services.domain_add(org=org, name=request.POST.get("name", ""))
            messages.success(request, f"Added {domain.name}. Publish the TXT record below, then verify.")
            return redirect("org_domains", org_id=org.pk)
        except (ValidationFailed, Conflict) as exc:
            error = form_error(exc, ("name",))
    ctx = org_context(request, org, principal, domains=Domain.objects.filter(org=org), error=error)
    return render(request, "orgs/domains.html", ctx, status=400 if error else 200)


@require_POST
@org_page("domain.view")
def domain_verify(request, org, principal, domain_id: str):
    domain = get_object_for_principal(principal, Domain, org, domain_id, "domain.verify")
    domain = services.domain_verify(domain=domain)
    if domain.verified_at:
        messages.success(request, f"{domain.name} is verified.")
    else:
        messages.error(request, f"{domain.name} is not verified yet: {domain.last_check_error}")
    return redirect("org_domains", org_id=org.pk)


@require_POST
@org_page("domain.view")
def domain_remove(request, org, principal, domain_id: str):
    domain = get_object_for_principal(principal, Domain, org, domain_id, "domain.delete")
    return _mutation(
        request, org, "org_domains", lambda: services.domain_remove(domain=domain), f"Removed {domain.name}."
    )


@never_cache  # a new token's secret is shown on this page once
@org_page("token.view")
def org_tokens(request, org, principal):
    error, created = None, None
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "service_account_create":
                get_org(principal, org, "service_account.create")
                sa = services.service_account_create(
                    principal=principal,
                    org=org,
                    name=request.POST.get("name", ""),
                    description=request.POST.get("description", ""),
                    role=request.POST.get("role", Role.DEVELOPER),
                )
                messages.success(request, f"Service account {sa.name} created. Issue it a token below.")
                return redirect("org_tokens", org_id=org.pk)
            if op == "token_create":
                sa = get_object_for_principal(
                    principal, ServiceAccount, org, request.POST.get("service_account", ""), "token.create"
                )
                token, raw = services.token_create(
                    principal=principal,
                    service_account=sa,
                    name=request.POST.get("token_name", ""),
                    scopes=request.POST.getlist("scopes"),
                    expires_in_days=_parse_days(request.POST.get("expires_in_days", "90")),
                )
                created = {"token": token, "secret": raw}
            elif op == "service_account_disable":
                sa = get_object_for_principal(
                    principal, ServiceAccount, org, request.POST.get("service_account", ""), "service_account.update"
                )
                services.service_account_disable(service_account=sa)
                messages.success(request, f"{sa.name} disabled; its tokens are revoked.")
                return redirect("org_tokens", org_id=org.pk)
            elif op == "token_revoke":
                token = get_object_for_principal(
                    principal, ApiToken, org, request.POST.get("token", ""), "token.revoke"
                )
                services.token_revoke(token=token)
                messages.success(request, f"Token {token.name} revoked.")
                return redirect("org_tokens", org_id=org.pk)
            else:
                raise ValidationFailed("Unknown action.")
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = form_error(exc, ("name",) if op == "service_account_create" else ())
    service_accounts = list(ServiceAccount.objects.filter(org=org))
    for sa in service_accounts:
        sa.org = org  # the policy engine reads sa.org; this avoids one query per account
        sa.can_manage = can(principal, "token.create", sa) and not sa.installation_id
    tokens = list(tokens_of(org).order_by("-id"))
    for token in tokens:
        token.org = org
        token.can_revoke = can(principal, "token.revoke", token)
    ctx = org_context(
        request,
        org,
        principal,
        service_accounts=service_accounts,
        tokens=tokens,
        scopes=SCOPES,
        roles=Role.choices,
        error=error,
        created=created,
    )
    return render(request, "orgs/tokens.html", ctx, status=400 if error else 200)


def _whole_number(value: str) -> int | None:
    """A non-negative whole number typed into a form (ASCII digits only: ``"²".isdigit()`` is true
    but ``int("²")`` fails), or None. Absurdly long numbers are capped, not converted: they are out
    of every range anyway, and ``int()`` refuses more than 4300 digits."""
    if not (value.isascii() and value.isdigit()):
        return None
    return int(value) if len(value) <= 18 else 10**18


def _parse_days(value: str) -> int | None:
    if value == "never":
        return None
    days = _whole_number(value)
    if days is None:
        raise ValidationFailed("Choose an expiry.", param="expires_in_days")
    return days


@org_page("org.view")
def org_security(request, org, principal):
    error = None
    if request.method == "POST":
        try:
            get_org(principal, org, "org.policy.update")
            age = request.POST.get("max_session_age_minutes", "").strip()
            minutes = _whole_number(age) if age else None
            if age and minutes is None:
                raise ValidationFailed("Enter a whole number of minutes.", param="max_session_age_minutes")
            idle = request.POST.get("idle_timeout_minutes", "").strip()
            idle_minutes = _whole_number(idle) if idle else None
            if idle and idle_minutes is None:
                raise ValidationFailed("Enter a whole number of minutes.", param="idle_timeout_minutes")
            allowlist = [line.strip() for line in request.POST.get("ip_allowlist", "").splitlines() if line.strip()]
            services.org_policy_update(
                principal=principal,
                org=org,
                require_mfa=request.POST.get("require_mfa") == "on",
                max_session_age_minutes=minutes,
                ip_allowlist=allowlist,
                idle_timeout_minutes=idle_minutes,
                sso_required=request.POST.get("sso_required") == "on",
            )
            messages.success(request, "Security policy saved.")
            return redirect("org_security", org_id=org.pk)
        except (ValidationFailed, Conflict) as exc:
            error = form_error(
                exc, ("require_mfa", "max_session_age_minutes", "idle_timeout_minutes", "ip_allowlist", "sso_required")
            )
    ctx = org_context(request, org, principal, error=error, client_ip=principal.ip)
    return render(request, "orgs/security.html", ctx, status=400 if error else 200)
