"""Benchmark of the sandbox runtime (apps/runtime) against a bare wasmtime-py baseline.

    .venv/bin/python bench/runtime_bench.py [--calls N] [--samples N] [--memory-calls N]

One process, one thread. It measures, for a trivial hook (reads its input, writes it back as its
output, returns 0) with the module cache warm:

- latency (p50/p99) through the full runner, ``apps.runtime.runner.invoke(..., sha256=...)``;
- latency of the same module through bare wasmtime-py, measured in the same run and interleaved
  call by call with the runner: a pre-linked ``InstancePre`` with trivial Python host functions,
  a fresh ``Store`` with fuel and an epoch deadline, instantiate + call;
- calls per second in a tight loop of ``--calls`` invokes;
- RSS (VmRSS) and ``len(gc.get_objects())`` before and after ``--memory-calls`` invokes.

Targets: runner p50 <= 2x bare p50; runner p99 < 1 ms; RSS growth < 10 MiB over the memory run.
Exits 1 when a target fails, so it can gate. Results: docs/sandbox.md#performance."""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RATIO_TARGET = 2.0
P99_TARGET_US = 1000.0
RSS_GROWTH_TARGET_MIB = 10.0

# The hook under test: input_len, input_read into offset 0, output_write of the same bytes, return
# its result (0). One page of memory holds any input up to the default 64 KiB limit.
ECHO_WAT = """
(module
  (import "plaza" "input_len" (func $input_len (result i32)))
  (import "plaza" "input_read" (func $input_read (param i32) (result i32)))
  (import "plaza" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $len i32)
    (local.set $len (call $input_len))
    (drop (call $input_read (i32.const 0)))
    (call $output_write (i32.const 0) (local.get $len))))
"""
EXPORT = "run"
INPUT = {"order": {"id": "ord_01J9Z6Y1", "total": 1999, "currency": "EUR", "tags": ["new"]}}


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PLAZA_ENV", "test")  # module cache in a scratch directory, removed at exit
    import django

    django.setup()


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _pct(ordered: list[int], q: float) -> float:
    """Nearest-rank percentile of sorted nanosecond samples, in microseconds."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1000


class Bare:
    """The baseline: what any wasmtime-py embedding pays per call, with nothing of Plaza's."""

    def __init__(self, engine, module, data: bytes, fuel: int, deadline_ticks: int):
        import wasmtime

        self.engine, self.data, self.fuel, self.ticks = engine, data, fuel, deadline_ticks
        self.memory = None
        self.output = None
        i32 = wasmtime.ValType.i32()
        linker = wasmtime.Linker(engine)
        linker.define_func("plaza", "input_len", wasmtime.FuncType([], [i32]), self.input_len, access_caller=True)
        linker.define_func("plaza", "input_read", wasmtime.FuncType([i32], [i32]), self.input_read, access_caller=True)
        linker.define_func(
            "plaza", "output_write", wasmtime.FuncType([i32, i32], [i32]), self.output_write, access_caller=True
        )
        self.pre = linker.instantiate_pre(module)
        self.Store = wasmtime.Store

    def input_len(self, caller) -> int:
        return len(self.data)

    def input_read(self, caller, ptr: int) -> int:
        self.memory.write(caller, self.data, ptr)
        return len(self.data)

    def output_write(self, caller, ptr: int, length: int) -> int:
        self.output = bytes(self.memory.read(caller, ptr, ptr + length))
        return 0

    def call(self) -> int:
        store = self.Store(self.engine)
        store.set_fuel(self.fuel)
        store.set_epoch_deadline(self.ticks)
        exports = self.pre.instantiate(store).exports(store)
        self.memory = exports["memory"]
        return exports[EXPORT](store)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="invokes in the calls-per-second loop")
    parser.add_argument("--samples", type=int, default=10_000, help="timed calls each for runner and bare")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed calls each before measuring")
    parser.add_argument("--memory-calls", type=int, default=100_000, help="invokes between the two RSS readings")
    args = parser.parse_args(argv)

    _setup_django()
    import importlib.metadata

    import wasmtime

    from apps.runtime import outcomes
    from apps.runtime.engine import runtime
    from apps.runtime.limits import DEFAULT_LIMITS
    from apps.runtime.runner import invoke

    clock = time.perf_counter_ns
    started = clock()
    rt = runtime()
    wasm = wasmtime.wat2wasm(ECHO_WAT)
    data = json.dumps(INPUT, separators=(",", ":")).encode()

    print("Plaza sandbox runtime benchmark")
    print(
        f"  python {platform.python_version()}, wasmtime-py {importlib.metadata.version('wasmtime')}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, pid {os.getpid()}"
    )
    print(f"  hook: echo of a {len(data)}-byte JSON input; default limits (fuel {DEFAULT_LIMITS.fuel:,})")

    # --- cold paths, once: compile + serialise, then what a new process pays to load from disk --
    t0 = clock()
    sha256 = rt.precompile(wasm)
    compile_us = (clock() - t0) / 1000
    cwasm = rt.cache_dir / f"{sha256}.cwasm" if rt.cache_dir else None
    load_us = None
    if cwasm is not None and cwasm.exists():
        t0 = clock()
        wasmtime.Module.deserialize_file(rt.engine, str(cwasm))
        load_us = (clock() - t0) / 1000
    t0 = clock()
    first = invoke(wasm, EXPORT, INPUT, sha256=sha256)
    first_us = (clock() - t0) / 1000
    if first.outcome != outcomes.OK or first.output != INPUT:
        print(f"FAIL: the hook did not echo its input: {first.outcome} {first.detail!r} {first.output!r}")
        return 1
    print("\nCold paths (once each)")
    print(f"  compile + serialise to disk cache   {compile_us:10.0f} us")
    if load_us is not None:
        print(f"  load from disk cache (deserialise)  {load_us:10.0f} us")
    print(f"  first invoke (pre-link, shape)      {first_us:10.0f} us")

    module = rt.module(wasm, sha256)
    bare = Bare(rt.engine, module, data, DEFAULT_LIMITS.fuel, rt.deadline_ticks(DEFAULT_LIMITS.wall_ms))
    if bare.call() != 0 or json.loads(bare.output) != INPUT:
        print("FAIL: the bare baseline did not echo its input")
        return 1

    # --- warm up, then latency: runner and bare interleaved call by call ------------------------
    for _ in range(args.warmup):
        invoke(wasm, EXPORT, INPUT, sha256=sha256)
        bare.call()
    compiles = rt.compiles
    runner_ns: list[int] = []
    bare_ns: list[int] = []
    not_ok = 0
    for _ in range(args.samples):
        t0 = clock()
        result = invoke(wasm, EXPORT, INPUT, sha256=sha256)
        t1 = clock()
        bare.call()
        t2 = clock()
        runner_ns.append(t1 - t0)
        bare_ns.append(t2 - t1)
        not_ok += result.outcome != outcomes.OK
    runner_ns.sort()
    bare_ns.sort()

    print(f"\nLatency, cache warm ({args.samples:,} calls each after {args.warmup:,} warm-up, interleaved)")
    print(f"  {'':28}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}{'max':>9}  (us)")
    for label, samples in (("runner invoke(sha256=...)", runner_ns), ("bare wasmtime-py", bare_ns)):
        row = "".join(f"{_pct(samples, q):9.1f}" for q in (0.5, 0.9, 0.99, 0.999, 1.0))
        print(f"  {label:28}{row}")
    runner_p50, bare_p50, runner_p99 = _pct(runner_ns, 0.5), _pct(bare_ns, 0.5), _pct(runner_ns, 0.99)
    ratio = runner_p50 / bare_p50
    print(f"  runner overhead over bare at p50: {runner_p50 - bare_p50:.1f} us")

    # --- throughput ------------------------------------------------------------------------------
    gc.collect()
    cpu0, t0 = time.process_time_ns(), clock()
    for _ in range(args.calls):
        invoke(wasm, EXPORT, INPUT, sha256=sha256)
    wall_runner, cpu_runner = clock() - t0, time.process_time_ns() - cpu0
    t0 = clock()
    for _ in range(args.calls):
        bare.call()
    wall_bare = clock() - t0
    print(f"\nThroughput, one thread ({args.calls:,} calls in a tight loop)")
    print(
        f"  runner  {args.calls / wall_runner * 1e9:10,.0f} calls/s"
        f"   ({wall_runner / 1e9:.2f} s wall, {cpu_runner / max(wall_runner, 1):.2f} CPU-seconds per second)"
    )
    print(f"  bare    {args.calls / wall_bare * 1e9:10,.0f} calls/s   ({wall_bare / 1e9:.2f} s wall)")

    # --- memory over many calls ---------------------------------------------------------------
    gc.collect()
    rss_before, objects_before = _rss_kib(), len(gc.get_objects())
    t0 = clock()
    for _ in range(args.memory_calls):
        not_ok += invoke(wasm, EXPORT, INPUT, sha256=sha256).outcome != outcomes.OK
    memory_s = (clock() - t0) / 1e9
    gc.collect()
    rss_after, objects_after = _rss_kib(), len(gc.get_objects())
    growth_mib = (rss_after - rss_before) / 1024
    print(f"\nWorker memory over {args.memory_calls:,} calls ({memory_s:.1f} s)")
    print(f"  VmRSS              {rss_before / 1024:8.1f} MiB -> {rss_after / 1024:8.1f} MiB   ({growth_mib:+.2f} MiB)")
    print(
        f"  gc.get_objects()   {objects_before:8,}     -> {objects_after:8,}       "
        f"({objects_after - objects_before:+,} objects)"
    )
    print(f"  compiles during the measured calls: {rt.compiles - compiles}; calls not ok: {not_ok}")

    # --- targets ---------------------------------------------------------------------------------
    checks = [
        (f"runner p50 / bare p50 = {runner_p50:.1f} / {bare_p50:.1f} us = {ratio:.2f}x", f"<= {RATIO_TARGET:g}x",
         ratio <= RATIO_TARGET),
        (f"runner p99 = {runner_p99:.1f} us", f"< {P99_TARGET_US:g} us", runner_p99 < P99_TARGET_US),
        (f"RSS growth over {args.memory_calls:,} calls = {growth_mib:+.2f} MiB", f"< {RSS_GROWTH_TARGET_MIB:g} MiB",
         growth_mib < RSS_GROWTH_TARGET_MIB),
        ("every measured call ended ok, none compiled", "0 failures",
         not_ok == 0 and rt.compiles == compiles),
    ]  # fmt: skip
    print("\nTargets")
    for label, target, passed in checks:
        print(f"  {'PASS' if passed else 'FAIL'}  {label}   (target {target})")
    print(f"\nTotal {(clock() - started) / 1e9:.1f} s")
    return 0 if all(passed for _, _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
