"""Invocation records and the local run command."""

from __future__ import annotations

import hashlib
import json
from io import StringIO

import pytest
import wasmtime
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.runtime.runner import invoke
from apps.runtime.services import invocation_record

ECHO = """(module
  (import "plaza" "input_len" (func $ilen (result i32)))
  (import "plaza" "input_read" (func $iread (param i32) (result i32)))
  (import "plaza" "output_write" (func $owrite (param i32 i32) (result i32)))
  (import "plaza" "log" (func $log (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "echoed")
  (func (export "echo") (result i32)
    (drop (call $iread (i32.const 0)))
    (drop (call $log (i32.const 4096) (i32.const 6)))
    (drop (call $owrite (i32.const 0) (call $ilen)))
    (i32.const 0)))"""


@pytest.mark.django_db
def test_a_call_is_recorded_without_its_data():
    module = wasmtime.wat2wasm(ECHO)
    sha = hashlib.sha256(module).hexdigest()
    result = invoke(module, "echo", {"secret": "customer data"}, sha256=sha)
    record = invocation_record(
        result=result, module_sha256=sha, export="echo", installation_id="ins_x", correlation_id="c1"
    )
    assert record.pk.startswith("ivc_") and record.outcome == "ok" and record.log_excerpt == "echoed\n"
    assert record.input_bytes == len(b'{"secret":"customer data"}') and record.output_bytes == record.input_bytes
    assert record.fuel_used > 0 and record.memory_peak_bytes == 65536 and record.duration_us > 0
    assert "customer data" not in json.dumps(list(type(record).objects.values()), default=str)


def test_run_module_runs_a_wat_file_with_the_default_limits(tmp_path):
    (tmp_path / "echo.wat").write_text(ECHO)
    (tmp_path / "in.json").write_text('{"order": 1}')
    out = StringIO()
    call_command("run_module", str(tmp_path / "echo.wat"), "echo", "--input", str(tmp_path / "in.json"), stdout=out)
    shown = json.loads(out.getvalue())
    assert shown["outcome"] == "ok" and shown["output"] == {"order": 1} and shown["logs"] == "echoed\n"


def test_run_module_exits_non_zero_on_a_bad_outcome_and_explains_bad_files(tmp_path):
    (tmp_path / "echo.wat").write_text(ECHO)
    with pytest.raises(SystemExit):
        call_command("run_module", str(tmp_path / "echo.wat"), "missing", stdout=StringIO())
    (tmp_path / "broken.wat").write_text("(module (func")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("run_module", str(tmp_path / "broken.wat"), "echo", stdout=StringIO())
