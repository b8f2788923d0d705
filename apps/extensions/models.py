"""The extension registry: extensions, their immutable versions, and publishers' signing keys."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core import clock
from apps.core.ids import PrefixedIdField
from apps.orgs.models import Organization


class Extension(models.Model):
    """An extension owned by a publisher organisation. Its ``key`` (``publisher.name``) is
    immutable and never reusable: rows are never deleted, only marked deleted."""

    id = PrefixedIdField(prefix="ext")
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="extensions")
    key = models.CharField(max_length=125, unique=True)
    name = models.CharField(max_length=60)
    summary = models.CharField(max_length=140, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.key


class KeyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired (rotated out: earlier signatures stay valid, new uploads refused)"
    REVOKED = "revoked", "Revoked (compromised: signatures no longer trusted)"


class SigningKey(models.Model):
    """A publisher's ed25519 public key. Uploads are signed with the private half."""

    id = PrefixedIdField(prefix="key")
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="signing_keys")
    name = models.CharField(max_length=100)
    public_key = models.CharField(max_length=64)  # base64 of the raw 32 bytes
    fingerprint = models.CharField(max_length=60)  # "SHA256:…" as OpenSSH prints it
    status = models.CharField(max_length=10, choices=KeyStatus.choices, default=KeyStatus.ACTIVE)
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=500, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "fingerprint"], name="signing_key_unique_in_org")]

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint})"


class Channel(models.TextChoices):
    STABLE = "stable", "Stable"
    BETA = "beta", "Beta"
    CANARY = "canary", "Canary"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    CERTIFYING = "certifying", "Certifying"
    CERTIFIED = "certified", "Certified"
    REJECTED = "rejected", "Rejected"
    PUBLISHED = "published", "Published"
    YANKED = "yanked", "Yanked"


# status -> statuses it may move to. Certified and rejected may go back to certifying when staff
# re-run certification (a new run; the earlier one is kept).
TRANSITIONS: dict[str, frozenset[str]] = {
    VersionStatus.DRAFT: frozenset({VersionStatus.SUBMITTED}),
    VersionStatus.SUBMITTED: frozenset({VersionStatus.CERTIFYING}),
    VersionStatus.CERTIFYING: frozenset({VersionStatus.CERTIFIED, VersionStatus.REJECTED}),
    VersionStatus.CERTIFIED: frozenset({VersionStatus.PUBLISHED, VersionStatus.CERTIFYING, VersionStatus.YANKED}),
    VersionStatus.REJECTED: frozenset({VersionStatus.CERTIFYING}),
    VersionStatus.PUBLISHED: frozenset({VersionStatus.YANKED}),
    VersionStatus.YANKED: frozenset(),
}

# What a version is made of: fixed when it is uploaded. Only status, channel (while a draft),
# countersignature and timestamps change afterwards.
CONTENT_FIELDS = frozenset(
    {
        "extension",
        "version",
        "manifest",
        "scopes",
        "package_sha256",
        "package_size",
        "signing_key",
        "signature",
        "created_by",
        "created_at",
    }
)
# What admins are asked to consent to: measured again once, when the version becomes certified.
CONSENT_FIELDS = frozenset({"previous", "scope_changes"})


class ExtensionVersion(models.Model):
    id = PrefixedIdField(prefix="ver")
    extension = models.ForeignKey(Extension, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.STABLE)
    status = models.CharField(max_length=12, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    status_reason = models.CharField(max_length=1000, blank=True)
    manifest = models.JSONField()
    scopes = models.JSONField(default=list)
    # Against the highest earlier version: [{"scope", "change": added|removed|escalation, "replaces"}]
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    scope_changes = models.JSONField(default=list)
    package_sha256 = models.CharField(max_length=64)
    package_size = models.PositiveIntegerField()
    signing_key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="versions")
    signature = models.CharField(max_length=100)
    countersignature = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    submitted_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A version number is never reused: versions are never deleted.
            models.UniqueConstraint(fields=["extension", "version"], name="extension_version_unique"),
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.extension_id}@{self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            fields = kwargs.get("update_fields")
            if fields is None or CONTENT_FIELDS.intersection(fields):
                raise ValueError("An extension version's content is immutable; upload a new version instead.")
            if CONSENT_FIELDS.intersection(fields) and not ("status" in fields and self.status == "certified"):
                raise ValueError("Scope changes are fixed except when the version becomes certified.")
            if "channel" in fields and self.status != VersionStatus.DRAFT:
                raise ValueError("The channel is fixed once a version is submitted.")
        super().save(*args, **kwargs)

    @property
    def org(self) -> Organization:
        return self.extension.org


class ChannelRelease(models.Model):
    """A certified version promoted to a channel. Append-only: the newest row of an (extension,
    channel) is what that channel serves; the earlier rows are its history."""

    id = PrefixedIdField(prefix="rel")
    extension = models.ForeignKey(Extension, on_delete=models.PROTECT, related_name="releases")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    version = models.ForeignKey(ExtensionVersion, on_delete=models.PROTECT, related_name="releases")
    promoted_at = models.DateTimeField(default=clock.now)
    promoted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-promoted_at", "-id"]
        indexes = [models.Index(fields=["extension", "channel", "-promoted_at"])]

    def __str__(self) -> str:
        return f"{self.extension_id}:{self.channel} → {self.version_id}"
