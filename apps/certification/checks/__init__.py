"""The certification check interface and its registry.

A check is a class with an ``id`` (stable, lowercase), a ``version`` (bumped whenever what it
judges changes, so a report says which rules applied), a ``title`` and a ``run(ctx)`` that returns
a :class:`CheckOutcome`. Checks never write to the database and never raise for a problem in the
package: they report findings. An exception out of ``run`` is Plaza's fault and ends the check as
``errored`` (the run goes to staff review rather than rejecting the publisher).

The checks a run executes, in order, are listed by dotted path in
``settings.PLAZA_CERTIFICATION_CHECKS`` and loaded lazily (docs/certification.md lists them all
with their rule ids and how to fix each finding).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from apps.extensions.models import ExtensionVersion
    from apps.extensions.packages import Package

ERROR = "error"  # the version cannot be certified while this stands
WARNING = "warning"  # staff look at it before the version is certified
INFO = "info"  # recorded for the publisher, changes nothing
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Finding:
    """One problem (or note) a check found. ``rule`` is ``<check id>.<name>``, documented in
    docs/certification.md; ``location`` says where (a JSON path, a file, ``file: import x.y``)."""

    rule: str
    severity: str
    message: str
    location: str = ""
    hint: str = ""

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message[:1000],
            "location": self.location[:500],
            "hint": self.hint[:1000],
        }


@dataclass
class CheckOutcome:
    """What a check reports: a one-line human summary, its findings, and measurements (numbers a
    publisher may want to see, e.g. fuel used per hook)."""

    summary: str
    findings: list[Finding] = field(default_factory=list)
    measurements: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        severities = {f.severity for f in self.findings}
        if ERROR in severities:
            return "failed"
        if WARNING in severities:
            return "warned"
        return "passed"


class CheckContext:
    """What a check may look at: the version, its manifest, its package (read once, lazily, and
    shared by all checks of one run in this process) and the publisher org."""

    def __init__(self, *, version: ExtensionVersion, run_id: str = ""):
        self.version = version
        self.manifest: dict = version.manifest or {}
        self.run_id = run_id

    @property
    def org(self):
        return self.version.extension.org

    @functools.cached_property
    def package_bytes(self) -> bytes:
        """The stored artifact (raises if it is gone: that is Plaza's fault, not the publisher's)."""
        from apps.extensions.storage import read_artifact

        return read_artifact(self.version.package_sha256)

    @functools.cached_property
    def package(self) -> Package:
        """The package, read with the platform's limits (raises ValidationFailed when it breaks them:
        the ``package`` check reports that; other checks run only on a readable package)."""
        from apps.extensions.packages import PackageLimits, read_package

        return read_package(self.package_bytes, PackageLimits(max_bytes=settings.PLAZA_PACKAGE_MAX_BYTES))

    def module_bytes(self, name: str) -> bytes | None:
        """The bytes of the module the manifest names ``name`` (None if undeclared or absent)."""
        path = (self.manifest.get("modules") or {}).get(name)
        if not path:
            return None
        try:
            return self.package.read(path)
        except KeyError:
            return None

    def module_digest(self, name: str) -> str:
        data = self.module_bytes(name)
        return hashlib.sha256(data).hexdigest() if data is not None else ""


class Check:
    """Base class of a certification check. Subclasses set ``id``, ``version``, ``title`` and
    implement ``run``. ``required = False`` turns the check's failure into a staff review instead of a
    rejection (for heuristics that can be wrong)."""

    id: ClassVar[str]
    version: ClassVar[int] = 1
    title: ClassVar[str]
    required: ClassVar[bool] = True

    def run(self, ctx: CheckContext) -> CheckOutcome:  # pragma: no cover - interface
        raise NotImplementedError


@functools.cache
def _load(path: str) -> Check:
    cls = import_string(path)
    check = cls()
    if not getattr(check, "id", "") or not getattr(check, "title", ""):
        raise TypeError(f"{path} is not a certification check (it needs an id and a title)")
    return check


def registered_checks() -> list[Check]:
    """The checks a new run executes, in order (``settings.PLAZA_CERTIFICATION_CHECKS``)."""
    checks = [_load(path) for path in settings.PLAZA_CERTIFICATION_CHECKS]
    ids = [c.id for c in checks]
    if len(set(ids)) != len(ids):
        raise TypeError(f"two certification checks share an id: {ids}")
    return checks


def check_by_id(check_id: str) -> Check | None:
    return next((c for c in registered_checks() if c.id == check_id), None)
