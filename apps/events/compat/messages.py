"""What a check reports: ``Incompatibility``, the sentences it carries, and ``_Malformed`` for a keyword that
is not JSON Schema. Other code parses these messages (apps/events/contracts/report.py): keep their wording."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from apps.events.compat.vocabulary import ARTICLES, TYPE_ORDER


@dataclass(frozen=True)
class Incompatibility:
    path: str  # JSON Pointer to where it breaks ("" = root); inside the reader's $ref target once one is followed
    rule: str  # stable machine code, e.g. "type_narrowed"
    message: str  # one plain-English sentence naming the field and what changed
    direction: str = ""  # "backward" or "forward", filled by check_compatibility
    against_version: int | None = None  # the earlier version compared with, filled by check_compatibility

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Malformed(Exception):
    """A keyword whose value is not JSON Schema; reported as ``invalid_schema`` at that keyword."""

    def __init__(self, keyword: str, reason: str):
        super().__init__(reason)
        self.keyword = keyword


def _label(field: str, start: bool = True) -> str:
    text = f"Field '{field}'" if field else "The value"
    return text if start else text[0].lower() + text[1:]


def _broken(path: str, rule: str, field: str, producer: str, reader: str) -> Incompatibility:
    """The usual sentence: what the producer's schema allows, then what the reader demands."""
    return Incompatibility(path, rule, f"{_label(field)} {producer} in the producer's schema but the reader {reader}.")


def _unprovable(path: str, rule: str, field: str, reason: str) -> Incompatibility:
    return Incompatibility(path, rule, f"Cannot prove compatibility for {_label(field, False)}: {reason}.")


def _show(value) -> str:
    text = json.dumps(value, default=repr, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _esc(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _child(field: str, name) -> str:
    return f"{field}.{name}" if field else str(name)


def _plain(types, articles: bool = False) -> str:
    """Types as words: 'integer or null', or with articles 'an integer or null'; None is 'any type'."""
    if types is None:
        return "any type"
    return " or ".join(ARTICLES[t] if articles else t for t in TYPE_ORDER if t in types) or "nothing"
