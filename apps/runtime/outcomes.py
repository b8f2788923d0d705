"""How a call into extension code ended: one stable code per kind of ending (docs/sandbox.md).

Every call ends with exactly one of these; the host process keeps serving whatever the code."""

from __future__ import annotations

OK = "ok"  # the export returned 0 and wrote valid JSON output (or none)
FAILED = "failed"  # the export returned a non-zero status: the extension reports its own error
TRAP = "trap"  # unreachable, out-of-bounds access, division by zero, …
FUEL_EXHAUSTED = "fuel_exhausted"  # ran past its instruction budget
DEADLINE = "deadline"  # ran past its wall-clock deadline
MEMORY_LIMIT = "memory_limit"  # needed more linear memory than the cap (memory.grow refused, then failed)
STACK_OVERFLOW = "stack_overflow"  # recursion too deep
OUTPUT_TOO_LARGE = "output_too_large"
OUTPUT_INVALID = "output_invalid"  # not UTF-8 JSON
INPUT_TOO_LARGE = "input_too_large"  # refused before running
HOST_ERROR = "host_error"  # a host function failed on Plaza's side (not the extension's fault)
IMPORT_UNKNOWN = "import_unknown"  # imports something Plaza does not provide: never runs
CAPABILITY_NOT_GRANTED = "capability_not_granted"  # imports a capability the installation did not grant
EXPORT_MISSING = "export_missing"  # no such export, or not a () -> i32 function
MODULE_INVALID = "module_invalid"  # not a WebAssembly module this runtime accepts

ALL = (
    OK, FAILED, TRAP, FUEL_EXHAUSTED, DEADLINE, MEMORY_LIMIT, STACK_OVERFLOW, OUTPUT_TOO_LARGE, OUTPUT_INVALID,
    INPUT_TOO_LARGE, HOST_ERROR, IMPORT_UNKNOWN, CAPABILITY_NOT_GRANTED, EXPORT_MISSING, MODULE_INVALID,
)  # fmt: skip

# Host function return codes (negative i32); >= 0 means success (often a length).
E_NOT_FOUND = -1
E_TOO_LARGE = -2
E_QUOTA = -3
E_DENIED = -4
E_INVALID = -5
E_BOUNDS = -6  # a pointer/length pair outside the module's memory
E_LIMIT = -7  # a per-call limit (log volume, number of kv calls or events) was reached
E_NETWORK = -8  # http_fetch: DNS, connection, TLS or protocol failure, or the fetch ran out of time
