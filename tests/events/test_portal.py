"""The event catalog pages: readable by everyone signed in, writable by platform staff."""

from __future__ import annotations

import json

import pytest

from apps.events.catalog_sync import sync_catalog
from apps.events.models import EventSchema, EventType

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db):
    sync_catalog()


def test_everyone_reads_the_catalog(acme, login_client, catalog):
    web = login_client(acme.user("member"))
    page = web.get("/events/").content.decode()
    assert "order.created" in page and "events:read:order.created" in page
    assert "Register an event type" not in page
    detail = web.get("/events/order.created/")
    assert detail.status_code == 200 and "Version 1" in detail.content.decode()
    assert "Next version" not in detail.content.decode()
    assert web.get("/events/nope.nothing/").status_code == 404
    # a non-staff POST changes nothing
    web.post("/events/", {"name": "x.y", "description": "d", "schema": "{}", "examples": "[{}]"})
    assert not EventType.objects.filter(name="x.y").exists()


def test_staff_check_then_register_a_version(globex, login_client, catalog):
    globex.org.is_platform = True
    globex.org.save(update_fields=["is_platform"])
    web = login_client(globex.owner)
    schema = EventSchema.objects.get(event_type__name="order.fulfilled").schema
    breaking = {**schema, "required": [*schema["required"], "carrier"]}
    res = web.post("/events/order.fulfilled/", {"op": "check", "schema": json.dumps(breaking)})
    assert res.status_code == 200 and "against v1" in res.content.decode()
    example = {"order_id": "o", "carrier": "x", "fulfilled_at": "2026-01-01T00:00:00Z"}
    res = web.post(
        "/events/order.fulfilled/",
        {"op": "register", "schema": json.dumps(breaking), "examples": json.dumps([example])},
    )
    assert res.status_code == 400 and "required" in res.content.decode()
    fine = {**schema, "properties": {**schema["properties"], "weight_grams": {"type": "integer"}}}
    example = {"order_id": "o", "fulfilled_at": "2026-01-01T00:00:00Z", "weight_grams": 500}
    res = web.post(
        "/events/order.fulfilled/", {"op": "register", "schema": json.dumps(fine), "examples": json.dumps([example])}
    )
    assert res.status_code == 302
    assert EventSchema.objects.filter(event_type__name="order.fulfilled").count() == 2
    res = web.post("/events/order.fulfilled/", {"op": "register", "schema": "{oops", "examples": "[]"})
    assert res.status_code == 400 and "Not JSON" in res.content.decode()


def test_staff_register_a_type(globex, login_client, catalog):
    globex.org.is_platform = True
    globex.org.save(update_fields=["is_platform"])
    web = login_client(globex.owner)
    assert "Register an event type" in web.get("/events/").content.decode()
    body = {
        "name": "invoice.paid",
        "description": "An invoice was paid.",
        "compatibility": "BACKWARD",
        "schema": json.dumps({"type": "object", "properties": {"id": {"type": "string"}}}),
        "examples": json.dumps([{"id": "inv_1"}]),
    }
    res = web.post("/events/", body)
    assert res.status_code == 302 and res["Location"] == "/events/invoice.paid/"
    res = web.post("/events/", body)
    assert res.status_code == 400 and "exists" in res.content.decode()


def test_staff_forms_refuse_unstorable_or_runaway_json(globex, login_client, catalog):
    globex.org.is_platform = True
    globex.org.save(update_fields=["is_platform"])
    web = login_client(globex.owner)
    base = {"name": "thing.made", "description": "d", "schema": '{"type": "object"}'}
    for examples in ('[{"a": "\\ud800"}]', '[{"a": "\\u0000"}]', "[" * 3000 + "]" * 3000):
        res = web.post("/events/", {**base, "examples": examples})
        assert res.status_code == 400, examples[:20]
    assert not EventType.objects.filter(name="thing.made").exists()
