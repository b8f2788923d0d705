"""Helpers of the installs tests: callers, installing through the API, a module that stores data."""

from __future__ import annotations

import wasmtime

from apps.installs.models import Installation
from apps.orgs.models import Organization
from apps.orgs.policy import Principal
from apps.runtime import host
from tests.conftest import ApiClient

SCOPES = ["events:read:order.created", "kv:read"]


def session(user) -> ApiClient:
    """An API client signed in as ``user`` (a person: browser session, no bearer token)."""
    client = ApiClient()
    client.force_login(user)
    return client


def person(user) -> Principal:
    """The principal of ``user`` as services see it after sign-in."""
    return Principal(kind="user", user=user, mfa_verified=True)


def install(client: ApiClient, org, version, *, scopes: list[str] | None = None, **extra):
    """POST an install of ``version`` (consenting to its scopes unless ``scopes`` says otherwise)."""
    body = {
        "extension_id": version.extension_id,
        "granted_scopes": list(version.scopes) if scopes is None else scopes,
        **extra,
    }
    return client.call("POST", f"orgs/{org.pk}/installations", body)


def installed(client: ApiClient, org, version, **extra) -> Installation:
    res = install(client, org, version, **extra)
    assert res.status_code == 201, res.content
    return Installation.objects.get(pk=res.json()["id"])


def sandbox_of(org) -> Organization:
    """The publisher's sandbox tenant (made with its first extension, or made here)."""
    return Organization.objects.filter(sandbox_of=org).first() or Organization.objects.create(
        name=f"{org.name} sandbox", slug=f"{org.slug}-sandbox", sandbox_of=org
    )


def _import(name: str) -> str:
    params, results, _ = host.FUNCTIONS[name]
    param = f" (param{' i32' * params})" if params else ""
    return f'(import "plaza" "{name}" (func ${name}{param}{" (result i32)" if results else ""}))'


# on_order_created stores the key "ran" = "true" and answers true: proof that it ran, as KV rows.
KV_MODULE = bytes(
    wasmtime.wat2wasm(
        "(module "
        + _import("kv_set")
        + _import("output_write")
        + '(memory (export "memory") 1)'
        + '(data (i32.const 1024) "ran")'
        + '(data (i32.const 1100) "true")'
        + '(func (export "on_order_created") (result i32)'
        + " (drop (call $kv_set (i32.const 1024) (i32.const 3) (i32.const 1100) (i32.const 4)))"
        + " (drop (call $output_write (i32.const 1100) (i32.const 4)))"
        + " (i32.const 0)))"
    )
)
KV_SCOPES = ["events:read:order.created", "kv:write"]
