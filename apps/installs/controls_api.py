"""The organisation's install controls over the API: allow/deny rules, the install mode, members'
install requests and their decisions, and a publisher's sandbox tenant. Thin: resolve through the
selectors, call one service, answer."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from apps.installs import controls_selectors as selectors
from apps.installs.controls_schemas import (
    InstallPolicyOut,
    InstallPolicyPatchIn,
    InstallRequestDecisionIn,
    InstallRequestIn,
    InstallRequestOut,
    InstallRuleIn,
    InstallRuleOut,
    SandboxOut,
)
from apps.installs.models import InstallationStatus, RequestStatus
from apps.installs.services import controls as services
from apps.orgs.selectors import get_org_for_principal

router = Router(tags=["install controls"])


def _annotate(org, rules: list) -> list:
    """Each rule with what its value names and the live installations it refuses now."""
    installations = selectors.live_installations(org) if rules else []
    blocks = selectors.blocks_by_rule(rules, installations)
    targets = selectors.rule_targets(rules)
    for rule in rules:
        rule.target = targets.get(rule.pk, "")
        rule.blocks = [i.pk for i in blocks.get(rule.pk, [])]
    return rules


def _policy_out(org, policy) -> dict:
    blocked = selectors.live_installations(org)
    return {
        "mode": policy.mode,
        "requests_enabled": policy.requests_enabled,
        "updated_at": policy.updated_at if policy.pk else None,
        "blocked_installations": [i.pk for i in blocked if i.status == InstallationStatus.BLOCKED],
    }


# --- rules ---------------------------------------------------------------------------------------
@router.get("/orgs/{org_id}/install-rules", response=Page[InstallRuleOut], summary="List the install rules")
def list_install_rules(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    """The organisation's allow and deny rules, oldest first, each with the live installations it
    refuses now (``blocks``)."""
    org = get_org_for_principal(request.auth, org_id, "install_rule.view")
    rows, next_cursor = paginate(selectors.rules_of(org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": _annotate(org, rows), "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/install-rules", response={201: InstallRuleOut}, summary="Add an install rule")
def create_install_rule(request: HttpRequest, org_id: str, payload: InstallRuleIn):
    """Allow or deny an extension, a publisher, or (deny only) a scope pattern such as
    ``http:fetch:*``. Live installations the rule refuses are blocked at once: they stop running
    and their installation tokens stop working. 400 ``rule_value_invalid`` /
    ``scope_rules_deny_only``; 409 ``install_rule_exists``."""
    org = get_org_for_principal(request.auth, org_id, "install_rule.manage")
    rule = services.install_rule_create(principal=request.auth, org=org, **payload.dict())
    return Status(201, _annotate(org, [rule])[0])


@router.delete("/orgs/{org_id}/install-rules/{install_rule_id}", response={204: None}, summary="Remove an install rule")
def delete_install_rule(request: HttpRequest, org_id: str, install_rule_id: str):
    """Installations blocked only by this rule are unblocked at once."""
    org = get_org_for_principal(request.auth, org_id, "install_rule.manage")
    rule = selectors.get_install_rule_for_principal(request.auth, org, install_rule_id, "install_rule.manage")
    services.install_rule_delete(principal=request.auth, rule=rule)
    return Status(204, None)


@router.get("/orgs/{org_id}/install-policy", response=InstallPolicyOut, summary="Get the install mode and settings")
def get_install_policy(request: HttpRequest, org_id: str):
    org = get_org_for_principal(request.auth, org_id, "install_rule.view")
    return _policy_out(org, services.install_policy_of(org))


@router.patch(
    "/orgs/{org_id}/install-policy", response=InstallPolicyOut, summary="Change the install mode or request setting"
)
def update_install_policy(request: HttpRequest, org_id: str, payload: InstallPolicyPatchIn):
    """``mode``: ``open`` (any installable extension no rule denies) or ``allowlist`` (only
    extensions or publishers with an allow rule; switching blocks every other live installation).
    ``requests_enabled``: whether members may ask for extensions."""
    org = get_org_for_principal(request.auth, org_id, "install_rule.manage")
    policy = services.install_policy_update(
        principal=request.auth, org=org, mode=payload.mode, requests_enabled=payload.requests_enabled
    )
    return _policy_out(org, policy)


# --- requests ------------------------------------------------------------------------------------
@router.get("/orgs/{org_id}/install-requests", response=Page[InstallRequestOut], summary="List install requests")
def list_install_requests(
    request: HttpRequest,
    org_id: str,
    status: str = Query("", description="pending | approved | denied | withdrawn"),
    mine: bool = Query(False, description="Only your own requests (admins otherwise see everyone's)."),
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    """Admins see every member's requests, newest first; everyone else sees their own."""
    org = get_org_for_principal(request.auth, org_id, "install_request.view")
    if status and status not in RequestStatus.values:
        raise ValidationFailed(f"The status is one of {', '.join(RequestStatus.values)}.", param="status")
    qs = selectors.visible_install_requests(request.auth, org, status=status, mine=mine)
    rows, next_cursor = paginate(qs, limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/install-requests", response={201: InstallRequestOut}, summary="Ask for an extension")
def create_install_request(request: HttpRequest, org_id: str, payload: InstallRequestIn):
    """A member asks the admins to install an extension (named by ``extension_id`` or
    ``extension_key``). 409 ``requests_disabled``, ``already_installed``, ``request_pending``;
    people only (403 ``users_only`` for tokens)."""
    org = get_org_for_principal(request.auth, org_id, "install_request.create")
    if request.auth.kind != "user":
        raise PermissionDenied("Only people ask for extensions; a token cannot.", code="users_only")
    if bool(payload.extension_id) == bool(payload.extension_key):
        raise ValidationFailed("Name the extension by extension_id or by extension_key.", param="extension_id")
    extension = selectors.requestable_extension(
        extension_id=payload.extension_id or "", extension_key=payload.extension_key or ""
    )
    created = services.install_request_create(
        principal=request.auth, org=org, extension=extension, reason=payload.reason
    )
    return Status(201, created)


@router.post(
    "/orgs/{org_id}/install-requests/{install_request_id}/decision",
    response=InstallRequestOut,
    summary="Approve or deny an install request",
)
def decide_install_request(
    request: HttpRequest, org_id: str, install_request_id: str, payload: InstallRequestDecisionIn
):
    """Admins decide a pending request; the member is e-mailed the decision and the note.
    Approving does not install (install it with consent: ``POST …/installations``).
    409 ``request_not_pending``."""
    org = get_org_for_principal(request.auth, org_id, "install_request.decide")
    item = selectors.get_install_request_for_principal(request.auth, org, install_request_id, "install_request.decide")
    return services.install_request_decide(
        principal=request.auth, request=item, approve=payload.decision == "approve", note=payload.note
    )


@router.post(
    "/orgs/{org_id}/install-requests/{install_request_id}/withdraw",
    response=InstallRequestOut,
    summary="Withdraw your install request",
)
def withdraw_install_request(request: HttpRequest, org_id: str, install_request_id: str):
    """Only the member who asked; anyone else's request answers 404. 409 ``request_not_pending``."""
    org = get_org_for_principal(request.auth, org_id, "install_request.create")
    item = selectors.get_install_request_for_principal(request.auth, org, install_request_id, "install_request.create")
    if request.auth.kind != "user":
        raise PermissionDenied("Only people ask for extensions; a token cannot.", code="users_only")
    if item.requested_by_id != request.auth.user.pk:
        raise NotFound("No such install request.")
    return services.install_request_withdraw(principal=request.auth, request=item)


# --- sandbox -------------------------------------------------------------------------------------
@router.get("/orgs/{org_id}/sandbox", response=SandboxOut, summary="Get the publisher's sandbox tenant")
def get_sandbox(request: HttpRequest, org_id: str):
    """The organisation's sandbox tenant, where its members install its own uncertified versions
    (they act there with their role in the publisher). 404 ``no_sandbox`` when the organisation
    publishes nothing (or is a sandbox itself)."""
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    sandbox = selectors.sandbox_for_publisher(org)
    if sandbox is None:
        raise NotFound("This organisation publishes no extensions, so it has no sandbox tenant.", code="no_sandbox")
    return {
        "id": sandbox.pk,
        "slug": sandbox.slug,
        "name": sandbox.name,
        "sandbox_of": org.pk,
        "created_at": sandbox.created_at,
    }
