"""A small, strict reader of WebAssembly binaries, for certification.

It reads what a check judges (types, imports, functions, memories, exports, the start function)
and skips the rest by size. It trusts nothing: every length and count is checked against the bytes
that remain before anything is allocated or looped over, so hostile bytes end in one
:class:`WasmFormatError` and never in another exception, a long loop or a large allocation. It is no
validator: wasmtime compiles the module too; this reader only has to be right about what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAGIC = b"\0asm"
VERSION = b"\x01\0\0\0"
PAGE = 65536

# Non-custom sections must come in this order, each at most once (id 13, tags, sits before globals).
_SECTION_ORDER = (1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11)
_SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global", 7: "export",
    8: "start", 9: "element", 10: "code", 11: "data", 12: "data count", 13: "tag",
}  # fmt: skip
KINDS = ("func", "table", "memory", "global", "tag")
_VALUE_TYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
# Abstract heap types, as the one-byte shorthand of a nullable reference (GC, exceptions).
_HEAP_TYPES = {
    0x74: "noexn", 0x73: "nofunc", 0x72: "noextern", 0x71: "none", 0x70: "func", 0x6F: "extern",
    0x6E: "any", 0x6D: "eq", 0x6C: "i31", 0x6B: "struct", 0x6A: "array", 0x69: "exn",
}  # fmt: skip


class WasmFormatError(ValueError):
    """The bytes are not a WebAssembly module this reader understands (the message says where)."""


@dataclass(frozen=True)
class FuncType:
    params: tuple[str, ...]
    results: tuple[str, ...]

    def __str__(self) -> str:
        return f"({', '.join(self.params)}) -> {', '.join(self.results) or '()'}"


@dataclass(frozen=True)
class Limits:
    """A memory's or table's limits; for memories, ``minimum`` and ``maximum`` are in 64 KiB pages."""

    minimum: int
    maximum: int | None
    shared: bool = False
    is64: bool = False


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: str  # one of KINDS
    func_type: FuncType | None = None  # for functions (None if the type is not a function type)
    limits: Limits | None = None  # for memories and tables


@dataclass(frozen=True)
class Export:
    name: str
    kind: str  # one of KINDS
    index: int
    func_type: FuncType | None = None  # for functions


@dataclass
class WasmModule:
    types: list[FuncType | None] = field(default_factory=list)  # None: a struct or array type (GC)
    imports: list[Import] = field(default_factory=list)
    functions: list[int] = field(default_factory=list)  # type index of each function the module defines
    memories: list[Limits] = field(default_factory=list)  # the memories the module defines
    exports: list[Export] = field(default_factory=list)
    start: int | None = None  # the start function's index, when there is a start section
    sections: list[tuple[str, int]] = field(default_factory=list)  # (name, size) in file order

    def export(self, name: str) -> Export | None:
        return next((e for e in self.exports if e.name == name), None)


class _Reader:
    def __init__(self, data: bytes, start: int = 0, end: int | None = None):
        self.data = data
        self.pos = start
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def fail(self, message: str) -> WasmFormatError:
        return WasmFormatError(f"{message} (at byte {self.pos})")

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < self.end else -1

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of data")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise self.fail(f"{n} bytes announced, {self.remaining} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unsigned(self, bits: int = 32) -> int:
        result = shift = 0
        for _ in range((bits + 6) // 7):
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if result >> bits:  # the last byte's unused bits must be zero
                    raise self.fail(f"integer too large for u{bits}")
                return result
        raise self.fail(f"LEB128 integer longer than u{bits} allows")

    def signed33(self) -> int:
        result = shift = 0
        for _ in range(5):
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    result -= 1 << shift
                if not -(1 << 32) <= result < (1 << 32):
                    raise self.fail("integer too large for s33")
                return result
        raise self.fail("LEB128 integer longer than s33 allows")

    def count(self, what: str, min_size: int = 1) -> int:
        """A vector's length, refused when its entries could not fit in the bytes left."""
        n = self.unsigned()
        if n * min_size > self.remaining:
            raise self.fail(f"{n} {what} announced, but only {self.remaining} bytes left")
        return n

    def name(self) -> str:
        raw = self.take(self.unsigned())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a name is not valid UTF-8") from None


def _heap_type(r: _Reader) -> str:
    value = r.signed33()
    if value >= 0:
        return f"${value}"
    code = value & 0x7F
    if value >= -64 and code in _HEAP_TYPES:
        return _HEAP_TYPES[code]
    raise r.fail(f"unknown heap type {value}")


def _value_type(r: _Reader) -> str:
    code = r.byte()
    if code in _VALUE_TYPES:
        return _VALUE_TYPES[code]
    if code in _HEAP_TYPES:
        return f"{_HEAP_TYPES[code]}ref"
    if code in (0x63, 0x64):
        return f"(ref{' null' if code == 0x63 else ''} {_heap_type(r)})"
    raise r.fail(f"unknown value type 0x{code:02x}")


def _composite_type(r: _Reader) -> FuncType | None:
    form = r.byte()
    if form == 0x60:
        params = tuple(_value_type(r) for _ in range(r.count("parameters")))
        results = tuple(_value_type(r) for _ in range(r.count("results")))
        return FuncType(params, results)
    if form in (0x5F, 0x5E):  # struct, array: field types with mutability
        for _ in range(r.count("fields", 2) if form == 0x5F else 1):
            if r.peek() in (0x78, 0x77):  # packed i8, i16
                r.byte()
            else:
                _value_type(r)
            if r.byte() not in (0, 1):
                raise r.fail("bad field mutability")
        return None
    raise r.fail(f"unknown type form 0x{form:02x}")


def _types(r: _Reader, module: WasmModule) -> None:
    for _ in range(r.count("type entries")):
        group = r.count("types in a recursion group") if r.peek() == 0x4E and r.byte() else 1
        for _ in range(group):
            if r.peek() in (0x50, 0x4F):  # subtype with declared supertypes
                r.byte()
                for _ in range(r.count("supertypes")):
                    r.unsigned()
            module.types.append(_composite_type(r))


def _limits(r: _Reader, *, memory: bool) -> Limits:
    flags = r.byte()
    allowed = (0, 1, 2, 3, 4, 5, 6, 7) if memory else (0, 1, 4, 5)
    if flags not in allowed:
        raise r.fail(f"unsupported {'memory' if memory else 'table'} limits flags 0x{flags:02x}")
    bits = 64 if flags & 4 else 32
    minimum = r.unsigned(bits)
    maximum = r.unsigned(bits) if flags & 1 else None
    if maximum is not None and maximum < minimum:
        raise r.fail("limits maximum below minimum")
    if flags & 2 and maximum is None:
        raise r.fail("a shared memory needs a maximum")
    return Limits(minimum, maximum, shared=bool(flags & 2), is64=bool(flags & 4))


def _type_index(r: _Reader, module: WasmModule) -> int:
    index = r.unsigned()
    if index >= len(module.types):
        raise r.fail(f"type index {index} out of range ({len(module.types)} types)")
    return index


def _imports(r: _Reader, module: WasmModule) -> None:
    for _ in range(r.count("imports", 4)):
        mod, name, kind = r.name(), r.name(), r.byte()
        if kind == 0:
            module.imports.append(Import(mod, name, "func", func_type=module.types[_type_index(r, module)]))
        elif kind == 1:
            _value_type(r)
            module.imports.append(Import(mod, name, "table", limits=_limits(r, memory=False)))
        elif kind == 2:
            module.imports.append(Import(mod, name, "memory", limits=_limits(r, memory=True)))
        elif kind == 3:
            _value_type(r)
            if r.byte() not in (0, 1):
                raise r.fail("bad global mutability")
            module.imports.append(Import(mod, name, "global"))
        elif kind == 4:
            if r.byte() != 0:
                raise r.fail("bad tag attribute")
            _type_index(r, module)
            module.imports.append(Import(mod, name, "tag"))
        else:
            raise r.fail(f"unknown import kind 0x{kind:02x}")


def _functions(r: _Reader, module: WasmModule) -> None:
    for _ in range(r.count("functions")):
        index = _type_index(r, module)
        if module.types[index] is None:
            raise r.fail(f"function declared with type {index}, which is not a function type")
        module.functions.append(index)


def func_types(module: WasmModule) -> list[FuncType | None]:
    """The type of every function in the function index space: imported ones first."""
    imported = [i.func_type for i in module.imports if i.kind == "func"]
    return imported + [module.types[t] for t in module.functions]


def _exports(r: _Reader, module: WasmModule) -> None:
    funcs = func_types(module)
    memory_count = sum(i.kind == "memory" for i in module.imports) + len(module.memories)
    seen: set[str] = set()
    for _ in range(r.count("exports", 3)):
        name, kind, index = r.name(), r.byte(), None
        if kind >= len(KINDS):
            raise r.fail(f"unknown export kind 0x{kind:02x}")
        index = r.unsigned()
        if name in seen:
            raise r.fail(f"export name {name[:80]!r} used twice")
        seen.add(name)
        bound = len(funcs) if kind == 0 else memory_count if kind == 2 else None
        if bound is not None and index >= bound:
            raise r.fail(f"export {name[:80]!r} names {KINDS[kind]} {index}, which does not exist")
        module.exports.append(Export(name, KINDS[kind], index, funcs[index] if kind == 0 else None))


def _start(r: _Reader, module: WasmModule) -> None:
    index = r.unsigned()
    if index >= len(func_types(module)):
        raise r.fail(f"start function {index} does not exist")
    module.start = index


def _memories(r: _Reader, module: WasmModule) -> None:
    module.memories.extend(_limits(r, memory=True) for _ in range(r.count("memories", 2)))


_PARSERS = {1: _types, 2: _imports, 3: _functions, 5: _memories, 7: _exports, 8: _start}


def parse(data: bytes) -> WasmModule:
    """Read ``data`` as a WebAssembly binary module; WasmFormatError when it is not one."""
    data = bytes(data)
    if data[:4] != MAGIC:
        raise WasmFormatError("not a WebAssembly binary (it must start with \\0asm)")
    if data[4:8] != VERSION:
        raise WasmFormatError("not WebAssembly binary format version 1 (a component or another layer?)")
    r = _Reader(data, 8)
    module = WasmModule()
    last = -1
    while r.remaining:
        section_id = r.byte()
        size = r.unsigned()
        if size > r.remaining:
            raise r.fail(f"section {section_id} of {size} bytes runs past the end ({r.remaining} left)")
        if section_id not in _SECTION_NAMES:
            raise r.fail(f"unknown section id {section_id}")
        module.sections.append((_SECTION_NAMES[section_id], size))
        end = r.pos + size
        if section_id != 0:
            rank = _SECTION_ORDER.index(section_id)
            if rank <= last:
                raise r.fail(f"the {_SECTION_NAMES[section_id]} section is repeated or out of order")
            last = rank
        if section_id == 0:
            _Reader(data, r.pos, end).name()  # a custom section starts with its name
        elif section_id in _PARSERS:
            body = _Reader(data, r.pos, end)
            _PARSERS[section_id](body, module)
            if body.remaining:
                raise body.fail(f"{body.remaining} unread bytes at the end of the {_SECTION_NAMES[section_id]} section")
        r.pos = end
    return module
