"""Fan-out: accepted events become messages for subscribed installations, minimised, once."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest

from apps.core import clock
from apps.events.models import DispatchStatus, Event, EventDispatch
from apps.events.signals import events_accepted
from apps.installs.models import Installation
from apps.runtime.runner import Result
from apps.webhooks import tasks
from apps.webhooks.cleaners import installation_deliveries
from apps.webhooks.models import Attempt, Environment, Message, MessageKind, MessageStatus
from apps.webhooks.services import delivery
from apps.webhooks.services.fanout import dispatch_process, messages_for_event
from tests.webhooks.engine_support import make_endpoint, make_event, make_extension, make_world

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/plaza"


def test_event_becomes_one_minimised_message_per_endpoint():
    # given an installation granted the event's scope, but not pii:read
    world = make_world(url=URL)
    second, _ = make_endpoint(world.extension, URL + "/2")
    event = make_event(world)
    # when
    created = dispatch_process(event.dispatch.pk)
    # then
    assert created == 2
    messages = Message.objects.filter(event=event).order_by("endpoint__created_at")
    assert {m.endpoint_id for m in messages} == {world.endpoint.pk, second.pk}
    body = json.loads(messages[0].body)
    assert body == {
        "type": "order.created",
        "timestamp": event.occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": {"order_id": "o-1", "total": 12.5},  # customer_email needs pii:read
        "event_id": event.pk,
        "schema_version": 1,
        "tenant_id": world.customer.pk,
        "installation_id": world.installation.pk,
        "environment": "production",
    }
    assert messages[0].body == messages[1].body
    assert all(m.status == MessageStatus.PENDING and m.next_attempt_at for m in messages)
    event.dispatch.refresh_from_db()
    assert event.dispatch.status == DispatchStatus.DONE and event.dispatch.done_at


def test_granted_pii_scope_keeps_the_annotated_field():
    scopes = ("events:read:order.created", "pii:read")
    world = make_world(scopes=scopes, url=URL)
    event = make_event(world)
    dispatch_process(event.dispatch.pk)
    assert json.loads(Message.objects.get(event=event).body)["data"]["customer_email"] == "ann@example.com"


def test_processing_twice_creates_nothing_new():
    world = make_world(url=URL)
    event = make_event(world)
    assert dispatch_process(event.dispatch.pk) == 1
    assert dispatch_process(event.dispatch.pk) == 0  # done
    EventDispatch.objects.filter(pk=event.dispatch.pk).update(status=DispatchStatus.PENDING)
    assert dispatch_process(event.dispatch.pk) == 0  # pending again (a lost "done"): still one message
    assert Message.objects.filter(event=event).count() == 1


def test_a_leased_dispatch_is_left_to_its_worker():
    world = make_world(url=URL)
    event = make_event(world)
    EventDispatch.objects.filter(pk=event.dispatch.pk).update(lease_until=clock.now() + dt.timedelta(seconds=30))
    assert dispatch_process(event.dispatch.pk) == 0
    assert not Message.objects.filter(event=event).exists()


@pytest.mark.parametrize(
    ("granted", "status"),
    [
        (("kv:read",), "active"),
        (("events:read:order.created",), "blocked"),
        (("events:read:order.created",), "uninstalled"),
    ],
)
def test_no_message_without_the_grant_or_an_active_installation(granted, status):
    world = make_world(scopes=("events:read:order.created", "kv:read"), granted=granted, url=URL)
    world.installation.status = status
    world.installation.save(update_fields=["status"])
    event = make_event(world)
    assert dispatch_process(event.dispatch.pk) == 0
    event.dispatch.refresh_from_db()
    assert event.dispatch.status == DispatchStatus.DONE


def test_other_tenants_installations_get_nothing():
    world = make_world(url=URL)
    other = make_world(url=URL + "/other")
    event = make_event(world)
    dispatch_process(event.dispatch.pk)
    assert not Message.objects.filter(installation=other.installation).exists()


def test_endpoint_event_types_and_status_filter():
    world = make_world(url=URL)
    make_endpoint(world.extension, URL + "/other-type", event_types=["order.cancelled"])
    make_endpoint(world.extension, URL + "/disabled", status="disabled")
    make_endpoint(world.extension, URL + "/deleted", deleted_at=clock.now())
    typed, _ = make_endpoint(world.extension, URL + "/typed", event_types=["order.created"])
    event = make_event(world)
    dispatch_process(event.dispatch.pk)
    assert set(Message.objects.filter(event=event).values_list("endpoint_id", flat=True)) == {
        world.endpoint.pk,
        typed.pk,
    }


def test_sandbox_tenant_uses_sandbox_endpoints():
    world = make_world(url=URL, sandbox=True)  # the world's endpoint is a sandbox one
    make_endpoint(world.extension, URL + "/production", environment=Environment.PRODUCTION)
    event = make_event(world)
    dispatch_process(event.dispatch.pk)
    [message] = Message.objects.filter(event=event)
    assert message.endpoint_id == world.endpoint.pk
    assert json.loads(message.body)["environment"] == "sandbox"


def test_module_hooks_become_hook_messages_run_through_the_sandbox():
    hooks = [{"event": "order.created", "module": "main", "export": "on_order_created"}]
    world = make_world(hooks=hooks)
    event = make_event(world)
    dispatch_process(event.dispatch.pk)
    [message] = Message.objects.filter(event=event)
    assert message.kind == MessageKind.HOOK and message.hook == "main.on_order_created" and message.endpoint is None
    with mock.patch("apps.installs.services.runtime.installation_invoke", return_value=Result("ok")) as invoke:
        report = delivery.deliver_batch()
    assert report.succeeded == 1
    kwargs = invoke.call_args.kwargs
    assert kwargs["export"] == "on_order_created" and kwargs["input_value"]["event_id"] == event.pk
    assert kwargs["correlation_id"] == message.pk
    message.refresh_from_db()
    assert message.status == MessageStatus.SUCCEEDED
    assert Attempt.objects.get(message=message).url == "main.on_order_created"


def test_failed_hook_run_is_retried_like_a_webhook(settings):
    settings.PLAZA_WEBHOOK_RETRY_SCHEDULE = [0, 0]
    world = make_world(hooks=[{"event": "order.created", "module": "main", "export": "go"}])
    event = make_event(world)
    dispatch_process(event.dispatch.pk)
    with mock.patch(
        "apps.installs.services.runtime.installation_invoke", return_value=Result("trap", detail="unreachable")
    ):
        delivery.deliver_batch()
        message = Message.objects.get(event=event)
        assert message.status == MessageStatus.PENDING and message.attempts == 1
        delivery.deliver_batch()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert list(Attempt.objects.filter(message=message).values_list("error_class", flat=True)) == ["hook_trap"] * 2


def test_backfill_to_given_endpoints_only():
    hooks = [{"event": "order.created", "module": "main", "export": "go"}]
    world = make_world(url=URL, hooks=hooks)
    event = make_event(world)
    dispatch_process(event.dispatch.pk)
    new, _ = make_endpoint(world.extension, URL + "/new")
    created = messages_for_event(event, endpoints=[new])
    assert [m.endpoint_id for m in created] == [new.pk]
    assert messages_for_event(event, endpoints=[new]) == []  # already there
    assert Message.objects.filter(event=event).count() == 3


def test_events_accepted_signal_enqueues_the_fanout():
    world = make_world(url=URL)
    event = make_event(world)
    events_accepted.send(sender=Event, dispatch_ids=[event.dispatch.pk])  # tests run tasks inline
    assert Message.objects.filter(event=event).count() == 1


def test_sweep_fans_out_rows_whose_task_was_lost():
    world = make_world(url=URL)
    event = make_event(world)
    fresh = make_event(world)
    EventDispatch.objects.filter(pk=event.dispatch.pk).update(created_at=clock.now() - dt.timedelta(minutes=1))
    with mock.patch("apps.webhooks.tasks.deliver_due.delay") as kick:
        result = tasks.sweep()
    assert result["dispatches"] == 1
    assert Message.objects.filter(event=event).count() == 1
    assert not Message.objects.filter(event=fresh).exists()  # within the grace period: its task may still come
    assert kick.called  # a message is due


def test_uninstall_cleaner_cancels_pending_and_unlinks_history():
    world = make_world(url=URL)
    for _ in range(3):
        dispatch_process(make_event(world).dispatch.pk)
    Message.objects.filter(pk=Message.objects.first().pk).update(status=MessageStatus.SUCCEEDED)
    result = installation_deliveries(world.installation.pk)
    assert result["removed"] == {"pending_deliveries": 2, "delivery_records": 1}
    assert result["remaining"] == {"pending_deliveries": 0, "delivery_records": 0}
    assert Message.objects.filter(status=MessageStatus.CANCELLED).count() == 2
    assert set(Message.objects.values_list("body", flat=True)) == {"{}"}


@pytest.mark.django_db(transaction=True)
def test_ingested_event_reaches_the_endpoint_signed(settings):
    """End to end: POST /api/v1/events → outbox → events_accepted → fan-out → delivery."""
    from standardwebhooks.webhooks import Webhook

    from apps.events.catalog_sync import sync_catalog
    from tests.conftest import ApiClient, issue_token
    from tests.webhooks.engine_support import Receiver

    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    settings.PLAZA_WEBHOOK_RATE_LIMIT = 0
    sync_catalog()
    receiver = Receiver()
    try:
        world = make_world(url=receiver.url)
        api = ApiClient(issue_token(world.customer, role="developer", scopes=["events:write"]))
        payload = {
            "order_id": "ord_1",
            "customer_id": "cus_42",
            "currency": "EUR",
            "total": "59.90",
            "line_items": [{"sku": "TEE", "quantity": 2, "unit_price": "29.95"}],
            "created_at": "2026-11-01T09:30:00Z",
        }
        res = api.call("POST", "events", {"type": "order.created", "payload": payload})
        assert res.status_code in (200, 201, 202), res.content
        [seen] = receiver.requests
        body = Webhook(world.secret).verify(seen.body, seen.headers)
        assert body["type"] == "order.created" and body["data"]["order_id"] == "ord_1"
        assert body["tenant_id"] == world.customer.pk and body["installation_id"] == world.installation.pk
        message = Message.objects.get(pk=seen.headers["webhook-id"])
        assert message.status == MessageStatus.SUCCEEDED
    finally:
        receiver.close()


# --- events emitted by sandbox hooks ----------------------------------------------------------------
EMITTING = Result("ok", emitted=[{"type": "order.created", "payload": {"order_id": "o-emitted"}}])


def _fan_out_pending() -> int:
    created = 0
    for dispatch_id in EventDispatch.objects.filter(status=DispatchStatus.PENDING).values_list("pk", flat=True):
        created += dispatch_process(dispatch_id)
    return created


def test_successful_hook_emits_its_events_into_the_tenant_once():
    # given a hook that emits an event
    world = make_world(hooks=[{"event": "order.created", "module": "main", "export": "go"}])
    event = make_event(world)
    dispatch_process(event.dispatch.pk)
    message = Message.objects.get(event=event)
    # when it runs, and then runs again (a worker died before recording the first run)
    with mock.patch("apps.installs.services.runtime.installation_invoke", return_value=EMITTING):
        report = delivery.deliver_batch()
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.PENDING, next_attempt_at=clock.now())
        delivery.deliver_batch()
    # then the emitted event was stored once, from the installation, in its tenant
    assert report.succeeded == 1
    [emitted] = Event.objects.filter(source="extension")
    assert emitted.org_id == world.customer.pk and emitted.source_id == world.installation.pk
    assert emitted.payload == {"order_id": "o-emitted"}
    assert EventDispatch.objects.filter(event=emitted, status=DispatchStatus.PENDING).exists()
    assert Attempt.objects.filter(message=message).first().response_excerpt.startswith("Emitted 1 event(s): 1 accepted")


def test_refused_emitted_events_do_not_fail_the_run():
    world = make_world(hooks=[{"event": "order.created", "module": "main", "export": "go"}])
    dispatch_process(make_event(world).dispatch.pk)
    invalid = Result("ok", emitted=[{"type": "order.created", "payload": {"total": 1}}])  # order_id missing
    with mock.patch("apps.installs.services.runtime.installation_invoke", return_value=invalid):
        report = delivery.deliver_batch()
    assert report.succeeded == 1
    assert not Event.objects.filter(source="extension").exists()
    assert "1 refused" in Attempt.objects.get().response_excerpt


def test_emitted_events_that_cannot_be_stored_fail_the_attempt_for_a_retry():
    world = make_world(hooks=[{"event": "order.created", "module": "main", "export": "go"}])
    dispatch_process(make_event(world).dispatch.pk)
    with (
        mock.patch("apps.installs.services.runtime.installation_invoke", return_value=EMITTING),
        mock.patch("apps.events.ingest.events_emit", side_effect=RuntimeError("database gone")),
    ):
        report = delivery.deliver_batch()
    assert report.retried == 1
    assert Attempt.objects.get().error_class == "hook_emit_error"


def test_an_emitted_event_never_runs_the_emitting_installations_hooks():
    world = make_world(url=URL, hooks=[{"event": "order.created", "module": "main", "export": "go"}])
    dispatch_process(make_event(world).dispatch.pk)
    with mock.patch("apps.installs.services.runtime.installation_invoke", return_value=EMITTING) as invoke:
        delivery.deliver_batch()
        assert _fan_out_pending() == 1  # the emitted event: to the endpoint only
        delivery.deliver_batch()
    emitted = Event.objects.get(source="extension")
    [message] = Message.objects.filter(event=emitted)
    assert message.kind == MessageKind.WEBHOOK and message.endpoint_id == world.endpoint.pk
    assert invoke.call_count == 1


def test_hooks_answering_each_other_stop_at_the_chain_limit(settings):
    # given two extensions in one tenant, each emitting order.created when it sees order.created
    settings.PLAZA_WEBHOOK_HOOK_CHAIN_MAX = 2
    hooks = [{"event": "order.created", "module": "main", "export": "go"}]
    world = make_world(hooks=hooks)
    other_extension, other_version = make_extension(world.publisher, scopes=["events:read:order.created"], hooks=hooks)
    Installation.objects.create(
        org=world.customer,
        extension=other_extension,
        version=other_version,
        granted_scopes=["events:read:order.created"],
    )
    make_event(world)
    # when everything is fanned out and run until nothing is left
    with mock.patch("apps.installs.services.runtime.installation_invoke", return_value=EMITTING):
        for _ in range(20):
            created = _fan_out_pending()
            ran = delivery.deliver_batch().sent
            if not created and not ran:
                break
        else:
            pytest.fail("the hooks kept triggering each other")
    # then each round emitted one event per extension, and hooks ran for depths 0, 1 and 2 only
    assert Event.objects.filter(source="extension").count() == 2 * 3
    assert Message.objects.filter(kind=MessageKind.HOOK).count() == 2 + 2 + 2
    assert not Message.objects.filter(status=MessageStatus.PENDING).exists()
