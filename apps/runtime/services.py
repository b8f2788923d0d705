"""Writes of the runtime: recording how calls ended, for per-extension logs, metrics and health."""

from __future__ import annotations

import hashlib

import wasmtime

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


def version_precompile(*, version) -> list[dict]:
    """Compile every module of an extension version into the cache ahead of its first call, so no
    request pays for compiling. A module that does not compile is reported, not raised:
    certification judges modules; this only warms the cache."""
    from apps.extensions.packages import read_package
    from apps.extensions.storage import read_artifact
    from apps.runtime.engine import runtime

    package = read_package(read_artifact(version.package_sha256))
    report = []
    for name, path in sorted((version.manifest.get("modules") or {}).items()):
        data = package.read(path)
        try:
            report.append({"module": name, "sha256": runtime().precompile(data), "error": ""})
        except wasmtime.WasmtimeError as exc:
            report.append({"module": name, "sha256": hashlib.sha256(data).hexdigest(), "error": str(exc)[:300]})
    return report
