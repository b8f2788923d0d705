"""Endpoint management, test events and replay through the real delivery engine and a local
receiver: what arrives is signed with the endpoint's secrets (both during a rotation's overlap,
checked with the independent ``standardwebhooks`` package), and a replay arrives with the same
``webhook-id``."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from standardwebhooks.webhooks import Webhook

from apps.core import clock
from apps.webhooks.models import Attempt, Message, MessageStatus
from apps.webhooks.services import endpoints as services
from apps.webhooks.services import replay as replays
from tests.webhooks import test_endpoints_fixtures as fx
from tests.webhooks.engine_support import Receiver, deliver_until_idle
from tests.webhooks.test_endpoints_fixtures import event, fan_out

# fixtures
setup = fx.setup
vendor = fx.vendor
event_catalog = fx.event_catalog


@pytest.fixture(autouse=True)
def _engine_settings(settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True  # the receiver listens on 127.0.0.1
    settings.PLAZA_WEBHOOK_RETRY_SCHEDULE = [0, 0.05, 0.05]
    settings.PLAZA_WEBHOOK_TIMEOUT = 2
    settings.PLAZA_WEBHOOK_CONNECT_TIMEOUT = 2
    settings.PLAZA_WEBHOOK_RATE_LIMIT = 0
    settings.PLAZA_WEBHOOK_BREAKER_THRESHOLD = 1000


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def local_endpoint(setup, receiver):
    return services.endpoint_create(principal=None, extension=setup.extension, url=receiver.url)


def test_a_test_event_goes_through_the_engine_and_verifies(setup, receiver):
    endpoint, secret = local_endpoint(setup, receiver)
    message = services.endpoint_test_send(principal=None, endpoint=endpoint)
    deliver_until_idle(timeout=20)
    [seen] = receiver.requests
    assert seen.headers["webhook-id"] == message.pk
    payload = Webhook(secret).verify(seen.body, seen.headers)
    assert payload["test"] is True and payload["type"] == "order.created"
    assert Message.objects.get(pk=message.pk).status == MessageStatus.SUCCEEDED
    assert Attempt.objects.get(message_id=message.pk).trigger == "test"


def test_during_a_rotation_both_secrets_verify_what_arrives(setup, receiver):
    endpoint, old = local_endpoint(setup, receiver)
    _, new = services.endpoint_secret_rotate(principal=None, endpoint=endpoint, overlap_hours=24)
    services.endpoint_test_send(principal=None, endpoint=endpoint)
    deliver_until_idle(timeout=20)
    [seen] = receiver.requests
    assert len(seen.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(seen.body, seen.headers)
    Webhook(new).verify(seen.body, seen.headers)


def test_a_replayed_message_arrives_with_the_same_id(setup, receiver):
    endpoint, secret = local_endpoint(setup, receiver)
    receiver.behave = lambda seen, index: (500, {}, b"down")
    messages = [m for m in fan_out(event(setup.customer.org)) if m.endpoint_id == endpoint.pk]
    deliver_until_idle(timeout=20)
    message = Message.objects.get(pk=messages[0].pk)
    assert message.status == MessageStatus.FAILED  # in the dead-letter queue
    tries = len(receiver.requests)
    receiver.behave = None  # the receiver is fixed
    replays.replay_message(principal=None, endpoint=endpoint, message=message)
    deliver_until_idle(timeout=20)
    assert receiver.ids() == [message.pk] * (tries + 1)
    Webhook(secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    done = Message.objects.get(pk=message.pk)
    assert done.status == MessageStatus.SUCCEEDED
    numbers = list(
        Attempt.objects.filter(message=done).order_by("started_at", "number").values_list("number", flat=True)
    )
    assert numbers == list(range(1, tries + 2))  # the replay's attempt follows the others
    last = Attempt.objects.filter(message=done).order_by("-number").first()
    assert last.trigger == "replay" and last.status_code == 204


def test_a_backfill_reaches_a_new_endpoint(setup, receiver):
    past = [event(setup.customer.org, at=clock.now() - dt.timedelta(minutes=20)) for _ in range(2)]
    endpoint, secret = local_endpoint(setup, receiver)
    job = replays.replay_create(
        principal=None, endpoint=endpoint, kind="backfill", since=clock.now() - dt.timedelta(hours=1)
    )
    replays.replay_job_process(job.pk)
    deliver_until_idle(timeout=20)
    got = sorted(Webhook(secret).verify(r.body, r.headers)["event_id"] for r in receiver.requests)
    assert got == sorted(e.pk for e in past)
    assert json.loads(receiver.requests[0].body)["installation_id"] == setup.installation.pk
