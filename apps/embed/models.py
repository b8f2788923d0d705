"""Embeds: where a tenant's host product may frame widgets, the launches that start an embedded
session, theme packs (W3C design tokens) and the registry of UI slots with per-tenant overrides."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core import clock
from apps.core.ids import PrefixedIdField
from apps.orgs.models import Organization


class ColorScheme(models.TextChoices):
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"


class ThemePack(models.Model):
    """A versioned set of design tokens in the W3C DTCG format. Built-in packs have no org; a
    tenant's uploads are theirs only. Uploading a pack under an existing name adds a version: a
    version's tokens never change (hosts may pin what they reviewed)."""

    id = PrefixedIdField(prefix="thm")
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=60)
    version = models.PositiveIntegerField(default=1)
    scheme = models.CharField(max_length=5, choices=ColorScheme.choices, default=ColorScheme.LIGHT)
    source = models.JSONField()  # the uploaded DTCG document
    # What travels in ``theme`` messages: CSS custom property name -> {"type", "value"}, resolved and validated.
    resolved = models.JSONField()
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["org", "name", "version"], name="theme_pack_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def builtin(self) -> bool:
        return self.org_id is None


class EmbedSettings(models.Model):
    """One per organisation: the host origins that may frame its widgets and its chosen themes."""

    id = PrefixedIdField(prefix="ems")
    org = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="embed_settings")
    # Exact origins (scheme://host[:port], lowercase, apps.embed.origins.normalise_origin).
    host_origins = models.JSONField(default=list)
    theme = models.ForeignKey(ThemePack, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    theme_dark = models.ForeignKey(ThemePack, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(default=clock.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"embed settings of {self.org_id}"


class Slot(models.Model):
    """A place in a host product where widgets may appear (the component registry)."""

    name = models.CharField(max_length=100, primary_key=True)  # "order.sidebar"
    description = models.CharField(max_length=300)
    placement = models.CharField(max_length=200)  # where it appears, in the host's words
    min_height = models.PositiveIntegerField(default=40)
    max_height = models.PositiveIntegerField(default=800)
    default_height = models.PositiveIntegerField(default=200)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class SlotOverride(models.Model):
    """A tenant's change to a slot: other height limits, or the slot switched off."""

    id = PrefixedIdField(prefix="sov")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    slot = models.ForeignKey(Slot, on_delete=models.CASCADE, related_name="overrides")
    min_height = models.PositiveIntegerField(null=True, blank=True)
    max_height = models.PositiveIntegerField(null=True, blank=True)
    hidden = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "slot"], name="slot_override_unique")]

    def __str__(self) -> str:
        return f"{self.slot_id} in {self.org_id}"


class Launch(models.Model):
    """A host page's embedded session for one signed-in person of the tenant, created by the host's
    backend. Its id is the host page's capability (it mints tokens); widgets only ever see
    ``view_key``, which serves their documents and nothing else."""

    id = PrefixedIdField(prefix="lch")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    host_origin = models.CharField(max_length=200)
    context = models.JSONField(default=dict)  # at most 4 KB of JSON, passed to widgets as is
    view_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return self.id

    @property
    def expired(self) -> bool:
        return self.expires_at <= clock.now()
