"""The ``plaza`` host functions: what extension code may ask of Plaza, one capability each.

Conventions (docs/sandbox-abi.md): every argument is an i32; byte strings travel as (pointer,
length) pairs into the module's exported ``memory``; every function returns an i32 that is >= 0
on success (often a length) or one of the negative ``outcomes.E_*`` codes. A host function never
lets a Python exception through: a failure on Plaza's side aborts the call as ``host_error``."""

from __future__ import annotations

import json
import threading

import wasmtime
from django.db import transaction
from django.db.models import Sum

from apps.runtime import outcomes
from apps.runtime.limits import KV_MAX_ENTRIES, KV_MAX_KEY_BYTES, KV_MAX_TOTAL_BYTES, KV_MAX_VALUE_BYTES

# function -> the scope that links it (None: always linked)
CAPABILITY_OF = {
    "input_len": None,
    "input_read": None,
    "output_write": None,
    "log": None,
    "kv_get": "kv:read",
    "kv_set": "kv:write",
    "kv_delete": "kv:write",
    "emit_event": "events:emit:<type>",
}


def capabilities_of(scopes) -> frozenset[str]:
    granted = set(scopes)
    caps = {"base"}
    if "kv:read" in granted or "kv:write" in granted:
        caps.add("kv:read")
    if "kv:write" in granted:
        caps.add("kv:write")
    if any(s.startswith("events:emit:") for s in granted):
        caps.add("emit")
    return frozenset(caps)


def emit_types_of(scopes) -> frozenset[str]:
    return frozenset(s.removeprefix("events:emit:") for s in scopes if s.startswith("events:emit:"))


def functions_for(capabilities: frozenset[str]) -> list[str]:
    names = ["input_len", "input_read", "output_write", "log"]
    if "kv:read" in capabilities:
        names.append("kv_get")
    if "kv:write" in capabilities:
        names += ["kv_set", "kv_delete"]
    if "emit" in capabilities:
        names.append("emit_event")
    return names


# The call a host function serves: calls are synchronous on their thread and never share a store.
_current = threading.local()


def current_call():
    return _current.call


def set_current_call(call) -> None:
    _current.call = call


# --- memory access ------------------------------------------------------------------------------
def _memory(caller) -> wasmtime.Memory | None:
    return _current.call.memory


def _read(caller, ptr: int, length: int) -> bytes | None:
    memory = _memory(caller)
    if memory is None or ptr < 0 or length < 0 or ptr + length > memory.data_len(caller):
        return None
    return bytes(memory.read(caller, ptr, ptr + length))


def _write(caller, ptr: int, data: bytes) -> bool:
    memory = _memory(caller)
    if memory is None or ptr < 0 or ptr + len(data) > memory.data_len(caller):
        return False
    memory.write(caller, data, ptr)
    return True


def _guarded(fn):
    """Run a host function; an unexpected exception on Plaza's side aborts the call as host_error."""

    def wrapper(caller, *args):
        call = _current.call
        try:
            return fn(caller, call, *args)
        except wasmtime.Trap:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as the call's outcome, never to the host process
            call.host_failure = f"{fn.__name__}: {type(exc).__name__}"
            raise wasmtime.Trap(f"host function {fn.__name__} failed") from None

    wrapper.__name__ = fn.__name__
    return wrapper


# --- input, output, logs ------------------------------------------------------------------------
@_guarded
def input_len(caller, call) -> int:
    return len(call.input)


@_guarded
def input_read(caller, call, ptr: int) -> int:
    return len(call.input) if _write(caller, ptr, call.input) else outcomes.E_BOUNDS


@_guarded
def output_write(caller, call, ptr: int, length: int) -> int:
    if length > call.limits.output_bytes:
        call.output_refused = True
        return outcomes.E_TOO_LARGE
    data = _read(caller, ptr, length)
    if data is None:
        return outcomes.E_BOUNDS
    call.output = data
    return 0


@_guarded
def log(caller, call, ptr: int, length: int) -> int:
    room = call.limits.log_bytes - len(call.logs)
    if room <= 0:
        call.logs_truncated = True
        return outcomes.E_LIMIT
    data = _read(caller, ptr, min(length, room))
    if data is None:
        return outcomes.E_BOUNDS
    call.logs += data + b"\n" if len(call.logs) + len(data) < call.limits.log_bytes else data
    if length > room:
        call.logs_truncated = True
        return outcomes.E_LIMIT
    return 0


# --- key-value storage, scoped to the installation ----------------------------------------------
def _kv_key(caller, call, ptr: int, length: int) -> str | int:
    call.kv_ops += 1
    if call.kv_ops > call.limits.kv_ops:
        return outcomes.E_LIMIT
    if not call.installation_id:
        return outcomes.E_DENIED
    if length <= 0 or length > KV_MAX_KEY_BYTES:
        return outcomes.E_INVALID
    raw = _read(caller, ptr, length)
    if raw is None:
        return outcomes.E_BOUNDS
    try:
        key = raw.decode("utf-8")
    except UnicodeDecodeError:
        return outcomes.E_INVALID
    return outcomes.E_INVALID if "\x00" in key else key


@_guarded
def kv_get(caller, call, key_ptr: int, key_len: int, buf_ptr: int, buf_cap: int) -> int:
    """The value's length; copied into the buffer when it fits (else call again with a larger one)."""
    from apps.runtime.models import KVEntry

    key = _kv_key(caller, call, key_ptr, key_len)
    if isinstance(key, int):
        return key
    value = (
        KVEntry.objects.filter(installation_id=call.installation_id, key=key).values_list("value", flat=True).first()
    )
    if value is None:
        return outcomes.E_NOT_FOUND
    value = bytes(value)
    if len(value) <= buf_cap and not _write(caller, buf_ptr, value):
        return outcomes.E_BOUNDS
    return len(value)


@_guarded
def kv_set(caller, call, key_ptr: int, key_len: int, val_ptr: int, val_len: int) -> int:
    from apps.runtime.models import KVEntry

    key = _kv_key(caller, call, key_ptr, key_len)
    if isinstance(key, int):
        return key
    if val_len < 0 or val_len > KV_MAX_VALUE_BYTES:
        return outcomes.E_TOO_LARGE
    value = _read(caller, val_ptr, val_len)
    if value is None:
        return outcomes.E_BOUNDS
    size = len(key.encode()) + len(value)
    with transaction.atomic():
        mine = KVEntry.objects.select_for_update().filter(installation_id=call.installation_id)
        existing = mine.filter(key=key).values_list("size", flat=True).first()
        used = mine.aggregate(total=Sum("size"))["total"] or 0
        if existing is None and mine.count() >= KV_MAX_ENTRIES:
            return outcomes.E_QUOTA
        if used - (existing or 0) + size > KV_MAX_TOTAL_BYTES:
            return outcomes.E_QUOTA
        KVEntry.objects.update_or_create(
            installation_id=call.installation_id, key=key, defaults={"value": value, "size": size}
        )
    return 0


@_guarded
def kv_delete(caller, call, key_ptr: int, key_len: int) -> int:
    from apps.runtime.models import KVEntry

    key = _kv_key(caller, call, key_ptr, key_len)
    if isinstance(key, int):
        return key
    deleted, _ = KVEntry.objects.filter(installation_id=call.installation_id, key=key).delete()
    return 0 if deleted else outcomes.E_NOT_FOUND


# --- events -------------------------------------------------------------------------------------
@_guarded
def emit_event(caller, call, type_ptr: int, type_len: int, payload_ptr: int, payload_len: int) -> int:
    """Queue an event of a type the installation may emit; the caller hands them to ingestion
    when (and only when) the call succeeds."""
    if len(call.emitted) >= call.limits.emit_events:
        return outcomes.E_LIMIT
    if type_len <= 0 or type_len > 200 or payload_len < 0 or payload_len > 64 * 1024:
        return outcomes.E_TOO_LARGE if payload_len > 64 * 1024 else outcomes.E_INVALID
    raw_type, payload = _read(caller, type_ptr, type_len), _read(caller, payload_ptr, payload_len)
    if raw_type is None or payload is None:
        return outcomes.E_BOUNDS
    event_type = raw_type.decode("utf-8", "replace")
    if event_type not in call.emit_types:
        return outcomes.E_DENIED
    try:
        body = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return outcomes.E_INVALID
    if not isinstance(body, dict):
        return outcomes.E_INVALID
    call.emitted.append({"type": event_type, "payload": body})
    return 0


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


# name -> (number of i32 parameters, number of i32 results, function)
FUNCTIONS = {
    "input_len": (0, 1, input_len),
    "input_read": (1, 1, input_read),
    "output_write": (2, 1, output_write),
    "log": (2, 1, log),
    "kv_get": (4, 1, kv_get),
    "kv_set": (4, 1, kv_set),
    "kv_delete": (2, 1, kv_delete),
    "emit_event": (4, 1, emit_event),
}
