"""The certification corpus: packages built here from the sources in tests/certification/corpus
(WAT), pdk/assemblyscript and pdk/c, each tripping exactly one check with a known rule, and clean
ones that pass every check. All run the full default check list (settings)."""

from __future__ import annotations

import importlib.util

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apps.extensions.models import ExtensionVersion
from apps.extensions.packages import MINIMAL_SBOM
from apps.extensions.signing import sign_package
from tests.certification.conftest import clean_files, clean_manifest, not_passed, rules, wat
from tests.extensions.conftest import publish_draft

pytestmark = pytest.mark.django_db

BASE_SCOPES = ["events:read:order.created", "agent:tools"]  # without kv:write: these hooks keep no data


def _hook_only(module: bytes) -> tuple[dict, dict]:
    """A package whose one hook (on order.created) is ``module``'s on_order_created, plus the clean tool."""
    files = {**clean_files(), "modules/main.wasm": module}
    return clean_manifest(scopes=BASE_SCOPES), files


def assert_only(run, check_id: str, rule: str, status: str = "failed") -> None:
    assert not_passed(run) == {check_id: status}, {c.check_id: c.findings for c in run.checks.all()}
    severity = "error" if status == "failed" else "warning"
    assert rule in rules(run, severity), rules(run)


@pytest.fixture(scope="session")
def c_order_tagger(tmp_path_factory) -> bytes:
    if importlib.util.find_spec("ziglang") is None:
        pytest.skip("the ziglang package is not installed (pip install -r requirements-dev.txt)")
    from tests.runtime.test_toolchain_c import PDK, build

    return build(PDK / "examples" / "order_tagger.c", tmp_path_factory.mktemp("c") / "order_tagger.wasm")


# --- clean ---------------------------------------------------------------------------------------
def test_clean_assemblyscript_package_passes_every_check(certify):
    run = certify(clean_manifest(), clean_files())
    assert not_passed(run) == {} and run.status == "passed"
    assert ExtensionVersion.objects.get(pk=run.version_id).status == "certified"


def test_clean_c_package_passes_every_check(certify, c_order_tagger):
    run = certify(clean_manifest(), {**clean_files(), "modules/main.wasm": c_order_tagger})
    assert not_passed(run) == {} and run.status == "passed"


# --- one check each ------------------------------------------------------------------------------
def test_undeclared_import_fails_module_lint(certify):
    # kv_writer imports plaza.kv_set, and the manifest does not declare kv:write
    run = certify(*_hook_only(wat("kv_writer")))
    assert_only(run, "module", "module.undeclared_import")
    assert run.status == "failed"
    # the sandbox did not run it (it would not link) and says where to look, without failing
    assert "smoke.not_started" in rules(run, "info")


def test_missing_export_fails_module_lint(certify):
    doc = clean_manifest(hooks=[{"event": "order.created", "module": "main", "export": "on_order_placed"}])
    run = certify(doc, clean_files())
    assert_only(run, "module", "module.missing_export")


def test_denied_dependency_fails_the_sbom_policy(certify):
    sbom = {
        **MINIMAL_SBOM,
        "components": [
            {"type": "library", "name": "left-pad", "version": "1.3.0", "licenses": [{"license": {"id": "MIT"}}]},
            {"type": "library", "name": "event-stream", "version": "3.3.6", "licenses": [{"license": {"id": "MIT"}}]},
        ],
    }
    run = certify(clean_manifest(), clean_files(), sbom=sbom)
    assert_only(run, "sbom", "sbom.denied")


def test_bad_signature_fails_the_signature_check(certify):
    # the stored signature was made by a key that is not the one on record (e.g. a tampered row)
    def resign(version):
        forged = sign_package(Ed25519PrivateKey.generate(), version.package_sha256)
        ExtensionVersion.objects.filter(pk=version.pk).update(signature=forged)

    run = certify(clean_manifest(), clean_files(), before_submit=resign)
    assert_only(run, "signature", "signature.invalid")


def test_output_schema_mismatch_fails_the_smoke_test(certify):
    doc = clean_manifest()
    doc["modules"]["counter"] = "modules/counter.wasm"
    doc["tool_packs"][0]["tools"].append(
        {
            "name": "count",
            "description": "Counts things.",
            "module": "counter",
            "export": "count",
            "input_schema": {"type": "object"},
            "output_schema": {
                "type": "object",
                "required": ["count"],
                "properties": {"count": {"type": "integer"}},
            },
        }
    )
    run = certify(doc, {**clean_files(), "modules/counter.wasm": wat("wrong_tool")})
    assert_only(run, "smoke", "smoke.output_schema_mismatch")


def test_infinite_loop_fails_the_smoke_test(certify):
    run = certify(*_hook_only(wat("spin")))
    assert_only(run, "smoke", "smoke.fuel_exhausted")
    call = next(c for c in run.checks.get(check_id="smoke").measurements["calls"] if c["export"] == "on_order_created")
    assert call["fuel"] > 10_000_000  # it ran to the end of its budget, and no further


def test_memory_bomb_fails_the_smoke_test(certify):
    run = certify(*_hook_only(wat("memory_bomb")))
    assert_only(run, "smoke", "smoke.memory_limit")


def test_typosquat_name_is_flagged_by_the_abuse_heuristics_for_review(certify, globex):
    # given globex publishes a certified "order-tager"
    _, version, _ = publish_draft(globex.org, Ed25519PrivateKey.generate(), name="order-tager", key_name="k")
    ExtensionVersion.objects.filter(pk=version.pk).update(status="certified")
    # when acme submits "order-tagger", one letter away
    run = certify(clean_manifest(), clean_files())
    # then only the abuse check fails, and (a heuristic) it sends the run to staff review
    assert_only(run, "abuse", "abuse.typosquat")
    assert run.status == "review"
