"""Provisioning members from an identity provider (SCIM 2.0), and deprovisioning them.

Deprovisioning is immediate: :func:`member_deactivate` sets ``deactivated_at`` (the membership
then grants nothing, see ``policy.Principal.role_in``), ends every session of the person, revokes
the API tokens they created in this organisation and writes ``member.deprovisioned`` — all in one
transaction, so the next request of a signed-in browser is anonymous and a revoked token answers
401.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from apps.accounts.models import UserSession
from apps.accounts.services import user_session_end
from apps.audit.services import audit_record
from apps.core import clock
from apps.core.errors import Conflict, ValidationFailed
from apps.orgs.models import ApiToken, Membership, MemberSource, Organization, Role, ServiceAccount
from apps.orgs.policy import Principal
from apps.orgs.services._validation import _clean_email
from apps.orgs.services.credentials import service_account_create, token_create, token_revoke
from apps.orgs.services.groups import default_role, membership_sync_role
from apps.orgs.services.organisations import _drop_workspace_grants


class Mutability(Conflict):
    """A change the target does not allow (SCIM ``mutability``)."""

    code = "mutability"


class Uniqueness(Conflict):
    """A userName or other unique value already taken in the organisation (SCIM ``uniqueness``)."""

    code = "uniqueness"


def _active_owners_except(membership: Membership) -> int:
    owners = (
        Membership.objects.select_for_update()
        .filter(org_id=membership.org_id, role=Role.OWNER, deactivated_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return sum(1 for pk in owners if pk != membership.pk)


def _guard_last_owner(membership: Membership, verb: str) -> None:
    if membership.role == Role.OWNER and _active_owners_except(membership) == 0:
        raise Mutability(
            f"Cannot {verb} the organisation's last active owner: make someone else an owner in Plaza first.",
            param="active",
        )


def member_deactivate(*, principal: Principal, membership: Membership, reason: str) -> Membership:
    """Deactivate a member at once: sessions ended, their tokens in this org revoked, audited."""
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("user", "org").get(pk=membership.pk)
        if membership.deactivated_at is not None:
            return membership
        _guard_last_owner(membership, "deactivate")
        now = clock.now()
        membership.deactivated_at = now
        membership.updated_at = now
        membership.save(update_fields=["deactivated_at", "updated_at"])
        sessions = list(UserSession.objects.filter(user=membership.user, ended_at__isnull=True).select_related("user"))
        for session in sessions:
            user_session_end(session=session, reason="deprovisioned")
        tokens = list(ApiToken.objects.filter(org=membership.org, created_by=membership.user, revoked_at__isnull=True))
        for token in tokens:
            token_revoke(token=token)
        audit_record(
            action="member.deprovisioned",
            org_id=membership.org_id,
            target=membership,
            target_label=membership.user.email,
            changes={"reason": reason, "sessions_ended": len(sessions), "tokens_revoked": [t.pk for t in tokens]},
        )
    return membership


def member_reactivate(*, principal: Principal, membership: Membership, reason: str = "scim") -> Membership:
    """Give a deactivated member their access back (sessions and tokens stay ended)."""
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("user", "org").get(pk=membership.pk)
        if membership.deactivated_at is None:
            return membership
        now = clock.now()
        membership.deactivated_at = None
        membership.updated_at = now
        membership.save(update_fields=["deactivated_at", "updated_at"])
        audit_record(
            action="member.reactivated",
            org_id=membership.org_id,
            target=membership,
            target_label=membership.user.email,
            changes={"reason": reason},
        )
    return membership


def member_deprovision_delete(*, principal: Principal, membership: Membership, reason: str = "scim") -> None:
    """SCIM DELETE: deactivate (ending sessions and revoking tokens), then remove the membership.
    The person's Plaza account stays: it may belong to other organisations."""
    with transaction.atomic():
        membership = member_deactivate(principal=principal, membership=membership, reason=reason)
        _guard_last_owner(membership, "delete")
        _drop_workspace_grants(org_id=membership.org_id, user=membership.user)
        audit_record(
            action="member.removed",
            org_id=membership.org_id,
            target=membership,
            target_label=membership.user.email,
            changes={"role": membership.role, "reason": reason},
        )
        membership.delete()


def _email_taken_in_org(org: Organization, email: str, exclude_pk: str | None = None) -> bool:
    qs = Membership.objects.filter(org=org, user__email__iexact=email)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()


def _clean_user_name(user_name) -> str:
    if not isinstance(user_name, str) or not user_name.strip():
        raise ValidationFailed("userName is required.", param="userName")
    try:
        return _clean_email(user_name.strip())
    except ValidationFailed:
        raise ValidationFailed(
            "userName must be the person's e-mail address (Plaza signs people in by e-mail).", param="userName"
        ) from None


def scim_user_create(
    *,
    principal: Principal,
    org: Organization,
    user_name: str,
    external_id: str = "",
    active: bool = True,
    attributes: dict,
) -> Membership:
    """Provision a member: find or create the Plaza account for ``user_name`` (an e-mail; a new
    account has no usable password: the person signs in by SSO or resets it) and add it to ``org``
    with ``source=scim`` and the organisation's default role."""
    email = _clean_user_name(user_name)
    User = get_user_model()
    with transaction.atomic():
        if _email_taken_in_org(org, email):
            raise Uniqueness(f"A member with userName {email} already exists.", param="userName")
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            name = attributes.get("displayName") or (attributes.get("name") or {}).get("formatted") or ""
            user = User.objects.create_user(email=email, password=None, name=str(name)[:150])
        now = clock.now()
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    org=org,
                    user=user,
                    role=default_role(org),
                    source=MemberSource.SCIM,
                    external_id=external_id or "",
                    scim_attributes=attributes,
                    created_at=now,
                    updated_at=now,
                )
        except IntegrityError:
            raise Uniqueness(f"A member with userName {email} already exists.", param="userName") from None
        audit_record(
            action="member.provisioned",
            org_id=org.pk,
            target=membership,
            target_label=email,
            changes={"role": membership.role, "external_id": external_id, "active": active},
        )
        if not active:
            membership = member_deactivate(principal=principal, membership=membership, reason="scim")
    return membership


def scim_user_replace(
    *,
    principal: Principal,
    membership: Membership,
    user_name: str,
    external_id: str = "",
    active: bool = True,
    attributes: dict,
) -> Membership:
    """Replace what the identity provider owns of a member (PUT, and PATCH after applying its
    operations). A new userName renames the Plaza account only when that account belongs to this
    organisation alone; otherwise it is refused (``mutability``)."""
    email = _clean_user_name(user_name)
    User = get_user_model()
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("user", "org").get(pk=membership.pk)
        user = membership.user
        changes: dict = {}
        if email.lower() != user.email.lower():
            if _email_taken_in_org(membership.org, email, exclude_pk=membership.pk):
                raise Uniqueness(f"A member with userName {email} already exists.", param="userName")
            shared = Membership.objects.filter(user=user).exclude(pk=membership.pk).exists()
            if shared or User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
                raise Mutability(
                    "userName cannot change: this Plaza account is used outside this organisation "
                    "(or the new address belongs to another account).",
                    param="userName",
                )
            changes["userName"] = {"before": user.email, "after": email}
            user.email = email
            user.save(update_fields=["email"])
        if external_id != membership.external_id:
            changes["externalId"] = {"before": membership.external_id, "after": external_id}
        if attributes != membership.scim_attributes:
            changes["attributes"] = sorted(set(attributes) | set(membership.scim_attributes))
        if changes:
            membership.external_id = external_id or ""
            membership.scim_attributes = attributes
            membership.updated_at = clock.now()
            membership.save(update_fields=["external_id", "scim_attributes", "updated_at"])
            audit_record(
                action="member.scim_updated",
                org_id=membership.org_id,
                target=membership,
                target_label=user.email,
                changes=changes,
            )
        if active and membership.deactivated_at is not None:
            membership = member_reactivate(principal=principal, membership=membership)
            membership_sync_role(membership)
        elif not active and membership.deactivated_at is None:
            membership = member_deactivate(principal=principal, membership=membership, reason="scim")
    return membership


# --- SCIM tokens ---------------------------------------------------------------------------------
SCIM_ACCOUNT = "SCIM"
SCIM_SCOPE = "scim:write"
SCIM_TOKEN_DAYS = 366


def scim_tokens(org: Organization) -> list[ApiToken]:
    """The org's tokens that can call SCIM, newest first."""
    tokens = ApiToken.objects.filter(org=org).select_related("service_account").order_by("-created_at")
    return [t for t in tokens if SCIM_SCOPE in (t.scopes or [])]


def scim_token_issue(
    *, principal: Principal, org: Organization, name: str = "", secret: str | None = None,
    expires_in_days: int | None = SCIM_TOKEN_DAYS,
) -> tuple[ApiToken, str]:  # fmt: skip
    """A token for the identity provider's SCIM client: held by the org's "SCIM" service account
    (admin role, created on first use), with the single scope scim:write. Shown once."""
    with transaction.atomic():
        account = ServiceAccount.objects.filter(org=org, name=SCIM_ACCOUNT, disabled_at__isnull=True).first()
        if account is None:
            account = service_account_create(
                principal=principal,
                org=org,
                name=SCIM_ACCOUNT,
                description="The identity provider's SCIM 2.0 client (see docs/scim.md).",
                role=Role.ADMIN,
            )
        return token_create(
            principal=principal,
            service_account=account,
            name=name or "SCIM token",
            scopes=[SCIM_SCOPE],
            expires_in_days=expires_in_days,
            secret=secret,
        )
