"""Provisioning members from an identity provider (SCIM 2.0), and deprovisioning them.

**Whose accounts.** An organisation's identity provider may create or link a Plaza account only for
an address in one of the organisation's verified domains, and may rename an account only when the
account is its own (source ``scim``, no other organisation, old and new address in its verified
domains). Members added in Plaza with other addresses (invited contractors) can be read, have their
SCIM attributes changed and be deactivated in this organisation, nothing more.

Deprovisioning is immediate: :func:`member_deactivate` sets ``deactivated_at`` (the membership
then grants nothing, see ``policy.Principal.role_in``), revokes the API tokens the person created
in this organisation and writes ``member.deprovisioned`` — all in one transaction, so a revoked
token answers 401. When the organisation governs the person's account (``org_governs_user``: the
address is in one of its verified domains, or it is their only organisation) every session of the
person ends too; otherwise their sessions stay (other organisations' business), and this
organisation is already closed to them. Owners are never deactivated or deleted over SCIM.
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from apps.accounts.models import UserSession
from apps.accounts.services import user_session_end
from apps.audit.services import audit_record
from apps.core import clock
from apps.core.errors import Conflict, ValidationFailed
from apps.orgs.models import ApiToken, Membership, MemberSource, Organization, Role, ServiceAccount
from apps.orgs.policy import Principal
from apps.orgs.selectors import email_in_verified_domain, org_governs_user, verified_domains_of
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


def _guard_owner(membership: Membership, verb: str) -> None:
    if membership.role == Role.OWNER:
        raise Mutability(
            f"Cannot {verb} an owner over SCIM: an owner is changed by another owner in Plaza "
            "(make them an admin there first, or remove them there).",
            param="active",
        )


def member_deactivate(*, principal: Principal, membership: Membership, reason: str) -> Membership:
    """Deactivate a member at once: their tokens in this org revoked, audited, and every session of
    the person ended when this organisation governs their account (module docstring). Owners are
    refused (``mutability``)."""
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("user", "org").get(pk=membership.pk)
        if membership.deactivated_at is not None:
            return membership
        _guard_owner(membership, "deactivate")
        governs = org_governs_user(membership.org, membership.user)
        now = clock.now()
        membership.deactivated_at = now
        membership.updated_at = now
        membership.save(update_fields=["deactivated_at", "updated_at"])
        sessions = []
        if governs:
            sessions = list(
                UserSession.objects.filter(user=membership.user, ended_at__isnull=True).select_related("user")
            )
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
            changes={
                "reason": reason,
                "scope": "account" if governs else "membership",
                "sessions_ended": len(sessions),
                "tokens_revoked": [t.pk for t in tokens],
            },
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
    """SCIM DELETE: deactivate (as :func:`member_deactivate`), then remove the membership. The
    person's Plaza account stays: it may belong to other organisations. Owners are refused."""
    with transaction.atomic():
        _guard_owner(membership, "delete")
        membership = member_deactivate(principal=principal, membership=membership, reason=reason)
        _guard_owner(membership, "delete")
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


def _domains_text(org: Organization) -> str:
    domains = sorted(verified_domains_of(org))
    return ", ".join(domains) if domains else "none is verified yet"


def _require_verified_domain(org: Organization, email: str) -> None:
    """SCIM creates or links only accounts at the organisation's verified domains: anything else
    would let one organisation's identity provider attach (and then sign out, reset, watch)
    another organisation's people, or squat addresses of a domain it does not control."""
    if email_in_verified_domain(org, email):
        return
    # One answer whether or not an account has the address: no probing for who uses Plaza.
    raise ValidationFailed(
        f"userName must be an address in one of the organisation's verified domains ({_domains_text(org)}); "
        "verify the domain in Plaza or invite the person instead.",
        param="userName",
    )


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
    """Provision a member: find or create the Plaza account for ``user_name`` (an e-mail in one of
    the organisation's verified domains, else ``invalidValue``, whether or not an account has it; a
    new account has no usable password: the person signs in by SSO or resets
    it) and add it to ``org`` with ``source=scim`` and the organisation's default role."""
    email = _clean_user_name(user_name)
    User = get_user_model()
    with transaction.atomic():
        if _email_taken_in_org(org, email):
            raise Uniqueness(f"A member with userName {email} already exists.", param="userName")
        _require_verified_domain(org, email)
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


def _rename_refusal(membership: Membership, email: str) -> str:
    """Why the identity provider may not rename this member's Plaza account to ``email`` ("" when
    it may): the membership must be one SCIM made, the account must belong to this organisation
    alone, both addresses must be in the organisation's verified domains and the new one must be
    no other account's."""
    org, user = membership.org, membership.user
    if membership.source != MemberSource.SCIM:
        return (
            "this member was added in Plaza, not by the identity provider, so their Plaza account is "
            "not the identity provider's to rename. Provision the new address as a new user instead."
        )
    if Membership.objects.filter(user=user).exclude(pk=membership.pk).exists():
        return "this Plaza account is also used outside this organisation."
    if not (email_in_verified_domain(org, user.email) and email_in_verified_domain(org, email)):
        return (
            "the current and the new address must both be in the organisation's verified domains "
            f"({_domains_text(org)})."
        )
    User = get_user_model()
    if (
        User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists()
        or EmailAddress.objects.filter(email__iexact=email).exclude(user=user).exists()
    ):
        return "the new address belongs to another Plaza account."
    return ""


def _rename_account(user, email: str) -> dict:
    """Move the account to ``email``. The account's allauth addresses for the old e-mail go; when
    there were any, the new e-mail replaces them marked verified — without a confirmation mail,
    only because the organisation proved it controls the domain (checked by the caller). No
    unverified address is ever created. Returns what changed, for the audit log."""
    old = user.email
    user.email = email
    user.save(update_fields=["email"])
    old_rows = list(EmailAddress.objects.filter(user=user, email__iexact=old))
    primary = any(row.primary for row in old_rows)
    EmailAddress.objects.filter(pk__in=[row.pk for row in old_rows]).delete()
    if not old_rows:
        return {"removed": [], "added": None}
    if primary:
        EmailAddress.objects.filter(user=user, primary=True).update(primary=False)
    EmailAddress.objects.update_or_create(
        user=user, email__iexact=email, defaults={"email": email, "verified": True, "primary": primary}
    )
    return {"removed": [old], "added": email, "verified_by": "organisation's verified domain"}


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
    operations). A new userName renames the Plaza account only as :func:`_rename_refusal`
    allows; otherwise it is refused (``mutability``)."""
    email = _clean_user_name(user_name)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("user", "org").get(pk=membership.pk)
        user = membership.user
        changes: dict = {}
        if email.lower() != user.email.lower():
            if _email_taken_in_org(membership.org, email, exclude_pk=membership.pk):
                raise Uniqueness(f"A member with userName {email} already exists.", param="userName")
            refusal = _rename_refusal(membership, email)
            if refusal:
                raise Mutability(f"userName cannot change: {refusal}", param="userName")
            changes["userName"] = {"before": user.email, "after": email}
            changes["email_addresses"] = _rename_account(user, email)
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
