"""Tenant-scoped reads of webhook endpoints, messages, attempts and replay jobs.

Two sides see these rows:
- the **publisher** (the extension's organisation) sees its extension's endpoints, every message
  sent to them and every attempt — through ``get_endpoint_for_principal`` and friends, which take
  an extension already resolved with ``get_extension_for_principal``;
- a **customer's admins** see the messages of their own installations (``deliveries_of``), never
  an endpoint's secret.

Nothing else looks these rows up by id: another tenant's id is a 404, never a 403.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from apps.core import clock
from apps.core.errors import NotFound
from apps.core.ids import is_valid_id
from apps.extensions.models import Extension
from apps.installs.models import Installation
from apps.orgs.models import Organization
from apps.orgs.policy import Principal, authorize
from apps.webhooks.models import (
    Attempt,
    Endpoint,
    EndpointSecret,
    Message,
    MessageKind,
    MessageStatus,
    ReplayJob,
)


# --- endpoints -----------------------------------------------------------------------------------
def endpoints_of(extension: Extension, *, environment: str = "") -> QuerySet[Endpoint]:
    """The extension's endpoints that were not deleted, oldest first."""
    qs = Endpoint.objects.filter(extension=extension, deleted_at__isnull=True)
    if environment:
        qs = qs.filter(environment=environment)
    return qs


def get_endpoint_for_principal(
    principal: Principal, org: Organization, extension: Extension, endpoint_id: str, action: str
) -> Endpoint:
    """One endpoint of ``extension`` (itself resolved for this principal inside ``org``)."""
    if not is_valid_id(endpoint_id, "whe"):
        raise NotFound("No such webhook endpoint.")
    endpoint = endpoints_of(extension).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    endpoint.extension = extension
    endpoint.org = org  # what the policy engine checks tenancy against
    authorize(principal, action, endpoint)
    return endpoint


def get_org_endpoint_for_principal(principal: Principal, org: Organization, endpoint_id: str, action: str) -> Endpoint:
    """One endpoint of any of ``org``'s extensions (the portal's URLs name the endpoint alone)."""
    if not is_valid_id(endpoint_id, "whe"):
        raise NotFound("No such webhook endpoint.")
    endpoint = (
        Endpoint.objects.filter(
            pk=endpoint_id, extension__org=org, extension__deleted_at__isnull=True, deleted_at__isnull=True
        )
        .select_related("extension")
        .first()
    )
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    endpoint.org = org
    authorize(principal, action, endpoint)
    return endpoint


def live_secrets_of(endpoint: Endpoint, *, now: dt.datetime | None = None) -> QuerySet[EndpointSecret]:
    """The secrets that sign messages now: the newest one and any still within a rotation's overlap."""
    now = now or clock.now()
    return EndpointSecret.objects.filter(endpoint=endpoint).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def secret_summaries_of(endpoints: list[Endpoint]) -> dict[str, list[EndpointSecret]]:
    """{endpoint id: its live secrets, newest first} in one query, for lists (last four only)."""
    now = clock.now()
    rows = (
        EndpointSecret.objects.filter(endpoint__in=[e.pk for e in endpoints])
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .defer("secret_encrypted")
    )
    out: dict[str, list[EndpointSecret]] = {e.pk: [] for e in endpoints}
    for row in rows:
        out.setdefault(row.endpoint_id, []).append(row)
    return out


# --- messages ------------------------------------------------------------------------------------
def _message_filters(
    qs: QuerySet[Message], *, status: str = "", event_type: str = "", since: dt.datetime | None = None
) -> QuerySet[Message]:
    if status:
        qs = qs.filter(status=status)
    if event_type:
        qs = qs.filter(event_type=event_type)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    return qs


def messages_of(
    endpoint: Endpoint, *, status: str = "", event_type: str = "", since: dt.datetime | None = None
) -> QuerySet[Message]:
    """Messages sent (or to be sent) to ``endpoint``, newest first; ``status=failed`` is its
    dead-letter queue. The body stays in the database for lists."""
    qs = Message.objects.filter(endpoint=endpoint, kind=MessageKind.WEBHOOK).defer("body")
    return _message_filters(qs, status=status, event_type=event_type, since=since)


def get_message_for_principal(
    principal: Principal, org: Organization, endpoint: Endpoint, message_id: str, action: str
) -> Message:
    """One message of ``endpoint`` (resolved for this principal)."""
    if not is_valid_id(message_id, "msg"):
        raise NotFound("No such message.")
    message = Message.objects.filter(endpoint=endpoint, pk=message_id).first()
    if message is None:
        raise NotFound("No such message.")
    message.endpoint = endpoint
    authorize(principal, action, endpoint)
    return message


def attempts_of(message: Message) -> QuerySet[Attempt]:
    return Attempt.objects.filter(message=message).order_by("number", "pk")


def attempts_by_message(messages: list[Message]) -> dict[str, list[Attempt]]:
    """{message id: its attempts in order} in one query (for the API's message objects)."""
    out: dict[str, list[Attempt]] = {m.pk: [] for m in messages}
    for attempt in Attempt.objects.filter(message__in=[m.pk for m in messages]).order_by("message_id", "number"):
        out[attempt.message_id].append(attempt)
    return out


# --- replay jobs ---------------------------------------------------------------------------------
def replay_jobs_of(endpoint: Endpoint) -> QuerySet[ReplayJob]:
    return ReplayJob.objects.filter(endpoint=endpoint).select_related("requested_by")


def get_replay_job_for_principal(
    principal: Principal, org: Organization, extension: Extension, job_id: str, action: str
) -> ReplayJob:
    """A replay job of one of ``extension``'s endpoints (deleted endpoints included: its history)."""
    if not is_valid_id(job_id, "rpl"):
        raise NotFound("No such replay job.")
    job = ReplayJob.objects.filter(pk=job_id, endpoint__extension=extension).select_related("endpoint").first()
    if job is None:
        raise NotFound("No such replay job.")
    job.endpoint.extension = extension
    job.endpoint.org = org
    authorize(principal, action, job.endpoint)
    return job


# --- a customer's admins -------------------------------------------------------------------------
def deliveries_of(
    installation: Installation, *, status: str = "", event_type: str = "", since: dt.datetime | None = None
) -> QuerySet[Message]:
    """The messages of one installation of the customer organisation, newest first: webhooks to
    the publisher's endpoints and sandbox hook runs alike."""
    qs = Message.objects.filter(installation=installation, org_id=installation.org_id).defer("body")
    return _message_filters(qs, status=status, event_type=event_type, since=since)


def delivery_error_for_customer(message: Message) -> str:
    """What a customer's admins see of why a delivery is not done. The engine's ``last_error`` is
    the publisher's: it names the endpoint's host and addresses (connection errors, the SSRF
    guard) and the publisher's own reason for disabling it, so customers get a summary."""
    if not message.last_error:
        return ""
    if message.last_status_code:
        return f"The extension's endpoint answered HTTP {message.last_status_code}."
    if message.status == MessageStatus.CANCELLED:
        return "Cancelled: nothing more is sent for it."
    if message.last_error.startswith("Replay requested"):
        return "The publisher asked to send it again."
    return "The extension's endpoint could not be reached or was unavailable."


def get_delivery_for_principal(
    principal: Principal, installation: Installation, message_id: str, action: str
) -> Message:
    """One message of ``installation`` (resolved for this principal through the installs selector)."""
    if not is_valid_id(message_id, "msg"):
        raise NotFound("No such delivery.")
    message = Message.objects.filter(installation=installation, org_id=installation.org_id, pk=message_id).first()
    if message is None:
        raise NotFound("No such delivery.")
    authorize(principal, action, installation)
    return message
