"""Event ingestion through the API: who may send into which tenant, what is validated, and the
outbox row written with every accepted event."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest

from apps.core import clock
from apps.core.errors import PermissionDenied
from apps.events import ingest
from apps.events.models import Event, EventDispatch, EventSource
from apps.events.signals import events_accepted
from apps.orgs.models import Organization, ServiceAccount
from apps.orgs.policy import Principal
from tests.conftest import ApiClient, issue_token
from tests.events.conftest import created, fulfilled
from tests.orgs.test_authorization import assert_error

pytestmark = pytest.mark.django_db


def raw_post(api: ApiClient, path: str, body: bytes, **extra):
    return api.post(
        f"/api/v1/{path}", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api.token}", **extra
    )


# --- happy paths ---------------------------------------------------------------------------------
def test_a_tenant_token_sends_an_event_into_its_own_org(acme, tenant_api, django_capture_on_commit_callbacks):
    received = []
    events_accepted.connect(
        lambda sender, dispatch_ids, **kw: received.append(dispatch_ids), weak=False, dispatch_uid="t"
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            res = tenant_api.call("POST", "events", fulfilled(occurred_at="2026-11-22T06:00:00+01:00"))
    finally:
        events_accepted.disconnect(dispatch_uid="t")
    assert res.status_code == 202, res.content
    body = res.json()
    assert body["id"].startswith("evt_") and body["status"] == "accepted"
    assert body["tenant"] == acme.org.pk and body["type"] == "order.fulfilled" and body["schema_version"] == 1
    assert body["occurred_at"] == "2026-11-22T05:00:00.000Z"
    event = Event.objects.get(pk=body["id"])
    assert event.org_id == acme.org.pk and event.source == EventSource.TENANT and event.source_id.startswith("tok_")
    assert event.payload == fulfilled()["payload"]
    dispatch = EventDispatch.objects.get(event=event)  # (a consumer may have handled it since the commit)
    # the signal comes after the commit, with the outbox row's id
    assert received == [[dispatch.pk]]


def test_occurred_at_defaults_to_the_time_received(tenant_api):
    body = tenant_api.call("POST", "events", fulfilled()).json()
    assert body["occurred_at"] == body["received_at"]


def test_the_host_token_sends_for_the_tenant_it_names(acme, host_api, platform):
    res = host_api.call("POST", "events", {**created(), "tenant": acme.org.pk})
    assert res.status_code == 202, res.content
    event = Event.objects.get(pk=res.json()["id"])
    assert event.org_id == acme.org.pk and event.source == EventSource.HOST


def test_an_explicit_older_schema_version_is_validated_against_that_version(tenant_api, event_catalog):
    event = {"type": "customer.created", "payload": {"customer_id": "c1", "created_at": "2026-11-01T00:00:00Z"}}
    assert tenant_api.call("POST", "events", event).json()["schema_version"] == 2  # the latest
    res = tenant_api.call("POST", "events", {**event, "schema_version": 1})
    assert res.status_code == 202 and res.json()["schema_version"] == 1


def test_a_publisher_sends_into_its_own_sandbox_tenant(acme, event_catalog):
    sandbox = Organization.objects.create(name="Acme sandbox", slug="acme-sandbox", sandbox_of=acme.org)
    api = ApiClient(issue_token(acme.org, role="developer", scopes=["events:write"]))
    res = api.call("POST", "events", {**fulfilled(), "tenant": sandbox.pk})
    assert res.status_code == 202 and res.json()["tenant"] == sandbox.pk


def test_a_tenant_token_may_name_its_own_org(acme, tenant_api):
    assert tenant_api.call("POST", "events", {**fulfilled(), "tenant": acme.org.pk}).status_code == 202


# --- refusals: the event -------------------------------------------------------------------------
def test_an_unknown_event_type_is_refused(tenant_api):
    error = assert_error(tenant_api.call("POST", "events", {"type": "order.vanished", "payload": {}}), 400)
    assert error["code"] == "event_type_unknown" and error["param"] == "type"
    for bad in ("", "Order.Created", "x" * 300, 5, None):
        assert assert_error(tenant_api.call("POST", "events", {"type": bad, "payload": {}}), 400)["param"] == "type"


def test_an_invalid_payload_is_refused_with_the_precise_path(tenant_api):
    event = created()
    event["payload"]["line_items"][0]["quantity"] = 0
    del event["payload"]["currency"]
    error = assert_error(tenant_api.call("POST", "events", event), 400, "payload_invalid")
    paths = {(d["path"], d["rule"]) for d in error["details"]}
    assert ("$.payload.line_items[0].quantity", "minimum") in paths
    assert ("$.payload", "required") in paths
    assert error["param"] == "payload"  # the first problem, sorted by path
    assert "line_items[0].quantity" in error["message"]


def test_a_payload_that_is_not_an_object_is_refused(tenant_api):
    for payload in ([], "x", None, 1):
        error = assert_error(tenant_api.call("POST", "events", {"type": "order.fulfilled", "payload": payload}), 400)
        assert error["code"] == "payload_invalid" and error["param"] == "payload"


def test_an_unknown_schema_version_is_refused(tenant_api):
    error = assert_error(tenant_api.call("POST", "events", {**fulfilled(), "schema_version": 7}), 400)
    assert error["code"] == "schema_version_unknown" and error["param"] == "schema_version"
    for bad in (0, -1, "1", 1.5, True, 2**40):
        error = assert_error(tenant_api.call("POST", "events", {**fulfilled(), "schema_version": bad}), 400)
        assert error["code"] == "schema_version_invalid"


def test_a_payload_valid_only_for_another_version_is_refused(tenant_api, event_catalog):
    # customer.created v1 and v2 differ only in annotations; order.fulfilled v1 needs fulfilled_at
    error = assert_error(
        tenant_api.call(
            "POST", "events", {"type": "order.fulfilled", "payload": {"order_id": "x"}, "schema_version": 1}
        ),
        400,
    )
    assert error["code"] == "payload_invalid"


def test_an_oversize_body_is_refused_before_parsing(tenant_api, settings):
    settings.PLAZA_EVENTS_MAX_BODY_BYTES = 1024
    event = fulfilled()
    event["payload"]["carrier"] = "x" * 2000
    assert_error(tenant_api.call("POST", "events", event), 413, "payload_too_large")
    assert not Event.objects.exists()


def test_bad_json_and_odd_bodies_are_refused_never_500(tenant_api):
    for body in (b"{", b"[]", b'"x"', b"\xff\xfe", b'{"type": NaN}', b'{"a": 1e999}', b"[" * 100_000):
        res = raw_post(tenant_api, "events", body)
        assert_error(res, 400)
        assert res.json()["error"]["code"] == "invalid_json", (body[:20], res.json())
    deep = b'{"type": "order.created", "payload": {"x": ' + b"[" * 70 + b"]" * 70 + b"}}"
    assert "nested deeper" in raw_post(tenant_api, "events", deep).json()["error"]["message"]
    nul = json.dumps({**fulfilled(), "payload": {"order_id": "a\u0000b"}}).encode()
    assert_error(raw_post(tenant_api, "events", nul), 400, "text_invalid")


def test_unknown_fields_are_refused(tenant_api):
    error = assert_error(tenant_api.call("POST", "events", {**fulfilled(), "occured_at": "2026-11-01T00:00:00Z"}), 400)
    assert error["code"] == "unknown_field" and error["param"] == "occured_at"


@pytest.mark.parametrize(
    "value, code",
    [
        ("2026-11-01T09:30:00", "occurred_at_invalid"),  # no time zone
        ("yesterday", "occurred_at_invalid"),
        ("2026-13-01T00:00:00Z", "occurred_at_invalid"),
        (12345, "occurred_at_invalid"),
        ("9999-12-31T23:59:59-23:59", "occurred_at_invalid"),
        ("future", "occurred_at_in_future"),
        ("old", "occurred_at_too_old"),
    ],
)
def test_occurred_at_must_be_sane(tenant_api, value, code):
    now = clock.now()
    value = {
        "future": (now + dt.timedelta(hours=1)).isoformat(),
        "old": (now - dt.timedelta(days=31)).isoformat(),
    }.get(value, value)
    error = assert_error(tenant_api.call("POST", "events", {**fulfilled(), "occurred_at": value}), 400)
    assert error["code"] == code and error["param"] == "occurred_at"


# --- refusals: who sends -------------------------------------------------------------------------
def test_a_token_without_events_write_is_refused(acme, event_catalog):
    api = ApiClient(issue_token(acme.org, role="admin", scopes=["events:read", "installs:write"]))
    assert_error(api.call("POST", "events", fulfilled()), 403, "missing_scope")


def test_a_role_that_may_not_send_is_refused(acme, event_catalog):
    api = ApiClient(issue_token(acme.org, role="member", scopes=["events:write"]))
    assert_error(api.call("POST", "events", fulfilled()), 403, "role")


def test_no_token_or_a_session_cannot_send(acme, login_client, event_catalog):
    assert_error(ApiClient().call("POST", "events", fulfilled()), 401)
    web = login_client(acme.owner)
    res = web.post("/api/v1/events", json.dumps(fulfilled()), content_type="application/json")
    assert res.status_code == 403  # the session's CSRF check, or token_required


def test_an_installations_managed_account_cannot_send(acme, event_catalog):
    """An installation's own service account (its Plaza API token) is not an ingestion credential:
    extensions emit from the sandbox instead (``events_emit``)."""
    sa = ServiceAccount.objects.create(org=acme.org, name="inst", role="admin", installation_id="ins_x")
    principal = Principal(
        kind="service_account",
        service_account=sa,
        token=SimpleNamespace(pk="tok_x"),
        scopes=frozenset({"events:write"}),
    )
    with pytest.raises(PermissionDenied) as refused:
        ingest.sender_resolve(principal, None)
    assert refused.value.code == "role"


def test_the_host_token_must_name_the_tenant(host_api):
    error = assert_error(host_api.call("POST", "events", created()), 400, "tenant_required")
    assert error["param"] == "tenant"


def test_the_host_token_naming_an_unknown_tenant_is_not_found(host_api):
    for tenant in ("org_01JZZZZZZZZZZZZZZZZZZZZZZZ", "nonsense", "org_x"):
        error = assert_error(host_api.call("POST", "events", {**created(), "tenant": tenant}), 404, "tenant_not_found")
        assert error["param"] == "tenant"
    assert_error(host_api.call("POST", "events", {**created(), "tenant": 5}), 400, "tenant_invalid")


def test_a_publisher_token_cannot_send_into_another_tenant(acme, globex, event_catalog):
    """globex publishes an extension acme installed: its token still only sends into globex."""
    for scopes in (["events:write"], ["events:write", "events:host"]):
        api = ApiClient(issue_token(globex.org, role="admin", scopes=scopes))
        error = assert_error(api.call("POST", "events", {**fulfilled(), "tenant": acme.org.pk}), 403)
        assert error["code"] == "tenant_not_allowed"
        # an unknown org answers the same: nothing is revealed
        res = api.call("POST", "events", {**fulfilled(), "tenant": "org_01JZZZZZZZZZZZZZZZZZZZZZZZ"})
        assert_error(res, 403, "tenant_not_allowed")
    # events:host without the platform organisation is no host token: it cannot send at all
    api = ApiClient(issue_token(globex.org, role="admin", scopes=["events:host"]))
    assert_error(api.call("POST", "events", fulfilled()), 403, "missing_scope")
    assert not Event.objects.exists()


def test_a_platform_token_without_events_host_sends_only_into_the_platform_org(acme, platform, event_catalog):
    api = ApiClient(issue_token(platform, role="developer", scopes=["events:write"]))
    assert_error(api.call("POST", "events", {**fulfilled(), "tenant": acme.org.pk}), 403, "tenant_not_allowed")
    assert api.call("POST", "events", fulfilled()).json()["tenant"] == platform.pk


def test_the_host_token_needs_a_builder_role(acme, platform, event_catalog):
    api = ApiClient(issue_token(platform, role="billing", scopes=["events:host"]))
    assert_error(api.call("POST", "events", {**fulfilled(), "tenant": acme.org.pk}), 403, "role")


def test_a_sandbox_of_another_publisher_is_not_allowed(acme, globex, tenant_api):
    sandbox = Organization.objects.create(name="Globex sandbox", slug="globex-sandbox", sandbox_of=globex.org)
    assert_error(tenant_api.call("POST", "events", {**fulfilled(), "tenant": sandbox.pk}), 403, "tenant_not_allowed")


# --- the outbox ----------------------------------------------------------------------------------
def test_the_event_and_its_outbox_row_commit_or_roll_back_together(acme, tenant_api, monkeypatch):
    """A failure after the events are inserted (here: writing the outbox rows) leaves neither."""
    real = EventDispatch.objects.bulk_create

    def fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(EventDispatch.objects, "bulk_create", fail)
    res = tenant_api.call("POST", "events", fulfilled())
    assert res.status_code == 500  # a real outage; the body is still the envelope
    assert not Event.objects.exists() and not EventDispatch.objects.exists()


def test_every_accepted_event_has_exactly_one_dispatch(tenant_api):
    tenant_api.call("POST", "events/batch", {"events": [fulfilled(str(i)) for i in range(5)]})
    assert Event.objects.count() == 5 == EventDispatch.objects.count()
    assert set(EventDispatch.objects.values_list("event_id", flat=True)) == set(
        Event.objects.values_list("pk", flat=True)
    )


# --- batch ---------------------------------------------------------------------------------------
def test_a_batch_answers_each_event_separately(acme, tenant_api, django_capture_on_commit_callbacks):
    bad_payload = created()
    bad_payload["payload"]["line_items"][0]["sku"] = ""
    unnamed = {"type": "", "payload": {}}
    events = [fulfilled("a"), {"type": "nope.nope", "payload": {}}, bad_payload, created("b"), unnamed]
    received = []
    events_accepted.connect(
        lambda sender, dispatch_ids, **kw: received.append(dispatch_ids), weak=False, dispatch_uid="b"
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            res = tenant_api.call("POST", "events/batch", {"events": events})
    finally:
        events_accepted.disconnect(dispatch_uid="b")
    assert res.status_code == 200, res.content
    body = res.json()
    assert body["accepted"] == 2 and body["refused"] == 3
    statuses = [(d["index"], d["status"]) for d in body["data"]]
    assert statuses == [(0, "accepted"), (1, "refused"), (2, "refused"), (3, "accepted"), (4, "refused")]
    assert body["data"][1]["error"]["code"] == "event_type_unknown"
    assert body["data"][2]["error"]["code"] == "payload_invalid"
    assert body["data"][2]["error"]["details"][0]["path"] == "$.payload.line_items[0].sku"
    assert body["data"][4]["error"]["code"] == "type_required"
    ids = [body["data"][0]["id"], body["data"][3]["id"]]
    assert list(Event.objects.filter(org=acme.org).order_by("pk").values_list("pk", flat=True)) == sorted(ids)
    assert len(received) == 1 and len(received[0]) == 2


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ("not an event", "events[1]"),
        ({"type": "t" * 201, "payload": {}}, "events[1].type"),
        ({"type": 7, "payload": {}}, "events[1].type"),
        ({"type": "order.created", "payload": []}, "events[1].payload"),
        ({"type": "order.created", "payload": {}, "schema_version": "2"}, "events[1].schema_version"),
        ({"type": "order.created", "payload": {}, "occurred_at": 1700000000}, "events[1].occurred_at"),
    ],
)
def test_a_batch_with_an_event_of_the_wrong_shape_is_refused_whole(acme, tenant_api, item, param):
    # given a batch whose second event breaks the documented shape (a broken client, not one bad event)
    res = tenant_api.call("POST", "events/batch", {"events": [fulfilled("a"), item]})
    # then nothing is stored and the error names the field
    assert assert_error(res, 400, "batch_invalid")["param"] == param
    assert not Event.objects.filter(org=acme.org).exists()


def test_a_batch_has_one_to_a_hundred_events(tenant_api, settings):
    assert_error(tenant_api.call("POST", "events/batch", {"events": []}), 400, "batch_invalid")
    assert_error(tenant_api.call("POST", "events/batch", {"events": {"a": 1}}), 400, "batch_invalid")
    assert_error(tenant_api.call("POST", "events/batch", {}), 400, "batch_invalid")
    too_many = {"events": [fulfilled(str(i)) for i in range(101)]}
    assert_error(tenant_api.call("POST", "events/batch", too_many), 400, "batch_invalid")
    res = tenant_api.call("POST", "events/batch", {"events": [fulfilled(str(i)) for i in range(100)]})
    assert res.json()["accepted"] == 100
    assert_error(tenant_api.call("POST", "events/batch", {"events": [fulfilled()], "extra": 1}), 400, "unknown_field")


def test_an_oversize_event_in_a_batch_is_refused_alone(tenant_api, settings):
    settings.PLAZA_EVENTS_MAX_BODY_BYTES = 1024
    big = fulfilled("big")
    big["payload"]["carrier"] = "x" * 2000
    body = tenant_api.call("POST", "events/batch", {"events": [big, fulfilled("small")]}).json()
    assert [d["status"] for d in body["data"]] == ["refused", "accepted"]
    assert body["data"][0]["error"]["code"] == "payload_too_large"
    settings.PLAZA_EVENTS_MAX_BATCH_BYTES = 1024
    assert_error(tenant_api.call("POST", "events/batch", {"events": [big]}), 413, "payload_too_large")


def test_a_host_batch_names_its_tenant_once(acme, host_api):
    assert_error(host_api.call("POST", "events/batch", {"events": [created()]}), 400, "tenant_required")
    res = host_api.call("POST", "events/batch", {"tenant": acme.org.pk, "events": [created(), created("2")]})
    assert res.json()["accepted"] == 2
    assert Event.objects.filter(org=acme.org, source="host").count() == 2
    # a tenant per event is not a thing: each event only has type, payload, schema_version, occurred_at
    res = host_api.call(
        "POST", "events/batch", {"tenant": acme.org.pk, "events": [{**created(), "tenant": acme.org.pk}]}
    )
    assert res.json()["data"][0]["error"]["code"] == "unknown_field"


# --- extensions emitting -------------------------------------------------------------------------
def test_events_an_extension_emits_go_through_the_same_validation(acme, event_catalog):
    results = ingest.events_emit(
        tenant=acme.org,
        installation_id="ins_01JZZZZZZZZZZZZZZZZZZZZZZZ",
        emitted=[fulfilled("e1"), {"type": "order.fulfilled", "payload": {"order_id": 1}}],
    )
    assert [r["status"] for r in results] == ["accepted", "refused"]
    event = Event.objects.get()
    assert event.source == EventSource.EXTENSION and event.source_id == "ins_01JZZZZZZZZZZZZZZZZZZZZZZZ"
    assert EventDispatch.objects.filter(event=event).exists()
    assert ingest.events_emit(tenant=acme.org, installation_id="ins_x", emitted=[]) == []


def test_a_retried_hook_does_not_emit_its_events_twice(acme, event_catalog):
    emit = lambda events: ingest.events_emit(  # noqa: E731
        tenant=acme.org, installation_id="ins_1", emitted=events, idempotency_key="msg_1"
    )
    first = emit([fulfilled("e1")])
    assert emit([fulfilled("e1")]) == first and Event.objects.count() == 1
    assert emit([fulfilled("other")])[0]["error"]["code"] == "idempotency_key_reused"
    assert Event.objects.count() == 1
