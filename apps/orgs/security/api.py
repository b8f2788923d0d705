"""Enforced security policy: MFA enrolment, session age and idle limits, forced sign-out, factor
resets and the IP allowlist, for sessions and tokens."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.orgs.models import Membership
from apps.orgs.policy import authorize
from apps.orgs.security import selectors, services
from apps.orgs.security.schemas import MemberMfaResetOut, MemberSignOutOut, OrgSessionOut
from apps.orgs.selectors import get_object_for_principal, get_org_for_principal

router = Router(tags=["organisations"])


@router.get("/orgs/{org_id}/sessions", response=Page[OrgSessionOut], summary="List members' signed-in sessions")
def list_org_sessions(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    """Live sessions of people with an active membership in the organisation: device (user agent),
    IP address, sign-in and last-seen times. Admins and owners."""
    org = get_org_for_principal(request.auth, org_id, "session.view")
    rows, next_cursor = paginate(selectors.sessions_of_org(org), limit=limit, cursor=cursor)
    member_ids = selectors.membership_ids_by_user(org, [row.user_id for row in rows])
    data = [
        {
            "id": row.pk,
            "user_id": row.user_id,
            "member_id": member_ids.get(row.user_id),
            "email": row.user.email,
            "ip": row.ip,
            "user_agent": row.user_agent,
            "created_at": row.created_at,
            "last_seen_at": row.last_seen_at,
        }
        for row in rows
    ]
    return {"data": data, "next_cursor": next_cursor}


def _member(request: HttpRequest, org_id: str, member_id: str, action: str) -> Membership:
    org = get_org_for_principal(request.auth, org_id, "member.view")
    membership = get_object_for_principal(
        request.auth, Membership, org, member_id, "member.view", Membership.objects.select_related("user")
    )
    authorize(request.auth, action, membership)
    return membership


@router.post(
    "/orgs/{org_id}/members/{member_id}/sign-out", response=MemberSignOutOut, summary="Sign a member out everywhere"
)
def sign_out_member(request: HttpRequest, org_id: str, member_id: str):
    """End every signed-in session of the member at once; their other clients are signed out on
    their next request. Admins may not sign out an owner (``owner_only``); owners may."""
    membership = _member(request, org_id, member_id, "member.sign_out")
    return {"sessions_ended": services.member_sign_out(principal=request.auth, membership=membership)}


@router.post(
    "/orgs/{org_id}/members/{member_id}/mfa-reset", response=MemberMfaResetOut, summary="Reset a member's factors"
)
def reset_member_mfa(request: HttpRequest, org_id: str, member_id: str):
    """Delete the member's second factors and end their sessions. Admins may not reset an owner's
    (``owner_only``); nobody resets their own here (``own_account``)."""
    membership = _member(request, org_id, member_id, "member.mfa_reset")
    return services.member_mfa_reset(principal=request.auth, membership=membership)
