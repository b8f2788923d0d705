"""Fixtures for single sign-on: a real OpenID Connect provider (panva/oidc-provider, Node) on a free
loopback port, and an organisation whose verified domain routes to it.

The provider's node_modules come from ``npm ci`` in tests/orgs/sso/provider (.ci/run does it). When
they (or node) are missing the tests that need the provider are skipped, unless
``PLAZA_REQUIRE_BROWSER=1`` (CI), when they fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from apps.core import clock
from apps.orgs.models import Domain, Role, SsoConnection
from apps.orgs.sso import services

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
CLIENT_ID = "plaza-acme"
CLIENT_SECRET = "s3cret-from-the-idp-0042"


@dataclass
class OidcProvider:
    issuer: str
    process: subprocess.Popen


def _provider_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"run `npm ci` in {PROVIDER_DIR} to install the test OpenID Connect provider"
    return None


def start_provider(redirect_uris: list[str]) -> OidcProvider:
    missing = _provider_missing()
    if missing:
        if os.environ.get("PLAZA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"PLAZA_REQUIRE_BROWSER=1 but {missing}", pytrace=False)
        pytest.skip(missing)
    env = {
        **os.environ,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
        "NODE_ENV": "test",
    }
    process = subprocess.Popen(
        ["node", "provider.mjs"],
        cwd=PROVIDER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=20)
    if not line or not line[0].strip():
        process.kill()
        pytest.fail("the OpenID Connect provider did not start within 20 s")
    return OidcProvider(issuer=json.loads(line[0])["issuer"], process=process)


@pytest.fixture
def sso_org(acme, settings):
    """acme with acme.test verified and a connection (not yet pointing anywhere real)."""
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    Domain.objects.create(org=acme.org, name="acme.test", verification_token="t", verified_at=clock.now())
    return acme


@pytest.fixture
def oidc_provider(live_server, sso_org, settings):
    """A running provider whose one client is acme's connection, which is tested and enabled."""
    settings.PLAZA_BASE_URL = live_server.url
    provider_id = SsoConnection(org=sso_org.org).provider_id
    redirect_uri = f"{live_server.url}/accounts/oidc/{provider_id}/login/callback/"
    provider = start_provider([redirect_uri])
    try:
        connection = services.sso_connection_save(
            org=sso_org.org,
            name="Acme IdP",
            issuer=provider.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            default_role=Role.DEVELOPER,
        )
        result = services.sso_connection_test(connection=connection)
        assert result.ok, result.checks
        services.sso_connection_enable(connection=connection)
        yield provider
    finally:
        provider.process.terminate()
        try:
            provider.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            provider.process.kill()
            provider.process.wait(timeout=5)
