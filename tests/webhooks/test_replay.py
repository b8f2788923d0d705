"""Replay and backfill: one message (same id), failed messages since a time, backfill of events to
an endpoint — previews that equal what is sent, batches, rate limits, refusals, audit."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.audit.models import AuditEvent
from apps.core import clock
from apps.core.errors import Conflict, RateLimited, ValidationFailed
from apps.webhooks.models import Endpoint, EndpointStatus, Message, MessageStatus, ReplayJob, ReplayStatus
from apps.webhooks.services import endpoints as endpoint_services
from apps.webhooks.services import replay as replays
from tests.webhooks import test_endpoints_fixtures as fx
from tests.webhooks.test_endpoints_fixtures import event, failed, fan_out

# fixtures
event_catalog = fx.event_catalog
setup = fx.setup
vendor = fx.vendor


@pytest.fixture(autouse=True)
def no_sending(monkeypatch):
    """These tests look at the queue, not at sending: the engine's kick does nothing here."""
    kicks = []
    monkeypatch.setattr("apps.webhooks.services.delivery.messages_kick", lambda: kicks.append(1))
    return kicks


def dead_letters(setup, n: int, *, ago: dt.timedelta = dt.timedelta(hours=1)) -> list[Message]:
    out = []
    for _ in range(n):
        [message] = fan_out(event(setup.customer.org, at=clock.now() - ago))
        Message.objects.filter(pk=message.pk).update(created_at=clock.now() - ago)
        out.append(failed(message))
    return out


# --- one message ---------------------------------------------------------------------------------
def test_resending_a_message_keeps_its_id_and_body(setup, no_sending):
    [message] = dead_letters(setup, 1)
    job = replays.replay_message(principal=None, endpoint=setup.endpoint, message=message)
    again = Message.objects.get(pk=message.pk)
    assert Message.objects.filter(endpoint=setup.endpoint).count() == 1
    assert again.status == MessageStatus.PENDING and again.body == message.body
    assert again.next_attempt_at <= clock.now() and again.failed_at is None
    assert again.last_error == f"{replays.REPLAY_MARK} ({job.pk})"
    # its history stays: the next attempt is numbered after the last
    assert again.attempts == message.attempts
    assert (job.kind, job.status, job.preview_count, job.processed_count) == ("message", "done", 1, 1)
    assert AuditEvent.objects.filter(action="webhook.replay_requested", target_id=job.pk).exists()
    assert no_sending


def test_a_delivered_message_may_be_resent_too(setup):
    [message] = fan_out(event(setup.customer.org))
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.SUCCEEDED, delivered_at=clock.now())
    replays.replay_message(principal=None, endpoint=setup.endpoint, message=message)
    assert Message.objects.get(pk=message.pk).status == MessageStatus.PENDING


def test_a_message_still_in_the_queue_is_not_replayed(setup):
    [message] = fan_out(event(setup.customer.org))
    with pytest.raises(Conflict) as exc:
        replays.replay_message(principal=None, endpoint=setup.endpoint, message=message)
    assert exc.value.code == "message_pending"


def test_nothing_is_replayed_to_a_disabled_endpoint(setup):
    [message] = dead_letters(setup, 1)
    endpoint_services.endpoint_disable(principal=None, endpoint=setup.endpoint)
    setup.endpoint.refresh_from_db()
    with pytest.raises(Conflict) as exc:
        replays.replay_message(principal=None, endpoint=setup.endpoint, message=message)
    assert exc.value.code == "endpoint_disabled"
    with pytest.raises(Conflict):
        replays.replay_create(
            principal=None, endpoint=setup.endpoint, kind="failed_since", since=clock.now() - dt.timedelta(days=1)
        )


def test_a_message_of_another_endpoint_is_refused(setup):
    [message] = dead_letters(setup, 1)
    other, _ = endpoint_services.endpoint_create(principal=None, extension=setup.extension, url="https://b.example/")
    with pytest.raises(Conflict):
        replays.replay_message(principal=None, endpoint=other, message=message)


def test_a_cancelled_message_is_not_replayed(setup):
    [message] = dead_letters(setup, 1)
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.CANCELLED)
    with pytest.raises(Conflict) as exc:
        replays.replay_message(principal=None, endpoint=setup.endpoint, message=message)
    assert exc.value.code == "message_cancelled"


def uninstall(setup) -> None:
    """What uninstalling leaves: the installation gone, its messages unlinked and emptied."""
    type(setup.installation).objects.filter(pk=setup.installation.pk).update(status="uninstalled")
    Message.objects.filter(installation_id=setup.installation.pk).update(installation=None, body="{}")


@pytest.mark.parametrize("state", ["uninstalled", "blocked"])
def test_messages_of_an_installation_that_is_no_longer_active_are_not_replayed(setup, state):
    # given a dead letter, then the customer uninstalls (or an org rule blocks) the extension
    [message] = dead_letters(setup, 1)
    if state == "uninstalled":
        uninstall(setup)
    else:
        type(setup.installation).objects.filter(pk=setup.installation.pk).update(status="blocked")
    message.refresh_from_db()
    with pytest.raises(Conflict) as exc:
        replays.replay_message(principal=None, endpoint=setup.endpoint, message=message)
    assert exc.value.code == "installation_inactive"
    since = clock.now() - dt.timedelta(days=1)
    assert replays.replay_preview(endpoint=setup.endpoint, kind="failed_since", since=since)["count"] == 0
    with pytest.raises(Conflict) as exc:
        replays.replay_create(principal=None, endpoint=setup.endpoint, kind="failed_since", since=since)
    assert exc.value.code == "replay_empty"
    assert Message.objects.get(pk=message.pk).status == MessageStatus.FAILED


def test_a_failed_test_message_may_be_replayed(setup):
    message = endpoint_services.endpoint_test_send(principal=None, endpoint=setup.endpoint)
    failed(message)
    replays.replay_message(principal=None, endpoint=setup.endpoint, message=message)
    assert Message.objects.get(pk=message.pk).status == MessageStatus.PENDING


# --- failed since --------------------------------------------------------------------------------
def test_failed_since_previews_then_resends_exactly_those(setup, django_capture_on_commit_callbacks):
    old = dead_letters(setup, 1, ago=dt.timedelta(days=3))
    recent = dead_letters(setup, 2)
    fan_out(event(setup.customer.org))  # pending: not part of it
    since = clock.now() - dt.timedelta(days=1)
    preview = replays.replay_preview(endpoint=setup.endpoint, kind="failed_since", since=since)
    assert preview["count"] == 2
    assert ReplayJob.objects.count() == 0  # a preview writes nothing
    with django_capture_on_commit_callbacks(execute=True):
        job = replays.replay_create(principal=None, endpoint=setup.endpoint, kind="failed_since", since=since)
    job.refresh_from_db()
    assert (job.status, job.preview_count, job.processed_count) == (ReplayStatus.DONE, 2, 2)
    statuses = dict(Message.objects.filter(endpoint=setup.endpoint).values_list("pk", "status"))
    assert all(statuses[m.pk] == MessageStatus.PENDING for m in recent)
    assert statuses[old[0].pk] == MessageStatus.FAILED


def test_a_job_works_in_batches_and_resumes(setup, settings):
    settings.PLAZA_WEBHOOK_REPLAY_BATCH = 2
    dead_letters(setup, 5)
    job = replays.replay_create(
        principal=None, endpoint=setup.endpoint, kind="failed_since", since=clock.now() - dt.timedelta(days=1)
    )
    assert replays.replay_job_step(job.pk) is True
    job.refresh_from_db()
    assert (job.status, job.processed_count) == (ReplayStatus.RUNNING, 2)
    replays.replay_job_process(job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed_count) == (ReplayStatus.DONE, 5)
    assert replays.replay_job_step(job.pk) is False  # a finished job does nothing


def test_a_job_stops_when_the_endpoint_is_disabled_meanwhile(setup):
    dead_letters(setup, 1)
    job = replays.replay_create(
        principal=None, endpoint=setup.endpoint, kind="failed_since", since=clock.now() - dt.timedelta(days=1)
    )
    Endpoint.objects.filter(pk=setup.endpoint.pk).update(status=EndpointStatus.DISABLED)
    replays.replay_job_process(job.pk)
    job.refresh_from_db()
    assert job.status == ReplayStatus.FAILED and "disabled" in job.error


def test_the_sweep_restarts_jobs_whose_task_was_lost(setup):
    dead_letters(setup, 1)
    job = replays.replay_create(
        principal=None, endpoint=setup.endpoint, kind="failed_since", since=clock.now() - dt.timedelta(days=1)
    )
    ReplayJob.objects.filter(pk=job.pk).update(created_at=clock.now() - dt.timedelta(hours=1))
    assert replays.replay_sweep() == 1
    job.refresh_from_db()
    assert job.status == ReplayStatus.DONE


# --- backfill ------------------------------------------------------------------------------------
def test_backfill_preview_equals_what_is_created_and_skips_what_was_sent(setup, globex):
    start = clock.now() - dt.timedelta(hours=2)
    events = [event(setup.customer.org, at=clock.now() - dt.timedelta(hours=1)) for _ in range(3)]
    for e in events[:2]:
        fan_out(e)  # sent to the first endpoint
    event(globex.org, at=clock.now() - dt.timedelta(hours=1))  # no installation there
    event(setup.customer.org, at=clock.now() - dt.timedelta(days=2))  # outside the range
    new, _ = endpoint_services.endpoint_create(principal=None, extension=setup.extension, url="https://new.example/")
    preview = replays.replay_preview(endpoint=new, kind="backfill", since=start, event_types=["order.created"])
    assert preview["count"] == 3 and preview["event_types"] == ["order.created"]
    job = replays.replay_create(principal=None, endpoint=new, kind="backfill", since=start)
    replays.replay_job_process(job.pk)
    job.refresh_from_db()
    made = Message.objects.filter(endpoint=new)
    assert job.processed_count == made.count() == job.preview_count == 3
    assert {m.event_id for m in made} == {e.pk for e in events}
    assert all(m.installation_id == setup.installation.pk for m in made)
    # again: everything was sent, nothing to do
    assert replays.replay_preview(endpoint=new, kind="backfill", since=start)["count"] == 0
    with pytest.raises(Conflict) as exc:
        replays.replay_create(principal=None, endpoint=new, kind="backfill", since=start)
    assert exc.value.code == "replay_empty"
    # the first endpoint only lacks the third event
    assert replays.replay_preview(endpoint=setup.endpoint, kind="backfill", since=start)["count"] == 1


def test_backfill_never_sends_what_the_tenant_sent_before_the_installation(setup, django_capture_on_commit_callbacks):
    # given an event from before the installation existed and one after
    installed_at = clock.now() - dt.timedelta(hours=2)
    type(setup.installation).objects.filter(pk=setup.installation.pk).update(installed_at=installed_at)
    before = event(setup.customer.org, at=installed_at - dt.timedelta(minutes=1))
    after = event(setup.customer.org, at=installed_at + dt.timedelta(minutes=1))
    new, _ = endpoint_services.endpoint_create(principal=None, extension=setup.extension, url="https://new.example/")
    since = clock.now() - dt.timedelta(days=1)
    # when the new endpoint is backfilled
    preview = replays.replay_preview(endpoint=new, kind="backfill", since=since, event_types=["order.created"])
    with django_capture_on_commit_callbacks(execute=True):
        job = replays.replay_create(
            principal=None, endpoint=new, kind="backfill", since=since, event_types=["order.created"]
        )
    # then only the event the installation could have received is sent
    sent = list(Message.objects.filter(endpoint=new).values_list("event_id", flat=True))
    assert sent == [after.pk] and before.pk not in sent
    job.refresh_from_db()
    assert preview["count"] == job.preview_count == job.processed_count == 1


def test_backfill_types_must_be_ones_the_endpoint_receives(setup):
    with pytest.raises(ValidationFailed):
        replays.replay_preview(
            endpoint=setup.endpoint,
            kind="backfill",
            since=clock.now() - dt.timedelta(hours=1),
            event_types=["customer.created"],
        )


def test_sandbox_endpoints_backfill_only_the_sandbox_tenant(setup):
    sandbox_endpoint, _ = endpoint_services.endpoint_create(
        principal=None, extension=setup.extension, url="https://sb.example/", environment="sandbox"
    )
    event(setup.customer.org, at=clock.now() - dt.timedelta(minutes=5))
    preview = replays.replay_preview(
        endpoint=sandbox_endpoint, kind="backfill", since=clock.now() - dt.timedelta(hours=1)
    )
    assert preview["count"] == 0


# --- limits and refusals -------------------------------------------------------------------------
def test_one_bulk_job_at_a_time_per_endpoint(setup):
    dead_letters(setup, 2)
    since = clock.now() - dt.timedelta(days=1)
    replays.replay_create(principal=None, endpoint=setup.endpoint, kind="failed_since", since=since)
    with pytest.raises(Conflict) as exc:
        replays.replay_create(principal=None, endpoint=setup.endpoint, kind="failed_since", since=since)
    assert exc.value.code == "replay_in_progress"


def test_a_job_sends_at_most_the_cap(setup, settings):
    settings.PLAZA_WEBHOOK_REPLAY_MAX_MESSAGES = 1
    dead_letters(setup, 2)
    with pytest.raises(Conflict) as exc:
        replays.replay_create(
            principal=None, endpoint=setup.endpoint, kind="failed_since", since=clock.now() - dt.timedelta(days=1)
        )
    assert exc.value.code == "replay_too_large" and "at most 1" in exc.value.message


def test_replays_of_an_endpoint_are_limited_per_hour(setup, settings):
    settings.PLAZA_WEBHOOK_REPLAY_HOURLY_MESSAGES = 2
    messages = dead_letters(setup, 3)
    replays.replay_message(principal=None, endpoint=setup.endpoint, message=messages[0])
    replays.replay_message(principal=None, endpoint=setup.endpoint, message=messages[1])
    with pytest.raises(RateLimited) as exc:
        replays.replay_message(principal=None, endpoint=setup.endpoint, message=messages[2])
    assert exc.value.code == "replay_rate_limited" and 0 < exc.value.retry_after <= 3600


@pytest.mark.parametrize(
    "since, until, code",
    [
        (None, None, "since_required"),
        ("2026-01-01", None, "since_required"),
        (dt.timedelta(hours=1), dt.timedelta(hours=2), None),  # since after until
        (dt.timedelta(days=-200), None, "range_too_long"),
    ],
)
def test_ranges_are_checked(setup, since, until, code):
    now = clock.now()
    if isinstance(since, dt.timedelta):
        since = now + since if since.days < 0 else now - since
    if isinstance(until, dt.timedelta):
        until = now - until
    with pytest.raises(ValidationFailed) as exc:
        replays.replay_preview(endpoint=setup.endpoint, kind="failed_since", since=since, until=until)
    if code:
        assert exc.value.code == code


def test_naive_times_are_read_as_utc_and_the_future_is_cut_to_now(setup):
    dead_letters(setup, 1)
    naive = (clock.now() - dt.timedelta(days=1)).replace(tzinfo=None)
    preview = replays.replay_preview(
        endpoint=setup.endpoint, kind="failed_since", since=naive, until=clock.now() + dt.timedelta(days=3)
    )
    assert preview["count"] == 1 and preview["until"] <= clock.now()


def test_an_unknown_kind_is_refused(setup):
    with pytest.raises(ValidationFailed):
        replays.replay_preview(endpoint=setup.endpoint, kind="everything", since=clock.now())
