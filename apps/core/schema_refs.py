"""JSON Schemas uploaded by publishers and staff may only refer inside themselves: resolving a
remote ``$ref`` would make validation fetch URLs (SSRF) and depend on documents we do not pin."""

from __future__ import annotations


def external_refs(node, depth: int = 0) -> list[str]:
    """Every ``$ref`` in ``node`` that does not start with ``#`` (a local JSON Pointer)."""
    if depth > 64:
        return []
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            found.append(ref)
        for value in node.values():
            found.extend(external_refs(value, depth + 1))
    elif isinstance(node, list):
        for value in node:
            found.extend(external_refs(value, depth + 1))
    return found


def json_path(parts, root: str = "$") -> str:
    """``root`` followed by ``parts`` as a JSON path: ``$.hooks[0].event``, ``$.modules['odd key']``."""
    path = root
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.replace("_", "a").isalnum():
            path += f".{part}"
        else:
            path += f"[{str(part)!r}]"
    return path
