"""Delivery against a real local HTTP receiver: signing, outcomes, schedule, DLQ, attempts."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import threading
import time

import pytest
from django.core import mail
from django.db import OperationalError
from standardwebhooks.webhooks import Webhook

from apps.core import clock
from apps.webhooks.models import Attempt, AttemptOutcome, EndpointStatus, Message, MessageStatus
from apps.webhooks.services import delivery
from tests.webhooks.engine_support import Receiver, bulk_messages, deliver_until_idle, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _engine_settings(settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    settings.PLAZA_WEBHOOK_RETRY_SCHEDULE = [0, 0.05, 0.05, 0.05]
    settings.PLAZA_WEBHOOK_RETRY_JITTER = 0.1
    settings.PLAZA_WEBHOOK_TIMEOUT = 2
    settings.PLAZA_WEBHOOK_CONNECT_TIMEOUT = 2
    settings.PLAZA_WEBHOOK_RATE_LIMIT = 0
    settings.PLAZA_WEBHOOK_BREAKER_THRESHOLD = 1000


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def one_message(receiver) -> tuple:
    world = make_world(url=receiver.url)
    [msg_id] = bulk_messages(world, 1)
    return world, Message.objects.get(pk=msg_id)


def test_delivered_message_is_signed_and_recorded(receiver):
    # given
    world, message = one_message(receiver)
    # when
    report = delivery.deliver_batch()
    # then
    assert report.succeeded == 1
    [seen] = receiver.requests
    assert Webhook(world.secret).verify(seen.body, seen.headers) == {"type": "order.created", "data": {"n": 0}}
    assert seen.headers["webhook-id"] == message.pk
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["User-Agent"].startswith("Plaza-Webhooks/")
    message.refresh_from_db()
    assert message.status == MessageStatus.SUCCEEDED and message.attempts == 1 and message.delivered_at
    assert message.lease_until is None and message.lease_token == ""
    [attempt] = Attempt.objects.filter(message=message)
    assert attempt.status_code == 204 and attempt.outcome == AttemptOutcome.SUCCEEDED
    assert attempt.request_headers["webhook-id"] == message.pk
    assert attempt.request_headers["webhook-signature"] == "v1,…"  # the signature itself is not kept
    assert attempt.url == receiver.url


def test_failure_is_retried_with_the_same_id_then_delivered(receiver):
    receiver.behave = lambda seen, n: (500, {}, b"boom") if n == 1 else (200, {}, b"ok")
    _, message = one_message(receiver)
    before = clock.now()
    delivery.deliver_batch()
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING and message.attempts == 1
    assert message.last_status_code == 500 and message.last_error == "HTTP 500"
    delay = (message.next_attempt_at - before).total_seconds()
    assert 0.04 <= delay <= 0.2
    deliver_until_idle(timeout=10)
    message.refresh_from_db()
    assert message.status == MessageStatus.SUCCEEDED and message.attempts == 2
    assert receiver.ids() == [message.pk, message.pk]
    first, second = Attempt.objects.filter(message=message).order_by("number")
    assert (first.outcome, first.status_code, first.response_excerpt) == (AttemptOutcome.RETRY, 500, "boom")
    assert second.outcome == AttemptOutcome.SUCCEEDED


def test_exhausted_schedule_puts_the_message_in_the_dead_letter_queue(receiver):
    receiver.behave = lambda seen, n: (502, {}, b"")
    _, message = one_message(receiver)
    deliver_until_idle(timeout=10)
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.failed_at
    assert message.attempts == 4 == len(receiver.requests)
    outcomes = list(Attempt.objects.filter(message=message).order_by("number").values_list("outcome", flat=True))
    assert outcomes == ["retry", "retry", "retry", "failed"]


def test_410_disables_the_endpoint_and_tells_the_publisher(receiver, django_capture_on_commit_callbacks):
    receiver.behave = lambda seen, n: (410, {}, b"gone")
    world, message = one_message(receiver)
    more = bulk_messages(world, 2)
    with django_capture_on_commit_callbacks(execute=True):
        delivery.deliver_batch(limit=1)
    message.refresh_from_db()
    world.endpoint.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert Attempt.objects.get(message=message).outcome == AttemptOutcome.GONE
    assert world.endpoint.status == EndpointStatus.DISABLED and "410" in world.endpoint.disabled_reason
    [notice] = mail.outbox
    assert notice.to == [world.publisher_email] and "disabled" in notice.subject
    # the endpoint's other messages are not sent: they fail with the reason (replayable later)
    delivery.deliver_batch()
    assert len(receiver.requests) == 1
    assert set(Message.objects.filter(pk__in=more).values_list("status", flat=True)) == {MessageStatus.FAILED}


@pytest.mark.parametrize(("status", "retry_after", "low", "high"), [(429, "30", 30, 31), (503, "99999", 120, 121)])
def test_retry_after_is_honoured_and_bounded(receiver, settings, status, retry_after, low, high):
    settings.PLAZA_WEBHOOK_RETRY_AFTER_MAX_SECONDS = 120
    receiver.behave = lambda seen, n: (status, {"Retry-After": retry_after}, b"")
    _, message = one_message(receiver)
    before = clock.now()
    delivery.deliver_batch()
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING
    assert low <= (message.next_attempt_at - before).total_seconds() <= high


def test_retry_after_as_http_date():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert delivery.parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60
    assert delivery.parse_retry_after("soon", now) is None


def test_redirects_are_refused(receiver):
    receiver.behave = lambda seen, n: (302, {"Location": receiver.url + "/elsewhere"}, b"")
    _, message = one_message(receiver)
    delivery.deliver_batch()
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING and message.last_status_code == 302
    assert "redirect" in message.last_error
    assert len(receiver.requests) == 1  # the Location was never followed


def test_slow_receiver_times_out(receiver, settings):
    settings.PLAZA_WEBHOOK_TIMEOUT = 1

    async def slow(seen, n):
        await asyncio.sleep(3)
        return (200, {}, b"")

    receiver.behave = slow
    _, message = one_message(receiver)
    report = delivery.deliver_batch()
    assert report.retried == 1
    attempt = Attempt.objects.get(message=message)
    assert attempt.error_class == "timeout" and attempt.status_code is None
    assert 900 <= attempt.duration_ms < 2500


def test_big_response_body_is_capped(receiver):
    def behave(seen, n):
        return (200, {}, b"x" * (5 * 1024 * 1024))

    receiver.behave = behave
    _, message = one_message(receiver)
    delivery.deliver_batch()
    attempt = Attempt.objects.get(message=message)
    assert attempt.outcome == AttemptOutcome.SUCCEEDED
    assert len(attempt.response_excerpt.encode()) == 1024


def test_abort_message_header_stops_retries(receiver):
    receiver.behave = lambda seen, n: (400, {"webhook-delivery": "abort-message"}, b"")
    _, message = one_message(receiver)
    delivery.deliver_batch()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.attempts == 1
    assert "abort-message" in message.last_error


def test_retry_delays_follow_the_published_schedule_with_jitter(settings):
    settings.PLAZA_WEBHOOK_RETRY_SCHEDULE = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    settings.PLAZA_WEBHOOK_RETRY_JITTER = 0.1
    rng = random.Random(7)
    for attempts_made, base in enumerate([0, 5, 300, 1800, 7200, 18000, 36000, 36000]):
        samples = [delivery.retry_delay(attempts_made, rng=rng) for _ in range(50)]
        assert all(base * 0.9 <= s <= base * 1.1 for s in samples)
        if base:
            assert len(set(samples)) > 40  # jittered, not one value
    assert delivery.retry_delay(8) is None


def test_unreachable_endpoint_is_a_connect_error(settings):
    world = make_world(url="http://127.0.0.1:9/closed")
    [msg_id] = bulk_messages(world, 1)
    delivery.deliver_batch()
    attempt = Attempt.objects.get(message_id=msg_id)
    assert attempt.error_class == "connect" and attempt.outcome == AttemptOutcome.RETRY


def test_messages_of_an_uninstalled_installation_are_cancelled(receiver):
    world, message = one_message(receiver)
    world.installation.status = "uninstalled"
    world.installation.save(update_fields=["status"])
    report = delivery.deliver_batch()
    message.refresh_from_db()
    assert report.cancelled == 1 and message.status == MessageStatus.CANCELLED
    assert receiver.requests == []


def test_a_worker_whose_lease_was_taken_over_does_not_overwrite_the_outcome(receiver, settings):
    world, message = one_message(receiver)
    token, [claimed] = delivery.messages_claim()
    # the lease expires and another worker claims and delivers the message
    Message.objects.filter(pk=message.pk).update(lease_until=clock.now() - dt.timedelta(seconds=1))
    assert delivery.deliver_batch().succeeded == 1
    # the first worker's late result is not written over the second's
    report = delivery.BatchReport()
    delivery._record(
        token, [(claimed, delivery.transport.Outcome(status_code=500), {})], [], {}, clock.now(), report, trigger=""
    )
    assert report.lost_leases == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SUCCEEDED


def test_rotation_overlap_sends_both_signatures(receiver):
    from apps.core import crypto
    from apps.webhooks import signing
    from apps.webhooks.models import EndpointSecret

    world, message = one_message(receiver)
    new = signing.secret_generate()
    EndpointSecret.objects.filter(endpoint=world.endpoint).update(expires_at=clock.now() + dt.timedelta(hours=24))
    EndpointSecret.objects.create(endpoint=world.endpoint, secret_encrypted=crypto.encrypt(new), last4=new[-4:])
    delivery.deliver_batch()
    [seen] = receiver.requests
    assert len(seen.headers["webhook-signature"].split(" ")) == 2
    Webhook(world.secret).verify(seen.body, seen.headers)
    Webhook(new).verify(seen.body, seen.headers)


def test_expired_secret_is_no_longer_used(receiver):
    world, message = one_message(receiver)
    from apps.webhooks.models import EndpointSecret

    EndpointSecret.objects.filter(endpoint=world.endpoint).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    report = delivery.deliver_batch()
    assert report.retried == 1 and receiver.requests == []
    assert Attempt.objects.get(message=message).error_class == "no_secret"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claimers_never_take_the_same_message(receiver):
    world = make_world(url=receiver.url)
    ids = set(bulk_messages(world, 300))
    taken: list[list[str]] = [[], []]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def claimer(slot: int):
        from django.db import connection

        try:
            barrier.wait()
            while True:
                try:
                    _, batch = delivery.messages_claim(limit=7)
                except OperationalError as exc:
                    # The in-memory test database is SQLite's shared cache, which answers "table is
                    # locked" at once instead of waiting (a file database waits): try again.
                    if "locked" not in str(exc):
                        raise
                    time.sleep(0.01)
                    continue
                if not batch:
                    break
                taken[slot].extend(m.pk for m in batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert not set(taken[0]) & set(taken[1])
    assert len(taken[0]) + len(taken[1]) == len(ids)
    assert set(taken[0]) | set(taken[1]) == ids


def test_replayed_message_attempt_is_marked_replay(receiver):
    _, message = one_message(receiver)
    Message.objects.filter(pk=message.pk).update(attempts=8, last_error="Replay requested (rpl_1)")
    delivery.deliver_batch()
    attempt = Attempt.objects.get(message=message)
    assert (attempt.number, attempt.trigger, attempt.outcome) == (9, "replay", AttemptOutcome.SUCCEEDED)


def test_replay_of_an_exhausted_message_gets_one_more_try(receiver):
    receiver.behave = lambda seen, n: (500, {}, b"")
    _, message = one_message(receiver)
    Message.objects.filter(pk=message.pk).update(attempts=4)  # the whole (shrunk) schedule used
    message.refresh_from_db()
    delivery.message_enqueue(message=message)
    delivery.deliver_batch()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and len(receiver.requests) == 1
    # numbered after the last attempt, never repeating one
    assert message.attempts == 5
    assert list(Attempt.objects.filter(message=message).values_list("number", flat=True)) == [5]


def test_deliver_due_task_sends_every_batch_pipelined(receiver, settings):
    from apps.webhooks import tasks

    settings.PLAZA_WEBHOOK_BATCH_SIZE = 7
    world = make_world(url=receiver.url)
    ids = bulk_messages(world, 30)
    result = tasks.deliver_due()
    assert result["claimed"] == 30 and result["succeeded"] == 30
    assert sorted(receiver.ids()) == sorted(ids)
    assert Message.objects.filter(pk__in=ids, status=MessageStatus.SUCCEEDED).count() == 30


def test_deliver_due_task_looks_again_shortly_for_a_near_retry(receiver, settings):
    from apps.core.executor import executor
    from apps.webhooks import tasks

    settings.PLAZA_WEBHOOK_RETRY_SCHEDULE = [0, 5]
    settings.PLAZA_WEBHOOK_RETRY_JITTER = 0
    receiver.behave = lambda seen, n: (500, {}, b"")
    one_message(receiver)
    tasks.deliver_due()
    [successor] = executor.pending()  # a short countdown, not a long broker delay
    assert successor.task_name == "webhooks.deliver_due"
    assert 3 <= (successor.due - clock.now()).total_seconds() <= 6


def test_a_response_holding_nul_characters_is_still_recorded(receiver):
    receiver.behave = lambda seen, n: (200, {}, b"ok\x00\x00done")
    _, message = one_message(receiver)
    delivery.deliver_batch()
    message.refresh_from_db()
    assert message.status == MessageStatus.SUCCEEDED
    assert Attempt.objects.get(message=message).response_excerpt == "ok\ufffd\ufffddone"
