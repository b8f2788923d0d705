"""Writes of the runtime: recording how calls ended, for per-extension logs, metrics and health."""

from __future__ import annotations

import functools
import hashlib

import wasmtime

from apps.runtime import outcomes
from apps.runtime.limits import DEFAULT_LIMITS, Limits
from apps.runtime.models import Invocation
from apps.runtime.runner import Result, invoke


def invocation_record(
    *,
    result: Result,
    module_sha256: str,
    export: str,
    installation_id: str = "",
    correlation_id: str = "",
    version=None,
) -> Invocation:
    """Store one call's outcome and measurements (never its input or output: they may hold
    customer data; the log excerpt is what the extension chose to log, capped by the limits)."""
    return Invocation.objects.create(
        installation_id=installation_id,
        version=version,
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


def _module_of(manifest: dict, export: str) -> str | None:
    """The name of the module whose ``export`` a hook or a tool of the manifest declares."""
    for hook in manifest.get("hooks") or ():
        if hook.get("export") == export and hook.get("module"):
            return hook["module"]
    for pack in manifest.get("tool_packs") or ():
        for tool in pack.get("tools") or ():
            if tool.get("export") == export and tool.get("module"):
                return tool["module"]
    return None


@functools.lru_cache(maxsize=32)
def _module_bytes(package_sha256: str, path: str) -> tuple[bytes, str]:
    """One module of a stored package and its SHA-256, kept in process so a hot hook is not
    unzipped on every call (packages are content-addressed: an entry never goes stale)."""
    from apps.extensions.packages import read_package
    from apps.extensions.storage import read_artifact

    data = read_package(read_artifact(package_sha256)).read(path)
    return data, hashlib.sha256(data).hexdigest()


def hook_invoke(
    *,
    version,
    export: str,
    input_value,
    installation_id: str = "",
    scopes=None,
    limits: Limits = DEFAULT_LIMITS,
    correlation_id: str = "",
) -> tuple[Result, Invocation]:
    """Run ``export`` of an extension version (a hook or a tool its manifest declares) and record
    how it ended. An export the manifest does not declare never runs: it is recorded as
    ``export_missing``."""
    manifest = version.manifest or {}
    module = _module_of(manifest, export)
    path = (manifest.get("modules") or {}).get(module) if module else None
    if not path:
        result = Result(outcomes.EXPORT_MISSING, f"The manifest declares no hook or tool with the export '{export}'.")
        sha256 = ""
    else:
        try:
            data, sha256 = _module_bytes(version.package_sha256, path)
        except KeyError:
            result, sha256 = Result(outcomes.MODULE_INVALID, f"The package has no file '{path}'."), ""
        else:
            result = invoke(
                data,
                export,
                input_value,
                installation_id=installation_id,
                scopes=scopes if scopes is not None else version.scopes,
                limits=limits,
                sha256=sha256,
            )
    record = invocation_record(
        result=result,
        module_sha256=sha256,
        export=export,
        installation_id=installation_id,
        correlation_id=correlation_id,
        version=version,
    )
    return result, record


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
