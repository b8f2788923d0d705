"""Every write to organisations, workspaces, members, invitations, domains, service accounts and
tokens. Callers pass objects already resolved and authorised by ``apps.orgs.selectors``; these
functions enforce the business rules, write in one transaction and append to the audit log."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import secrets

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, get_user_perms, remove_perm

from apps.audit.services import audit_record, diff
from apps.core import clock
from apps.core.crypto import new_secret, secret_hash
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.orgs.dns import DnsLookupError, get_resolver
from apps.orgs.models import (
    ApiToken,
    Domain,
    Invitation,
    Membership,
    Organization,
    Role,
    ServiceAccount,
    Workspace,
)
from apps.orgs.policy import SCOPES, Principal, ip_allowed

TOKEN_PREFIX = "plz_"
MAX_TOKEN_DAYS = 366


def _clean_name(value: str, param: str, max_length: int = 100) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(f"{param} must not be empty.", param=param)
    if len(value) > max_length:
        raise ValidationFailed(f"{param} must be at most {max_length} characters.", param=param)
    if any(ord(ch) < 32 for ch in value):
        raise ValidationFailed(f"{param} must not contain control characters.", param=param)
    return value


def _clean_slug(value: str | None, fallback: str, param: str = "slug") -> str:
    slug = slugify(value if value else fallback)[:60].strip("-")
    if value and slug != value:
        raise ValidationFailed("slug may hold only lowercase letters, digits and hyphens.", param=param)
    if not slug:
        raise ValidationFailed("Choose a name with at least one letter or digit.", param=param)
    return slug


def _clean_role(role: str, param: str = "role") -> str:
    if role not in Role.values:
        raise ValidationFailed(f"role must be one of {', '.join(Role.values)}.", param=param)
    return role


def _clean_description(value: str | None, param: str = "description") -> str:
    value = (value or "").strip()[:500]
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
        raise ValidationFailed(f"{param} must not contain control characters.", param=param)
    return value


def _clean_email(email: str, param: str = "email") -> str:
    email = (email or "").strip().lower()
    try:
        if len(email) > 254:  # the column's size (RFC 5321); PostgreSQL would refuse a longer one
            raise DjangoValidationError("too long")
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed("Enter a valid e-mail address.", param=param) from None
    return email


# --- organisations -------------------------------------------------------------------------------
def org_create(*, user, name: str, slug: str | None = None) -> Organization:
    """Create an organisation with ``user`` as its owner and a first workspace."""
    name = _clean_name(name, "name")
    slug = _clean_slug(slug, name)
    with transaction.atomic():
        if Organization.objects.filter(slug=slug).exists():
            if slug != slugify(name)[:60]:
                raise Conflict("That slug is taken.", code="slug_taken", param="slug")
            slug = f"{slug[:52]}-{secrets.token_hex(3)}"
        org = Organization.objects.create(name=name, slug=slug)
        Membership.objects.create(org=org, user=user, role=Role.OWNER)
        Workspace.objects.create(org=org, name="Default", slug="default")
        audit_record(action="org.created", org_id=org.pk, target=org, changes={"name": name, "slug": slug})
    return org


def org_update(*, org: Organization, name: str) -> Organization:
    name = _clean_name(name, "name")
    before = {"name": org.name}
    with transaction.atomic():
        org.name = name
        org.save(update_fields=["name"])
        audit_record(action="org.updated", org_id=org.pk, target=org, changes=diff(before, {"name": name}))
    return org


def _clean_allowlist(entries: list[str]) -> list[str]:
    cleaned = []
    for index, entry in enumerate(entries or []):
        try:
            cleaned.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
        except ValueError:
            raise ValidationFailed(
                f"'{entry}' is not an IP address or CIDR range.", param=f"ip_allowlist[{index}]"
            ) from None
    if len(cleaned) > 100:
        raise ValidationFailed("At most 100 allowlist entries.", param="ip_allowlist")
    return cleaned


def org_policy_update(
    *,
    principal: Principal,
    org: Organization,
    require_mfa: bool,
    max_session_age_minutes: int | None,
    ip_allowlist: list[str],
) -> Organization:
    """Change the security policy. Refuses a policy that would lock out the person setting it."""
    allowlist = _clean_allowlist(ip_allowlist)
    if max_session_age_minutes is not None and not (5 <= max_session_age_minutes <= 60 * 24 * 90):
        raise ValidationFailed("max_session_age_minutes must be between 5 and 129600.", param="max_session_age_minutes")
    if allowlist and not ip_allowed(principal.ip, allowlist):
        raise ValidationFailed(
            f"The allowlist must include your own address ({principal.ip or 'unknown'}).",
            param="ip_allowlist",
            code="would_lock_out",
        )
    if require_mfa and principal.kind == "user" and not principal.mfa_verified:
        raise ValidationFailed(
            "Enrol two-factor authentication yourself before requiring it.", param="require_mfa", code="would_lock_out"
        )
    before = {
        "require_mfa": org.require_mfa,
        "max_session_age_minutes": org.max_session_age_minutes,
        "ip_allowlist": org.ip_allowlist,
    }
    after = {"require_mfa": require_mfa, "max_session_age_minutes": max_session_age_minutes, "ip_allowlist": allowlist}
    with transaction.atomic():
        for key, value in after.items():
            setattr(org, key, value)
        org.save(update_fields=list(after))
        audit_record(action="org.policy_updated", org_id=org.pk, target=org, changes=diff(before, after))
    return org


# --- workspaces ----------------------------------------------------------------------------------
def workspace_create(*, org: Organization, name: str, slug: str | None = None, description: str = "") -> Workspace:
    name = _clean_name(name, "name")
    slug = _clean_slug(slug, name)
    description = _clean_description(description)
    with transaction.atomic():
        if Workspace.objects.filter(org=org, slug=slug).exists():
            raise Conflict("A workspace with that slug exists.", code="slug_taken", param="slug")
        ws = Workspace.objects.create(org=org, name=name, slug=slug, description=description)
        audit_record(action="workspace.created", org_id=org.pk, target=ws, changes={"name": name, "slug": slug})
    return ws


def workspace_update(*, workspace: Workspace, name: str | None = None, description: str | None = None) -> Workspace:
    before = {"name": workspace.name, "description": workspace.description}
    if name is not None:
        workspace.name = _clean_name(name, "name")
    if description is not None:
        workspace.description = _clean_description(description)
    with transaction.atomic():
        workspace.save(update_fields=["name", "description"])
        audit_record(
            action="workspace.updated",
            org_id=workspace.org_id,
            target=workspace,
            changes=diff(before, {"name": workspace.name, "description": workspace.description}),
        )
    return workspace


MANAGE_WORKSPACE = "orgs.manage_workspace"


def workspace_manager_set(*, workspace: Workspace, membership: Membership, manage: bool) -> None:
    """Grant or withdraw ``membership``'s object permission to manage this one workspace (a
    django-guardian grant the policy engine honours for ``workspace.update`` when the role does not)."""
    user = membership.user
    with transaction.atomic():
        has = MANAGE_WORKSPACE.split(".")[1] in get_user_perms(user, workspace)
        if has == manage:
            return
        (assign_perm if manage else remove_perm)(MANAGE_WORKSPACE, user, workspace)
        audit_record(
            action="workspace.manager_granted" if manage else "workspace.manager_revoked",
            org_id=workspace.org_id,
            target=workspace,
            changes={"member": membership.pk, "user": user.email},
        )


def _drop_workspace_grants(*, org_id: str, user=None, workspace: Workspace | None = None) -> None:
    """Object permissions are not foreign keys: remove them with the member or the workspace."""
    qs = UserObjectPermission.objects.filter(content_type=ContentType.objects.get_for_model(Workspace))
    if workspace is not None:
        qs = qs.filter(object_pk=workspace.pk)
    else:
        ids = [str(pk) for pk in Workspace.objects.filter(org_id=org_id).values_list("pk", flat=True)]
        qs = qs.filter(user=user, object_pk__in=ids)
    qs.delete()


def workspace_delete(*, workspace: Workspace) -> None:
    with transaction.atomic():
        # Lock the organisation so two concurrent deletes cannot both see "more than one left".
        Organization.objects.select_for_update().filter(pk=workspace.org_id).first()
        _drop_workspace_grants(org_id=workspace.org_id, workspace=workspace)
        if Workspace.objects.filter(org_id=workspace.org_id).count() <= 1:
            raise Conflict("An organisation keeps at least one workspace.", code="last_workspace")
        audit_record(action="workspace.deleted", org_id=workspace.org_id, target=workspace)
        workspace.delete()


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
        url = f"{settings.PLAZA_BASE_URL}/invitations/{raw}/"
        transaction.on_commit(
            lambda: send_mail(
                f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}You are invited to {org.name}",
                f"{principal.label} invited you to join {org.name} on Plaza as {role}.\n\n"
                f"Accept within {settings.PLAZA_INVITATION_TTL_DAYS} days: {url}\n",
                None,
                [email],
            )
        )
    return invitation, raw


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


# --- domains -------------------------------------------------------------------------------------
_DOMAIN_RE = re.compile(r"^(?=.{4,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$")


def domain_add(*, org: Organization, name: str) -> Domain:
    name = (name or "").strip().lower().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationFailed("That is not a valid domain name.", param="name") from None
    if not _DOMAIN_RE.fullmatch(name):
        raise ValidationFailed("Enter a domain name such as example.com.", param="name")
    with transaction.atomic():
        if Domain.objects.filter(org=org, name=name).exists():
            raise Conflict("This domain is already listed.", code="domain_exists", param="name")
        domain = Domain.objects.create(org=org, name=name, verification_token=secrets.token_hex(16))
        audit_record(action="domain.added", org_id=org.pk, target=domain, target_label=name)
    return domain


def domain_verify(*, domain: Domain) -> Domain:
    """Look for the TXT record; a domain verified by another organisation cannot be claimed twice."""
    error = ""
    try:
        found = domain.txt_record_value in get_resolver().txt(domain.txt_record_name)
    except DnsLookupError as exc:
        found, error = False, str(exc)[:300]
    if found and Domain.objects.filter(name=domain.name, verified_at__isnull=False).exclude(pk=domain.pk).exists():
        found, error = False, "Another organisation has verified this domain."
    if not found and not error:
        error = f"No TXT record {domain.txt_record_value!r} found at {domain.txt_record_name}."
    with transaction.atomic():
        now = clock.now()
        domain.last_checked_at = now
        domain.last_check_error = "" if found else error
        newly_verified = found and domain.verified_at is None
        if newly_verified:
            domain.verified_at = now
        domain.save(update_fields=["last_checked_at", "last_check_error", "verified_at"])
        if newly_verified:
            audit_record(action="domain.verified", org_id=domain.org_id, target=domain, target_label=domain.name)
    return domain


def domain_remove(*, domain: Domain) -> None:
    with transaction.atomic():
        audit_record(action="domain.removed", org_id=domain.org_id, target=domain, target_label=domain.name)
        domain.delete()


# --- service accounts and tokens -----------------------------------------------------------------
def service_account_create(
    *, principal: Principal, org: Organization, name: str, description: str = "", role: str = Role.DEVELOPER
) -> ServiceAccount:
    name = _clean_name(name, "name")
    role = _clean_role(role)
    _guard_owner_change(principal, org, touching_owner=role == Role.OWNER)
    with transaction.atomic():
        sa = ServiceAccount.objects.create(
            org=org,
            name=name,
            description=_clean_description(description),
            role=role,
            created_by=principal.user if principal.kind == "user" else None,
        )
        audit_record(action="service_account.created", org_id=org.pk, target=sa, changes={"role": role})
    return sa


def service_account_disable(*, service_account: ServiceAccount) -> ServiceAccount:
    """Disable the account and revoke every token it holds."""
    if service_account.disabled_at:
        return service_account
    with transaction.atomic():
        now = clock.now()
        service_account.disabled_at = now
        service_account.save(update_fields=["disabled_at"])
        revoked = ApiToken.objects.filter(service_account=service_account, revoked_at__isnull=True).update(
            revoked_at=now
        )
        audit_record(
            action="service_account.disabled",
            org_id=service_account.org_id,
            target=service_account,
            changes={"tokens_revoked": revoked},
        )
    return service_account


def _clean_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise ValidationFailed("Choose at least one scope.", param="scopes")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationFailed(f"Unknown scope(s): {', '.join(map(str, unknown))[:200]}.", param="scopes")
    return sorted(set(scopes))


def token_create(
    *,
    principal: Principal,
    service_account: ServiceAccount,
    name: str,
    scopes: list[str],
    expires_in_days: int | None = 90,
    secret: str | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token; returns it and the secret, which is shown once and never stored."""
    name = _clean_name(name, "name")
    scopes = _clean_scopes(scopes)
    if service_account.disabled_at:
        raise Conflict("The service account is disabled.", code="service_account_disabled")
    if principal.scopes is not None and not set(scopes) <= principal.scopes:
        raise PermissionDenied("A token cannot issue a token with scopes it does not hold.", code="scope_escalation")
    if expires_in_days is not None and not (1 <= expires_in_days <= MAX_TOKEN_DAYS):
        raise ValidationFailed(f"expires_in_days must be between 1 and {MAX_TOKEN_DAYS}.", param="expires_in_days")
    expires_at = clock.now() + dt.timedelta(days=expires_in_days) if expires_in_days else None
    issuer = principal.token
    if issuer is not None and issuer.expires_at and (expires_at is None or expires_at > issuer.expires_at):
        # A leaked token must not be able to extend its own life by minting a longer-lived one.
        raise ValidationFailed(
            f"A token cannot issue a token that outlives it (this one expires {issuer.expires_at:%Y-%m-%d %H:%M} UTC).",
            param="expires_in_days",
            code="outlives_issuer",
        )
    raw = secret or new_secret(TOKEN_PREFIX, 30)
    if not raw.startswith(TOKEN_PREFIX) or len(raw) < 32:
        raise ValidationFailed("A token secret starts with plz_ and has at least 32 characters.", param="secret")
    with transaction.atomic():
        token = ApiToken.objects.create(
            org_id=service_account.org_id,
            service_account=service_account,
            name=name,
            token_hash=secret_hash(raw),
            last_four=raw[-4:],
            scopes=scopes,
            created_by=principal.user if principal.kind == "user" else None,
            expires_at=expires_at,
        )
        audit_record(
            action="token.created",
            org_id=service_account.org_id,
            target=token,
            changes={
                "scopes": scopes,
                "service_account": service_account.pk,
                "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            },
        )
    return token, raw


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at:
        return token
    with transaction.atomic():
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit_record(action="token.revoked", org_id=token.org_id, target=token)
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    """The usable token for a presented secret, or None. Records last use at most once a minute."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("service_account__org")
        .filter(token_hash=secret_hash(raw), revoked_at__isnull=True, service_account__disabled_at__isnull=True)
        .first()
    )
    now = clock.now()
    if token is None or not token.is_usable(now):
        return None
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
