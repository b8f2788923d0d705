"""The C path for extension authors (pdk/c): the fixture ``order_tagger.c`` is built with the Zig
toolchain from PyPI (``ziglang``, in requirements-dev.txt) through ``pdk/c/build.sh``, and the
module runs in the sandbox like any other.

The build happens once per test session. A cold Zig cache compiles wasi-libc first (~15 s on 2
cores); after that a build takes well under a second."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from apps.runtime import outcomes
from apps.runtime.limits import DEFAULT_LIMITS
from apps.runtime.models import KVEntry
from apps.runtime.runner import WASI, WASI_REFUSED, invoke

REPO = Path(__file__).resolve().parents[2]
PDK = REPO / "pdk" / "c"
ORDER_CREATED = json.loads((REPO / "apps/events/catalog/order.created.json").read_text())["versions"][-1]["examples"][0]
SCOPES = ["kv:read", "kv:write"]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ziglang") is None,
    reason="the ziglang package is not installed (pip install -r requirements-dev.txt)",
)


def build(source: Path, out: Path) -> bytes:
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(PDK / "build.sh"), str(source), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    return out.read_bytes()


@pytest.fixture(scope="session")
def order_tagger(tmp_path_factory) -> bytes:
    return build(PDK / "examples" / "order_tagger.c", tmp_path_factory.mktemp("pdk-c") / "order_tagger.wasm")


def test_module_imports_only_plaza_and_allowed_wasi(order_tagger):
    module = wasmtime.Module(wasmtime.Engine(), order_tagger)
    imports = {(imp.module, imp.name) for imp in module.imports}
    assert {m for m, _ in imports} <= {"plaza", WASI}
    assert not {name for m, name in imports if m == WASI} & WASI_REFUSED
    # only what order_tagger calls: no emit_event, no kv_delete, so kv:write is all it needs
    assert {name for m, name in imports if m == "plaza"} == {
        "input_len", "input_read", "output_write", "log", "kv_get", "kv_set",
    }  # fmt: skip
    exports = {exp.name: exp.type for exp in module.exports}
    assert isinstance(exports["memory"], wasmtime.MemoryType)
    hook = exports["on_order_created"]
    assert isinstance(hook, wasmtime.FuncType)
    assert [str(t) for t in hook.params] == [] and [str(t) for t in hook.results] == ["i32"]
    assert "_start" not in exports  # a reactor: nothing to run before the hook
    # the initial memory (data + the C stack) fits the sandbox's memory cap with room for the heap
    assert exports["memory"].limits.min * 65536 <= DEFAULT_LIMITS.memory_bytes // 4


@pytest.mark.django_db
def test_order_tagger_runs_and_counts_in_kv(order_tagger):
    first = invoke(order_tagger, "on_order_created", ORDER_CREATED, installation_id="ins_c1", scopes=SCOPES)
    assert first.outcome == outcomes.OK, first
    assert first.output == {"tags": ["items:1", "quantity:2", "currency:EUR"], "orders_seen": 1}
    assert first.logs == "order_tagger: ord_1001 has 1 line item(s), quantity 2\n"

    second = invoke(order_tagger, "on_order_created", ORDER_CREATED, installation_id="ins_c1", scopes=SCOPES)
    assert second.outcome == outcomes.OK, second
    assert second.output["orders_seen"] == 2
    assert bytes(KVEntry.objects.get(installation_id="ins_c1", key="orders_seen").value) == b"2"

    # another installation has its own counter
    other = invoke(order_tagger, "on_order_created", ORDER_CREATED, installation_id="ins_c2", scopes=SCOPES)
    assert other.output["orders_seen"] == 1


@pytest.mark.django_db
def test_order_tagger_sums_several_line_items(order_tagger):
    order = {
        **ORDER_CREATED,
        "note": 'a "sku": in a note is not a line item',
        "line_items": [
            {"sku": "A", "quantity": 3, "unit_price": "1.00"},
            {"sku": "B", "title": "Bee", "quantity": 12, "unit_price": "2.00"},
        ],
    }
    result = invoke(order_tagger, "on_order_created", order, installation_id="ins_c3", scopes=["kv:write"])
    assert result.outcome == outcomes.OK, result
    assert result.output == {"tags": ["items:2", "quantity:15", "currency:EUR", "bulk"], "orders_seen": 1}


def test_order_tagger_without_kv_write_is_refused(order_tagger):
    result = invoke(order_tagger, "on_order_created", ORDER_CREATED, installation_id="ins_c1", scopes=["kv:read"])
    assert result.outcome == outcomes.CAPABILITY_NOT_GRANTED
    assert "plaza.kv_set" in result.detail and "kv:write" in result.detail


def test_order_tagger_without_input_fails_with_its_status(order_tagger):
    result = invoke(order_tagger, "on_order_created", installation_id="ins_c1", scopes=SCOPES)
    assert result.outcome == outcomes.FAILED
    assert result.status == 2
    assert result.logs == "order_tagger: no input\n"


def test_header_codes_match_outcomes():
    header = (PDK / "plaza.h").read_text()
    defined = dict(re.findall(r"#define PLAZA_(E_[A-Z_]+) +\((-\d+)\)", header))
    expected = {name: str(value) for name, value in vars(outcomes).items() if name.startswith("E_")}
    assert defined == expected
