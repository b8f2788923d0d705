"""Endpoint health: circuit breaker, rate limit, auto-disable with a notice, reset."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from apps.core import clock
from apps.webhooks.models import CircuitState, Endpoint, EndpointStatus, Message, MessageStatus
from apps.webhooks.services import delivery, health
from tests.webhooks.engine_support import Receiver, bulk_messages, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _engine_settings(settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    settings.PLAZA_WEBHOOK_RETRY_SCHEDULE = [0] * 20
    settings.PLAZA_WEBHOOK_BREAKER_THRESHOLD = 3
    settings.PLAZA_WEBHOOK_BREAKER_PAUSE_SECONDS = 60
    settings.PLAZA_WEBHOOK_RATE_LIMIT = 0


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def endpoint_of(world) -> Endpoint:
    return Endpoint.objects.get(pk=world.endpoint.pk)


def test_breaker_opens_after_consecutive_failures_and_reschedules(receiver):
    receiver.behave = lambda seen, n: (500, {}, b"")
    world = make_world(url=receiver.url)
    bulk_messages(world, 1)
    for _ in range(3):
        delivery.deliver_batch()
    endpoint = endpoint_of(world)
    assert endpoint.circuit_state == CircuitState.OPEN and endpoint.consecutive_failures == 3
    assert endpoint.circuit_retry_at > clock.now() + dt.timedelta(seconds=55)
    # while open, due messages wait (rescheduled, no attempt spent), never fail
    waiting = bulk_messages(world, 4)
    report = delivery.deliver_batch()
    assert report.rescheduled == 5 and report.sent == 0
    assert len(receiver.requests) == 3
    for message in Message.objects.filter(pk__in=waiting):
        assert message.status == MessageStatus.PENDING and message.attempts == 0
        assert message.next_attempt_at >= endpoint.circuit_retry_at


def open_breaker(world, *, retry_at):
    Endpoint.objects.filter(pk=world.endpoint.pk).update(
        circuit_state=CircuitState.OPEN,
        consecutive_failures=3,
        circuit_opened_at=clock.now(),
        circuit_retry_at=retry_at,
    )


def test_half_open_sends_one_probe_and_success_closes(receiver):
    world = make_world(url=receiver.url)
    open_breaker(world, retry_at=clock.now() - dt.timedelta(seconds=1))
    bulk_messages(world, 5)
    report = delivery.deliver_batch()
    assert report.sent == 1 and report.succeeded == 1 and report.rescheduled == 4
    endpoint = endpoint_of(world)
    assert endpoint.circuit_state == CircuitState.CLOSED and endpoint.consecutive_failures == 0
    assert endpoint.failing_since is None


def test_failed_probe_opens_the_breaker_again(receiver):
    receiver.behave = lambda seen, n: (500, {}, b"")
    world = make_world(url=receiver.url)
    open_breaker(world, retry_at=clock.now() - dt.timedelta(seconds=1))
    bulk_messages(world, 3)
    report = delivery.deliver_batch()
    assert report.sent == 1 and report.rescheduled == 2
    endpoint = endpoint_of(world)
    assert endpoint.circuit_state == CircuitState.OPEN
    assert endpoint.circuit_retry_at > clock.now() + dt.timedelta(seconds=55)


def test_only_one_worker_wins_the_probe(receiver):
    world = make_world(url=receiver.url)
    open_breaker(world, retry_at=clock.now() - dt.timedelta(seconds=1))
    endpoint = endpoint_of(world)
    stale_copy = endpoint_of(world)
    now = clock.now()
    assert health.endpoint_admit(endpoint, 5, now).allowed == 1
    second = health.endpoint_admit(stale_copy, 5, now)  # another worker, same stale view
    assert second.allowed == 0 and second.retry_at > now
    # while the probe is in flight (half-open, deadline ahead) nobody else sends
    assert health.endpoint_admit(endpoint_of(world), 5, now).allowed == 0


def test_a_lost_probe_is_taken_over_after_its_deadline(receiver):
    world = make_world(url=receiver.url)
    Endpoint.objects.filter(pk=world.endpoint.pk).update(
        circuit_state=CircuitState.HALF_OPEN, circuit_retry_at=clock.now() - dt.timedelta(seconds=1)
    )
    assert health.endpoint_admit(endpoint_of(world), 5, clock.now()).allowed == 1


def test_429_does_not_open_the_breaker(receiver):
    receiver.behave = lambda seen, n: (429, {"Retry-After": "0"}, b"")
    world = make_world(url=receiver.url)
    bulk_messages(world, 5)
    delivery.deliver_batch()
    assert endpoint_of(world).circuit_state == CircuitState.CLOSED


def test_rate_limit_per_endpoint(receiver):
    world = make_world(url=receiver.url)
    Endpoint.objects.filter(pk=world.endpoint.pk).update(rate_limit_per_second=5)
    ids = bulk_messages(world, 20)
    before = clock.now()
    report = delivery.deliver_batch()
    assert report.sent == 5 and report.rescheduled == 15
    later = Message.objects.filter(pk__in=ids, status=MessageStatus.PENDING)
    assert later.count() == 15
    assert all(m.next_attempt_at >= before + dt.timedelta(seconds=1) for m in later)
    assert all(m.attempts == 0 for m in later)


def test_rate_limit_is_shared_between_workers(settings):
    world = make_world(url="http://127.0.0.1:9/")
    endpoint = endpoint_of(world)
    endpoint.rate_limit_per_second = 10
    now = clock.now()
    assert health.rate_take(endpoint, 7, now) == 7
    assert health.rate_take(endpoint, 7, now) == 3  # the same second's allowance, seen through the cache
    assert health.rate_take(endpoint, 7, now) == 0
    assert health.rate_take(endpoint, 7, now + dt.timedelta(seconds=1)) == 7


def test_endpoint_failing_for_days_is_disabled_with_a_notice(receiver, django_capture_on_commit_callbacks):
    receiver.behave = lambda seen, n: (500, {}, b"")
    world = make_world(url=receiver.url)
    Endpoint.objects.filter(pk=world.endpoint.pk).update(
        failing_since=clock.now() - dt.timedelta(days=5, minutes=1), consecutive_failures=1
    )
    bulk_messages(world, 1)
    with django_capture_on_commit_callbacks(execute=True):
        delivery.deliver_batch()
    endpoint = endpoint_of(world)
    assert endpoint.status == EndpointStatus.DISABLED and "5 days" in endpoint.disabled_reason
    [notice] = mail.outbox
    assert notice.to == [world.publisher_email]
    assert endpoint.url in notice.body and "5 days" in notice.body


def test_sweep_disables_stale_failing_endpoints(receiver, django_capture_on_commit_callbacks):
    world = make_world(url=receiver.url)
    Endpoint.objects.filter(pk=world.endpoint.pk).update(failing_since=clock.now() - dt.timedelta(days=6))
    with django_capture_on_commit_callbacks(execute=True):
        assert health.endpoints_stale_disable() == 1
    assert endpoint_of(world).status == EndpointStatus.DISABLED
    assert len(mail.outbox) == 1


def test_success_ends_the_failure_streak(receiver):
    world = make_world(url=receiver.url)
    Endpoint.objects.filter(pk=world.endpoint.pk).update(failing_since=clock.now(), consecutive_failures=2)
    bulk_messages(world, 1)
    delivery.deliver_batch()
    endpoint = endpoint_of(world)
    assert endpoint.failing_since is None and endpoint.consecutive_failures == 0


def test_health_reset_closes_the_breaker():
    world = make_world(url="http://127.0.0.1:9/")
    open_breaker(world, retry_at=clock.now() + dt.timedelta(hours=1))
    endpoint = endpoint_of(world)
    health.endpoint_health_reset(endpoint)
    assert endpoint.circuit_state == CircuitState.CLOSED
    fresh = endpoint_of(world)
    assert (fresh.circuit_state, fresh.consecutive_failures, fresh.circuit_retry_at) == (CircuitState.CLOSED, 0, None)
