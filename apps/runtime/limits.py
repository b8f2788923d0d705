"""Published per-call limits of the sandbox (docs/sandbox.md). A plan may raise them."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    fuel: int = 11_000_000  # wasm instructions, roughly (Shopify Functions: 11 M)
    memory_bytes: int = 10 * 1024 * 1024  # linear memory cap
    wall_ms: int = 100  # epoch deadline
    input_bytes: int = 64 * 1024
    output_bytes: int = 20 * 1024
    log_bytes: int = 1024
    kv_ops: int = 50  # host calls to kv_* per call (each is a database round trip)
    emit_events: int = 10
    http_calls: int = 5  # http_fetch calls per call (a re-read of a response that did not fit is free)
    http_timeout_ms: int = 2000  # each fetch's own time budget, also cut to the time left before wall_ms
    http_response_bytes: int = 256 * 1024  # response body cap
    http_request_bytes: int = 64 * 1024  # request body cap

    def raised(self, **changes) -> Limits:
        """These limits with some raised (a plan's); lowering is refused, so plans only add headroom."""
        for name, value in changes.items():
            if value < getattr(self, name):
                raise ValueError(f"{name} may only be raised ({value} < {getattr(self, name)})")
        return replace(self, **changes)


DEFAULT_LIMITS = Limits()

# Storage quotas per installation (kv_set refuses past them with E_QUOTA).
KV_MAX_KEY_BYTES = 256
KV_MAX_VALUE_BYTES = 64 * 1024
KV_MAX_ENTRIES = 1000
KV_MAX_TOTAL_BYTES = 1024 * 1024
