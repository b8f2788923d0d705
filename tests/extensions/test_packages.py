"""Reading uploaded packages: the happy path, and every hostile archive we know how to build refused with its code."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.errors import ValidationFailed
from apps.extensions import packages
from apps.extensions.packages import DEFAULT_LIMITS, Package, PackageLimits, SbomComponent, build_package, read_package

MANIFEST = {"id": "acme.hello", "name": "Hello", "version": "1.0.0"}
SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "components": [
        {
            "name": "serde",
            "version": "1.0.200",
            "purl": "pkg:cargo/serde@1.0.200",
            "licenses": [{"license": {"id": "MIT"}}],
        },
        {"name": "inhouse", "licenses": [{"license": {"name": "Proprietary"}}, {"expression": "MIT OR Apache-2.0"}]},
    ],
}
WASM = b"\0asm\x01\0\0\0" + bytes(range(256)) * 4


def refused(data: bytes, code: str, limits: PackageLimits = DEFAULT_LIMITS) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        read_package(data, limits)
    assert caught.value.code == code, caught.value.message
    assert caught.value.param == "package"
    return caught.value


def raw_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip written by zipfile with no checks of ours, for archives build_package would not make."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return buffer.getvalue()


def with_manifest(*entries: tuple[str | zipfile.ZipInfo, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    base = [("extension.json", json.dumps(MANIFEST).encode()), ("sbom.cdx.json", json.dumps(SBOM).encode())]
    return raw_zip(base + list(entries), method)


def patch_entry(data: bytes, name: str, **fields: int) -> bytes:
    """Overwrite header fields of one entry, in both its central directory record and its local header."""
    central = {
        "flags": (8, "<H"),
        "method": (10, "<H"),
        "crc": (16, "<I"),
        "compressed": (20, "<I"),
        "size": (24, "<I"),
    }
    local_offset = {"flags": 6, "method": 8, "crc": 14, "compressed": 18, "size": 22}
    out = bytearray(data)
    eocd = out.rindex(b"PK\x05\x06")
    (count,) = struct.unpack_from("<H", out, eocd + 10)
    (position,) = struct.unpack_from("<I", out, eocd + 16)
    for _ in range(count):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", out, position + 28)
        (header,) = struct.unpack_from("<I", out, position + 42)
        if bytes(out[position + 46 : position + 46 + name_length]) == name.encode():
            for field_name, value in fields.items():
                offset, fmt = central[field_name]
                struct.pack_into(fmt, out, position + offset, value)
                struct.pack_into(fmt, out, header + local_offset[field_name], value)
            return bytes(out)
        position += 46 + name_length + extra_length + comment_length
    raise AssertionError(f"no entry {name}")


def good_package() -> bytes:
    return build_package(
        {"module.wasm": WASM, "assets/icon.svg": "<svg/>", "assets/": b""}, manifest=MANIFEST, sbom=SBOM
    )


# --- the happy path -------------------------------------------------------------------------------


def test_round_trip():
    data = good_package()
    package = read_package(data)
    assert isinstance(package, Package)
    assert package.size == len(data)
    assert package.digest == hashlib.sha256(data).hexdigest()
    assert package.manifest == MANIFEST
    assert package.sbom == SBOM
    assert package.files == {
        "extension.json": len(json.dumps(MANIFEST, indent=2).encode()),
        "sbom.cdx.json": package.files["sbom.cdx.json"],
        "module.wasm": len(WASM),
        "assets/icon.svg": 6,
    }
    assert package.read("module.wasm") == WASM
    assert package.read("assets/icon.svg") == b"<svg/>"
    assert json.loads(package.read("extension.json")) == MANIFEST
    with pytest.raises(KeyError):
        package.read("missing.wasm")
    assert package.components() == [
        SbomComponent("serde", "1.0.200", "pkg:cargo/serde@1.0.200", ("MIT",)),
        SbomComponent("inhouse", "", "", ("Proprietary", "MIT OR Apache-2.0")),
    ]


def test_build_is_deterministic():
    assert good_package() == good_package()
    assert read_package(good_package()).digest == read_package(good_package()).digest
    other = build_package({"module.wasm": WASM + b"!"}, manifest=MANIFEST)
    assert read_package(other).digest != read_package(good_package()).digest


def test_default_sbom_has_no_components():
    package = read_package(build_package({"module.wasm": WASM}, manifest=MANIFEST))
    assert package.sbom["bomFormat"] == "CycloneDX"
    assert package.components() == []


def test_stored_entries_and_compressible_small_files_are_fine():
    data = with_manifest(("module.wasm", WASM), ("zeros.bin", bytes(64 * 1024)), method=zipfile.ZIP_STORED)
    assert read_package(data).read("zeros.bin") == bytes(64 * 1024)
    # A small, very compressible file is under the ratio exemption: 64 KiB of zeros deflates about 600:1.
    assert read_package(build_package({"zeros.bin": bytes(64 * 1024)}, manifest=MANIFEST)).files["zeros.bin"] == 65536


def test_unicode_names_are_normalised():
    decomposed = "cafe\u0301.txt"
    package = read_package(build_package({decomposed: "x"}, manifest=MANIFEST))
    assert "caf\u00e9.txt" in package.files
    assert package.read(decomposed) == b"x"


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../evil",
        "a/../../b",
        "/etc/passwd",
        "C:\\x",
        "C:/x",
        "a\\b",
        "a//b",
        "./a",
        "a/./b",
        "a/..",
        "tab\there",
        "rtl\u202egpj.exe",
    ],
)
def test_unsafe_paths(name):
    error = refused(build_package({name: "x"}, manifest=MANIFEST), "package_path_unsafe")
    assert repr(name) in error.message


def test_nul_in_name_is_refused():
    """zipfile truncates names at NUL; the check looks at the name as stored."""
    data = build_package({"aXb.txt": "x"}, manifest=MANIFEST).replace(b"aXb.txt", b"a\0b.txt")
    assert "U+0000" in refused(data, "package_path_unsafe").message


def test_path_length_limit():
    refused(build_package({"a" * 201: "x"}, manifest=MANIFEST), "package_path_unsafe")
    assert read_package(build_package({"a" * 200: "x"}, manifest=MANIFEST))


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    "names",
    [
        ["README.md", "README.md"],
        ["README.md", "readme.MD"],
        ["caf\u00e9.txt", "cafe\u0301.txt"],
        ["docs/", "DOCS/"],
        ["lib", "lib/x.wasm"],
        ["lib", "lib/"],
    ],
)
def test_duplicate_paths(names):
    data = with_manifest(*((name, b"" if name.endswith("/") else b"x") for name in names))
    refused(data, "package_path_duplicate")


# --- entry kinds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o120777, 0o010644, 0o020644, 0o140755, 0o040755])
def test_links_and_special_files(mode):
    info = zipfile.ZipInfo("link.wasm")
    info.external_attr = mode << 16
    error = refused(with_manifest((info, b"/etc/passwd")), "package_symlink")
    assert ("symbolic link" in error.message) == (mode == 0o120777) and "link.wasm" in error.message


def test_symlink_directory_entry():
    info = zipfile.ZipInfo("assets/")
    info.external_attr = 0o120777 << 16
    refused(with_manifest((info, b"")), "package_symlink")


def test_encrypted_flag():
    data = patch_entry(good_package(), "module.wasm", flags=0x1)
    assert "module.wasm" in refused(data, "package_encrypted").message


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_unsupported_compression(method):
    error = refused(with_manifest(("module.wasm", WASM), method=method), "package_compression_unsupported")
    assert ("bzip2" if method == zipfile.ZIP_BZIP2 else "lzma") in error.message


def test_unknown_compression_method():
    refused(patch_entry(good_package(), "module.wasm", method=9), "package_compression_unsupported")


# --- sizes and bombs ------------------------------------------------------------------------------


def test_oversized_package():
    refused(b"PK" + bytes(DEFAULT_LIMITS.max_bytes), "package_too_large")
    refused(good_package(), "package_too_large", PackageLimits(max_bytes=100))


def test_too_many_files():
    files = {f"f{i}.txt": "x" for i in range(DEFAULT_LIMITS.max_files - 1)}  # plus manifest and SBOM
    assert "257 entries" in refused(build_package(files, manifest=MANIFEST), "package_too_many_files").message
    refused(good_package(), "package_too_many_files", PackageLimits(max_files=3))


def test_huge_central_directory_is_refused_before_parsing():
    files = {f"{i}": "" for i in range(5 * DEFAULT_LIMITS.max_files)}
    assert "more than" in refused(build_package(files, manifest=MANIFEST), "package_too_many_files").message


def test_ratio_bomb():
    error = refused(build_package({"zeros.bin": bytes(2 * 1024 * 1024)}, manifest=MANIFEST), "package_zip_bomb")
    assert "zeros.bin" in error.message and "ratio" in error.message


def test_overall_ratio_bomb():
    limits = PackageLimits(ratio_exempt_bytes=200_000)
    files = {f"z{i}.bin": bytes(150_000) for i in range(4)}  # each under the exemption, together not
    assert "The package expands" in refused(build_package(files, manifest=MANIFEST), "package_zip_bomb", limits).message


def test_declared_sizes_over_limits():
    data = build_package({"module.wasm": WASM}, manifest=MANIFEST)
    refused(data, "package_zip_bomb", PackageLimits(max_file_bytes=len(WASM) - 1))
    refused(data, "package_zip_bomb", PackageLimits(max_unpacked_bytes=len(WASM)))


def test_lying_size_is_caught_by_counting_real_bytes(monkeypatch):
    """The header says 1000 bytes; the stream holds 8 MB of zeros. The read stops just past the declared size."""
    zeros = bytes(8 * 1024 * 1024)
    data = build_package({"payload.bin": zeros}, manifest=MANIFEST)
    data = patch_entry(data, "payload.bin", size=1000, crc=zlib.crc32(zeros[:1000]))
    produced = []
    real_inflate = packages._inflate

    def counting(raw):
        for chunk in real_inflate(raw):
            produced.append(len(chunk))
            yield chunk

    monkeypatch.setattr(packages, "_inflate", counting)
    error = refused(data, "package_zip_bomb")
    assert "payload.bin" in error.message and "1000 bytes it declares" in error.message
    assert sum(produced) <= 1000 + 64 * 1024  # one chunk past the declared size, not 8 MB


def test_lying_stored_size():
    data = with_manifest(("module.wasm", WASM), method=zipfile.ZIP_STORED)
    refused(patch_entry(data, "module.wasm", size=10), "package_zip_bomb")
    refused(patch_entry(data, "module.wasm", size=len(WASM) + 10), "package_not_zip")


def test_size_declared_larger_than_content():
    refused(patch_entry(good_package(), "module.wasm", size=len(WASM) + 1), "package_not_zip")


def test_overlapping_entries():
    """Two directory records pointing at the same data: the non-recursive zip bomb's building block."""
    data = bytearray(with_manifest(("a.bin", b"x" * 100), ("b.bin", b"x" * 100), method=zipfile.ZIP_STORED))
    eocd = data.rindex(b"PK\x05\x06")
    (position,) = struct.unpack_from("<I", data, eocd + 16)
    offsets = {}
    for _ in range(4):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, position + 28)
        offsets[bytes(data[position + 46 : position + 46 + name_length])] = position
        position += 46 + name_length + extra_length + comment_length
    (a_header,) = struct.unpack_from("<I", data, offsets[b"a.bin"] + 42)
    struct.pack_into("<I", data, offsets[b"b.bin"] + 42, a_header)
    assert "overlap" in refused(bytes(data), "package_zip_bomb").message


# --- not a zip ------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello", b"PK\x03\x04" + bytes(40), bytes(1000), b"PK\x05\x06" + bytes(17)])
def test_not_a_zip(data):
    refused(data, "package_not_zip")


def test_empty_archive_has_no_manifest():
    refused(b"PK\x05\x06" + bytes(18), "package_manifest_missing")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated(keep):
    data = good_package()
    refused(data[: int(len(data) * keep)], "package_not_zip")


def test_bad_crc():
    data = good_package()
    refused(patch_entry(data, "module.wasm", crc=zlib.crc32(WASM) ^ 1), "package_not_zip")


def test_flipped_content_byte():
    data = bytearray(with_manifest(("module.wasm", WASM), method=zipfile.ZIP_STORED))
    data[data.index(WASM) + 100] ^= 0xFF
    assert "CRC" in refused(bytes(data), "package_not_zip").message


def test_local_header_name_mismatch():
    data = good_package()
    tampered = data.replace(b"module.wasm", b"modulX.wasm", 1)  # the first occurrence is the local header
    refused(tampered, "package_not_zip")


# --- what other zip readers would see differently -------------------------------------------------


def records(data: bytes) -> list[tuple[int, bytes, int]]:
    """(position, name, local header offset) of each central directory record, in directory order."""
    eocd = data.rindex(b"PK\x05\x06")
    (count,) = struct.unpack_from("<H", data, eocd + 10)
    (position,) = struct.unpack_from("<I", data, eocd + 16)
    result = []
    for _ in range(count):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, position + 28)
        (header,) = struct.unpack_from("<I", data, position + 42)
        result.append((position, data[position + 46 : position + 46 + name_length], header))
        position += 46 + name_length + extra_length + comment_length
    return result


def splice(data: bytes, at: int, insert: bytes = b"", remove: int = 0) -> bytes:
    """Insert (or remove) bytes at an offset before the central directory, moving every offset that points past
    them as a careful forger would, so that only the extra (or missing) bytes are wrong."""
    out = bytearray(data)
    for position, _, header in records(data):
        if header >= at + remove:
            struct.pack_into("<I", out, position + 42, header + len(insert) - remove)
    eocd = data.rindex(b"PK\x05\x06")
    (directory,) = struct.unpack_from("<I", data, eocd + 16)
    struct.pack_into("<I", out, eocd + 16, directory + len(insert) - remove)
    out[at : at + remove] = insert
    return bytes(out)


def header_of(data: bytes, name: str) -> int:
    return next(header for _, stored, header in records(data) if stored == name.encode())


def data_end(data: bytes, name: str) -> int:
    """Where the compressed data of an entry ends: where its data descriptor, or the next entry, starts."""
    position, header = next((position, header) for position, stored, header in records(data) if stored == name.encode())
    (compressed,) = struct.unpack_from("<I", data, position + 20)
    name_length, extra_length = struct.unpack_from("<HH", data, header + 26)
    return header + 30 + name_length + extra_length + compressed


def unicode_path(name: str, alias: str) -> bytes:
    """An Info-ZIP Unicode Path extra field: version 1, the CRC of the header's name (unzip checks it), the alias."""
    body = b"\x01" + struct.pack("<I", zlib.crc32(name.encode())) + alias.encode()
    return struct.pack("<HH", 0x7075, len(body)) + body


def with_extra(extra: bytes, name: str = "assets/notes.json") -> bytes:
    """A package whose entry `name` carries `extra` in both its local header and its central directory record."""
    info = zipfile.ZipInfo(name)
    info.extra = extra
    return with_manifest((info, b'{"note": 1}'))


TIMESTAMP = struct.pack("<HHB4s", 0x5455, 5, 1, b"\0\0\0\x60")
UNIX_OWNER = struct.pack("<HHBBIBI", 0x7875, 11, 1, 4, 1000, 4, 1000)
NTFS_TIMES = struct.pack("<HHIHH3Q", 0x000A, 32, 0, 1, 24, 1, 2, 3)


class Pipe(io.RawIOBase):
    """A write-only, non-seekable stream, like a socket or stdout: zipfile then writes data descriptors."""

    def __init__(self):
        self.written = bytearray()

    def writable(self):
        return True

    def write(self, chunk):
        self.written += chunk
        return len(chunk)


def streamed(method: int = zipfile.ZIP_DEFLATED, force_zip64: bool = False) -> bytes:
    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", compression=method) as archive:
        archive.writestr("extension.json", json.dumps(MANIFEST))
        archive.writestr("assets/", b"")
        with archive.open("module.wasm", "w", force_zip64=force_zip64) as stream:
            stream.write(WASM)
        archive.writestr("sbom.cdx.json", json.dumps(SBOM))
    return bytes(pipe.written)


@pytest.mark.parametrize("alias", ["extension.json", "../../x", "assets/notes.json"])
def test_unicode_path_extra_field_is_refused(alias):
    """unzip and 7-Zip extract the entry under the alias; zipfile (and so every check here) sees the header's name."""
    data = with_extra(TIMESTAMP + unicode_path("assets/notes.json", alias))
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()[-1] == "assets/notes.json"
    error = refused(data, "package_path_unsafe")
    assert "'assets/notes.json'" in error.message and repr(alias) in error.message
    assert "0x7075" in error.message and "alternative-name extra fields are not allowed" in error.message


@pytest.mark.parametrize("where", ["local", "central"])
def test_unicode_path_extra_field_in_one_header_only(where):
    """Streaming readers see only the local header, unzip only the central directory: both are checked."""
    field = unicode_path("assets/notes.json", "extension.json")
    data = with_extra(field + UNIX_OWNER)
    local, central = data.index(field), data.rindex(field)
    assert local < central
    blank = central if where == "local" else local  # the copy to disguise as a field of an unknown kind
    hidden = data[:blank] + b"\x66\x66" + data[blank + 2 :]
    assert "0x7075" in refused(hidden, "package_path_unsafe").message


@pytest.mark.skipif(not shutil.which("unzip"), reason="needs Info-ZIP unzip")
def test_unzip_really_uses_the_unicode_path(tmp_path):
    """The bypass this guards against: the archive zipfile reads as assets/notes.json, unzip extracts elsewhere."""
    archive = tmp_path / "evil.zip"
    archive.write_bytes(with_extra(unicode_path("assets/notes.json", "elsewhere.json")))
    listing = subprocess.run(["unzip", "-Z1", str(archive)], capture_output=True, text=True, check=True).stdout
    assert "elsewhere.json" in listing.split() and "assets/notes.json" not in listing.split()


@pytest.mark.parametrize(
    "extra",
    [
        TIMESTAMP + UNIX_OWNER,
        NTFS_TIMES,
        struct.pack("<HHQQ", 0x0001, 16, 11, 11),  # zip64 sizes, not used as the header has no 0xFFFFFFFF
        struct.pack("<HH", 0xCAFE, 0),  # an empty field of an unknown kind
        b"",
    ],
)
def test_ordinary_extra_fields_are_fine(extra):
    assert read_package(with_extra(extra)).read("assets/notes.json") == b'{"note": 1}'


@pytest.mark.parametrize(
    "extra",
    [
        TIMESTAMP + b"\0\0",  # a field header cut short (zipfile skips up to 3 trailing bytes)
        TIMESTAMP + struct.pack("<HH", 0x7875, 11) + b"\x01\x04",  # a field running past the end
        TIMESTAMP + TIMESTAMP,  # the same field twice: readers differ on which one counts
    ],
)
def test_malformed_extra_fields(extra):
    error = refused(with_extra(extra), "package_not_zip")
    assert "extra field" in error.message  # in the central directory, zipfile refuses an overrun itself


def test_malformed_extra_field_in_the_local_header_only():
    data = with_extra(TIMESTAMP + UNIX_OWNER)
    local = data.index(UNIX_OWNER)
    malformed = data[: local + 2] + struct.pack("<H", 12) + data[local + 4 :]  # runs one byte past the end
    assert "malformed" in refused(malformed, "package_not_zip").message


def test_another_archive_prepended():
    """zipfile finds the good archive from its end and shifts its offsets; a reader from the start sees the evil one."""
    evil = build_package({"module.wasm": b"evil"}, manifest={"id": "acme.evil"})
    data = evil + good_package()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert json.loads(archive.read("extension.json")) == MANIFEST
    error = refused(data, "package_not_zip")
    assert f"{len(evil)} bytes before" in error.message and "another archive" in error.message


@pytest.mark.parametrize("prefix", [b"MZ" + bytes(510), build_package({}, manifest={"id": "acme.evil"})])
def test_bytes_before_the_first_entry_with_offsets_adjusted(prefix):
    """Like `zip -A` on a self-extractor: the offsets count the prefix, so nothing is shifted, yet it is there."""
    data = splice(good_package(), 0, prefix)
    error = refused(data, "package_not_zip")
    assert f"{len(prefix)} bytes between the start and the entry 'extension.json'" in error.message


def test_bytes_between_entries():
    data = good_package()
    error = refused(splice(data, header_of(data, "module.wasm"), bytes(16)), "package_not_zip")
    assert "16 bytes between the entry 'assets/icon.svg' and the entry 'module.wasm'" in error.message


def test_entry_smuggled_between_entries():
    """A whole local entry the central directory does not list: a streaming reader would extract it."""
    evil = raw_zip([("extension.json", b'{"id": "acme.evil"}')])
    smuggled = evil[: records(evil)[0][0]]  # its local header and data, without its central directory
    data = good_package()
    error = refused(splice(data, header_of(data, "module.wasm"), smuggled), "package_not_zip")
    assert f"{len(smuggled)} bytes between the entry 'assets/icon.svg' and the entry 'module.wasm'" in error.message


def test_bytes_before_the_central_directory():
    data = good_package()
    error = refused(splice(data, records(data)[0][0], b"PK\x03\x04" + bytes(26)), "package_not_zip")
    assert "and its central directory" in error.message


def test_entry_running_into_the_central_directory():
    data = with_manifest(("module.wasm", WASM), method=zipfile.ZIP_STORED)  # the last entry
    error = refused(patch_entry(data, "module.wasm", compressed=len(WASM) + 4), "package_not_zip")
    assert "'module.wasm' runs into its central directory" in error.message


def test_bytes_after_the_end_record():
    refused(good_package() + b"trailing", "package_not_zip")
    refused(good_package() + good_package()[-22:], "package_not_zip")


def test_archive_comment_is_fine_unless_its_length_lies():
    buffer = io.BytesIO(good_package())
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = b"built by acme"
    commented = buffer.getvalue()
    assert read_package(commented).manifest == MANIFEST
    refused(commented + b"!", "package_not_zip")
    eocd = commented.rindex(b"PK\x05\x06")
    refused(commented[: eocd + 20] + struct.pack("<H", 20) + commented[eocd + 22 :], "package_not_zip")


def test_end_record_miscounts_entries():
    data = bytearray(good_package())
    eocd = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 4, 4)  # five entries in the directory
    assert "counts 4 entries" in refused(bytes(data), "package_not_zip").message


def test_central_record_longer_than_the_directory():
    """zipfile cuts the last record's extra field at the directory's declared end; unzip reads all of it."""
    data = bytearray(good_package())
    position = records(bytes(data))[-1][0]
    (extra_length,) = struct.unpack_from("<H", data, position + 30)
    struct.pack_into("<H", data, position + 30, extra_length + 4)  # swallows the end record's first bytes
    refused(bytes(data), "package_not_zip")


def test_local_header_sizes_must_match():
    """A streaming reader takes a stored entry's length from its local header: a shorter one there would make it
    read the rest of the data as entries of its own."""
    data = with_manifest(("module.wasm", WASM), method=zipfile.ZIP_STORED)
    header = header_of(data, "module.wasm")
    for offset, value in ((18, 100), (22, 100), (14, 0)):  # compressed size, size, CRC
        tampered = bytearray(data)
        struct.pack_into("<I", tampered, header + offset, value)
        assert "local header of 'module.wasm'" in refused(bytes(tampered), "package_not_zip").message


@pytest.mark.parametrize("flag", [0x08, 0x800])
def test_local_header_flags_must_match(flag):
    data = bytearray(good_package())
    header = header_of(bytes(data), "module.wasm")
    (flags,) = struct.unpack_from("<H", data, header + 6)
    struct.pack_into("<H", data, header + 6, flags | flag)
    refused(bytes(data), "package_not_zip")


# --- archives real tools make ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "force_zip64"),
    [(zipfile.ZIP_DEFLATED, False), (zipfile.ZIP_STORED, False), (zipfile.ZIP_DEFLATED, True)],
)
def test_streamed_archives_with_data_descriptors(method, force_zip64):
    data = streamed(method, force_zip64)
    assert data.count(b"PK\x07\x08") == 4
    package = read_package(data)
    assert package.read("module.wasm") == WASM and package.manifest == MANIFEST


def test_seekable_zip64_local_headers():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("extension.json", json.dumps(MANIFEST))
        archive.writestr("sbom.cdx.json", json.dumps(SBOM))
        with archive.open("module.wasm", "w", force_zip64=True) as stream:
            stream.write(WASM)
    assert read_package(buffer.getvalue()).read("module.wasm") == WASM


@pytest.mark.parametrize("force_zip64", [False, True])
def test_data_descriptors_without_signature(force_zip64):
    """The signature is optional: 12 bytes (CRC, sizes) or 20 with zip64 sizes."""
    data = streamed(force_zip64=force_zip64)
    for _, name, _ in sorted(records(data), key=lambda record: -record[2]):
        at = data_end(data, name.decode())
        assert data[at : at + 4] == b"PK\x07\x08"
        data = splice(data, at, remove=4)
    assert b"PK\x07\x08" not in data
    assert read_package(data).read("module.wasm") == WASM


def test_data_descriptor_must_match():
    data = streamed()
    at = data_end(data, "module.wasm")
    wrong = bytearray(data)
    wrong[at + 4] ^= 1  # the CRC
    assert "data descriptor of 'module.wasm'" in refused(bytes(wrong), "package_not_zip").message
    assert "data descriptor" in refused(splice(data, at, remove=16), "package_not_zip").message  # none at all
    refused(splice(data, at + 16, bytes(4)), "package_not_zip")  # bytes after it


def test_zip64_end_records():
    data = good_package()
    eocd = data.rindex(b"PK\x05\x06")
    _, _, here, total, size, offset = struct.unpack_from("<HHHHII", data, eocd + 4)

    def with_zip64(declared: tuple, wide_offset: int = offset) -> bytes:
        record = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, here, total, size, wide_offset)
        locator = b"PK\x06\x07" + struct.pack("<IQI", 0, eocd, 1)
        return data[:eocd] + record + locator + b"PK\x05\x06" + struct.pack("<HHHHIIH", *declared, 0)

    assert read_package(with_zip64((0, 0, 0xFFFF, 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF))).manifest == MANIFEST
    assert read_package(with_zip64((0, 0, here, total, size, offset))).manifest == MANIFEST
    refused(with_zip64((0, 0, here, total, size, offset), wide_offset=offset + 1), "package_not_zip")
    refused(with_zip64((0, 0, here, total, size, offset + 1)), "package_not_zip")


@pytest.mark.skipif(not shutil.which("zip"), reason="needs Info-ZIP zip")
@pytest.mark.parametrize("options", [[], ["-X"], ["-0"], ["-X", "-0"]])
@pytest.mark.parametrize("to_pipe", [False, True])
def test_info_zip_archives(tmp_path, options, to_pipe):
    """Info-ZIP adds timestamp and unix owner extra fields (not with -X); written to a pipe, data descriptors."""
    folder = tmp_path / "package"
    (folder / "assets").mkdir(parents=True)
    (folder / "extension.json").write_text(json.dumps(MANIFEST))
    (folder / "sbom.cdx.json").write_text(json.dumps(SBOM))
    (folder / "module.wasm").write_bytes(WASM)
    (folder / "assets" / "icon.svg").write_text("<svg/>" * 50)
    output = "-" if to_pipe else str(tmp_path / "package.zip")
    run = subprocess.run(["zip", "-q", "-r", *options, output, "."], cwd=folder, capture_output=True, check=True)
    data = run.stdout if to_pipe else (tmp_path / "package.zip").read_bytes()
    assert (b"PK\x07\x08" in data) == to_pipe
    package = read_package(data)
    assert package.read("module.wasm") == WASM and set(package.files) == {
        "extension.json",
        "sbom.cdx.json",
        "module.wasm",
        "assets/icon.svg",
    }


# --- manifest and SBOM ----------------------------------------------------------------------------


def test_manifest_missing():
    refused(build_package({"module.wasm": WASM}), "package_manifest_missing")
    error = refused(build_package({"sub/extension.json": json.dumps(MANIFEST)}), "package_manifest_missing")
    assert "'sub/extension.json'" in error.message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": 1e400}', "finite"),
        (b'{"a": 1, "a": 2}', "'a' appears twice"),
        (b'{"x": {"b": 1, "b": 1}}', "'b' appears twice"),
        (b"[1, 2]", "list"),
        (b'"text"', "str"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'\xef\xbb\xbf{"a": 1}', "BOM"),
        (b"{'a': 1}", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"a": ' + b"1" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_manifest_invalid(content, words):
    error = refused(build_package({"extension.json": content}), "package_manifest_invalid")
    assert words in error.message and "extension.json" in error.message


def test_manifest_too_large():
    data = build_package({}, manifest={"padding": "x" * 1000})
    assert "limit" in refused(data, "package_manifest_invalid", PackageLimits(max_manifest_bytes=500)).message


def test_sbom_missing():
    refused(raw_zip([("extension.json", json.dumps(MANIFEST).encode())]), "package_sbom_missing")


def _component(**fields):
    return {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "ok"}, fields]}


@pytest.mark.parametrize(
    ("sbom", "path"),
    [
        ({"bomFormat": "SPDX", "specVersion": "1.6", "components": []}, "bomFormat"),
        ({"specVersion": "1.6", "components": []}, "bomFormat"),
        ({"bomFormat": "CycloneDX", "specVersion": "1.3", "components": []}, "specVersion"),
        ({"bomFormat": "CycloneDX", "specVersion": 1.5, "components": []}, "specVersion"),
        ({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": {}}, "components must"),
        ({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": ["serde"]}, "components[0] must"),
        (_component(version="1"), "components[1].name"),
        (_component(name=""), "components[1].name"),
        (_component(name=7), "components[1].name"),
        (_component(name="x", version=1), "components[1].version"),
        (_component(name="x", purl=None), "components[1].purl"),
        (_component(name="x", licenses="MIT"), "components[1].licenses must"),
        (_component(name="x", licenses=["MIT"]), "components[1].licenses[0]"),
        (_component(name="x", licenses=[{"license": {"url": "x"}}]), "components[1].licenses[0]"),
        (_component(name="x", licenses=[{"license": {"id": ""}}]), "components[1].licenses[0]"),
        (_component(name="x", licenses=[{"license": {"id": "MIT"}}, {"expression": 3}]), "components[1].licenses[1]"),
    ],
)
def test_sbom_invalid(sbom, path):
    error = refused(build_package({}, manifest=MANIFEST, sbom=sbom), "package_sbom_invalid")
    assert path in error.message and "sbom.cdx.json" in error.message


@pytest.mark.parametrize("content", [b"[]", b'{"bomFormat": NaN}', b"\xc3\x28", b"not json"])
def test_sbom_not_json_object(content):
    refused(build_package({"sbom.cdx.json": content}, manifest=MANIFEST), "package_sbom_invalid")


def test_sbom_too_large():
    sbom = dict(SBOM, padding="x" * 1000)
    refused(build_package({}, manifest=MANIFEST, sbom=sbom), "package_sbom_invalid", PackageLimits(max_sbom_bytes=500))


def test_sbom_without_components_key_is_accepted():
    package = read_package(build_package({}, manifest=MANIFEST, sbom={"bomFormat": "CycloneDX", "specVersion": "1.4"}))
    assert package.components() == []


# --- fuzzing --------------------------------------------------------------------------------------

FUZZ_BASE = build_package(
    {"module.wasm": WASM[:300], "a/b.txt": "hello " * 20, "d/": b""}, manifest={"id": "x"}, sbom=SBOM
)
FUZZ_STORED = with_manifest(("module.wasm", WASM[:200]), ("d/", b""), method=zipfile.ZIP_STORED)


def _outcome(data: bytes) -> None:
    try:
        assert isinstance(read_package(data), Package)
    except ValidationFailed as exc:
        assert exc.code.startswith("package_") and exc.param == "package"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(data):
    _outcome(data)
    _outcome(b"PK\x03\x04" + data)
    _outcome(data + FUZZ_STORED[-22:])  # a plausible end-of-central-directory record after noise


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.just(0)),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([FUZZ_BASE, FUZZ_STORED]), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_packages_never_crash(base, mutations):
    data = bytearray(base)
    for kind, position, value in mutations:
        if not data:
            break
        at = position % len(data)
        if kind == "flip":
            data[at] ^= value
        elif kind == "set":
            data[at] = value
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data.insert(at, value)
        else:
            del data[at]
    _outcome(bytes(data))


def test_fuzz_bases_are_valid():
    assert read_package(FUZZ_BASE) and read_package(FUZZ_STORED)
