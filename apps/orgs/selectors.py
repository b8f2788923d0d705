"""Tenant-scoped reads. Every organisation-owned row is fetched through these functions, which
check membership and authorise the action; nothing else looks such rows up by id."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from django.db.models import Model, QuerySet

from apps.core import context
from apps.core.errors import NotFound, PermissionDenied
from apps.core.http import client_ip
from apps.core.ids import is_valid_id
from apps.orgs.models import ApiToken, Domain, Invitation, Membership, Organization, ServiceAccount, Workspace
from apps.orgs.policy import Principal, authorize


def principal_from_request(request) -> Principal | None:
    """The principal of an API token (set by the bearer auth) or of the signed-in user."""
    principal = getattr(request, "principal", None)
    if principal is not None:
        return principal
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    started = request.session.get("plaza_login_at")
    principal = Principal(
        kind="user",
        user=user,
        ip=client_ip(request),
        mfa_verified=bool(getattr(user, "is_verified", lambda: False)()),
        session_started_at=dt.datetime.fromtimestamp(started, dt.UTC) if started else None,
        sso_provider=str(request.session.get("plaza_sso_provider") or ""),
    )
    request.principal = principal
    context.update(actor_type="user", actor_id=user.pk, actor_label=user.email)
    return principal


def orgs_for_principal(principal: Principal) -> QuerySet[Organization]:
    if principal.kind == "service_account":
        return Organization.objects.filter(pk=principal.service_account.org_id)
    return Organization.objects.filter(memberships__user=principal.user, memberships__deactivated_at__isnull=True)


def get_org_for_principal(principal: Principal, org_id: str, action: str) -> Organization:
    if not is_valid_id(org_id, "org"):
        raise NotFound("No such organisation.")
    if principal.kind == "service_account":
        if org_id != principal.service_account.org_id:
            raise NotFound("No such organisation.")
        org = principal.service_account.org
    else:
        membership = (
            Membership.objects.select_related("org")
            .filter(org_id=org_id, user=principal.user, deactivated_at__isnull=True)
            .first()
        )
        if membership is not None:
            org = membership.org
            principal.remember_role(org.pk, membership.role)
        else:
            org = _sandbox_for_user(principal, org_id)
    authorize(principal, action, org)
    return org


def _sandbox_for_user(principal: Principal, org_id: str) -> Organization:
    """A publisher's sandbox tenant has no members of its own: the publisher's members reach it
    with their role there (``Principal.role_in``), and under the publisher's security policy too
    (IP allowlist, MFA, SSO, session age), so the sandbox is no way around it."""
    org = Organization.objects.select_related("sandbox_of").filter(pk=org_id, sandbox_of__isnull=False).first()
    if org is None or principal.role_in(org) is None:
        raise NotFound("No such organisation.")
    authorize(principal, "org.view", org.sandbox_of)
    return org


def verified_domains_of(org: Organization) -> set[str]:
    return {
        name.lower()
        for name in Domain.objects.filter(org=org, verified_at__isnull=False).values_list("name", flat=True)
    }


def email_in_verified_domain(org: Organization, email: str) -> bool:
    """Whether ``email``'s domain is one the organisation proved it controls (exactly that name)."""
    domain = (email or "").rpartition("@")[2].strip().lower()
    return bool(domain) and domain in verified_domains_of(org)


def org_governs_user(org: Organization, user) -> bool:
    """Whether ``org`` may act on ``user``'s whole account (end all their sessions, reset their
    factors, see their sessions): the account's e-mail is in one of the org's verified domains, or
    the org is the only one the person is an active member of. Otherwise the org governs only its
    own membership of that person: another organisation's member must not be signed out, lose
    their factors or be watched by an org that merely added them."""
    if email_in_verified_domain(org, user.email):
        return True
    return not Membership.objects.filter(user=user, deactivated_at__isnull=True).exclude(org=org).exists()


def get_platform_org_for_principal(principal: Principal, action: str) -> Organization:
    """The platform organisation, when ``principal`` is staff allowed to do ``action`` there.

    Staff actions are on platform-wide resources that everyone may read (the event catalog), so
    a non-member is refused with 403, not hidden with 404."""
    org = Organization.objects.filter(is_platform=True).first()
    if org is None or principal.role_in(org) is None:
        raise PermissionDenied("Only platform staff may do this.", code="staff_only")
    authorize(principal, action, org)
    return org


M = TypeVar("M", bound=Model)

_PREFIX = {Workspace: "wsp", Membership: "mem", Invitation: "inv", Domain: "dom", ServiceAccount: "sa", ApiToken: "tok"}


def get_object_for_principal(
    principal: Principal,
    model: type[M],
    org: Organization,
    object_id: str,
    action: str,
    queryset: QuerySet | None = None,
) -> M:
    """One row of ``model`` inside ``org`` (already resolved by get_org_for_principal)."""
    if not is_valid_id(object_id, _PREFIX.get(model) or model._meta.pk.prefix):
        raise NotFound(f"No such {model._meta.verbose_name}.")
    qs = queryset if queryset is not None else model.objects.all()
    obj = qs.filter(org=org, pk=object_id).first()
    if obj is None:
        raise NotFound(f"No such {model._meta.verbose_name}.")
    obj.org = org
    authorize(principal, action, obj)
    return obj


def members_of(org: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(org=org).select_related("user")


def invitations_of(org: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(org=org).select_related("invited_by")


def tokens_of(org: Organization) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(org=org).select_related("service_account")


def memberships_for_user(user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user, deactivated_at__isnull=True).select_related("org").order_by("org__name")


def nav_memberships_for_user(user) -> list[Membership]:
    """The org switcher's entries (one query): the user's memberships, each publisher followed by
    its sandbox tenant as an unsaved ``Membership`` carrying the user's role there (their role in
    the publisher, as ``Principal.role_in`` decides) with ``is_sandbox`` set."""
    rows = list(memberships_for_user(user).select_related("org__sandbox"))
    member_of = {m.org_id for m in rows}
    entries: list[Membership] = []
    for membership in rows:
        entries.append(membership)
        sandbox = getattr(membership.org, "sandbox", None)  # the reverse one-to-one: None when absent
        if sandbox is not None and sandbox.pk not in member_of:
            entry = Membership(org=sandbox, user=user, role=membership.role)
            entry.is_sandbox = True
            entries.append(entry)
    return entries


def org_reachable_by_user(user, org_id: str) -> bool:
    """Whether ``user`` is an active member of ``org_id``, or of the publisher whose sandbox it is."""
    if not is_valid_id(org_id, "org"):
        return False
    if memberships_for_user(user).filter(org_id=org_id).exists():
        return True
    return Organization.objects.filter(
        pk=org_id, sandbox_of__memberships__user=user, sandbox_of__memberships__deactivated_at__isnull=True
    ).exists()


def leave_or_remove(principal: Principal, membership: Membership) -> str:
    """Removing yourself is leaving, which every member may do; removing others needs member.remove."""
    own = principal.kind == "user" and membership.user_id == principal.user.pk
    return "member.leave" if own else "member.remove"


def workspace_managers(workspace: Workspace) -> QuerySet[Membership]:
    """Members holding the manage_workspace object permission on ``workspace`` (directly)."""
    from django.contrib.contenttypes.models import ContentType
    from guardian.models import UserObjectPermission

    user_ids = UserObjectPermission.objects.filter(
        content_type=ContentType.objects.get_for_model(Workspace),
        object_pk=str(workspace.pk),
        permission__codename="manage_workspace",
    ).values("user_id")
    return members_of(workspace.org).filter(user_id__in=user_ids)


def workspace_managers_by_workspace(
    org: Organization, workspaces: list[Workspace], members: list[Membership]
) -> dict[str, list[Membership]]:
    """{workspace id: memberships holding manage_workspace on it}, in one query for all workspaces."""
    from django.contrib.contenttypes.models import ContentType
    from guardian.models import UserObjectPermission

    by_user = {m.user_id: m for m in members}
    grants = UserObjectPermission.objects.filter(
        content_type=ContentType.objects.get_for_model(Workspace),
        object_pk__in=[str(ws.pk) for ws in workspaces],
        permission__codename="manage_workspace",
    ).values_list("object_pk", "user_id")
    result: dict[str, list[Membership]] = {}
    for object_pk, user_id in grants:
        if user_id in by_user:
            result.setdefault(object_pk, []).append(by_user[user_id])
    return result
