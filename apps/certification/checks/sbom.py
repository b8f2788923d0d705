"""The ``sbom`` check: the package's dependencies against the SBOM policy (``sbom_policy.py``)."""

from __future__ import annotations

from django.db.models import F, Q

from apps.certification.checks import Check, CheckContext, CheckOutcome
from apps.certification.models import SbomEffect, SbomRule
from apps.certification.sbom_policy import PolicyRule, evaluate


class SbomPolicyCheck(Check):
    id = "sbom"
    version = 2
    title = "Dependencies (SBOM policy)"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        # Platform rules first, so a finding names the platform's rule when both would. An org may
        # only add denials: allowing is the platform's policy (an org's "allow *" would switch it off).
        own_denials = Q(org=ctx.org, effect=SbomEffect.DENY)
        rows = SbomRule.objects.filter(Q(org=None) | own_denials).order_by(F("org").asc(nulls_first=True), "id")
        rules = [PolicyRule.from_model(row) for row in rows]
        report = evaluate(ctx.package.components(), rules)
        m = report.measurements
        if not m["components"]:
            summary = "The SBOM lists no components."
        else:
            problems = [
                f"{m[key]} {label}"
                for key, label in (
                    ("denied", "denied"),
                    ("license_not_allowed", "with a licence not allowed"),
                    ("license_unknown", "with an unknown licence"),
                )
                if m[key]
            ]
            of = f"{m['components']} component{'s' if m['components'] != 1 else ''}"
            summary = f"{of}: {', '.join(problems)}." if problems else f"{of}, all within the SBOM policy."
        return CheckOutcome(summary, report.findings, m)
