"""Regressions found in the security review of embeds: each test fails without its fix."""

from __future__ import annotations

import datetime as dt
import json
import logging
from urllib.parse import urlsplit

from django.test import Client

from apps.audit.models import AuditEvent
from apps.core import clock
from apps.embed.models import Launch
from apps.embed.services import launch_reference
from apps.installs.models import Installation
from apps.orgs.models import Role
from tests.conftest import ApiClient, issue_token
from tests.embed.conftest import HOST, frames, widget_host
from tests.embed.test_tokens import mint, token_for


def test_launch_id_never_reaches_the_audit_log(shop, bob):
    """The launch id mints tokens for every widget installation of the org; the audit log is
    readable with api:audit:read, which extensions (and their widgets' tokens) may hold."""
    launch_id = shop.launch(bob)
    widget_token = token_for(shop, shop.tenant.user(Role.ADMIN), shop.notes)  # notes holds api:audit:read
    res = ApiClient(widget_token).call("GET", f"orgs/{shop.org.pk}/audit-events")
    assert res.status_code == 200, res.content
    assert launch_id not in res.content.decode()
    entry = AuditEvent.objects.get(
        org_id=shop.org.pk, action="embed.launch_created", target_id=launch_reference(launch_id)
    )
    assert launch_id not in json.dumps(entry.changes) + entry.target_label


def test_widget_host_with_a_trailing_dot_serves_only_w(shop):
    """``Host: widgets.localhost.`` is the same host for Django's ALLOWED_HOSTS; it must not reach the portal."""
    for host in ("widgets.localhost.:8000", widget_host(shop.notes.pk).replace(":8000", ".:8000")):
        res = Client(HTTP_HOST=host).get("/accounts/login/")
        assert res.status_code == 404 and res.content == b"Not found.", host


def test_expired_launch_410_is_readable_by_its_host_page_only(shop):
    launch_id = shop.launch()
    Launch.objects.filter(pk=launch_id).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    res = frames(Client(), launch_id, "order.sidebar")
    assert res.status_code == 410 and res.json()["error"]["code"] == "launch_expired"
    assert res["Access-Control-Allow-Origin"] == HOST and res["Cache-Control"] == "no-store"
    other = frames(Client(), launch_id, "order.sidebar", origin="https://evil.example")
    assert other.status_code == 410 and "Access-Control-Allow-Origin" not in other


def test_no_token_for_a_person_who_left(shop, bob):
    launch_id = shop.launch(bob)
    bob.memberships.filter(org=shop.org).update(deactivated_at=clock.now())
    res = mint(launch_id, shop.notes.pk)
    assert res.status_code == 403 and res.json()["error"]["code"] == "not_a_member"


def test_live_token_narrows_when_the_person_is_demoted(shop):
    admin = shop.tenant.user(Role.ADMIN)
    token = token_for(shop, admin, shop.notes)  # carries audit:read (an admin's)
    api = ApiClient(token)
    assert api.call("GET", f"orgs/{shop.org.pk}/audit-events").status_code == 200
    admin.memberships.filter(org=shop.org).update(role=Role.MEMBER)
    assert api.call("GET", f"orgs/{shop.org.pk}/audit-events").status_code == 403
    assert api.call("GET", f"orgs/{shop.org.pk}").status_code == 200  # what a member may still read


def test_connect_src_only_for_granted_fetch_hosts(shop):
    """An admin who declined http:fetch:<host> must not find it in the widget's connect-src."""
    Installation.objects.filter(pk=shop.points.pk).update(
        granted_scopes=[s for s in shop.points.granted_scopes if not s.startswith("http:fetch:")]
    )
    launch_id = shop.launch()
    answer = frames(Client(), launch_id, "order.sidebar").json()
    frame = next(f for f in answer["frames"] if f["installation_id"] == shop.points.pk)
    parts = urlsplit(frame["src"])
    res = Client(HTTP_HOST=parts.netloc).get(parts.path)
    assert res.status_code == 200
    assert "api.points.example" not in res["Content-Security-Policy"]


def test_widget_error_page_has_no_unsafe_inline(shop):
    res = Client(HTTP_HOST=widget_host(shop.notes.pk)).get("/w/" + "x" * 43 + "/ui/sidebar.html")
    assert res.status_code == 404
    policy = res["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "style-src 'nonce-" in policy
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'nonce="{nonce}"'.encode() in res.content


def test_theme_upload_through_the_api_is_size_limited(acme):
    api = ApiClient(issue_token(acme.org, scopes=["embed:read", "embed:write"]))
    tokens = {"color": {"$type": "color", "bg": {"$value": "#ffffff", "$description": "x" * 200_000}}}
    res = api.call("POST", f"orgs/{acme.org.pk}/embed/themes", {"name": "Big", "tokens": tokens})
    assert res.status_code == 400 and res.json()["error"]["code"] == "theme_invalid"


def test_nan_infinity_and_nul_in_stored_json_are_400s_not_500s(shop, bob, login_client):
    """Python's json accepts NaN/Infinity (and the console's form path has no NUL filter); the
    database refuses them: an IntegrityError surfaced as a 409 (API) or a 500 (console)."""
    client = Client()
    launch = client.post(
        f"/api/v1/orgs/{shop.org.pk}/embed/launches",
        f'{{"user_id": "{bob.pk}", "host_origin": "{HOST}", "context": {{"x": NaN}}}}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {shop.host_token}",
    )
    assert launch.status_code == 400 and launch.json()["error"]["param"] == "context"
    theme = client.post(
        f"/api/v1/orgs/{shop.org.pk}/embed/themes",
        '{"name": "x", "tokens": {"c": {"$type": "color", "a": {"$value": "#fff", "$description": Infinity}}}}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issue_token(shop.org, scopes=['embed:write'])}",
    )
    assert theme.status_code == 400 and theme.json()["error"]["code"] == "theme_invalid"
    console = login_client(shop.tenant.owner)
    url = f"/orgs/{shop.org.pk}/console/embeds/"
    for doc in (
        '{"c": {"$type": "color", "a": {"$value": "#fff", "$description": NaN}}}',
        '{"c": {"$type": "color", "a": {"$value": "#fff", "$description": "\\u0000"}}}',
    ):
        res = console.post(url, {"op": "upload", "name": "N", "scheme": "light", "tokens": doc})
        assert res.status_code == 400, doc


def test_launch_id_is_not_written_to_the_logs_on_errors(shop, caplog):
    launch_id = shop.launch()
    with caplog.at_level(logging.INFO):
        assert mint(launch_id, "inst_" + "0" * 26).status_code == 404
        assert frames(Client(), launch_id, "order.sidebar", origin="https://evil.example").status_code == 403
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert launch_reference(launch_id) in text and launch_id not in text


def test_delegated_token_is_refused_by_management_and_minting_endpoints(shop):
    """Guard: even an admin's delegated token reaches only the extension-reachable reads."""
    admin = shop.tenant.user(Role.ADMIN)
    api = ApiClient(token_for(shop, admin, shop.notes))
    org = shop.org.pk
    for method, path, body in (
        ("POST", f"orgs/{org}/embed/launches", {"user_id": admin.pk, "host_origin": HOST}),
        ("PATCH", f"orgs/{org}/embed/settings", {"host_origins": []}),
        ("POST", f"orgs/{org}/installations/{shop.notes.pk}/entitlements", {"feature": "x"}),
        ("POST", f"orgs/{org}/service-accounts", {"name": "n", "role": "admin"}),
        ("GET", f"orgs/{org}/installations", None),
    ):
        res = api.call(method, path, body) if body is not None else api.call(method, path)
        assert res.status_code == 403, (method, path, res.content)
    assert api.call("GET", f"orgs/{org}/members").status_code == 200
