"""The manifest again, on the stored package: schema and semantics (apps/extensions/manifest.py),
the version ordering, and the platform API range against the versions this deployment serves.

Upload already refused invalid manifests; certification checks again because the catalog, the
served API versions and the other versions of the extension may have changed since."""

from __future__ import annotations

from django.conf import settings

from apps.certification.checks import ERROR, Check, CheckContext, CheckOutcome, Finding
from apps.events.models import EventType
from apps.extensions.manifest import parse_version, validate_manifest

# How to fix each manifest rule; the message already says what is wrong.
_HINTS = {
    "required": "Add the field; docs/manifest.md lists every required field.",
    "additionalProperties": "Remove the field or check its spelling against docs/manifest.md.",
    "platform_unsupported": "Set platform.api to a range that includes an API version Plaza serves, e.g. '^1.0'.",
    "semver_range": "Write platform.api as an npm-style range such as '^1.0' or '>=1.0 <2'.",
    "scope_unknown": "Use a scope from the vocabulary in docs/manifest.md (e.g. kv:read, events:read:<type>).",
    "event_type_unknown": "Subscribe only to event types listed in the event catalog (/events/).",
}


class ManifestCheck(Check):
    id = "manifest"
    version = 1
    title = "Manifest, version order and platform range"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        findings: list[Finding] = []
        package = ctx.package
        if package.manifest != ctx.manifest:
            findings.append(
                Finding(
                    "manifest.mismatch",
                    ERROR,
                    "The manifest stored with this version differs from the package's extension.json.",
                    "extension.json",
                    "Upload the package again; if this repeats, contact platform support.",
                )
            )
        errors = validate_manifest(
            package.manifest,
            files=set(package.files),
            supported_api_versions=settings.PLAZA_API_VERSIONS,
            known_event_types=set(EventType.objects.values_list("name", flat=True)),
        )
        for error in errors:
            findings.append(
                Finding(
                    f"manifest.{error.rule}",
                    ERROR,
                    error.message,
                    error.path,
                    _HINTS.get(error.rule, "Correct the field as the message says; docs/manifest.md describes it."),
                )
            )
        version = ctx.version
        if package.manifest.get("id") != version.extension.key:
            findings.append(
                Finding(
                    "manifest.id_mismatch",
                    ERROR,
                    f"The manifest's id is not this extension's id '{version.extension.key}'.",
                    "$.id",
                    "Set id to the extension's id; ids never change.",
                )
            )
        number = parse_version(version.version)
        higher = [
            v
            for v in version.extension.versions.exclude(pk=version.pk).values_list("version", flat=True)
            if parse_version(v) >= number
        ]
        if higher and version.created_at is not None:
            # Only versions uploaded before this one count: a later, higher upload is normal.
            earlier = version.extension.versions.filter(created_at__lt=version.created_at, version__in=higher)
            for other in earlier.values_list("version", flat=True):
                findings.append(
                    Finding(
                        "manifest.semver_not_greater",
                        ERROR,
                        f"Version {number} is not greater than {other}, uploaded before it.",
                        "$.version",
                        "Bump the version above every earlier one and upload again.",
                    )
                )
        api = (package.manifest.get("platform") or {}).get("api", "")
        summary = (
            f"{len(findings)} problem{'s' if len(findings) != 1 else ''} in the manifest."
            if findings
            else f"Valid manifest v1; version {number}; platform.api {api!r} matches "
            f"{', '.join(settings.PLAZA_API_VERSIONS)}."
        )
        return CheckOutcome(summary, findings, {"api_range": api, "version": str(number)})
