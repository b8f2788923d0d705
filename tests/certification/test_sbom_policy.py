"""The ``sbom`` check: the SBOM policy applied to a package's components (apps/certification/sbom_policy.py)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps

from apps.certification.checks import CheckContext
from apps.certification.checks.sbom import SbomPolicyCheck
from apps.certification.models import SbomRule
from apps.certification.sbom_policy import DEFAULT_RULES, MAX_FINDINGS_PER_RULE
from apps.extensions.packages import build_package, read_package

MANIFEST = {"manifest_version": 1, "id": "acme.order-tagger", "version": "1.0.0", "name": "Order Tagger"}


def component(name: str, version: str = "1.0.0", *, license: str = "", expression: str = "", **extra) -> dict:
    doc = {"type": "library", "name": name, "version": version, **extra}
    if license:
        doc["licenses"] = [{"license": {"id": license}}]
    if expression:
        doc["licenses"] = [{"expression": expression}]
    return doc


def run_check(org, *components: dict):
    """Run the check on a package whose SBOM lists ``components``, published by ``org``."""
    sbom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": list(components)}
    version = SimpleNamespace(manifest=MANIFEST, extension=SimpleNamespace(org=org, org_id=org.pk, key=MANIFEST["id"]))
    ctx = CheckContext(version=version)
    ctx.__dict__["package"] = read_package(build_package({}, manifest=MANIFEST, sbom=sbom))
    return SbomPolicyCheck().run(ctx)


def rules_of(outcome, rule: str) -> list:
    return [f for f in outcome.findings if f.rule == rule]


@pytest.fixture
def default_policy(db):
    """The platform defaults of migration 0002 (present unless a transactional test flushed them)."""
    for rule in DEFAULT_RULES:
        fields = {"name": "", "version_range": "", "license": "", **rule}
        SbomRule.objects.get_or_create(org=None, **{k: v for k, v in fields.items() if k != "reason"}, defaults=fields)


@pytest.mark.django_db
def test_allowed_licence_passes(acme, default_policy):
    outcome = run_check(acme.org, component("left-pad", license="MIT"), component("tslib", license="0BSD"))

    assert outcome.status == "passed"
    assert outcome.findings == []
    assert outcome.measurements["components"] == 2
    assert outcome.measurements["passed"] == 2


@pytest.mark.django_db
def test_denies_component_by_name_glob(acme, default_policy):
    SbomRule.objects.create(effect="deny", name="Crypto-Miner*", reason="Mines coins on the merchant's dime.")

    outcome = run_check(acme.org, component("lodash", license="MIT"), component("crypto-miner-lite", license="MIT"))

    [finding] = outcome.findings
    assert (finding.rule, finding.severity) == ("sbom.denied", "error")
    assert "crypto-miner-lite 1.0.0" in finding.message
    assert "Mines coins on the merchant's dime." in finding.message
    assert finding.location == "sbom.cdx.json: components[1]"
    assert "Remove crypto-miner-lite" in finding.hint
    assert outcome.measurements["denied"] == 1


@pytest.mark.parametrize(
    ("version", "denied"),
    [("3.3.6", True), ("3.3.5", False), ("4.0.0", False), ("v3.3.6", True)],
)
@pytest.mark.django_db
def test_denies_component_by_name_only_inside_the_version_range(acme, default_policy, version, denied):
    outcome = run_check(acme.org, component("event-stream", version, license="MIT"))

    assert [f.rule for f in outcome.findings] == (["sbom.denied"] if denied else [])
    if denied:
        assert "flatmap-stream" in outcome.findings[0].message
        assert "outside 3.3.6" in outcome.findings[0].hint


@pytest.mark.django_db
def test_denies_component_by_licence(acme, default_policy):
    outcome = run_check(acme.org, component("mongo-thing", license="SSPL-1.0"))

    [finding] = outcome.findings
    assert finding.rule == "sbom.denied"
    assert "mongo-thing" in finding.message and "SSPL-1.0" in finding.message
    assert "Network copyleft" in finding.message


@pytest.mark.django_db
def test_deny_beats_allow(acme, default_policy):
    SbomRule.objects.create(effect="allow", name="copyleft-lib", reason="Reviewed by staff.")
    SbomRule.objects.create(effect="deny", name="bad-lib", reason="Known malware.")

    outcome = run_check(
        acme.org,
        component("copyleft-lib", license="AGPL-3.0-only"),  # allowed by name, denied by licence
        component("bad-lib", license="MIT"),  # allowed licence, denied by name
    )

    assert [(f.rule, f.location) for f in outcome.findings] == [
        ("sbom.denied", "sbom.cdx.json: components[0]"),
        ("sbom.denied", "sbom.cdx.json: components[1]"),
    ]


@pytest.mark.django_db
def test_a_choice_of_licences_passes_when_one_branch_is_allowed(acme, default_policy):
    outcome = run_check(acme.org, component("dual", expression="MIT OR AGPL-3.0-only"))

    assert outcome.findings == []
    assert outcome.status == "passed"


@pytest.mark.django_db
def test_a_conjunction_with_a_denied_licence_is_denied(acme, default_policy):
    outcome = run_check(acme.org, component("both", expression="MIT AND AGPL-3.0-only"))

    assert [f.rule for f in outcome.findings] == ["sbom.denied"]
    assert outcome.status == "failed"


@pytest.mark.django_db
def test_licence_off_the_allow_list_fails(acme, default_policy):
    outcome = run_check(acme.org, component("readline", license="GPL-3.0-only"))

    [finding] = outcome.findings
    assert (finding.rule, finding.severity) == ("sbom.license_not_allowed", "error")
    assert "GPL-3.0-only" in finding.message
    assert "MIT" in finding.hint  # the allowed licences are listed
    assert outcome.measurements["license_not_allowed"] == 1


@pytest.mark.django_db
def test_an_exception_does_not_make_a_licence_allowed_unless_its_base_is(acme, default_policy):
    classpath = component("jdk-bits", expression="GPL-2.0-only WITH Classpath-exception-2.0")

    assert [f.rule for f in run_check(acme.org, classpath).findings] == ["sbom.license_not_allowed"]

    SbomRule.objects.create(effect="allow", license="GPL-2.0-only")
    assert run_check(acme.org, classpath).findings == []


@pytest.mark.django_db
def test_unknown_licence_warns(acme, default_policy):
    doc = component("in-house", license="")
    doc["licenses"] = [{"license": {"name": "Acme Corp Proprietary"}}]

    outcome = run_check(acme.org, doc)

    [finding] = outcome.findings
    assert (finding.rule, finding.severity) == ("sbom.license_unknown", "warning")
    assert "Acme Corp Proprietary" in finding.message
    assert "spdx.org/licenses" in finding.hint
    assert outcome.status == "warned"


@pytest.mark.django_db
def test_missing_licence_warns(acme, default_policy):
    outcome = run_check(acme.org, component("mystery"))

    [finding] = outcome.findings
    assert finding.rule == "sbom.license_unknown"
    assert "declares no licence" in finding.message
    assert finding.location == "sbom.cdx.json: components[0]"


@pytest.mark.django_db
def test_org_rule_applies_only_to_that_orgs_versions(acme, globex, default_policy):
    SbomRule.objects.create(org=acme.org, effect="deny", name="moment", reason="We moved to date-fns.")
    moment = component("moment", "2.29.4", license="MIT")

    denied = run_check(acme.org, moment)
    assert [f.rule for f in denied.findings] == ["sbom.denied"]
    assert "your organisation's SBOM policy" in denied.findings[0].message

    assert run_check(globex.org, moment).findings == []


@pytest.mark.django_db
def test_a_platform_named_allow_overrides_unknown_and_refused_licences(acme, default_policy):
    SbomRule.objects.create(org=None, effect="allow", name="in-house-*", reason="Reviewed by legal.")
    unlicensed, gpl = component("in-house-utils"), component("in-house-gpl", license="GPL-3.0-only")
    outcome = run_check(acme.org, unlicensed, gpl)
    assert outcome.findings == []
    assert outcome.measurements["allowed_by_name"] == 2


@pytest.mark.django_db
def test_an_orgs_own_allow_rules_do_not_weaken_the_platform_policy(acme, default_policy):
    # (the API refuses them; a row written anyway, e.g. before that rule existed, is ignored)
    SbomRule.objects.create(org=acme.org, effect="allow", name="*", reason="Allow everything.")
    SbomRule.objects.create(org=acme.org, effect="allow", license="GPL-3.0-only")
    unlicensed, gpl = component("in-house-utils"), component("in-house-gpl", license="GPL-3.0-only")
    assert {f.rule for f in run_check(acme.org, unlicensed, gpl).findings} == {
        "sbom.license_unknown",
        "sbom.license_not_allowed",
    }


@pytest.mark.django_db
def test_invalid_rule_is_skipped_and_reported(acme, default_policy):
    broken = SbomRule.objects.create(effect="deny", name="lodash", version_range=">=1 <", reason="Typo.")
    SbomRule.objects.create(effect="deny", license="MIT OR ISC")  # an expression, not one licence

    outcome = run_check(acme.org, component("lodash", "4.17.21", license="MIT"))

    invalid = rules_of(outcome, "sbom.rule_invalid")
    assert [f.severity for f in invalid] == ["info", "info"]
    assert broken.pk in invalid[0].message and ">=1 <" in invalid[0].message
    assert outcome.status == "passed"  # the broken rule denies nothing
    assert outcome.measurements["rules"] == len(DEFAULT_RULES)


@pytest.mark.django_db
def test_unparsed_version_does_not_match_a_range_and_is_noted_once(acme, default_policy):
    SbomRule.objects.create(effect="deny", name="event-stream", version_range="<3", reason="Old.")

    outcome = run_check(acme.org, component("event-stream", "latest", license="MIT"))

    assert [f.rule for f in outcome.findings] == ["sbom.version_unparsed"]
    assert "'latest'" in outcome.findings[0].message
    assert outcome.status == "passed"


@pytest.mark.django_db
def test_measurements_count_components_by_outcome(acme, default_policy):
    outcome = run_check(
        acme.org,
        component("a", license="MIT"),
        component("b", license="AGPL-3.0-or-later"),
        component("c", license="GPL-3.0-only"),
        component("d"),
    )

    assert outcome.measurements == {
        "components": 4,
        "passed": 1,
        "denied": 1,
        "license_not_allowed": 1,
        "license_unknown": 1,
        "allowed_by_name": 0,
        "rules": len(DEFAULT_RULES),
    }
    assert outcome.summary == "4 components: 1 denied, 1 with a licence not allowed, 1 with an unknown licence."


@pytest.mark.django_db
def test_findings_per_rule_are_capped(acme, default_policy):
    many = [component(f"pkg-{i}") for i in range(MAX_FINDINGS_PER_RULE + 5)]

    outcome = run_check(acme.org, *many)

    unknown = rules_of(outcome, "sbom.license_unknown")
    assert len(unknown) == MAX_FINDINGS_PER_RULE + 1
    assert unknown[-1].message.startswith("5 more components")
    assert outcome.measurements["license_unknown"] == MAX_FINDINGS_PER_RULE + 5


def test_migration_seeds_a_literal_copy_of_the_defaults():
    migration = importlib.import_module("apps.certification.migrations.0002_default_sbom_rules")

    assert [dict(rule) for rule in migration.DEFAULT_RULES] == [dict(rule) for rule in DEFAULT_RULES]


@pytest.mark.django_db
def test_migration_is_reversible_and_idempotent(default_policy):
    migration = importlib.import_module("apps.certification.migrations.0002_default_sbom_rules")
    custom = SbomRule.objects.create(effect="deny", name="left-pad")

    migration.backwards(django_apps, None)
    assert list(SbomRule.objects.all()) == [custom]

    migration.forwards(django_apps, None)
    migration.forwards(django_apps, None)
    assert SbomRule.objects.filter(org=None).exclude(pk=custom.pk).count() == len(DEFAULT_RULES)
