"""Certification in the portal: the publisher's run page (live while checks run, then the report),
and the platform staff's review console (queue, full report, approve/reject, re-run).

Thin: reads go through ``apps.certification.selectors``, writes through ``services``."""

from __future__ import annotations

import functools

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render

from apps.certification import services
from apps.certification.checks import ERROR, INFO, WARNING
from apps.certification.models import IN_FLIGHT, CertificationRun, RunStatus
from apps.certification.selectors import get_run_for_principal, get_staff_run, staff_runs
from apps.core.errors import Conflict, NotFound, PermissionDenied, Unauthenticated, ValidationFailed
from apps.extensions.models import VersionStatus
from apps.orgs.portal import form_error, org_context, org_page, page_of
from apps.orgs.selectors import get_platform_org_for_principal, principal_from_request

SEVERITY_GROUPS = ((ERROR, "Errors"), (WARNING, "Warnings"), (INFO, "Notes"))
RERUNNABLE = (VersionStatus.CERTIFIED, VersionStatus.REJECTED, VersionStatus.CERTIFYING)


def run_context(run: CertificationRun) -> dict:
    """What the shared run body (``certification/_run_live.html``) shows: whether it still polls,
    and the findings of every check grouped by severity (errors, warnings, notes)."""
    grouped: dict[str, list[dict]] = {severity: [] for severity, _ in SEVERITY_GROUPS}
    checks = list(run.checks.all())  # prefetched in position order by the selector
    for check in checks:
        for finding in check.findings or ():
            severity = finding.get("severity", INFO)
            grouped.setdefault(severity, []).append({**finding, "check": check.title, "check_id": check.check_id})
    report = [
        {"severity": severity, "label": label, "findings": grouped[severity]}
        for severity, label in SEVERITY_GROUPS
        if grouped[severity]
    ]
    # A run in review waits for a person, not for a worker: polling it would never end.
    return {"run": run, "checks": checks, "report": report, "live": run.status in IN_FLIGHT}


# --- publishers ----------------------------------------------------------------------------------
@org_page("extension.view")
def run_detail(request, org, principal, run_id: str):
    """A certification run of one of the org's versions. htmx polls the ``live`` partial while
    checks run; without JavaScript a ``<noscript>`` refresh does the same."""
    run = get_run_for_principal(principal, org, run_id, "extension.view")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    ctx = org_context(request, org, principal, extension=run.version.extension, version=run.version, **run_context(run))
    template = "certification/run.html#live" if request.htmx else "certification/run.html"
    return render(request, template, ctx)


# --- platform staff ------------------------------------------------------------------------------
def staff_page(action: str):
    """Decorate a view ``(request, principal, ...)`` for platform staff allowed to do ``action``
    (others get 403: the console is a platform-wide page, not a tenant's resource)."""

    def decorator(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            principal = principal_from_request(request)
            try:
                get_platform_org_for_principal(principal, action)
                return view(request, principal, *args, **kwargs)
            except NotFound as exc:
                return render(request, "errors/404.html", {"message": exc.message}, status=404)
            except PermissionDenied as exc:
                return render(request, "errors/403.html", {"message": exc.message, "code": exc.code}, status=403)
            except Unauthenticated:
                logout(request)  # as org_page: avoid a redirect loop through the sign-in page
                return redirect_to_login(request.get_full_path())

        return wrapper

    return decorator


def _clean(request, name: str, default: str = "", limit: int = 200) -> str:
    # PostgreSQL refuses NUL in a query parameter (a 500)
    return request.GET.get(name, default).replace("\x00", "").strip()[:limit]


@staff_page("certification.view")
def staff_queue(request, principal):
    """Every org's runs, by default the review queue; htmx requests get only the ``rows`` partial."""
    filters = {
        "status": _clean(request, "status", RunStatus.REVIEW),
        "org_id": _clean(request, "org_id", limit=40),
        "check_id": _clean(request, "check_id", limit=40),
        "q": _clean(request, "q"),
    }
    error = None
    if filters["status"] and filters["status"] not in RunStatus.values:
        error = form_error(ValidationFailed("Choose a status from the list.", param="status"), ("status",))
        filters["status"] = ""
    rows, next_page = page_of(request, staff_runs(**filters))
    for run in rows:
        run.open_checks = [c for c in run.checks.all() if c.status != "passed"]
    ctx = {
        "runs": rows,
        "next_page": next_page,
        "filters": filters,
        "statuses": RunStatus.choices,
        "error": error,
    }
    template = "certification/staff_queue.html#rows" if request.htmx else "certification/staff_queue.html"
    return render(request, template, ctx, status=400 if error else 200)


@staff_page("certification.view")
def staff_run_detail(request, principal, run_id: str):
    """One run's full report, with the decision form (runs in review) and a re-run button."""
    run = get_staff_run(run_id)
    error, op = None, request.POST.get("op", "")
    if request.method == "POST":
        try:
            get_platform_org_for_principal(principal, "certification.review")
            reason = request.POST.get("reason", "")[:2000]
            if op in ("approve", "reject"):
                decided = services.run_review(principal=principal, run=run, approve=op == "approve", reason=reason)
                messages.success(request, f"Run {decided.number} {decided.status}; the publisher is told why.")
                return redirect("staff_certification_run", run_id=run.pk)
            if op == "rerun":
                new = services.run_rerun(principal=principal, version=run.version, reason=reason.strip()[:500])
                messages.success(request, f"Certification started again: run {new.number}.")
                return redirect("staff_certification_run", run_id=new.pk)
            raise ValidationFailed("Unknown action.")
        except (ValidationFailed, Conflict) as exc:
            error = form_error(exc, ("reason",))
            error["op"] = op
            run = get_staff_run(run_id)  # a failed decision may have been raced by another one
    ctx = {
        **run_context(run),
        "org": run.org,
        "version": run.version,
        "extension": run.version.extension,
        "can_rerun": run.version.status in RERUNNABLE,
        "in_review": run.status == RunStatus.REVIEW,
        "error": error,
        "reason": request.POST.get("reason", "") if error else "",
    }
    template = "certification/staff_run.html#live" if request.htmx else "certification/staff_run.html"
    return render(request, template, ctx, status=400 if error else 200)
