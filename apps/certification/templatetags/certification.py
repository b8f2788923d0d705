"""Certification's part of pages owned by lower layers (the extension registry does not import
certification; its version page loads this tag instead)."""

from __future__ import annotations

from django import template

from apps.certification.selectors import runs_of_version

register = template.Library()

MAX_RUNS = 50


@register.inclusion_tag("certification/_version_runs.html")
def version_certification_runs(org, version) -> dict:
    """The certification runs of ``version`` (already resolved for the viewer), newest first."""
    runs = list(runs_of_version(version).order_by("-created_at", "-id")[:MAX_RUNS])
    return {"org": org, "version": version, "runs": runs}
