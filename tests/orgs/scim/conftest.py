"""SCIM fixtures: a live Plaza, an organisation's SCIM token, and scim2-client (a SCIM client
library Plaza does not own) talking to it over HTTP.

``acme`` and ``globex`` here have verified their domains (``acme.test``, ``globex.test``): SCIM
creates and links accounts only at an organisation's verified domains."""

from __future__ import annotations

import warnings

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import EnterpriseUser, Group, User

from apps.core import clock
from apps.orgs.models import Domain, Role
from tests.conftest import issue_token


def scim_token(org) -> str:
    return issue_token(org, role=Role.ADMIN, scopes=["scim:write"])


def verify_domain(org, name: str) -> Domain:
    return Domain.objects.create(org=org, name=name, verification_token="t", verified_at=clock.now())


@pytest.fixture
def acme(acme):
    verify_domain(acme.org, "acme.test")
    return acme


@pytest.fixture
def globex(globex):
    verify_domain(globex.org, "globex.test")
    return globex


class Raw:
    """Plain HTTP to /scim/v2/ for what a client library would refuse to send (malformed input)."""

    def __init__(self, base: str, token: str | None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx2.Client(base_url=base, headers=headers, timeout=30)

    def __call__(self, method: str, path: str, body=None, **kwargs) -> httpx2.Response:
        if body is not None and not isinstance(body, (bytes, str)):
            kwargs["json"] = body
        elif body is not None:
            kwargs["content"] = body
        kwargs.setdefault("headers", {}).setdefault("Content-Type", "application/scim+json")
        return self.http.request(method, path, **kwargs)


@pytest.fixture
def scim_for(live_server):
    """``scim_for(org)`` → (scim2-client, raw client) holding a fresh SCIM token of ``org``."""
    opened = []

    def make(org, token: str | None = None):
        token = token or scim_token(org)
        base = f"{live_server.url}/scim/v2/"
        http = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # resource_models: still the documented way in 0.13
            client = SyncSCIMClient(http, resource_models=[User[EnterpriseUser], Group])
        client.discover()
        raw = Raw(base, token)
        opened.extend([http, raw.http])
        return client, raw

    yield make
    for http in opened:
        http.close()
