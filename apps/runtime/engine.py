"""The one wasmtime engine of a process, its epoch ticker, and the compiled-module cache.

Compiling is the slow part (milliseconds); instantiating a pre-linked module is microseconds.
Modules are compiled once per digest and wasmtime version, kept in memory, and serialised to
disk so a new process deserialises instead of compiling. ``InstancePre`` objects (module +
linker resolved once) are cached per digest and granted capability set, so a call is only
"new store, instantiate, call"."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import wasmtime
from django.conf import settings

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.002  # epoch granularity: deadlines are accurate to about this
MAX_WASM_STACK = 512 * 1024
MEMORY_CACHE_SIZE = 256


def _config() -> wasmtime.Config:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.max_wasm_stack = MAX_WASM_STACK
    config.cranelift_opt_level = "speed"
    return config


class Runtime:
    """Engine + module cache + epoch ticker. One per process (``runtime()``)."""

    def __init__(self, cache_dir: Path | None):
        self.engine = wasmtime.Engine(_config())
        self.version = importlib.metadata.version("wasmtime")
        self.cache_dir = Path(cache_dir) / f"wasmtime-{self.version}" if cache_dir else None
        self._modules: OrderedDict[str, wasmtime.Module] = OrderedDict()
        self._pre: OrderedDict[tuple, wasmtime.InstancePre] = OrderedDict()
        self._lock = threading.Lock()
        self._ticker = threading.Thread(target=self._tick, name="plaza-wasm-epoch", daemon=True)
        self._ticker.start()
        self.compiles = 0  # for tests and the benchmark: compiling on a hot path is a bug

    def _tick(self) -> None:
        while True:
            time.sleep(TICK_SECONDS)
            self.engine.increment_epoch()

    def deadline_ticks(self, wall_ms: int) -> int:
        return max(1, int(wall_ms / 1000 / TICK_SECONDS) + 1)

    # --- modules --------------------------------------------------------------------------------
    def module(self, data: bytes, sha256: str | None = None) -> wasmtime.Module:
        """The compiled module for ``data`` (memory, then disk, then compile — and store)."""
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        with self._lock:
            found = self._modules.get(sha256)
            if found is not None:
                self._modules.move_to_end(sha256)
                return found
        module = self._from_disk(sha256) or self._compile(data, sha256)
        with self._lock:
            self._modules[sha256] = module
            while len(self._modules) > MEMORY_CACHE_SIZE:
                self._modules.popitem(last=False)
        return module

    def _path(self, sha256: str) -> Path | None:
        return self.cache_dir / f"{sha256}.cwasm" if self.cache_dir else None

    def _from_disk(self, sha256: str) -> wasmtime.Module | None:
        path = self._path(sha256)
        if path is None or not path.exists():
            return None
        try:
            return wasmtime.Module.deserialize_file(self.engine, str(path))
        except wasmtime.WasmtimeError:
            logger.warning("discarding an unreadable compiled module %s", path)
            path.unlink(missing_ok=True)
            return None

    def _compile(self, data: bytes, sha256: str) -> wasmtime.Module:
        module = wasmtime.Module(self.engine, data)  # raises WasmtimeError on an invalid module
        self.compiles += 1
        path = self._path(sha256)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(module.serialize())
            os.replace(tmp, path)  # atomic: a concurrent reader sees all or nothing
        return module

    def precompile(self, data: bytes) -> str:
        """Compile (and cache) ahead of any call — at upload or certification time. Returns the digest."""
        sha256 = hashlib.sha256(data).hexdigest()
        self.module(data, sha256)
        return sha256

    # --- pre-linked instances -------------------------------------------------------------------
    def instance_pre(self, sha256: str, module: wasmtime.Module, capabilities: frozenset[str], linker_factory):
        key = (sha256, capabilities)
        with self._lock:
            found = self._pre.get(key)
            if found is not None:
                self._pre.move_to_end(key)
                return found
        pre = linker_factory(capabilities).instantiate_pre(module)
        with self._lock:
            self._pre[key] = pre
            while len(self._pre) > MEMORY_CACHE_SIZE * 4:
                self._pre.popitem(last=False)
        return pre


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = Runtime(getattr(settings, "PLAZA_MODULE_CACHE_DIR", None))
    return _runtime
