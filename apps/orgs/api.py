"""Organisations, workspaces, members, invitations, domains, service accounts and tokens.

Every operation resolves its organisation with ``get_org_for_principal`` and its object with
``get_object_for_principal``: tenant scoping and authorisation happen there and only there."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import PermissionDenied
from apps.orgs import services
from apps.orgs.models import ApiToken, Domain, Invitation, Membership, ServiceAccount, Workspace
from apps.orgs.policy import authorize
from apps.orgs.schemas import (
    DomainCreateIn,
    DomainOut,
    InvitationCreateIn,
    InvitationOut,
    MemberOut,
    MemberUpdateIn,
    OrgCreateIn,
    OrgOut,
    OrgUpdateIn,
    PolicyIn,
    PolicyOut,
    ServiceAccountCreateIn,
    ServiceAccountOut,
    TokenCreatedOut,
    TokenCreateIn,
    TokenOut,
    WorkspaceCreateIn,
    WorkspaceOut,
    WorkspaceUpdateIn,
)
from apps.orgs.selectors import (
    get_object_for_principal,
    get_org_for_principal,
    invitations_of,
    leave_or_remove,
    members_of,
    orgs_for_principal,
    tokens_of,
    workspace_managers,
)

router = Router(tags=["organisations"])


# --- organisations -------------------------------------------------------------------------------
@router.get("/orgs", response=Page[OrgOut], summary="List your organisations")
def list_orgs(request: HttpRequest, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    rows, next_cursor = paginate(orgs_for_principal(request.auth), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/orgs", response={201: OrgOut}, summary="Create an organisation (you become its owner)")
def create_org(request: HttpRequest, payload: OrgCreateIn):
    if request.auth.kind != "user":
        raise PermissionDenied("Service accounts cannot create organisations.", code="users_only")
    return Status(201, services.org_create(user=request.auth.user, name=payload.name, slug=payload.slug))


@router.get("/orgs/{org_id}", response=OrgOut, summary="Get an organisation")
def get_org(request: HttpRequest, org_id: str):
    return get_org_for_principal(request.auth, org_id, "org.view")


@router.patch("/orgs/{org_id}", response=OrgOut, summary="Rename an organisation")
def update_org(request: HttpRequest, org_id: str, payload: OrgUpdateIn):
    org = get_org_for_principal(request.auth, org_id, "org.update")
    return services.org_update(org=org, name=payload.name)


@router.get("/orgs/{org_id}/policy", response=PolicyOut, summary="Get the security policy")
def get_policy(request: HttpRequest, org_id: str):
    return get_org_for_principal(request.auth, org_id, "org.view")


@router.put("/orgs/{org_id}/policy", response=PolicyOut, summary="Replace the security policy")
def put_policy(request: HttpRequest, org_id: str, payload: PolicyIn):
    org = get_org_for_principal(request.auth, org_id, "org.policy.update")
    return services.org_policy_update(
        principal=request.auth,
        org=org,
        require_mfa=payload.require_mfa,
        max_session_age_minutes=payload.max_session_age_minutes,
        ip_allowlist=payload.ip_allowlist,
        idle_timeout_minutes=payload.idle_timeout_minutes,
        sso_required=payload.sso_required,
    )


# --- workspaces ----------------------------------------------------------------------------------
@router.get("/orgs/{org_id}/workspaces", response=Page[WorkspaceOut], summary="List workspaces")
def list_workspaces(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "workspace.view")
    rows, next_cursor = paginate(Workspace.objects.filter(org=org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/workspaces", response={201: WorkspaceOut}, summary="Create a workspace")
def create_workspace(request: HttpRequest, org_id: str, payload: WorkspaceCreateIn):
    org = get_org_for_principal(request.auth, org_id, "workspace.create")
    return Status(
        201, services.workspace_create(org=org, name=payload.name, slug=payload.slug, description=payload.description)
    )


@router.get("/orgs/{org_id}/workspaces/{workspace_id}", response=WorkspaceOut, summary="Get a workspace")
def get_workspace(request: HttpRequest, org_id: str, workspace_id: str):
    org = get_org_for_principal(request.auth, org_id, "workspace.view")
    return get_object_for_principal(request.auth, Workspace, org, workspace_id, "workspace.view")


@router.patch("/orgs/{org_id}/workspaces/{workspace_id}", response=WorkspaceOut, summary="Update a workspace")
def update_workspace(request: HttpRequest, org_id: str, workspace_id: str, payload: WorkspaceUpdateIn):
    org = get_org_for_principal(request.auth, org_id, "workspace.view")
    ws = get_object_for_principal(request.auth, Workspace, org, workspace_id, "workspace.update")
    return services.workspace_update(workspace=ws, name=payload.name, description=payload.description)


@router.delete("/orgs/{org_id}/workspaces/{workspace_id}", response={204: None}, summary="Delete a workspace")
def delete_workspace(request: HttpRequest, org_id: str, workspace_id: str):
    org = get_org_for_principal(request.auth, org_id, "workspace.view")
    ws = get_object_for_principal(request.auth, Workspace, org, workspace_id, "workspace.delete")
    services.workspace_delete(workspace=ws)
    return Status(204, None)


@router.get(
    "/orgs/{org_id}/workspaces/{workspace_id}/managers",
    response=Page[MemberOut],
    summary="List members granted management of this workspace",
)
def list_workspace_managers(
    request: HttpRequest, org_id: str, workspace_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY
):
    org = get_org_for_principal(request.auth, org_id, "workspace.view")
    ws = get_object_for_principal(request.auth, Workspace, org, workspace_id, "workspace.view")
    rows, next_cursor = paginate(workspace_managers(ws), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


def _workspace_and_member(request: HttpRequest, org_id: str, workspace_id: str, member_id: str):
    org = get_org_for_principal(request.auth, org_id, "workspace.view")
    ws = get_object_for_principal(request.auth, Workspace, org, workspace_id, "workspace.grant")
    membership = get_object_for_principal(request.auth, Membership, org, member_id, "member.view", members_of(org))
    return ws, membership


@router.put(
    "/orgs/{org_id}/workspaces/{workspace_id}/managers/{member_id}",
    response={204: None},
    summary="Let a member manage this workspace whatever their role",
)
def grant_workspace_manager(request: HttpRequest, org_id: str, workspace_id: str, member_id: str):
    ws, membership = _workspace_and_member(request, org_id, workspace_id, member_id)
    services.workspace_manager_set(workspace=ws, membership=membership, manage=True)
    return Status(204, None)


@router.delete(
    "/orgs/{org_id}/workspaces/{workspace_id}/managers/{member_id}",
    response={204: None},
    summary="Withdraw a member's management of this workspace",
)
def revoke_workspace_manager(request: HttpRequest, org_id: str, workspace_id: str, member_id: str):
    ws, membership = _workspace_and_member(request, org_id, workspace_id, member_id)
    services.workspace_manager_set(workspace=ws, membership=membership, manage=False)
    return Status(204, None)


# --- members -------------------------------------------------------------------------------------
@router.get("/orgs/{org_id}/members", response=Page[MemberOut], summary="List members")
def list_members(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "member.view")
    rows, next_cursor = paginate(members_of(org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.get("/orgs/{org_id}/members/{member_id}", response=MemberOut, summary="Get a member")
def get_member(request: HttpRequest, org_id: str, member_id: str):
    org = get_org_for_principal(request.auth, org_id, "member.view")
    return get_object_for_principal(request.auth, Membership, org, member_id, "member.view", members_of(org))


@router.patch("/orgs/{org_id}/members/{member_id}", response=MemberOut, summary="Change a member's role")
def update_member(request: HttpRequest, org_id: str, member_id: str, payload: MemberUpdateIn):
    org = get_org_for_principal(request.auth, org_id, "member.view")
    membership = get_object_for_principal(request.auth, Membership, org, member_id, "member.update", members_of(org))
    return services.member_update(principal=request.auth, membership=membership, role=payload.role)


@router.delete("/orgs/{org_id}/members/{member_id}", response={204: None}, summary="Remove a member")
def remove_member(request: HttpRequest, org_id: str, member_id: str):
    org = get_org_for_principal(request.auth, org_id, "member.view")
    membership = get_object_for_principal(request.auth, Membership, org, member_id, "member.view", members_of(org))
    authorize(request.auth, leave_or_remove(request.auth, membership), membership)
    services.member_remove(principal=request.auth, membership=membership)
    return Status(204, None)


# --- invitations ---------------------------------------------------------------------------------
@router.get("/orgs/{org_id}/invitations", response=Page[InvitationOut], summary="List invitations")
def list_invitations(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "invitation.view")
    rows, next_cursor = paginate(invitations_of(org), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/invitations", response={201: InvitationOut}, summary="Invite someone by e-mail")
def create_invitation(request: HttpRequest, org_id: str, payload: InvitationCreateIn):
    org = get_org_for_principal(request.auth, org_id, "invitation.create")
    invitation, _ = services.invitation_create(principal=request.auth, org=org, email=payload.email, role=payload.role)
    return Status(201, invitation)


@router.delete("/orgs/{org_id}/invitations/{invitation_id}", response=InvitationOut, summary="Revoke an invitation")
def revoke_invitation(request: HttpRequest, org_id: str, invitation_id: str):
    org = get_org_for_principal(request.auth, org_id, "invitation.view")
    invitation = get_object_for_principal(request.auth, Invitation, org, invitation_id, "invitation.revoke")
    return services.invitation_revoke(invitation=invitation)


# --- domains -------------------------------------------------------------------------------------
@router.get("/orgs/{org_id}/domains", response=Page[DomainOut], summary="List domains")
def list_domains(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "domain.view")
    rows, next_cursor = paginate(Domain.objects.filter(org=org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/domains", response={201: DomainOut}, summary="Add a domain to verify")
def create_domain(request: HttpRequest, org_id: str, payload: DomainCreateIn):
    org = get_org_for_principal(request.auth, org_id, "domain.create")
    return Status(201, services.domain_add(org=org, name=payload.name))


@router.get("/orgs/{org_id}/domains/{domain_id}", response=DomainOut, summary="Get a domain")
def get_domain(request: HttpRequest, org_id: str, domain_id: str):
    org = get_org_for_principal(request.auth, org_id, "domain.view")
    return get_object_for_principal(request.auth, Domain, org, domain_id, "domain.view")


@router.post(
    "/orgs/{org_id}/domains/{domain_id}/verify", response=DomainOut, summary="Check the domain's TXT record now"
)
def verify_domain(request: HttpRequest, org_id: str, domain_id: str):
    org = get_org_for_principal(request.auth, org_id, "domain.view")
    domain = get_object_for_principal(request.auth, Domain, org, domain_id, "domain.verify")
    return services.domain_verify(domain=domain)


@router.delete("/orgs/{org_id}/domains/{domain_id}", response={204: None}, summary="Remove a domain")
def delete_domain(request: HttpRequest, org_id: str, domain_id: str):
    org = get_org_for_principal(request.auth, org_id, "domain.view")
    domain = get_object_for_principal(request.auth, Domain, org, domain_id, "domain.delete")
    services.domain_remove(domain=domain)
    return Status(204, None)


# --- service accounts and tokens -----------------------------------------------------------------
@router.get("/orgs/{org_id}/service-accounts", response=Page[ServiceAccountOut], summary="List service accounts")
def list_service_accounts(
    request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY
):
    org = get_org_for_principal(request.auth, org_id, "service_account.view")
    rows, next_cursor = paginate(ServiceAccount.objects.filter(org=org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/service-accounts", response={201: ServiceAccountOut}, summary="Create a service account")
def create_service_account(request: HttpRequest, org_id: str, payload: ServiceAccountCreateIn):
    org = get_org_for_principal(request.auth, org_id, "service_account.create")
    sa = services.service_account_create(
        principal=request.auth, org=org, name=payload.name, description=payload.description, role=payload.role
    )
    return Status(201, sa)


@router.get(
    "/orgs/{org_id}/service-accounts/{service_account_id}", response=ServiceAccountOut, summary="Get a service account"
)
def get_service_account(request: HttpRequest, org_id: str, service_account_id: str):
    org = get_org_for_principal(request.auth, org_id, "service_account.view")
    return get_object_for_principal(request.auth, ServiceAccount, org, service_account_id, "service_account.view")


@router.post(
    "/orgs/{org_id}/service-accounts/{service_account_id}/disable",
    response=ServiceAccountOut,
    summary="Disable a service account and revoke its tokens",
)
def disable_service_account(request: HttpRequest, org_id: str, service_account_id: str):
    org = get_org_for_principal(request.auth, org_id, "service_account.view")
    sa = get_object_for_principal(request.auth, ServiceAccount, org, service_account_id, "service_account.update")
    return services.service_account_disable(service_account=sa)


@router.post(
    "/orgs/{org_id}/service-accounts/{service_account_id}/tokens",
    response={201: TokenCreatedOut},
    summary="Issue a token (the secret is in this response only)",
)
def create_token(request: HttpRequest, org_id: str, service_account_id: str, payload: TokenCreateIn):
    org = get_org_for_principal(request.auth, org_id, "service_account.view")
    sa = get_object_for_principal(request.auth, ServiceAccount, org, service_account_id, "token.create")
    token, raw = services.token_create(
        principal=request.auth,
        service_account=sa,
        name=payload.name,
        scopes=payload.scopes,
        expires_in_days=payload.expires_in_days,
    )
    token.token = raw
    return Status(201, token)


@router.get("/orgs/{org_id}/tokens", response=Page[TokenOut], summary="List tokens")
def list_tokens(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "token.view")
    rows, next_cursor = paginate(tokens_of(org), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.delete("/orgs/{org_id}/tokens/{token_id}", response=TokenOut, summary="Revoke a token")
def revoke_token(request: HttpRequest, org_id: str, token_id: str):
    org = get_org_for_principal(request.auth, org_id, "token.view")
    token = get_object_for_principal(request.auth, ApiToken, org, token_id, "token.revoke")
    return services.token_revoke(token=token)
