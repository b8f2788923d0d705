"""Widget documents on each installation's own origin: the entry from the installed package with
an exact security policy, the nonce on its scripts, Plaza's <meta> tags; other package files;
refusals (expired launch, other tenant, undeclared entry); and routing by host."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from apps.core import clock
from apps.embed.models import Launch
from tests.embed.conftest import HOST, frames, widget_host


def _frame(shop, slot="order.sidebar", index=0, user=None):
    launch_id = shop.launch(user)
    frame = frames(Client(), launch_id, slot).json()["frames"][index]
    parts = urlsplit(frame["src"])
    return launch_id, frame, Client(HTTP_HOST=parts.netloc), parts.path


def test_widget_document_has_exact_headers_and_policy(shop):
    _, frame, client, path = _frame(shop)
    res = client.get(path)
    assert res.status_code == 200, res.content
    assert res["Content-Type"] == "text/html; charset=utf-8"
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", res["Content-Security-Policy"]).group(1)
    assert res["Content-Security-Policy"] == (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; font-src 'self'; "
        "connect-src 'self' http://127.0.0.1:8000; "
        "form-action 'self'; frame-src 'none'; object-src 'none'; base-uri 'none'; "
        f"frame-ancestors {HOST}"
    )
    assert res["Referrer-Policy"] == "no-referrer"
    assert res["Cache-Control"] == "no-store"
    assert res["X-Content-Type-Options"] == "nosniff"
    assert "X-Frame-Options" not in res


def test_connect_src_and_hashes_come_from_the_manifest(shop):
    _, frame, client, path = _frame(shop, index=1)  # the points widget declares connect_src
    policy = client.get(path)["Content-Security-Policy"]
    assert "connect-src 'self' http://127.0.0.1:8000 https://api.points.example;" in policy
    assert "form-action 'self' https://api.points.example;" in policy


def test_nonce_is_fresh_and_on_every_script_and_style(shop):
    _, _, client, path = _frame(shop)
    first, second = client.get(path), client.get(path)
    nonce = re.search(r"'nonce-([^']+)'", first["Content-Security-Policy"]).group(1)
    assert nonce != re.search(r"'nonce-([^']+)'", second["Content-Security-Policy"]).group(1)
    html = first.content.decode()
    assert html.count(f'<script nonce="{nonce}"') == 3
    assert f'<style nonce="{nonce}">' in html
    # the text "<script>" inside the inline script is script text, not a tag: left alone
    assert '"ran <script> inline"' in html


def test_meta_tags_name_the_parent_origin_and_installation(shop):
    _, frame, client, path = _frame(shop)
    html = client.get(path).content.decode()
    head = html.split("<head>", 1)[1]
    assert head.startswith(
        f'<meta name="plaza-parent-origin" content="{HOST}">'
        f'<meta name="plaza-installation" content="{frame["installation_id"]}">'
    )


def test_document_without_head_still_gets_meta_first(shop):
    launch_id = shop.launch()
    frame = frames(Client(), launch_id, "dashboard.card").json()["frames"][0]
    parts = urlsplit(frame["src"])
    html = Client(HTTP_HOST=parts.netloc).get(parts.path).content.decode()
    assert html.startswith('<!doctype html><meta name="plaza-parent-origin"')


def test_package_assets_are_served_with_their_type(shop):
    _, _, client, path = _frame(shop)
    base = path.rsplit("/", 1)[0]
    js = client.get(f"{base}/app.js")
    assert js.status_code == 200 and js["Content-Type"] == "text/javascript; charset=utf-8"
    assert js.content == b"export const x = 1;\n"
    assert js["X-Content-Type-Options"] == "nosniff" and "frame-ancestors" in js["Content-Security-Policy"]
    assert client.get(f"{base}/logo.png")["Content-Type"] == "image/png"
    assert client.get(f"{base}/other.html").status_code == 404  # HTML only as a declared entry
    assert client.get(f"{base}/missing.js").status_code == 404
    assert client.get(f"{base}/../extension.json").status_code == 404


def test_sdk_is_served_on_widget_origins_only(shop):
    _, _, client, _ = _frame(shop)
    res = client.get("/w/sdk.js")
    assert res.status_code in (200, 404)  # 404 until the front end's sdk.js exists
    if res.status_code == 200:
        assert res["Content-Type"] == "text/javascript; charset=utf-8"
    assert Client(HTTP_HOST="widgets.localhost:8000").get("/w/sdk.js").status_code == res.status_code
    assert Client().get("/w/sdk.js").status_code == 404


def test_document_of_another_installations_origin_is_not_served(shop):
    _, frame, _, path = _frame(shop)
    other = Client(HTTP_HOST=widget_host(shop.points.pk))
    res = other.get(path)  # notes' entry path exists in points' package too, but it is points' document
    assert res.status_code == 200
    assert f'content="{shop.points.pk}"' in res.content.decode()
    stranger = Client(HTTP_HOST="inst-01jaaaaaaaaaaaaaaaaaaaaaaa.widgets.localhost:8000")
    assert stranger.get(path).status_code == 404


def test_expired_launch_gets_410_page(shop):
    launch_id, _, client, path = _frame(shop)
    Launch.objects.filter(pk=launch_id).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    res = client.get(path)
    assert res.status_code == 410 and b"expired" in res.content
    assert res["Cache-Control"] == "no-store"


def test_unknown_view_and_other_tenant_installation_are_404(shop, globex, vendor):
    from apps.embed.services import embed_settings_update
    from apps.orgs.policy import Principal
    from tests.embed.conftest import install, release_widget

    _, _, client, path = _frame(shop)
    view = path.split("/")[2]
    assert client.get(path.replace(view, "A" * 43)).status_code == 404
    outsider = install(globex.org, globex.owner, release_widget(vendor, "outside"))
    embed_settings_update(principal=Principal(kind="user", user=globex.owner, mfa_verified=True), org=globex.org,
                          host_origins=["https://globex.test"])  # fmt: skip
    assert Client(HTTP_HOST=widget_host(outsider.pk)).get(path).status_code == 404


def test_blocked_installation_document_is_404(shop):
    _, _, client, path = _frame(shop)
    shop.notes.status = "blocked"
    shop.notes.save(update_fields=["status"])
    assert client.get(path).status_code == 404


# --- routing by host ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/api/v1/me", "/healthz", "/accounts/login/", "/embed/embed.js", "/demo-host/"])
def test_widget_origins_serve_nothing_but_w(shop, path):
    assert Client(HTTP_HOST=widget_host(shop.notes.pk)).get(path).status_code == 404
    assert Client(HTTP_HOST="widgets.localhost:8000").get(path).status_code == 404


@pytest.mark.parametrize("path", ["/w/sdk.js", "/w/x/y.html", "/demo-host/"])
def test_portal_origin_never_answers_w_or_demo_host(db, path):
    assert Client().get(path).status_code == 404


@pytest.mark.parametrize("path", ["/", "/api/v1/me", "/w/sdk.js", "/embed/embed.js"])
def test_demo_host_serves_only_demo_host(db, path):
    assert Client(HTTP_HOST="host.localhost:8000").get(path).status_code == 404


def test_widget_host_on_another_port_is_not_a_widget_host(shop):
    res = Client(HTTP_HOST=widget_host(shop.notes.pk).replace(":8000", ":9000")).get("/w/sdk.js")
    assert res.status_code in (400, 404)


@pytest.mark.parametrize(
    "host",
    [
        "inst-x.widgets.localhost:8000",
        "inst-01jaaaaaaaaaaaaaaaaaaaaaaa.evil.widgets.localhost:8000",
        "evil-inst-01jaaaaaaaaaaaaaaaaaaaaaaa.widgets.localhost:8000",
    ],
)
def test_malformed_widget_hosts_are_refused(db, host):
    assert Client(HTTP_HOST=host).get("/w/sdk.js").status_code in (400, 404)


def test_api_cors_for_widget_origins_only(shop):
    origin = "http://" + widget_host(shop.notes.pk)
    pre = Client().options("/api/v1/me", HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                           HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization")  # fmt: skip
    assert pre.status_code == 204 and pre["Access-Control-Allow-Origin"] == origin
    assert "Authorization" in pre["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in pre
    res = Client().get("/api/v1/me", HTTP_ORIGIN=origin)
    assert res["Access-Control-Allow-Origin"] == origin
    for bad in (HOST, "http://widgets.localhost:8000", "https://" + widget_host(shop.notes.pk), "null"):
        res = Client().options("/api/v1/me", HTTP_ORIGIN=bad, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
        assert "Access-Control-Allow-Origin" not in res
