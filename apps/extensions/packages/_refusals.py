"""How a package is refused: one ``ValidationFailed`` shape (param "package"), and names shown safely in it."""

from __future__ import annotations

from apps.core.errors import ValidationFailed


def _refuse(code: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, param="package")


def _show(name: str) -> str:
    """A name for an error message: quoted so control characters show, cut so a 64 KB name cannot flood it."""
    return repr(name if len(name) <= 80 else name[:80] + "…")


def _entry_refusal(path: str, code: str, what: str) -> ValidationFailed:
    """A refusal about one entry, worded the same way whichever check made it."""
    return _refuse(code, f"The package entry {_show(path)} {what}.")
