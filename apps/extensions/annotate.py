"""Render a JSON document as numbered lines with each validation error placed under the line of
the value it concerns, so the portal can show manifest problems in place.

An error whose path names nothing in the document (a missing required field) goes under its
nearest existing parent: "'name' is required" sits under the object that lacks it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from apps.core.schema_refs import json_path


@dataclass
class Line:
    number: int
    text: str
    path: str
    errors: list = field(default_factory=list)


def _render(value, path: str, indent: int, prefix: str, suffix: str, out: list[Line]) -> None:
    pad = "  " * indent

    def emit(text: str, at: str) -> None:
        out.append(Line(len(out) + 1, _printable(pad + text), at))

    if isinstance(value, dict) and value:
        emit(prefix + "{", path)
        items = list(value.items())
        for i, (key, child) in enumerate(items):
            comma = "," if i < len(items) - 1 else ""
            _render(child, json_path([key], path), indent + 1, json.dumps(key, ensure_ascii=False) + ": ", comma, out)
        out.append(Line(len(out) + 1, pad + "}" + suffix, path))
    elif isinstance(value, list) and value:
        emit(prefix + "[", path)
        for i, child in enumerate(value):
            _render(child, json_path([i], path), indent + 1, "", "," if i < len(value) - 1 else "", out)
        out.append(Line(len(out) + 1, pad + "]" + suffix, path))
    else:
        emit(prefix + json.dumps(value, ensure_ascii=False) + suffix, path)


def _printable(text: str) -> str:
    """Lone surrogates cannot be encoded into the page: show them as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _get(error, key: str):
    return error.get(key, "") if isinstance(error, dict) else getattr(error, key, "")


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path[: path.rindex(".")] if "." in path else "$"


def annotate(document, errors) -> list[Line]:
    """``document`` as lines; each error (anything with ``path`` and ``message``) attached to the
    first line of the value at its path, or of its nearest existing parent."""
    lines: list[Line] = []
    try:
        _render(document, "$", 0, "", "", lines)
    except RecursionError:
        lines = [Line(1, "(nested too deeply to show)", "$")]
    first_line = {}
    for line in lines:
        first_line.setdefault(line.path, line)
    for error in errors:
        shown = {k: _printable(str(_get(error, k))) for k in ("path", "rule", "message")}
        path = _get(error, "path") or "$"
        while path not in first_line and path != "$":
            path = _parent(path)
        first_line.get(path, lines[0]).errors.append(shown)
    return lines
