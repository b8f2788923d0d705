"""Installations of extensions into customer organisations, what their admins consented to, their
configuration, their version history (for rollback), the proof of their removal, and the
organisation's controls over what may be installed.

Installation-bound data kept by other apps (installation tokens in ``orgs``, key-value storage and
invocation records in ``runtime``, subscriptions and deliveries in ``webhooks``) is referenced by
the installation's id string, never by a foreign key into this app, and each of those apps
provides a cleaner (``PLAZA_INSTALL_CLEANERS``) that uninstall runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core import clock
from apps.core.ids import PrefixedIdField
from apps.extensions.models import Channel, Extension, ExtensionVersion
from apps.orgs.models import Organization


class UpdatePolicy(models.TextChoices):
    AUTO = "auto", "Update automatically"  # new releases on the channel apply unless they need consent
    PINNED = "pinned", "Pinned"  # stays on its version until an admin updates it


class InstallationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    # An organisation rule added after install now refuses it: it keeps its data but nothing of it
    # runs and its tokens are refused, until the rule is lifted (or the admin uninstalls it).
    BLOCKED = "blocked", "Blocked by an organisation rule"
    UNINSTALLED = "uninstalled", "Uninstalled"


class Installation(models.Model):
    """One extension installed into one organisation (a customer, or a publisher's sandbox tenant)."""

    id = PrefixedIdField(prefix="inst")
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="installations")
    extension = models.ForeignKey(Extension, on_delete=models.PROTECT, related_name="installations")
    version = models.ForeignKey(ExtensionVersion, on_delete=models.PROTECT, related_name="installations")
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.STABLE)
    update_policy = models.CharField(max_length=10, choices=UpdatePolicy.choices, default=UpdatePolicy.AUTO)
    status = models.CharField(max_length=12, choices=InstallationStatus.choices, default=InstallationStatus.ACTIVE)
    status_reason = models.CharField(max_length=500, blank=True)
    # The scopes the organisation's admin consented to. What the extension may use is this set
    # intersected with its current version's scopes (apps.installs.selectors.effective_scopes).
    granted_scopes = models.JSONField(default=list)
    # Configuration values from the manifest's config schema. Secrets (writeOnly properties) are
    # kept apart, encrypted with apps.core.crypto, and never shown again.
    config = models.JSONField(default=dict)
    config_secrets_encrypted = models.TextField(blank=True)
    # A release on the followed channel that needs the admin's consent (added or escalated scopes)
    # or that a pinned installation has not taken: offered, never applied silently.
    pending_version = models.ForeignKey(
        ExtensionVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    installed_at = models.DateTimeField(default=clock.now)
    installed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=clock.now)
    uninstalled_at = models.DateTimeField(null=True, blank=True)
    uninstalled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "extension"],
                condition=~Q(status="uninstalled"),
                name="one_live_installation_per_org_and_extension",
            )
        ]
        indexes = [
            models.Index(fields=["extension", "status"]),
            models.Index(fields=["org", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.extension_id} in {self.org_id}"

    @property
    def live(self) -> bool:
        return self.status != InstallationStatus.UNINSTALLED


class HistoryAction(models.TextChoices):
    INSTALL = "install", "Installed"
    UPDATE = "update", "Updated"
    ROLLBACK = "rollback", "Rolled back"


class InstallationVersion(models.Model):
    """Append-only: each version an installation ran, and how it got there. The newest rows name
    the versions a rollback may return to (``PLAZA_INSTALL_ROLLBACK_VERSIONS``)."""

    id = PrefixedIdField(prefix="ivh")
    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="history")
    version = models.ForeignKey(ExtensionVersion, on_delete=models.PROTECT, related_name="+")
    from_version = models.ForeignKey(
        ExtensionVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=10, choices=HistoryAction.choices)
    granted_scopes = models.JSONField(default=list)
    at = models.DateTimeField(default=clock.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["installation", "-at"])]

    def __str__(self) -> str:
        return f"{self.installation_id}: {self.action} → {self.version_id}"


class CleanupReport(models.Model):
    """The proof an uninstall leaves: per cleaner, what it removed and what it found remaining
    afterwards. ``verified`` holds only when every cleaner found nothing remaining."""

    id = PrefixedIdField(prefix="clr")
    installation = models.OneToOneField(Installation, on_delete=models.CASCADE, related_name="cleanup_report")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # [{"cleaner": dotted path, "label": str, "removed": {kind: n}, "remaining": {kind: n}, "error": str}]
    items = models.JSONField(default=list)
    verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"cleanup of {self.installation_id}"


class RuleKind(models.TextChoices):
    EXTENSION = "extension", "Extension"  # value: an extension id (ext_…)
    PUBLISHER = "publisher", "Publisher"  # value: the publisher organisation's id (org_…)
    SCOPE = "scope", "Scope"  # value: a scope or a pattern ending in '*' (http:fetch:*)


class RuleEffect(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"


class InstallRule(models.Model):
    """An organisation's allow or deny rule. Deny wins over allow. In allowlist-only mode an
    extension must be allowed by an extension or publisher rule."""

    id = PrefixedIdField(prefix="irl")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="install_rules")
    kind = models.CharField(max_length=10, choices=RuleKind.choices)
    effect = models.CharField(max_length=5, choices=RuleEffect.choices)
    value = models.CharField(max_length=200)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["kind", "value", "id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "kind", "effect", "value"], name="install_rule_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.effect} {self.kind} {self.value}"


class InstallMode(models.TextChoices):
    OPEN = "open", "Any certified extension not denied"
    ALLOWLIST = "allowlist", "Only allowlisted extensions and publishers"


class InstallPolicy(models.Model):
    """An organisation's install settings (a row exists once an admin changes them)."""

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True, related_name="install_policy")
    mode = models.CharField(max_length=10, choices=InstallMode.choices, default=InstallMode.OPEN)
    # Members without install permission may ask for an extension (InstallRequest).
    requests_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"{self.org_id}: {self.mode}"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    WITHDRAWN = "withdrawn", "Withdrawn"


class InstallRequest(models.Model):
    """A member's request that an admin install an extension."""

    id = PrefixedIdField(prefix="irq")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="install_requests")
    extension = models.ForeignKey(Extension, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=1000, blank=True)
    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    created_at = models.DateTimeField(default=clock.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_note = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "extension", "requested_by"],
                condition=Q(status="pending"),
                name="one_pending_install_request",
            )
        ]
        indexes = [models.Index(fields=["org", "status"])]

    def __str__(self) -> str:
        return f"{self.requested_by_id} wants {self.extension_id} in {self.org_id}"
