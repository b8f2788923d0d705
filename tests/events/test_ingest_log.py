"""The event log: the API search (type, time, id, cursor pages), one event, the console pages, and
tenant isolation (another org's events answer 404)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core import clock
from apps.events.models import Event
from tests.conftest import ApiClient, issue_token
from tests.events.conftest import created, fulfilled
from tests.orgs.test_authorization import assert_error

pytestmark = pytest.mark.django_db


def send_many(api, n: int, make=fulfilled, prefix="ord") -> list[str]:
    body = api.call("POST", "events/batch", {"events": [make(f"{prefix}-{i}") for i in range(n)]}).json()
    return [d["id"] for d in body["data"]]


def test_the_log_lists_newest_first_with_cursor_pages(acme, tenant_api, log_api):
    ids = send_many(tenant_api, 5)
    page = log_api.call("GET", f"orgs/{acme.org.pk}/events", {"limit": 2}).json()
    assert [e["id"] for e in page["data"]] == ids[::-1][:2]
    first = page["data"][0]
    assert first["type"] == "order.fulfilled" and first["source"] == "tenant" and "payload" not in first
    assert first["dispatch_status"] in ("pending", "done")
    seen = [e["id"] for e in page["data"]]
    while page["next_cursor"]:
        page = log_api.call("GET", f"orgs/{acme.org.pk}/events", {"limit": 2, "cursor": page["next_cursor"]}).json()
        seen += [e["id"] for e in page["data"]]
    assert seen == ids[::-1]


def test_the_log_filters_by_type_time_and_id(acme, tenant_api, log_api, monkeypatch):
    start = clock.now()
    old = send_many(tenant_api, 2)
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(hours=2))
    new_created = send_many(tenant_api, 1, make=created)
    new_fulfilled = send_many(tenant_api, 1)

    def search(**params):
        res = log_api.call("GET", f"orgs/{acme.org.pk}/events", params)
        assert res.status_code == 200, res.content
        return [e["id"] for e in res.json()["data"]]

    assert search(type="order.created") == new_created
    assert search(type="order.fulfilled") == new_fulfilled + old[::-1]
    assert search(type="no.such") == [] and search(type="NOT A NAME") == []
    since = (start + dt.timedelta(hours=1)).isoformat()
    assert search(since=since) == new_fulfilled + new_created
    assert search(until=since) == old[::-1]
    assert search(since=since, type="order.fulfilled") == new_fulfilled
    assert search(id=old[0]) == [old[0]] and search(id="evt_nope") == []
    assert search(since=start.date().isoformat()) == new_fulfilled + new_created + old[::-1]
    assert search(since=start.strftime("%Y-%m-%dT%H:%M")) == new_fulfilled + new_created + old[::-1]  # naive = UTC
    error = assert_error(log_api.call("GET", f"orgs/{acme.org.pk}/events", {"since": "last week"}), 400)
    assert error["code"] == "time_invalid" and error["param"] == "since"
    assert_error(log_api.call("GET", f"orgs/{acme.org.pk}/events", {"cursor": "bogus"}), 400)


@pytest.mark.parametrize("query", [{"since": "0001-01-01T00:00:00+14:00"}, {"until": "9999-12-31T23:59:59-14:00"}])
def test_times_that_do_not_exist_in_utc_are_refused(acme, log_api, login_client, query):
    # a time valid where it is written but outside what a date holds once moved to UTC
    res = log_api.call("GET", f"orgs/{acme.org.pk}/events", query)
    assert res.status_code == 400 and res.json()["error"]["code"] == "time_invalid", res.content
    page = login_client(acme.owner).get(f"/orgs/{acme.org.pk}/console/events/", query)
    assert page.status_code == 400


def test_one_event_with_its_payload(acme, tenant_api, log_api):
    [event_id] = send_many(tenant_api, 1)
    res = log_api.call("GET", f"orgs/{acme.org.pk}/events/{event_id}")
    assert res.status_code == 200
    assert res.json()["payload"] == fulfilled("ord-0")["payload"] and res.json()["id"] == event_id
    assert_error(log_api.call("GET", f"orgs/{acme.org.pk}/events/evt_01JZZZZZZZZZZZZZZZZZZZZZZZ"), 404)
    assert_error(log_api.call("GET", f"orgs/{acme.org.pk}/events/nonsense"), 404)


def test_another_tenants_log_and_events_are_not_found(acme, globex, tenant_api, event_catalog):
    [event_id] = send_many(tenant_api, 1)
    outsider = ApiClient(issue_token(globex.org, role="admin", scopes=["events:read"]))
    assert_error(outsider.call("GET", f"orgs/{acme.org.pk}/events"), 404)
    assert_error(outsider.call("GET", f"orgs/{acme.org.pk}/events/{event_id}"), 404)
    # globex's own log does not show acme's event, nor fetch it by id
    assert outsider.call("GET", f"orgs/{globex.org.pk}/events", {"id": event_id}).json()["data"] == []
    assert_error(outsider.call("GET", f"orgs/{globex.org.pk}/events/{event_id}"), 404)


def test_reading_the_log_needs_an_admin_and_the_scope(acme, tenant_api):
    send_many(tenant_api, 1)
    member = ApiClient(issue_token(acme.org, role="developer", scopes=["events:read"]))
    assert_error(member.call("GET", f"orgs/{acme.org.pk}/events"), 403, "role")
    no_scope = ApiClient(issue_token(acme.org, role="admin", scopes=["installs:read"]))
    assert_error(no_scope.call("GET", f"orgs/{acme.org.pk}/events"), 403, "missing_scope")


def _count(request) -> int:
    with CaptureQueriesContext(connection) as captured:
        res = request()
    assert res.status_code == 200
    return len(captured)


def test_the_log_runs_constant_queries(acme, tenant_api, log_api, login_client):
    send_many(tenant_api, 2)
    web = login_client(acme.owner)
    api_list = lambda: log_api.call("GET", f"orgs/{acme.org.pk}/events", {"limit": 100})  # noqa: E731
    page = lambda: web.get(f"/orgs/{acme.org.pk}/console/events/")  # noqa: E731
    api_list(), page()  # warm-up
    few = (_count(api_list), _count(page))
    send_many(tenant_api, 20, make=created, prefix="more")
    many = (_count(api_list), _count(page))
    assert few == many


# --- the console -------------------------------------------------------------------------------
def test_the_console_page_searches_and_escapes(acme, tenant_api, login_client):
    evil = fulfilled("<script>alert(1)</script>")
    [evil_id] = [d["id"] for d in tenant_api.call("POST", "events/batch", {"events": [evil]}).json()["data"]]
    [other_id] = send_many(tenant_api, 1, make=created)
    web = login_client(acme.owner)
    page = web.get(f"/orgs/{acme.org.pk}/console/events/")
    assert page.status_code == 200
    html = page.content.decode()
    assert evil_id in html and other_id in html and "order.created" in html
    # filtered, without JavaScript: the whole page; with htmx: only the results
    filtered = web.get(f"/orgs/{acme.org.pk}/console/events/", {"type": "order.created"}).content.decode()
    assert other_id in filtered and evil_id not in filtered and "<h1>Events</h1>" in filtered
    partial = web.get(f"/orgs/{acme.org.pk}/console/events/", {"id": evil_id}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert evil_id in partial.content.decode() and "<h1>" not in partial.content.decode()
    bad = web.get(f"/orgs/{acme.org.pk}/console/events/", {"since": "soon"})
    assert bad.status_code == 400 and "date-time" in bad.content.decode()
    detail = web.get(f"/orgs/{acme.org.pk}/console/events/{evil_id}/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert web.get(f"/orgs/{acme.org.pk}/console/events/evt_01JZZZZZZZZZZZZZZZZZZZZZZZ/").status_code == 404


def test_the_console_shows_which_fields_are_personal_data(acme, tenant_api, login_client):
    payload = {"customer_id": "c1", "email": "ada@example.com", "created_at": "2026-11-01T00:00:00Z"}
    event_id = tenant_api.call("POST", "events", {"type": "customer.created", "payload": payload}).json()["id"]
    html = login_client(acme.owner).get(f"/orgs/{acme.org.pk}/console/events/{event_id}/").content.decode()
    assert "$.email" in html and "pii:read" in html and "ada@example.com" in html


def test_the_console_is_for_admins_of_the_org(acme, globex, tenant_api, login_client):
    [event_id] = send_many(tenant_api, 1)
    assert login_client(acme.user("member")).get(f"/orgs/{acme.org.pk}/console/events/").status_code == 403
    outsider = login_client(globex.owner)
    assert outsider.get(f"/orgs/{acme.org.pk}/console/events/").status_code == 404
    assert outsider.get(f"/orgs/{acme.org.pk}/console/events/{event_id}/").status_code == 404
    assert outsider.get(f"/orgs/{globex.org.pk}/console/events/{event_id}/").status_code == 404
    assert Event.objects.count() == 1
