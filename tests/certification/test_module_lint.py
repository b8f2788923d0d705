"""The ``module`` certification check, and the WebAssembly reader under it against hostile bytes.

Fixture modules are written in WAT and assembled with ``wasmtime.wat2wasm`` (helpers as in
tests/runtime/test_sandbox.py); each test packages one module with a manifest and asserts the exact
rule ids the check reports."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.certification import wasm
from apps.certification.checks import ERROR, CheckContext
from apps.certification.checks.module_lint import ModuleLintCheck
from apps.extensions.packages import build_package, read_package
from apps.runtime import host
from apps.runtime.limits import DEFAULT_LIMITS

PATH = "modules/main.wasm"


# --- WAT helpers ----------------------------------------------------------------------------------
def _plaza_import(name: str) -> str:
    params, results, _fn = host.FUNCTIONS[name]
    param = f" (param{' i32' * params})" if params else ""
    result = " (result i32)" if results else ""
    return f'(import "plaza" "{name}" (func ${name}{param}{result}))'


def module(*parts: str, imports=(), pages: int = 1, memory: bool = True) -> bytes:
    """A module: ``imports`` are plaza function names or raw ``(import …)`` forms, then the exported
    memory of ``pages`` pages and ``parts``."""
    lines = [imp if imp.startswith("(") else _plaza_import(imp) for imp in imports]
    if memory:
        lines.append(f'(memory (export "memory") {pages})')
    lines += parts
    return bytes(wasmtime.wat2wasm("(module\n  " + "\n  ".join(lines) + ")"))


def hook(name: str, *body: str) -> str:
    """An export ``name`` of type () -> i32 (returning 0 unless ``body`` says otherwise)."""
    return f'(func (export "{name}") (result i32)\n    ' + "\n    ".join(body or ("(i32.const 0)",)) + ")"


# --- a context without a database ----------------------------------------------------------------
@dataclass
class _Version:
    manifest: dict
    package_sha256: str = ""


def manifest(**changes) -> dict:
    base = {
        "manifest_version": 1,
        "id": "acme.tagger",
        "version": "1.0.0",
        "name": "Tagger",
        "summary": "Tags orders.",
        "platform": {"api": "^1.0"},
        "scopes": ["events:read:order.created"],
        "modules": {"main": PATH},
        "hooks": [{"event": "order.created", "module": "main", "export": "on_order_created"}],
    }
    return {**base, **changes}


def context(files: dict[str, bytes], **changes) -> CheckContext:
    m = manifest(**changes)
    ctx = CheckContext(version=_Version(m))
    ctx.__dict__["package"] = read_package(build_package(files, manifest=m))
    return ctx


def lint(data: bytes | None, **changes):
    return ModuleLintCheck().run(context({PATH: data} if data is not None else {}, **changes))


def rules(outcome) -> list[str]:
    return sorted(f.rule for f in outcome.findings)


CLEAN = module(
    hook(
        "on_order_created",
        "(drop (call $output_write (i32.const 0) (call $input_read (i32.const 0))))",
        "(i32.const 0)",
    ),
    imports=["input_len", "input_read", "output_write", "log"],
)


# --- the check ------------------------------------------------------------------------------------
def test_clean_module_has_no_findings_and_is_measured():
    outcome = lint(CLEAN)
    assert outcome.findings == []
    assert outcome.status == "passed"
    measured = outcome.measurements["main"]
    assert measured["size"] == len(CLEAN)
    assert measured["imports"] == ["plaza.input_len", "plaza.input_read", "plaza.output_write", "plaza.log"]
    assert measured["exports"] == 2
    assert (measured["memory_min_pages"], measured["memory_max_pages"]) == (1, None)
    assert len(measured["sha256"]) == 64


def test_every_finding_names_a_location_and_a_hint():
    outcome = lint(module(hook("on_order_created"), imports=["kv_set", '(import "env" "abort" (func))']))
    assert outcome.findings
    assert all(f.location and f.hint and f.message and f.severity == ERROR for f in outcome.findings)


def test_declared_module_absent_from_the_package_is_missing():
    outcome = lint(None)
    assert rules(outcome) == ["module.missing"]
    assert outcome.findings[0].location == "$.modules.main"


def test_bytes_that_are_not_wasm_are_invalid():
    assert rules(lint(b"(module)")) == ["module.invalid"]


def test_module_that_parses_but_does_not_validate_is_invalid():
    # well-formed, but the body leaves nothing on the stack for its i32 result: only wasmtime sees it
    outcome = lint(module('(func (export "on_order_created") (result i32))'))
    assert rules(outcome) == ["module.invalid"]
    assert "does not compile" in outcome.findings[0].message


def test_module_over_the_size_limit_is_too_large(settings):
    settings.PLAZA_MODULE_MAX_BYTES = len(CLEAN) - 1
    assert rules(lint(CLEAN)) == ["module.too_large"]


def test_import_from_an_unknown_module_is_unknown():
    outcome = lint(module(hook("on_order_created"), imports=['(import "env" "abort" (func))']))
    assert rules(outcome) == ["module.unknown_import"]
    assert outcome.findings[0].location == f"{PATH}: import env.abort"


def test_unknown_plaza_function_is_unknown():
    assert rules(lint(module(hook("on_order_created"), imports=['(import "plaza" "exec" (func))']))) == [
        "module.unknown_import"
    ]


def test_wasi_function_the_runtime_refuses_is_unknown():
    imp = '(import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))'
    assert rules(lint(module(hook("on_order_created"), imports=[imp]))) == ["module.unknown_import"]


def test_wasi_function_wasmtime_does_not_define_is_unknown():
    imp = '(import "wasi_snapshot_preview1" "no_such_call" (func))'
    outcome = lint(module(hook("on_order_created"), imports=[imp]))
    assert rules(outcome) == ["module.unknown_import"]
    assert "no_such_call" in outcome.findings[0].message


def test_wasi_function_that_links_is_allowed():
    imp = '(import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))'
    assert lint(module(hook("on_order_created"), imports=[imp])).findings == []


@pytest.mark.parametrize(
    "imp",
    [
        '(import "plaza" "memory" (memory 1))',
        '(import "plaza" "table" (table 1 funcref))',
        '(import "plaza" "counter" (global i32))',
    ],
)
def test_imported_memory_table_or_global_is_unknown(imp):
    outcome = lint(module(hook("on_order_created"), imports=[imp], memory="memory" not in imp))
    assert "module.unknown_import" in rules(outcome)


@pytest.mark.parametrize(
    ("function", "scope"),
    [("kv_get", "kv:read"), ("kv_set", "kv:write"), ("emit_event", "events:emit:order.tagged"),
     ("http_fetch", "http:fetch:api.example.com")],
)  # fmt: skip
def test_capability_import_without_its_scope_is_undeclared(function, scope):
    data = module(hook("on_order_created"), imports=[function])
    outcome = lint(data)
    assert rules(outcome) == ["module.undeclared_import"]
    assert outcome.findings[0].location == f"{PATH}: import plaza.{function}"
    assert host.CAPABILITY_OF[function] in outcome.findings[0].hint
    # given the scope, the same module is clean
    assert lint(data, scopes=["events:read:order.created", scope]).findings == []


def test_kv_write_also_grants_kv_read():
    assert lint(module(hook("on_order_created"), imports=["kv_get"]), scopes=["kv:write"]).findings == []


def test_kv_read_does_not_grant_kv_write():
    assert rules(lint(module(hook("on_order_created"), imports=["kv_set"]), scopes=["kv:read"])) == [
        "module.undeclared_import"
    ]


def test_plaza_import_with_the_wrong_type_is_reported():
    imp = '(import "plaza" "log" (func (param i32) (result i32)))'
    outcome = lint(module(hook("on_order_created"), imports=[imp]))
    assert rules(outcome) == ["module.import_signature"]
    assert "(i32, i32) -> i32" in outcome.findings[0].message


def test_hook_export_the_module_lacks_is_missing():
    outcome = lint(module(hook("on_something_else")))
    assert rules(outcome) == ["module.missing_export"]
    assert outcome.findings[0].location == "$.hooks[0].export"


def test_hook_name_exported_as_a_memory_is_missing():
    data = module('(memory (export "on_order_created") 1)', hook("unused"))
    assert rules(lint(data)) == ["module.missing_export"]


def test_tool_export_the_module_lacks_is_missing():
    tool = {"name": "tag", "description": "Tag.", "module": "main", "export": "tag_order", "input_schema": {}}
    outcome = lint(CLEAN, tool_packs=[{"name": "tags", "description": "Tags.", "tools": [tool]}])
    assert rules(outcome) == ["module.missing_export"]
    assert outcome.findings[0].location == "$.tool_packs[0].tools[0].export"


def test_hook_export_with_the_wrong_type_is_reported():
    data = module('(func (export "on_order_created") (param i32) (result i32) (local.get 0))')
    outcome = lint(data)
    assert rules(outcome) == ["module.export_signature"]
    assert "(i32) -> i32" in outcome.findings[0].message


def test_initial_memory_over_the_cap_is_too_large():
    pages = DEFAULT_LIMITS.memory_bytes // wasm.PAGE + 1
    assert rules(lint(module(hook("on_order_created"), pages=pages))) == ["module.memory_too_large"]


def test_initial_memory_at_the_cap_is_fine():
    assert lint(module(hook("on_order_created"), pages=DEFAULT_LIMITS.memory_bytes // wasm.PAGE)).findings == []


def test_shared_memory_is_unsupported():
    data = module(hook("on_order_created"), "(memory 1 2 shared)", memory=False)
    assert rules(lint(data)) == ["module.memory_unsupported"]


def test_pointer_host_functions_without_an_exported_memory_are_reported():
    data = module(hook("on_order_created"), "(memory 1)", imports=["output_write"], memory=False)
    assert rules(lint(data)) == ["module.memory_not_exported"]


def test_no_exported_memory_is_fine_without_pointer_host_functions():
    assert lint(module(hook("on_order_created"), imports=["input_len"], memory=False)).findings == []


def test_a_start_function_is_noted_not_refused():
    # it runs inside instantiation, under the call's fuel, deadline and memory cap (runner.py)
    data = module(hook("on_order_created"), "(func $init)", "(start $init)")
    outcome = lint(data)
    assert rules(outcome) == ["module.start_section"]
    assert outcome.findings[0].severity == "info" and outcome.status == "passed"


def test_every_module_of_the_manifest_is_checked():
    ctx = context(
        {PATH: CLEAN, "modules/tools.wasm": module(imports=["kv_set"])},
        modules={"main": PATH, "tools": "modules/tools.wasm"},
    )
    outcome = ModuleLintCheck().run(ctx)
    assert rules(outcome) == ["module.undeclared_import"]
    assert set(outcome.measurements) == {"main", "tools"}


# --- the reader -----------------------------------------------------------------------------------
def test_reader_returns_imports_exports_and_memory():
    parsed = wasm.parse(module(hook("run"), "(func $f)", "(start $f)", imports=["log"], pages=3))
    assert [(i.module, i.name, str(i.func_type)) for i in parsed.imports] == [("plaza", "log", "(i32, i32) -> i32")]
    assert parsed.memories == [wasm.Limits(3, None)]
    assert {e.name: e.kind for e in parsed.exports} == {"memory": "memory", "run": "func"}
    assert parsed.export("run").func_type == wasm.FuncType((), ("i32",))
    assert parsed.start == 2


def test_reader_reports_shared_and_64_bit_memories():
    shared = wasm.parse(bytes(wasmtime.wat2wasm("(module (memory 1 2 shared))"))).memories[0]
    wide = wasm.parse(bytes(wasmtime.wat2wasm("(module (memory i64 1))"))).memories[0]
    assert (shared.shared, shared.maximum, wide.is64) == (True, 2, True)


def test_reader_reads_gc_types():
    parsed = wasm.parse(
        bytes(wasmtime.wat2wasm('(module (type (struct (field i8))) (func (export "f") (result i32) (i32.const 0)))'))
    )
    assert parsed.types[0] is None
    assert str(parsed.export("f").func_type) == "() -> i32"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\0asm",
        b"\0asm\x01\0\0",
        b"\0asm\x0d\0\x01\0",  # a component, not a module
        b"\0asm\x01\0\0\0\x01",  # section id, then nothing
        b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x7f",  # LEB128 with too many bits for u32
        b"\0asm\x01\0\0\0\x01\x80\x80\x80\x80\x80\x01",  # LEB128 longer than five bytes
        b"\0asm\x01\0\0\0\x01\x05\x01\x60",  # section longer than the data
        b"\0asm\x01\0\0\0\x02\x06\xff\xff\xff\xff\x0f\x00",  # four billion imports in six bytes
        b"\0asm\x01\0\0\0\x01\x04\x01\x60\x00\x00\x01\x04\x01\x60\x00\x00",  # type section twice
        b"\0asm\x01\0\0\0\x03\x02\x01\x00",  # a function of a type that does not exist
        b"\0asm\x01\0\0\0\x07\x05\x01\x01\xff\x00\x00",  # an export name that is not UTF-8
        b"\0asm\x01\0\0\0\x07\x05\x01\x01a\x00\x00",  # an export of a function that does not exist
        b"\0asm\x01\0\0\0\x05\x04\x01\x01\x02\x01",  # memory maximum below minimum
        b"\0asm\x01\0\0\0\x05\x03\x01\x40\x00",  # unknown limits flags
        b"\0asm\x01\0\0\0\x08\x01\x00",  # start function that does not exist
        b"\0asm\x01\0\0\0\x0e\x00",  # unknown section id
        b"\0asm\x01\0\0\0\x01\x05\x01\x60\x00\x00\x00",  # unread bytes at the end of a section
        b"\0asm\x01\0\0\0\x00\x05\xff\xff\xff\xff\x0f",  # custom section whose name overruns it
    ],
)
def test_reader_refuses_malformed_bytes_with_one_error(data):
    with pytest.raises(wasm.WasmFormatError):
        wasm.parse(data)


def _section(section_id: int, body: bytes) -> bytes:
    return bytes([section_id]) + _leb(len(body)) + body


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


HOSTILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_format_error(data: bytes) -> None:
    try:
        wasm.parse(data)
    except wasm.WasmFormatError:
        pass  # anything else escaping fails the test


@HOSTILE
@given(st.binary(max_size=512))
def test_reader_survives_random_bytes(data):
    _parse_or_format_error(data)
    _parse_or_format_error(b"\0asm\x01\0\0\0" + data)


@HOSTILE
@given(st.data())
def test_reader_survives_truncation_and_corruption_of_a_real_module(data):
    real = CLEAN
    cut = data.draw(st.integers(0, len(real)))
    _parse_or_format_error(real[:cut])
    position = data.draw(st.integers(8, len(real) - 1))
    _parse_or_format_error(real[:position] + bytes([data.draw(st.integers(0, 255))]) + real[position + 1 :])


@HOSTILE
@given(st.integers(1, 13), st.integers(0, 2**32 - 1), st.binary(max_size=32))
def test_reader_survives_huge_counts(section_id, count, rest):
    body = _leb(count) + rest
    _parse_or_format_error(b"\0asm\x01\0\0\0" + _section(section_id, body))
    # the declared section size lies as well
    _parse_or_format_error(b"\0asm\x01\0\0\0" + bytes([section_id]) + _leb(2**32 - 1) + body)


def test_reader_bounds_a_huge_count_by_the_bytes_left():
    data = b"\0asm\x01\0\0\0" + _section(1, _leb(2**32 - 1) + b"\x60\x00\x00")
    with pytest.raises(wasm.WasmFormatError, match="announced"):
        wasm.parse(data)


def test_reader_error_is_a_value_error_with_an_offset():
    with pytest.raises(ValueError, match=r"at byte \d+"):
        wasm.parse(b"\0asm\x01\0\0\0" + struct.pack("<B", 1))
