"""Webhook pages for publishers: an extension's endpoints, one endpoint (settings, secret rotation
with a one-time reveal, enable/disable, test event, recent messages, dead-letter queue with
one-click replay), one message with its attempts, and replay/backfill with a preview count.

Thin: reads through ``apps.webhooks.selectors``, writes through the services. Every form works
without JavaScript (post, then redirect or render); htmx requests get the page's fragment.
The admin side (deliveries of an installation) is in ``views_admin``."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages as flash
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse

from apps.core import clock
from apps.core.errors import Conflict, PlazaError, RateLimited, ValidationFailed
from apps.extensions.selectors import get_extension_for_principal
from apps.orgs.policy import authorize, can
from apps.orgs.portal import form_error, org_context, org_page, page_of
from apps.webhooks import selectors
from apps.webhooks.models import Environment, MessageStatus, ReplayKind, ReplayStatus
from apps.webhooks.services import endpoints as services
from apps.webhooks.services import replay as replays

ENDPOINT_FIELDS = ("url", "environment", "description", "event_types", "overlap_hours", "reason", "event_type")
REPLAY_FIELDS = ("kind", "since", "until", "event_types")
TABS = ("messages", "dlq")
_ALLOWED = ("GET", "HEAD", "POST")


def _text(data, name: str, limit: int = 2000) -> str:
    """A posted field; NUL is refused (PostgreSQL cannot store it), the rest is the services' to judge."""
    value = str(data.get(name, ""))
    if "\x00" in value:
        raise ValidationFailed("This field must not contain NUL characters.", param=name)
    return value.strip()[:limit]


def _query(data, name: str, limit: int = 200) -> str:
    """A filter from the query string: NUL dropped (a filter never errors)."""
    return str(data.get(name, "")).replace("\x00", "").strip()[:limit]


def _types(data) -> list[str]:
    types = [t.strip()[:200] for t in data.getlist("event_types")[:100] if t.strip()]
    if any("\x00" in t for t in types):
        raise ValidationFailed("Event types must not contain NUL characters.", param="event_types")
    return types


def _when(value: str, param: str) -> dt.datetime | None:
    """A ``datetime-local`` (or ISO 8601) value, read as UTC; None when empty."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("Enter a date and time like 2026-01-31T14:00.", param=param) from None
    return replays.utc_moment(moment, param)


def _int(value: str, param: str, default: int) -> int:
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed("Enter a whole number.", param=param) from None


def _here(org, endpoint, **query) -> str:
    url = reverse("webhook_endpoint", kwargs={"org_id": org.pk, "endpoint_id": endpoint.pk})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


# --- an extension's endpoints --------------------------------------------------------------------
@org_page("webhook_endpoint.view")
def endpoint_list(request, org, principal, extension_id: str):
    """The extension's endpoints with their health, and the form to add one (the new secret is
    shown once, on the page that answers the form)."""
    extension = get_extension_for_principal(principal, org, extension_id, "webhook_endpoint.view")
    if request.method not in _ALLOWED:
        return HttpResponseNotAllowed(_ALLOWED)
    error, revealed, form = None, None, {}
    if request.method == "POST":
        try:
            authorize(principal, "webhook_endpoint.manage", extension)
            form = {
                "url": _text(request.POST, "url"),
                "environment": _text(request.POST, "environment", 20) or Environment.PRODUCTION,
                "description": _text(request.POST, "description", 300),
                "event_types": _types(request.POST),
            }
            endpoint, secret = services.endpoint_create(principal=principal, extension=extension, **form)
            revealed = {"endpoint": endpoint, "secret": secret}
            form = {}
        except (ValidationFailed, Conflict) as exc:
            error = form_error(exc, ENDPOINT_FIELDS)
    rows, next_page = page_of(request, selectors.endpoints_of(extension), newest_first=False)
    secrets = selectors.secret_summaries_of(rows)
    for row in rows:
        row.live_secrets = secrets.get(row.pk, [])
    ctx = org_context(
        request,
        org,
        principal,
        extension=extension,
        endpoints=rows,
        next_page=next_page,
        environments=Environment.choices,
        subscribable=sorted(services.subscribable_event_types(extension)),
        can_manage=can(principal, "webhook_endpoint.manage", org),
        error=error,
        form=form,
        revealed=revealed,
    )
    return render(request, "webhooks/endpoints.html", ctx, status=400 if error else (201 if revealed else 200))


# --- one endpoint --------------------------------------------------------------------------------
_OPS = {
    "update": "webhook_endpoint.manage",
    "rotate": "webhook_endpoint.manage",
    "enable": "webhook_endpoint.manage",
    "disable": "webhook_endpoint.manage",
    "delete": "webhook_endpoint.manage",
    "test": "webhook_endpoint.manage",
    "replay": "webhook.replay",
    "replay_failed": "webhook.replay",
}


def _endpoint_post(request, principal, endpoint, op: str) -> tuple[str, dict | None]:
    """Carry out one form of the endpoint page: the flash message, and a secret to reveal."""
    data = request.POST
    if op == "update":
        services.endpoint_update(
            principal=principal,
            endpoint=endpoint,
            url=_text(data, "url") if "url" in data else endpoint.url,
            description=_text(data, "description", 300),
            event_types=_types(data) if endpoint.source == "manual" else endpoint.event_types,
        )
        return "Endpoint saved.", None
    if op == "rotate":
        hours = _int(_text(data, "overlap_hours", 10), "overlap_hours", services.DEFAULT_OVERLAP_HOURS)
        secret, raw = services.endpoint_secret_rotate(principal=principal, endpoint=endpoint, overlap_hours=hours)
        return "", {"secret": raw, "last4": secret.last4, "overlap_hours": hours}
    if op == "enable":
        services.endpoint_enable(principal=principal, endpoint=endpoint)
        return "Endpoint enabled: the breaker is closed and pending messages go out.", None
    if op == "disable":
        services.endpoint_disable(principal=principal, endpoint=endpoint, reason=_text(data, "reason", 300))
        return (
            "Endpoint disabled: messages due meanwhile go to the dead-letter queue; replay them after enabling.",
            None,
        )
    if op == "delete":
        services.endpoint_delete(principal=principal, endpoint=endpoint)
        return "Endpoint deleted; its pending messages were cancelled.", None
    if op == "test":
        message = services.endpoint_test_send(
            principal=principal, endpoint=endpoint, event_type=_text(data, "event_type", 200)
        )
        return f"Test event {message.pk} queued; its result appears below.", None
    if op == "replay":
        message = selectors.get_message_for_principal(
            principal, endpoint.org, endpoint, _text(data, "message_id", 40), "webhook.replay"
        )
        replays.replay_message(principal=principal, endpoint=endpoint, message=message)
        return f"Message {message.pk} is queued again (same id).", None
    if op == "replay_failed":
        job = replays.replay_create(
            principal=principal,
            endpoint=endpoint,
            kind=ReplayKind.FAILED_SINCE,
            since=_when(_text(data, "since", 40), "since"),
        )
        return f"Replay started: {job.preview_count} failed messages go out again.", None
    raise ValidationFailed("Unknown action.")


@org_page("webhook_endpoint.view")
def endpoint_detail(request, org, principal, endpoint_id: str):
    """One endpoint: settings, secrets (last four; a rotation reveals the new one once), health,
    test event, and its messages (``?tab=messages``) or dead-letter queue (``?tab=dlq``)."""
    endpoint = selectors.get_org_endpoint_for_principal(principal, org, endpoint_id, "webhook_endpoint.view")
    if request.method not in _ALLOWED:
        return HttpResponseNotAllowed(_ALLOWED)
    tab = request.GET.get("tab", "messages")
    tab = tab if tab in TABS else "messages"
    error, revealed, status = None, None, 200
    if request.method == "POST":
        op = request.POST.get("op", "")
        try:
            authorize(principal, _OPS.get(op, "webhook_endpoint.manage"), endpoint)
            note, revealed = _endpoint_post(request, principal, endpoint, op)
            if note:
                flash.success(request, note)
                if op == "delete":
                    return redirect("webhook_endpoints", org_id=org.pk, extension_id=endpoint.extension_id)
                return redirect(_here(org, endpoint, tab="dlq" if op.startswith("replay") else tab))
        except RateLimited as exc:
            error, status = form_error(exc, ENDPOINT_FIELDS), 429
        except (ValidationFailed, Conflict) as exc:
            error, status = form_error(exc, ENDPOINT_FIELDS), 400 if isinstance(exc, ValidationFailed) else 409
        except PlazaError as exc:  # NotFound for a message id that is not this endpoint's
            error, status = form_error(exc, ENDPOINT_FIELDS), exc.status
        endpoint = selectors.get_org_endpoint_for_principal(principal, org, endpoint_id, "webhook_endpoint.view")
    filters = {
        "status": MessageStatus.FAILED if tab == "dlq" else _query(request.GET, "status", 20),
        "event_type": _query(request.GET, "event_type", 200),
    }
    if filters["status"] not in ("", *MessageStatus.values):
        filters["status"] = ""
    rows, next_page = page_of(request, selectors.messages_of(endpoint, **filters), size=25)
    subscribable = sorted(services.subscribable_event_types(endpoint.extension))
    ctx = org_context(
        request,
        org,
        principal,
        extension=endpoint.extension,
        endpoint=endpoint,
        secrets=list(selectors.live_secrets_of(endpoint).defer("secret_encrypted")),
        messages_page=rows,
        next_page=next_page,
        tab=tab,
        filters=filters,
        statuses=MessageStatus.choices,
        event_types=sorted(endpoint.event_types or subscribable),
        subscribable=subscribable,
        can_manage=can(principal, "webhook_endpoint.manage", org),
        can_replay=can(principal, "webhook.replay", org),
        error=error,
        revealed=revealed,
        default_since=(clock.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    )
    if request.htmx and request.method == "GET":
        return render(request, "webhooks/endpoint.html#messages", ctx)
    return render(request, "webhooks/endpoint.html", ctx, status=status)


@org_page("webhook_message.view")
def message_detail(request, org, principal, endpoint_id: str, message_id: str):
    """One message: the body sent and every attempt (headers, status, excerpt, duration, error)."""
    endpoint = selectors.get_org_endpoint_for_principal(principal, org, endpoint_id, "webhook_message.view")
    message = selectors.get_message_for_principal(principal, org, endpoint, message_id, "webhook_message.view")
    if request.method not in _ALLOWED:
        return HttpResponseNotAllowed(_ALLOWED)
    error, status = None, 200
    if request.method == "POST":
        try:
            authorize(principal, "webhook.replay", endpoint)
            replays.replay_message(principal=principal, endpoint=endpoint, message=message)
            flash.success(request, "Queued again with the same id.")
            return redirect(request.path)
        except (Conflict, RateLimited) as exc:
            error, status = form_error(exc), exc.status
        message = selectors.get_message_for_principal(principal, org, endpoint, message_id, "webhook_message.view")
    ctx = org_context(
        request,
        org,
        principal,
        extension=endpoint.extension,
        endpoint=endpoint,
        message=message,
        attempts=list(selectors.attempts_of(message)),
        can_replay=can(principal, "webhook.replay", org),
        error=error,
    )
    return render(request, "webhooks/message.html", ctx, status=status)


# --- replay and backfill -------------------------------------------------------------------------
@org_page("webhook_endpoint.view")
def replay_page(request, org, principal, endpoint_id: str):
    """Resend failed messages since a time, or backfill events of given types in a range: the first
    post previews the count (nothing written), the second (``confirm``) starts the job. The jobs
    list polls while one runs."""
    endpoint = selectors.get_org_endpoint_for_principal(principal, org, endpoint_id, "webhook_endpoint.view")
    if request.method not in _ALLOWED:
        return HttpResponseNotAllowed(_ALLOWED)
    error, preview, status = None, None, 200
    form = {"kind": ReplayKind.BACKFILL, "since": "", "until": "", "event_types": []}
    if request.method == "POST":
        try:
            authorize(principal, "webhook.replay", endpoint)
            form = {
                "kind": _text(request.POST, "kind", 20),
                "since": _text(request.POST, "since", 40),
                "until": _text(request.POST, "until", 40),
                "event_types": _types(request.POST),
            }
            if form["kind"] not in (ReplayKind.FAILED_SINCE, ReplayKind.BACKFILL):
                raise ValidationFailed("Choose what to send.", param="kind")
            args = {
                "kind": form["kind"],
                "since": _when(form["since"], "since"),
                "until": _when(form["until"], "until"),
                "event_types": form["event_types"],
            }
            if request.POST.get("op") == "confirm":
                job = replays.replay_create(principal=principal, endpoint=endpoint, **args)
                flash.success(request, f"Replay {job.pk} started: {job.preview_count} messages.")
                return redirect(request.path)
            preview = replays.replay_preview(endpoint=endpoint, **args)
            preview["limit"] = replays.max_messages()
        except RateLimited as exc:
            error, status = form_error(exc, REPLAY_FIELDS), 429
        except (ValidationFailed, Conflict) as exc:
            error, status = form_error(exc, REPLAY_FIELDS), exc.status
    jobs, next_page = page_of(request, selectors.replay_jobs_of(endpoint), size=20)
    ctx = org_context(
        request,
        org,
        principal,
        extension=endpoint.extension,
        endpoint=endpoint,
        jobs=jobs,
        next_page=next_page,
        live=any(j.status in (ReplayStatus.PENDING, ReplayStatus.RUNNING) for j in jobs),
        form=form,
        preview=preview,
        kinds=[(ReplayKind.BACKFILL, "Backfill events"), (ReplayKind.FAILED_SINCE, "Resend failed messages")],
        event_types=sorted(endpoint.event_types or services.subscribable_event_types(endpoint.extension)),
        can_replay=can(principal, "webhook.replay", org),
        error=error,
    )
    if request.htmx and request.method == "GET":
        return render(request, "webhooks/replay.html#jobs", ctx)
    return render(request, "webhooks/replay.html", ctx, status=status)
