"""Every write of certification: creating runs, advancing them check by check under leases,
finishing them, staff review and re-runs. One function per use case, transactional, audited.

How a run survives a dead worker (docs/certification.md, "Durability"):
1. ``run_create`` writes the run and one pending row per check in the transaction that moves the
   version to ``certifying``; only then is a task queued ("go advance run X").
2. ``run_advance`` claims the first unfinished check with a conditional UPDATE that sets a lease
   (a random token and an expiry). Checks run strictly in order, one at a time per run.
3. The result is written only if the lease token still matches, so a worker that lost its lease
   (it was presumed dead) cannot overwrite the result of the one that took over.
4. A worker that dies leaves a lease that expires. The periodic ``run_sweep`` (and a redelivered
   task: tasks are acked late and rejected when their worker is lost) calls ``run_advance``
   again, which takes the expired check over and carries on. Finished checks are never re-run.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, F, Max, Q

from apps.audit.services import audit_record
from apps.certification import checks as registry
from apps.certification.models import (
    CHECK_DONE,
    FINISHED,
    IN_FLIGHT,
    MAX_CHECK_ATTEMPTS,
    CertificationRun,
    CheckResult,
    CheckStatus,
    RunStatus,
    SbomEffect,
    SbomRule,
)
from apps.certification.signals import run_finished
from apps.core import clock
from apps.core.errors import Conflict, PlazaError, ValidationFailed
from apps.extensions.manifest import parse_range
from apps.extensions.models import ExtensionVersion, VersionStatus
from apps.extensions.services import version_transition
from apps.orgs.models import Organization

log = logging.getLogger(__name__)


def _actor(principal):
    return principal.user if principal is not None and principal.kind == "user" else None


def _send(run_id: str) -> None:
    from apps.certification.tasks import advance_run

    CertificationRun.objects.filter(pk=run_id).update(enqueued_at=clock.now())
    advance_run.delay(run_id)


def _enqueue(run_id: str) -> None:
    transaction.on_commit(lambda: _send(run_id))


# --- creating runs -------------------------------------------------------------------------------
def run_create(*, version: ExtensionVersion, trigger: str = "submit", principal=None) -> CertificationRun:
    """Start certifying ``version`` (submitted, or certified/rejected/certifying for a staff re-run):
    the version becomes ``certifying`` and a run with one pending row per registered check is
    written in the same transaction; the work is queued after commit."""
    checks = registry.registered_checks()
    with transaction.atomic():
        locked = ExtensionVersion.objects.select_for_update(of=("self",)).select_related("extension").get(pk=version.pk)
        if locked.status != VersionStatus.CERTIFYING:
            version_transition(version=locked, to=VersionStatus.CERTIFYING)
        number = (locked.certification_runs.aggregate(n=Max("number"))["n"] or 0) + 1
        run = CertificationRun.objects.create(
            version=locked,
            org_id=locked.extension.org_id,
            number=number,
            trigger=trigger,
            requested_by=_actor(principal),
        )
        CheckResult.objects.bulk_create(
            CheckResult(
                run=run,
                position=i,
                check_id=check.id,
                check_version=check.version,
                title=check.title,
                required=check.required,
            )
            for i, check in enumerate(checks)
        )
        audit_record(
            action="certification_run.created",
            org_id=run.org_id,
            target=run,
            changes={"version": locked.pk, "number": number, "trigger": trigger, "checks": [c.id for c in checks]},
        )
        _enqueue(run.pk)
    return run


def run_start_for_submitted(*, version: ExtensionVersion) -> CertificationRun | None:
    """The run of a version that was just submitted (None if it already has one or moved on)."""
    with transaction.atomic():
        locked = ExtensionVersion.objects.select_for_update(of=("self",)).get(pk=version.pk)
        if locked.status != VersionStatus.SUBMITTED:
            return None
        return run_create(version=locked, trigger="submit")


# --- advancing runs ------------------------------------------------------------------------------
def _claim(run: CertificationRun) -> tuple[CheckResult | None, str]:
    """The next check of ``run`` under a fresh lease: (check, token); (None, "busy") while another
    worker holds a live lease; (None, "done") when every check is finished."""
    now = clock.now()
    current = run.checks.exclude(status__in=CHECK_DONE).order_by("position").first()
    if current is None:
        return None, "done"
    if current.status == CheckStatus.RUNNING and current.lease_expires_at and current.lease_expires_at > now:
        return None, "busy"
    if current.attempts >= MAX_CHECK_ATTEMPTS:
        # Every worker that started it died or was stopped (a package that crashes or exhausts the
        # worker): stop trying, and let staff look at it.
        CheckResult.objects.filter(pk=current.pk, status=current.status, attempts=current.attempts).update(
            status=CheckStatus.ERRORED,
            summary=f"The check did not finish in {current.attempts} attempts: each worker running it stopped.",
            finished_at=now,
            lease_token="",
            lease_expires_at=None,
        )
        log.error(
            "certification run %s: check %s gave up after %s attempts", run.pk, current.check_id, current.attempts
        )
        return _claim(run)
    token = secrets.token_hex(16)
    lease = now + dt.timedelta(seconds=settings.PLAZA_CERTIFICATION_LEASE_SECONDS)
    claimable = Q(status=CheckStatus.PENDING) | Q(status=CheckStatus.RUNNING, lease_expires_at__lte=now)
    taken = CheckResult.objects.filter(claimable, pk=current.pk).update(
        status=CheckStatus.RUNNING,
        lease_token=token,
        lease_expires_at=lease,
        started_at=now,
        attempts=F("attempts") + 1,
    )
    if not taken:
        return None, "busy"
    if current.attempts:
        log.warning("certification run %s: taking over check %s after an expired lease", run.pk, current.check_id)
    current.refresh_from_db()
    return current, token


def _execute(check_row: CheckResult, ctx: registry.CheckContext) -> tuple[str, registry.CheckOutcome]:
    check = registry.check_by_id(check_row.check_id)
    if check is None:
        return CheckStatus.ERRORED, registry.CheckOutcome(
            f"The check '{check_row.check_id}' is no longer installed on this server; staff can re-run certification."
        )
    try:
        outcome = check.run(ctx)
    except ValidationFailed as exc:  # the package itself no longer reads: the package check says why
        finding = registry.Finding(
            f"{check.id}.package_unreadable",
            registry.ERROR,
            f"The package could not be read: {exc.message}",
            "package",
            "See the package check's findings.",
        )
        return CheckStatus.FAILED, registry.CheckOutcome("Not run: the package could not be read.", [finding])
    except Exception as exc:  # noqa: BLE001 - a bug or outage on Plaza's side must not reject the publisher
        log.exception("certification check %s failed on run %s", check.id, check_row.run_id)
        return CheckStatus.ERRORED, registry.CheckOutcome(
            f"Plaza could not complete this check ({type(exc).__name__}); staff will look at it."
        )
    return outcome.status, outcome


def _complete(check_row: CheckResult, token: str, status: str, outcome, started: float) -> bool:
    """Write the result if ``token`` still holds the lease (False: another worker took over)."""
    return bool(
        CheckResult.objects.filter(
            pk=check_row.pk, status=CheckStatus.RUNNING, lease_token=token, run__status__in=IN_FLIGHT
        ).update(
            status=status,
            summary=outcome.summary[:500],
            findings=[f.as_dict() for f in outcome.findings][:500],
            measurements=outcome.measurements,
            finished_at=clock.now(),
            duration_ms=min(int((time.perf_counter() - started) * 1000), 2**31 - 1),
            lease_token="",
            lease_expires_at=None,
        )
    )


def run_advance(*, run_id: str) -> str:
    """Run the remaining checks of a run in order, then finish it. Safe to call any number of
    times, concurrently, on any worker: returns ``finished``, ``busy`` (another worker holds the
    current check), ``stopped`` (the run was finished or superseded meanwhile) or ``missing``."""
    run = (
        CertificationRun.objects.select_related("version__extension", "version__signing_key").filter(pk=run_id).first()
    )
    if run is None:
        return "missing"
    ctx = registry.CheckContext(version=run.version, run_id=run.pk)
    while True:
        run.refresh_from_db(fields=["status", "started_at"])
        if run.status not in IN_FLIGHT:
            return "stopped"
        check_row, token = _claim(run)
        if check_row is None:
            if token == "busy":
                return "busy"
            run_finish(run=run)
            return "finished"
        if run.status == RunStatus.QUEUED:
            CertificationRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
                status=RunStatus.RUNNING, started_at=clock.now()
            )
        started = time.perf_counter()
        status, outcome = _execute(check_row, ctx)
        if not _complete(check_row, token, status, outcome, started):
            log.warning("certification run %s: lost the lease of check %s; result dropped", run.pk, check_row.check_id)


def _totals(run: CertificationRun) -> dict:
    by_status = dict(run.checks.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    severities: dict[str, int] = {}
    for findings in run.checks.values_list("findings", flat=True):
        for finding in findings or ():
            severities[finding.get("severity", "")] = severities.get(finding.get("severity", ""), 0) + 1
    return {"checks": by_status, "findings": severities}


def run_finish(*, run: CertificationRun) -> CertificationRun:
    """Decide the outcome once every check is done: a failed required check rejects the version;
    warnings, errored checks or a failed heuristic send it to staff review; otherwise it is
    certified (and countersigned by ``version_transition``)."""
    with transaction.atomic():
        run = CertificationRun.objects.select_for_update().get(pk=run.pk)
        if run.status not in IN_FLIGHT or run.checks.exclude(status__in=CHECK_DONE).exists():
            return run
        if ExtensionVersion.objects.filter(pk=run.version_id).values_list("status", flat=True).first() != (
            VersionStatus.CERTIFYING
        ):
            # The version moved on without this run (e.g. staff yanked it): the run decides nothing.
            run.status, run.finished_at = RunStatus.SUPERSEDED, clock.now()
            run.save(update_fields=["status", "finished_at"])
            audit_record(action="certification_run.superseded", org_id=run.org_id, target=run)
            return run
        rows = list(run.checks.only("check_id", "status", "required", "summary"))
        failed_required = [c for c in rows if c.status == CheckStatus.FAILED and c.required]
        needs_review = [c for c in rows if c.status in (CheckStatus.WARNED, CheckStatus.ERRORED, CheckStatus.FAILED)]
        if failed_required:
            run.status = RunStatus.FAILED
            reason = "Certification failed: " + "; ".join(f"{c.check_id}: {c.summary}" for c in failed_required)
            version_transition(version=run.version, to=VersionStatus.REJECTED, reason=reason)
        elif needs_review:
            run.status = RunStatus.REVIEW
        else:
            run.status = _certify_or_reject(run)
        run.totals = _totals(run)
        run.finished_at = clock.now() if run.status in FINISHED else None
        run.save(update_fields=["status", "totals", "finished_at"])
        audit_record(
            action=f"certification_run.{run.status}",
            org_id=run.org_id,
            target=run,
            changes={"version": run.version_id, "totals": run.totals},
        )
        transaction.on_commit(lambda: _announce(run.pk), robust=True)
    return run


def _certify_or_reject(run: CertificationRun) -> str:
    """Certify the run's version; when that is refused (e.g. its signing key was revoked after the
    signature check ran) reject it with the reason instead of failing again on every retry."""
    try:
        with transaction.atomic():
            version_transition(
                version=run.version, to=VersionStatus.CERTIFIED, reason=f"Certification run {run.number}"
            )
    except PlazaError as exc:
        version_transition(version=run.version, to=VersionStatus.REJECTED, reason=f"Not certified: {exc.message}")
        return RunStatus.FAILED
    return RunStatus.PASSED


# --- review and re-runs --------------------------------------------------------------------------
def run_review(*, principal, run: CertificationRun, approve: bool, reason: str) -> CertificationRun:
    """Staff decide a run that is waiting for review: approve (the version is certified) or reject
    (it is rejected). A reason is required either way and is shown to the publisher."""
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise ValidationFailed("Give a reason (3–1000 characters); the publisher sees it.", param="reason")
    with transaction.atomic():
        run = CertificationRun.objects.select_for_update().select_related("version").get(pk=run.pk)
        if run.status != RunStatus.REVIEW:
            raise Conflict(
                f"Only a run waiting for review can be decided; this one is {run.status}.", code="run_not_in_review"
            )
        latest = CertificationRun.objects.filter(version_id=run.version_id).order_by("-number").first()
        if run.version.status != VersionStatus.CERTIFYING or latest is None or latest.pk != run.pk:
            raise Conflict("A newer run or a status change overtook this run; decide the latest run.", code="run_stale")
        run.status = RunStatus.APPROVED if approve else RunStatus.REJECTED
        run.reviewed_by, run.reviewed_at, run.review_reason = _actor(principal), clock.now(), reason[:1000]
        run.finished_at = run.reviewed_at
        run.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_reason", "finished_at"])
        to = VersionStatus.CERTIFIED if approve else VersionStatus.REJECTED
        version_transition(version=run.version, to=to, reason=f"Staff review: {reason}"[:1000])
        audit_record(
            action=f"certification_run.{run.status}",
            org_id=run.org_id,
            target=run,
            changes={"version": run.version_id, "reason": run.review_reason},
        )
        transaction.on_commit(lambda: _announce(run.pk), robust=True)
    return run


def run_rerun(*, principal, version: ExtensionVersion, reason: str = "") -> CertificationRun:
    """Staff certify ``version`` again with the checks installed now: a new run (earlier runs are
    kept as they are; one still in flight or in review is marked superseded)."""
    with transaction.atomic():
        # The version row first: two concurrent re-runs queue here instead of both opening a run.
        version = (
            ExtensionVersion.objects.select_for_update(of=("self",)).select_related("extension").get(pk=version.pk)
        )
        if version.status not in (VersionStatus.CERTIFIED, VersionStatus.REJECTED, VersionStatus.CERTIFYING):
            raise Conflict(
                f"A {version.status} version cannot be certified again (only certified, rejected or certifying ones).",
                code="version_status_conflict",
            )
        open_runs = CertificationRun.objects.select_for_update().filter(
            version=version, status__in=IN_FLIGHT | {RunStatus.REVIEW}
        )
        for old in open_runs:
            old.status, old.finished_at = RunStatus.SUPERSEDED, clock.now()
            old.save(update_fields=["status", "finished_at"])
            audit_record(action="certification_run.superseded", org_id=old.org_id, target=old)
        run = run_create(version=version, trigger="rerun", principal=principal)
        if reason:
            audit_record(
                action="certification_run.rerun_requested",
                org_id=run.org_id,
                target=run,
                changes={"reason": reason[:500]},
            )
    return run


# --- sweeping and notifying ----------------------------------------------------------------------
def run_sweep(*, now: dt.datetime | None = None, grace_seconds: int = 30) -> dict:
    """Resume work whose task was lost: in-flight runs with no live lease get a new task, and
    versions submitted more than ``grace_seconds`` ago without a run get one."""
    now = now or clock.now()
    resumed = 0
    quiet_since = now - dt.timedelta(seconds=settings.PLAZA_CERTIFICATION_LEASE_SECONDS)
    waiting = CertificationRun.objects.filter(status__in=IN_FLIGHT).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=quiet_since)
    )
    for run_id in waiting.values_list("pk", flat=True):
        live = CheckResult.objects.filter(run_id=run_id, status=CheckStatus.RUNNING, lease_expires_at__gt=now).exists()
        if not live:
            _send(run_id)
            resumed += 1
    started = 0
    stale = ExtensionVersion.objects.filter(
        status=VersionStatus.SUBMITTED, submitted_at__lt=now - dt.timedelta(seconds=grace_seconds)
    )
    for version in stale:
        if run_start_for_submitted(version=version) is not None:
            started += 1
    return {"resumed": resumed, "started": started}


def _announce(run_id: str) -> None:
    """After commit: tell first-party listeners and e-mail whoever uploaded the version."""
    run = CertificationRun.objects.select_related("version__extension", "version__created_by").get(pk=run_id)
    run_finished.send_robust(sender=CertificationRun, run=run)
    if run.status == RunStatus.SUPERSEDED:
        return
    user = run.version.created_by
    if user is None or not user.email:
        return
    version = run.version
    words = {
        RunStatus.PASSED: "passed: it is certified",
        RunStatus.APPROVED: "was approved by platform staff: it is certified",
        RunStatus.FAILED: "failed: the version was rejected",
        RunStatus.REJECTED: "was rejected by platform staff",
        RunStatus.REVIEW: "needs a review by platform staff",
    }.get(run.status, run.status)
    link = f"{settings.PLAZA_BASE_URL.rstrip('/')}/orgs/{run.org_id}/certification/{run.pk}/"
    body = (
        f"Certification run {run.number} of {version.extension.key} {version.version} {words}.\n\n"
        + (f"Reviewer's reason: {run.review_reason}\n\n" if run.review_reason else "")
        + f"The full report: {link}\n"
    )
    send_mail(
        f"[Plaza] {version.extension.key} {version.version}: certification {run.status}", body, None, [user.email]
    )
    CertificationRun.objects.filter(pk=run.pk).update(notified_at=clock.now())


# --- SBOM policy ---------------------------------------------------------------------------------
def _platform_org_id() -> str:
    return Organization.objects.filter(is_platform=True).values_list("pk", flat=True).first() or ""


def _spdx_known(license_id: str) -> bool:
    from license_expression import get_spdx_licensing

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,99}", license_id):
        return False
    return not get_spdx_licensing().unknown_license_keys(license_id)


def sbom_rule_create(
    *, principal, org: Organization | None, effect: str, name: str = "", version_range: str = "", license: str = "",
    reason: str = "",
) -> SbomRule:  # fmt: skip
    """Add a line to the platform's SBOM policy (``org`` None, staff) or to one org's additions."""
    name, version_range, license = (name or "").strip(), (version_range or "").strip(), (license or "").strip()
    if effect not in SbomEffect.values:
        raise ValidationFailed("The effect is allow or deny.", param="effect")
    if org is not None and effect != SbomEffect.DENY:
        raise ValidationFailed(
            "An organisation can add deny rules only: what is allowed is the platform's policy.",
            code="sbom_rule_org_allow",
            param="effect",
        )
    if not (name or version_range or license):
        raise ValidationFailed("Set at least one of name, version_range and license.", param="name")
    if version_range and not name:
        raise ValidationFailed("A version range needs a component name.", param="version_range")
    if len(name) > 200 or len(version_range) > 100 or len(license) > 100:
        raise ValidationFailed("name ≤ 200, version_range ≤ 100, license ≤ 100 characters.", param="name")
    if version_range:
        try:
            parse_range(version_range)
        except (ValueError, AttributeError, TypeError):
            raise ValidationFailed(
                f"{version_range!r} is not an npm-style range (e.g. '<1.2.3', '>=2 <3').", param="version_range"
            ) from None
    if license and not _spdx_known(license):
        raise ValidationFailed(f"{license!r} is not an SPDX licence id (e.g. MIT, Apache-2.0).", param="license")
    with transaction.atomic():
        rule = SbomRule.objects.create(
            org=org,
            effect=effect,
            name=name,
            version_range=version_range,
            license=license,
            reason=(reason or "").strip()[:500],
            created_by=_actor(principal),
        )
        audit_record(
            action="sbom_rule.created",
            org_id=org.pk if org else _platform_org_id(),
            target=rule,
            changes={"effect": effect, "name": name, "version_range": version_range, "license": license},
        )
    return rule


def sbom_rule_delete(*, principal, rule: SbomRule) -> None:
    with transaction.atomic():
        audit_record(
            action="sbom_rule.deleted",
            org_id=rule.org_id or _platform_org_id(),
            target=rule,
            changes={"rule": str(rule)},
        )
        rule.delete()
