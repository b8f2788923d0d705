from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Field, Schema


class EventTypeOut(Schema):
    id: str
    name: str
    description: str
    scope: str = Field(..., description="The scope an installation needs to receive this event.")
    compatibility: str
    latest_version: int | None = None
    deprecated: bool
    created_at: dt.datetime

    @staticmethod
    def resolve_deprecated(obj) -> bool:
        return obj.deprecated_at is not None


class EventTypeCreateIn(Schema):
    name: str = Field(..., min_length=1, max_length=200, examples=["order.created"])
    description: str = Field(..., min_length=1, max_length=2000)
    compatibility: str = Field("FULL_TRANSITIVE", max_length=24)
    schema_: dict[str, Any] = Field(..., alias="schema", description="JSON Schema (draft 2020-12) of the payload.")
    examples: list[Any] = Field(..., max_length=10)
    changelog: str = Field("", max_length=1000)


class EventTypeUpdateIn(Schema):
    description: str | None = Field(None, max_length=2000)
    compatibility: str | None = Field(None, max_length=24)
    deprecated: bool | None = None


class EventSchemaOut(Schema):
    event_type: str
    version: int
    schema_: dict[str, Any] = Field(..., alias="schema")
    examples: list[Any]
    changelog: str
    fingerprint: str
    created_at: dt.datetime

    @staticmethod
    def resolve_event_type(obj) -> str:
        return obj.event_type.name


class EventSchemaIn(Schema):
    schema_: dict[str, Any] = Field(..., alias="schema")
    examples: list[Any] = Field(..., max_length=10)
    changelog: str = Field("", max_length=1000)


class CompatibilityCheckIn(Schema):
    schema_: dict[str, Any] = Field(..., alias="schema")
    compatibility: str | None = Field(None, max_length=24, description="Check under this mode instead of the type's.")


class IncompatibilityOut(Schema):
    path: str
    rule: str
    message: str
    direction: str
    against_version: int | None


class CompatibilityCheckOut(Schema):
    compatible: bool
    mode: str
    problems: list[IncompatibilityOut]
