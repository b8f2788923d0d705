"""Webhook endpoints, the messages sent to them, every attempt, and replay jobs.

The database is the queue: a ``Message`` is written in the fan-out transaction and carries its own
schedule (``next_attempt_at``) and lease (``lease_until``). Celery only says "look for due
messages"; a lost task or a killed worker delays a message, never loses it. A message whose
attempts are exhausted is ``failed``: that set is the dead-letter queue, replayable from the portal.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core import clock
from apps.core.ids import PrefixedIdField


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production (customer installations)"
    SANDBOX = "sandbox", "Sandbox (the publisher's sandbox tenant)"


class EndpointSource(models.TextChoices):
    MANUAL = "manual", "Added in the portal or API"
    MANIFEST = "manifest", "Declared in the manifest"


class EndpointStatus(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


class CircuitState(models.TextChoices):
    CLOSED = "closed", "Closed (sending)"
    OPEN = "open", "Open (paused after consecutive failures)"
    HALF_OPEN = "half_open", "Half-open (one probe in flight)"


class Endpoint(models.Model):
    """A URL of an extension's backend that receives its installations' events. One set per
    environment: production endpoints get customer installations' messages, sandbox endpoints get
    the publisher's sandbox tenant's."""

    id = PrefixedIdField(prefix="whe")
    extension = models.ForeignKey("extensions.Extension", on_delete=models.PROTECT, related_name="webhook_endpoints")
    environment = models.CharField(max_length=16, choices=Environment.choices, default=Environment.PRODUCTION)
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Event type names this endpoint receives; empty = every type the installation's grant allows.
    event_types = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=16, choices=EndpointSource.choices, default=EndpointSource.MANUAL)
    status = models.CharField(max_length=16, choices=EndpointStatus.choices, default=EndpointStatus.ENABLED)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Messages per second at most; None = settings.PLAZA_WEBHOOK_RATE_LIMIT.
    rate_limit_per_second = models.PositiveIntegerField(null=True, blank=True)
    # Circuit breaker: opened after consecutive failures, probed (half-open) after a pause.
    circuit_state = models.CharField(max_length=16, choices=CircuitState.choices, default=CircuitState.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    circuit_opened_at = models.DateTimeField(null=True, blank=True)
    circuit_retry_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)  # first failure of the current streak
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True)  # kept for the message history

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["extension", "environment", "status"], name="whe_ext_env_status")]

    def __str__(self) -> str:
        return f"{self.id} {self.url}"


class EndpointSecret(models.Model):
    """A signing secret (``whsec_…``), stored encrypted. Rotation adds a new secret and gives the
    old one an ``expires_at``: until then messages carry both signatures."""

    id = PrefixedIdField(prefix="whs")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="secrets")
    secret_encrypted = models.TextField()
    last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.id} …{self.last4}"


class MessageKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook to an endpoint"
    HOOK = "hook", "Sandbox hook run"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed (dead-letter queue)"
    CANCELLED = "cancelled", "Cancelled"


class Message(models.Model):
    """One event for one installation at one endpoint (or one sandbox hook). Its id is the
    ``webhook-id`` on every attempt, and ``body`` is serialised once so every retry sends the same
    bytes."""

    id = PrefixedIdField(prefix="msg")
    # Foreign keys leading a composite index below carry no index of their own (one less index
    # to maintain on every status change of a busy table).
    org = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )  # the tenant
    event = models.ForeignKey("events.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    installation = models.ForeignKey(
        "installs.Installation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=16, choices=MessageKind.choices, default=MessageKind.WEBHOOK)
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="messages", db_index=False
    )
    hook = models.CharField(max_length=200, blank=True)  # "module.export" for kind=hook
    event_type = models.CharField(max_length=200)
    body = models.TextField()  # the exact JSON sent
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Set with the lease by the worker that claimed the message: only that worker records the
    # attempt's outcome (a worker whose lease expired mid-send cannot overwrite a newer one).
    lease_token = models.CharField(max_length=32, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="msg_due"),
            models.Index(fields=["endpoint", "status", "created_at"], name="msg_endpoint_status"),
            models.Index(fields=["org", "created_at"], name="msg_org_created"),
            models.Index(fields=["installation", "status"], name="msg_installation_status"),
        ]
        constraints = [
            # Fan-out is idempotent: one event reaches one installation's endpoint (or hook) once,
            # however often its dispatch row is processed or a backfill runs.
            models.UniqueConstraint(
                fields=["event", "installation", "endpoint"],
                condition=Q(kind="webhook", is_test=False, event__isnull=False, installation__isnull=False),
                name="msg_event_installation_endpoint_unique",
            ),
            models.UniqueConstraint(
                fields=["event", "installation", "hook"],
                condition=Q(kind="hook", is_test=False, event__isnull=False, installation__isnull=False),
                name="msg_event_installation_hook_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type} {self.status}"


class AttemptOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    RETRY = "retry", "Failed, will retry"
    FAILED = "failed", "Failed, no retries left"
    GONE = "gone", "Endpoint answered 410 Gone"


class Attempt(models.Model):
    """One try at sending a message: what was sent (headers, never the secret) and what came back."""

    id = PrefixedIdField(prefix="att")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_set", db_index=False)
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=16, default="scheduled")  # scheduled | replay | test
    started_at = models.DateTimeField(default=clock.now)
    duration_ms = models.PositiveIntegerField(default=0)
    url = models.CharField(max_length=2000, blank=True)
    request_headers = models.JSONField(default=dict)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)  # capped at 1 KiB
    error_class = models.CharField(max_length=40, blank=True)  # timeout, connect, ssrf_blocked, http_status …
    error_message = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)

    class Meta:
        ordering = ["message_id", "number"]
        indexes = [models.Index(fields=["message", "number"], name="att_message_number")]

    def __str__(self) -> str:
        return f"{self.message_id} #{self.number} {self.outcome}"


class ReplayKind(models.TextChoices):
    MESSAGE = "message", "Resend one message"
    FAILED_SINCE = "failed_since", "Resend failed messages since a time"
    BACKFILL = "backfill", "Backfill events of given types in a time range"


class ReplayStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReplayJob(models.Model):
    """A publisher's request to resend or backfill, with the count previewed before it ran."""

    id = PrefixedIdField(prefix="rpl")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="replays")
    kind = models.CharField(max_length=16, choices=ReplayKind.choices)
    params = models.JSONField(default=dict)  # message_id | since | until | event_types
    status = models.CharField(max_length=16, choices=ReplayStatus.choices, default=ReplayStatus.PENDING)
    preview_count = models.PositiveIntegerField(default=0)
    processed_count = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.id} {self.kind} {self.status}"
