"""Certification: a run per submitted version, one result row per check, the SBOM policy.

A run is durable work in the database (ARCHITECTURE.md, "transactional outbox"): its check rows
are written when the run is created, and whichever worker picks the run up claims one check at
a time under a lease. A worker that dies mid-check leaves a lease that expires; the next worker
(or the periodic sweep) takes the check over. A check's result is written only by the holder of
its current lease, so each check completes exactly once. Finished runs are never edited: a
re-run is a new run.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core import clock
from apps.core.ids import PrefixedIdField
from apps.orgs.models import Organization


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    REVIEW = "review", "Waiting for staff review"
    PASSED = "passed", "Passed"  # the version is certified
    FAILED = "failed", "Failed"  # the version is rejected
    APPROVED = "approved", "Approved by staff"  # after review: certified
    REJECTED = "rejected", "Rejected by staff"  # after review: rejected
    SUPERSEDED = "superseded", "Superseded"  # staff started a new run before this one finished


MAX_CHECK_ATTEMPTS = 3  # a check whose worker died this many times ends errored (staff look at it)

FINISHED = frozenset({RunStatus.PASSED, RunStatus.FAILED, RunStatus.APPROVED, RunStatus.REJECTED, RunStatus.SUPERSEDED})
IN_FLIGHT = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


class CheckStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    WARNED = "warned", "Passed with warnings"
    FAILED = "failed", "Failed"
    ERRORED = "errored", "Errored (Plaza's fault)"


CHECK_DONE = frozenset({CheckStatus.PASSED, CheckStatus.WARNED, CheckStatus.FAILED, CheckStatus.ERRORED})


class CertificationRun(models.Model):
    id = PrefixedIdField(prefix="crt")
    version = models.ForeignKey(
        "extensions.ExtensionVersion", on_delete=models.PROTECT, related_name="certification_runs"
    )
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")  # the publisher
    number = models.PositiveIntegerField()  # 1, 2, … per version
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=10, default="submit")  # submit | rerun
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Counts of findings by severity and of checks by status, fixed when the checks are done.
    totals = models.JSONField(default=dict)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.CharField(max_length=1000, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    # When a task to advance the run was last queued: the sweep queues another only when that is
    # older than a lease, so a backed-up queue does not fill with duplicates.
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["version", "number"], name="certification_run_number_unique")]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class CheckResult(models.Model):
    id = PrefixedIdField(prefix="chk")
    run = models.ForeignKey(CertificationRun, on_delete=models.CASCADE, related_name="checks")
    position = models.PositiveSmallIntegerField()
    check_id = models.CharField(max_length=40)
    check_version = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=100)
    required = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=CheckStatus.choices, default=CheckStatus.PENDING)
    summary = models.CharField(max_length=500, blank=True)
    findings = models.JSONField(default=list)
    measurements = models.JSONField(default=dict)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # The lease of whoever runs the check: a token, and when it expires (then another may take over).
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # how many times it was started

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="check_result_position_unique"),
            models.UniqueConstraint(fields=["run", "check_id"], name="check_result_check_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.check_id} ({self.status})"


class SbomEffect(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"


class SbomRule(models.Model):
    """One line of the SBOM policy. Platform rules have no org; an org's rules add to them for
    that org's own versions. A rule matches a component when every field it sets matches."""

    id = PrefixedIdField(prefix="sbr")
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    effect = models.CharField(max_length=5, choices=SbomEffect.choices)
    name = models.CharField(max_length=200, blank=True)  # component name or glob (fnmatch, case-insensitive)
    version_range = models.CharField(max_length=100, blank=True)  # npm-style range, e.g. "<1.2.3 || >=2"
    license = models.CharField(max_length=100, blank=True)  # an SPDX licence id
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        what = " ".join(x for x in (self.name, self.version_range, self.license) if x) or "*"
        return f"{self.effect} {what}"
