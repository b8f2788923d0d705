"""Members and invitations."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.crypto import new_secret, secret_hash
from apps.core.errors import Conflict, NotFound, PermissionDenied
from apps.orgs.models import (
    Invitation,
    Membership,
    Organization,
    Role,
)
from apps.orgs.policy import Principal
from apps.orgs.services._validation import _clean_email, _clean_role
from apps.orgs.services.organisations import _drop_workspace_grants


# --- members -------------------------------------------------------------------------------------
def _owners_left(org_id: str, excluding: Membership) -> int:
    """Owners other than ``excluding``, with every owner row locked until the caller's transaction
    ends: two owners demoting or removing each other at once would otherwise each count the other
    and leave none (PostgreSQL re-checks the role of a row it waited for)."""
    owners = (
        Membership.objects.select_for_update().filter(org_id=org_id, role=Role.OWNER).order_by("pk").values_list("pk")
    )
    return sum(1 for (pk,) in owners if pk != excluding.pk)


def _guard_owner_change(principal: Principal, org: Organization, *, touching_owner: bool) -> None:
    if touching_owner and principal.role_in(org) != Role.OWNER:
        raise PermissionDenied("Only an owner can grant, change or remove the owner role.", code="owner_only")


def member_update(*, principal: Principal, membership: Membership, role: str) -> Membership:
    role = _clean_role(role)
    org = membership.org
    _guard_owner_change(principal, org, touching_owner=Role.OWNER in (role, membership.role))
    if membership.role == role:
        return membership
    with transaction.atomic():
        if membership.role == Role.OWNER and _owners_left(org.pk, membership) == 0:
            raise Conflict("The organisation needs at least one owner.", code="last_owner")
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            action="member.role_changed",
            org_id=org.pk,
            target=membership,
            target_label=membership.user.email,
            changes={"role": {"before": before, "after": role}},
        )
    return membership


def member_remove(*, principal: Principal, membership: Membership) -> None:
    org = membership.org
    is_self = principal.kind == "user" and membership.user_id == principal.user.pk
    if not is_self:
        _guard_owner_change(principal, org, touching_owner=membership.role == Role.OWNER)
    with transaction.atomic():
        if membership.role == Role.OWNER and _owners_left(org.pk, membership) == 0:
            raise Conflict("The organisation needs at least one owner.", code="last_owner")
        _drop_workspace_grants(org_id=org.pk, user=membership.user)
        audit_record(
            action="member.removed",
            org_id=org.pk,
            target=membership,
            target_label=membership.user.email,
            changes={"role": membership.role},
        )
        membership.delete()


def member_add(*, org: Organization, user, role: str) -> Membership:
    """Add ``user`` directly (seed data, provisioning); people otherwise join through invitations."""
    role = _clean_role(role)
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(org=org, user=user, defaults={"role": role})
        if created:
            audit_record(
                action="member.added", org_id=org.pk, target=membership, target_label=user.email, changes={"role": role}
            )
    return membership


# --- invitations ---------------------------------------------------------------------------------
def invitation_create(*, principal: Principal, org: Organization, email: str, role: str) -> tuple[Invitation, str]:
    """Invite ``email``; returns the invitation and the one-time acceptance token (also e-mailed)."""
    email = _clean_email(email)
    role = _clean_role(role)
    _guard_owner_change(principal, org, touching_owner=role == Role.OWNER)
    if Membership.objects.filter(org=org, user__email__iexact=email).exists():
        raise Conflict("That person is already a member.", code="already_member", param="email")
    raw = new_secret("inv_", 24)
    already_invited = Conflict(
        "An invitation to that address is still open; revoke it first.", code="already_invited", param="email"
    )
    with transaction.atomic():
        previous = (
            Invitation.objects.select_for_update()
            .filter(org=org, email=email, accepted_at__isnull=True, revoked_at__isnull=True)
            .first()
        )
        if previous is not None:
            if previous.status == "pending":
                raise already_invited
            # An expired invitation still holds the one open slot per address and can no longer be
            # revoked (it is not pending): close it here, or the address could never be invited again.
            previous.revoked_at = clock.now()
            previous.save(update_fields=["revoked_at"])
            audit_record(
                action="invitation.revoked",
                org_id=org.pk,
                target=previous,
                target_label=email,
                changes={"reason": "expired"},
            )
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    org=org,
                    email=email,
                    role=role,
                    token_hash=secret_hash(raw),
                    invited_by=principal.user if principal.kind == "user" else None,
                    expires_at=clock.now() + dt.timedelta(days=settings.PLAZA_INVITATION_TTL_DAYS),
                )
        except IntegrityError:  # a concurrent invitation to the same address won the race
            raise already_invited from None
        audit_record(
            action="invitation.created", org_id=org.pk, target=invitation, target_label=email, changes={"role": role}
        )
        from apps.orgs.tasks import send_invitation_email

        # After commit, through a task that retries with backoff: a slow or failing mail server
        # neither delays the request nor loses the invitation mail.
        send_invitation_email.delay_on_commit(invitation.pk, raw, principal.label)
    return invitation, raw


def invitation_email_send(*, invitation: Invitation, raw_token: str, inviter: str) -> bool:
    """Mail the acceptance link; False (nothing sent) when the invitation is no longer pending."""
    if invitation.status != "pending":
        return False
    org = invitation.org
    url = f"{settings.PLAZA_BASE_URL}/invitations/{raw_token}/"
    send_mail(
        f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}You are invited to {org.name}",
        f"{inviter} invited you to join {org.name} on Plaza as {invitation.role}.\n\n"
        f"Accept before {invitation.expires_at:%Y-%m-%d %H:%M} UTC: {url}\n",
        None,
        [invitation.email],
    )
    return True


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    with transaction.atomic():
        # Re-read under a lock: an acceptance running at the same moment must not also succeed.
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        invitation.accepted_at, invitation.revoked_at = locked.accepted_at, locked.revoked_at
        if invitation.status != "pending":
            raise Conflict(f"The invitation is {invitation.status}.", code=f"invitation_{invitation.status}")
        invitation.revoked_at = clock.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            action="invitation.revoked", org_id=invitation.org_id, target=invitation, target_label=invitation.email
        )
    return invitation


def invitation_by_token(raw: str, *, lock: bool = False) -> Invitation:
    qs = Invitation.objects.select_related("org")
    if lock:  # inside the caller's transaction: a concurrent revoke or acceptance waits for it
        qs = qs.select_for_update(of=("self",))
    invitation = qs.filter(token_hash=secret_hash(raw or "")).first()
    if invitation is None:
        raise NotFound("This invitation link is not valid.")
    return invitation


def invitation_accept(*, user, raw_token: str) -> Membership:
    """Join the organisation. The invitation must be pending and addressed to ``user``'s e-mail."""
    with transaction.atomic():
        invitation = invitation_by_token(raw_token, lock=True)
        if invitation.status != "pending":
            raise Conflict(f"This invitation is {invitation.status}.", code=f"invitation_{invitation.status}")
        if invitation.email.lower() != user.email.lower():
            raise PermissionDenied(
                f"This invitation was sent to {invitation.email}; sign in with that address.", code="wrong_recipient"
            )
        invitation.accepted_at = clock.now()
        invitation.save(update_fields=["accepted_at"])
        try:
            with transaction.atomic():
                membership = Membership.objects.create(org=invitation.org, user=user, role=invitation.role)
        except IntegrityError:
            raise Conflict("You are already a member of this organisation.", code="already_member") from None
        audit_record(
            action="member.joined",
            org_id=invitation.org_id,
            target=membership,
            target_label=user.email,
            changes={"role": invitation.role, "invitation": invitation.pk},
        )
    return membership
