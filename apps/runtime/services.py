"""Writes of the runtime: recording how calls ended, for per-extension logs, metrics and health."""

from __future__ import annotations

from apps.runtime.models import Invocation
from apps.runtime.runner import Result


def invocation_record(
    *, result: Result, module_sha256: str, export: str, installation_id: str = "", correlation_id: str = ""
) -> Invocation:
    """Store one call's outcome and measurements (never its input or output: they may hold
    customer data; the log excerpt is what the extension chose to log, capped by the limits)."""
    return Invocation.objects.create(
        installation_id=installation_id,
        module_sha256=module_sha256,
        export=export[:64],
        outcome=result.outcome,
        detail=result.detail[:500],
        fuel_used=result.fuel_used,
        memory_peak_bytes=result.memory_peak_bytes,
        duration_us=min(result.duration_us, 2**31 - 1),
        input_bytes=result.input_bytes,
        output_bytes=result.output_bytes,
        log_excerpt=result.logs[:1024],
        correlation_id=correlation_id[:64],
    )
