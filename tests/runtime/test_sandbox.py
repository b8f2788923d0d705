"""The sandbox against hostile modules (apps/runtime): every way a module can misbehave ends the call
with its own outcome code, and the worker keeps serving — each test calls a known-good module right
after, on the same thread and the same cached engine, and expects ``ok``.

Fixture modules are written in WAT below and assembled with ``wasmtime.wat2wasm``; ``module()``
adds the ``plaza`` imports (signatures taken from ``host.FUNCTIONS``), the exported memory and the
data segments, ``hook()`` writes an export of type ``() -> i32``."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid

import pytest
import wasmtime

from apps.runtime import host, outcomes, runner
from apps.runtime.engine import Runtime, runtime
from apps.runtime.limits import DEFAULT_LIMITS, KV_MAX_ENTRIES, KV_MAX_TOTAL_BYTES, KV_MAX_VALUE_BYTES
from apps.runtime.models import KVEntry
from apps.runtime.runner import invoke

PAGE = 65536
LOG_CAP = DEFAULT_LIMITS.log_bytes
OUTPUT_CAP = DEFAULT_LIMITS.output_bytes


# --- WAT helpers ----------------------------------------------------------------------------------
def _plaza_import(name: str) -> str:
    params, results, _fn = host.FUNCTIONS[name]
    param = f" (param{' i32' * params})" if params else ""
    result = " (result i32)" if results else ""
    return f'(import "plaza" "{name}" (func ${name}{param}{result}))'


def _wat_bytes(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return "".join(f"\\{b:02x}" for b in raw)


def module(*parts: str, imports=(), pages: int = 1, memory: bool = True, data: dict | None = None) -> bytes:
    """A module: ``imports`` are plaza function names or raw ``(import …)`` forms, then the exported
    memory of ``pages`` pages, ``data`` segments ({address: bytes or str}) and ``parts``."""
    lines = [imp if imp.startswith("(") else _plaza_import(imp) for imp in imports]
    if memory:
        lines.append(f'(memory (export "memory") {pages})')
    lines += [f'(data (i32.const {addr}) "{_wat_bytes(content)}")' for addr, content in (data or {}).items()]
    lines += parts
    return bytes(wasmtime.wat2wasm("(module\n  " + "\n  ".join(lines) + ")"))


def hook(name: str, *body: str, locals_: tuple[str, ...] = ()) -> str:
    """An export ``name`` of type () -> i32; ``body`` ends with the status on the stack."""
    decl = "".join(f" (local {local} i32)" for local in locals_)
    return f'(func (export "{name}") (result i32){decl}\n    ' + "\n    ".join(body) + ")"


# --- the known-good module and the health check ----------------------------------------------------
GOOD = module(
    hook(
        "run",
        "(drop (call $input_read (i32.const 0)))",
        "(drop (call $output_write (i32.const 0) (call $input_len)))",
        "(i32.const 0)",
    ),
    imports=["input_len", "input_read", "output_write"],
)
_pings = iter(range(10**9))


def assert_still_serving() -> None:
    """The next call on this thread, with the same engine, runs a good module cleanly. (With a long
    deadline: this asks whether the worker still serves, not how fast a loaded machine is.)"""
    engine = runtime()
    ping = {"ping": next(_pings)}
    result = invoke(GOOD, "run", ping, limits=DEFAULT_LIMITS.raised(wall_ms=30_000))
    assert result.outcome == outcomes.OK, result
    assert result.output == ping
    assert (result.logs, result.logs_truncated, result.emitted) == ("", False, [])
    assert runtime() is engine
    assert host.current_call() is None  # the thread-local call does not outlive the call


# --- fixture modules --------------------------------------------------------------------------------
SPIN = module(hook("run", "(loop $spin (br $spin))", "(i32.const 0)"), memory=False)

GROW_UNTIL_REFUSED = "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))"
MEMORY_BOMB = module(hook("run", GROW_UNTIL_REFUSED, "unreachable"))
MEMORY_BOMB_GIVES_UP = module(hook("run", GROW_UNTIL_REFUSED, "(i32.const 1)"))

RECURSION = module(
    "(func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))",
    hook("run", "(call $down (i32.const 0))"),
    memory=False,
)

LOG_FLOOD = module(
    hook(
        "run",
        # 2000 lines of 6 bytes: far over the 1 KiB log cap; the status says whether the guest was told
        "(loop $flood",
        "  (local.set $code (call $log (i32.const 1024) (i32.const 6)))",
        "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
        "  (br_if $flood (i32.lt_u (local.get $i) (i32.const 2000))))",
        f"(if (result i32) (i32.eq (local.get $code) (i32.const {outcomes.E_LIMIT}))"
        " (then (i32.const 0)) (else (i32.const 99)))",
        locals_=("$i", "$code"),
    ),
    imports=["log"],
    data={1024: "flood!"},
)


def output_of(content: bytes | str) -> bytes:
    """A module whose ``run`` writes ``content`` as its output and returns 0."""
    size = len(content.encode() if isinstance(content, str) else content)
    return module(
        hook("run", f"(drop (call $output_write (i32.const 1024) (i32.const {size})))", "(i32.const 0)"),
        imports=["output_write"],
        data={1024: content},
    )


def output_of_size(size: int) -> bytes:
    """A module writing ``size`` bytes of valid JSON (spaces, then ``1``) and returning 0 only if
    output_write returned 0 or E_TOO_LARGE (99 otherwise: the guest was not told)."""
    return module(
        hook(
            "run",
            f"(memory.fill (i32.const 0) (i32.const 32) (i32.const {size}))",
            f"(i32.store8 (i32.const {size - 1}) (i32.const 49))",
            f"(local.set $code (call $output_write (i32.const 0) (i32.const {size})))",
            "(if (result i32) (i32.or (i32.eqz (local.get $code))",
            f"                       (i32.eq (local.get $code) (i32.const {outcomes.E_TOO_LARGE})))",
            "  (then (i32.const 0)) (else (i32.const 99)))",
            locals_=("$code",),
        ),
        imports=["output_write"],
    )


# ===================================================================================================
# CPU and wall-clock time
# ===================================================================================================
def test_an_infinite_loop_runs_out_of_fuel():
    result = invoke(SPIN, "run")
    assert result.outcome == outcomes.FUEL_EXHAUSTED, result
    assert result.fuel_used == DEFAULT_LIMITS.fuel
    assert_still_serving()


@pytest.mark.parametrize("wall_ms", [DEFAULT_LIMITS.wall_ms, 20])
def test_an_infinite_loop_with_a_huge_fuel_budget_hits_the_deadline(wall_ms):
    # fuel that would last for hours: only the deadline stops it (``raised`` refuses a lower wall_ms,
    # hence ``replace`` for the 20 ms case)
    limits = dataclasses.replace(DEFAULT_LIMITS.raised(fuel=10**13), wall_ms=wall_ms)
    result = invoke(SPIN, "run", limits=limits)
    assert result.outcome == outcomes.DEADLINE, result
    assert wall_ms * 1000 * 0.9 <= result.duration_us < wall_ms * 1000 + 500_000
    assert_still_serving()


def test_a_slow_host_call_ends_at_the_deadline_once_guest_code_runs_again(monkeypatch):
    """No host function is slow yet, so make ``log`` slow: the linked ``log`` wrapper looks up
    ``host._read`` at call time, so patching it slows the real host function without relinking.
    The guest then loops a little (about a million iterations: well inside the fuel) — the first
    epoch check after the host call returns ends it."""
    slow = module(
        hook(
            "run",
            "(drop (call $log (i32.const 1024) (i32.const 4)))",
            "(local.set $n (i32.const 1000000))",
            "(loop $a_little (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $a_little (local.get $n)))",
            "(i32.const 0)",
            locals_=("$n",),
        ),
        imports=["log"],
        data={1024: "slow"},
    )
    real_read = host._read

    def slow_read(caller, ptr, length):
        time.sleep(DEFAULT_LIMITS.wall_ms / 1000 * 2.5)
        return real_read(caller, ptr, length)

    with monkeypatch.context() as patch:
        patch.setattr(host, "_read", slow_read)
        result = invoke(slow, "run")
    assert result.outcome == outcomes.DEADLINE, result
    assert result.duration_us >= DEFAULT_LIMITS.wall_ms * 1000 * 2.5
    assert_still_serving()


def test_a_slow_host_call_right_before_returning_is_still_deadline(monkeypatch):
    """Epochs are checked only in wasm code (loop back-edges, function entries): a module that
    returns straight after a slow host call is caught by the runner's own elapsed-time check."""
    quick_return = module(
        hook("run", "(drop (call $log (i32.const 1024) (i32.const 4)))", "(i32.const 0)"),
        imports=["log"],
        data={1024: "slow"},
    )
    real_read = host._read

    def slow_read(caller, ptr, length):
        time.sleep(DEFAULT_LIMITS.wall_ms / 1000 * 2.5)
        return real_read(caller, ptr, length)

    with monkeypatch.context() as patch:
        patch.setattr(host, "_read", slow_read)
        result = invoke(quick_return, "run")
    assert result.duration_us >= DEFAULT_LIMITS.wall_ms * 1000 * 2.5
    assert result.outcome == outcomes.DEADLINE, result
    assert_still_serving()


WASI_SLEEP = module(
    hook(
        "run",
        # one subscription at 0: userdata u64 @0, tag u8 @8 (0 = clock), clock id u32 @16 (1 = monotonic),
        # timeout u64 @24 (ns, relative), precision u64 @32, flags u16 @40; the event goes to 128
        "(i32.store8 (i32.const 8) (i32.const 0))",
        "(i32.store (i32.const 16) (i32.const 1))",
        "(i64.store (i32.const 24) (i64.const 1000000000))",
        "(drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 256)))",
        "(i32.const 0)",
    ),
    imports=['(import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))'],
)


def test_a_guest_cannot_sleep_in_wasi_past_its_deadline():
    """``poll_oneoff`` would block the worker in host code, where epoch interruption never fires
    (the guest picks the u64 nanoseconds: it could be hours): modules importing it never run."""
    result = invoke(WASI_SLEEP, "run")
    assert result.outcome != outcomes.OK, result
    assert result.duration_us < 500_000, f"the worker was held for {result.duration_us} µs"
    assert_still_serving()


# ===================================================================================================
# Memory and stack
# ===================================================================================================
def test_a_memory_bomb_is_memory_limit():
    result = invoke(MEMORY_BOMB, "run")
    assert result.outcome == outcomes.MEMORY_LIMIT, result
    assert result.memory_peak_bytes == DEFAULT_LIMITS.memory_bytes
    assert_still_serving()


def test_a_memory_bomb_that_handles_the_refusal_by_failing_is_memory_limit():
    result = invoke(MEMORY_BOMB_GIVES_UP, "run")
    assert result.outcome == outcomes.MEMORY_LIMIT, result
    assert result.status == 1
    assert_still_serving()


def test_a_memory_bomb_on_an_unexported_memory_is_still_stopped_by_the_cap():
    """The ABI measures the memory exported as ``memory`` (docs/sandbox-abi.md); a module that hides
    its memory still cannot grow past the cap, and its failure is reported as the trap it is."""
    hidden = bytes(wasmtime.wat2wasm(f"(module (memory 1) {hook('run', GROW_UNTIL_REFUSED, 'unreachable')})"))
    result = invoke(hidden, "run")
    assert result.outcome == outcomes.TRAP and "unreachable" in result.detail, result
    assert_still_serving()


def test_a_module_whose_initial_memory_is_over_the_cap_is_memory_limit():
    """Instantiation fails ('memory minimum size of 200 pages exceeds memory limits') before the
    module's memory is known; the runner recognises the error."""
    too_big = module(hook("run", "(i32.const 0)"), pages=DEFAULT_LIMITS.memory_bytes // PAGE + 40)
    result = invoke(too_big, "run")
    assert result.outcome == outcomes.MEMORY_LIMIT, result
    assert_still_serving()


def test_deep_recursion_is_stack_overflow():
    result = invoke(RECURSION, "run")
    assert result.outcome == outcomes.STACK_OVERFLOW, result
    assert_still_serving()


# ===================================================================================================
# Output and logs
# ===================================================================================================
@pytest.mark.parametrize(
    ("size", "outcome"),
    [(OUTPUT_CAP, outcomes.OK), (OUTPUT_CAP + 1, outcomes.OUTPUT_TOO_LARGE), (10 * PAGE, outcomes.OUTPUT_TOO_LARGE)],
    ids=["at-the-cap", "one-byte-over", "more-than-its-memory"],
)
def test_output_over_20_kib_is_output_too_large(size, outcome):
    result = invoke(output_of_size(size) if size < PAGE else _huge_output_module(size), "run")
    assert result.outcome == outcome, result
    assert result.status == 0  # the guest was told (E_TOO_LARGE) and ignored it
    if outcome == outcomes.OK:
        assert result.output == 1 and result.output_bytes == OUTPUT_CAP
    else:
        assert result.output is None and result.output_bytes == 0
    assert_still_serving()


def _huge_output_module(size: int) -> bytes:
    """Claims an output larger than its whole memory: refused on the length, before any read."""
    return module(
        hook(
            "run",
            f"(local.set $code (call $output_write (i32.const 0) (i32.const {size})))",
            f"(if (result i32) (i32.eq (local.get $code) (i32.const {outcomes.E_TOO_LARGE}))"
            " (then (i32.const 0)) (else (i32.const 99)))",
            locals_=("$code",),
        ),
        imports=["output_write"],
    )


def test_a_log_flood_is_truncated_and_the_call_still_ends_ok():
    result = invoke(LOG_FLOOD, "run")
    assert result.outcome == outcomes.OK, result
    assert result.status == 0  # the guest got E_LIMIT once the cap was reached
    assert result.logs_truncated is True
    assert len(result.logs.encode()) <= LOG_CAP
    *lines, cut = result.logs.split("\n")
    assert set(lines) == {"flood!"} and "flood!".startswith(cut)  # whole lines, then the cut one
    assert_still_serving()


def test_one_log_line_over_the_cap_is_cut():
    big = module(
        hook("run", f"(drop (call $log (i32.const 0) (i32.const {LOG_CAP * 3})))", "(i32.const 0)"),
        imports=["log"],
        data={0: "x" * (LOG_CAP * 3)},
    )
    result = invoke(big, "run")
    assert result.outcome == outcomes.OK, result
    assert result.logs == "x" * LOG_CAP and result.logs_truncated
    assert_still_serving()


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe{}", b'"\xc3\x28"', b"{not json", b'{"a": 1', b"", b"[1, 2] trailing", b"NaN", b"[Infinity]"],
    ids=["bad-utf8", "bad-utf8-in-string", "not-json", "truncated-json", "empty", "trailing", "NaN", "Infinity"],
)
def test_output_that_is_not_utf8_json_is_output_invalid(content):
    """``NaN``/``Infinity`` are not JSON (RFC 8259) but Python's ``json.loads`` accepts them.
    The runner refuses them, so no ``float('nan')`` reaches strict JSON consumers (PostgreSQL
    jsonb, browsers); event payloads likewise (host.py emit_event)."""
    result = invoke(output_of(content), "run")
    assert result.outcome == outcomes.OUTPUT_INVALID, result
    assert result.output is None
    assert_still_serving()


@pytest.mark.parametrize(
    ("ptr", "length"),
    [(PAGE, 1), (PAGE - 4, 8), (-16, 4), (0, -1), (2**31 - 1, 2)],
    ids=["past-the-end", "straddling-the-end", "negative-pointer", "negative-length", "max-pointer"],
)
def test_an_out_of_bounds_pointer_to_output_write_is_e_bounds_to_the_guest(ptr, length):
    oob = module(hook("run", f"(call $output_write (i32.const {ptr}) (i32.const {length}))"), imports=["output_write"])
    result = invoke(oob, "run")
    assert result.status == outcomes.E_BOUNDS, result
    assert result.outcome == outcomes.FAILED
    assert_still_serving()


def test_the_trap_detail_says_what_trapped():
    """wasmtime's message starts with 'error while executing at wasm backtrace:'; the detail must
    carry the cause from its last line instead."""
    cases = {
        "unreachable": "unreachable",
        "divide by zero": "(i32.div_u (i32.const 1) (i32.const 0))",
        "out of bounds": "(i32.load (i32.const 70000))",
    }
    for words, body in cases.items():
        result = invoke(module(hook("run", body)), "run")
        assert result.outcome == outcomes.TRAP, result
        assert words in result.detail, result.detail
    assert_still_serving()


# ===================================================================================================
# Imports and capabilities
# ===================================================================================================
def _writes_kv_and_output(*extra: str, start: bool = False) -> bytes:
    """A module whose ``run`` stores kv 'ran' and outputs ``true`` — proof that it ran."""
    parts = [
        hook(
            "run",
            "(drop (call $kv_set (i32.const 1024) (i32.const 3) (i32.const 1100) (i32.const 4)))",
            "(drop (call $output_write (i32.const 1100) (i32.const 4)))",
            "(i32.const 0)",
        )
    ]
    if start:  # if it were ever instantiated, this alone would end the call as fuel_exhausted
        parts += ["(func $spin (loop $forever (br $forever)))", "(start $spin)"]
    return module(*parts, imports=[*extra, "kv_set", "output_write"], data={1024: "ran", 1100: "true"})


@pytest.mark.django_db
def test_an_undeclared_import_is_refused_before_the_module_runs(monkeypatch):
    scopes, installation = ["kv:write"], "ins_import"
    control = invoke(_writes_kv_and_output(), "run", installation_id=installation, scopes=scopes)
    assert control.outcome == outcomes.OK and control.output is True
    assert KVEntry.objects.filter(installation_id=installation, key="ran").exists()  # the proof works
    KVEntry.objects.all().delete()

    ran, real_run = [], runner._run  # runner._run instantiates and calls: it must never be reached
    hostile = _writes_kv_and_output('(import "env" "system" (func $system (param i32) (result i32)))', start=True)
    with monkeypatch.context() as patch:
        patch.setattr(runner, "_run", lambda *args: ran.append(args) or real_run(*args))
        result = invoke(hostile, "run", installation_id=installation, scopes=scopes)
    assert result.outcome == outcomes.IMPORT_UNKNOWN, result
    assert "env.system" in result.detail
    assert ran == [] and result.output is None
    assert not KVEntry.objects.exists()
    assert_still_serving()


def test_a_wasi_import_that_does_not_exist_is_import_unknown():
    """``_check_imports`` lets every wasi_snapshot_preview1 name through; linking catches this one."""
    bogus = module(hook("run", "(i32.const 0)"), imports=['(import "wasi_snapshot_preview1" "bogus" (func $bogus))'])
    result = invoke(bogus, "run")
    assert result.outcome == outcomes.IMPORT_UNKNOWN, result
    assert re.search(r"wasi_snapshot_preview1(::|\.)bogus", result.detail), result.detail
    assert_still_serving()


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("log", "(func $log (param i32) (result i32))"),
        ("output_write", "(func $w (param i32 i32))"),
        ("input_len", "(func $l (result i64))"),
        ("log", "(memory 1)"),
        ("input_len", "(global i32)"),
    ],
    ids=["too-few-params", "no-result", "i64-result", "memory-named-log", "global-named-input_len"],
)
def test_a_plaza_import_of_the_wrong_type_is_import_unknown_naming_it(name, wrong):
    """The detail keeps wasmtime's whole link error, which names the import
    ("incompatible import type for `plaza::log`") as well as the expected type."""
    result = invoke(
        module(hook("run", "(i32.const 0)"), imports=[f'(import "plaza" "{name}" {wrong})'], memory=False), "run"
    )
    assert result.outcome == outcomes.IMPORT_UNKNOWN, result
    assert re.search(rf"plaza(::|\.){name}\b", result.detail), result.detail
    assert_still_serving()


@pytest.mark.django_db
@pytest.mark.parametrize("scopes", [[], ["kv:read"], ["events:emit:order.tagged"]])
def test_importing_a_capability_not_granted_is_refused(scopes):
    result = invoke(_writes_kv_and_output(), "run", installation_id="ins_cap", scopes=scopes)
    assert result.outcome == outcomes.CAPABILITY_NOT_GRANTED, result
    assert "plaza.kv_set" in result.detail and "kv:write" in result.detail
    assert not KVEntry.objects.exists()
    assert_still_serving()


@pytest.mark.django_db
def test_the_same_module_runs_once_the_capability_is_granted():
    result = invoke(_writes_kv_and_output(), "run", installation_id="ins_cap", scopes=["kv:write"])
    assert result.outcome == outcomes.OK and result.output is True, result
    assert bytes(KVEntry.objects.get(installation_id="ins_cap", key="ran").value) == b"true"
    assert_still_serving()


# ===================================================================================================
# Key-value storage: quotas and isolation
# ===================================================================================================
KV_SCOPES = ["kv:write"]
ROOMY = DEFAULT_LIMITS.raised(wall_ms=5000)  # these tests are about quotas, not a slow test database
KEY_AT = 2 * PAGE + 16  # values are read from 0 (up to two pages), one-byte keys after them
SET_64K = f"(call $kv_set (i32.const {KEY_AT}) (i32.const 1) (i32.const 0) (i32.const {KV_MAX_VALUE_BYTES}))"

KV_BIG = module(
    hook("value_64k", SET_64K),
    hook(
        "value_64k_plus_1",
        f"(call $kv_set (i32.const {KEY_AT}) (i32.const 1) (i32.const 0) (i32.const {KV_MAX_VALUE_BYTES + 1}))",
    ),
    hook(
        "fill",  # keys A, B, C, … each with a 64 KiB value until kv_set refuses; returns its code
        "(loop $next",
        f"  (i32.store8 (i32.const {KEY_AT}) (i32.add (i32.const 65) (local.get $i)))",
        f"  (local.set $code {SET_64K})",
        "  (if (i32.lt_s (local.get $code) (i32.const 0)) (then (return (local.get $code))))",
        "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
        "  (br_if $next (i32.lt_u (local.get $i) (i32.const 26))))",
        "(i32.const 0)",
        locals_=("$i", "$code"),
    ),
    imports=["kv_set"],
    pages=3,
    data={KEY_AT: "A"},
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("export", "status", "outcome"),
    [("value_64k", 0, outcomes.OK), ("value_64k_plus_1", outcomes.E_TOO_LARGE, outcomes.FAILED)],
)
def test_a_value_over_64_kib_is_e_too_large_to_the_guest(export, status, outcome):
    result = invoke(KV_BIG, export, installation_id="ins_big", scopes=KV_SCOPES, limits=ROOMY)
    assert (result.status, result.outcome) == (status, outcome), result
    assert KVEntry.objects.filter(installation_id="ins_big").count() == (1 if status == 0 else 0)
    assert_still_serving()


@pytest.mark.django_db
def test_many_large_values_end_at_e_quota_for_the_total_size():
    result = invoke(KV_BIG, "fill", installation_id="ins_fill", scopes=KV_SCOPES, limits=ROOMY)
    assert (result.status, result.outcome) == (outcomes.E_QUOTA, outcomes.FAILED), result
    stored = KVEntry.objects.filter(installation_id="ins_fill")
    fits = KV_MAX_TOTAL_BYTES // (KV_MAX_VALUE_BYTES + 1)  # each entry: 1 byte of key + 64 KiB
    assert stored.count() == fits
    assert sum(stored.values_list("size", flat=True)) <= KV_MAX_TOTAL_BYTES
    assert_still_serving()


KV_ONE = module(
    hook("new_key", "(call $kv_set (i32.const 1024) (i32.const 7) (i32.const 1100) (i32.const 1))"),
    hook("existing_key", "(call $kv_set (i32.const 1200) (i32.const 2) (i32.const 1100) (i32.const 1))"),
    imports=["kv_set"],
    data={1024: "new-key", 1100: "1", 1200: "k0"},
)


@pytest.mark.django_db
def test_more_keys_than_the_entry_quota_is_e_quota():
    KVEntry.objects.bulk_create(
        KVEntry(installation_id="ins_full", key=f"k{i}", value=b"v", size=len(f"k{i}") + 1)
        for i in range(KV_MAX_ENTRIES)
    )
    result = invoke(KV_ONE, "new_key", installation_id="ins_full", scopes=KV_SCOPES, limits=ROOMY)
    assert (result.status, result.outcome) == (outcomes.E_QUOTA, outcomes.FAILED), result
    assert not KVEntry.objects.filter(installation_id="ins_full", key="new-key").exists()
    # replacing an existing key is still allowed at the cap, and another installation is not affected
    assert invoke(KV_ONE, "existing_key", installation_id="ins_full", scopes=KV_SCOPES, limits=ROOMY).ok
    assert invoke(KV_ONE, "new_key", installation_id="ins_other", scopes=KV_SCOPES, limits=ROOMY).ok
    assert_still_serving()


KV_SHARED_KEY = module(
    hook(
        "put",  # stores the input under the key 'shared'
        "(drop (call $input_read (i32.const 0)))",
        "(call $kv_set (i32.const 60000) (i32.const 6) (i32.const 0) (call $input_len))",
    ),
    hook(
        "get",  # outputs the value of 'shared', or returns kv_get's error code
        "(local.set $n (call $kv_get (i32.const 60000) (i32.const 6) (i32.const 8192) (i32.const 4096)))",
        "(if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (local.get $n))))",
        "(drop (call $output_write (i32.const 8192) (local.get $n)))",
        "(i32.const 0)",
        locals_=("$n",),
    ),
    hook("delete", "(call $kv_delete (i32.const 60000) (i32.const 6))"),
    imports=["input_len", "input_read", "output_write", "kv_get", "kv_set", "kv_delete"],
    data={60000: "shared"},
)


@pytest.mark.django_db
def test_an_installation_cannot_read_or_change_another_installations_keys():
    def kv(export, installation, value=None, scopes=KV_SCOPES):
        return invoke(KV_SHARED_KEY, export, value, installation_id=installation, scopes=scopes, limits=ROOMY)

    assert kv("put", "ins_a", {"owner": "a"}).ok
    refused = kv("get", "ins_b")
    assert (refused.status, refused.output) == (outcomes.E_NOT_FOUND, None), refused
    assert kv("delete", "ins_b").status == outcomes.E_NOT_FOUND
    assert kv("put", "ins_b", {"owner": "b"}).ok
    assert kv("get", "ins_a").output == {"owner": "a"}
    assert kv("get", "ins_b").output == {"owner": "b"}
    assert kv("delete", "ins_b").ok
    assert kv("get", "ins_a").output == {"owner": "a"}
    assert kv("get", "").status == outcomes.E_DENIED  # no installation: no storage at all
    assert_still_serving()


# ===================================================================================================
# Host-side failures
# ===================================================================================================
class HostSideFailure(RuntimeError):
    """Stands for a bug or an outage on Plaza's side inside a host function."""


HOST_CALLS = module(
    hook("log", "(call $log (i32.const 1024) (i32.const 2))"),
    hook("output_write", "(call $output_write (i32.const 1024) (i32.const 2))"),
    hook("kv_set", "(call $kv_set (i32.const 1024) (i32.const 2) (i32.const 1024) (i32.const 2))"),
    imports=["log", "output_write", "kv_set"],
    data={1024: "{}"},
)


@pytest.mark.django_db
@pytest.mark.parametrize("function", ["log", "output_write", "kv_set"])
def test_a_host_function_that_raises_is_host_error_naming_it(monkeypatch, function):
    def broken(*args):
        raise HostSideFailure("the disk is on fire")

    with monkeypatch.context() as patch:
        patch.setattr(host, "_read", broken)  # every one of these reads guest memory first
        result = invoke(HOST_CALLS, function, installation_id="ins_host", scopes=KV_SCOPES)
    assert result.outcome == outcomes.HOST_ERROR, result
    assert result.detail == f"{function}: HostSideFailure"
    assert "on fire" not in result.detail  # Plaza's internals stay out of the extension's view
    assert not KVEntry.objects.exists()
    assert_still_serving()


# ===================================================================================================
# Events
# ===================================================================================================
EMIT_SCOPES = ["events:emit:order.tagged"]
EMIT = "(call $emit_event (i32.const 1024) (i32.const 12) (i32.const 2048) (i32.const 13))"
EMITTER = module(
    hook("granted", EMIT),
    hook("denied", "(call $emit_event (i32.const 1100) (i32.const 13) (i32.const 2048) (i32.const 13))"),
    hook("granted_then_fail", f"(drop {EMIT})", "(i32.const 1)"),
    hook("granted_then_trap", f"(drop {EMIT})", "unreachable"),
    hook(
        "granted_then_bad_output",
        f"(drop {EMIT})",
        "(drop (call $output_write (i32.const 3000) (i32.const 9)))",
        "(i32.const 0)",
    ),
    hook("granted_then_spin", f"(drop {EMIT})", "(loop $spin (br $spin))", "(i32.const 0)"),
    imports=["output_write", "emit_event"],
    data={1024: "order.tagged", 1100: "order.created", 2048: '{"tag":"vip"}', 3000: "{not json"},
)


def test_emitting_a_type_not_granted_is_e_denied_to_the_guest():
    result = invoke(EMITTER, "denied", scopes=EMIT_SCOPES)
    assert (result.status, result.outcome, result.emitted) == (outcomes.E_DENIED, outcomes.FAILED, []), result
    assert_still_serving()


def test_emitting_a_granted_type_is_in_the_result():
    result = invoke(EMITTER, "granted", scopes=EMIT_SCOPES)
    assert result.outcome == outcomes.OK, result
    assert result.emitted == [{"type": "order.tagged", "payload": {"tag": "vip"}}]
    assert_still_serving()


@pytest.mark.parametrize(
    ("export", "outcome"),
    [
        ("granted_then_fail", outcomes.FAILED),
        ("granted_then_trap", outcomes.TRAP),
        ("granted_then_bad_output", outcomes.OUTPUT_INVALID),
        ("granted_then_spin", outcomes.FUEL_EXHAUSTED),
    ],
)
def test_emitted_events_are_dropped_when_the_call_does_not_end_ok(export, outcome):
    result = invoke(EMITTER, export, scopes=EMIT_SCOPES)
    assert result.outcome == outcome, result
    assert result.emitted == []
    assert_still_serving()


@pytest.mark.parametrize(
    ("payload", "status"),
    [('{"a":', outcomes.E_INVALID), ("[1]", outcomes.E_INVALID), ('{"x":NaN}', outcomes.E_INVALID)],
    ids=["truncated", "not-an-object", "NaN"],
)
def test_an_event_payload_must_be_a_json_object(payload, status):
    """A payload must be a strict JSON object (NaN/Infinity refused), else E_INVALID."""
    result = _emit_payload(payload)
    assert result.status == status, result
    assert result.emitted == []
    assert_still_serving()


def _emit_payload(payload: str):
    """``payload`` is raw text (not JSON-encoded by invoke), so write it into a module of its own."""
    raw = module(
        hook("run", f"(call $emit_event (i32.const 1024) (i32.const 12) (i32.const 2048) (i32.const {len(payload)}))"),
        imports=["emit_event"],
        data={1024: "order.tagged", 2048: payload},
    )
    return invoke(raw, "run", scopes=EMIT_SCOPES)


# ===================================================================================================
# Refused before running: input, exports, module bytes
# ===================================================================================================
def test_input_over_the_limit_is_refused_without_running():
    compiles = runtime().compiles
    too_big = {"blob": "x" * DEFAULT_LIMITS.input_bytes}
    # a module that is not even valid: the input check comes first, nothing is compiled or run
    result = invoke(b"\x00not a module " + uuid.uuid4().bytes, "run", too_big)
    assert result.outcome == outcomes.INPUT_TOO_LARGE, result
    assert runtime().compiles == compiles
    assert_still_serving()


def test_input_exactly_at_the_limit_is_accepted():
    at_limit = "x" * (DEFAULT_LIMITS.input_bytes - 2)  # with its quotes, exactly the limit
    reads = module(hook("run", "(drop (call $input_read (i32.const 0)))", "(i32.const 0)"), imports=["input_read"])
    result = invoke(reads, "run", at_limit)
    assert result.outcome == outcomes.OK and result.input_bytes == DEFAULT_LIMITS.input_bytes, result
    assert_still_serving()


EXPORTS = module(
    hook("fine", "(i32.const 0)"),
    '(func (export "takes_a_param") (param i32) (result i32) (local.get 0))',
    '(func (export "returns_nothing"))',
    '(func (export "returns_i64") (result i64) (i64.const 0))',
    '(func (export "returns_two") (result i32 i32) (i32.const 0) (i32.const 0))',
    '(global (export "a_global") i32 (i32.const 0))',
)


@pytest.mark.parametrize(
    "export", ["missing", "takes_a_param", "returns_nothing", "returns_i64", "returns_two", "a_global", "memory", ""]
)
def test_a_missing_export_or_one_of_the_wrong_type_is_export_missing(export):
    result = invoke(EXPORTS, export)
    assert result.outcome == outcomes.EXPORT_MISSING, result
    assert invoke(EXPORTS, "fine").ok
    assert_still_serving()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x02garbage",
        b"\x00asm\x02\x00\x00\x00",  # a version this runtime does not read
        GOOD[:-3],  # truncated
        bytes(range(256)) * 4,
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64,
    ],
    ids=["empty", "garbage", "wrong-version", "truncated", "all-bytes", "elf"],
)
def test_garbage_bytes_are_module_invalid(data):
    result = invoke(data, "run")
    assert result.outcome == outcomes.MODULE_INVALID, result
    assert_still_serving()


def test_wat_text_is_not_accepted_as_a_module():
    """wasmtime-py would parse any bytes not starting with a NUL as WAT text; the runner accepts
    binary modules only (run_module converts .wat itself), so the digest is of what runs."""
    text = b'(module (func (export "run") (result i32) (i32.const 0)))'
    result = invoke(text, "run")
    assert result.outcome == outcomes.MODULE_INVALID, result
    assert_still_serving()


# ===================================================================================================
# The module cache
# ===================================================================================================
def _fresh_module() -> bytes:
    """A module nobody compiled before (not in memory, not on disk)."""
    return module(hook("run", "(i32.const 0)"), data={0: uuid.uuid4().hex})


def test_the_second_call_of_a_digest_does_not_compile_again():
    fresh = _fresh_module()
    before = runtime().compiles
    assert invoke(fresh, "run").ok
    assert runtime().compiles == before + 1
    assert invoke(fresh, "run").ok
    assert invoke(fresh, "run", scopes=["kv:read"]).ok  # another capability set relinks, never recompiles
    assert runtime().compiles == before + 1
    assert_still_serving()


def test_a_new_runtime_on_the_same_cache_dir_loads_from_disk_without_compiling(tmp_path, monkeypatch):
    fresh = _fresh_module()
    first = Runtime(tmp_path)
    sha = first.precompile(fresh)
    assert first.compiles == 1
    assert (tmp_path / f"wasmtime-{first.version}" / f"{sha}.cwasm").is_file()

    second = Runtime(tmp_path)  # as a new process would: nothing in memory
    with monkeypatch.context() as patch:
        patch.setattr(runner, "runtime", lambda: second)
        result = invoke(fresh, "run")
    assert result.outcome == outcomes.OK, result
    assert second.compiles == 0
    assert_still_serving()


def test_an_unreadable_cache_file_is_discarded_and_recompiled(tmp_path):
    fresh = _fresh_module()
    sha = Runtime(tmp_path).precompile(fresh)
    path = tmp_path / f"wasmtime-{runtime().version}" / f"{sha}.cwasm"
    path.write_bytes(b"\x7fELF not what was compiled")
    again = Runtime(tmp_path)
    again.module(fresh)
    assert again.compiles == 1  # discarded, compiled again, and written back
    third = Runtime(tmp_path)
    third.module(fresh)
    assert third.compiles == 0
    assert_still_serving()


# ===================================================================================================
# Many calls in a row
# ===================================================================================================
ECHO_AND_LOG = module(
    hook(
        "run",
        "(drop (call $log (i32.const 60000) (i32.const 4)))",
        "(drop (call $input_read (i32.const 0)))",
        "(drop (call $output_write (i32.const 0) (call $input_len)))",
        "(i32.const 0)",
    ),
    imports=["input_len", "input_read", "output_write", "log"],
    data={60000: "good"},
)
LEAKY_TRAP = module(
    hook(
        "run",
        "(drop (call $log (i32.const 1024) (i32.const 7)))",
        "(drop (call $output_write (i32.const 2048) (i32.const 10)))",
        "unreachable",
    ),
    imports=["log", "output_write"],
    data={1024: "hostile", 2048: '{"leak":1}'},
)
UNDECLARED_IMPORT = module(hook("run", "(i32.const 0)"), imports=['(import "env" "system" (func $s))'])
LEAKY_FAILURE = module(
    hook("run", "(drop (call $output_write (i32.const 2048) (i32.const 10)))", "(i32.const 1)"),
    imports=["output_write"],
    data={2048: '{"leak":2}'},
)

# (module, export, keyword arguments, expected outcome, expected logs or None for "don't care")
HOSTILE = [
    (SPIN, "run", {}, outcomes.FUEL_EXHAUSTED, ""),
    (SPIN, "run", {"limits": DEFAULT_LIMITS.raised(fuel=10**13)}, outcomes.DEADLINE, ""),
    (LEAKY_TRAP, "run", {}, outcomes.TRAP, "hostile\n"),
    (LEAKY_FAILURE, "run", {}, outcomes.FAILED, ""),
    (MEMORY_BOMB, "run", {}, outcomes.MEMORY_LIMIT, ""),
    (RECURSION, "run", {}, outcomes.STACK_OVERFLOW, ""),
    (output_of_size(OUTPUT_CAP + 1), "run", {}, outcomes.OUTPUT_TOO_LARGE, ""),
    (output_of(b"{not json"), "run", {}, outcomes.OUTPUT_INVALID, ""),
    (LOG_FLOOD, "run", {}, outcomes.OK, None),
    (EMITTER, "granted_then_fail", {"scopes": EMIT_SCOPES}, outcomes.FAILED, ""),
    (EMITTER, "granted", {"scopes": EMIT_SCOPES}, outcomes.OK, ""),
    (UNDECLARED_IMPORT, "run", {}, outcomes.IMPORT_UNKNOWN, ""),
    (EXPORTS, "takes_a_param", {}, outcomes.EXPORT_MISSING, ""),
    (b"\x00\x01garbage", "run", {}, outcomes.MODULE_INVALID, ""),
]


def test_200_calls_mixing_hostile_and_good_modules_on_one_thread_do_not_leak_state():
    thread, engine = threading.get_ident(), runtime()
    for i in range(200):
        if i % 2 == 0:
            result = invoke(ECHO_AND_LOG, "run", {"call": i})
            assert result.outcome == outcomes.OK, (i, result)
            assert result.output == {"call": i} and result.logs == "good\n", (i, result)  # its own, nothing else
            assert not result.logs_truncated and result.emitted == [], (i, result)
        else:
            data, export, kwargs, outcome, logs = HOSTILE[(i // 2) % len(HOSTILE)]
            result = invoke(data, export, **kwargs)
            assert result.outcome == outcome, (i, result)
            assert result.output is None, (i, result)  # none of these leaves an output behind
            if outcome != outcomes.OK:
                assert result.emitted == [], (i, result)
            if logs is not None:
                assert result.logs == logs, (i, result)
        assert host.current_call() is None
    assert threading.get_ident() == thread and runtime() is engine
    assert_still_serving()
