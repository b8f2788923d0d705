"""Embed settings over the API: host origins (validated, exact), slot registry and overrides, access."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.orgs.models import Role
from tests.conftest import ApiClient, issue_token


def _admin(org) -> ApiClient:
    return ApiClient(issue_token(org, scopes=["embed:read", "embed:write"]))


def test_host_origins_are_normalised_and_audited(acme):
    api = _admin(acme.org)
    origins = ["HTTPS://Shop.Example.com:443", "http://localhost:3000", "https://shop.example.com"]
    res = api.call("PATCH", f"orgs/{acme.org.pk}/embed/settings", {"host_origins": origins})
    assert res.status_code == 200, res.content
    assert res.json()["host_origins"] == ["https://shop.example.com", "http://localhost:3000"]
    assert AuditEvent.objects.filter(org_id=acme.org.pk, action="embed.settings_updated").count() == 1
    assert api.call("GET", f"orgs/{acme.org.pk}/embed/settings").json()["host_origins"][0] == "https://shop.example.com"


@pytest.mark.parametrize(
    "origin",
    ["https://*.example.com", "https://shop.example.com/", "https://shop.example.com/x", "ftp://x.example",
     "https://a b", "https://user:pw@x.example", "https://x.example.", "javascript:alert(1)", "https://",
     "http://widgets.localhost:8000", "http://inst-01jaaaaaaaaaaaaaaaaaaaaaaa.widgets.localhost:8000",
     "http://127.0.0.1:8000", "x" * 300, 5, None],
)  # fmt: skip
def test_invalid_host_origins_are_refused(acme, origin):
    res = _admin(acme.org).call("PATCH", f"orgs/{acme.org.pk}/embed/settings", {"host_origins": [origin]})
    assert res.status_code == 400, (origin, res.content)


def test_slot_registry_lists_builtins_and_overrides(acme):
    api = _admin(acme.org)
    slots = api.call("GET", f"orgs/{acme.org.pk}/embed/slots").json()["data"]
    names = [s["name"] for s in slots]
    assert {"order.sidebar", "dashboard.card"} <= set(names)
    res = api.call("PUT", f"orgs/{acme.org.pk}/embed/slots/dashboard.card", {"max_height": 300, "hidden": True})
    assert res.status_code == 200 and res.json()["max_height"] == 300 and res.json()["hidden"] is True
    assert api.call("PUT", f"orgs/{acme.org.pk}/embed/slots/no.such", {}).status_code == 404
    bad = api.call("PUT", f"orgs/{acme.org.pk}/embed/slots/dashboard.card", {"min_height": 500, "max_height": 100})
    assert bad.status_code == 400
    page = api.call("GET", f"orgs/{acme.org.pk}/embed/slots?limit=2").json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    rest = api.call("GET", f"orgs/{acme.org.pk}/embed/slots?limit=100&cursor={page['next_cursor']}").json()
    assert len(rest["data"]) == len(names) - 2


def test_settings_need_admin_role_and_scope_and_hide_other_tenants(acme, globex):
    dev = ApiClient(issue_token(acme.org, role=Role.DEVELOPER, scopes=["embed:read", "embed:write"]))
    assert dev.call("GET", f"orgs/{acme.org.pk}/embed/settings").status_code == 403
    reader = ApiClient(issue_token(acme.org, scopes=["embed:read"]))
    assert reader.call("GET", f"orgs/{acme.org.pk}/embed/settings").status_code == 200
    assert reader.call("PATCH", f"orgs/{acme.org.pk}/embed/settings", {"host_origins": []}).status_code == 403
    assert _admin(globex.org).call("GET", f"orgs/{acme.org.pk}/embed/settings").status_code == 404


def test_console_page_shows_settings_and_reports_theme_problems(acme, login_client):
    client = login_client(acme.owner)
    url = f"/orgs/{acme.org.pk}/console/embeds/"
    page = client.get(url)
    assert page.status_code == 200 and b"Host origins" in page.content and b"order.sidebar" in page.content
    res = client.post(url, {"op": "origins", "host_origins": "https://shop.example.com\nhttps://*.bad"})
    assert res.status_code == 400 and b"not an origin" in res.content
    res = client.post(url, {"op": "origins", "host_origins": "https://shop.example.com"})
    assert res.status_code == 302
    cycle = '{"a": {"$type": "color", "$value": "{b}"}, "b": {"$type": "color", "$value": "{a}"}}'
    res = client.post(url, {"op": "upload", "name": "Mine", "scheme": "light", "tokens": cycle})
    assert res.status_code == 400 and b"cycle" in res.content and b"problem" in res.content
    res = client.post(url, {"op": "upload", "name": "Mine", "scheme": "light",
                            "tokens": '{"c": {"$type": "color", "$value": "#123456"}}'})  # fmt: skip
    assert res.status_code == 302
    res = client.post(url, {"op": "slot", "slot": "order.sidebar", "min_height": "abc"})
    assert res.status_code == 400
    res = client.post(url, {"op": "nonsense"})
    assert res.status_code == 400


def test_console_page_refuses_members_and_outsiders(acme, bob, charlie, login_client):
    url = f"/orgs/{acme.org.pk}/console/embeds/"
    assert login_client(bob).get(url).status_code == 403
    assert login_client(charlie).get(url).status_code == 404
