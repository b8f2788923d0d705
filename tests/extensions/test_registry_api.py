"""The extension registry through the API: extensions, signed uploads, the version rules, scope
changes, the lifecycle and signing keys."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apps.audit.models import AuditEvent
from apps.extensions import services
from apps.extensions.models import ExtensionVersion, SigningKey, VersionStatus
from apps.extensions.signing import sign_package, verify_countersignature
from apps.extensions.storage import read_artifact
from tests.extensions.conftest import WASM, manifest, package_bytes, public_b64
from tests.orgs.test_authorization import assert_error

pytestmark = pytest.mark.django_db


def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


# --- extensions ----------------------------------------------------------------------------------
def test_extension_id_is_publisher_dot_name(publisher):
    assert publisher.extension.key == "acme.order-tagger"
    res = publisher.api.call("GET", f"orgs/{publisher.org.pk}/extensions")
    assert [e["key"] for e in res.json()["data"]] == ["acme.order-tagger"]


@pytest.mark.parametrize("name", ["Order", "-x", "x-", "a_b", "a.b", "", "x" * 65, "ünï"])
def test_extension_name_must_be_lowercase_words(publisher, name):
    res = publisher.api.call("POST", f"orgs/{publisher.org.pk}/extensions", {"name": name})
    assert res.status_code == 400, res.content


def test_extension_id_is_never_reused_even_after_deletion(publisher, api_for):
    admin = api_for(publisher.org, role="admin")
    url = f"orgs/{publisher.org.pk}/extensions"
    assert admin.call("DELETE", f"{url}/{publisher.extension.pk}").status_code == 204
    assert admin.call("GET", f"{url}/{publisher.extension.pk}").status_code == 404
    assert admin.call("GET", url).json()["data"] == []
    error = assert_error(admin.call("POST", url, {"name": "order-tagger"}), 409, "extension_id_taken")
    assert "never reused" in error["message"]


# --- uploads -------------------------------------------------------------------------------------
def test_signed_upload_creates_an_immutable_draft(publisher):
    res = publisher.upload()
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["version"] == "1.0.0" and body["status"] == "draft" and body["channel"] == "stable"
    assert body["scopes"] == ["events:read:order.created", "kv:read"]
    # nothing installable came before: every scope is new, and asks for consent
    assert body["previous_version"] is None and body["requires_consent"]
    assert [c["change"] for c in body["scope_changes"]] == ["added", "added"]
    assert body["signing_key"]["fingerprint"] == publisher.key.fingerprint
    # the artifact is stored under its digest and reads back verified
    data = package_bytes(manifest())
    assert body["package_sha256"] == hashlib.sha256(data).hexdigest()
    assert read_artifact(body["package_sha256"]) == data
    # the upload is audited
    assert AuditEvent.objects.filter(org_id=publisher.org.pk, action="extension_version.uploaded").count() == 1
    # and the row refuses any change to its content
    version = ExtensionVersion.objects.get(pk=body["id"])
    version.manifest = {}
    with pytest.raises(ValueError):
        version.save()
    with pytest.raises(ValueError):
        version.save(update_fields=["manifest"])


def test_every_manifest_problem_is_reported_at_once_with_its_path(publisher):
    doc = manifest(
        version="1.0",
        scopes=["events:read:order.created", "kv:admin", "http:fetch:10.0.0.1"],
        hooks=[{"event": "order.fulfilled", "module": "other", "export": "go"}],
        colour="blue",
    )
    res = publisher.upload(doc)
    error = assert_error(res, 400, "manifest_invalid")
    found = {(d["path"], d["rule"]) for d in error["details"]}
    assert {
        ("$.version", "pattern"),
        ("$.colour", "additionalProperties"),
        ("$.scopes[1]", "scope_unknown"),
        ("$.scopes[2]", "scope_unknown"),
        ("$.hooks[0].event", "scope_missing"),
        ("$.hooks[0].module", "module_undeclared"),
    } <= found, found
    assert ExtensionVersion.objects.count() == 0


def test_manifest_must_name_this_extension_and_existing_files(publisher):
    doc = manifest(id="acme.other", modules={"main": "modules/missing.wasm"}, icon="assets/icon.png")
    error = assert_error(publisher.upload(doc), 400, "manifest_invalid")
    found = {(d["path"], d["rule"]) for d in error["details"]}
    assert {("$.id", "id_mismatch"), ("$.modules.main", "file_missing"), ("$.icon", "file_missing")} <= found


def test_unknown_event_types_are_refused(publisher):
    doc = manifest(scopes=["events:read:order.created", "events:read:invoice.paid"])
    error = assert_error(publisher.upload(doc), 400, "manifest_invalid")
    assert ("$.scopes[1]", "event_type_unknown") in {(d["path"], d["rule"]) for d in error["details"]}


def test_a_version_number_is_never_reused(publisher):
    assert publisher.upload().status_code == 201
    # the same number with different content
    again = publisher.upload(manifest(summary="Another build of the same number."))
    assert_error(again, 409, "version_exists")


def test_a_new_version_must_be_greater_than_every_earlier_one(publisher):
    assert publisher.upload(manifest(version="1.2.0")).status_code == 201
    error = assert_error(publisher.upload(manifest(version="1.1.9")), 409, "version_not_greater")
    assert "1.2.0" in error["message"]
    assert publisher.upload(manifest(version="1.3.0-beta.1"), channel="beta").status_code == 201
    # 1.3.0 > 1.3.0-beta.1 by semver precedence
    assert publisher.upload(manifest(version="1.3.0")).status_code == 201


def test_pre_releases_do_not_go_to_the_stable_channel(publisher):
    assert_error(publisher.upload(manifest(version="2.0.0-rc.1")), 400, "channel_prerelease")
    assert_error(publisher.upload(channel="nightly"), 400, "channel_invalid")


def test_build_metadata_is_refused(publisher):
    error = assert_error(publisher.upload(manifest(version="1.0.0+build.5")), 400, "manifest_invalid")
    assert error["details"][0]["path"] == "$.version"


# --- signatures and keys -------------------------------------------------------------------------
def test_a_bad_signature_is_refused(publisher):
    other = Ed25519PrivateKey.generate()
    data = package_bytes(manifest())
    forged = sign_package(other, hashlib.sha256(data).hexdigest())
    assert_error(publisher.upload(data=data, signature=forged), 400, "signature_invalid")
    # a valid signature of other bytes
    stale = sign_package(publisher.private, hashlib.sha256(b"other").hexdigest())
    assert_error(publisher.upload(data=data, signature=stale), 400, "signature_invalid")
    assert_error(publisher.upload(data=data, signature="not base64!"), 400, "signature_malformed")
    assert ExtensionVersion.objects.count() == 0


def test_a_revoked_key_is_refused(publisher, api_for):
    admin = api_for(publisher.org, role="admin")
    res = admin.call("POST", f"orgs/{publisher.org.pk}/signing-keys/{publisher.key.pk}/revoke", {"reason": "leaked"})
    assert res.status_code == 200 and res.json()["status"] == "revoked"
    assert_error(publisher.upload(), 400, "signing_key_revoked")


def test_rotation_retires_the_old_key_and_the_new_one_signs(publisher, api_for):
    admin = api_for(publisher.org, role="admin")
    new_private = Ed25519PrivateKey.generate()
    res = admin.call(
        "POST",
        f"orgs/{publisher.org.pk}/signing-keys/{publisher.key.pk}/rotate",
        {"name": "ci", "public_key": public_b64(new_private)},
    )
    assert res.status_code == 201, res.content
    new_id = res.json()["id"]
    old = admin.call("GET", f"orgs/{publisher.org.pk}/signing-keys/{publisher.key.pk}").json()
    assert old["status"] == "retired" and old["replaced_by_id"] == new_id
    assert_error(publisher.upload(), 400, "signing_key_retired")
    publisher.private = new_private
    assert publisher.upload(key_id=new_id).status_code == 201


def test_keys_of_another_org_cannot_sign(publisher, globex, api_for):
    other_admin = api_for(globex.org, role="admin")
    private = Ed25519PrivateKey.generate()
    res = other_admin.call(
        "POST", f"orgs/{globex.org.pk}/signing-keys", {"name": "k", "public_key": public_b64(private)}
    )
    publisher.private = private
    assert_error(publisher.upload(key_id=res.json()["id"]), 400, "signing_key_unknown")


@pytest.mark.parametrize("public_key", ["", "abc", base64.b64encode(b"x" * 31).decode(), "-----BEGIN PUBLIC KEY-----"])
def test_invalid_public_keys_are_refused(publisher, api_for, public_key):
    admin = api_for(publisher.org, role="admin")
    res = admin.call("POST", f"orgs/{publisher.org.pk}/signing-keys", {"name": "k", "public_key": public_key})
    assert res.status_code == 400, res.content


def test_the_same_key_is_registered_once(publisher, api_for):
    admin = api_for(publisher.org, role="admin")
    body = {"name": "again", "public_key": public_b64(publisher.private)}
    assert_error(admin.call("POST", f"orgs/{publisher.org.pk}/signing-keys", body), 409, "signing_key_exists")


# --- hostile packages through the API ------------------------------------------------------------
def _symlink() -> bytes:
    info = zipfile.ZipInfo("modules/main.wasm")
    info.external_attr = 0o120777 << 16
    return _zip([("extension.json", b"{}"), (info, b"/etc/passwd")])


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (_zip([("../evil.txt", b"x"), ("extension.json", b"{}")]), "package_path_unsafe"),
        (_zip([("/etc/cron.d/x", b"x")]), "package_path_unsafe"),
        (_symlink(), "package_symlink"),
        (_zip([("extension.json", b"{}"), ("assets/zeros.bin", b"\0" * (8 * 1024 * 1024))]), "package_zip_bomb"),
        (b"PK\x03\x04 definitely not a zip", "package_not_zip"),
        (_zip([("modules/main.wasm", WASM)]), "package_manifest_missing"),
    ],
    ids=["zip-slip", "absolute-path", "symlink", "zip-bomb", "not-a-zip", "no-manifest"],
)
def test_hostile_packages_are_refused_with_a_clear_error(publisher, data, code):
    error = assert_error(publisher.upload(data=data), 400, code)
    assert error["param"] == "package"
    assert ExtensionVersion.objects.count() == 0


def test_an_oversized_package_is_refused_before_it_is_read(publisher, settings):
    settings.PLAZA_PACKAGE_MAX_BYTES = 10_000
    settings.PLAZA_MAX_REQUEST_BYTES = 50_000
    noise = random.Random(7).randbytes
    data = package_bytes(manifest(), files={"assets/noise.bin": noise(20_000)})
    assert_error(publisher.upload(data=data), 400, "package_too_large")
    huge = package_bytes(manifest(), files={"assets/noise.bin": noise(60_000)})
    assert_error(publisher.upload(data=huge), 413, "payload_too_large")


# --- scope changes -------------------------------------------------------------------------------
def _certify(version_id: str) -> ExtensionVersion:
    version = ExtensionVersion.objects.get(pk=version_id)
    for status in ("submitted", "certifying", "certified"):
        version = services.version_transition(version=version, to=status)
    return version


def test_scope_changes_against_the_previous_version_are_classified(publisher):
    _certify(publisher.upload().json()["id"])
    doc = manifest(
        version="1.1.0",
        scopes=["events:read:order.created", "kv:write", "http:fetch:api.example.com"],
    )
    res = publisher.upload(doc)
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["previous_version"] == "1.0.0"
    assert body["scope_changes"] == [
        {"scope": "http:fetch:api.example.com", "change": "added", "replaces": None},
        {"scope": "kv:write", "change": "escalation", "replaces": "kv:read"},
    ]
    assert body["requires_consent"] is True
    _certify(body["id"])
    res = publisher.upload(manifest(version="1.2.0", scopes=["events:read:order.created"]))
    assert res.json()["scope_changes"] == [
        {"scope": "http:fetch:api.example.com", "change": "removed", "replaces": None},
        {"scope": "kv:write", "change": "removed", "replaces": None},
    ]
    assert res.json()["requires_consent"] is False


# --- lifecycle -----------------------------------------------------------------------------------
def test_submit_moves_a_draft_on_once(publisher):
    version_id = publisher.upload().json()["id"]
    url = f"orgs/{publisher.org.pk}/extensions/{publisher.extension.pk}/versions/{version_id}/submit"
    res = publisher.api.call("POST", url)
    assert res.status_code == 200 and res.json()["status"] == "submitted" and res.json()["submitted_at"]
    assert_error(publisher.api.call("POST", url), 409, "version_status_conflict")


def test_lifecycle_follows_the_transition_table(publisher):
    version = ExtensionVersion.objects.get(pk=publisher.upload().json()["id"])
    with pytest.raises(Exception, match="cannot become published"):
        services.version_transition(version=version, to=VersionStatus.PUBLISHED)
    for status in ("submitted", "certifying", "certified", "published", "yanked"):
        version = services.version_transition(version=version, to=status)
        # becoming certified adds the platform's countersignature
        assert (version.countersignature is not None) == (status in ("certified", "published", "yanked"))
    assert version.status == "yanked"
    actions = list(
        AuditEvent.objects.filter(org_id=publisher.org.pk, action__startswith="extension_version.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "extension_version.uploaded",
        "extension_version.submitted",
        "extension_version.certifying",
        "extension_version.certified",
        "extension_version.published",
        "extension_version.yanked",
    ]


def test_certified_versions_carry_a_verifiable_platform_countersignature(publisher):
    version = ExtensionVersion.objects.get(pk=publisher.upload().json()["id"])
    version = services.version_countersign(version=version)
    fields = {
        "extension_id": "acme.order-tagger",
        "version": "1.0.0",
        "digest_hex": version.package_sha256,
        "publisher_signature": version.signature,
    }
    assert verify_countersignature(version.countersignature, **fields)
    assert not verify_countersignature(version.countersignature, **{**fields, "version": "1.0.1"})


def test_versions_list_newest_first_with_pagination(publisher):
    for minor in range(3):
        assert publisher.upload(manifest(version=f"1.{minor}.0")).status_code == 201
    url = f"orgs/{publisher.org.pk}/extensions/{publisher.extension.pk}/versions"
    first = publisher.api.call("GET", url, {"limit": 2}).json()
    assert [v["version"] for v in first["data"]] == ["1.2.0", "1.1.0"]
    rest = publisher.api.call("GET", url, {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [v["version"] for v in rest["data"]] == ["1.0.0"] and rest["next_cursor"] is None


# --- tenancy -------------------------------------------------------------------------------------
def test_another_tenant_sees_nothing(publisher, globex, api_for):
    version_id = publisher.upload().json()["id"]
    outsider = api_for(globex.org, role="owner")
    ext = publisher.extension.pk
    for path in (
        f"orgs/{publisher.org.pk}/extensions",
        f"orgs/{publisher.org.pk}/extensions/{ext}",
        f"orgs/{publisher.org.pk}/extensions/{ext}/versions/{version_id}",
        f"orgs/{publisher.org.pk}/signing-keys/{publisher.key.pk}",
        f"orgs/{globex.org.pk}/extensions/{ext}",
        f"orgs/{globex.org.pk}/extensions/{ext}/versions",
        f"orgs/{globex.org.pk}/signing-keys/{publisher.key.pk}",
    ):
        assert_error(outsider.call("GET", path), 404)
    url = f"orgs/{globex.org.pk}/extensions/{ext}/versions/{version_id}/submit"
    assert_error(outsider.call("POST", url), 404)
    assert ExtensionVersion.objects.get(pk=version_id).status == "draft"


def test_a_version_is_only_found_under_its_own_extension(publisher, api_for):
    version_id = publisher.upload().json()["id"]
    other = publisher.api.call("POST", f"orgs/{publisher.org.pk}/extensions", {"name": "second"}).json()["id"]
    url = f"orgs/{publisher.org.pk}/extensions/{other}/versions/{version_id}"
    assert_error(publisher.api.call("GET", url), 404)


def test_countersignatures_survive_a_platform_key_rotation(publisher, settings):
    from apps.extensions.signing import platform_public_keys

    settings.PLAZA_SIGNING_KEY = base64.b64encode(b"\x01" * 32).decode()
    version = services.version_countersign(version=ExtensionVersion.objects.get(pk=publisher.upload().json()["id"]))
    fields = {
        "extension_id": version.extension.key,
        "version": version.version,
        "digest_hex": version.package_sha256,
        "publisher_signature": version.signature,
    }
    old_public = platform_public_keys()[0]["public_key"]
    # when the platform rotates to a new key
    settings.PLAZA_SIGNING_KEY = base64.b64encode(b"\x02" * 32).decode()
    assert not verify_countersignature(version.countersignature, **fields)
    # then publishing the old public key keeps earlier countersignatures valid
    settings.PLAZA_SIGNING_KEYS_PREVIOUS = [old_public]
    assert verify_countersignature(version.countersignature, **fields)
    assert [k["status"] for k in platform_public_keys()] == ["current", "retired"]


def test_a_malformed_platform_key_stops_the_system_checks(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.PLAZA_SIGNING_KEYS_PREVIOUS = ["not-a-key"]
    with pytest.raises(SystemCheckError, match="plaza.E001"):
        call_command("check")


def test_the_platform_keys_are_published(client):
    res = client.get("/.well-known/plaza-signing-keys.json")
    assert res.status_code == 200 and res["Access-Control-Allow-Origin"] == "*"
    (key,) = res.json()["keys"]
    assert key["algorithm"] == "ed25519" and key["key_id"].startswith("SHA256:") and key["status"] == "current"


def test_an_escalation_cannot_hide_behind_a_version_nobody_installed(publisher):
    # given 1.0.0 certified with kv:read, and 1.1.0 escalating, rejected
    _certify(publisher.upload().json()["id"])
    wide = ["events:read:order.created", "kv:write", "http:fetch:exfil.example.com"]
    rejected = _certify_then(publisher.upload(manifest(version="1.1.0", scopes=wide)).json()["id"], "rejected")
    assert rejected.status == "rejected"
    # when 1.2.0 asks for the same scopes as the rejected one
    body = publisher.upload(manifest(version="1.2.0", scopes=wide)).json()
    # then its changes are measured from 1.0.0, which installations can hold
    assert body["previous_version"] == "1.0.0" and body["requires_consent"] is True
    assert {c["scope"]: c["change"] for c in body["scope_changes"]} == {
        "http:fetch:exfil.example.com": "added",
        "kv:write": "escalation",
    }


def _certify_then(version_id: str, last: str) -> ExtensionVersion:
    version = ExtensionVersion.objects.get(pk=version_id)
    for status in ("submitted", "certifying", last):
        version = services.version_transition(version=version, to=status)
    return version


def test_scope_changes_are_measured_again_at_certification(publisher):
    # 1.1.0 is uploaded while 1.0.0 is still a draft, so it compares with nothing ...
    first = publisher.upload().json()["id"]
    second = publisher.upload(manifest(version="1.1.0", scopes=["events:read:order.created", "kv:write"])).json()
    assert second["previous_version"] is None
    # ... but once 1.0.0 is certified, certifying 1.1.0 measures from it
    _certify(first)
    version = _certify(second["id"])
    assert version.previous.version == "1.0.0"
    assert version.scope_changes == [{"scope": "kv:write", "change": "escalation", "replaces": "kv:read"}]
    # and afterwards they are fixed
    version.scope_changes = []
    with pytest.raises(ValueError):
        version.save(update_fields=["scope_changes"])


def test_leaving_certified_withdraws_the_countersignature(publisher):
    version = _certify(publisher.upload().json()["id"])
    assert version.countersignature
    version = services.version_transition(version=version, to="certifying")
    assert version.countersignature is None
    version = services.version_transition(version=version, to="rejected")
    assert version.countersignature is None


def test_a_version_signed_by_a_revoked_key_is_not_certified(publisher):
    version = ExtensionVersion.objects.get(pk=publisher.upload().json()["id"])
    for status in ("submitted", "certifying"):
        version = services.version_transition(version=version, to=status)
    services.signing_key_revoke(principal=None, key=publisher.key, reason="leaked")
    with pytest.raises(Exception, match="revoked") as caught:
        services.version_transition(version=version, to="certified")
    assert getattr(caught.value, "code", "") == "signing_key_revoked"
    version.refresh_from_db()
    assert version.status == "certifying" and version.countersignature is None


def test_a_stale_copy_of_a_key_cannot_undo_a_revocation(publisher):
    # given two requests that loaded the same active key
    stale = SigningKey.objects.get(pk=publisher.key.pk)
    services.signing_key_revoke(principal=None, key=SigningKey.objects.get(pk=publisher.key.pk), reason="leaked")
    # when the slower one rotates it
    new = Ed25519PrivateKey.generate()
    with pytest.raises(Exception, match="Only an active key"):
        services.signing_key_rotate(principal=None, key=stale, name="next", public_key=public_b64(new))
    # then the key stays revoked and no successor exists
    assert SigningKey.objects.get(pk=publisher.key.pk).status == "revoked"
    assert not SigningKey.objects.filter(name="next").exists()


def test_signatures_are_stored_in_one_canonical_form(publisher):
    data = package_bytes(manifest())
    standard = sign_package(publisher.private, hashlib.sha256(data).hexdigest())
    urlsafe = " " + standard.replace("+", "-").replace("/", "_").rstrip("=") + " "
    body = publisher.upload(data=data, signature=urlsafe).json()
    assert body["signature"] == standard
