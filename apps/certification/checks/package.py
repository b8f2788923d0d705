"""The stored package against today's package limits (zip hygiene, sizes, the SBOM's shape)."""

from __future__ import annotations

from django.conf import settings

from apps.certification.checks import ERROR, Check, CheckContext, CheckOutcome, Finding
from apps.core.errors import ValidationFailed
from apps.extensions.packages import PackageLimits, read_package


class PackageCheck(Check):
    id = "package"
    version = 1
    title = "Package hygiene"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        limits = PackageLimits(max_bytes=settings.PLAZA_PACKAGE_MAX_BYTES)
        data = ctx.package_bytes
        measurements = {"package_bytes": len(data), "limit_bytes": limits.max_bytes}
        try:
            package = read_package(data, limits)
        except ValidationFailed as exc:
            finding = Finding(
                f"package.{exc.code.removeprefix('package_')}",
                ERROR,
                exc.message,
                "package",
                "Rebuild the package with the plaza CLI (`plaza build`), which writes a clean zip; "
                "docs/manifest.md lists the package limits.",
            )
            return CheckOutcome("The package breaks the package rules.", [finding], measurements)
        unpacked = sum(package.files.values())
        measurements.update({"files": len(package.files), "unpacked_bytes": unpacked})
        return CheckOutcome(
            f"{len(package.files)} files, {unpacked} bytes unpacked, within every limit.", [], measurements
        )
