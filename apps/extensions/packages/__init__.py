"""Reading an uploaded extension package without trusting a byte of it.

A package is a zip: ``extension.json`` (the manifest) and ``sbom.cdx.json`` (a CycloneDX SBOM) at the root,
WebAssembly modules and assets anywhere. Every field of an upload is hostile until checked: names may climb
out of a directory or collide on a case-insensitive disk, entries may be links or encrypted, sizes may lie.

``zipfile`` only parses the central directory; entries are decompressed here, in memory and in chunks,
because zipfile trusts the *declared* size (and silently stops there) and, in 3.11, misses entries that
share their data (non-recursive zip bombs). Counting real bytes stops at the first one over a limit.

Other readers must see the same archive: they may stream it from its first byte (local headers, data descriptors)
or take an entry's name from an Info-ZIP Unicode Path extra field, which zipfile ignores. So every byte belongs to
an entry, the central directory or the end records, with nothing before, between or after them; local headers and
data descriptors agree with the central directory; and alternative names are refused.

Layout: ``archive`` (the zip's structure: end records, central directory, extra fields, local headers, data
descriptors, contiguity), ``sbom`` (the CycloneDX SBOM) and ``_refusals`` (the one error shape); reading, limits and
``build_package`` are here.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

from apps.extensions.packages._refusals import _entry_refusal, _refuse, _show
from apps.extensions.packages.archive import (
    _CENTRAL_SIGNATURE,
    _ENCRYPTION_FLAGS,
    _central_directory,
    _check_contiguous,
    _data_span,
    _extra_fields,
)
from apps.extensions.packages.sbom import MINIMAL_SBOM, SBOM_PATH, SbomComponent, _license, _validate_sbom

MANIFEST_PATH = "extension.json"

_CHUNK = 64 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_METHOD_NAMES = {1: "shrink", 6: "implode", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard", 95: "xz"}
# Whatever zipfile, zlib or our own slicing can raise on a malformed archive; all of it means "not a zip".
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, OSError, EOFError, ValueError)
_ZIP_ERRORS += (NotImplementedError, OverflowError, IndexError)


@dataclass(frozen=True)
class PackageLimits:
    max_bytes: int = 20 * 1024 * 1024  # the zip itself
    max_files: int = 256
    max_unpacked_bytes: int = 64 * 1024 * 1024
    max_file_bytes: int = 16 * 1024 * 1024
    max_ratio: int = 100  # uncompressed/compressed per entry and overall (zip bomb)
    max_path_length: int = 200
    max_manifest_bytes: int = 256 * 1024
    max_sbom_bytes: int = 2 * 1024 * 1024
    # Below this many uncompressed bytes the ratio is not judged: a 10 KB file of zeros compresses 500:1 and is
    # harmless, and refusing it would only confuse publishers. The other limits still bound everything.
    ratio_exempt_bytes: int = 1024 * 1024


DEFAULT_LIMITS = PackageLimits()


@dataclass(frozen=True)
class Package:
    digest: str  # hex SHA-256 of the zip bytes
    size: int
    manifest: dict
    sbom: dict
    files: dict[str, int]  # normalised path -> uncompressed size (directories excluded)
    _blobs: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def read(self, path: str) -> bytes:
        """The bytes of one file (KeyError if absent), kept from the checked read: never a second, unchecked one."""
        return self._blobs[unicodedata.normalize("NFC", path)]

    def components(self) -> list[SbomComponent]:
        """The SBOM's top-level components; the SBOM was validated on read, so the shapes are known."""
        result = []
        for item in self.sbom.get("components", []):
            licenses = tuple(map(_license, item.get("licenses", [])))
            result.append(SbomComponent(item["name"], item.get("version", ""), item.get("purl", ""), licenses))
        return result


def _fold(path: str) -> str:
    """The key under which two names would land on the same file of a case-insensitive, normalising disk."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", path).casefold())


def _check_path(name: str, limits: PackageLimits) -> str:
    """Refuse names that could escape or confuse an extractor; return the normalised path (NFC, no trailing /)."""
    body = name[:-1] if name.endswith("/") else name
    control = next((f"U+{ord(char):04X}" for char in name if unicodedata.category(char) in ("Cc", "Cf", "Cs")), "")
    segment = next((segment for segment in body.split("/") if segment in ("", ".", "..")), None)
    problems = [
        (
            not 0 < len(name) <= limits.max_path_length,
            f"it has {len(name)} characters, not 1 to {limits.max_path_length}",
        ),
        (control, f"it contains the control character {control}"),
        ("\\" in name, "it contains a backslash"),
        (name.startswith("/"), "it is absolute"),
        (":" in name, "it contains a colon (a drive letter or an alternate data stream)"),
        (segment is not None, f"it has a '{segment}' segment" if segment else "it has an empty segment"),
    ]
    reason = next((reason for bad, reason in problems if bad), None)
    if reason is None:
        return unicodedata.normalize("NFC", body)
    raise _refuse("package_path_unsafe", f"The package path {_show(name)} is unsafe: {reason}.")


def _check_entry(info: zipfile.ZipInfo, path: str, is_dir: bool) -> None:
    """Refuse entry kinds we will not handle: links and devices, encryption, exotic compression."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise _entry_refusal(path, "package_symlink", "is a symbolic link; links are not allowed")
    if kind not in ((0, stat.S_IFREG, stat.S_IFDIR) if is_dir else (0, stat.S_IFREG)):
        raise _entry_refusal(path, "package_symlink", f"is not a regular file (its file type is 0o{kind:o})")
    if info.flag_bits & _ENCRYPTION_FLAGS or info.compress_type == 99:  # 99: WinZip AES
        raise _entry_refusal(path, "package_encrypted", "is encrypted; packages must not be")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise _entry_refusal(path, "package_compression_unsupported", f"uses {method}, not stored or deflate")
    if is_dir and info.file_size:
        raise _entry_refusal(path, "package_not_zip", f"is a directory yet carries {info.file_size} bytes")


def _check_declared_sizes(entries: list[tuple[zipfile.ZipInfo, str, bool]], limits: PackageLimits) -> None:
    """The cheap first line against zip bombs: what the central directory admits to. The read re-checks."""
    total = compressed = 0
    for info, path, is_dir in entries:
        size, packed = (0, 0) if is_dir else (info.file_size, info.compress_size)
        if size > limits.max_file_bytes:
            detail = f"declares {size} bytes; the limit per file is {limits.max_file_bytes}"
        elif size > limits.ratio_exempt_bytes and size > limits.max_ratio * max(packed, 1):
            detail = f"expands from {packed} to {size} bytes, over the ratio limit of {limits.max_ratio}"
        else:
            total, compressed, detail = total + size, compressed + packed, None
        if detail:
            raise _entry_refusal(path, "package_zip_bomb", detail)
        if total > limits.max_unpacked_bytes:
            raise _refuse("package_zip_bomb", f"The package unpacks to over {limits.max_unpacked_bytes} bytes.")
    if total > limits.ratio_exempt_bytes and total > limits.max_ratio * max(compressed, 1):
        detail = f"expands from {compressed} to {total} bytes, over the ratio limit of {limits.max_ratio}"
        raise _refuse("package_zip_bomb", f"The package {detail}.")


def _inflate(raw: memoryview):
    """A deflate stream's output, at most _CHUNK at a time, so the caller can stop at any point."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    position = 0
    while not inflater.eof:
        if inflater.unconsumed_tail:
            pending = inflater.unconsumed_tail
        else:
            pending = raw[position : position + _CHUNK]
            position += len(pending)
        out = inflater.decompress(pending, _CHUNK)
        if not out and not pending:
            raise zipfile.BadZipFile("a deflate stream ends early")
        if out:
            yield out
    if inflater.unused_data or position < len(raw):
        raise zipfile.BadZipFile("bytes follow the end of a deflate stream")


def _read_entry(raw: memoryview, info: zipfile.ZipInfo, path: str, budget: int) -> bytes:
    """Decompress one entry, counting real bytes against its declared size and the budget the limits leave."""
    stored = (bytes(raw[position : position + _CHUNK]) for position in range(0, len(raw), _CHUNK))
    parts, count, crc = [], 0, 0
    for chunk in stored if info.compress_type == zipfile.ZIP_STORED else _inflate(raw):
        if (count := count + len(chunk)) > min(info.file_size, budget):
            limit = f"the {info.file_size} bytes it declares" if count > info.file_size else "the size limits"
            raise _entry_refusal(path, "package_zip_bomb", f"unpacks past {limit}")
        crc = zlib.crc32(chunk, crc)
        parts.append(chunk)
    if count != info.file_size:
        raise zipfile.BadZipFile(f"{_show(path)} holds {count} bytes but declares {info.file_size}")
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"{_show(path)} fails its CRC check")
    return b"".join(parts)


def _read_archive(data: bytes, limits: PackageLimits) -> dict[str, bytes]:
    """Every check on the archive itself, in order of cost; returns path -> bytes for the regular files."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos, comment = archive.infolist(), archive.comment
    if (count := len(infos)) > limits.max_files:
        raise _refuse("package_too_many_files", f"The package holds {count} entries; the limit is {limits.max_files}.")
    directory_start, extras = _central_directory(data, comment, count)
    entries, seen = [], {}
    for info, extra in zip(infos, extras, strict=True):
        path = _check_path(info.orig_filename, limits)
        _extra_fields(extra, path)
        is_dir = info.orig_filename.endswith("/")
        _check_entry(info, path, is_dir)
        key = _fold(path) + ("/" if is_dir else "")
        if key in seen:
            first, again = seen[key], info.orig_filename
            how = "twice" if first == again else f"as {_show(first)} and {_show(again)}"
            detail = "names must differ in more than case or Unicode form"
            raise _refuse("package_path_duplicate", f"The package holds the path {_show(path)} {how} ({detail}).")
        seen[key] = info.orig_filename
        entries.append((info, path, is_dir))
    files = {_fold(path) for _, path, is_dir in entries if not is_dir}
    for _, path, is_dir in entries:
        parts = path.split("/")
        for depth in range(1, len(parts) + is_dir):
            if _fold(parent := "/".join(parts[:depth])) in files:
                detail = f"is a file and also the directory of {_show(path)}"
                raise _refuse("package_path_duplicate", f"The package path {_show(parent)} {detail}.")
    _check_declared_sizes(entries, limits)
    spans = [_data_span(data, info, path) for info, path, _ in entries]
    # Entries sharing bytes let a small archive declare gigabytes without any one entry looking suspicious.
    paths = [path for _, path, _ in entries]
    ordered = sorted((span.start, span.data_end, span.end, path) for span, path in zip(spans, paths, strict=True))
    for (_, data_end, _, first), (start, _, _, second) in pairwise(ordered):
        if start < data_end:
            raise _refuse("package_zip_bomb", f"The package entries {_show(first)} and {_show(second)} overlap.")
    if problem := next((span.problem for span in spans if span.problem), ""):
        raise zipfile.BadZipFile(problem)
    _check_contiguous([(start, end, path) for start, _, end, path in ordered], directory_start)
    blobs: dict[str, bytes] = {}
    unpacked = 0
    for span, (info, path, is_dir) in zip(spans, entries, strict=True):
        if not is_dir:
            budget = min(limits.max_file_bytes, limits.max_unpacked_bytes - unpacked)
            raw = memoryview(data)[span.data_end - info.compress_size : span.data_end]
            blobs[path] = _read_entry(raw, info, path, budget)
            unpacked += len(blobs[path])
    return blobs


def _finite(text: str) -> float:
    """Also the hook for NaN and Infinity, which Python accepts and strict JSON does not."""
    if not math.isfinite(value := float(text)):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def _unique_keys(pairs: list) -> dict:
    if len(result := dict(pairs)) != len(pairs):
        key = next(key for key, n in Counter(key for key, _ in pairs).items() if n > 1)
        raise ValueError(f"the key {key[:80]!r} appears twice")
    return result


def _load_json_object(blob: bytes, path: str, code: str, max_bytes: int) -> dict:
    """Strict JSON: what another parser might read differently (NaN, duplicate keys, huge floats) is refused."""
    if len(blob) > max_bytes:
        raise _refuse(code, f"{path} is {len(blob)} bytes; the limit is {max_bytes}.")
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(code, f"{path} is not valid UTF-8 (at byte {exc.start}).")
    try:
        value = json.loads(text, parse_constant=_finite, parse_float=_finite, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise _refuse(code, f"{path} is nested too deeply.")
    except ValueError as exc:
        raise _refuse(code, f"{path} is not valid JSON: {exc}.")
    if not isinstance(value, dict):
        raise _refuse(code, f"{path} must hold a JSON object, not {type(value).__name__}.")
    return value


def read_package(data: bytes, limits: PackageLimits = DEFAULT_LIMITS) -> Package:
    """Check an uploaded package completely and return it parsed; ValidationFailed (param "package") otherwise."""
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise _refuse("package_too_large", f"The package is {len(data)} bytes; the limit is {limits.max_bytes}.")
    # zipfile builds an object per central directory record before we can count them; each record starts
    # with this signature, so counting it first bounds that work (generously, as file data may contain it).
    if data.count(_CENTRAL_SIGNATURE) > 4 * limits.max_files:
        raise _refuse("package_too_many_files", f"The package holds more than {limits.max_files} entries.")
    try:
        blobs = _read_archive(data, limits)
    except _ZIP_ERRORS as exc:
        detail = str(exc)[:200].rstrip(".") or type(exc).__name__
        raise _refuse("package_not_zip", f"The package is not a readable zip archive: {detail}.")
    if MANIFEST_PATH not in blobs:
        nested = next((path for path in blobs if path.endswith("/" + MANIFEST_PATH)), None)
        hint = f" (there is one at {_show(nested)}: zip the folder's contents, not the folder)" if nested else ""
        raise _refuse("package_manifest_missing", f"The package has no {MANIFEST_PATH} at its root{hint}.")
    manifest_bytes = blobs[MANIFEST_PATH]
    manifest = _load_json_object(manifest_bytes, MANIFEST_PATH, "package_manifest_invalid", limits.max_manifest_bytes)
    if SBOM_PATH not in blobs:
        raise _refuse("package_sbom_missing", f"The package has no {SBOM_PATH} (a CycloneDX JSON SBOM) at its root.")
    sbom = _load_json_object(blobs[SBOM_PATH], SBOM_PATH, "package_sbom_invalid", limits.max_sbom_bytes)
    _validate_sbom(sbom)
    files = {path: len(blob) for path, blob in blobs.items()}
    return Package(hashlib.sha256(data).hexdigest(), len(data), manifest, sbom, files, blobs)


def build_package(files: dict[str, bytes | str], *, manifest: dict | None = None, sbom: dict | None = None) -> bytes:
    """Write a package in memory for tests, demo data and the CLI. Fixed timestamps, modes and order, so the same
    inputs give the same bytes (and digest). Names are written as given — tests use that to craft hostile ones."""
    dump = functools.partial(json.dumps, indent=2, ensure_ascii=False, allow_nan=False)
    entries: dict[str, bytes] = {}
    if manifest is not None:
        entries[MANIFEST_PATH] = dump(manifest).encode()
    if sbom is not None:
        entries[SBOM_PATH] = dump(sbom).encode()
    elif SBOM_PATH not in files:
        entries[SBOM_PATH] = dump(MINIMAL_SBOM).encode()
    for name in sorted(files):
        if name in entries:
            raise ValueError(f"{name} is given both in files and as an argument")
        content = files[name]
        entries[name] = content.encode() if isinstance(content, str) else bytes(content)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.create_system = 3  # unix, whatever machine builds it
            is_dir = name.endswith("/")
            info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10 if is_dir else (stat.S_IFREG | 0o644) << 16
            method = zipfile.ZIP_STORED if is_dir else zipfile.ZIP_DEFLATED
            archive.writestr(info, content, compress_type=method, compresslevel=9)
    return buffer.getvalue()
