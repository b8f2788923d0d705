"""The ``plaza`` host functions: what extension code may ask of Plaza, one capability each.

Conventions (docs/sandbox-abi.md): every argument is an i32; byte strings travel as (pointer,
length) pairs into the module's exported ``memory``; every function returns an i32 that is >= 0
on success (often a length) or one of the negative ``outcomes.E_*`` codes. A host function never
lets a Python exception through: a failure on Plaza's side aborts the call as ``host_error``."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import urlsplit

import wasmtime
from django.db import transaction
from django.db.models import Sum

from apps.core import netguard
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
    "http_fetch": "http:fetch:<host>",
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
    if any(s.startswith("http:fetch:") for s in granted):
        caps.add("http")
    return frozenset(caps)


def emit_types_of(scopes) -> frozenset[str]:
    return frozenset(s.removeprefix("events:emit:") for s in scopes if s.startswith("events:emit:"))


def http_hosts_of(scopes) -> frozenset[str]:
    return frozenset(s.removeprefix("http:fetch:").lower() for s in scopes if s.startswith("http:fetch:"))


def functions_for(capabilities: frozenset[str]) -> list[str]:
    names = ["input_len", "input_read", "output_write", "log"]
    if "kv:read" in capabilities:
        names.append("kv_get")
    if "kv:write" in capabilities:
        names += ["kv_set", "kv_delete"]
    if "emit" in capabilities:
        names.append("emit_event")
    if "http" in capabilities:
        names.append("http_fetch")
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


def _may_write(installation_id: str) -> bool:
    """Lock the installation's row and say whether it may still write (inside the caller's
    transaction). An uninstall locks the same row before its cleaners delete the stored data, so a
    write either commits first (and is deleted by the cleaner) or waits and is refused: nothing is
    stored after the cleanup report. Ids of no installation (certification runs, the CLI) write
    freely: they have nothing to be cleaned up by."""
    from apps.installs.models import Installation, InstallationStatus

    status = (
        Installation.objects.select_for_update().filter(pk=installation_id).values_list("status", flat=True).first()
    )
    return status is None or status == InstallationStatus.ACTIVE


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
        if not _may_write(call.installation_id):
            return outcomes.E_DENIED
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
    with transaction.atomic():
        if not _may_write(call.installation_id):
            return outcomes.E_DENIED
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


# --- outbound HTTP -------------------------------------------------------------------------------
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# Headers Plaza sets itself (framing, the connection, the host the scope names): a guest may not.
HTTP_FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"})
HTTP_REQUEST_OVERHEAD = 16 * 1024  # room for the URL and headers in the request JSON, beyond the body cap


@_guarded
def http_fetch(caller, call, req_ptr: int, req_len: int, resp_ptr: int, resp_cap: int) -> int:
    """Fetch a URL on a granted host; the JSON response's length, written to the buffer when it fits.

    A response that does not fit is kept: the same request bytes again return it without a second
    fetch (and without counting against http_calls)."""
    if req_len < 0 or resp_cap < 0:
        return outcomes.E_INVALID
    if req_len > call.limits.http_request_bytes + HTTP_REQUEST_OVERHEAD:
        return outcomes.E_TOO_LARGE
    raw = _read(caller, req_ptr, req_len)
    if raw is None:
        return outcomes.E_BOUNDS
    if call.http_pending is not None and call.http_pending[0] == raw:
        response = call.http_pending[1]
    else:
        call.http_pending = None
        if call.http_calls >= call.limits.http_calls:
            return outcomes.E_LIMIT
        call.http_calls += 1
        response = _http_exchange(call, raw)
        if isinstance(response, int):
            return response
    if len(response) > resp_cap:
        call.http_pending = (raw, response)
        return len(response)
    if not _write(caller, resp_ptr, response):
        return outcomes.E_BOUNDS
    call.http_pending = None
    return len(response)


def _http_request(call, raw: bytes):
    """(method, url, headers, body) from the guest's JSON, or an E_* code."""
    try:
        request = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return outcomes.E_INVALID
    if not isinstance(request, dict) or not set(request) <= {"method", "url", "headers", "body"}:
        return outcomes.E_INVALID
    method, url = request.get("method"), request.get("url")
    headers, body = request.get("headers", {}), request.get("body")
    if method not in HTTP_METHODS or not isinstance(url, str) or not isinstance(headers, dict):
        return outcomes.E_INVALID
    if body is not None and not isinstance(body, str):
        return outcomes.E_INVALID
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or not url.isascii():
        return outcomes.E_INVALID
    for name, value in headers.items():
        if not isinstance(value, str) or not _token(name) or name.lower() in HTTP_FORBIDDEN_HEADERS:
            return outcomes.E_INVALID
        if any(c in value for c in "\r\n\x00") or not value.isascii():
            return outcomes.E_INVALID
    data = body.encode("utf-8") if body is not None else None
    if data is not None and len(data) > call.limits.http_request_bytes:
        return outcomes.E_TOO_LARGE
    return method, url, headers, data


def _token(name) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= 256
        and name.isascii()
        and all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name)
    )


def _http_exchange(call, raw: bytes) -> bytes | int:
    parsed = _http_request(call, raw)
    if isinstance(parsed, int):
        return parsed
    method, url, headers, body = parsed
    allow_private = netguard.private_networks_allowed()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return outcomes.E_INVALID
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username is not None:
        return outcomes.E_INVALID
    if parts.hostname not in call.http_hosts:
        return outcomes.E_DENIED
    if not allow_private and (parts.scheme != "https" or port not in (None, 443)):
        return outcomes.E_DENIED
    budget = min(call.limits.http_timeout_ms / 1000, call.deadline - time.perf_counter())
    if budget <= 0:
        return outcomes.E_NETWORK
    try:
        response = netguard.fetch(
            method,
            url,
            headers=headers,
            body=body,
            timeout=budget,
            max_response_bytes=call.limits.http_response_bytes,
            max_request_bytes=call.limits.http_request_bytes,
            allow_private=allow_private,
        )
    except netguard.BlockedAddress:
        return outcomes.E_DENIED
    except netguard.ResponseTooLarge:
        return outcomes.E_TOO_LARGE
    except netguard.NetworkError:
        return outcomes.E_NETWORK
    except ValueError:  # a request http.client refuses (a header it finds illegal)
        return outcomes.E_INVALID
    merged: dict[str, str] = {}
    for name, value in response.headers:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    body_text = response.body.decode("utf-8", "replace")
    out = {"status": response.status, "headers": merged, "body": body_text}
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


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
    "http_fetch": (4, 1, http_fetch),
}
