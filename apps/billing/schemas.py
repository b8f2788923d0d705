from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class EntitlementOut(Schema):
    feature: str
    entitled: bool


class GrantIn(Schema):
    feature: str = Field(..., max_length=64)
    note: str = Field("", max_length=200)


class GrantOut(Schema):
    id: str
    installation_id: str
    feature: str
    note: str
    granted_at: dt.datetime


class FreeFeaturesIn(Schema):
    free_features: list[str] = Field(..., max_length=50)


class FreeFeaturesOut(Schema):
    extension_id: str
    free_features: list[str]
