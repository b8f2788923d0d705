"""The caller: who am I, and (for people) my signed-in sessions."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Router, Schema, Status

from apps.accounts.models import UserSession
from apps.accounts.services import user_session_end, user_sessions_end_all
from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import NotFound, PermissionDenied
from apps.core.ids import is_valid_id

router = Router(tags=["me"])


class MembershipOut(Schema):
    org_id: str
    org_name: str
    role: str


class MeOut(Schema):
    kind: str
    id: str
    email: str | None = None
    name: str | None = None
    mfa_enabled: bool | None = None
    memberships: list[MembershipOut] = []
    org_id: str | None = None
    scopes: list[str] | None = None
    token_id: str | None = None


class SessionOut(Schema):
    id: str
    ip: str | None
    user_agent: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    current: bool


@router.get("/me", response=MeOut, summary="Who is calling")
def me(request: HttpRequest):
    p = request.auth
    if p.kind == "service_account":
        sa = p.service_account
        return {
            "kind": "service_account",
            "id": sa.pk,
            "name": sa.name,
            "org_id": sa.org_id,
            "scopes": sorted(p.scopes or ()),
            "token_id": p.token.pk,
            "memberships": [{"org_id": sa.org_id, "org_name": sa.org.name, "role": sa.role}],
        }
    user = p.user
    memberships = user.memberships.filter(deactivated_at__isnull=True).select_related("org").order_by("org__name")
    return {
        "kind": "user",
        "id": user.pk,
        "email": user.email,
        "name": user.name,
        "mfa_enabled": user.has_mfa(),
        "memberships": [{"org_id": m.org_id, "org_name": m.org.name, "role": m.role} for m in memberships],
    }


def _user_only(request: HttpRequest):
    if request.auth.kind != "user":
        raise PermissionDenied("Only people have sessions.", code="users_only")
    return request.auth.user


@router.get("/me/sessions", response=Page[SessionOut], summary="List your signed-in sessions")
def list_sessions(request: HttpRequest, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    user = _user_only(request)
    current = request.session.session_key
    rows, next_cursor = paginate(
        UserSession.objects.filter(user=user, ended_at__isnull=True), limit=limit, cursor=cursor
    )
    for row in rows:
        row.current = row.session_key == current
    return {"data": rows, "next_cursor": next_cursor}


@router.delete("/me/sessions", response={204: None}, summary="Sign out everywhere")
def end_all_sessions(request: HttpRequest):
    """End every signed-in session of the caller, the one making this request included."""
    user = _user_only(request)
    user_sessions_end_all(user=user)
    request.session.flush()
    return Status(204, None)


@router.delete("/me/sessions/{session_id}", response={204: None}, summary="Sign a session out")
def end_session(request: HttpRequest, session_id: str):
    user = _user_only(request)
    session = None
    if is_valid_id(session_id, "ses"):
        session = (
            UserSession.objects.select_related("user").filter(user=user, pk=session_id, ended_at__isnull=True).first()
        )
    if session is None:
        raise NotFound("No such session.")
    user_session_end(session=session)
    if session.session_key == request.session.session_key:
        # The store row is gone: drop this request's copy too, or saving it fails (SessionInterrupted).
        request.session.flush()
    return Status(204, None)
