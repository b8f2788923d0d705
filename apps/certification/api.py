"""Certification over the API: publishers read their runs (the CLI polls one until it is finished);
platform staff work the review queue, re-run certification and edit the SBOM policy."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.certification import services
from apps.certification.models import RunStatus
from apps.certification.schemas import (
    RerunIn,
    ReviewIn,
    RunOut,
    RunSummaryOut,
    SbomRuleIn,
    SbomRuleOut,
    StaffRunOut,
    StaffRunSummaryOut,
)
from apps.certification.selectors import (
    get_run_for_principal,
    get_sbom_rule,
    get_staff_run,
    runs_of_org,
    runs_of_version,
    sbom_rules_for,
    staff_runs,
)
from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import NotFound, ValidationFailed
from apps.core.ids import is_valid_id
from apps.extensions.models import ExtensionVersion
from apps.extensions.selectors import get_extension_for_principal, get_version_for_principal
from apps.orgs.selectors import get_org_for_principal, get_platform_org_for_principal

router = Router(tags=["certification"])


# --- publishers ----------------------------------------------------------------------------------
@router.get(
    "/orgs/{org_id}/extensions/{extension_id}/versions/{version_id}/certification-runs",
    response=Page[RunSummaryOut],
    summary="List a version's certification runs, newest first",
)
def list_version_runs(
    request: HttpRequest,
    org_id: str,
    extension_id: str,
    version_id: str,
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "extension.view")
    version = get_version_for_principal(request.auth, ext, version_id, "extension.view")
    rows, next_cursor = paginate(runs_of_version(version), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.get(
    "/orgs/{org_id}/certification-runs",
    response=Page[RunSummaryOut],
    summary="List the organisation's certification runs, newest first",
)
def list_org_runs(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    rows, next_cursor = paginate(runs_of_org(org), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.get(
    "/orgs/{org_id}/certification-runs/{run_id}",
    response=RunOut,
    summary="Get a certification run with every check and finding (poll until `finished`)",
)
def get_run(request: HttpRequest, org_id: str, run_id: str):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    return get_run_for_principal(request.auth, org, run_id, "extension.view")


@router.get("/orgs/{org_id}/sbom-rules", response=Page[SbomRuleOut], summary="List the organisation's SBOM rules")
def list_org_sbom_rules(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "sbom_rule.view")
    rows, next_cursor = paginate(sbom_rules_for(org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.post(
    "/orgs/{org_id}/sbom-rules",
    response={201: SbomRuleOut},
    summary="Add an SBOM rule for the organisation's own versions (on top of the platform's)",
)
def create_org_sbom_rule(request: HttpRequest, org_id: str, payload: SbomRuleIn):
    org = get_org_for_principal(request.auth, org_id, "sbom_rule.manage")
    return Status(201, services.sbom_rule_create(principal=request.auth, org=org, **payload.dict()))


@router.delete("/orgs/{org_id}/sbom-rules/{rule_id}", response={204: None}, summary="Delete an SBOM rule")
def delete_org_sbom_rule(request: HttpRequest, org_id: str, rule_id: str):
    org = get_org_for_principal(request.auth, org_id, "sbom_rule.manage")
    services.sbom_rule_delete(principal=request.auth, rule=get_sbom_rule(org, rule_id))
    return Status(204, None)


# --- platform staff ------------------------------------------------------------------------------
@router.get(
    "/staff/certification-runs",
    response=Page[StaffRunSummaryOut],
    summary="Every certification run, filtered (platform staff); status=review is the review queue",
)
def staff_list_runs(
    request: HttpRequest,
    status: str = Query(
        "", description="queued | running | review | passed | failed | approved | rejected | superseded"
    ),
    org_id: str = Query("", description="Only this publisher organisation's runs."),
    check_id: str = Query("", description="Only runs where this check did not pass."),
    q: str = Query("", max_length=200, description="Extension id contains, or exact version."),
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    get_platform_org_for_principal(request.auth, "certification.view")
    if status and status not in RunStatus.values:
        raise ValidationFailed(f"The status is one of {', '.join(RunStatus.values)}.", param="status")
    rows, next_cursor = paginate(
        staff_runs(status=status, org_id=org_id, check_id=check_id, q=q), limit=limit, cursor=cursor
    )
    return {"data": rows, "next_cursor": next_cursor}


@router.get("/staff/certification-runs/{run_id}", response=StaffRunOut, summary="Get any certification run (staff)")
def staff_get_run(request: HttpRequest, run_id: str):
    get_platform_org_for_principal(request.auth, "certification.view")
    return get_staff_run(run_id)


@router.post(
    "/staff/certification-runs/{run_id}/decision",
    response=StaffRunOut,
    summary="Approve or reject a run waiting for review, with a reason (staff)",
)
def staff_decide_run(request: HttpRequest, run_id: str, payload: ReviewIn):
    get_platform_org_for_principal(request.auth, "certification.review")
    if payload.decision not in ("approve", "reject"):
        raise ValidationFailed("The decision is approve or reject.", param="decision")
    run = services.run_review(
        principal=request.auth, run=get_staff_run(run_id), approve=payload.decision == "approve", reason=payload.reason
    )
    return get_staff_run(run.pk)


@router.post(
    "/staff/extension-versions/{version_id}/certification-runs",
    response={201: StaffRunOut},
    summary="Certify a version again with today's checks: a new run (staff)",
)
def staff_rerun(request: HttpRequest, version_id: str, payload: RerunIn):
    get_platform_org_for_principal(request.auth, "certification.review")
    version = None
    if is_valid_id(version_id, "ver"):
        version = ExtensionVersion.objects.select_related("extension").filter(pk=version_id).first()
    if version is None:
        raise NotFound("No such extension version.")
    run = services.run_rerun(principal=request.auth, version=version, reason=payload.reason)
    return Status(201, get_staff_run(run.pk))


@router.get("/staff/sbom-rules", response=Page[SbomRuleOut], summary="List the platform's SBOM policy (staff)")
def staff_list_sbom_rules(request: HttpRequest, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    get_platform_org_for_principal(request.auth, "certification.view")
    rows, next_cursor = paginate(sbom_rules_for(None), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/staff/sbom-rules", response={201: SbomRuleOut}, summary="Add a platform SBOM rule (staff)")
def staff_create_sbom_rule(request: HttpRequest, payload: SbomRuleIn):
    get_platform_org_for_principal(request.auth, "certification.review")
    return Status(201, services.sbom_rule_create(principal=request.auth, org=None, **payload.dict()))


@router.delete(
    "/staff/sbom-rules/{platform_rule_id}", response={204: None}, summary="Delete a platform SBOM rule (staff)"
)
def staff_delete_sbom_rule(request: HttpRequest, platform_rule_id: str):
    get_platform_org_for_principal(request.auth, "certification.review")
    services.sbom_rule_delete(principal=request.auth, rule=get_sbom_rule(None, platform_rule_id))
    return Status(204, None)
