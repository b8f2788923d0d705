"""Reads of certification. Tenant scoping and authorisation happen here and only here."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from apps.certification.models import CertificationRun, CheckResult, SbomRule
from apps.core.errors import NotFound
from apps.core.ids import is_valid_id
from apps.extensions.models import ExtensionVersion
from apps.orgs.models import Organization
from apps.orgs.policy import Principal, authorize


def _with_checks(qs: QuerySet[CertificationRun], *, full: bool = True) -> QuerySet[CertificationRun]:
    """Runs with their checks in order; lists leave findings and measurements (which can be large)
    in the database."""
    checks = CheckResult.objects.order_by("position")
    if not full:
        checks = checks.defer("findings", "measurements")
    return qs.select_related("version__extension", "reviewed_by").prefetch_related(Prefetch("checks", queryset=checks))


def runs_of_version(version: ExtensionVersion) -> QuerySet[CertificationRun]:
    return _with_checks(CertificationRun.objects.filter(version=version), full=False)


def runs_of_org(org: Organization, *, full: bool = False) -> QuerySet[CertificationRun]:
    return _with_checks(CertificationRun.objects.filter(org=org), full=full)


def get_run_for_principal(principal: Principal, org: Organization, run_id: str, action: str) -> CertificationRun:
    """A run of one of ``org``'s versions (``org`` already resolved for this principal)."""
    if not is_valid_id(run_id, "crt"):
        raise NotFound("No such certification run.")
    run = runs_of_org(org, full=True).filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such certification run.")
    run.org = org
    authorize(principal, action, run)
    return run


def staff_runs(*, status: str = "", org_id: str = "", check_id: str = "", q: str = "") -> QuerySet[CertificationRun]:
    """Every org's runs for platform staff (the caller checked staff rights), filtered."""
    qs = _with_checks(CertificationRun.objects.select_related("org"), full=False)
    if status:
        qs = qs.filter(status=status)
    if org_id:
        qs = qs.filter(org_id=org_id)
    if check_id:
        # Runs where that check did not simply pass: what a reviewer filters by.
        flagged = CheckResult.objects.filter(check_id=check_id).exclude(status="passed").values("run_id")
        qs = qs.filter(pk__in=flagged)
    if q:
        qs = qs.filter(Q(version__extension__key__icontains=q) | Q(version__version=q))
    return qs


def get_staff_run(run_id: str) -> CertificationRun:
    if not is_valid_id(run_id, "crt"):
        raise NotFound("No such certification run.")
    run = _with_checks(CertificationRun.objects.select_related("org")).filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such certification run.")
    return run


def sbom_rules_for(org: Organization | None) -> QuerySet[SbomRule]:
    """The platform's rules (``org`` None) or one org's own additions."""
    return SbomRule.objects.filter(org=org)


def get_sbom_rule(org: Organization | None, rule_id: str) -> SbomRule:
    if not is_valid_id(rule_id, "sbr"):
        raise NotFound("No such SBOM rule.")
    rule = sbom_rules_for(org).filter(pk=rule_id).first()
    if rule is None:
        raise NotFound("No such SBOM rule.")
    return rule
