"""Submitting a version compiles its modules into the runtime's cache before anything calls them."""

from __future__ import annotations

import secrets

import pytest
import wasmtime

from apps.extensions import services
from apps.extensions.models import ExtensionVersion
from apps.runtime.engine import runtime
from apps.runtime.runner import invoke
from tests.extensions.conftest import manifest, package_bytes

pytestmark = pytest.mark.django_db


def test_submitting_a_version_compiles_its_modules_before_any_call(publisher, django_capture_on_commit_callbacks):
    # a module no other test compiled (its export name is random)
    name = f"hook_{secrets.token_hex(4)}"
    module = wasmtime.wat2wasm(f'(module (func (export "{name}") (result i32) (i32.const 0)))')
    res = publisher.upload(data=package_bytes(manifest(), files={"modules/main.wasm": module}))
    version = ExtensionVersion.objects.get(pk=res.json()["id"])
    before = runtime().compiles
    # when it is submitted (the queued task runs at once in tests: the executor is in manual mode)
    with django_capture_on_commit_callbacks(execute=True):
        services.version_submit(principal=None, version=version)
    # then the module was compiled once, and the first call compiles nothing
    assert runtime().compiles == before + 1
    assert invoke(module, name).outcome == "ok"
    assert runtime().compiles == before + 1
