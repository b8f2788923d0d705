"""Sandbox smoke tests: every declared hook runs against the examples of the event schemas it
subscribes to, every tool against valid inputs made from its input schema, in the real sandbox
(apps/runtime) with the published default limits and exactly the version's own scopes.

A call must end ``ok``; a tool's output must validate against its ``output_schema``. Fuel, memory
and time of each call are recorded. Calls that never start because the module imports or exports
the wrong things are reported by the module lint check, so here they are only noted (``info``):
one problem, one failing check.

The calls run as the pseudo-installation ``<run id>``: they are recorded like any other call
(apps.runtime Invocation, correlation id = the run id), and the key-value data they write is
deleted when the check ends. Outbound ``http_fetch`` calls go to the hosts the version declares,
through the same SSRF guard as in production."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apps.certification.checks import ERROR, INFO, WARNING, Check, CheckContext, CheckOutcome, Finding
from apps.certification.instances import valid_inputs
from apps.core.safe_jsonschema import safe_validator
from apps.core.schema_refs import json_path
from apps.events.models import EventSchema
from apps.runtime import outcomes
from apps.runtime.models import KVEntry
from apps.runtime.services import hook_invoke

# Calls that never ran the module's code: the module lint check reports why.
_NOT_STARTED = frozenset(
    {outcomes.IMPORT_UNKNOWN, outcomes.CAPABILITY_NOT_GRANTED, outcomes.EXPORT_MISSING, outcomes.MODULE_INVALID}
)
_HINTS = {
    outcomes.FAILED: "The export returned a non-zero status on a valid input: handle every valid input and "
    "return 0 (log what went wrong for inputs you choose to ignore).",
    outcomes.TRAP: "The code trapped (unreachable, out-of-bounds access, division by zero): run it locally "
    "with `plaza run` on the same input to see where.",
    outcomes.FUEL_EXHAUSTED: "The call ran past its instruction budget: look for a loop that does not end, or do "
    "less work per call.",
    outcomes.DEADLINE: "The call ran past its wall-clock limit: look for a loop that does not end or slow host calls.",
    outcomes.MEMORY_LIMIT: "The call needed more memory than the cap (docs/sandbox.md): allocate less, or free memory.",
    outcomes.STACK_OVERFLOW: "Recursion went too deep: make it iterative or bound the depth.",
    outcomes.OUTPUT_TOO_LARGE: "Write a smaller output (the limit is in docs/sandbox.md).",
    outcomes.OUTPUT_INVALID: "Write the output as UTF-8 JSON.",
    outcomes.INPUT_TOO_LARGE: "The example is larger than the input limit; tell platform support.",
    outcomes.HOST_ERROR: "A host function failed on Plaza's side; re-run, and tell platform support if it repeats.",
}
MAX_CALLS = 50  # per check run: a manifest with 100 hooks and many examples still finishes quickly


def _latest_examples(events: set[str]) -> dict[str, tuple[int, list]]:
    """event type -> (schema version, its examples) for the newest schema version of each type."""
    found: dict[str, tuple[int, list]] = {}
    rows = EventSchema.objects.filter(event_type__name__in=events).order_by("event_type__name", "-version")
    for name, number, examples in rows.values_list("event_type__name", "version", "examples"):
        found.setdefault(name, (number, examples or []))
    return found


class SmokeCheck(Check):
    id = "smoke"
    version = 1
    title = "Sandbox smoke tests"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        manifest = ctx.manifest
        findings: list[Finding] = []
        calls: list[dict] = []
        installation_id = ctx.run_id or f"cert_{ctx.version.pk}"
        hooks = [h for h in manifest.get("hooks") or () if isinstance(h, dict) and h.get("export")]
        webhooks = sum(1 for h in manifest.get("hooks") or () if isinstance(h, dict) and h.get("url"))
        examples = _latest_examples({h["event"] for h in hooks})
        plan: list[tuple[str, str, object, dict | None]] = []  # (export, what, input, output schema)
        for i, hook in enumerate(hooks):
            number, samples = examples.get(hook["event"], (0, []))
            if not samples:
                findings.append(
                    Finding(
                        "smoke.no_examples",
                        INFO,
                        f"The event type {hook['event']} has no examples to run the hook on.",
                        f"$.hooks[{i}]",
                        "Nothing to do: platform staff add examples to the event catalog.",
                    )
                )
            for n, sample in enumerate(samples, 1):
                plan.append((hook["export"], f"example {n} of {hook['event']} v{number}", sample, None))
        for p, pack in enumerate(manifest.get("tool_packs") or ()):
            for t, tool in enumerate(pack.get("tools") or ()):
                where = f"$.tool_packs[{p}].tools[{t}]"
                inputs = valid_inputs(tool.get("input_schema") or {})
                if not inputs:
                    findings.append(
                        Finding(
                            "smoke.tool_input_ungenerated",
                            WARNING,
                            f"No valid input could be made from the input schema of tool {tool.get('name')}.",
                            f"{where}.input_schema",
                            "Add an `examples` array of valid inputs to the tool's input_schema.",
                        )
                    )
                for n, value in enumerate(inputs, 1):
                    plan.append((tool["export"], f"input {n} of tool {tool['name']}", value, tool.get("output_schema")))
        if len(plan) > MAX_CALLS:
            findings.append(
                Finding(
                    "smoke.calls_capped",
                    INFO,
                    f"{len(plan)} calls were planned; the first {MAX_CALLS} ran.",
                    "$",
                    "Nothing to do.",
                )
            )
            plan = plan[:MAX_CALLS]
        try:
            for export, what, value, output_schema in plan:
                calls.append(self._call(ctx, installation_id, export, what, value, output_schema, findings))
        finally:
            KVEntry.objects.filter(installation_id=installation_id).delete()
        ran = [c for c in calls if c["outcome"] not in _NOT_STARTED]
        measurements = {
            "calls": calls,
            "max_fuel": max((c["fuel"] for c in ran), default=0),
            "max_memory_bytes": max((c["memory_peak_bytes"] for c in ran), default=0),
            "max_duration_us": max((c["duration_us"] for c in ran), default=0),
            "webhook_hooks_not_run": webhooks,
        }
        failed = sum(1 for f in findings if f.severity == ERROR)
        summary = (
            f"{len(calls)} call{'s' if len(calls) != 1 else ''} in the sandbox, {failed} failed."
            if calls
            else "Nothing to run: no sandbox hooks or tools."
        )
        if webhooks:
            summary += f" {webhooks} webhook hook{'s' if webhooks != 1 else ''} (not run here)."
        return CheckOutcome(summary, findings, measurements)

    def _call(self, ctx, installation_id, export, what, value, output_schema, findings) -> dict:
        result, record = hook_invoke(
            version=ctx.version,
            export=export,
            input_value=value,
            installation_id=installation_id,
            scopes=ctx.version.scopes,
            correlation_id=ctx.run_id,
        )
        location = f"{export} on {what}"
        if result.outcome in _NOT_STARTED:
            findings.append(
                Finding(
                    "smoke.not_started",
                    INFO,
                    f"{export} did not start ({result.outcome}): {result.detail}",
                    location,
                    "See the module lint check's findings.",
                )
            )
        elif not result.ok:
            findings.append(
                Finding(
                    f"smoke.{result.outcome}",
                    ERROR,
                    f"{export} ended {result.outcome} on {what}: {result.detail}"[:1000],
                    location,
                    _HINTS.get(result.outcome, "See docs/sandbox.md for this outcome."),
                )
            )
        elif output_schema:
            problem = _output_problem(output_schema, result.output)
            if problem:
                findings.append(
                    Finding(
                        "smoke.output_schema_mismatch",
                        ERROR,
                        f"{export}'s output on {what} does not match its output_schema: {problem}"[:1000],
                        location,
                        "Make the tool return what its output_schema declares, or correct the schema.",
                    )
                )
        return {
            "export": export,
            "input": what,
            "outcome": result.outcome,
            "fuel": result.fuel_used,
            "memory_peak_bytes": result.memory_peak_bytes,
            "duration_us": result.duration_us,
            "invocation": record.pk,
        }


def _output_problem(schema: dict, output) -> str:
    try:
        Draft202012Validator.check_schema(schema)
        error = next(iter(safe_validator(schema).iter_errors(output)), None)
    except (SchemaError, RecursionError) as exc:
        return f"the output_schema cannot be used ({str(exc)[:200]})"
    if error is None:
        return ""
    return f"{json_path(error.absolute_path)}: {error.message[:300]}"
