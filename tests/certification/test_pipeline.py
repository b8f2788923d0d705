"""The certification pipeline over the database: runs, ordered checks under leases, outcomes,
staff review and re-runs, the sweep that resumes lost work, promotion to channels, notices."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from apps.audit.models import AuditEvent
from apps.certification import services
from apps.certification.checks import ERROR, WARNING, Check, CheckContext, CheckOutcome, Finding
from apps.certification.models import CertificationRun, CheckResult
from apps.core import clock
from apps.core.errors import Conflict, ValidationFailed
from apps.extensions import signing
from apps.extensions.models import ChannelRelease, ExtensionVersion
from apps.extensions.services import version_promote, version_submit
from tests.certification.conftest import ROBOT, clean_files, clean_manifest, not_passed, upload

pytestmark = pytest.mark.django_db

CHEAP = [
    "apps.certification.checks.manifest.ManifestCheck",
    "apps.certification.checks.signature.SignatureCheck",
    "apps.certification.checks.package.PackageCheck",
]


class Warns(Check):
    id = "warns"
    title = "Always warns"

    def run(self, ctx):
        return CheckOutcome("A warning.", [Finding("warns.always", WARNING, "Look at this.", "$", "Nothing.")])


class Fails(Check):
    id = "fails"
    title = "Always fails"

    def run(self, ctx):
        return CheckOutcome("An error.", [Finding("fails.always", ERROR, "Broken.", "$", "Fix it.")])


class FailsOptional(Fails):
    id = "fails_optional"
    required = False


class Explodes(Check):
    id = "explodes"
    title = "Raises"

    def run(self, ctx):
        raise RuntimeError("bug in Plaza")


HERE = "tests.certification.test_pipeline"


@pytest.fixture
def cheap(settings):
    settings.PLAZA_CERTIFICATION_CHECKS = CHEAP


@pytest.fixture
def staff(acme):
    acme.org.is_platform = True
    acme.org.save(update_fields=["is_platform"])
    from apps.orgs.policy import Principal

    return Principal(kind="user", user=acme.owner, mfa_verified=True)


# --- outcomes ------------------------------------------------------------------------------------
def test_a_clean_version_is_certified_and_countersigned_by_every_default_check(certify, settings):
    run = certify(clean_manifest(), clean_files())
    # then every default check ran once, in the configured order, and passed
    assert [c.check_id for c in run.checks.all()] == [
        "manifest", "signature", "package", "sbom", "module", "smoke", "abuse", "widget",
    ]  # fmt: skip
    assert not_passed(run) == {}
    assert all(c.attempts == 1 and c.finished_at and c.duration_ms is not None for c in run.checks.all())
    assert run.status == "passed" and run.finished_at is not None
    version = ExtensionVersion.objects.get(pk=run.version_id)
    assert version.status == "certified"
    assert signing.verify_countersignature(
        version.countersignature,
        extension_id=version.extension.key,
        version=version.version,
        digest_hex=version.package_sha256,
        publisher_signature=version.signature,
    )
    smoke = run.checks.get(check_id="smoke")
    assert {c["outcome"] for c in smoke.measurements["calls"]} == {"ok"}
    assert smoke.measurements["max_fuel"] > 0


def test_a_failed_required_check_rejects_the_version_with_the_report(certify, settings):
    settings.PLAZA_CERTIFICATION_CHECKS = [*CHEAP, f"{HERE}.Fails", f"{HERE}.Warns"]
    run = certify(clean_manifest(), clean_files())
    assert run.status == "failed"
    version = ExtensionVersion.objects.get(pk=run.version_id)
    assert version.status == "rejected" and "fails: An error." in version.status_reason
    assert version.countersignature is None
    # the later check still ran: the publisher gets the whole report at once
    assert run.checks.get(check_id="warns").status == "warned"
    assert run.totals["findings"] == {"error": 1, "warning": 1}


@pytest.mark.parametrize("extra", ["Warns", "FailsOptional", "Explodes"])
def test_warnings_failed_heuristics_and_errored_checks_go_to_staff_review(certify, settings, extra):
    settings.PLAZA_CERTIFICATION_CHECKS = [*CHEAP, f"{HERE}.{extra}"]
    run = certify(clean_manifest(), clean_files())
    assert run.status == "review" and run.finished_at is None
    assert ExtensionVersion.objects.get(pk=run.version_id).status == "certifying"
    if extra == "Explodes":
        row = run.checks.get(check_id="explodes")
        assert row.status == "errored" and "RuntimeError" in row.summary and "bug in Plaza" not in row.summary


def test_the_publisher_is_emailed_when_a_run_finishes(certify, cheap, publisher):
    publisher.api  # the uploader is the robot principal: give the version a person to tell
    from apps.accounts.models import User

    user = User.objects.get(memberships__org=publisher.org, memberships__role="owner")
    run = certify(clean_manifest(), clean_files(), before_submit=lambda v: ExtensionVersion.objects.filter(
        pk=v.pk).update(created_by=user))  # fmt: skip
    sent = [m for m in mail.outbox if "certification" in m.subject]
    assert len(sent) == 1 and sent[0].to == [user.email]
    assert "passed" in sent[0].subject and f"/certification/{run.pk}/" in sent[0].body
    assert CertificationRun.objects.get(pk=run.pk).notified_at is not None


# --- durability: leases, take-over, sweep --------------------------------------------------------
def _submitted_run(publisher, monkeypatch, django_capture_on_commit_callbacks):
    """A submitted version's run, created but not advanced (its task 'lost')."""
    monkeypatch.setattr(services, "_enqueue", lambda run_id: None)
    version = upload(publisher, clean_manifest(), clean_files())
    with django_capture_on_commit_callbacks(execute=True):
        version_submit(principal=ROBOT, version=version)
    return CertificationRun.objects.get(version=version)


def test_a_check_whose_worker_died_is_taken_over_after_its_lease_and_never_rerun_once_done(
    publisher, cheap, monkeypatch, django_capture_on_commit_callbacks
):
    run = _submitted_run(publisher, monkeypatch, django_capture_on_commit_callbacks)
    assert run.status == "queued" and set(run.checks.values_list("status", flat=True)) == {"pending"}
    # given a worker claimed the first check and died (its lease is live, then expires)
    first, token = services._claim(run)
    assert first.check_id == "manifest" and first.attempts == 1
    assert services.run_advance(run_id=run.pk) == "busy"  # a live lease is respected
    CheckResult.objects.filter(pk=first.pk).update(lease_expires_at=clock.now() - dt.timedelta(seconds=1))
    # when another worker advances the run
    assert services.run_advance(run_id=run.pk) == "finished"
    # then the check was taken over once, every other check ran once, and the run finished
    rows = {c.check_id: c for c in CheckResult.objects.filter(run=run)}
    assert rows["manifest"].attempts == 2 and [rows[c].attempts for c in ("signature", "package")] == [1, 1]
    assert CertificationRun.objects.get(pk=run.pk).status == "passed"
    # and the dead worker's late result is dropped (its token no longer holds the lease)
    stale = CheckOutcome("stale", [Finding("manifest.x", ERROR, "late", "$", "")])
    assert services._complete(first, token, "failed", stale, 0.0) is False
    assert CheckResult.objects.get(pk=first.pk).status == "passed"
    # and advancing a finished run does nothing
    assert services.run_advance(run_id=run.pk) == "stopped"


def test_the_sweep_resumes_runs_whose_task_was_lost_and_starts_forgotten_submissions(
    publisher, cheap, monkeypatch, django_capture_on_commit_callbacks
):
    run = _submitted_run(publisher, monkeypatch, django_capture_on_commit_callbacks)
    # a version submitted whose run was never created (the process stopped after the commit)
    other = upload(publisher, clean_manifest(version="1.1.0"), clean_files())
    ExtensionVersion.objects.filter(pk=other.pk).update(status="submitted", submitted_at=clock.now())
    assert services.run_sweep() == {"resumed": 1, "started": 0}  # too recent to be called forgotten
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        result = services.run_sweep(now=clock.now() + dt.timedelta(minutes=5))
    assert result["started"] == 1
    assert CertificationRun.objects.get(pk=run.pk).status == "passed"
    assert CertificationRun.objects.get(version=other).status == "passed"
    assert services.run_sweep() == {"resumed": 0, "started": 0}


# --- staff review and re-runs --------------------------------------------------------------------
def test_staff_approve_a_run_in_review_with_a_reason_and_the_version_is_certified(certify, settings, staff):
    settings.PLAZA_CERTIFICATION_CHECKS = [*CHEAP, f"{HERE}.Warns"]
    run = certify(clean_manifest(), clean_files())
    with pytest.raises(ValidationFailed):
        services.run_review(principal=staff, run=run, approve=True, reason=" ")
    decided = services.run_review(principal=staff, run=run, approve=True, reason="The warning is a false alarm.")
    assert decided.status == "approved" and decided.reviewed_by == staff.user
    version = ExtensionVersion.objects.get(pk=run.version_id)
    assert version.status == "certified" and version.countersignature
    assert AuditEvent.objects.filter(action="certification_run.approved", target_id=run.pk).exists()
    with pytest.raises(Conflict):
        services.run_review(principal=staff, run=decided, approve=False, reason="Changed my mind.")


def test_staff_reject_a_run_in_review(certify, settings, staff):
    settings.PLAZA_CERTIFICATION_CHECKS = [*CHEAP, f"{HERE}.FailsOptional"]
    run = certify(clean_manifest(), clean_files())
    services.run_review(principal=staff, run=run, approve=False, reason="Impersonates Globex.")
    version = ExtensionVersion.objects.get(pk=run.version_id)
    assert version.status == "rejected" and "Impersonates Globex." in version.status_reason


def test_a_rerun_is_a_new_run_and_the_earlier_one_is_kept_as_it_was(
    certify, settings, staff, django_capture_on_commit_callbacks
):
    settings.PLAZA_CERTIFICATION_CHECKS = [*CHEAP, f"{HERE}.Fails"]
    first = certify(clean_manifest(), clean_files())
    before = list(first.checks.values())
    # when staff re-run it after the faulty check was removed
    settings.PLAZA_CERTIFICATION_CHECKS = CHEAP
    with django_capture_on_commit_callbacks(execute=True):
        second = services.run_rerun(principal=staff, version=first.version, reason="Check fixed.")
    second = CertificationRun.objects.get(pk=second.pk)
    # then the new run passed, the version is certified, and the first run is untouched
    assert (second.number, second.trigger, second.status) == (2, "rerun", "passed")
    assert ExtensionVersion.objects.get(pk=first.version_id).status == "certified"
    assert list(CertificationRun.objects.get(pk=first.pk).checks.values()) == before
    assert CertificationRun.objects.get(pk=first.pk).status == "failed"


def test_a_rerun_supersedes_a_run_still_in_review(certify, settings, staff):
    settings.PLAZA_CERTIFICATION_CHECKS = [*CHEAP, f"{HERE}.Warns"]
    first = certify(clean_manifest(), clean_files())
    services.run_rerun(principal=staff, version=first.version)
    assert CertificationRun.objects.get(pk=first.pk).status == "superseded"


def test_a_draft_cannot_be_rerun(publisher, staff):
    draft = upload(publisher, clean_manifest(), clean_files())
    with pytest.raises(Conflict):
        services.run_rerun(principal=staff, version=draft)


# --- promotion -----------------------------------------------------------------------------------
def test_promoting_a_certified_version_publishes_it_on_the_channel(certify, cheap):
    run = certify(clean_manifest(), clean_files())
    release = version_promote(principal=ROBOT, version=run.version, channel="stable")
    assert release.channel == "stable" and ExtensionVersion.objects.get(pk=run.version_id).status == "published"
    # promoting it again is a no-op; to another channel is a new release
    assert version_promote(principal=ROBOT, version=run.version, channel="stable").pk == release.pk
    version_promote(principal=ROBOT, version=run.version, channel="beta")
    assert ChannelRelease.objects.filter(version=run.version).count() == 2
    assert AuditEvent.objects.filter(action="extension_version.promoted", target_id=run.version_id).count() == 2


def test_promotion_refuses_uncertified_prerelease_to_stable_and_downgrades(certify, cheap, publisher):
    draft_run = certify(clean_manifest(version="2.0.0"), clean_files())
    version_promote(principal=ROBOT, version=draft_run.version, channel="stable")
    pre = upload(publisher, clean_manifest(version="2.1.0-beta.1"), clean_files(), channel="beta")
    with pytest.raises(Conflict, match="certified"):
        version_promote(principal=ROBOT, version=pre, channel="beta")
    ExtensionVersion.objects.filter(pk=pre.pk).update(status="certified")
    with pytest.raises(Conflict, match="pre-release"):
        version_promote(principal=ROBOT, version=pre, channel="stable")
    with pytest.raises(ValidationFailed):
        version_promote(principal=ROBOT, version=pre, channel="nightly")
    # a channel never goes down: 2.0.0 after 2.1.0 on stable is refused
    newer = upload(publisher, clean_manifest(version="2.1.0"), clean_files())
    ExtensionVersion.objects.filter(pk=newer.pk).update(status="certified")
    version_promote(principal=ROBOT, version=newer, channel="stable")
    with pytest.raises(Conflict, match="higher"):
        version_promote(principal=ROBOT, version=draft_run.version, channel="stable")


def test_a_run_whose_version_moved_on_decides_nothing(
    publisher, cheap, monkeypatch, django_capture_on_commit_callbacks
):
    run = _submitted_run(publisher, monkeypatch, django_capture_on_commit_callbacks)
    ExtensionVersion.objects.filter(pk=run.version_id).update(status="yanked")
    assert services.run_advance(run_id=run.pk) == "finished"
    assert CertificationRun.objects.get(pk=run.pk).status == "superseded"
    assert ExtensionVersion.objects.get(pk=run.version_id).status == "yanked"


# --- review findings: failure paths --------------------------------------------------------------
def test_a_key_revoked_after_the_signature_check_rejects_instead_of_failing_forever(
    publisher, cheap, monkeypatch, django_capture_on_commit_callbacks
):
    run = _submitted_run(publisher, monkeypatch, django_capture_on_commit_callbacks)
    # the checks pass, then the key is revoked before the run finishes
    for _ in CHEAP:
        row, token = services._claim(run)
        status, outcome = services._execute(row, CheckContext(version=run.version, run_id=run.pk))
        services._complete(row, token, status, outcome, 0.0)
    from apps.extensions.models import SigningKey

    SigningKey.objects.filter(pk=publisher.key.pk).update(status="revoked")
    assert services.run_advance(run_id=run.pk) == "finished"
    assert CertificationRun.objects.get(pk=run.pk).status == "failed"
    version = ExtensionVersion.objects.get(pk=run.version_id)
    assert version.status == "rejected" and "revoked" in version.status_reason
    assert services.run_sweep(now=clock.now() + dt.timedelta(hours=1)) == {"resumed": 0, "started": 0}


def test_a_check_that_keeps_killing_its_worker_ends_errored_after_three_attempts(
    publisher, cheap, monkeypatch, django_capture_on_commit_callbacks
):
    run = _submitted_run(publisher, monkeypatch, django_capture_on_commit_callbacks)
    first = run.checks.get(check_id="manifest")
    CheckResult.objects.filter(pk=first.pk).update(
        status="running", attempts=3, lease_token="dead", lease_expires_at=clock.now() - dt.timedelta(seconds=1)
    )
    assert services.run_advance(run_id=run.pk) == "finished"
    row = CheckResult.objects.get(pk=first.pk)
    assert row.status == "errored" and row.attempts == 3 and "3 attempts" in row.summary
    assert CertificationRun.objects.get(pk=run.pk).status == "review"


def test_a_superseded_run_takes_no_late_results_and_is_not_checks_done(
    publisher, cheap, monkeypatch, django_capture_on_commit_callbacks, staff
):
    run = _submitted_run(publisher, monkeypatch, django_capture_on_commit_callbacks)
    row, token = services._claim(run)
    services.run_rerun(principal=staff, version=run.version)
    late = CheckOutcome("late", [])
    assert services._complete(row, token, "passed", late, 0.0) is False
    from apps.certification.schemas import RunOut
    from apps.certification.selectors import get_staff_run

    body = RunOut.from_orm(get_staff_run(run.pk)).dict()
    assert body["status"] == "superseded" and body["finished"] is True and body["checks_done"] is False


def test_the_sweep_leaves_recently_queued_runs_alone(publisher, cheap, monkeypatch, django_capture_on_commit_callbacks):
    run = _submitted_run(publisher, monkeypatch, django_capture_on_commit_callbacks)
    CertificationRun.objects.filter(pk=run.pk).update(enqueued_at=clock.now())
    sent = []
    monkeypatch.setattr(services, "_send", sent.append)
    assert services.run_sweep()["resumed"] == 0  # its task may just be waiting in a busy queue
    later = clock.now() + dt.timedelta(seconds=services.settings.PLAZA_CERTIFICATION_LEASE_SECONDS + 1)
    assert services.run_sweep(now=later)["resumed"] == 1 and sent == [run.pk]


def test_a_stale_review_run_cannot_be_decided(certify, settings, staff):
    settings.PLAZA_CERTIFICATION_CHECKS = [*CHEAP, f"{HERE}.Warns"]
    run = certify(clean_manifest(), clean_files())
    CertificationRun.objects.create(version=run.version, org=run.org, number=2, status="queued")
    with pytest.raises(Conflict, match="latest"):
        services.run_review(principal=staff, run=run, approve=False, reason="Too late.")
    assert ExtensionVersion.objects.get(pk=run.version_id).status == "certifying"


def test_promotion_refuses_deleted_extensions_and_rolls_back_past_a_yanked_release(certify, cheap, publisher):
    first = certify(clean_manifest(), clean_files())
    version_promote(principal=ROBOT, version=first.version, channel="stable")
    second = certify(clean_manifest(version="1.1.0"), clean_files())
    version_promote(principal=ROBOT, version=second.version, channel="stable")
    ExtensionVersion.objects.filter(pk=second.version_id).update(status="yanked")
    # 1.1.0 was yanked: the channel goes back to 1.0.0
    back = version_promote(principal=ROBOT, version=first.version, channel="stable")
    assert back.version_id == first.version_id
    from apps.extensions.models import Extension

    Extension.objects.filter(pk=publisher.extension.pk).update(deleted_at=clock.now())
    with pytest.raises(Conflict, match="deleted"):
        version_promote(principal=ROBOT, version=first.version, channel="beta")
