"""Shared fixtures: named people and organisations returned as objects (healthchecks' alice/bob/charlie).

- ``acme``: an organisation with ``alice`` (owner), ``bob`` (member) and one member of each other role;
- ``globex``: another tenant, with ``charlie`` (owner) — the outsider for isolation tests.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.db import transaction
from django.test import Client

from apps.core.executor import executor
from apps.orgs import services
from apps.orgs.models import Organization, Role, ServiceAccount
from apps.orgs.policy import SCOPES, Principal
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests may talk to loopback only (PostgreSQL, Redis, the live server); anything else fails."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")
        ):
            raise OSError(f"tests must not reach the network ({host})")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _queued_mail(settings):
    """Django's test setup swaps EMAIL_BACKEND for locmem; put Plaza's queue back in front of it, so
    tests send mail the way production does (queued task → delivery backend, locmem in tests)."""
    settings.EMAIL_BACKEND = "apps.core.mail.QueuedEmailBackend"


@pytest.fixture(autouse=True)
def _fresh_executor():
    executor.clear()
    yield
    executor.clear()


def clear_cache() -> None:
    """Empties this test worker's share of the cache (parallel workers share one Redis)."""
    from django.conf import settings
    from django.core.cache import cache

    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    if prefix and "redis" in settings.CACHES["default"]["BACKEND"].lower():
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _clear_cache():
    clear_cache()
    yield


class _RolledBack(Exception):
    pass


@contextmanager
def rolled_back():
    """One case of a table test: the rows built once for the table stay, and whatever the case
    writes is rolled back (a savepoint), with the cache and the task queue emptied first, so no case
    sees another's writes. Lets a table build its objects once instead of once per case."""
    clear_cache()
    executor.clear()
    try:
        with transaction.atomic():
            yield
            raise _RolledBack
    except _RolledBack:
        pass


@dataclass
class Tenant:
    org: Organization
    owner: object
    members: dict  # role -> user

    def user(self, role: str):
        return self.members[role]


def make_tenant(slug: str, owner_email: str) -> Tenant:
    org = OrganizationFactory(slug=slug, name=slug.title())
    members = {}
    for role in Role.values:
        email = owner_email if role == Role.OWNER else f"{role}@{slug}.test"
        members[role] = MembershipFactory(org=org, role=role, user=UserFactory(email=email)).user
    from apps.orgs.models import Workspace

    Workspace.objects.create(org=org, name="Default", slug="default")
    return Tenant(org=org, owner=members[Role.OWNER], members=members)


@pytest.fixture
def acme(db) -> Tenant:
    return make_tenant("acme", "alice@acme.test")


@pytest.fixture
def globex(db) -> Tenant:
    return make_tenant("globex", "charlie@globex.test")


@pytest.fixture
def alice(acme):
    return acme.owner


@pytest.fixture
def bob(acme):
    return acme.members[Role.MEMBER]


@pytest.fixture
def charlie(globex):
    return globex.owner


@pytest.fixture
def password() -> str:
    return PASSWORD


def issue_token(
    org: Organization, *, role: str = Role.ADMIN, scopes: list[str] | None = None, expires_in_days: int | None = None
) -> str:
    """A fresh service account in ``org`` with one token; returns the secret."""
    sa = ServiceAccount.objects.create(org=org, name=f"robot-{role}", role=role)
    principal = Principal(kind="user", user=None, mfa_verified=True)
    _, raw = services.token_create(
        principal=principal,
        service_account=sa,
        name="test",
        scopes=scopes if scopes is not None else sorted(SCOPES),
        expires_in_days=expires_in_days,
    )
    return raw


# Safe production settings for tests that start Plaza in a subprocess in production mode.
PRODUCTION_ENV = {
    "PLAZA_ENV": "production",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "plaza.example.com",
    "PLAZA_BASE_URL": "https://plaza.example.com",
    "SECRET_KEY": "prod-" + "Zq9xW2vB7nM4kL8pR3tY6uI1oP5aS0dF" * 2,
    "PLAZA_SIGNING_KEY": "c2lnbmluZy1rZXktZm9yLWRlcGxveS1jaGVjay0zMmI=",
}


class MultipartForm:
    """A multipart body for ApiClient.call: plain fields (values may be callables, evaluated per
    request) and files (name -> bytes, sent as fresh uploads each time)."""

    def __init__(self, fields: dict, files: dict[str, bytes]):
        self._fields, self._files = fields, files

    def encode(self) -> dict:
        from django.core.files.uploadedfile import SimpleUploadedFile

        out = {k: v() if callable(v) else v for k, v in self._fields.items()}
        out.update(
            {k: SimpleUploadedFile(f"{k}.zip", v, content_type="application/zip") for k, v in self._files.items()}
        )
        return out


class ApiClient(Client):
    """A test client that speaks JSON to /api/v1/ with a bearer token."""

    def __init__(self, token: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.token = token

    def call(self, method: str, path: str, data=None, **extra):
        if self.token:
            extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.token}")
        url = path if path.startswith("/") else f"/api/v1/{path}"
        fn = getattr(self, method.lower())
        if method.upper() in ("GET", "DELETE", "HEAD"):
            return fn(url, data or {}, **extra)
        if isinstance(data, MultipartForm):
            return fn(url, data.encode(), **extra)
        return fn(url, data or {}, content_type="application/json", **extra)


@pytest.fixture
def api_for():
    """``api_for(org, role=…, scopes=…)`` → an ApiClient holding a token of a service account in ``org``."""

    def make(org, **kwargs) -> ApiClient:
        return ApiClient(issue_token(org, **kwargs))

    return make


@pytest.fixture
def login_client():
    """``login_client(user)`` → a Client signed in as ``user`` (password login, no second factor)."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
