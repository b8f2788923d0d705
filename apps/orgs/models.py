from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core import clock
from apps.core.ids import PrefixedIdField


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    BILLING = "billing", "Billing"
    MEMBER = "member", "Member"


class Organization(models.Model):
    """A tenant. The same organisation may publish extensions and install them."""

    id = PrefixedIdField(prefix="org")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    # Security policy (see policy.authorize).
    require_mfa = models.BooleanField(default=False)
    max_session_age_minutes = models.PositiveIntegerField(null=True, blank=True)
    # Sign a member's session out after this long without a request (enforced per session).
    idle_timeout_minutes = models.PositiveIntegerField(null=True, blank=True)
    ip_allowlist = models.JSONField(default=list, blank=True)
    # Members must sign in through the organisation's SSO connection; owners keep an audited
    # break-glass password sign-in.
    sso_required = models.BooleanField(default=False)
    # The company running Plaza: its members with a builder role are platform staff (they manage
    # the event catalog and review certification). At most one; set by `manage.py set_platform_org`.
    is_platform = models.BooleanField(default=False)
    # A publisher's sandbox customer tenant: the publisher installs its own uncertified versions
    # here. Its members are the publisher's (a person's role in it is their role in the publisher);
    # it never publishes, and nothing installed in it shows in the storefront.
    sandbox_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.CASCADE, related_name="sandbox")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_platform"], condition=Q(is_platform=True), name="one_platform_org")
        ]

    def __str__(self) -> str:
        return self.name


class Workspace(models.Model):
    id = PrefixedIdField(prefix="wsp")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="workspaces")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60)
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="workspace_slug_unique_in_org")]
        permissions = [("manage_workspace", "Manage this workspace even without an admin role")]

    def __str__(self) -> str:
        return self.name


class MemberSource(models.TextChoices):
    MANUAL = "manual", "Added in Plaza"  # created the org, or added by an admin
    INVITATION = "invitation", "Invitation"
    SSO = "sso", "Single sign-on (just in time)"
    SCIM = "scim", "SCIM provisioning"


class Membership(models.Model):
    id = PrefixedIdField(prefix="mem")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=clock.now)
    source = models.CharField(max_length=12, choices=MemberSource.choices, default=MemberSource.MANUAL)
    # SCIM: the identity provider's id for this person, and the attributes it sent that Plaza keeps
    # for this organisation only (name, displayName, emails, …), returned exactly as received.
    external_id = models.CharField(max_length=255, blank=True)
    scim_attributes = models.JSONField(default=dict, blank=True)
    # Deactivated (SCIM active=false): the membership grants nothing until reactivated.
    deactivated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "user"], name="one_membership_per_user_and_org")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.org_id} ({self.role})"

    @property
    def active(self) -> bool:
        return self.deactivated_at is None


class Group(models.Model):
    """A group of members (from SCIM or made in the console). A group may carry a role, which its
    members get when it is higher than their own, and a workspace they may manage."""

    id = PrefixedIdField(prefix="grp")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="groups")
    display_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=12, choices=MemberSource.choices, default=MemberSource.MANUAL)
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    members = models.ManyToManyField(Membership, blank=True, related_name="groups")
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "display_name"], name="group_name_unique_in_org")]

    def __str__(self) -> str:
        return self.display_name


class SsoConnection(models.Model):
    """An organisation's OpenID Connect identity provider. Members whose e-mail domain is one of the
    org's verified domains are sent there to sign in; new ones join with ``default_role``."""

    id = PrefixedIdField(prefix="sso")
    org = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="sso_connection")
    name = models.CharField(max_length=100, default="Single sign-on")
    issuer = models.URLField(max_length=500)  # discovery at <issuer>/.well-known/openid-configuration
    client_id = models.CharField(max_length=255)
    client_secret_encrypted = models.TextField(blank=True)  # apps.core.crypto.encrypt; never shown again
    client_secret_last_four = models.CharField(max_length=4, blank=True)
    scopes = models.CharField(max_length=255, default="openid email profile")
    default_role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    enabled = models.BooleanField(default=False)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_detail = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.issuer})"

    @property
    def provider_id(self) -> str:
        """The id of this connection in allauth's openid_connect provider (one app per org)."""
        return f"org-{self.org_id}"


class Invitation(models.Model):
    id = PrefixedIdField(prefix="inv")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_email",
            )
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= clock.now():
            return "expired"
        return "pending"


class Domain(models.Model):
    """A DNS name an organisation proves it controls with a TXT record."""

    id = PrefixedIdField(prefix="dom")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="domains")
    name = models.CharField(max_length=253)
    verification_token = models.CharField(max_length=64)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="domain_once_per_org"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(verified_at__isnull=False), name="domain_verified_once"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def status(self) -> str:
        return "verified" if self.verified_at else "pending"

    @property
    def txt_record_name(self) -> str:
        return f"_plaza-challenge.{self.name}"

    @property
    def txt_record_value(self) -> str:
        return f"plaza-verification={self.verification_token}"


class ServiceAccount(models.Model):
    """A non-human member of an organisation that calls the API with tokens."""

    id = PrefixedIdField(prefix="sa")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="service_accounts")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.DEVELOPER)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Set for the account an installation's tokens belong to (apps.installs): managed by Plaza,
    # not by the organisation's admins; disabled when the installation is blocked or removed.
    installation_id = models.CharField(max_length=32, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A bearer credential of a service account. Only the SHA-256 of the secret is stored."""

    id = PrefixedIdField(prefix="tok")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    service_account = models.ForeignKey(ServiceAccount, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    last_four = models.CharField(max_length=4)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} (plz_…{self.last_four})"

    def is_usable(self, at: dt.datetime | None = None) -> bool:
        at = at or clock.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= clock.now():
            return "expired"
        return "active"
