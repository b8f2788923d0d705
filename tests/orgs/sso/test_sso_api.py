"""The SSO API: configuration with a write-only secret, test connection against a real provider,
enable/disable/delete rules, and tenant isolation."""

from __future__ import annotations

import subprocess

import pytest

from apps.audit.models import AuditEvent
from apps.core.crypto import decrypt
from apps.orgs.models import Role, SsoConnection
from tests.orgs.sso.conftest import CLIENT_ID, CLIENT_SECRET, start_provider
from tests.orgs.test_authorization import assert_error

CONFIG = {"issuer": "https://idp.example.com", "client_id": "plaza", "client_secret": "first-secret-1234"}


@pytest.fixture
def provider():
    running = start_provider(["http://localhost:8000/accounts/oidc/x/login/callback/"])
    yield running
    running.process.terminate()
    try:
        running.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        running.process.kill()


def sso_path(org) -> str:
    return f"orgs/{org.pk}/sso"


def test_get_without_a_connection_is_404_sso_not_configured(acme, api_for):
    assert_error(api_for(acme.org, role=Role.ADMIN).call("GET", sso_path(acme.org)), 404, "sso_not_configured")


def test_put_creates_the_connection_and_never_returns_the_secret(acme, api_for):
    api = api_for(acme.org, role=Role.ADMIN)
    res = api.call("PUT", sso_path(acme.org), {**CONFIG, "default_role": "developer"})
    assert res.status_code == 200, res.content
    body = res.json()
    assert "first-secret-1234" not in res.content.decode()
    assert body["client_secret_last_four"] == "1234"
    assert body["provider_id"] == f"org-{acme.org.pk}"
    assert body["redirect_uri"].endswith(f"/accounts/oidc/org-{acme.org.pk}/login/callback/")
    assert (body["enabled"], body["default_role"], body["last_test_ok"]) == (False, "developer", None)
    connection = SsoConnection.objects.get(org=acme.org)
    assert decrypt(connection.client_secret_encrypted) == "first-secret-1234"
    assert "first-secret-1234" not in str(AuditEvent.objects.filter(action="sso.created").values("changes"))
    # leaving the secret out keeps it
    res = api.call("PUT", sso_path(acme.org), {"issuer": CONFIG["issuer"], "client_id": "plaza", "name": "Okta"})
    assert res.status_code == 200 and res.json()["client_secret_last_four"] == "1234"
    assert api.call("GET", sso_path(acme.org)).json()["name"] == "Okta"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"issuer": "http://idp.example.com"}, "issuer"),
        ({"issuer": "not a url"}, "issuer"),
        ({"scopes": "email profile"}, "scopes"),
        ({"default_role": "owner"}, "default_role"),
        ({"default_role": "emperor"}, "default_role"),
        ({"client_secret": None}, "client_secret"),
        ({"client_id": "  "}, "client_id"),
    ],
)
def test_put_refuses_invalid_configuration(acme, api_for, change, param):
    res = api_for(acme.org, role=Role.ADMIN).call("PUT", sso_path(acme.org), {**CONFIG, **change})
    error = assert_error(res, 400)
    assert error["param"] == param
    assert not SsoConnection.objects.filter(org=acme.org).exists()


def test_enable_needs_a_passed_test(acme, api_for):
    api = api_for(acme.org, role=Role.ADMIN)
    api.call("PUT", sso_path(acme.org), CONFIG)
    assert_error(api.call("PUT", sso_path(acme.org), {**CONFIG, "enabled": True}), 409, "sso_test_required")
    assert not SsoConnection.objects.get(org=acme.org).enabled


def test_test_connection_against_a_real_provider_passes_and_enables(acme, api_for, settings, provider):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    api = api_for(acme.org, role=Role.ADMIN)
    config = {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert api.call("PUT", sso_path(acme.org), config).status_code == 200
    res = api.call("POST", f"{sso_path(acme.org)}/test")
    assert res.status_code == 200, res.content
    body = res.json()
    assert body["ok"] is True, body
    assert {c["name"] for c in body["checks"]} >= {"discovery", "issuer", "endpoints", "pkce", "jwks"}
    assert api.call("GET", sso_path(acme.org)).json()["last_test_ok"] is True
    res = api.call("PUT", sso_path(acme.org), {**config, "enabled": True})
    assert res.status_code == 200 and res.json()["enabled"] is True
    assert AuditEvent.objects.filter(org_id=acme.org.pk, action="sso.enabled").exists()


def test_test_connection_with_a_wrong_issuer_fails_with_a_clear_message(acme, api_for, settings, provider):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    api = api_for(acme.org, role=Role.ADMIN)
    # the provider answers discovery, but names itself differently from what was entered
    wrong = provider.issuer.replace("127.0.0.1", "localhost")
    api.call("PUT", sso_path(acme.org), {**CONFIG, "issuer": wrong})
    body = api.call("POST", f"{sso_path(acme.org)}/test").json()
    issuer = next(c for c in body["checks"] if c["name"] == "issuer")
    assert body["ok"] is False and issuer["ok"] is False
    assert provider.issuer in issuer["detail"] and "enter exactly the issuer" in issuer["detail"]
    # a path with no discovery document at all
    api.call("PUT", sso_path(acme.org), {**CONFIG, "issuer": provider.issuer + "/nothing-here"})
    body = api.call("POST", f"{sso_path(acme.org)}/test").json()
    assert body["ok"] is False
    assert body["checks"][0]["name"] == "discovery" and "HTTP 404" in body["checks"][0]["detail"]
    assert SsoConnection.objects.get(org=acme.org).last_test_ok is False


def test_test_connection_refuses_private_addresses_in_production_mode(acme, api_for, settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = False
    SsoConnection.objects.create(org=acme.org, issuer="https://127.0.0.1:9", client_id="x")
    body = api_for(acme.org, role=Role.ADMIN).call("POST", f"{sso_path(acme.org)}/test").json()
    assert body["ok"] is False
    assert "Plaza does not connect" in body["checks"][0]["detail"] and "loopback" in body["checks"][0]["detail"]


def test_delete_is_refused_while_the_org_requires_sso_and_works_otherwise(acme, api_for):
    api = api_for(acme.org, role=Role.ADMIN)
    api.call("PUT", sso_path(acme.org), CONFIG)
    acme.org.sso_required = True
    acme.org.save(update_fields=["sso_required"])
    assert_error(api.call("DELETE", sso_path(acme.org)), 409, "sso_required")
    assert_error(api.call("PUT", sso_path(acme.org), {**CONFIG, "enabled": False}), 409, "sso_required")
    acme.org.sso_required = False
    acme.org.save(update_fields=["sso_required"])
    assert api.call("DELETE", sso_path(acme.org)).status_code == 204
    assert not SsoConnection.objects.filter(org=acme.org).exists()
    assert AuditEvent.objects.filter(org_id=acme.org.pk, action="sso.deleted").exists()


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("PUT", ""), ("POST", "/test"), ("DELETE", "")])
def test_another_tenant_cannot_see_or_touch_the_connection(acme, globex, api_for, login_client, method, suffix):
    # given acme's connection, and globex's owner (with a token and with a session)
    SsoConnection.objects.create(org=acme.org, issuer="https://idp.acme.example", client_id="acme")
    before = list(SsoConnection.objects.values())
    for client in (api_for(globex.org, role=Role.OWNER), login_client(globex.owner)):
        # when they call acme's SSO endpoints
        if hasattr(client, "call"):
            res = client.call(method, f"{sso_path(acme.org)}{suffix}", CONFIG)
        else:
            res = getattr(client, method.lower())(
                f"/api/v1/{sso_path(acme.org)}{suffix}",
                CONFIG if method == "PUT" else None,
                content_type="application/json",
            )
        # then acme does not exist for them, and nothing changed
        assert_error(res, 404, "not_found")
    assert list(SsoConnection.objects.values()) == before
    assert not AuditEvent.objects.filter(org_id=acme.org.pk, action__startswith="sso.").exists()


def test_sso_can_require_needs_an_enabled_connection(acme):
    from apps.orgs.sso.services import sso_can_require

    assert sso_can_require(acme.org) is False
    SsoConnection.objects.create(org=acme.org, issuer="https://idp.example.com", client_id="x", enabled=False)
    assert sso_can_require(acme.org) is False
    SsoConnection.objects.filter(org=acme.org).update(enabled=True)
    assert sso_can_require(acme.org) is True
