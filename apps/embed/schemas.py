from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Field, Schema


class LaunchIn(Schema):
    user_id: str = Field(..., max_length=40)
    host_origin: str = Field(..., max_length=200)
    context: dict[str, Any] | None = None


class LaunchOut(Schema):
    id: str
    expires_at: dt.datetime


class EmbedSettingsIn(Schema):
    host_origins: list[str] | None = Field(None, max_length=20)
    theme_id: str | None = Field(None, max_length=40, description='A theme pack id, or "" for the built-in one')
    theme_dark_id: str | None = Field(None, max_length=40)


class EmbedSettingsOut(Schema):
    host_origins: list[str]
    theme_id: str | None
    theme_dark_id: str | None


class ThemePackIn(Schema):
    name: str = Field(..., max_length=60)
    scheme: Literal["light", "dark"] = "light"
    tokens: dict[str, Any] = Field(..., description="The W3C DTCG document ($value, $type, aliases {group.token})")


class ThemePackOut(Schema):
    id: str
    name: str
    version: int
    scheme: str
    builtin: bool
    created_at: dt.datetime
    tokens: dict[str, dict] = Field(..., alias="resolved", description="CSS variable -> {type, value}")


class SlotOut(Schema):
    name: str
    description: str
    placement: str
    default_height: int
    min_height: int
    max_height: int
    hidden: bool


class SlotOverrideIn(Schema):
    min_height: int | None = Field(None, ge=20, le=4000)
    max_height: int | None = Field(None, ge=20, le=4000)
    hidden: bool = False
