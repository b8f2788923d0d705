"""Hostile input to the browser-facing embed endpoints: never a 500, always a refusal."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.embed.conftest import HOST, widget_host

WEIRD = ["%00", "..%2F..%2Fetc", "%E2%80%AE", "a" * 500, "lch_%27%20OR%201%3D1", "%F0%9F%92%A9", "%2F%2F"]


@pytest.mark.parametrize("value", WEIRD)
def test_launch_endpoints_refuse_garbage_ids(db, value):
    client = Client()
    for path in (f"/embed/v1/launches/{value}/slots/order.sidebar", f"/embed/v1/launches/{value}/theme"):
        res = client.get(path, HTTP_ORIGIN=HOST)
        assert res.status_code in (400, 404), (path, res.status_code)
    res = client.post(f"/embed/v1/launches/{value}/tokens", "{}", content_type="application/json", HTTP_ORIGIN=HOST)
    assert res.status_code in (400, 404)


@pytest.mark.parametrize("slot", WEIRD)
def test_frames_with_garbage_slot_names(shop, slot):
    res = Client().get(f"/embed/v1/launches/{shop.launch()}/slots/{slot}", HTTP_ORIGIN=HOST)
    assert res.status_code in (200, 404) and res.status_code != 500


def test_token_endpoint_with_huge_and_odd_bodies(shop):
    launch_id = shop.launch()
    url = f"/embed/v1/launches/{launch_id}/tokens"
    for body in (b"x" * 10000, b'{"installation_id": "' + b"a" * 5000 + b'"}', b"\x00", b'{"installation_id": null}'):
        res = Client().post(url, body, content_type="application/json", HTTP_ORIGIN=HOST)
        assert res.status_code == 400 or res.status_code == 404
    res = Client().post(url, "installation_id=x", content_type="application/x-www-form-urlencoded", HTTP_ORIGIN=HOST)
    assert res.status_code == 400


@pytest.mark.parametrize("path", ["/w/%00/x.html", "/w/" + "a" * 40 + "/%2e%2e/extension.json", "/w/" + "b" * 30 + "/",
                                  "/w/" + "c" * 30 + "/" + "d" * 300, "/w/sdk.js/../x"])  # fmt: skip
def test_widget_paths_with_garbage(shop, path):
    res = Client(HTTP_HOST=widget_host(shop.notes.pk)).get(path)
    assert res.status_code in (400, 404, 410)


@pytest.mark.parametrize(
    "host", ["widgets.localhost:8000\x00", "WIDGETS.LOCALHOST:8000", "inst-.widgets.localhost:8000"]
)
def test_odd_host_headers(db, host):
    res = Client(HTTP_HOST=host).get("/w/sdk.js")
    assert res.status_code in (200, 400, 404)
