"""Writes of the enforced security policy: an admin signing a member out everywhere, resetting a
member's second factors, and a session ending because it sat idle. Callers pass the organisation
and membership already resolved and authorised by ``apps.orgs.selectors``."""

from __future__ import annotations

from django.db import transaction
from django_otp import devices_for_user

from apps.accounts.models import UserSession
from apps.accounts.services import user_session_end, user_sessions_close
from apps.audit.services import audit_record
from apps.core.errors import PermissionDenied
from apps.orgs.models import Membership, Role
from apps.orgs.policy import Principal
from apps.orgs.selectors import org_governs_user


def _protect_owner(*, principal: Principal, membership: Membership, what: str) -> None:
    """Only an owner may act on an owner's account: an admin must not be able to take over, or
    lock out, the people above them. And an organisation acts on a person's whole account only
    when it governs that account (``org_governs_user``): adding someone from another company
    must not let it sign them out of everything or strip their factors."""
    if membership.role == Role.OWNER and principal.role_in(membership.org) != Role.OWNER:
        raise PermissionDenied(f"Only an owner can {what} an owner.", code="owner_only")
    if not org_governs_user(membership.org, membership.user):
        raise PermissionDenied(
            f"You can {what} only people whose account your organisation governs: an address in one of its "
            "verified domains, or no other organisation. Remove or deactivate this membership instead.",
            code="account_not_governed",
        )


def _end_sessions(membership: Membership) -> int:
    return user_sessions_close(user_id=membership.user_id)


def member_sign_out(*, principal: Principal, membership: Membership) -> int:
    """End every signed-in session of the member at once (all their devices, in every
    organisation: a session is the person's, not the organisation's). Returns how many ended."""
    _protect_owner(principal=principal, membership=membership, what="sign out")
    with transaction.atomic():
        count = _end_sessions(membership)
        audit_record(
            action="member.signed_out",
            org_id=membership.org_id,
            target=membership,
            target_label=membership.user.email,
            changes={"sessions_ended": count},
        )
    return count


def member_mfa_reset(*, principal: Principal, membership: Membership) -> dict[str, int]:
    """Delete the member's second factors (authenticator apps, backup codes and any other device)
    and end their sessions, so whoever holds one of them cannot go on. The member enrols again at
    their next sign-in when an organisation requires it. Nobody resets their own factors here: the
    self-service page asks for a current code first."""
    if principal.kind == "user" and membership.user_id == principal.user.pk:
        raise PermissionDenied(
            "Reset your own factors on your security page, which asks for a current code.", code="own_account"
        )
    _protect_owner(principal=principal, membership=membership, what="reset the factors of")
    with transaction.atomic():
        kinds: list[str] = []
        for device in devices_for_user(membership.user, confirmed=None):
            kinds.append(type(device).__name__)
            device.delete()
        count = _end_sessions(membership)
        audit_record(
            action="member.mfa_reset",
            org_id=membership.org_id,
            target=membership,
            target_label=membership.user.email,
            changes={"devices_removed": len(kinds), "device_types": sorted(set(kinds)), "sessions_ended": count},
        )
    return {"devices_removed": len(kinds), "sessions_ended": count}


def session_end_expired(*, session_key: str, reason: str) -> None:
    """End a session that one of its person's organisations no longer accepts (idle or too old)."""
    session = UserSession.objects.select_related("user").filter(session_key=session_key).first()
    if session is not None:
        user_session_end(session=session, reason=reason)
