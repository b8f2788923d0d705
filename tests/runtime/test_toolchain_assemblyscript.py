"""The AssemblyScript path for extension authors (pdk/assemblyscript): the committed
``build/order_tagger.wasm`` (built from ``assembly/order_tagger.ts`` with the pinned ``asc``)
runs in the sandbox like the C example and behaves the same. When the toolchain is installed
(``npm ci`` in pdk/assemblyscript; CI does that), rebuilding it must give the same bytes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import wasmtime

from apps.runtime import outcomes
from apps.runtime.limits import DEFAULT_LIMITS
from apps.runtime.models import KVEntry
from apps.runtime.runner import invoke

REPO = Path(__file__).resolve().parents[2]
PDK = REPO / "pdk" / "assemblyscript"
ASC = PDK / "node_modules" / ".bin" / "asc"
ORDER_TAGGER = (PDK / "build" / "order_tagger.wasm").read_bytes()
ORDER_CREATED = json.loads((REPO / "apps/events/catalog/order.created.json").read_text())["versions"][-1]["examples"][0]
SCOPES = ["kv:read", "kv:write"]


def test_module_imports_only_plaza():
    module = wasmtime.Module(wasmtime.Engine(), ORDER_TAGGER)
    imports = {(imp.module, imp.name) for imp in module.imports}
    # no env.abort (routed to the PDK's trapping abort) and no WASI at all
    assert imports == {
        ("plaza", name) for name in ("input_len", "input_read", "output_write", "log", "kv_get", "kv_set")
    }
    exports = {exp.name: exp.type for exp in module.exports}
    assert set(exports) == {"memory", "on_order_created"}
    assert isinstance(exports["memory"], wasmtime.MemoryType)
    hook = exports["on_order_created"]
    assert isinstance(hook, wasmtime.FuncType)
    assert [str(t) for t in hook.params] == [] and [str(t) for t in hook.results] == ["i32"]
    assert exports["memory"].limits.min * 65536 <= DEFAULT_LIMITS.memory_bytes // 4
    assert len(ORDER_TAGGER) < 16 * 1024


@pytest.mark.django_db
def test_order_tagger_runs_and_counts_in_kv():
    first = invoke(ORDER_TAGGER, "on_order_created", ORDER_CREATED, installation_id="ins_as1", scopes=SCOPES)
    assert first.outcome == outcomes.OK, first
    assert first.output == {"tags": ["items:1", "quantity:2", "currency:EUR"], "orders_seen": 1}
    assert first.logs == "order_tagger: ord_1001 has 1 line item(s), quantity 2\n"

    second = invoke(ORDER_TAGGER, "on_order_created", ORDER_CREATED, installation_id="ins_as1", scopes=SCOPES)
    assert second.outcome == outcomes.OK, second
    assert second.output["orders_seen"] == 2
    assert bytes(KVEntry.objects.get(installation_id="ins_as1", key="orders_seen").value) == b"2"

    other = invoke(ORDER_TAGGER, "on_order_created", ORDER_CREATED, installation_id="ins_as2", scopes=SCOPES)
    assert other.output["orders_seen"] == 1


@pytest.mark.django_db
def test_order_tagger_sums_several_line_items():
    order = {
        **ORDER_CREATED,
        "note": 'a "sku": in a note is not a line item',
        "line_items": [
            {"sku": "A", "quantity": 3, "unit_price": "1.00"},
            {"sku": "B", "title": "Bée", "quantity": 12, "unit_price": "2.00"},
        ],
    }
    result = invoke(ORDER_TAGGER, "on_order_created", order, installation_id="ins_as3", scopes=["kv:write"])
    assert result.outcome == outcomes.OK, result
    assert result.output == {"tags": ["items:2", "quantity:15", "currency:EUR", "bulk"], "orders_seen": 1}


def test_order_tagger_without_kv_write_is_refused():
    result = invoke(ORDER_TAGGER, "on_order_created", ORDER_CREATED, installation_id="ins_as1", scopes=["kv:read"])
    assert result.outcome == outcomes.CAPABILITY_NOT_GRANTED
    assert "plaza.kv_set" in result.detail and "kv:write" in result.detail


def test_order_tagger_without_input_fails_with_its_status():
    result = invoke(ORDER_TAGGER, "on_order_created", installation_id="ins_as1", scopes=SCOPES)
    assert result.outcome == outcomes.FAILED
    assert result.status == 2
    assert result.logs == "order_tagger: no input\n"


def test_pdk_codes_match_outcomes():
    source = (PDK / "assembly" / "plaza.ts").read_text()
    defined = dict(re.findall(r"export const (E_[A-Z_]+): i32 = (-\d+);", source))
    expected = {name: str(value) for name, value in vars(outcomes).items() if name.startswith("E_")}
    assert defined == expected


@pytest.mark.skipif(
    not ASC.exists(),
    reason="the AssemblyScript toolchain is not installed (cd pdk/assemblyscript && npm ci --no-audit --no-fund)",
)
def test_committed_module_is_the_build_output(tmp_path):
    out = tmp_path / "order_tagger.wasm"
    proc = subprocess.run(
        ["bash", str(PDK / "build.sh"), str(PDK / "assembly" / "order_tagger.ts"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    assert out.read_bytes() == ORDER_TAGGER, "build/order_tagger.wasm is stale: run npm run build in pdk/assemblyscript"
