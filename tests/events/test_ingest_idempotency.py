"""Idempotency-Key: a retried request gets the first answer, a reused key with another body is a
409, keys expire after PLAZA_IDEMPOTENCY_HOURS, and two requests racing with one key store one
event (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from apps.core import clock
from apps.events import ingest
from apps.events.models import Event, EventDispatch, IdempotencyRecord
from apps.events.tasks import purge_idempotency_records
from tests.conftest import ApiClient, issue_token
from tests.events.conftest import created, fulfilled
from tests.orgs.test_authorization import assert_error
from tests.test_review_findings import _in_threads, postgres_only

pytestmark = pytest.mark.django_db


def send(api, event, key, path="events"):
    return api.call("POST", path, event, HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_and_body_returns_the_first_answer(tenant_api):
    first = send(tenant_api, fulfilled(), "key-1")
    assert first.status_code == 202 and "Idempotent-Replayed" not in first
    again = send(tenant_api, fulfilled(), "key-1")
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Event.objects.count() == 1 == EventDispatch.objects.count()


def test_key_order_and_white_space_do_not_make_another_body(tenant_api):
    first = send(tenant_api, fulfilled(), "key-1").json()
    reordered = json.dumps(
        {"payload": {"fulfilled_at": "2026-11-02T15:00:00Z", "order_id": "ord_1"}, "type": "order.fulfilled"}, indent=4
    )
    res = tenant_api.post(
        "/api/v1/events",
        reordered,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tenant_api.token}",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )
    assert res.json() == first and res["Idempotent-Replayed"] == "true"


def test_the_same_key_with_another_body_is_a_conflict(tenant_api):
    send(tenant_api, fulfilled("a"), "key-1")
    error = assert_error(send(tenant_api, fulfilled("b"), "key-1"), 409, "idempotency_key_reused")
    assert error["param"] == "Idempotency-Key"
    # the same body on the batch route is another request too
    assert_error(send(tenant_api, {"events": [fulfilled("a")]}, "key-1", "events/batch"), 409, "idempotency_key_reused")
    assert Event.objects.count() == 1


def test_without_a_key_each_request_is_a_new_event(tenant_api):
    tenant_api.call("POST", "events", fulfilled())
    tenant_api.call("POST", "events", fulfilled())
    assert Event.objects.count() == 2


def test_a_refused_request_is_not_remembered(tenant_api):
    assert_error(send(tenant_api, {"type": "order.fulfilled", "payload": {}}, "key-1"), 400, "payload_invalid")
    assert send(tenant_api, fulfilled(), "key-1").status_code == 202
    assert not IdempotencyRecord.objects.filter(key="key-1").exclude(response_status=202).exists()


def test_keys_belong_to_the_sending_org(acme, globex, tenant_api, event_catalog):
    other = ApiClient(issue_token(globex.org, role="developer", scopes=["events:write"]))
    a, b = send(tenant_api, fulfilled(), "shared").json(), send(other, fulfilled(), "shared").json()
    assert a["id"] != b["id"] and a["tenant"] == acme.org.pk and b["tenant"] == globex.org.pk


def test_host_keys_are_the_host_products_across_tenants(acme, globex, host_api):
    send(host_api, {**created(), "tenant": acme.org.pk}, "h-1")
    assert_error(send(host_api, {**created(), "tenant": globex.org.pk}, "h-1"), 409, "idempotency_key_reused")


def test_an_invalid_key_is_refused(tenant_api):
    for key in ("", "with space", "x" * 256, "naïve"):
        res = tenant_api.post(
            "/api/v1/events",
            json.dumps(fulfilled()),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {tenant_api.token}",
            HTTP_IDEMPOTENCY_KEY=key,
        )
        assert_error(res, 400, "idempotency_key_invalid")
    assert not Event.objects.exists()


def test_a_key_expires_and_is_purged(tenant_api, settings, monkeypatch):
    settings.PLAZA_IDEMPOTENCY_HOURS = 24
    start = clock.now()
    first = send(tenant_api, fulfilled("a"), "key-1").json()
    record = IdempotencyRecord.objects.get(key="key-1")
    assert record.expires_at == record.created_at + dt.timedelta(hours=24)
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(hours=23))
    assert send(tenant_api, fulfilled("a"), "key-1").json() == first
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(hours=25))
    # expired: the key is new again, even with another body (the old record is replaced)
    later = send(tenant_api, fulfilled("b"), "key-1")
    assert later.status_code == 202 and "Idempotent-Replayed" not in later and later.json()["id"] != first["id"]
    assert IdempotencyRecord.objects.filter(key="key-1").count() == 1
    send(tenant_api, fulfilled("c"), "key-2")
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(hours=50))
    assert purge_idempotency_records() == 2
    assert not IdempotencyRecord.objects.exists()
    assert Event.objects.count() == 3  # the events themselves stay


def test_a_batch_is_replayed_whole(tenant_api):
    batch = {"events": [fulfilled("a"), {"type": "nope.nope", "payload": {}}]}
    first = send(tenant_api, batch, "b-1", "events/batch")
    again = send(tenant_api, batch, "b-1", "events/batch")
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Event.objects.count() == 1


def test_the_beat_schedule_purges_records():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["purge-idempotency-records"]
    assert entry["task"] == "events.purge_idempotency_records" == purge_idempotency_records.name


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_store_one_event(acme, event_catalog, monkeypatch):
    """Both requests pass the replay check before either stores; the unique (org, key) lets one
    commit, and the other answers with the winner's stored answer."""
    raw = issue_token(acme.org, role="developer", scopes=["events:write"])
    gate = threading.Barrier(2, timeout=5)
    real_prepare = ingest.event_prepare

    def prepare_then_wait(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            pass
        return prepared

    monkeypatch.setattr(ingest, "event_prepare", prepare_then_wait)
    responses = []

    def call():
        responses.append(send(ApiClient(raw), fulfilled(), "race-1"))

    assert _in_threads(call, call) == []
    assert sorted(r.status_code for r in responses) == [202, 202]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert Event.objects.filter(org=acme.org).count() == 1 == EventDispatch.objects.count()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_and_different_bodies(acme, event_catalog, monkeypatch):
    raw = issue_token(acme.org, role="developer", scopes=["events:write"])
    gate = threading.Barrier(2, timeout=5)
    real_prepare = ingest.event_prepare

    def prepare_then_wait(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            pass
        return prepared

    monkeypatch.setattr(ingest, "event_prepare", prepare_then_wait)
    responses = []
    _in_threads(
        lambda: responses.append(send(ApiClient(raw), fulfilled("a"), "race-2")),
        lambda: responses.append(send(ApiClient(raw), fulfilled("b"), "race-2")),
    )
    assert sorted(r.status_code for r in responses) == [202, 409]
    assert Event.objects.filter(org=acme.org).count() == 1
