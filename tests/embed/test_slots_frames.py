"""The frames of a slot: order, attributes, limits, and CORS exactly for the launch's host origin."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from apps.core import clock
from apps.embed.models import Launch
from apps.embed.origins import widget_origin
from apps.orgs.policy import Principal
from tests.embed.conftest import HOST, frames


def test_frames_list_each_installation_in_install_order_with_exact_attributes(shop):
    launch_id = shop.launch()
    view_key = Launch.objects.get(pk=launch_id).view_key
    res = frames(Client(), launch_id, "order.sidebar")
    assert res.status_code == 200, res.content
    assert res["Access-Control-Allow-Origin"] == HOST
    assert res["Cache-Control"] == "no-store"
    got = res.json()["frames"]
    assert [f["installation_id"] for f in got] == [shop.notes.pk, shop.points.pk]
    notes, points = got
    assert notes == {
        "installation_id": shop.notes.pk,
        "extension_id": shop.notes.extension_id,
        "title": "Notes",
        "src": f"{widget_origin(shop.notes.pk)}/w/{view_key}/ui/sidebar.html",
        "origin": widget_origin(shop.notes.pk),
        "sandbox": "allow-scripts allow-same-origin allow-forms",
        "allow": "",
        "referrerpolicy": "no-referrer",
        "height": 300,
        "min_height": 80,
        "max_height": 800,
    }
    assert points["sandbox"] == "allow-scripts allow-same-origin allow-forms allow-popups"
    assert points["allow"] == "clipboard-write"
    assert "top-navigation" not in points["sandbox"]
    assert launch_id not in notes["src"] and launch_id not in points["src"]
    assert notes["origin"] != points["origin"]  # each installation its own origin


def test_widget_origin_is_per_installation_under_the_widget_host(shop):
    origin = widget_origin(shop.notes.pk)
    assert origin == f"http://{shop.notes.pk.lower().replace('_', '-')}.widgets.localhost:8000"


def test_frames_are_stable_across_calls(shop):
    launch_id = shop.launch()
    first = frames(Client(), launch_id, "dashboard.card").json()
    assert first == frames(Client(), launch_id, "dashboard.card").json()
    assert [f["height"] for f in first["frames"]] == [200, 200]  # the slot's default height


def test_unknown_or_undeclared_slot_has_no_frames(shop):
    launch_id = shop.launch()
    for slot in ("customer.sidebar", "no.such.slot", "x" * 300, "<script>"):
        res = frames(Client(), launch_id, slot)
        assert res.status_code == 200 and res.json() == {"frames": [], "context": {}}


def test_slot_override_clamps_heights_and_hides(shop):
    launch_id = shop.launch()
    api = shop.api()
    admin_api = _admin(shop)
    res = admin_api.call("PUT", f"orgs/{shop.org.pk}/embed/slots/order.sidebar", {"min_height": 100, "max_height": 250})
    assert res.status_code == 200, res.content
    got = frames(Client(), launch_id, "order.sidebar").json()["frames"]
    assert {(f["min_height"], f["max_height"], f["height"]) for f in got} == {(100, 250, 250)}
    admin_api.call("PUT", f"orgs/{shop.org.pk}/embed/slots/order.sidebar", {"hidden": True})
    assert frames(Client(), launch_id, "order.sidebar").json() == {"frames": [], "context": {}}
    assert api.call("GET", f"orgs/{shop.org.pk}/embed/slots").status_code == 403  # embed:launch only


def _admin(shop):
    from tests.conftest import ApiClient, issue_token

    return ApiClient(issue_token(shop.org, scopes=["embed:read", "embed:write"]))


def test_blocked_or_uninstalled_installation_has_no_frame(shop):
    launch_id = shop.launch()
    shop.points.status = "blocked"
    shop.points.save(update_fields=["status"])
    got = frames(Client(), launch_id, "order.sidebar").json()["frames"]
    assert [f["installation_id"] for f in got] == [shop.notes.pk]


def test_slot_not_granted_has_no_frame(shop, vendor):
    from tests.embed.conftest import install, release_widget

    inst = install(shop.org, shop.tenant.owner, release_widget(vendor, "ungranted"))
    assert len(frames(Client(), shop.launch(), "order.sidebar").json()["frames"]) == 3
    inst.granted_scopes = [s for s in inst.granted_scopes if s != "ui:slot:order.sidebar"]
    inst.save(update_fields=["granted_scopes"])
    got = frames(Client(), shop.launch(), "order.sidebar").json()["frames"]
    assert inst.pk not in [f["installation_id"] for f in got] and len(got) == 2


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.test",
        "https://shop.acme.test.evil.test",
        "http://shop.acme.test",
        "https://shop.acme.test:444",
        "https://shop.acme.tes",
        "null",
        "https://SHOP.acme.test",
    ],
)
def test_frames_refuse_other_and_look_alike_origins(shop, origin):
    res = frames(Client(), shop.launch(), "order.sidebar", origin=origin)
    assert res.status_code == 403
    assert "Access-Control-Allow-Origin" not in res


def test_preflight_answers_only_the_host_origin(shop):
    launch_id = shop.launch()
    url = f"/embed/v1/launches/{launch_id}/tokens"
    ok = Client().options(url, HTTP_ORIGIN=HOST, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type")  # fmt: skip
    assert ok.status_code == 204
    assert ok["Access-Control-Allow-Origin"] == HOST and ok["Access-Control-Allow-Methods"] == "POST"
    assert ok["Access-Control-Allow-Headers"] == "Content-Type"
    assert "Access-Control-Allow-Credentials" not in ok
    bad = Client().options(url, HTTP_ORIGIN="https://evil.test", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad
    assert "*" not in ok["Access-Control-Allow-Origin"]


def test_expired_launch_is_410_and_unknown_is_404(shop):
    launch_id = shop.launch()
    Launch.objects.filter(pk=launch_id).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    res = frames(Client(), launch_id, "order.sidebar")
    assert res.status_code == 410 and res.json()["error"]["code"] == "launch_expired"
    for bad in ("lch_01JAAAAAAAAAAAAAAAAAAAAAAA", "nope", "lch_" + "Z" * 200):
        assert frames(Client(), bad, "order.sidebar").status_code == 404


def test_launch_of_other_tenant_never_shows_this_tenants_widgets(shop, globex, vendor):
    from apps.embed.services import embed_settings_update
    from tests.embed.conftest import install, release_widget

    install(globex.org, globex.owner, release_widget(vendor, "globexonly"))
    embed_settings_update(
        principal=Principal(kind="user", user=globex.owner, mfa_verified=True), org=globex.org,
        host_origins=["https://globex.test"],
    )  # fmt: skip
    got = frames(Client(), shop.launch(), "order.sidebar").json()["frames"]
    assert all(f["installation_id"] in (shop.notes.pk, shop.points.pk) for f in got)
