"""Calling extension code: ``invoke`` runs one export of one module in a fresh store with the
published limits, linking only the capabilities the installation granted, and returns how it
ended (``Result``). The ABI is in docs/sandbox-abi.md.

Host functions are defined once per linker (per capability set) and find the call they serve
through a thread-local: a call is synchronous on its thread, and stores are never shared."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field

import wasmtime

from apps.runtime import host, outcomes
from apps.runtime.engine import runtime
from apps.runtime.limits import DEFAULT_LIMITS, Limits

WASI = "wasi_snapshot_preview1"
# WASI functions a module may not import: they could block past the deadline (poll_oneoff sleeps
# for as long as the guest asks) or reach the network.
WASI_REFUSED = frozenset(
    {"poll_oneoff", "proc_raise", "sock_accept", "sock_recv", "sock_send", "sock_shutdown", "sock_open"}
)
PAGE = 65536


@dataclass
class Call:
    """What a host function may see and change during one call."""

    installation_id: str
    input: bytes
    limits: Limits
    emit_types: frozenset[str]
    http_hosts: frozenset[str] = frozenset()  # hosts granted by http:fetch:<host> scopes
    deadline: float = float("inf")  # time.perf_counter() value of the wall-clock deadline
    output: bytes | None = None
    output_refused: bool = False
    logs: bytearray = field(default_factory=bytearray)
    logs_truncated: bool = False
    kv_ops: int = 0
    emitted: list = field(default_factory=list)
    http_calls: int = 0
    http_pending: tuple[bytes, bytes] | None = None  # (request, response) that did not fit the buffer
    host_failure: str = ""
    memory: wasmtime.Memory | None = None


@dataclass
class Result:
    outcome: str
    detail: str = ""
    status: int | None = None  # what the export returned
    output: object = None  # the parsed JSON output, when there is one
    output_bytes: int = 0
    input_bytes: int = 0
    logs: str = ""
    logs_truncated: bool = False
    fuel_used: int = 0
    memory_peak_bytes: int = 0
    duration_us: int = 0
    emitted: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome == outcomes.OK


def _linker(capabilities: frozenset[str]) -> wasmtime.Linker:
    linker = wasmtime.Linker(runtime().engine)
    linker.define_wasi()
    for name in host.functions_for(capabilities):
        params, results, fn = host.FUNCTIONS[name]
        ty = wasmtime.FuncType([wasmtime.ValType.i32()] * params, [wasmtime.ValType.i32()] * results)
        linker.define_func("plaza", name, ty, fn, access_caller=True)
    return linker


@dataclass(frozen=True)
class _Shape:
    """What a call needs to know about a module once per (digest, capabilities), not per call."""

    refusal: Result | None
    wasi: bool
    hooks: frozenset[str]  # exports of type () -> i32


_shapes: dict[tuple[str, frozenset[str]], _Shape] = {}


def _shape(sha256: str, module: wasmtime.Module, capabilities: frozenset[str]) -> _Shape:
    key = (sha256, capabilities)
    found = _shapes.get(key)
    if found is None:
        imports = module.imports
        hooks = frozenset(e.name for e in module.exports if isinstance(e.type, wasmtime.FuncType) and _is_hook(e.type))
        found = _Shape(_check_imports(imports, capabilities), any(imp.module == WASI for imp in imports), hooks)
        if len(_shapes) > 4096:
            _shapes.clear()
        _shapes[key] = found
    return found


def _check_imports(imports, capabilities: frozenset[str]) -> Result | None:
    """Refuse before linking, naming the import: unknown ones, and capabilities not granted."""
    linked = set(host.functions_for(capabilities))
    for imp in imports:
        if imp.module == WASI and imp.name in WASI_REFUSED:
            return Result(
                outcomes.IMPORT_UNKNOWN, f"The module imports {WASI}.{imp.name}, which the sandbox does not offer."
            )
        if imp.module == WASI:
            continue
        if imp.module == "plaza" and imp.name in linked:
            continue
        if imp.module == "plaza" and imp.name in host.FUNCTIONS:
            needed = host.CAPABILITY_OF[imp.name]
            return Result(
                outcomes.CAPABILITY_NOT_GRANTED,
                f"The module imports plaza.{imp.name}, which needs the scope '{needed}'; "
                "this installation did not grant it.",
            )
        return Result(
            outcomes.IMPORT_UNKNOWN, f"The module imports {imp.module}.{imp.name}, which Plaza does not provide."
        )
    return None


def invoke(
    module_bytes: bytes,
    export: str,
    input_value=None,
    *,
    installation_id: str = "",
    scopes: list[str] | frozenset[str] = (),
    limits: Limits = DEFAULT_LIMITS,
    sha256: str | None = None,
) -> Result:
    """Run ``export`` (a ``() -> i32`` function) with ``input_value`` serialised as JSON."""
    started = time.perf_counter()
    # allow_nan=False: a guest only ever reads strict JSON (a NaN here is the caller's bug: ValueError)
    data = json.dumps(input_value, separators=(",", ":"), allow_nan=False).encode() if input_value is not None else b""
    if len(data) > limits.input_bytes:
        return Result(outcomes.INPUT_TOO_LARGE, f"The input is {len(data)} bytes; the limit is {limits.input_bytes}.")
    if not module_bytes.startswith(b"\0asm"):  # wasmtime would parse anything else as WAT text
        return Result(outcomes.MODULE_INVALID, "Not a WebAssembly binary (it must start with \\0asm).")
    rt = runtime()
    sha256 = sha256 or hashlib.sha256(module_bytes).hexdigest()
    try:
        module = rt.module(module_bytes, sha256)
    except wasmtime.WasmtimeError as exc:
        return Result(outcomes.MODULE_INVALID, _cause(exc, whole=True))
    capabilities = host.capabilities_of(scopes)
    shape = _shape(sha256, module, capabilities)
    if shape.refusal is not None:
        return dataclasses.replace(shape.refusal)  # a copy: callers may change what they get
    try:
        pre = rt.instance_pre(sha256, module, capabilities, _linker)
    except wasmtime.WasmtimeError as exc:  # an import with the wrong signature, an unknown WASI function
        return Result(outcomes.IMPORT_UNKNOWN, f"The module's imports do not link: {_cause(exc, whole=True)}")
    started = time.perf_counter()  # the deadline is the call's: compiling a module on a cache miss is not counted
    call = Call(
        installation_id,
        data,
        limits,
        host.emit_types_of(scopes),
        http_hosts=host.http_hosts_of(scopes),
        deadline=started + limits.wall_ms / 1000,
    )
    store = wasmtime.Store(rt.engine)
    store.set_fuel(limits.fuel)
    store.set_epoch_deadline(rt.deadline_ticks(limits.wall_ms))
    store.set_limits(memory_size=limits.memory_bytes)
    if shape.wasi:
        store.set_wasi(wasmtime.WasiConfig())  # no preopens, no environment, no arguments, no sockets
    host.set_current_call(call)
    try:
        return _run(pre, store, export, call, limits, started, shape)
    finally:
        host.set_current_call(None)


def _run(pre, store, export, call: Call, limits: Limits, started: float, shape: _Shape) -> Result:
    status, outcome, detail = None, outcomes.OK, ""
    instance = None
    try:
        instance = pre.instantiate(store)
        exports = instance.exports(store)
        memory = exports.get("memory")
        call.memory = memory if isinstance(memory, wasmtime.Memory) else None
        fn = exports.get(export) if export in shape.hooks else None
        if fn is None:
            outcome, detail = outcomes.EXPORT_MISSING, f"No export '{export}' of type () -> i32."
        else:
            status = fn(store)
    except wasmtime.Trap as trap:
        outcome, detail = _trap_outcome(trap, call)
    except wasmtime.WasmtimeError as exc:
        outcome, detail = _error_outcome(exc, call)
    memory = call.memory.data_len(store) if call.memory is not None else 0
    gave_up = outcome == outcomes.TRAP or (outcome == outcomes.OK and status not in (None, 0))
    if gave_up and memory + PAGE > limits.memory_bytes:
        # memory.grow past the cap returns -1 rather than trapping; a module at its cap that then
        # traps or reports failure ran out of memory.
        outcome, detail = outcomes.MEMORY_LIMIT, f"Needed more than {limits.memory_bytes} bytes of memory. {detail}"
    parsed = None
    elapsed_ms = (time.perf_counter() - started) * 1000
    if outcome == outcomes.OK and elapsed_ms > limits.wall_ms:
        # epochs are checked only in wasm code: a slow host call just before returning ends here
        outcome, detail = outcomes.DEADLINE, f"Ran {elapsed_ms:.0f} ms, past its {limits.wall_ms} ms deadline."
    if outcome == outcomes.OK:
        if call.output_refused:
            outcome, detail = outcomes.OUTPUT_TOO_LARGE, f"The output was over {limits.output_bytes} bytes."
        elif status != 0:
            outcome, detail = outcomes.FAILED, f"The export returned {status}."
        elif call.output is not None:
            try:
                parsed = json.loads(call.output.decode("utf-8"), parse_constant=_refuse_constant)
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                outcome, detail = outcomes.OUTPUT_INVALID, f"The output is not UTF-8 JSON: {str(exc)[:200]}"
    fuel_left = store.get_fuel()
    return Result(
        outcome=outcome,
        detail=detail[:500],
        status=status,
        output=parsed,
        output_bytes=len(call.output or b""),
        input_bytes=len(call.input),
        logs=call.logs.decode("utf-8", "replace"),
        logs_truncated=call.logs_truncated,
        fuel_used=limits.fuel - fuel_left,
        memory_peak_bytes=memory,
        duration_us=int((time.perf_counter() - started) * 1_000_000),
        emitted=call.emitted if outcome == outcomes.OK else [],
    )


def _trap_outcome(trap: wasmtime.Trap, call: Call) -> tuple[str, str]:
    if call.host_failure:
        return outcomes.HOST_ERROR, call.host_failure
    code = trap.trap_code
    message = _cause(trap)
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return outcomes.FUEL_EXHAUSTED, "Ran out of fuel (instruction budget)."
    if code == wasmtime.TrapCode.INTERRUPT:
        return outcomes.DEADLINE, "Ran past its wall-clock deadline."
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return outcomes.STACK_OVERFLOW, "Call stack exhausted (recursion too deep)."
    return outcomes.TRAP, message


def _error_outcome(exc: wasmtime.WasmtimeError, call: Call) -> tuple[str, str]:
    if call.host_failure:
        return outcomes.HOST_ERROR, call.host_failure
    cause = _cause(exc)
    if "memory" in cause and ("limit" in cause or "exceeds" in cause):  # initial memory above the cap
        return outcomes.MEMORY_LIMIT, cause
    return outcomes.TRAP, cause


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _cause(exc: Exception, *, whole: bool = False) -> str:
    """The line that says what happened: wasmtime puts it after "Caused by:", below a backtrace
    (``whole``: keep what comes before too, e.g. the import a link error names)."""
    text = getattr(exc, "message", None) or str(exc)
    if "Caused by:" in text and not whole:
        text = text.rsplit("Caused by:", 1)[1]
    text = text.replace("Caused by:", "—")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)[:300]


def _is_hook(ty: wasmtime.FuncType) -> bool:
    results = ty.results
    return not ty.params and len(results) == 1 and results[0] == wasmtime.ValType.i32()
