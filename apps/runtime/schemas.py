from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class InvocationOut(Schema):
    id: str
    version: str | None = Field(..., description="The version number (e.g. 1.2.0) whose code ran.")
    export: str
    outcome: str = Field(..., description="How the call ended: one of the runtime's outcome codes.")
    detail: str
    fuel_used: int
    memory_peak_bytes: int
    duration_us: int
    input_bytes: int
    output_bytes: int
    log_excerpt: str
    correlation_id: str
    installation_id: str
    created_at: dt.datetime

    @staticmethod
    def resolve_version(obj) -> str | None:
        return obj.version.version if obj.version_id else None


class InvocationStatsOut(Schema):
    since: dt.datetime
    total: int
    counts: dict[str, int] = Field(..., description="Calls per outcome code (codes with no calls are left out).")
    errors: int
    error_rate: float = Field(..., description="Share of calls that did not end ok, 0 to 1.")
    p50_duration_us: int
    p95_duration_us: int
    mean_fuel_used: int
    max_memory_peak_bytes: int
