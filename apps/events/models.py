"""The event schema registry: event types and their immutable, versioned JSON Schemas."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core import clock
from apps.core.ids import PrefixedIdField


class CompatibilityMode(models.TextChoices):
    NONE = "NONE", "None (any change)"
    BACKWARD = "BACKWARD", "Backward (new readers read old events)"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE", "Backward, against every version"
    FORWARD = "FORWARD", "Forward (old readers read new events)"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE", "Forward, against every version"
    FULL = "FULL", "Full (both)"
    FULL_TRANSITIVE = "FULL_TRANSITIVE", "Full, against every version"


class EventType(models.Model):
    """A kind of event the host product emits (``order.created``). Receiving it needs the scope
    ``events:read:<name>``; names are never reused."""

    id = PrefixedIdField(prefix="etp")
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(max_length=2000)
    compatibility = models.CharField(
        max_length=24, choices=CompatibilityMode.choices, default=CompatibilityMode.FULL_TRANSITIVE
    )
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    deprecated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def scope(self) -> str:
        return f"events:read:{self.name}"


class EventSchema(models.Model):
    """Version N of an event type's payload schema. Never edited: a change is a new version."""

    id = PrefixedIdField(prefix="esv")
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="schemas")
    version = models.PositiveIntegerField()
    schema = models.JSONField()
    examples = models.JSONField(default=list)
    changelog = models.CharField(max_length=1000, blank=True)
    fingerprint = models.CharField(max_length=64)  # sha256 of the canonical schema JSON
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["event_type_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["event_type", "version"], name="event_schema_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type_id} v{self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Event schema versions are immutable; register a new version instead.")
        super().save(*args, **kwargs)
