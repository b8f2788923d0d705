"""The enterprise admin console (HTMX pages). Thin: parse the form, call one service, render.

Every page is for the organisation's admins. Viewing uses ``session.view`` (an admin's read of
members' identity state: second factors, last sign-in); changes re-check the stronger action."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from apps.audit.views import audit_log_context
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.orgs.console import selectors
from apps.orgs.models import Membership, MemberSource, Role, SsoConnection, Workspace
from apps.orgs.policy import authorize
from apps.orgs.portal import form_error, org_context, org_page, page_of
from apps.orgs.selectors import get_object_for_principal, members_of
from apps.orgs.services import groups as group_services

CONSOLE_ACTION = "session.view"
GROUP_ROLE_CHOICES = [(value, label) for value, label in Role.choices if value in group_services.GROUP_ROLES]


@org_page(CONSOLE_ACTION)
def console_home(request, org, principal):
    """The console's start: what there is to set up, and where."""
    members = Membership.objects.filter(org=org)
    summary = {
        "members": members.filter(deactivated_at__isnull=True).count(),
        "deactivated": members.filter(deactivated_at__isnull=False).count(),
        "provisioned": members.filter(source__in=(MemberSource.SCIM, MemberSource.SSO)).count(),
        "groups": selectors.groups_of(org).count(),
        "sso": SsoConnection.objects.filter(org=org).first(),
    }
    return render(request, "orgs/console/home.html", org_context(request, org, principal, summary=summary))


MEMBER_FILTERS = ("q", "source", "mfa", "status", "role")


@org_page(CONSOLE_ACTION)
def console_members(request, org, principal):
    """Members with where they came from, their second factors and last sign-in; filtered, paged.
    htmx requests get only the table (the ``rows`` partial)."""
    filters = {key: request.GET.get(key, "").replace("\x00", "").strip()[:254] for key in MEMBER_FILTERS}
    qs = selectors.console_members(
        org,
        source=filters["source"],
        mfa=filters["mfa"],
        status=filters["status"],
        role=filters["role"],
        search=filters["q"],
    )
    rows, next_url = page_of(request, qs, newest_first=False)
    ctx = org_context(
        request,
        org,
        principal,
        members=selectors.with_factors(rows),
        next_page=next_url,
        filters=filters,
        sources=MemberSource.choices,
        roles=Role.choices,
        filtered=any(filters.values()),
    )
    template = "orgs/console/members.html#rows" if request.htmx else "orgs/console/members.html"
    return render(request, template, ctx)


@org_page(CONSOLE_ACTION)
def console_groups(request, org, principal):
    """Groups, and a form to create one."""
    error, status, values = None, 200, {}
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in ("display_name", "role", "workspace")}
        try:
            authorize(principal, "group.manage", org)
            group = group_services.group_create(
                principal=principal,
                org=org,
                display_name=values["display_name"],
                role=values["role"],
                workspace=_workspace_from_form(principal, org, values["workspace"]),
            )
        except (ValidationFailed, Conflict) as exc:
            error, status = form_error(exc, ("display_name", "role", "workspace")), exc.status
        else:
            messages.success(request, f"Group {group.display_name} created. Add its members below.")
            return redirect("org_console_group", org_id=org.pk, group_id=group.pk)
    rows, next_url = page_of(request, selectors.groups_of(org), newest_first=False)
    for group in rows:
        group.managed_by_idp = selectors.is_managed_by_idp(group)
    ctx = org_context(
        request,
        org,
        principal,
        groups=rows,
        next_page=next_url,
        workspaces=Workspace.objects.filter(org=org),
        group_roles=GROUP_ROLE_CHOICES,
        error=error,
        values=values,
    )
    return render(request, "orgs/console/groups.html", ctx, status=status)


def _workspace_from_form(principal, org, workspace_id: str):
    """The workspace a form names ("" for none); one outside ``org`` is a form error."""
    if not workspace_id:
        return None
    try:
        return get_object_for_principal(principal, Workspace, org, workspace_id, "workspace.view")
    except NotFound:
        raise ValidationFailed("No such workspace in this organisation.", param="workspace") from None


def _member_from_form(principal, org, value: str) -> Membership:
    """The member a form names by id, or by e-mail address (the add form: an organisation
    provisioned over SCIM may have thousands of members, too many for a drop-down)."""
    value = value.strip()
    if "@" in value:
        member = members_of(org).filter(user__email__iexact=value).first()
        if member is None:
            raise ValidationFailed(f"{value} is not a member of {org.name}.", param="member")
        value = member.pk
    try:
        return get_object_for_principal(principal, Membership, org, value, "member.view", members_of(org))
    except NotFound:
        raise ValidationFailed("No such member in this organisation.", param="member") from None


GROUP_OPS = ("update", "add_member", "remove_member", "delete")


@org_page(CONSOLE_ACTION)
def console_group(request, org, principal, group_id: str):
    """One group: rename it, set its role and workspace, add and remove members, delete it. Of a
    SCIM group only the role and workspace change here: the identity provider owns the rest."""
    group = selectors.get_group_for_principal(principal, org, group_id, "group.view")
    error, status = None, 200
    if request.method == "POST":
        op = request.POST.get("op", "")
        try:
            if op not in GROUP_OPS:
                raise ValidationFailed("Unknown action.")
            group = selectors.get_group_for_principal(principal, org, group_id, "group.manage")
            if op == "update":
                changes = {
                    "role": request.POST.get("role", ""),
                    "workspace": _workspace_from_form(principal, org, request.POST.get("workspace", "")),
                }
                if "display_name" in request.POST:  # not on a SCIM group's form
                    changes["display_name"] = request.POST["display_name"]
                selectors.check_group_change(group, set(changes))
                group_services.group_update(principal=principal, group=group, **changes)
                messages.success(request, "Group saved.")
            elif op == "add_member":
                selectors.check_group_change(group, {"members"})
                member = _member_from_form(principal, org, request.POST.get("member", ""))
                group_services.group_add_members(principal=principal, group=group, members=[member])
                messages.success(request, f"{member.user.email} added to {group.display_name}.")
            elif op == "remove_member":
                selectors.check_group_change(group, {"members"})
                member = _member_from_form(principal, org, request.POST.get("member", ""))
                group_services.group_remove_members(principal=principal, group=group, members=[member])
                messages.success(request, f"{member.user.email} removed from {group.display_name}.")
            else:
                selectors.check_group_change(group, {"delete"})
                group_services.group_delete(principal=principal, group=group)
                messages.success(request, f"Group {group.display_name} deleted.")
                return redirect("org_console_groups", org_id=org.pk)
            return redirect("org_console_group", org_id=org.pk, group_id=group.pk)
        except (ValidationFailed, Conflict) as exc:
            error, status = form_error(exc, ("display_name", "role", "workspace", "member")), exc.status
    members, next_url = page_of(request, selectors.group_members(group), newest_first=False)
    ctx = org_context(
        request,
        org,
        principal,
        group=group,
        managed_by_idp=selectors.is_managed_by_idp(group),
        members=members,
        next_page=next_url,
        workspaces=Workspace.objects.filter(org=org),
        group_roles=GROUP_ROLE_CHOICES,
        error=error,
    )
    return render(request, "orgs/console/group.html", ctx, status=status)


@org_page("audit.view")
def console_audit(request, org, principal):
    """The audit log narrowed to identity events, with the log viewer's filters and paging."""
    ctx = org_context(
        request,
        org,
        principal,
        identity_prefixes=selectors.IDENTITY_ACTION_PREFIXES,
        **audit_log_context(request, org, action_prefixes=selectors.IDENTITY_ACTION_PREFIXES),
    )
    template = "audit/log.html#rows" if request.htmx else "orgs/console/audit.html"
    return render(request, template, ctx)
