"""Request and response bodies of the webhooks API: endpoints, secrets, messages and attempts,
replays, and a customer's view of its installations' deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Field, Schema


class SecretOut(Schema):
    id: str
    last4: str = Field(..., description="The last four characters, to tell secrets apart.")
    created_at: dt.datetime
    expires_at: dt.datetime | None = Field(
        None, description="Set while a rotation's overlap runs; then it stops signing."
    )


class EndpointOut(Schema):
    id: str
    extension_id: str
    environment: str = Field(..., description="production (customer installations) | sandbox (your sandbox tenant)")
    url: str
    description: str
    event_types: list[str] = Field(..., description="The types it receives; empty = every type the grant allows.")
    source: str = Field(..., description="manual (portal or API) | manifest (a hook with a url in extension.json)")
    status: str = Field(..., description="enabled | disabled")
    disabled_reason: str
    disabled_at: dt.datetime | None = None
    rate_limit_per_second: int | None = None
    circuit_state: str = Field(..., description="closed | open (paused after consecutive failures) | half_open")
    consecutive_failures: int
    failing_since: dt.datetime | None = None
    circuit_retry_at: dt.datetime | None = None
    secrets: list[SecretOut] = Field(default_factory=list, description="Signing secrets in use (last four only).")
    created_at: dt.datetime
    updated_at: dt.datetime


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(..., description="The signing secret (whsec_…). Shown only in this response: store it now.")


class EndpointCreateIn(Schema):
    url: str = Field(..., max_length=2000, description="https:// URL of your backend.")
    environment: Literal["production", "sandbox"] = "production"
    description: str = Field("", max_length=200)
    event_types: list[str] = Field(
        default_factory=list, max_length=100, description="Only these types (each one your scopes subscribe to)."
    )
    rate_limit_per_second: int | None = Field(None, ge=1, le=10000)


class EndpointPatchIn(Schema):
    url: str | None = Field(None, max_length=2000)
    description: str | None = Field(None, max_length=200)
    event_types: list[str] | None = Field(None, max_length=100)
    rate_limit_per_second: int | None = Field(None, ge=1, le=10000)


class RotateIn(Schema):
    overlap_hours: int = Field(24, ge=0, le=168, description="How long the current secrets keep signing (0–168 h).")


class RotatedOut(Schema):
    secret: str = Field(..., description="The new signing secret. Shown only in this response.")
    secret_id: str
    last4: str
    previous_secrets_expire_at: dt.datetime
    endpoint: EndpointOut


class DisableIn(Schema):
    reason: str = Field("", max_length=300)


class TestIn(Schema):
    event_type: str = Field(
        "", max_length=200, description="One of the types the endpoint receives (default: the first)."
    )


class AttemptOut(Schema):
    id: str
    number: int
    trigger: str = Field(..., description="scheduled | replay | test")
    started_at: dt.datetime
    duration_ms: int
    url: str
    request_headers: dict[str, Any]
    status_code: int | None = None
    response_excerpt: str = Field(..., description="The first KiB of the response body.")
    error_class: str = Field(..., description="timeout, connect, dns, ssrf_blocked, tls, http_status … ('' on 2xx)")
    error_message: str
    outcome: str = Field(..., description="succeeded | retry | failed | gone")


class MessageOut(Schema):
    id: str = Field(..., description="The webhook-id header of every attempt.")
    endpoint_id: str | None = None
    event_id: str | None = None
    installation_id: str | None = None
    org_id: str = Field(..., description="The tenant (customer organisation) the event belongs to.")
    event_type: str
    is_test: bool
    status: str = Field(..., description="pending | succeeded | failed (the dead-letter queue) | cancelled")
    attempts: int
    next_attempt_at: dt.datetime | None = None
    last_status_code: int | None = None
    last_error: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None


class MessageDetailOut(MessageOut):
    body: str = Field(..., description="The exact JSON sent.")
    attempt_list: list[AttemptOut] = Field(default_factory=list, description="Every attempt, first to last.")


class ReplayIn(Schema):
    kind: Literal["failed_since", "backfill"] = Field(
        ..., description="failed_since: resend failed messages created in the range; backfill: events of the types."
    )
    since: dt.datetime
    until: dt.datetime | None = Field(None, description="Default: now.")
    event_types: list[str] = Field(default_factory=list, max_length=100, description="backfill only; default: all.")


class ReplayPreviewOut(Schema):
    kind: str
    count: int = Field(..., description="Messages the replay would send now.")
    since: dt.datetime
    until: dt.datetime
    event_types: list[str]
    limit: int = Field(..., description="The most one replay may send.")


class ReplayJobOut(Schema):
    id: str
    endpoint_id: str
    kind: str = Field(..., description="message | failed_since | backfill")
    params: dict[str, Any]
    status: str = Field(..., description="pending | running | done | failed")
    preview_count: int
    processed_count: int
    error: str
    created_at: dt.datetime
    finished_at: dt.datetime | None = None


class DeliveryAttemptOut(Schema):
    number: int
    trigger: str
    started_at: dt.datetime
    duration_ms: int
    status_code: int | None = None
    error_class: str
    outcome: str


class DeliveryOut(Schema):
    id: str
    installation_id: str | None = None
    event_id: str | None = None
    kind: str = Field(..., description="webhook (to the publisher's endpoint) | hook (a sandbox hook run)")
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None = None
    last_error: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None

    @staticmethod
    def resolve_last_error(obj) -> str:
        # The engine's own error text names the publisher's endpoint: customers get a summary.
        from apps.webhooks.selectors import delivery_error_for_customer

        return delivery_error_for_customer(obj)


class DeliveryDetailOut(DeliveryOut):
    body: str = Field(..., description="The payload sent (minimised to your grant).")
    attempt_list: list[DeliveryAttemptOut] = Field(default_factory=list)
