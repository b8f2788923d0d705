"""Acceptance (#8): against a receiver failing 20 % of requests at random, 10,000 messages all
arrive — every webhook-id seen, a duplicate only ever as the retry of a failed attempt — and none
ends in the dead-letter queue.

Runs in CI on every suite (SQLite and PostgreSQL) in 10–30 s: the retry schedule is shrunk
to milliseconds (12 attempts, so the chance that one message fails them all, 0.2¹² × 10⁴ ≈ 4·10⁻⁵,
cannot flake the run), the messages are bulk-created, and delivery is the real path: claim,
sign, concurrent send over one session, record. What it proves is delivery, not speed: the only
time limit is a generous one that turns a hang into a failure (a loaded CI machine with two
shared cores can take several times as long as an idle one)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import defaultdict

import pytest
from standardwebhooks.webhooks import Webhook

from apps.webhooks.models import Attempt, Message, MessageStatus
from tests.webhooks.engine_support import Receiver, bulk_messages, deliver_until_idle, make_world

pytestmark = pytest.mark.django_db

COUNT = 10_000
# A hang fails the test; a slow machine does not (10,000 messages take 10–30 s on two idle cores).
TIMEOUT_SECONDS = float(os.environ.get("PLAZA_TEST_AT_LEAST_ONCE_TIMEOUT", 600))


def test_ten_thousand_messages_arrive_through_a_flaky_receiver(settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    settings.PLAZA_WEBHOOK_RETRY_SCHEDULE = [0] + [0.02] * 11
    settings.PLAZA_WEBHOOK_RATE_LIMIT = 0
    settings.PLAZA_WEBHOOK_BREAKER_PAUSE_SECONDS = 1
    settings.PLAZA_WEBHOOK_BATCH_SIZE = 500
    settings.PLAZA_WEBHOOK_CONCURRENCY = 100

    rng = random.Random(20)
    lock = threading.Lock()
    answers: dict[str, list[int]] = defaultdict(list)

    def flaky(seen, n):
        status = 500 if rng.random() < 0.2 else 204
        with lock:
            answers[seen.headers["webhook-id"]].append(status)
        return (status, {}, b"")

    receiver = Receiver(behave=flaky)
    try:
        world = make_world(url=receiver.url)
        ids = bulk_messages(world, COUNT)
        started = time.perf_counter()
        deliver_until_idle(timeout=TIMEOUT_SECONDS)
        elapsed = time.perf_counter() - started
    finally:
        receiver.close()

    # every message arrived, none in the dead-letter queue
    statuses = dict(Message.objects.filter(pk__in=ids).values_list("pk", "status").iterator())
    assert set(statuses.values()) == {MessageStatus.SUCCEEDED}
    assert set(answers) == set(ids)
    # a webhook-id is seen again only after a failed attempt: exactly one success per message
    for msg_id, seq in answers.items():
        assert seq[-1] == 204 and 204 not in seq[:-1], (msg_id, seq)
    attempts = dict(Message.objects.filter(pk__in=ids).values_list("pk", "attempts").iterator())
    assert all(attempts[msg_id] == len(seq) for msg_id, seq in answers.items())
    assert Attempt.objects.filter(message_id__in=ids).count() == sum(len(s) for s in answers.values())
    failed = sum(seq.count(500) for seq in answers.values())
    assert 0.15 < failed / (failed + COUNT) < 0.25  # the receiver really failed about 20 %
    # and the requests verify with an independent Standard Webhooks implementation
    sample = receiver.requests[:: COUNT // 20]
    for seen in sample:
        Webhook(world.secret).verify(seen.body, seen.headers)
    print(f"\n10,000 messages through a 20 %-failing receiver: {elapsed:.1f} s, {failed} retries")
