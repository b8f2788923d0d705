"""The zip's own structure, as readers other than zipfile see it (see the package docstring): the end records and
the central directory, extra fields, local headers and data descriptors, and entries that follow one another from
the first byte to the central directory."""

from __future__ import annotations

import struct
import zipfile
from typing import NamedTuple

from apps.extensions.packages._refusals import _entry_refusal, _refuse, _show

_CENTRAL_SIGNATURE = b"PK\x01\x02"
_LOCAL_SIGNATURE = b"PK\x03\x04"
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_END_SIGNATURE = b"PK\x06\x06"
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EXTRA = 0x0001
_UNICODE_PATH_EXTRA = 0x7075  # Info-ZIP: a second, UTF-8 name, which unzip and 7-Zip use instead of the header's
_ENCRYPTION_FLAGS = 0x01 | 0x40  # traditional PKWARE encryption, strong encryption
_DESCRIPTOR_FLAG = 0x08  # CRC and sizes follow the data, in a data descriptor
# Flags a reader of local headers acts on (encryption, where the entry ends, how its name is encoded): the local
# header and the central directory must agree on them.
_LOCAL_FLAGS = _ENCRYPTION_FLAGS | _DESCRIPTOR_FLAG | 0x800


def _extra_fields(extra: bytes, path: str) -> dict[int, bytes]:
    """An extra field (2-byte id, 2-byte size, body; little-endian) as id -> body. Refused: fields that run past
    the end or repeat, which readers resolve differently, and the Info-ZIP Unicode Path: a second name that unzip and
    7-Zip extract under instead of the one checked here. Timestamps, unix owners, NTFS times and zip64 are fine."""
    fields: dict[int, bytes] = {}
    position = 0
    while position < len(extra):
        header = extra[position : position + 4]
        kind, size = struct.unpack("<HH", header) if len(header) == 4 else (-1, 0)
        body = extra[position + 4 : position + 4 + size]
        if kind < 0 or len(body) != size:
            raise zipfile.BadZipFile(f"the extra field of {_show(path)} is malformed (a field runs past its end)")
        if kind in fields:
            raise zipfile.BadZipFile(f"the extra field of {_show(path)} holds field 0x{kind:04x} twice")
        fields[kind] = body
        position += 4 + size
    if _UNICODE_PATH_EXTRA in fields:
        alias = _show(fields[_UNICODE_PATH_EXTRA][5:].decode("utf-8", "replace"))  # after a version and a CRC
        detail = f"carries an Info-ZIP Unicode Path extra field (0x7075) renaming it {alias} for unzip and 7-Zip"
        raise _entry_refusal(path, "package_path_unsafe", f"{detail}; alternative-name extra fields are not allowed")
    return fields


def _central_directory(data: bytes, comment: bytes, count: int) -> tuple[int, list[bytes]]:
    """Where the central directory starts, and each record's extra field as stored (zipfile's copy of the last one
    is cut short if the directory's declared size is). Refused: whatever makes zipfile read the archive differently
    from tools that trust other fields: bytes after the end record, a directory that is not at the offset it declares
    (zipfile then assumes bytes were prepended, and shifts every entry), a count or size that is not the real one."""
    end = len(data) - 22 - len(comment)
    record = data[end : end + 22] if end >= 0 else b""
    if record[:4] != _END_SIGNATURE or struct.unpack_from("<H", record, 20)[0] != len(comment):
        raise zipfile.BadZipFile("bytes follow its end of central directory record")
    declared = struct.unpack_from("<HHHHII", record, 4)  # disk, directory's disk, entries there, entries, size, offset
    directory_end = end
    if end >= 20 and data[end - 20 : end - 16] == _ZIP64_LOCATOR_SIGNATURE:
        directory_end = end - 20 - 56  # where zipfile looks for the zip64 end record: right before the locator
        disk, located, disks = struct.unpack_from("<IQI", data, end - 16)
        zip64 = data[directory_end : directory_end + 56] if directory_end >= 0 else b""
        if zip64[:4] != _ZIP64_END_SIGNATURE or struct.unpack_from("<Q", zip64, 4)[0] != 44:
            raise zipfile.BadZipFile("its zip64 end of central directory record is missing or extended")
        wide = struct.unpack_from("<IIQQQQ", zip64, 16)
        saturated = (0xFFFF,) * 4 + (0xFFFF_FFFF,) * 2
        if (
            located != directory_end
            or disk
            or disks > 1
            or any(small not in (big, full) for small, big, full in zip(declared, wide, saturated, strict=True))
        ):
            raise zipfile.BadZipFile("its zip64 end records disagree with its end of central directory record")
        declared = wide
    disk, directory_disk, here, total, size, offset = declared
    if disk or directory_disk or here != total:
        raise zipfile.BadZipFile("it spans several disks")
    if (shift := directory_end - size - offset) > 0:
        raise _refuse(
            "package_not_zip",
            f"The package has {shift} bytes before the zip archive it ends with (another archive, or a "
            "self-extracting stub?); a zip reader that starts from the first byte would read those instead.",
        )
    if shift:
        raise zipfile.BadZipFile("its central directory is not at the offset its end record gives")
    if total != count:
        raise zipfile.BadZipFile(f"its end record counts {total} entries, its central directory {count}")
    extras, position = [], offset
    for _ in range(count):
        header = data[position : position + 46]
        if len(header) != 46 or header[:4] != _CENTRAL_SIGNATURE:
            raise zipfile.BadZipFile("its central directory is malformed")
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", header, 28)
        extras.append(data[position + 46 + name_length : position + 46 + name_length + extra_length])
        position += 46 + name_length + extra_length + comment_length
    if position != directory_end:
        raise zipfile.BadZipFile(f"the records of its central directory do not fill the {size} bytes it declares")
    return offset, extras


class _Span(NamedTuple):
    start: int  # of the local header
    data_end: int  # of the compressed data
    end: int  # of the entry: after its data descriptor, if it has one
    problem: str  # how the local header or data descriptor disagrees with the central directory ("" if not)


def _data_span(data: bytes, info: zipfile.ZipInfo, path: str) -> _Span:
    """Where an entry lies, from its local header; and whether that header, and the data descriptor that follows
    the data when flag bit 3 is set, agree with the central directory: readers that stream the archive from its
    start see only those, so a name, flag, CRC or size there must be the one checked here."""
    offset = info.header_offset
    header = data[offset : offset + 30] if offset >= 0 else b""
    if len(header) != 30 or header[:4] != _LOCAL_SIGNATURE:
        raise zipfile.BadZipFile(f"no local header for {_show(path)}")
    flags, method = struct.unpack_from("<HH", header, 6)
    crc, packed, size, name_length, extra_length = struct.unpack_from("<IIIHH", header, 14)
    name_end = offset + 30 + name_length
    zip64 = _extra_fields(data[name_end : name_end + extra_length], path).get(_ZIP64_EXTRA)
    wide = [int.from_bytes(zip64[i : i + 8], "little") for i in range(0, len(zip64) - 7, 8)] if zip64 else []
    if size == 0xFFFF_FFFF and wide:
        size = wide.pop(0)
    if packed == 0xFFFF_FFFF and wide:
        packed = wide.pop(0)
    data_end = name_end + extra_length + info.compress_size
    if data_end > len(data):
        raise zipfile.BadZipFile(f"the data of {_show(path)} is truncated")
    central = (info.CRC, info.compress_size, info.file_size)
    # With a data descriptor, the header may leave any of CRC and sizes at zero (Info-ZIP fills in some of them).
    allowed = [(0, value) if flags & _DESCRIPTOR_FLAG else (value,) for value in central]
    agrees = (
        data[offset + 30 : name_end] == info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        and method == info.compress_type
        and not (flags ^ info.flag_bits) & _LOCAL_FLAGS
        and all(value in choices for value, choices in zip((crc, packed, size), allowed, strict=True))
    )
    problem = "" if agrees else f"the local header of {_show(path)} disagrees with the central directory"
    end = data_end
    if flags & _DESCRIPTOR_FLAG:
        # CRC and sizes, with sizes of 8 bytes if the local header has a zip64 field; most writers put a signature
        # first. Readers tell the forms apart the same way, so one reading is checked, not whichever fits.
        layout = "<IQQ" if zip64 is not None else "<III"
        at = end + 4 * (data[end : end + 4] == _DESCRIPTOR_SIGNATURE)
        end = at + struct.calcsize(layout)
        if end > len(data):
            raise zipfile.BadZipFile(f"the data descriptor of {_show(path)} is truncated")
        if not problem and struct.unpack_from(layout, data, at) != central:
            problem = f"the data descriptor of {_show(path)} disagrees with the central directory"
    return _Span(offset, data_end, end, problem)


def _check_contiguous(ordered: list[tuple[int, int, str]], directory_start: int) -> None:
    """Entries must follow one another from the first byte to the central directory, with nothing before or between
    them: a reader that streams from the start (Java's ZipInputStream, many scanners) would take such bytes for
    entries, or a whole archive, of their own, which the central directory does not list and nothing here checked."""
    position, previous = 0, ""
    for start, end, path in [*ordered, (directory_start, directory_start, "")]:
        before = f"the entry {_show(path)}" if path else "its central directory"
        if start < position:
            raise _refuse("package_not_zip", f"The package entry {_show(previous)} runs into {before}.")
        if start > position:
            after = f"the entry {_show(previous)}" if previous else "the start"
            what = "" if previous else " (another archive, or a self-extracting stub?)"
            raise _refuse(
                "package_not_zip",
                f"The package has {start - position} bytes between {after} and {before} that belong to no entry{what}; "
                "a zip reader that starts from the first byte could find entries there that were never checked.",
            )
        position, previous = end, path
