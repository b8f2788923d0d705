"""The SBOM at the package root: the subset of CycloneDX we rely on, checked by hand, and its components."""

from __future__ import annotations

from dataclasses import dataclass

from apps.core.errors import ValidationFailed
from apps.extensions.packages._refusals import _refuse

SBOM_PATH = "sbom.cdx.json"
SBOM_SPEC_VERSIONS = ("1.4", "1.5", "1.6")
MINIMAL_SBOM = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": []}


@dataclass(frozen=True)
class SbomComponent:
    name: str
    version: str
    purl: str
    licenses: tuple[str, ...]  # SPDX ids, license names or expressions, as given


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _license(choice: dict) -> str:
    if "license" not in choice:
        return choice["expression"]
    return choice["license"]["id"] if _text(choice["license"].get("id")) else choice["license"]["name"]


def _validate_sbom(sbom: dict) -> None:
    """The subset of CycloneDX we rely on, checked by hand so the message names the exact JSON path."""

    def invalid(where: str, what: str) -> ValidationFailed:
        return _refuse("package_sbom_invalid", f"{SBOM_PATH}: {where} {what}.")

    if sbom.get("bomFormat") != "CycloneDX":
        raise invalid("bomFormat", 'must be "CycloneDX"')
    if not isinstance(sbom.get("specVersion"), str) or sbom["specVersion"] not in SBOM_SPEC_VERSIONS:
        raise invalid("specVersion", f"must be one of {', '.join(SBOM_SPEC_VERSIONS)}")
    components = sbom.get("components", [])
    if not isinstance(components, list):
        raise invalid("components", "must be a list")
    for i, component in enumerate(components):
        where = f"components[{i}]"
        if not isinstance(component, dict):
            raise invalid(where, "must be an object")
        if not _text(component.get("name")):
            raise invalid(f"{where}.name", "must be a non-empty string")
        for key in ("version", "purl"):
            if key in component and not isinstance(component[key], str):
                raise invalid(f"{where}.{key}", "must be a string")
        licenses = component.get("licenses", [])
        if not isinstance(licenses, list):
            raise invalid(f"{where}.licenses", "must be a list")
        for j, choice in enumerate(licenses):
            license_ = choice.get("license") if isinstance(choice, dict) else None
            if isinstance(license_, dict) and (_text(license_.get("id")) or _text(license_.get("name"))):
                continue
            if isinstance(choice, dict) and "license" not in choice and _text(choice.get("expression")):
                continue
            raise invalid(f"{where}.licenses[{j}]", 'must be {"license": {"id"|"name": ...}} or {"expression": ...}')
