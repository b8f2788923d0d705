"""The webhooks API: endpoints (secret shown once), messages and attempts, test events, replays,
and a customer's deliveries — roles, scopes, tenant isolation (404) and hostile input."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.core import clock
from apps.orgs.models import Role
from apps.webhooks.models import Endpoint, EndpointSecret, Message, MessageStatus
from apps.webhooks.services import endpoints as endpoint_services
from tests.installs.support import session
from tests.webhooks import test_endpoints_fixtures as fx
from tests.webhooks.test_endpoints_fixtures import event, failed, fan_out

# fixtures
event_catalog = fx.event_catalog
setup = fx.setup
vendor = fx.vendor


@pytest.fixture(autouse=True)
def no_sending(monkeypatch):
    monkeypatch.setattr("apps.webhooks.services.delivery.messages_kick", lambda: None)


def base(setup) -> str:
    return f"orgs/{setup.publisher.org.pk}/extensions/{setup.extension.pk}/webhook-endpoints"


def ep(setup) -> str:
    return f"{base(setup)}/{setup.endpoint.pk}"


# --- endpoints -----------------------------------------------------------------------------------
def test_create_shows_the_secret_once(setup, api_for):
    api = api_for(setup.publisher.org, role=Role.DEVELOPER)
    res = api.call("POST", base(setup), {"url": "https://api.vendor.example/hooks", "event_types": ["order.created"]})
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["secret"].startswith("whsec_") and body["secrets"][0]["last4"] == body["secret"][-4:]
    got = api.call("GET", f"{base(setup)}/{body['id']}").json()
    assert "secret" not in got and body["secret"] not in str(got)
    listed = api.call("GET", base(setup)).json()
    assert [e["id"] for e in listed["data"]] == [setup.endpoint.pk, body["id"]]
    assert body["secret"] not in str(listed)


def test_create_refusals_use_the_error_envelope(setup, api_for):
    api = api_for(setup.publisher.org)
    res = api.call("POST", base(setup), {"url": "http://10.0.0.1/"})
    assert res.status_code == 400 and res.json()["error"]["code"] == "url_not_https"
    res = api.call("POST", base(setup), {"url": "https://a.example/", "event_types": ["nope.nope"]})
    assert res.status_code == 400 and res.json()["error"]["param"] == "event_types"
    res = api.call("POST", base(setup), {"url": "https://a.example/", "environment": "staging"})
    assert res.status_code == 400


def test_patch_delete_enable_disable(setup, api_for):
    api = api_for(setup.publisher.org)
    res = api.call("PATCH", ep(setup), {"description": "Main", "rate_limit_per_second": 5})
    assert res.status_code == 200 and res.json()["description"] == "Main"
    assert res.json()["rate_limit_per_second"] == 5 and res.json()["url"] == setup.endpoint.url
    assert api.call("POST", f"{ep(setup)}/disable", {"reason": "Moving"}).json()["disabled_reason"] == "Moving"
    assert api.call("POST", f"{ep(setup)}/enable").json()["status"] == "enabled"
    assert api.call("DELETE", ep(setup)).status_code == 204
    assert api.call("GET", ep(setup)).status_code == 404
    assert Endpoint.objects.get(pk=setup.endpoint.pk).deleted_at is not None


def test_rotate_returns_the_new_secret_and_keeps_the_old_for_the_overlap(setup, api_for):
    api = api_for(setup.publisher.org)
    res = api.call("POST", f"{ep(setup)}/rotate-secret", {"overlap_hours": 48})
    assert res.status_code == 200
    body = res.json()
    assert body["secret"] != setup.secret and len(body["endpoint"]["secrets"]) == 2
    assert EndpointSecret.objects.filter(endpoint=setup.endpoint, expires_at__isnull=False).count() == 1
    assert api.call("POST", f"{ep(setup)}/rotate-secret", {"overlap_hours": 500}).status_code == 400


def test_send_test_event(setup, api_for):
    api = api_for(setup.publisher.org)
    res = api.call("POST", f"{ep(setup)}/test", {})
    assert res.status_code == 201 and res.json()["is_test"] is True
    detail = api.call("GET", f"{ep(setup)}/messages/{res.json()['id']}").json()
    assert '"test":true' in detail["body"] and detail["attempt_list"] == []


# --- messages and replays ------------------------------------------------------------------------
def test_messages_filter_and_detail_with_attempts(setup, api_for):
    [pending] = fan_out(event(setup.customer.org))
    [dead] = fan_out(event(setup.customer.org))
    failed(dead)
    api = api_for(setup.publisher.org, role=Role.DEVELOPER, scopes=["webhooks:read"])
    all_ = api.call("GET", f"{ep(setup)}/messages").json()["data"]
    assert [m["id"] for m in all_] == [dead.pk, pending.pk]
    dlq = api.call("GET", f"{ep(setup)}/messages", {"status": "failed"}).json()["data"]
    assert [m["id"] for m in dlq] == [dead.pk]
    since = (clock.now() + dt.timedelta(minutes=1)).isoformat()
    assert api.call("GET", f"{ep(setup)}/messages", {"since": since}).json()["data"] == []
    detail = api.call("GET", f"{ep(setup)}/messages/{dead.pk}").json()
    assert detail["attempt_list"][0]["status_code"] == 500 and detail["attempt_list"][0]["error_class"] == "http_status"
    assert detail["org_id"] == setup.customer.org.pk and detail["installation_id"] == setup.installation.pk


def test_replay_one_message_keeps_its_id(setup, api_for):
    [dead] = fan_out(event(setup.customer.org))
    failed(dead)
    api = api_for(setup.publisher.org)
    res = api.call("POST", f"{ep(setup)}/messages/{dead.pk}/replay")
    assert res.status_code == 202 and res.json()["params"] == {"message_id": dead.pk}
    assert Message.objects.get(pk=dead.pk).status == MessageStatus.PENDING
    again = api.call("POST", f"{ep(setup)}/messages/{dead.pk}/replay")
    assert again.status_code == 409 and again.json()["error"]["code"] == "message_pending"


def test_preview_then_create_a_backfill(setup, api_for, django_capture_on_commit_callbacks):
    for _ in range(2):
        event(setup.customer.org, at=clock.now() - dt.timedelta(minutes=30))
    api = api_for(setup.publisher.org)
    body = {"kind": "backfill", "since": (clock.now() - dt.timedelta(hours=1)).isoformat()}
    preview = api.call("POST", f"{ep(setup)}/replays/preview", body)
    assert preview.status_code == 200 and preview.json()["count"] == 2 and preview.json()["limit"] >= 2
    with django_capture_on_commit_callbacks(execute=True):
        res = api.call("POST", f"{ep(setup)}/replays", body)
    assert res.status_code == 202 and res.json()["preview_count"] == 2
    job = api.call("GET", f"{ep(setup)}/replays/{res.json()['id']}").json()
    assert job["status"] == "done" and job["processed_count"] == 2
    assert [j["id"] for j in api.call("GET", f"{ep(setup)}/replays").json()["data"]] == [job["id"]]
    empty = api.call("POST", f"{ep(setup)}/replays", body)
    assert empty.status_code == 409 and empty.json()["error"]["code"] == "replay_empty"


def test_the_hourly_limit_answers_429_with_retry_after(setup, api_for, settings):
    settings.PLAZA_WEBHOOK_REPLAY_HOURLY_MESSAGES = 1
    dead = [failed(fan_out(event(setup.customer.org))[0]) for _ in range(2)]
    api = api_for(setup.publisher.org)
    assert api.call("POST", f"{ep(setup)}/messages/{dead[0].pk}/replay").status_code == 202
    res = api.call("POST", f"{ep(setup)}/messages/{dead[1].pk}/replay")
    assert res.status_code == 429 and int(res["Retry-After"]) > 0
    assert res.json()["error"]["code"] == "replay_rate_limited"


# --- who may -------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.MEMBER, Role.BILLING])
def test_roles_without_the_action_are_refused(setup, api_for, role):
    api = api_for(setup.publisher.org, role=role)
    assert api.call("GET", base(setup)).status_code == 403
    assert api.call("POST", base(setup), {"url": "https://a.example/"}).status_code == 403


def test_a_read_scope_does_not_write(setup, api_for):
    api = api_for(setup.publisher.org, scopes=["webhooks:read"])
    assert api.call("GET", ep(setup)).status_code == 200
    res = api.call("POST", f"{ep(setup)}/rotate-secret", {})
    assert res.status_code == 403 and res.json()["error"]["code"] == "missing_scope"


def test_another_tenant_gets_404_everywhere(setup, api_for, globex):
    [dead] = fan_out(event(setup.customer.org))
    failed(dead)
    outsider = api_for(globex.org)
    for method, path in [
        ("GET", base(setup)),
        ("GET", ep(setup)),
        ("POST", f"{ep(setup)}/rotate-secret"),
        ("GET", f"{ep(setup)}/messages/{dead.pk}"),
        ("POST", f"{ep(setup)}/messages/{dead.pk}/replay"),
        # the customer may not see the publisher's side, even of its own messages
        ("GET", f"orgs/{setup.publisher.org.pk}/extensions/{setup.extension.pk}/webhook-endpoints"),
    ]:
        assert outsider.call(method, path, {}).status_code == 404, path
    customer = api_for(setup.customer.org)
    assert customer.call("GET", base(setup)).status_code == 404
    # ids of the caller's own org cannot name another org's rows either
    own = f"orgs/{globex.org.pk}/extensions/{setup.extension.pk}/webhook-endpoints/{setup.endpoint.pk}"
    assert outsider.call("GET", own).status_code == 404


def test_an_endpoint_of_another_extension_is_not_found(setup, api_for):
    other_ext = setup.vendor.release(name="other", scopes=["events:read:order.created"]).extension
    other, _ = endpoint_services.endpoint_create(principal=None, extension=other_ext, url="https://o.example/")
    api = api_for(setup.publisher.org)
    assert api.call("GET", f"{base(setup)}/{other.pk}").status_code == 404
    [dead] = fan_out(event(setup.customer.org))
    assert api.call("GET", f"{base(setup)}/{other.pk}/messages/{dead.pk}").status_code == 404


# --- a customer's deliveries ---------------------------------------------------------------------
def deliveries(setup) -> str:
    return f"orgs/{setup.customer.org.pk}/installations/{setup.installation.pk}/deliveries"


def test_admins_see_their_installations_deliveries_with_the_payload(setup, api_for):
    [dead] = fan_out(event(setup.customer.org))
    failed(dead)
    api = api_for(setup.customer.org, role=Role.ADMIN, scopes=["installs:read"])
    rows = api.call("GET", deliveries(setup)).json()["data"]
    assert dead.pk in [r["id"] for r in rows] and "body" not in rows[0]
    detail = api.call("GET", f"{deliveries(setup)}/{dead.pk}").json()
    assert '"order_id":"o-1"' in detail["body"]
    assert detail["attempt_list"][0]["status_code"] == 500
    text = str(detail)
    assert "hooks.vendor.example" not in text and "whsec_" not in text and "oops" not in text
    failed_only = api.call("GET", deliveries(setup), {"status": "failed"}).json()["data"]
    assert [r["id"] for r in failed_only] == [dead.pk]


def test_customers_get_a_summary_instead_of_the_engines_error_text(setup, api_for):
    # given deliveries whose last error names the publisher's endpoint (or its disable note)
    [gone] = fan_out(event(setup.customer.org))
    Message.objects.filter(pk=gone.pk).update(
        status=MessageStatus.FAILED, last_error="hooks.vendor.example resolves to 10.1.2.3, which is private"
    )
    [paused] = fan_out(event(setup.customer.org))
    Message.objects.filter(pk=paused.pk).update(
        status=MessageStatus.FAILED, last_error="Endpoint disabled: internal note about our cluster"
    )
    api = api_for(setup.customer.org, role=Role.ADMIN, scopes=["installs:read"])
    listed = api.call("GET", deliveries(setup)).json()
    detail = api.call("GET", f"{deliveries(setup)}/{gone.pk}").json()
    text = str(listed) + str(detail)
    assert "vendor.example" not in text and "10.1.2.3" not in text and "cluster" not in text
    assert detail["last_error"] == "The extension's endpoint could not be reached or was unavailable."
    # the publisher still sees the engine's words
    publisher = api_for(setup.publisher.org).call("GET", f"{ep(setup)}/messages/{gone.pk}").json()
    assert "10.1.2.3" in publisher["last_error"]


def test_deliveries_are_for_admins_of_that_organisation(setup, api_for, globex):
    assert session(setup.customer.user(Role.MEMBER)).call("GET", deliveries(setup)).status_code == 403
    assert api_for(globex.org).call("GET", deliveries(setup)).status_code == 404
    assert api_for(setup.publisher.org).call("GET", deliveries(setup)).status_code == 404
    [dead] = fan_out(event(setup.customer.org))
    other = f"orgs/{globex.org.pk}/installations/{setup.installation.pk}/deliveries/{dead.pk}"
    assert api_for(globex.org).call("GET", other).status_code == 404


# --- hostile input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method, suffix, data",
    [
        ("GET", "/messages", {"cursor": "!!!"}),
        ("GET", "/messages", {"cursor": "bXNnX2JhZA"}),
        ("GET", "/messages", {"status": "exploded"}),
        ("GET", "/messages", {"since": "yesterday"}),
        ("GET", "/messages", {"limit": "1000"}),
        ("PATCH", "", {"url": "https://a.example/\x00"}),
        ("PATCH", "", {"event_types": "order.created"}),
        ("POST", "/rotate-secret", {"overlap_hours": "lots"}),
        ("POST", "/replays/preview", {"kind": "backfill", "since": "not a time"}),
        ("POST", "/replays/preview", {"kind": "all", "since": "2026-01-01T00:00:00Z"}),
        ("POST", "/replays", {"kind": "failed_since", "since": "1970-01-01T00:00:00Z"}),
        ("POST", "/test", {"event_type": "x" * 500}),
    ],
)
def test_hostile_input_answers_4xx(setup, api_for, method, suffix, data):
    res = api_for(setup.publisher.org).call(method, ep(setup) + suffix, data)
    assert 400 <= res.status_code < 500, res.content
    assert "error" in res.json()


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_times_outside_what_a_date_holds_in_utc_answer_400(setup, api_for, moment):
    # given a time that is valid where it is written but overflows once moved to UTC
    api = api_for(setup.publisher.org)
    res = api.call("GET", f"{ep(setup)}/messages", {"since": moment})
    assert res.status_code == 400 and res.json()["error"]["param"] == "since", res.content
    admin = api_for(setup.customer.org)
    res = admin.call("GET", deliveries(setup), {"since": moment})
    assert res.status_code == 400, res.content
    body = {"kind": "backfill", "since": moment, "until": moment}
    res = api.call("POST", f"{ep(setup)}/replays/preview", body)
    assert res.status_code == 400 and "error" in res.json(), res.content


@pytest.mark.parametrize("bad_id", ["x", "whe_" + "0" * 26, "msg_01", "../../", "whe_%00"])
def test_malformed_ids_are_not_found(setup, api_for, bad_id):
    api = api_for(setup.publisher.org)
    assert api.call("GET", f"{base(setup)}/{bad_id}").status_code == 404
    assert api.call("GET", f"{ep(setup)}/messages/{bad_id}").status_code == 404
    assert api.call("GET", f"{ep(setup)}/replays/{bad_id}").status_code == 404


def test_a_body_that_is_not_an_object_is_refused(setup, api_for):
    api = api_for(setup.publisher.org)
    res = api.post(
        f"/api/v1/{base(setup)}", "[]", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api.token}"
    )
    assert res.status_code == 400


def test_lists_take_constant_queries(setup, api_for, django_assert_max_num_queries):
    api = api_for(setup.publisher.org)
    for i in range(5):
        endpoint_services.endpoint_create(principal=None, extension=setup.extension, url=f"https://{i}.example/")
        fan_out(event(setup.customer.org))
    with django_assert_max_num_queries(12):
        assert len(api.call("GET", base(setup)).json()["data"]) == 6
    with django_assert_max_num_queries(12):
        assert len(api.call("GET", f"{ep(setup)}/messages").json()["data"]) == 5
    admin = api_for(setup.customer.org)
    with django_assert_max_num_queries(12):
        assert len(admin.call("GET", deliveries(setup)).json()["data"]) == 25  # a full page
