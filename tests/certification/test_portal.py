"""Certification pages: the publisher's run page (live, then the report), the version page's runs
and promotion, and the staff review console."""

from __future__ import annotations

import hashlib

import pytest

from apps.audit.models import AuditEvent
from apps.certification.models import CertificationRun, CheckResult
from apps.extensions import services as extension_services
from apps.extensions.models import ChannelRelease, ExtensionVersion
from apps.extensions.packages import build_package
from apps.extensions.signing import sign_package
from apps.orgs.models import Role
from tests.certification.conftest import ROBOT, clean_files, clean_manifest, upload
from tests.conftest import make_tenant

pytestmark = pytest.mark.django_db

CHECKS = [
    "apps.certification.checks.manifest.ManifestCheck",
    "apps.certification.checks.signature.SignatureCheck",
    "apps.certification.checks.package.PackageCheck",
    "apps.certification.checks.smoke.SmokeCheck",
]
POLL = 'hx-trigger="every 1s"'
FINDINGS = [
    {"rule": "manifest.odd_name", "severity": "warning", "message": "The name is odd.", "location": "$.name",
     "hint": "Pick a plainer name."},
    {"rule": "manifest.fyi", "severity": "info", "message": "Just so you know.", "location": "", "hint": ""},
    {"rule": "manifest.broken", "severity": "error", "message": "Something is broken.", "location": "$.hooks[0]",
     "hint": "Mend the hook."},
]  # fmt: skip


@pytest.fixture(autouse=True)
def _checks(settings):
    settings.PLAZA_CERTIFICATION_CHECKS = CHECKS


@pytest.fixture
def run(certify) -> CertificationRun:
    """A finished (passed) run of a clean 1.0.0; its version is certified."""
    finished = certify(clean_manifest(), clean_files())
    assert finished.status == "passed", [(c.check_id, c.status, c.summary) for c in finished.checks.all()]
    return finished


@pytest.fixture
def in_review(run) -> CertificationRun:
    """``run`` put back to where a run with warnings stops: waiting for staff, its version certifying."""
    CertificationRun.objects.filter(pk=run.pk).update(status="review", finished_at=None)
    CheckResult.objects.filter(run=run, check_id="manifest").update(status="warned", findings=FINDINGS[:1])
    ExtensionVersion.objects.filter(pk=run.version_id).update(status="certifying")
    return CertificationRun.objects.get(pk=run.pk)


@pytest.fixture
def staff(db):
    """A user of the platform organisation (platform staff), as a developer there."""
    platform = make_tenant("plaza", "owner@plaza.test")
    platform.org.is_platform = True
    platform.org.save(update_fields=["is_platform"])
    return platform


def run_url(run) -> str:
    return f"/orgs/{run.org_id}/certification/{run.pk}/"


def version_url(version) -> str:
    return f"/orgs/{version.extension.org_id}/extensions/{version.extension_id}/versions/{version.pk}/"


def staff_url(run) -> str:
    return f"/staff/certification/{run.pk}/"


# --- the publisher's run page ---------------------------------------------------------------------
def test_run_page_shows_each_check_and_the_findings_grouped_by_severity(run, acme, login_client):
    # given a finished run whose manifest check reported one finding of each severity
    CheckResult.objects.filter(run=run, check_id="manifest").update(findings=FINDINGS)
    # when a member of the org opens the run page
    res = login_client(acme.user("member")).get(run_url(run))
    html = res.content.decode()
    # then every check is listed in order, and the report groups errors, then warnings, then notes
    assert res.status_code == 200
    titles = [c.title for c in run.checks.order_by("position")]
    positions = [html.index(t) for t in titles]
    assert positions == sorted(positions)
    assert html.index('id="report-error"') < html.index('id="report-warning"') < html.index('id="report-info"')
    errors = html[html.index('id="report-error"') : html.index('id="report-warning"')]
    assert "manifest.broken" in errors and "$.hooks[0]" in errors and "Mend the hook." in errors
    assert "manifest.odd_name" not in errors
    assert "manifest.odd_name" in html[html.index('id="report-warning"') : html.index('id="report-info"')]
    assert "manifest.fyi" in html[html.index('id="report-info"') :]
    # and a finished run does not poll
    assert POLL not in html and 'http-equiv="refresh"' not in html


def test_a_run_in_flight_polls_itself_and_stops_when_finished(run, acme, login_client):
    web = login_client(acme.owner)
    CertificationRun.objects.filter(pk=run.pk).update(status="running", finished_at=None)
    CheckResult.objects.filter(run=run, position__gte=2).update(status="pending", summary="", duration_ms=None)
    # while running: the live partial polls the page's own URL; without JS a refresh does it
    html = web.get(run_url(run)).content.decode()
    assert POLL in html and f'hx-get="{run_url(run)}"' in html
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in html
    # an htmx poll gets only the partial, still polling
    part = web.get(run_url(run), HTTP_HX_REQUEST="true")
    body = part.content.decode()
    assert part.status_code == 200 and POLL in body
    assert body.lstrip().startswith('<div id="run-live"') and "<html" not in body and "<h1" not in body
    # when the run finishes, the next poll answers a partial without a trigger: polling stops
    CertificationRun.objects.filter(pk=run.pk).update(status="passed")
    body = web.get(run_url(run), HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith('<div id="run-live"') and POLL not in body and "Passed" in body


def test_a_run_waiting_for_review_does_not_poll(in_review, acme, login_client):
    html = login_client(acme.owner).get(run_url(in_review)).content.decode()
    assert "Waiting for staff review" in html and POLL not in html


def test_another_organisations_run_is_not_found(run, acme, globex, login_client):
    web = login_client(globex.owner)
    # neither under acme's id (not a member) nor under globex's own (not globex's run)
    assert web.get(run_url(run)).status_code == 404
    res = web.get(f"/orgs/{globex.org.pk}/certification/{run.pk}/")
    assert res.status_code == 404 and "errors/404.html" in [t.name for t in res.templates]
    assert login_client(acme.owner).get(f"/orgs/{acme.org.pk}/certification/crt_nonsense/").status_code == 404


# --- the version page -----------------------------------------------------------------------------
def test_version_page_lists_runs_newest_first_with_links(run, acme, login_client):
    # given a second run, started by staff
    from apps.certification import services

    rerun = services.run_rerun(principal=None, version=run.version)
    html = login_client(acme.owner).get(version_url(run.version)).content.decode()
    assert html.index(run_url(rerun)) < html.index(run_url(run))
    assert "re-run by staff" in html and "Passed" in html and "Queued" in html


def test_promote_a_certified_version_to_a_channel(run, acme, login_client):
    web = login_client(acme.user("developer"))
    url = version_url(run.version)
    assert "Promote to a channel" in web.get(url).content.decode()
    res = web.post(url, {"op": "promote", "channel": "beta"})
    assert res.status_code == 302 and res["Location"] == url
    release = ChannelRelease.objects.get()
    assert (release.channel, release.version_id) == ("beta", run.version_id)
    run.version.refresh_from_db()
    assert run.version.status == "published"
    page = web.get(url).content.decode()
    assert "is served on the beta channel" in page and "Beta</dt>" in page


def test_promoting_a_pre_release_to_stable_shows_the_error_next_to_the_channel(
    publisher, acme, login_client, django_capture_on_commit_callbacks
):
    # given a certified pre-release (uploaded to beta, as pre-releases must be)
    doc = clean_manifest(id=publisher.extension.key, version="1.1.0-beta.1")
    data = build_package(clean_files(), manifest=doc)
    version = extension_services.version_upload(
        principal=ROBOT,
        extension=publisher.extension,
        data=data,
        signature=sign_package(publisher.private, hashlib.sha256(data).hexdigest()),
        key_id=publisher.key.pk,
        channel="beta",
    )
    with django_capture_on_commit_callbacks(execute=True):
        extension_services.version_submit(principal=ROBOT, version=version)
    assert CertificationRun.objects.get(version=version).status == "passed"
    # when its publisher promotes it to stable
    res = login_client(acme.owner).post(version_url(version), {"op": "promote", "channel": "stable"})
    html = res.content.decode()
    assert res.status_code == 400
    assert 'id="channel-error"' in html and "is a pre-release; promote it to beta or canary" in html
    assert not ChannelRelease.objects.exists()


def test_members_cannot_promote_and_drafts_offer_no_promotion(publisher, acme, login_client):
    draft = upload(publisher, clean_manifest(), clean_files())
    web = login_client(acme.user("member"))
    assert "Promote to a channel" not in web.get(version_url(draft)).content.decode()
    assert web.post(version_url(draft), {"op": "promote", "channel": "beta"}).status_code == 403
    res = login_client(acme.owner).post(version_url(draft), {"op": "promote", "channel": "beta"})
    assert res.status_code == 400 and "Only a certified version can be promoted" in res.content.decode()


# --- the staff console ----------------------------------------------------------------------------
def test_non_staff_are_refused(run, acme, login_client, staff):
    for user in (acme.owner, staff.user(Role.MEMBER)):  # a publisher; a platform member without the role
        web = login_client(user)
        for url in ("/staff/certification/", staff_url(run)):
            assert web.get(url).status_code == 403, (user, url)
        assert web.post(staff_url(run), {"op": "rerun"}).status_code == 403
    assert CertificationRun.objects.count() == 1


def test_the_queue_shows_runs_in_review_by_default_and_filters(in_review, certify, publisher, staff, login_client):
    other = extension_services.extension_create(principal=ROBOT, org=publisher.org, name="other-thing")
    passed = certify(clean_manifest(), clean_files(), extension=other)
    web = login_client(staff.user(Role.DEVELOPER))
    # the default is the review queue
    html = web.get("/staff/certification/").content.decode()
    assert staff_url(in_review) in html and staff_url(passed) not in html
    # filters: status, org, check not passed, search
    html = web.get("/staff/certification/", {"status": ""}).content.decode()
    assert staff_url(in_review) in html and staff_url(passed) in html
    html = web.get("/staff/certification/", {"status": "passed"}).content.decode()
    assert staff_url(in_review) not in html and staff_url(passed) in html
    html = web.get("/staff/certification/", {"status": "", "check_id": "manifest"}).content.decode()
    assert staff_url(in_review) in html and staff_url(passed) not in html
    html = web.get("/staff/certification/", {"status": "", "q": "other-thing"}).content.decode()
    assert staff_url(in_review) not in html and staff_url(passed) in html
    res = web.get("/staff/certification/", {"org_id": staff.org.pk})
    assert "Nothing waits for review" not in res.content.decode() and "No runs match" in res.content.decode()
    # an htmx request gets only the rows
    part = web.get("/staff/certification/", {"status": ""}, HTTP_HX_REQUEST="true").content.decode()
    assert part.lstrip().startswith('<div id="queue-rows"') and "<form" not in part
    # an unknown status is pointed out, not a 500
    res = web.get("/staff/certification/", {"status": "nonsense"})
    assert res.status_code == 400 and 'id="status-error"' in res.content.decode()


def test_the_empty_queue(staff, login_client):
    html = login_client(staff.user(Role.DEVELOPER)).get("/staff/certification/").content.decode()
    assert "Nothing waits for review" in html


def test_the_queue_pages_keep_the_filters(in_review, staff, login_client, monkeypatch):
    from apps.certification import portal

    real = portal.page_of
    monkeypatch.setattr(portal, "page_of", lambda request, qs: real(request, qs, size=1))
    from apps.certification import services

    services.run_rerun(principal=None, version=in_review.version)  # supersedes the run in review
    html = login_client(staff.user(Role.DEVELOPER)).get("/staff/certification/", {"status": "", "q": "acme"})
    assert "status=&amp;q=acme&amp;cursor=" in html.content.decode()


def test_staff_run_page_shows_the_full_report(in_review, staff, login_client):
    CheckResult.objects.filter(run=in_review, check_id="manifest").update(findings=FINDINGS)
    html = login_client(staff.user(Role.DEVELOPER)).get(staff_url(in_review)).content.decode()
    for rule in ("manifest.broken", "manifest.odd_name", "manifest.fyi"):
        assert rule in html
    assert 'id="report-error"' in html and 'name="reason"' in html and 'value="approve"' in html


@pytest.mark.parametrize(("op", "run_status", "version_status"), [("approve", "approved", "certified"),
                                                                   ("reject", "rejected", "rejected")])  # fmt: skip
def test_staff_decide_a_run_in_review_with_a_reason(in_review, staff, login_client, op, run_status, version_status):
    web = login_client(staff.user(Role.DEVELOPER))
    # without a reason: shown next to the field, nothing changes
    res = web.post(staff_url(in_review), {"op": op, "reason": " "})
    assert res.status_code == 400 and 'id="reason-error"' in res.content.decode()
    assert CertificationRun.objects.get(pk=in_review.pk).status == "review"
    # with a reason: decided, audited, and the version follows
    res = web.post(staff_url(in_review), {"op": op, "reason": "Looked at the warning; fine."})
    assert res.status_code == 302 and res["Location"] == staff_url(in_review)
    decided = CertificationRun.objects.get(pk=in_review.pk)
    assert decided.status == run_status and decided.review_reason == "Looked at the warning; fine."
    assert ExtensionVersion.objects.get(pk=in_review.version_id).status == version_status
    entry = AuditEvent.objects.filter(action=f"certification_run.{run_status}", target_id=in_review.pk).get()
    assert entry.changes["reason"] == "Looked at the warning; fine."
    page = web.get(res["Location"]).content.decode()
    assert f"Run {decided.number} {run_status}" in page and 'value="approve"' not in page
    # deciding again is a conflict, shown at the top
    res = web.post(staff_url(in_review), {"op": op, "reason": "Again"})
    assert res.status_code == 400 and "Only a run waiting for review can be decided" in res.content.decode()


def test_staff_rerun_creates_a_new_run(run, staff, login_client):
    web = login_client(staff.user(Role.DEVELOPER))
    assert "Re-run certification" in web.get(staff_url(run)).content.decode()
    res = web.post(staff_url(run), {"op": "rerun", "reason": "New checks"})
    new = CertificationRun.objects.exclude(pk=run.pk).get()
    assert res.status_code == 302 and res["Location"] == staff_url(new)
    assert (new.number, new.trigger, new.status) == (2, "rerun", "queued")
    assert AuditEvent.objects.filter(action="certification_run.rerun_requested", target_id=new.pk).exists()
    html = web.get(res["Location"]).content.decode()
    assert "Certification started again: run 2" in html and POLL in html
