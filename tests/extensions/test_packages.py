"""Reading uploaded packages: the happy path, and every hostile archive we know how to build refused with its code."""

from __future__ import annotations

import hashlib
import io
import json
import struct
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
