"""The ``module`` check: each WebAssembly module of the package, read and compiled before it ever runs.

It judges a module against the contract in docs/sandbox-abi.md, with the runtime's own tables: which
``plaza`` functions exist and their types (``host.FUNCTIONS``), which scope links each one
(``host.capabilities_of`` / ``host.functions_for``), the WASI functions the runner refuses, the memory
cap. An import whose scope the manifest does not declare is the finding that matters most: the
installation would be refused at call time, or worse, an admin would consent to less than the code
reaches for.
"""

from __future__ import annotations

import hashlib

import wasmtime
from django.conf import settings

from apps.certification import wasm
from apps.certification.checks import ERROR, INFO, Check, CheckContext, CheckOutcome, Finding
from apps.core.schema_refs import json_path
from apps.extensions import scopes as scope_vocab
from apps.runtime import host, runner
from apps.runtime.engine import runtime
from apps.runtime.limits import DEFAULT_LIMITS

PLAZA = "plaza"
HOOK_TYPE = wasm.FuncType((), ("i32",))
# Every capability there is: one example scope per family links every host function, so a link trial
# with it fails only on what no grant could fix (an unknown WASI function, a wrong WASI signature).
_ALL_CAPABILITIES = host.capabilities_of(f.example for f in scope_vocab.FAMILIES)


def _host_type(name: str) -> wasm.FuncType:
    params, results, _fn = host.FUNCTIONS[name]
    return wasm.FuncType(("i32",) * params, ("i32",) * results)


def _declared_scopes(manifest: dict) -> list[str]:
    scopes = manifest.get("scopes")
    return [s for s in scopes if isinstance(s, str)] if isinstance(scopes, list) else []


class ModuleLintCheck(Check):
    id = "module"
    version = 1
    title = "Module lint"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        manifest = ctx.manifest
        modules = manifest.get("modules") if isinstance(manifest.get("modules"), dict) else {}
        linked = frozenset(host.functions_for(host.capabilities_of(_declared_scopes(manifest))))
        findings: list[Finding] = []
        measurements: dict = {}
        readable: dict[str, wasm.WasmModule] = {}
        for name, path in modules.items():
            if not isinstance(path, str):
                continue  # the manifest check reports it
            lint = _ModuleLint(ctx, name, path, linked)
            parsed = lint.run()
            findings += lint.findings
            if lint.measurement:
                measurements[name] = lint.measurement
            if parsed is not None:
                readable[name] = parsed
        findings += _entry_point_findings(manifest, modules, readable)
        errors = sum(f.severity == ERROR for f in findings)
        if not modules:
            summary = "The package declares no modules."
        elif not findings:
            summary = f"{len(modules)} module(s) checked: imports, exports and memory follow the sandbox ABI."
        else:
            summary = f"{len(modules)} module(s) checked: {len(findings)} finding(s), {errors} of them errors."
        return CheckOutcome(summary, findings, measurements)


MAX_FINDINGS_PER_RULE = 20
MAX_IMPORTS_SHOWN = 100


class _ModuleLint:
    """The findings and measurements of one module."""

    def __init__(self, ctx: CheckContext, name: str, path: str, linked: frozenset[str]):
        self.ctx, self.name, self.path, self.linked = ctx, name, path, linked
        self.findings: list[Finding] = []
        self.counts: dict[str, int] = {}
        self.measurement: dict = {}

    def add(self, rule: str, message: str, location: str, hint: str, severity: str = ERROR) -> None:
        # A module with 300 000 bad imports must not become 300 000 findings: the first few of each
        # rule say enough, and the count says the rest.
        self.counts[rule] = self.counts.get(rule, 0) + 1
        if self.counts[rule] <= MAX_FINDINGS_PER_RULE:
            self.findings.append(Finding(f"module.{rule}", severity, message, location, hint))
        elif self.counts[rule] == MAX_FINDINGS_PER_RULE + 1:
            self.findings.append(
                Finding(f"module.{rule}", severity, f"…and more like this in {self.path}.", self.path, hint)
            )

    def run(self) -> wasm.WasmModule | None:
        data = self.ctx.module_bytes(self.name)
        where = json_path([self.name], root="$.modules")
        if data is None:
            self.add(
                "missing",
                f"Module '{self.name}' is declared as {self.path}, but the package has no such file.",
                where,
                "Add the .wasm file to the package at that path, or correct the path in 'modules'.",
            )
            return None
        self.measurement = {"path": self.path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        limit = settings.PLAZA_MODULE_MAX_BYTES
        if len(data) > limit:
            self.add(
                "too_large",
                f"{self.path} is {len(data)} bytes; modules may be at most {limit} bytes.",
                self.path,
                "Build with optimisation for size (e.g. -Oz, wasm-opt) and strip debug sections.",
            )
            return None  # not compiled either: it could never be deployed
        try:
            module = wasm.parse(data)
        except wasm.WasmFormatError as exc:
            self.add(
                "invalid",
                f"{self.path} is not a WebAssembly module Plaza can read: {exc}.",
                self.path,
                "Upload the .wasm binary your toolchain produced for wasm32 (not WAT text or a component).",
            )
            return None
        compiled = self._compile(data)
        self.measurement.update(
            imports=[f"{i.module}.{i.name}" for i in module.imports[:MAX_IMPORTS_SHOWN]],
            import_count=len(module.imports),
            exports=len(module.exports),
            **_memory_pages(module),
        )
        before = len(self.findings)
        for imp in module.imports:
            self._check_import(imp)
        if compiled is not None and len(self.findings) == before:
            self._link_trial(compiled)
        self._check_memory(module)
        if module.start is not None:
            # The start function runs inside instantiation, which the runner does with the call's
            # fuel, deadline and memory cap already set: it is bounded and counted, but it runs on
            # every call (each call gets a fresh instance), so the publisher should know.
            self.add(
                "start_section",
                f"{self.path} has a start function: it runs at the beginning of every call and counts "
                "against that call's fuel, time and memory.",
                f"{self.path}: start section",
                "Nothing to do if it is cheap (AssemblyScript emits one to initialise globals); keep "
                "expensive set-up out of it.",
                severity=INFO,
            )
        return module

    def _compile(self, data: bytes) -> tuple[str, wasmtime.Module] | None:
        try:
            sha256 = runtime().precompile(data)
            return sha256, runtime().module(data, sha256)
        except wasmtime.WasmtimeError as exc:
            self.add(
                "invalid",
                f"{self.path} does not compile: {runner._cause(exc)}",
                self.path,
                "Fix the module so that it validates (wasm-tools validate shows the same error).",
            )
            return None

    def _link_trial(self, compiled: tuple[str, wasmtime.Module]) -> None:
        sha256, module = compiled
        try:
            runtime().instance_pre(sha256, module, _ALL_CAPABILITIES, runner._linker)
        except wasmtime.WasmtimeError as exc:
            self.add(
                "unknown_import",
                f"{self.path} imports something the sandbox cannot link: {runner._cause(exc, whole=True)}",
                f"{self.path}: imports",
                "Import only the plaza functions and the WASI preview 1 functions listed in docs/sandbox-abi.md.",
            )

    def _check_import(self, imp: wasm.Import) -> None:
        where = f"{self.path}: import {imp.module}.{imp.name}"
        if imp.kind != "func":
            self.add(
                "unknown_import",
                f"{self.path} imports a {imp.kind} ({imp.module}.{imp.name}); Plaza provides functions only.",
                where,
                "Define and export your own memory as 'memory'; define tables and globals in the module."
                if imp.kind == "memory"
                else "Define it inside the module instead of importing it.",
            )
        elif imp.module == runner.WASI:
            if imp.name in runner.WASI_REFUSED:
                self.add(
                    "unknown_import",
                    f"{self.path} imports {imp.module}.{imp.name}, which the sandbox refuses "
                    "(it could block past the deadline or reach the network).",
                    where,
                    "Remove the code that sleeps, polls or uses sockets; use plaza.http_fetch for HTTP.",
                )
        elif imp.module != PLAZA or imp.name not in host.FUNCTIONS:
            known = ", ".join(host.FUNCTIONS)
            self.add(
                "unknown_import",
                f"{self.path} imports {imp.module}.{imp.name}, which Plaza does not provide.",
                where,
                f"Import only from 'plaza' ({known}) or '{runner.WASI}'; "
                "check your toolchain is not linking a JavaScript or Emscripten runtime.",
            )
        else:
            self._check_plaza_import(imp, where)

    def _check_plaza_import(self, imp: wasm.Import, where: str) -> None:
        expected = _host_type(imp.name)
        if imp.func_type != expected:
            self.add(
                "import_signature",
                f"{self.path} imports plaza.{imp.name} as {imp.func_type or 'a non-function type'}; "
                f"its type is {expected}.",
                where,
                f"Declare the import as {expected} (every argument and result is an i32; see docs/sandbox-abi.md).",
            )
        if imp.name not in self.linked:
            scope = host.CAPABILITY_OF[imp.name]
            self.add(
                "undeclared_import",
                f"{self.path} imports plaza.{imp.name}, which needs the scope '{scope}', "
                "and the manifest's 'scopes' do not declare it.",
                where,
                f"Add the scope '{scope}' to 'scopes' in extension.json (admins will be asked to consent to it), "
                f"or remove the code that calls {imp.name}.",
            )

    def _check_memory(self, module: wasm.WasmModule) -> None:
        cap = DEFAULT_LIMITS.memory_bytes
        for index, limits in enumerate(module.memories):
            where = f"{self.path}: memory {index}"
            if limits.minimum * wasm.PAGE > cap:
                self.add(
                    "memory_too_large",
                    f"{self.path} starts with {limits.minimum} pages ({limits.minimum * wasm.PAGE} bytes) of memory; "
                    f"the sandbox allows {cap} bytes, so the module could never be instantiated.",
                    where,
                    f"Lower the initial memory (at most {cap // wasm.PAGE} pages), e.g. with the linker's "
                    "--initial-memory option, and grow it when needed.",
                )
            if limits.shared or limits.is64:
                kind = "shared" if limits.shared else "64-bit"
                self.add(
                    "memory_unsupported",
                    f"{self.path} defines a {kind} memory; the sandbox passes 32-bit pointers into one "
                    "unshared memory per call.",
                    where,
                    "Build for wasm32 without threads (no shared memory, no memory64).",
                )
        pointer_imports = sorted(
            i.name
            for i in module.imports
            if i.kind == "func" and i.module == PLAZA and i.name in host.FUNCTIONS and host.FUNCTIONS[i.name][0]
        )
        exported = module.export("memory")
        if pointer_imports and (exported is None or exported.kind != "memory"):
            self.add(
                "memory_not_exported",
                f"{self.path} imports {', '.join(pointer_imports)}, which read and write the module's memory "
                "through the export 'memory'; the module exports no memory by that name, so every such call "
                "would fail with E_BOUNDS.",
                f"{self.path}: exports",
                "Export the module's memory as 'memory' (most toolchains do by default; check --no-export-memory).",
            )


def _memory_pages(module: wasm.WasmModule) -> dict:
    memories = [i.limits for i in module.imports if i.kind == "memory" and i.limits] + module.memories
    first = memories[0] if memories else None
    return {
        "memory_min_pages": first.minimum if first else None,
        "memory_max_pages": first.maximum if first else None,
    }


def _entry_points(manifest: dict):
    """(JSON path of the export field, module name, export name) of every hook and tool in the sandbox."""
    hooks = manifest.get("hooks")
    for i, hook in enumerate(hooks if isinstance(hooks, list) else []):
        if isinstance(hook, dict) and isinstance(hook.get("module"), str) and isinstance(hook.get("export"), str):
            yield f"$.hooks[{i}].export", hook["module"], hook["export"]
    packs = manifest.get("tool_packs")
    for p, pack in enumerate(packs if isinstance(packs, list) else []):
        tools = pack.get("tools") if isinstance(pack, dict) else None
        for t, tool in enumerate(tools if isinstance(tools, list) else []):
            if isinstance(tool, dict) and isinstance(tool.get("module"), str) and isinstance(tool.get("export"), str):
                yield f"$.tool_packs[{p}].tools[{t}].export", tool["module"], tool["export"]


def _entry_point_findings(manifest: dict, modules: dict, readable: dict[str, wasm.WasmModule]) -> list[Finding]:
    findings = []
    for where, module_name, export_name in _entry_points(manifest):
        module = readable.get(module_name)
        if module is None:
            continue  # undeclared (the manifest check), missing or unreadable (reported above)
        path = modules[module_name]
        export = module.export(export_name)
        if export is None or export.kind != "func":
            what = "exports no function" if export is None else f"exports a {export.kind}, not a function,"
            findings.append(
                Finding(
                    "module.missing_export",
                    ERROR,
                    f"{path} {what} named '{export_name}', which the manifest calls at {where}.",
                    where,
                    f"Export a function '{export_name}' of type {HOOK_TYPE} from module '{module_name}' "
                    '(e.g. __attribute__((export_name(...))) or #[no_mangle] pub extern "C"), or fix the name.',
                )
            )
        elif export.func_type != HOOK_TYPE:
            findings.append(
                Finding(
                    "module.export_signature",
                    ERROR,
                    f"{path} exports '{export_name}' as {export.func_type}; "
                    f"Plaza calls hooks and tools as {HOOK_TYPE}.",
                    where,
                    f"Give '{export_name}' no parameters and one i32 result (0 for success); read the input with "
                    "input_len and input_read.",
                )
            )
    return findings
