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


# --- Event ingestion (issue #8) -------------------------------------------------------------


class EventSource(models.TextChoices):
    HOST = "host", "Host product (platform token)"
    TENANT = "tenant", "Tenant (the org's own token)"
    EXTENSION = "extension", "Extension (from the sandbox)"


class Event(models.Model):
    """One accepted event of a tenant (a customer org). Written once, never edited; its payload
    was validated against ``event_type``'s schema version ``schema_version`` when accepted."""

    id = PrefixedIdField(prefix="evt")
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")  # the tenant
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="events")
    schema_version = models.PositiveIntegerField()
    payload = models.JSONField()
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=clock.now)
    source = models.CharField(max_length=10, choices=EventSource.choices)
    source_id = models.CharField(max_length=64, blank=True)  # the token's or installation's id
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["org", "received_at"], name="event_org_received"),
            models.Index(fields=["org", "event_type", "received_at"], name="event_org_type_received"),
            # The event log pages by id (time-ordered, apps.core.api.paginate) within a tenant.
            models.Index(fields=["org", "id"], name="event_org_id"),
            models.Index(fields=["org", "event_type", "id"], name="event_org_type_id"),
        ]

    def __str__(self) -> str:
        return self.id


class DispatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"


class EventDispatch(models.Model):
    """The outbox row of an accepted event, written in the same transaction as the event.
    Whatever consumes events (webhook fan-out) claims it under a lease and marks it done; nothing
    in this app knows who that is."""

    id = PrefixedIdField(prefix="edp")
    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="dispatch")
    status = models.CharField(max_length=8, choices=DispatchStatus.choices, default=DispatchStatus.PENDING)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=clock.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "created_at"], name="event_dispatch_status")]

    def __str__(self) -> str:
        return self.id


class IdempotencyRecord(models.Model):
    """The first answer to an ingestion request carrying ``Idempotency-Key``: a retry with the
    same key and body gets the same answer; the same key with another body is refused. Expires
    after ``PLAZA_IDEMPOTENCY_HOURS``; a periodic task deletes expired rows."""

    id = PrefixedIdField(prefix="idk")
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)  # sha256 of the request body (and route)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "key"], name="idempotency_org_key_unique")]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expires")]

    def __str__(self) -> str:
        return f"{self.org_id}:{self.key}"
