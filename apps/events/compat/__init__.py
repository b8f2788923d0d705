"""JSON Schema compatibility: is every instance one schema produces accepted by another?

Used by the event schema registry (Confluent-style compatibility modes) and the OpenAPI breaking-change gate.
The check is structural and conservative: when it cannot prove that the reader accepts what the writer produces
it says why (``unsupported_keyword``, ``unsupported_ref``, ...) rather than guessing, and a malformed schema is
reported, never raised. Semantics and the reasoning behind them: docs/compatibility.md.

Layout: ``vocabulary`` (keyword sets, limits), ``messages`` (``Incompatibility`` and its sentences), ``reading``
(keyword values, merging), ``checker`` (``_Checker``: recursion, cycles, dispatch) with its parts ``refs``,
``combinators`` and ``keywords``.
"""

from __future__ import annotations

import dataclasses
import enum

from apps.events.compat.checker import _Checker
from apps.events.compat.messages import Incompatibility

__all__ = ["Incompatibility", "Mode", "check_compatibility", "is_subschema"]


class Mode(enum.StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"


def is_subschema(
    writer, reader, *, writer_root=None, reader_root=None, same_roots: bool | None = None
) -> list[Incompatibility]:
    """Every instance the writer schema produces is accepted by the reader schema; [] when compatible.

    ``same_roots``: whether the two roots are equal documents, when the caller already knows (working
    it out walks both documents, which dominates many comparisons against the same pair of roots)."""
    checker = _Checker(
        writer if writer_root is None else writer_root, reader if reader_root is None else reader_root, same_roots
    )
    try:
        return checker.check(writer, reader, "", "", 0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the promise is "never raises"; referencing's Rust core panics are no Exception
        return [Incompatibility("", "invalid_schema", f"Could not check compatibility ({type(exc).__name__}).")]


def check_compatibility(new: dict, previous: list[tuple[int, dict]], mode: Mode | str) -> list[Incompatibility]:
    """Enforce ``mode`` for ``new`` against ``previous`` ((version, schema) pairs, oldest first).

    BACKWARD: consumers on the new schema read old data, is_subschema(old, new). FORWARD: consumers on the old
    schema read new data, is_subschema(new, old). FULL: both. Non-transitive modes compare with the latest only.
    """
    mode = Mode(str(mode).upper())  # ValueError for a mode that does not exist
    if mode is Mode.NONE or not previous:
        return []
    directions = [d for d in ("backward", "forward") if mode.startswith((d.upper(), "FULL"))]
    found = []
    for version, old in previous if mode.endswith("_TRANSITIVE") else previous[-1:]:
        for direction in directions:
            pairs = is_subschema(old, new) if direction == "backward" else is_subschema(new, old)
            found += [dataclasses.replace(p, direction=direction, against_version=version) for p in pairs]
    return found
