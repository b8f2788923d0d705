"""The webhooks API: a publisher's endpoints for an extension (with their secrets shown once),
the messages sent to them with every attempt, test events, replay and backfill; and a customer
admin's view of the deliveries of its installations. Thin: resolve through the selectors, call
one service, answer."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import NotFound, ValidationFailed
from apps.extensions.selectors import get_extension_for_principal
from apps.installs.selectors import get_installation_for_principal
from apps.orgs.selectors import get_org_for_principal
from apps.webhooks import selectors
from apps.webhooks.models import MessageStatus
from apps.webhooks.schemas import (
    DeliveryDetailOut,
    DeliveryOut,
    DisableIn,
    EndpointCreatedOut,
    EndpointCreateIn,
    EndpointOut,
    EndpointPatchIn,
    MessageDetailOut,
    MessageOut,
    ReplayIn,
    ReplayJobOut,
    ReplayPreviewOut,
    RotatedOut,
    RotateIn,
    TestIn,
)
from apps.webhooks.services import endpoints as services
from apps.webhooks.services import replay as replays

router = Router(tags=["webhooks"])
SINCE_QUERY = Query(None, description="Created at or after (ISO 8601).")
BASE = "/orgs/{org_id}/extensions/{extension_id}/webhook-endpoints"


def _endpoint(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, action: str):
    org = get_org_for_principal(request.auth, org_id, action)
    extension = get_extension_for_principal(request.auth, org, extension_id, action)
    return selectors.get_endpoint_for_principal(request.auth, org, extension, endpoint_id, action)


def _out(endpoint, secrets: list | None = None) -> dict:
    if secrets is None:
        secrets = selectors.secret_summaries_of([endpoint])[endpoint.pk]
    return {**{f: getattr(endpoint, f) for f in EndpointOut.model_fields if f != "secrets"}, "secrets": secrets}


def _since(since: dt.datetime | None) -> dt.datetime | None:
    return replays.utc_moment(since, "since")


def _status(status: str) -> str:
    if status and status not in MessageStatus.values:
        raise ValidationFailed(f"The status is one of {', '.join(MessageStatus.values)}.", param="status")
    return status


# --- endpoints -----------------------------------------------------------------------------------
@router.get(BASE, response=Page[EndpointOut], summary="List an extension's webhook endpoints")
def list_endpoints(
    request: HttpRequest,
    org_id: str,
    extension_id: str,
    environment: str = Query("", description="production | sandbox"),
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    """The extension's endpoints (deleted ones left out), oldest first, with breaker state and the
    last four characters of each live secret."""
    org = get_org_for_principal(request.auth, org_id, "webhook_endpoint.view")
    extension = get_extension_for_principal(request.auth, org, extension_id, "webhook_endpoint.view")
    if environment and environment not in ("production", "sandbox"):
        raise ValidationFailed("The environment is production or sandbox.", param="environment")
    rows, next_cursor = paginate(
        selectors.endpoints_of(extension, environment=environment), limit=limit, cursor=cursor, newest_first=False
    )
    secrets = selectors.secret_summaries_of(rows)
    return {"data": [_out(e, secrets[e.pk]) for e in rows], "next_cursor": next_cursor}


@router.post(BASE, response={201: EndpointCreatedOut}, summary="Add a webhook endpoint")
def create_endpoint(request: HttpRequest, org_id: str, extension_id: str, payload: EndpointCreateIn):
    """The response holds the signing secret (``whsec_…``) — the only time it is shown.
    400 ``url_not_https``, ``url_credentials``, ``url_not_public``, ``event_type_not_subscribed``;
    409 ``endpoint_limit``."""
    org = get_org_for_principal(request.auth, org_id, "webhook_endpoint.manage")
    extension = get_extension_for_principal(request.auth, org, extension_id, "webhook_endpoint.manage")
    endpoint, secret = services.endpoint_create(principal=request.auth, extension=extension, **payload.dict())
    return Status(201, {**_out(endpoint), "secret": secret})


@router.get(BASE + "/{endpoint_id}", response=EndpointOut, summary="Get a webhook endpoint")
def get_endpoint(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str):
    return _out(_endpoint(request, org_id, extension_id, endpoint_id, "webhook_endpoint.view"))


@router.patch(BASE + "/{endpoint_id}", response=EndpointOut, summary="Change a webhook endpoint")
def update_endpoint(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, payload: EndpointPatchIn):
    """Fields left out stay as they are. A manifest endpoint's URL and event types come from the
    manifest (409 ``endpoint_managed_by_manifest``)."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_endpoint.manage")
    changes = payload.dict(exclude_unset=True)
    endpoint = services.endpoint_update(principal=request.auth, endpoint=endpoint, **changes)
    return _out(endpoint)


@router.delete(BASE + "/{endpoint_id}", response={204: None}, summary="Delete a webhook endpoint")
def delete_endpoint(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str):
    """Its pending messages are cancelled; its history stays readable through the messages API of
    the installations. Manifest endpoints leave with their hook (409 ``endpoint_managed_by_manifest``)."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_endpoint.manage")
    services.endpoint_delete(principal=request.auth, endpoint=endpoint)
    return Status(204, None)


@router.post(BASE + "/{endpoint_id}/rotate-secret", response=RotatedOut, summary="Rotate an endpoint's secret")
def rotate_secret(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, payload: RotateIn):
    """A new secret, shown once; the current ones keep signing for ``overlap_hours`` (default 24,
    at most 168), so messages carry both signatures until then."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_endpoint.manage")
    secret, raw = services.endpoint_secret_rotate(
        principal=request.auth, endpoint=endpoint, overlap_hours=payload.overlap_hours
    )
    return {
        "secret": raw,
        "secret_id": secret.pk,
        "last4": secret.last4,
        "previous_secrets_expire_at": secret.created_at + dt.timedelta(hours=payload.overlap_hours),
        "endpoint": _out(endpoint),
    }


@router.post(BASE + "/{endpoint_id}/enable", response=EndpointOut, summary="Re-enable an endpoint")
def enable_endpoint(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str):
    """Closes the circuit breaker and restarts the failure streak; pending messages go out."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_endpoint.manage")
    return _out(services.endpoint_enable(principal=request.auth, endpoint=endpoint))


@router.post(BASE + "/{endpoint_id}/disable", response=EndpointOut, summary="Disable an endpoint")
def disable_endpoint(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, payload: DisableIn):
    """New events make no messages for it; its messages that come due meanwhile go to the
    dead-letter queue with the reason (replay them after enabling)."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_endpoint.manage")
    return _out(services.endpoint_disable(principal=request.auth, endpoint=endpoint, reason=payload.reason))


@router.post(BASE + "/{endpoint_id}/test", response={201: MessageOut}, summary="Send a test event")
def send_test(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, payload: TestIn):
    """A message marked ``is_test`` with the event schema's example payload, sent through the
    normal engine (signed, retried); follow it with ``GET …/messages/{id}``."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_endpoint.manage")
    message = services.endpoint_test_send(principal=request.auth, endpoint=endpoint, event_type=payload.event_type)
    return Status(201, message)


# --- messages ------------------------------------------------------------------------------------
@router.get(BASE + "/{endpoint_id}/messages", response=Page[MessageOut], summary="List an endpoint's messages")
def list_messages(
    request: HttpRequest,
    org_id: str,
    extension_id: str,
    endpoint_id: str,
    status: str = Query("", description="pending | succeeded | failed (the dead-letter queue) | cancelled"),
    event_type: str = Query("", max_length=200),
    since: dt.datetime | None = SINCE_QUERY,
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_message.view")
    qs = selectors.messages_of(endpoint, status=_status(status), event_type=event_type, since=_since(since))
    rows, next_cursor = paginate(qs, limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.get(BASE + "/{endpoint_id}/messages/{message_id}", response=MessageDetailOut, summary="Get a message")
def get_message(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, message_id: str):
    """The body sent and every attempt: request headers (signatures, never the secret), status,
    response excerpt, duration and error class."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_message.view")
    message = selectors.get_message_for_principal(
        request.auth, endpoint.org, endpoint, message_id, "webhook_message.view"
    )
    message.attempt_list = list(selectors.attempts_of(message))
    return message


@router.post(
    BASE + "/{endpoint_id}/messages/{message_id}/replay", response={202: ReplayJobOut}, summary="Resend one message"
)
def replay_message(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, message_id: str):
    """The same message (same ``webhook-id`` and body) goes back in the queue, due now.
    409 ``message_pending``, ``endpoint_disabled``; 429 ``replay_rate_limited``."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook.replay")
    message = selectors.get_message_for_principal(request.auth, endpoint.org, endpoint, message_id, "webhook.replay")
    return Status(202, replays.replay_message(principal=request.auth, endpoint=endpoint, message=message))


# --- replays -------------------------------------------------------------------------------------
@router.post(BASE + "/{endpoint_id}/replays/preview", response=ReplayPreviewOut, summary="Count what a replay sends")
def preview_replay(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, payload: ReplayIn):
    """Nothing is written: the number of messages ``POST …/replays`` with the same body would send now."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook.replay")
    preview = replays.replay_preview(endpoint=endpoint, **payload.dict())
    return {**preview, "kind": payload.kind, "limit": replays.max_messages()}


@router.post(BASE + "/{endpoint_id}/replays", response={202: ReplayJobOut}, summary="Replay or backfill")
def create_replay(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, payload: ReplayIn):
    """``failed_since``: resend the endpoint's failed messages created in the range (same ids).
    ``backfill``: send the events of ``event_types`` received in the range to this endpoint, one
    new message per installation that would have received each (events already sent to it are
    skipped). Processed in batches by a task; follow it with ``GET …/replays/{id}``.
    409 ``replay_empty``, ``replay_in_progress``, ``replay_too_large``; 429 ``replay_rate_limited``."""
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook.replay")
    job = replays.replay_create(principal=request.auth, endpoint=endpoint, **payload.dict())
    job.refresh_from_db()
    return Status(202, job)


@router.get(BASE + "/{endpoint_id}/replays", response=Page[ReplayJobOut], summary="List an endpoint's replays")
def list_replays(
    request: HttpRequest,
    org_id: str,
    extension_id: str,
    endpoint_id: str,
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_endpoint.view")
    rows, next_cursor = paginate(selectors.replay_jobs_of(endpoint), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.get(BASE + "/{endpoint_id}/replays/{replay_id}", response=ReplayJobOut, summary="Get a replay")
def get_replay(request: HttpRequest, org_id: str, extension_id: str, endpoint_id: str, replay_id: str):
    endpoint = _endpoint(request, org_id, extension_id, endpoint_id, "webhook_endpoint.view")
    job = selectors.get_replay_job_for_principal(
        request.auth, endpoint.org, endpoint.extension, replay_id, "webhook_endpoint.view"
    )
    if job.endpoint_id != endpoint.pk:
        raise NotFound("No such replay job.")
    return job


# --- a customer's deliveries ---------------------------------------------------------------------
@router.get(
    "/orgs/{org_id}/installations/{installation_id}/deliveries",
    response=Page[DeliveryOut],
    summary="List an installation's deliveries",
)
def list_deliveries(
    request: HttpRequest,
    org_id: str,
    installation_id: str,
    status: str = Query("", description="pending | succeeded | failed | cancelled"),
    event_type: str = Query("", max_length=200),
    since: dt.datetime | None = SINCE_QUERY,
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    """The events your organisation's installation received (or is about to), newest first, for
    admins: status, attempts and the last error. No endpoint secret or publisher URL is shown."""
    org = get_org_for_principal(request.auth, org_id, "installation.deliveries.view")
    installation = get_installation_for_principal(request.auth, org, installation_id, "installation.deliveries.view")
    qs = selectors.deliveries_of(installation, status=_status(status), event_type=event_type, since=_since(since))
    rows, next_cursor = paginate(qs, limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.get(
    "/orgs/{org_id}/installations/{installation_id}/deliveries/{message_id}",
    response=DeliveryDetailOut,
    summary="Get one delivery",
)
def get_delivery(request: HttpRequest, org_id: str, installation_id: str, message_id: str):
    """The payload as sent (minimised to the grant) and each attempt's outcome."""
    org = get_org_for_principal(request.auth, org_id, "installation.deliveries.view")
    installation = get_installation_for_principal(request.auth, org, installation_id, "installation.deliveries.view")
    message = selectors.get_delivery_for_principal(
        request.auth, installation, message_id, "installation.deliveries.view"
    )
    message.attempt_list = list(selectors.attempts_of(message))
    return message
