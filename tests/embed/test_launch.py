"""Launches: the host backend starts them with embed:launch for a member on a registered origin."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.embed.models import Launch
from apps.orgs.models import Role
from tests.conftest import ApiClient, issue_token
from tests.embed.conftest import HOST


def _post(client, org, body):
    return client.call("POST", f"orgs/{org.pk}/embed/launches", body)


def test_launch_created_for_member_on_registered_origin(shop, bob):
    res = _post(shop.api(), shop.org, {"user_id": bob.pk, "host_origin": HOST, "context": {"order": "1001"}})
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["id"].startswith("lch_") and set(body) == {"id", "expires_at"}
    launch = Launch.objects.get(pk=body["id"])
    assert launch.user == bob and launch.host_origin == HOST and launch.context == {"order": "1001"}
    assert launch.view_key not in body["id"] and len(launch.view_key) >= 40
    assert AuditEvent.objects.filter(org_id=shop.org.pk, action="embed.launch_created").exists()


def test_launch_origin_is_normalised_before_matching(shop, bob):
    res = _post(shop.api(), shop.org, {"user_id": bob.pk, "host_origin": "HTTPS://Shop.Acme.test:443"})
    assert res.status_code == 201, res.content


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.test",
        "https://shop.acme.test.evil.test",
        "https://evilshop.acme.test",
        "http://shop.acme.test",
        "https://shop.acme.test:8443",
        "https://shop.acme.test/",
        "https://shop.acme.test/path",
        "https://*.acme.test",
        "null",
        "",
        "https://user@shop.acme.test",
    ],
)
def test_launch_refuses_unregistered_or_look_alike_origins(shop, bob, origin):
    res = _post(shop.api(), shop.org, {"user_id": bob.pk, "host_origin": origin})
    assert res.status_code == 400, res.content
    assert res.json()["error"]["param"] == "host_origin"


def test_launch_refuses_non_member_and_other_tenant_user(shop, charlie):
    res = _post(shop.api(), shop.org, {"user_id": charlie.pk, "host_origin": HOST})
    assert res.status_code == 400 and res.json()["error"]["code"] == "not_a_member"
    res = _post(shop.api(), shop.org, {"user_id": "usr_nonsense", "host_origin": HOST})
    assert res.status_code == 400 and res.json()["error"]["code"] == "not_a_member"


def test_launch_refuses_deactivated_member(shop, bob):
    bob.memberships.filter(org=shop.org).update(deactivated_at="2026-01-01T00:00:00Z")
    res = _post(shop.api(), shop.org, {"user_id": bob.pk, "host_origin": HOST})
    assert res.status_code == 400 and res.json()["error"]["code"] == "not_a_member"


def test_launch_needs_embed_launch_scope(shop, bob):
    client = ApiClient(issue_token(shop.org, scopes=["org:read"]))
    res = _post(client, shop.org, {"user_id": bob.pk, "host_origin": HOST})
    assert res.status_code == 403 and res.json()["error"]["code"] == "missing_scope"


def test_launch_needs_admin_role(shop, bob):
    client = ApiClient(issue_token(shop.org, role=Role.DEVELOPER, scopes=["embed:launch"]))
    res = _post(client, shop.org, {"user_id": bob.pk, "host_origin": HOST})
    assert res.status_code == 403


def test_launch_in_other_tenant_is_not_found(shop, globex, bob):
    client = ApiClient(issue_token(globex.org, scopes=["embed:launch"]))
    res = _post(client, shop.org, {"user_id": bob.pk, "host_origin": HOST})
    assert res.status_code == 404


def test_launch_unauthenticated_is_401(shop, bob):
    res = _post(ApiClient(), shop.org, {"user_id": bob.pk, "host_origin": HOST})
    assert res.status_code == 401


def test_launch_context_over_4kb_refused(shop, bob):
    res = _post(shop.api(), shop.org, {"user_id": bob.pk, "host_origin": HOST, "context": {"x": "a" * 4100}})
    assert res.status_code == 400 and res.json()["error"]["param"] == "context"


@pytest.mark.parametrize(
    "body",
    [{}, {"user_id": 5}, {"user_id": None, "host_origin": HOST}, {"host_origin": ["x"]}, {"context": "x"}, []],
)
def test_launch_hostile_bodies_are_400s(shop, bob, body):
    if isinstance(body, dict) and "user_id" not in body:
        body = {**body, "user_id": bob.pk}
    res = _post(shop.api(), shop.org, body)
    assert 400 <= res.status_code < 500
