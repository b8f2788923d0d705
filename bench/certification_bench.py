"""Benchmark of a certification run of a typical package on the embedded defaults.

    .venv/bin/python bench/certification_bench.py [--runs N] [--functions N] [--data-kib N]

One process on the one-machine defaults (``PLAZA_ENV=development``, SQLite in a temporary
``PLAZA_DATA_DIR``, tasks on the in-process executor thread, an empty module cache). The package is
what a publisher typically sends: one ~1 MiB WebAssembly module (thousands of small functions
with loops and arithmetic, reached through a function table, plus a data segment) exporting 5
hooks over the catalog's event types, a manifest declaring them, and a CycloneDX SBOM of 20
components under permissive licences; signed, uploaded with ``version_upload``.

For each run it times ``version_submit`` until the run is finished (the ``run_finished`` signal),
with the full check list of ``PLAZA_CERTIFICATION_CHECKS``:

- cold: a module nobody compiled yet (a different digest each run), so the run compiles it;
- warm: a resubmission of an already compiled module (the module cache answers).

The baseline, measured in the same process: compile the module and call each hook once on its
event's example with ``apps.runtime.runner.invoke`` — the least any certification of it can cost.

Target: the slowest cold run < 5 s. Exits 1 when it fails (or a run does not pass), so it can gate.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TARGET_SECONDS = 5.0
# The 5 hooks: (event type, export). Hooks may share an event type.
HOOKS = [
    ("order.created", "on_order_created"),
    ("order.created", "on_order_created_risk"),
    ("customer.created", "on_customer_created"),
    ("order.fulfilled", "on_order_fulfilled"),
    ("order.fulfilled", "on_order_fulfilled_notify"),
]
LICENSES = ["MIT", "Apache-2.0", "BSD-3-Clause", "ISC", "BSD-2-Clause", "Zlib", "MIT", "Apache-2.0", "0BSD", "MPL-2.0"]


def _setup_django(data_dir: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["PLAZA_ENV"] = "development"  # the one-machine defaults, not the test settings
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = os.environ.get("LOG_LEVEL", "WARNING")
    os.environ["PLAZA_DATA_DIR"] = data_dir  # SQLite, artifacts and the module cache, all fresh
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "PLAZA_MODULE_CACHE_DIR", "PLAZA_ARTIFACT_ROOT"):
        os.environ.pop(name, None)
    import django

    django.setup()


# --- the package -------------------------------------------------------------------------------
SALT_MARK = b"plaza-bench-salt:0000000000000000"


def with_salt(wasm: bytes, salt: int) -> bytes:
    """The same module with a different digest (its salt data segment changed in place)."""
    assert wasm.count(SALT_MARK) == 1
    return wasm.replace(SALT_MARK, SALT_MARK[:-16] + f"{salt:016x}".encode())


def module_wat(*, functions: int, data_kib: int, seed: int = 1) -> str:
    """A module shaped like compiled application code: ``functions`` small functions (a loop of
    mixed arithmetic and memory reads, each calling its predecessor, so call chains stay ≤ 16 deep),
    all in a function table; a data segment of ``data_kib`` KiB; 5 hooks that read their input,
    hash every byte through the table and write a JSON answer."""
    rng = random.Random(seed)
    out = [
        "(module",
        '  (import "plaza" "input_len" (func $input_len (result i32)))',
        '  (import "plaza" "input_read" (func $input_read (param i32) (result i32)))',
        '  (import "plaza" "output_write" (func $output_write (param i32 i32) (result i32)))',
        "  (type $step (func (param i32) (result i32)))",
        '  (memory (export "memory") 16)',
        f"  (table {functions} funcref)",
    ]
    ops = ["i32.add", "i32.xor", "i32.sub", "i32.or"]
    for i in range(functions):
        a, b, c = rng.getrandbits(31), rng.randrange(3, 1 << 20) | 1, rng.randrange(1, 31)
        op = ops[i % len(ops)]
        rounds = 4 + i % 5
        tail = f"(call $f{i - 1} (local.get $acc))" if i % 16 else "(local.get $acc)"  # chains reset every 16 functions
        out.append(
            f"  (func $f{i} (type $step) (local $i i32) (local $acc i32)\n"
            f"    (local.set $acc (i32.xor (local.get 0) (i32.const {a})))\n"
            f"    (block $done (loop $next\n"
            f"      (br_if $done (i32.ge_u (local.get $i) (i32.const {rounds})))\n"
            f"      (local.set $acc ({op} (i32.mul (local.get $acc) (i32.const {b}))"
            f" (i32.load8_u offset=65536 (i32.and (i32.add (local.get $acc) (local.get $i)) (i32.const 0xffff)))))\n"
            f"      (local.set $acc (i32.rotl (local.get $acc) (i32.const {c})))\n"
            f"      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
            f"      (br $next)))\n"
            f"    {tail})"
        )
    out.append(f"  (elem (i32.const 0) {' '.join(f'$f{i}' for i in range(functions))})")
    answer = b'{"handled":true,"tags":["bench"]}'
    for n, (_event, export) in enumerate(HOOKS):
        out.append(
            f'  (func (export "{export}") (result i32) (local $len i32) (local $i i32) (local $h i32)\n'
            f"    (local.set $len (call $input_len))\n"
            f"    (drop (call $input_read (i32.const 0)))\n"
            f"    (local.set $h (i32.const {n + 1}))\n"
            f"    (block $done (loop $next\n"
            f"      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))\n"
            f"      (local.set $h (call_indirect (type $step)\n"
            f"        (i32.xor (local.get $h) (i32.load8_u (local.get $i)))\n"
            f"        (i32.rem_u (local.get $h) (i32.const {functions}))))\n"
            f"      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
            f"      (br $next)))\n"
            # A hash of exactly this value is as good as impossible: the loop cannot be optimised away.
            f"    (if (i32.eq (local.get $h) (i32.const 0x7fffffff)) (then (return (i32.const 1))))\n"
            f"    (call $output_write (i32.const 0x30000) (i32.const {len(answer)})))"
        )
    table = bytes(rng.getrandbits(8) for _ in range(65536))
    blob = bytes(rng.getrandbits(8) for _ in range(max(0, data_kib - 64) * 1024))
    out.append(f'  (data (i32.const 65536) "{_wat_bytes(table)}")')
    out.append(f'  (data (i32.const 0x30000) "{_wat_bytes(answer)}")')
    out.append(f'  (data (i32.const 0x30100) "{_wat_bytes(SALT_MARK)}")')
    if blob:
        out.append(f'  (data (i32.const 0x40000) "{_wat_bytes(blob)}")')
    out.append(")")
    return "\n".join(out)


def _wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def manifest(key: str, version: str) -> dict:
    events = sorted({event for event, _ in HOOKS})
    return {
        "manifest_version": 1,
        "id": key,
        "version": version,
        "name": "Order Insights",
        "summary": "Scores new orders and customers and tags fulfilled orders.",
        "platform": {"api": "^1.0"},
        "scopes": [f"events:read:{event}" for event in events],
        "modules": {"main": "modules/main.wasm"},
        "hooks": [{"event": event, "module": "main", "export": export} for event, export in HOOKS],
    }


def sbom() -> dict:
    names = [
        "serde", "serde_json", "itoa", "ryu", "memchr", "hashbrown", "smallvec", "once_cell", "cfg-if",
        "bitflags", "log", "arrayvec", "libm", "heapless", "hash32", "byteorder", "nom", "dlmalloc",
        "wee_alloc", "plaza-pdk",
    ]  # fmt: skip
    rng = random.Random(20)
    components = []
    for i, name in enumerate(names):
        version = f"{rng.randrange(0, 3)}.{rng.randrange(0, 30)}.{rng.randrange(0, 20)}"
        components.append(
            {
                "type": "library",
                "name": name,
                "version": version,
                "purl": f"pkg:cargo/{name}@{version}",
                "licenses": [{"license": {"id": LICENSES[i % len(LICENSES)]}}],
            }
        )
    return {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": components}


# --- the bench ---------------------------------------------------------------------------------
class Publisher:
    """A publisher org with a registered key and the extension ``<slug>.order-insights``."""

    def __init__(self):
        import base64

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from apps.accounts.models import User
        from apps.events.catalog_sync import sync_catalog
        from apps.extensions import services
        from apps.orgs.policy import Principal
        from apps.orgs.services.organisations import org_create

        sync_catalog()
        self.services = services
        self.robot = Principal(kind="user", user=None, mfa_verified=True)
        user = User.objects.create_user("bench@example.com", None)
        self.org = org_create(user=user, name="Bench Co")
        self.private = Ed25519PrivateKey.generate()
        public = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key = services.signing_key_register(
            principal=self.robot, org=self.org, name="bench", public_key=base64.b64encode(public).decode()
        )
        self.extension = services.extension_create(
            principal=self.robot, org=self.org, name="order-insights", display_name="Order Insights"
        )
        self.versions = 0

    def upload(self, module: bytes):
        from apps.extensions.packages import build_package
        from apps.extensions.signing import sign_package

        self.versions += 1
        doc = manifest(self.extension.key, f"1.0.{self.versions}")
        data = build_package({"modules/main.wasm": module}, manifest=doc, sbom=sbom())
        return self.services.version_upload(
            principal=self.robot,
            extension=self.extension,
            data=data,
            signature=sign_package(self.private, hashlib.sha256(data).hexdigest()),
            key_id=self.key.pk,
        )

    def certify(self, version) -> tuple[float, float, object]:
        """Submit ``version``; wait for its run to finish. Returns (seconds from submit to finished,
        seconds from submit to the first check starting, the run)."""
        from apps.certification.models import CertificationRun
        from apps.certification.signals import run_finished

        done = threading.Event()
        finished_at: list[float] = []

        def on_finished(sender, run, **kwargs):
            if run.version_id == version.pk:
                finished_at.append(time.perf_counter())
                done.set()

        run_finished.connect(on_finished, weak=False)
        try:
            wall0, t0 = time.time(), time.perf_counter()
            self.services.version_submit(principal=self.robot, version=version)
            if not done.wait(120):
                raise RuntimeError(f"the run of {version.pk} did not finish within 120 s")
        finally:
            run_finished.disconnect(on_finished)
        run = CertificationRun.objects.get(version=version)
        return finished_at[0] - t0, run.started_at.timestamp() - wall0, run


def floor(module: bytes, examples: dict[str, dict], scopes: list[str]) -> tuple[float, float]:
    """The baseline: compile ``module``, then call each hook once on an example of its event.
    Returns (compile seconds, calls seconds)."""
    from apps.runtime.engine import runtime
    from apps.runtime.runner import invoke

    t0 = time.perf_counter()
    sha256 = runtime().precompile(module)
    t1 = time.perf_counter()
    for event, export in HOOKS:
        result = invoke(module, export, examples[event], scopes=scopes, sha256=sha256)
        if not result.ok:
            raise RuntimeError(f"{export} did not end ok: {result.outcome} {result.detail}")
    return t1 - t0, time.perf_counter() - t1


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold runs, warm runs and baselines each")
    parser.add_argument("--functions", type=int, default=6000, help="functions in the module")
    parser.add_argument("--data-kib", type=int, default=368, help="KiB of data segment in the module")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    data_dir = tempfile.mkdtemp(prefix="plaza-certification-bench-")
    _setup_django(data_dir)
    import shutil

    import wasmtime
    from django.core.management import call_command

    from apps.certification.checks import registered_checks
    from apps.events.models import EventSchema

    try:
        call_command("migrate", verbosity=0)
        publisher = Publisher()
        wasm = bytes(wasmtime.wat2wasm(module_wat(functions=args.functions, data_kib=args.data_kib)))
        examples = {
            name: examples[0]
            for name, examples in EventSchema.objects.filter(event_type__name__in={e for e, _ in HOOKS})
            .order_by("event_type__name", "version")
            .values_list("event_type__name", "examples")
            if examples
        }
        scopes = manifest("x.y", "1.0.0")["scopes"]
        checks = [check.id for check in registered_checks()]

        print("Plaza certification benchmark (embedded defaults: SQLite, in-process executor thread)")
        print(
            f"  python {platform.python_version()}, wasmtime-py {importlib.metadata.version('wasmtime')}, "
            f"{platform.machine()}, {os.cpu_count()} CPUs"
        )
        print(
            f"  package: module {len(wasm):,} bytes ({len(wasm) / 1048576:.2f} MiB; {args.functions:,} functions, "
            f"{args.data_kib} KiB data), {len(HOOKS)} hooks on {len(examples)} event types, "
            f"{len(sbom()['components'])} SBOM components"
        )
        print(f"  checks ({len(checks)}): {', '.join(checks)}")

        salt = iter(range(1, 10_000))
        cold, warm, floors = [], [], []
        per_check: dict[str, dict[str, list[int]]] = {"cold": {}, "warm": {}}
        first_check: dict[str, list[float]] = {"cold": [], "warm": []}
        failures = []
        warm_module = None
        for i in range(args.runs):
            # cold: a module with a digest nobody compiled; then warm: the same module again
            module = with_salt(wasm, next(salt))
            for kind, bucket in (("cold", cold), ("warm", warm)):
                seconds, before_first, run = publisher.certify(publisher.upload(module))
                bucket.append(seconds)
                first_check[kind].append(before_first)
                for row in run.checks.all():
                    per_check[kind].setdefault(row.check_id, []).append(row.duration_ms or 0)
                if run.status != "passed":
                    bad = {c.check_id: (c.status, c.summary) for c in run.checks.all() if c.status != "passed"}
                    failures.append(f"{kind} run {i + 1} ended {run.status}: {bad}")
            warm_module = module
            floors.append(floor(with_salt(wasm, next(salt)), examples, scopes))
        warm_floor = floor(warm_module, examples, scopes)[1]

        print(f"\nPer-check durations, median of {args.runs} (ms, as recorded on the check rows)")
        print(f"  {'check':12}{'cold':>8}{'warm':>8}")
        for check_id in per_check["cold"]:
            c = statistics.median(per_check["cold"][check_id])
            w = statistics.median(per_check["warm"].get(check_id, [0]))
            print(f"  {check_id:12}{c:8.0f}{w:8.0f}")
        gap_cold, gap_warm = (statistics.median(first_check[k]) * 1000 for k in ("cold", "warm"))
        print(f"  {'(before)':12}{gap_cold:8.0f}{gap_warm:8.0f}   submit until the first check starts: the queue and")
        print(f"  {'':28}the runtime.precompile_version task the submit queued first,")
        print(f"  {'':28}which compiles the module (so the module check finds it cached)")

        print("\nRun wall time, version_submit -> run finished")
        print(f"  cold (module not compiled yet)   {' '.join(_ms(s) for s in cold)}   (the first in a fresh process)")
        print(f"  warm (module cache hit)          {' '.join(_ms(s) for s in warm)}")
        compile_s = statistics.median(f[0] for f in floors)
        calls_s = statistics.median(f[1] for f in floors)
        cold_floor = compile_s + calls_s
        print("\nBaseline: compile + call each hook once with apps.runtime.runner.invoke (the floor)")
        print(f"  cold: compile {_ms(compile_s)} + 5 calls {_ms(calls_s)} = {_ms(cold_floor)}")
        print(f"  warm: 5 calls {_ms(warm_floor)}")
        cold_med, warm_med = statistics.median(cold), statistics.median(warm)
        print(
            f"  ratio run / floor: cold {cold_med / cold_floor:.1f}x, warm {warm_med / warm_floor:.0f}x "
            f"(warm overhead {(warm_med - warm_floor) * 1000:.0f} ms: database, package reads, checks)"
        )

        worst = max(cold)
        targets = [
            (f"slowest cold run = {worst:.2f} s", f"< {TARGET_SECONDS:g} s", worst < TARGET_SECONDS),
            ("every run passed", "all passed", not failures),
        ]
        print("\nTargets")
        for label, target, passed in targets:
            print(f"  {'PASS' if passed else 'FAIL'}  {label}   (target {target})")
        for failure in failures:
            print(f"  {failure}")
        print(f"\nTotal {time.perf_counter() - started:.1f} s")
        return 0 if all(passed for _, _, passed in targets) else 1
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
