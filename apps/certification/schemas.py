from __future__ import annotations

import datetime as dt

from ninja import Field, Schema

from apps.certification.models import CHECK_DONE


class FindingOut(Schema):
    rule: str = Field(..., description="<check id>.<rule>; docs/certification.md explains each and how to fix it.")
    severity: str = Field(..., description="error | warning | info")
    message: str
    location: str
    hint: str


class CheckSummaryOut(Schema):
    check_id: str
    check_version: int
    title: str
    required: bool = Field(..., description="A failed required check rejects the version; others go to review.")
    status: str = Field(..., description="pending | running | passed | warned | failed | errored")
    summary: str
    duration_ms: int | None


class CheckOut(CheckSummaryOut):
    findings: list[FindingOut]
    measurements: dict
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    attempts: int


class RunSummaryOut(Schema):
    """A run in a list: each check's status and summary; get the run for findings and measurements."""

    id: str
    version_id: str
    extension_id: str
    extension_key: str
    version: str
    number: int
    status: str = Field(
        ..., description="queued | running | review | passed | failed | approved | rejected | superseded"
    )
    finished: bool = Field(..., description="True once the run has an outcome; poll until then.")
    checks_done: bool = Field(
        ..., description="True once every check has run (status review: the report is complete, staff decide next)."
    )
    trigger: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    totals: dict
    review_reason: str
    reviewed_at: dt.datetime | None
    checks: list[CheckSummaryOut]

    @staticmethod
    def resolve_checks_done(obj) -> bool:
        return all(c.status in CHECK_DONE for c in obj.checks.all())

    @staticmethod
    def resolve_extension_id(obj) -> str:
        return obj.version.extension_id

    @staticmethod
    def resolve_extension_key(obj) -> str:
        return obj.version.extension.key

    @staticmethod
    def resolve_version(obj) -> str:
        return obj.version.version

    @staticmethod
    def resolve_checks(obj) -> list:
        return list(obj.checks.all())


class RunOut(RunSummaryOut):
    """A run with every check's findings and measurements (what the CLI polls)."""

    checks: list[CheckOut]


class StaffRunSummaryOut(RunSummaryOut):
    org_id: str


class StaffRunOut(RunOut):
    org_id: str


class ReviewIn(Schema):
    decision: str = Field(..., description="approve | reject")
    reason: str = Field(..., min_length=3, max_length=1000, description="Shown to the publisher.")


class RerunIn(Schema):
    reason: str = Field("", max_length=500)


class SbomRuleIn(Schema):
    effect: str = Field(..., description="allow | deny (an organisation's own rules: deny only)")
    name: str = Field("", max_length=200, description="Component name or glob (case-insensitive).")
    version_range: str = Field("", max_length=100, description="npm-style range; needs a name.")
    license: str = Field("", max_length=100, description="An SPDX licence id.")
    reason: str = Field("", max_length=500)


class SbomRuleOut(Schema):
    id: str
    org_id: str | None
    effect: str
    name: str
    version_range: str
    license: str
    reason: str
    created_at: dt.datetime
