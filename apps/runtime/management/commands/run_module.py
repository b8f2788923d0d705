"""Run one export of a module locally with the production limits: a publisher's test bench."""

from __future__ import annotations

import json
from pathlib import Path

import wasmtime
from django.core.management.base import BaseCommand, CommandError

from apps.runtime import outcomes
from apps.runtime.limits import DEFAULT_LIMITS
from apps.runtime.runner import invoke


class Command(BaseCommand):
    help = "Run EXPORT of a .wasm (or .wat) module on a JSON input file with Plaza's default limits."

    def add_arguments(self, parser):
        parser.add_argument("module", help="path to a .wasm or .wat file")
        parser.add_argument("export", help="the hook or tool export to call, of type () -> i32")
        parser.add_argument("--input", help="path to a JSON file (default: no input)")
        parser.add_argument("--scope", action="append", default=[], help="a granted scope (repeatable)")
        parser.add_argument("--installation", default="", help="installation id for kv_* storage")

    def handle(self, *args, module, export, input=None, scope=(), installation="", **options):
        path = Path(module)
        try:
            data = path.read_bytes()
            if path.suffix == ".wat":
                data = wasmtime.wat2wasm(data.decode())
            value = json.loads(Path(input).read_text()) if input else None
        except (OSError, ValueError, wasmtime.WasmtimeError) as exc:
            raise CommandError(f"Cannot read the module or input: {str(exc)[:300]}") from None
        result = invoke(data, export, value, installation_id=installation, scopes=scope, limits=DEFAULT_LIMITS)
        self.stdout.write(
            json.dumps(
                {
                    "outcome": result.outcome,
                    "detail": result.detail,
                    "status": result.status,
                    "output": result.output,
                    "logs": result.logs,
                    "logs_truncated": result.logs_truncated,
                    "fuel_used": result.fuel_used,
                    "memory_peak_bytes": result.memory_peak_bytes,
                    "duration_us": result.duration_us,
                    "emitted": result.emitted,
                },
                indent=2,
            )
        )
        if result.outcome != outcomes.OK:
            raise SystemExit(1)
