"""Certification over the API: what the CLI polls, what staff decide, and the SBOM rules."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.certification.models import CertificationRun, SbomRule
from apps.extensions.models import ExtensionVersion
from apps.orgs.models import Role
from tests.certification.conftest import clean_files, clean_manifest

pytestmark = pytest.mark.django_db

WARNS = ["apps.certification.checks.manifest.ManifestCheck", "tests.certification.test_pipeline.Warns"]


def err(res, status: int, code: str | None = None) -> dict:
    assert res.status_code == status, res.content
    error = res.json()["error"]
    if code:
        assert error["code"] == code, error
    return error


@pytest.fixture
def staff_api(globex, api_for):
    """globex runs the platform: its owner token is platform staff."""
    globex.org.is_platform = True
    globex.org.save(update_fields=["is_platform"])
    return api_for(globex.org, role=Role.OWNER)


# --- publishers ----------------------------------------------------------------------------------
def test_the_cli_reads_a_finished_run_with_every_check_and_finding(certify, publisher):
    run = certify(clean_manifest(), clean_files())
    org, ext = publisher.org.pk, publisher.extension.pk
    listed = publisher.api.call("GET", f"orgs/{org}/extensions/{ext}/versions/{run.version_id}/certification-runs")
    assert listed.status_code == 200 and [r["id"] for r in listed.json()["data"]] == [run.pk]
    body = publisher.api.call("GET", f"orgs/{org}/certification-runs/{run.pk}").json()
    assert body["finished"] is True and body["status"] == "passed" and body["extension_key"] == "acme.order-tagger"
    assert [c["check_id"] for c in body["checks"]][:3] == ["manifest", "signature", "package"]
    smoke = next(c for c in body["checks"] if c["check_id"] == "smoke")
    assert smoke["status"] == "passed" and smoke["attempts"] == 1 and smoke["measurements"]["calls"]
    org_runs = publisher.api.call("GET", f"orgs/{org}/certification-runs").json()["data"]
    assert [r["id"] for r in org_runs] == [run.pk]


def test_another_orgs_run_is_not_found(certify, globex, api_for):
    run = certify(clean_manifest(), clean_files())
    outsider = api_for(globex.org, role=Role.OWNER)
    err(outsider.call("GET", f"orgs/{globex.org.pk}/certification-runs/{run.pk}"), 404, "not_found")
    for bad in ("crt_nope", "x" * 300, "ver_00000000000000000000"):
        err(outsider.call("GET", f"orgs/{globex.org.pk}/certification-runs/{bad}"), 404)


def test_promote_over_the_api_and_read_the_releases(certify, publisher, settings):
    settings.PLAZA_CERTIFICATION_CHECKS = WARNS[:1]
    run = certify(clean_manifest(), clean_files())
    base = f"orgs/{publisher.org.pk}/extensions/{publisher.extension.pk}"
    res = publisher.api.call("POST", f"{base}/versions/{run.version_id}/promote", {"channel": "beta"})
    assert res.status_code == 200 and res.json()["channel"] == "beta" and res.json()["version"] == "1.0.0"
    err(publisher.api.call("POST", f"{base}/versions/{run.version_id}/promote", {"channel": "gold"}), 400)
    releases = publisher.api.call("GET", f"{base}/releases").json()["data"]
    assert [(r["channel"], r["version_id"]) for r in releases] == [("beta", run.version_id)]


# --- staff ---------------------------------------------------------------------------------------
def test_staff_endpoints_refuse_non_staff(publisher):
    err(publisher.api.call("GET", "staff/certification-runs"), 403, "staff_only")
    err(publisher.api.call("GET", "staff/sbom-rules"), 403, "staff_only")


def test_staff_work_the_review_queue(certify, settings, staff_api, publisher):
    settings.PLAZA_CERTIFICATION_CHECKS = WARNS
    run = certify(clean_manifest(), clean_files())
    queue = staff_api.call("GET", "staff/certification-runs", {"status": "review"}).json()["data"]
    assert [r["id"] for r in queue] == [run.pk] and queue[0]["org_id"] == publisher.org.pk
    assert staff_api.call("GET", "staff/certification-runs", {"check_id": "warns"}).json()["data"][0]["id"] == run.pk
    assert staff_api.call("GET", "staff/certification-runs", {"check_id": "manifest"}).json()["data"] == []
    assert staff_api.call("GET", "staff/certification-runs", {"q": "order-tagger"}).json()["data"][0]["id"] == run.pk
    err(staff_api.call("GET", "staff/certification-runs", {"status": "sideways"}), 400)
    # a decision needs a known verb and a reason
    url = f"staff/certification-runs/{run.pk}/decision"
    err(staff_api.call("POST", url, {"decision": "maybe", "reason": "Because."}), 400)
    err(staff_api.call("POST", url, {"decision": "approve", "reason": ""}), 400)
    assert CertificationRun.objects.get(pk=run.pk).status == "review"
    res = staff_api.call("POST", url, {"decision": "reject", "reason": "The warning is real."})
    assert res.status_code == 200 and res.json()["status"] == "rejected"
    assert res.json()["review_reason"] == "The warning is real."
    assert ExtensionVersion.objects.get(pk=run.version_id).status == "rejected"
    err(staff_api.call("POST", url, {"decision": "approve", "reason": "Oops."}), 409, "run_not_in_review")
    # and staff can certify it again, as a new run
    res = staff_api.call("POST", f"staff/extension-versions/{run.version_id}/certification-runs", {"reason": "x"})
    assert res.status_code == 201 and res.json()["number"] == 2 and res.json()["trigger"] == "rerun"
    err(staff_api.call("POST", "staff/extension-versions/ver_nope/certification-runs", {}), 404)


# --- SBOM rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"effect": "maybe", "name": "x"}, "effect"),
        ({"effect": "deny"}, "name"),
        ({"effect": "deny", "version_range": "<2"}, "version_range"),
        ({"effect": "deny", "name": "x", "version_range": "not a range ~~"}, "version_range"),
        ({"effect": "deny", "license": "Not-A-Licence-9"}, "license"),
        ({"effect": "deny", "license": "MIT OR Apache-2.0"}, "license"),
    ],
)
def test_bad_sbom_rules_are_refused_with_the_field(publisher, api_for, body, param):
    admin = api_for(publisher.org, role=Role.ADMIN)
    before = SbomRule.objects.count()
    error = err(admin.call("POST", f"orgs/{publisher.org.pk}/sbom-rules", body), 400)
    assert error["param"] == param
    assert SbomRule.objects.count() == before


def test_an_org_deny_rule_applies_to_its_own_next_versions_only(certify, publisher, api_for, globex):
    admin = api_for(publisher.org, role=Role.ADMIN)
    res = admin.call("POST", f"orgs/{publisher.org.pk}/sbom-rules", {"effect": "deny", "name": "left-*"})
    assert res.status_code == 201 and res.json()["org_id"] == publisher.org.pk
    assert AuditEvent.objects.filter(action="sbom_rule.created", org_id=publisher.org.pk).exists()
    sbom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "components": [{"type": "library", "name": "left-pad", "version": "1.3.0", "licenses": [{"license": {"id": "MIT"}}]}],  # noqa: E501
    }  # fmt: skip
    run = certify(clean_manifest(), clean_files(), sbom=sbom)
    assert run.checks.get(check_id="sbom").status == "failed"
    # globex does not see acme's rules
    other = api_for(globex.org, role=Role.ADMIN)
    assert other.call("GET", f"orgs/{globex.org.pk}/sbom-rules").json()["data"] == []
    err(other.call("DELETE", f"orgs/{globex.org.pk}/sbom-rules/{res.json()['id']}"), 404)
    assert admin.call("DELETE", f"orgs/{publisher.org.pk}/sbom-rules/{res.json()['id']}").status_code == 204


def test_staff_edit_the_platform_policy(staff_api):
    res = staff_api.call(
        "POST", "staff/sbom-rules", {"effect": "deny", "license": "GPL-3.0-only", "reason": "copyleft"}
    )
    assert res.status_code == 201 and res.json()["org_id"] is None
    listed = staff_api.call("GET", "staff/sbom-rules", {"limit": 100}).json()["data"]
    assert res.json()["id"] in [r["id"] for r in listed]
    assert staff_api.call("DELETE", f"staff/sbom-rules/{res.json()['id']}").status_code == 204
    err(staff_api.call("DELETE", f"staff/sbom-rules/{res.json()['id']}"), 404)


def test_an_org_cannot_add_allow_rules(publisher, api_for):
    admin = api_for(publisher.org, role=Role.ADMIN)
    error = err(admin.call("POST", f"orgs/{publisher.org.pk}/sbom-rules", {"effect": "allow", "name": "*"}), 400)
    assert error["code"] == "sbom_rule_org_allow" and error["param"] == "effect"
