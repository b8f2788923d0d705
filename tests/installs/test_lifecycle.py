"""Installing (consent, installable versions, rules, permissions), configuring (defaults, server-side
validation, secrets) and what install leaves behind (history, audit, service account, notification)."""

from __future__ import annotations

import json

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import Conflict, ValidationFailed
from apps.extensions.models import ExtensionVersion
from apps.installs import services
from apps.installs.models import Installation, InstallationVersion, InstallRule
from apps.installs.signals import installation_changed
from apps.orgs.models import Role, ServiceAccount
from tests.installs.conftest import CONFIG_SCHEMA
from tests.installs.support import install, installed, person, sandbox_of, session
from tests.orgs.test_authorization import assert_error


@pytest.fixture
def alice_api(acme):
    return session(acme.owner)


# --- install --------------------------------------------------------------------------------------
def test_install_with_exact_consent_creates_the_installation(
    acme, vendor, alice_api, django_capture_on_commit_callbacks
):
    # given a certified version on the stable channel
    version = vendor.release(scopes=["events:read:order.created", "kv:read"])
    heard = []

    def listener(sender, installation, action, actor_id, **kwargs):
        heard.append((installation.pk, action, actor_id))

    installation_changed.connect(listener, dispatch_uid="test-listener")
    try:
        # when alice installs it, consenting to exactly its scopes
        with django_capture_on_commit_callbacks(execute=True):
            res = install(alice_api, acme.org, version, scopes=["kv:read", "events:read:order.created"])
    finally:
        installation_changed.disconnect(dispatch_uid="test-listener")
    # then it is installed, following stable automatically, with the grant she gave
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["version"] == {"id": version.pk, "version": "1.0.0", "status": "published"}
    assert (body["channel"], body["update_policy"], body["status"]) == ("stable", "auto", "active")
    assert body["granted_scopes"] == ["events:read:order.created", "kv:read"]
    assert body["effective_scopes"] == ["events:read:order.created", "kv:read"]
    assert {line["scope"] for line in body["scopes"]} == set(body["granted_scopes"])
    installation = Installation.objects.get(pk=body["id"])
    assert installation.installed_by == acme.owner
    # and the history, the audit entry, the managed service account and the notification exist
    history = list(InstallationVersion.objects.filter(installation=installation).values_list("action", "version_id"))
    assert history == [("install", version.pk)]
    audit = AuditEvent.objects.get(org_id=acme.org.pk, action="installation.created")
    assert audit.target_id == installation.pk and audit.actor_id == str(acme.owner.pk)
    account = ServiceAccount.objects.get(installation_id=installation.pk)
    assert (account.org_id, account.role) == (acme.org.pk, Role.ADMIN)
    assert heard == [(installation.pk, "created", str(acme.owner.pk))]


@pytest.mark.parametrize(
    "granted",
    [
        pytest.param(["kv:read"], id="missing-a-scope"),
        pytest.param(["events:read:order.created", "kv:read", "kv:write"], id="an-extra-scope"),
        pytest.param([], id="nothing"),
    ],
)
def test_install_refuses_consent_that_is_not_exactly_the_version_scopes(acme, vendor, alice_api, granted):
    version = vendor.release()
    res = install(alice_api, acme.org, version, scopes=granted)
    error = assert_error(res, 400, "consent_mismatch")
    assert error["param"] == "granted_scopes"
    assert not Installation.objects.filter(org=acme.org).exists()
    assert not ServiceAccount.objects.filter(org=acme.org).exclude(installation_id="").exists()


def test_install_takes_what_the_channel_serves(acme, vendor, alice_api):
    vendor.release(version="1.0.0")
    beta = vendor.release(version="1.1.0-beta.1", channel="beta")
    res = install(alice_api, acme.org, beta, channel="beta")
    assert res.status_code == 201, res.content
    assert res.json()["version"]["id"] == beta.pk
    assert res.json()["channel"] == "beta"


def test_install_refuses_an_uncertified_version_outside_a_sandbox(acme, vendor, alice_api):
    # given a draft the publisher never had certified
    draft = vendor.release("draft-ext", "0.1.0", certified=False)
    # when acme asks for it
    res = install(alice_api, acme.org, draft, version_id=draft.pk)
    # then it is not installable
    assert_error(res, 409, "version_not_installable")
    assert not Installation.objects.filter(org=acme.org).exists()


def test_install_refuses_an_extension_whose_channel_serves_nothing(acme, vendor, alice_api):
    draft = vendor.release("draft-ext", "0.1.0", certified=False)
    assert_error(install(alice_api, acme.org, draft), 409, "version_not_installable")


def test_a_publishers_sandbox_installs_its_uncertified_version(vendor):
    # given the publisher's sandbox tenant and a draft of the publisher's own extension
    draft = vendor.release("draft-ext", "0.1.0", certified=False)
    sandbox = sandbox_of(vendor.org)
    # when vera (the publisher's owner, so owner of its sandbox too) installs it there
    installation = services.installation_create(
        principal=person(vendor.tenant.owner),
        org=sandbox,
        extension=draft.extension,
        granted_scopes=list(draft.scopes),
    )
    # then the draft runs in the sandbox
    assert (installation.org_id, installation.version_id) == (sandbox.pk, draft.pk)


def test_a_sandbox_cannot_install_another_publishers_uncertified_version(vendor, globex):
    draft = vendor.release("draft-ext", "0.1.0", certified=False)
    sandbox = sandbox_of(globex.org)
    with pytest.raises(Conflict) as caught:
        services.installation_create(
            principal=person(globex.owner),
            org=sandbox,
            extension=draft.extension,
            granted_scopes=list(draft.scopes),
            version=draft,
        )
    assert caught.value.code == "version_not_installable"


@pytest.mark.parametrize("role", [Role.MEMBER, Role.DEVELOPER, Role.BILLING])
def test_a_member_without_install_permission_is_refused(acme, vendor, role):
    version = vendor.release()
    res = install(session(acme.user(role)), acme.org, version)
    assert_error(res, 403, "role")
    assert not Installation.objects.filter(org=acme.org).exists()


def test_bob_the_member_cannot_install(acme, vendor, bob):
    version = vendor.release()
    assert_error(install(session(bob), acme.org, version), 403, "role")


def test_installing_twice_is_a_conflict(acme, vendor, alice_api):
    version = vendor.release()
    installed(alice_api, acme.org, version)
    assert_error(install(alice_api, acme.org, version), 409, "already_installed")
    assert Installation.objects.filter(org=acme.org).count() == 1


@pytest.mark.parametrize(
    ("kind", "value", "code"),
    [
        ("extension", lambda v: v.extension_id, "extension_denied"),
        ("publisher", lambda v: v.extension.org_id, "publisher_denied"),
        ("scope", lambda v: "kv:*", "scope_denied"),
    ],
)
def test_install_refuses_what_the_organisations_rules_deny(acme, vendor, alice_api, kind, value, code):
    version = vendor.release()
    InstallRule.objects.create(org=acme.org, kind=kind, effect="deny", value=value(version))
    assert_error(install(alice_api, acme.org, version), 403, code)
    assert not Installation.objects.filter(org=acme.org).exists()


def test_another_organisation_cannot_install_into_acme(acme, globex, vendor):
    version = vendor.release()
    assert_error(install(session(globex.owner), acme.org, version), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"extension_id": "not-an-id", "granted_scopes": []},
        {"extension_id": "ext_01ARZ3NDEKTSV4RRFFQ69G5FAV", "granted_scopes": []},
        {"extension_id": 7, "granted_scopes": []},
        {"granted_scopes": []},
        {"extension_id": "{ext}", "granted_scopes": "kv:read"},
        {"extension_id": "{ext}", "granted_scopes": [1, 2]},
        {"extension_id": "{ext}", "granted_scopes": ["kv:read"], "version_id": "ver_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
        {"extension_id": "{ext}", "granted_scopes": ["kv:read"], "version_id": "garbage"},
        {"extension_id": "{ext}", "granted_scopes": ["kv:read"], "channel": "nightly"},
        {"extension_id": "{ext}", "granted_scopes": ["kv:read"], "update_policy": "sometimes"},
        {"extension_id": "{ext}", "granted_scopes": ["events:read:order.created", "kv:read"], "config": [1]},
        {"extension_id": "{ext}", "granted_scopes": ["events:read:order.created", "kv:read"], "config": "x"},
    ],
)
def test_malformed_install_requests_are_client_errors(acme, vendor, alice_api, body):
    version = vendor.release()
    body = json.loads(json.dumps(body).replace("{ext}", version.extension_id))
    res = alice_api.call("POST", f"orgs/{acme.org.pk}/installations", body)
    assert 400 <= res.status_code < 500, res.content
    assert_error(res, res.status_code)
    assert not Installation.objects.filter(org=acme.org).exists()


def test_a_version_of_another_extension_is_not_found(acme, vendor, alice_api):
    version = vendor.release()
    other = vendor.release("other-ext", "1.0.0")
    res = install(alice_api, acme.org, version, version_id=other.pk)
    assert_error(res, 404, "not_found")


# --- configuration --------------------------------------------------------------------------------
@pytest.fixture
def configurable(vendor) -> ExtensionVersion:
    return vendor.release(config_schema=CONFIG_SCHEMA)


def test_install_applies_config_defaults_and_masks_secrets(acme, configurable, alice_api):
    # when alice installs with only the secret set
    res = install(alice_api, acme.org, configurable, config={"api_key": "s3cret-key"})
    # then the defaults fill the rest, and the secret is never shown, nor stored in the clear
    assert res.status_code == 201, res.content
    assert res.json()["config"] == {"tag_prefix": "auto-", "threshold": 10, "api_key": {"set": True}}
    installation = Installation.objects.get(pk=res.json()["id"])
    assert "api_key" not in installation.config
    assert "s3cret-key" not in installation.config_secrets_encrypted
    got = alice_api.call("GET", f"orgs/{acme.org.pk}/installations/{installation.pk}")
    assert "s3cret-key" not in got.content.decode()


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ({"threshold": 5000}, "config.threshold"),
        ({"threshold": "ten"}, "config.threshold"),
        ({"tag_prefix": "x" * 21}, "config.tag_prefix"),
        ({"tag_prefix": None}, "config.tag_prefix"),
        ({"api_key": 42}, "config.api_key"),
    ],
)
def test_install_validates_config_on_the_server(acme, configurable, alice_api, config, param):
    res = install(alice_api, acme.org, configurable, config=config)
    error = assert_error(res, 400, "config_invalid")
    assert error["param"] == param
    assert "42" not in error["message"] or param != "config.api_key"  # a secret's value is never echoed
    assert not Installation.objects.filter(org=acme.org).exists()


def test_a_huge_config_is_refused(acme, configurable, alice_api):
    res = install(alice_api, acme.org, configurable, config={"tag_prefix": "a", "x": "y" * 70_000})
    assert_error(res, 400, "config_invalid")


def test_an_extension_without_config_schema_takes_no_config(acme, vendor, alice_api):
    version = vendor.release()
    assert_error(install(alice_api, acme.org, version, config={"a": 1}), 400, "config_invalid")
    assert install(alice_api, acme.org, version, config={}).status_code == 201


def test_configure_keeps_an_omitted_secret_and_audits_without_values(acme, configurable, alice_api):
    # given an installation with its secret set
    installation = installed(alice_api, acme.org, configurable, config={"api_key": "first-secret"})
    path = f"orgs/{acme.org.pk}/installations/{installation.pk}/config"
    # when alice saves the form with a new threshold and the secret left as shown
    res = alice_api.call("PUT", path, {"config": {"tag_prefix": "t-", "threshold": 3, "api_key": {"set": True}}})
    # then the values change and the secret stays
    assert res.status_code == 200, res.content
    assert res.json()["config"] == {"tag_prefix": "t-", "threshold": 3, "api_key": {"set": True}}
    from apps.installs.config import secrets_decrypt

    installation.refresh_from_db()
    assert secrets_decrypt(installation.config_secrets_encrypted) == {"api_key": "first-secret"}
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="installation.configured")
    assert "first-secret" not in json.dumps(event.changes)
    assert event.changes["config"]["threshold"] == {"before": 10, "after": 3}
    # and an empty secret keeps it too, while a new value replaces it
    alice_api.call("PUT", path, {"config": {"tag_prefix": "t-", "api_key": ""}})
    installation.refresh_from_db()
    assert secrets_decrypt(installation.config_secrets_encrypted) == {"api_key": "first-secret"}
    alice_api.call("PUT", path, {"config": {"tag_prefix": "t-", "api_key": "second"}})
    installation.refresh_from_db()
    assert secrets_decrypt(installation.config_secrets_encrypted) == {"api_key": "second"}
    event = AuditEvent.objects.filter(org_id=acme.org.pk, action="installation.configured").order_by("-seq").first()
    assert event.changes["secrets_changed"] == ["api_key"]
    assert "second" not in json.dumps(event.changes)


@pytest.mark.parametrize("config", [[1, 2], "text", 7, None, {"threshold": -1}])
def test_configure_refuses_invalid_config(acme, configurable, alice_api, config):
    installation = installed(alice_api, acme.org, configurable)
    res = alice_api.call("PUT", f"orgs/{acme.org.pk}/installations/{installation.pk}/config", {"config": config})
    assert_error(res, 400)
    installation.refresh_from_db()
    assert installation.config == {"tag_prefix": "auto-", "threshold": 10}


def test_bob_cannot_configure_but_can_read(acme, configurable, alice_api, bob):
    installation = installed(alice_api, acme.org, configurable)
    bob_api = session(bob)
    path = f"orgs/{acme.org.pk}/installations/{installation.pk}"
    assert bob_api.call("GET", path).status_code == 200
    assert_error(bob_api.call("PUT", f"{path}/config", {"config": {"tag_prefix": "b"}}), 403, "role")


# --- secrets never quoted, control characters refused, only released versions (review findings) ---
SECRET = "SUPERSECRET-123"
ROOT_RULES = [
    # "{…the whole configuration…} should not be valid under …"
    {"not": {"properties": {"tag_prefix": {"const": "forbidden"}}, "required": ["tag_prefix"]}},
    # "{…the whole configuration…} has too many properties"
    {"maxProperties": 3},
]


@pytest.mark.parametrize("rule", ROOT_RULES)
def test_an_error_about_the_whole_config_never_quotes_a_secret(acme, vendor, alice_api, rule):
    version = vendor.release(config_schema={**CONFIG_SCHEMA, **rule})
    installation = installed(alice_api, acme.org, version, config={"tag_prefix": "ok", "api_key": SECRET})
    path = f"orgs/{acme.org.pk}/installations/{installation.pk}/config"
    # when a save breaks the rule on the whole object, with the stored secret kept
    bad = {"tag_prefix": "forbidden", "threshold": 1, "extra": 1}
    res = alice_api.call("PUT", path, {"config": bad})
    # then the error names the rule, never the values
    error = assert_error(res, 400, "config_invalid")
    assert SECRET not in res.content.decode()
    assert error["param"] == "config"
    assert f"'{next(iter(rule))}' rule" in error["message"]
    # nor does an install that sends the secret
    res = install(alice_api, acme.org, version, config={**bad, "api_key": SECRET})
    assert_error(res, 400, "config_invalid")
    assert SECRET not in res.content.decode()


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ({"tag_prefix": "a\u0000b"}, "config.tag_prefix"),
        ({"tag_prefix": "x", "api_key": "se\u0000cret"}, "config.api_key"),
        ({"tag_prefix": "x", "extra": {"deep": ["ok", "bell\u0007"]}}, "config.extra.deep[1]"),
        ({"tag_prefix": "x", "extra": {"k\u0000": 1}}, "config.extra"),
        ({"tag_prefix": "\ud800"}, "config.tag_prefix"),
    ],
)
def test_control_characters_in_config_are_refused(acme, configurable, alice_api, config, param):
    # the services refuse them (whoever calls them) ...
    installation = installed(alice_api, acme.org, configurable)
    with pytest.raises(ValidationFailed) as caught:
        services.installation_configure(principal=person(acme.owner), installation=installation, config=config)
    assert (caught.value.code, caught.value.param) == ("config_invalid", param)
    # ... and so does the API, at install and when configuring (NUL already at the request's edge)
    res = alice_api.call("PUT", f"orgs/{acme.org.pk}/installations/{installation.pk}/config", {"config": config})
    assert assert_error(res, 400)["param"] == param
    installation.refresh_from_db()
    assert installation.config == {"tag_prefix": "auto-", "threshold": 10}
    Installation.objects.filter(pk=installation.pk).delete()
    assert assert_error(install(alice_api, acme.org, configurable, config=config), 400)["param"] == param


def test_a_certified_version_never_released_on_a_channel_is_not_installable(acme, vendor, alice_api):
    # given 1.0.0 on stable and 1.1.0 certified but never promoted by the publisher
    vendor.release(version="1.0.0")
    unreleased = vendor.release(version="1.1.0", promote=False)
    # then acme cannot install 1.1.0 by its id
    error = assert_error(install(alice_api, acme.org, unreleased, version_id=unreleased.pk), 409)
    assert error["code"] == "version_not_installable" and "never released" in error["message"]
    # while the publisher's sandbox may
    sandbox = sandbox_of(vendor.org)
    installation = services.installation_create(
        principal=person(vendor.tenant.owner),
        org=sandbox,
        extension=unreleased.extension,
        granted_scopes=list(unreleased.scopes),
        version=unreleased,
    )
    assert installation.version_id == unreleased.pk


# --- writeOnly only at the top level of a config schema ------------------------------------------
NESTED = {
    "type": "object",
    "properties": {
        "smtp": {
            "type": "object",
            "properties": {"host": {"type": "string"}, "password": {"type": "string", "writeOnly": True}},
            "minProperties": 2,
        }
    },
}


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        (NESTED, "$.config_schema.properties.smtp.properties.password.writeOnly"),
        (
            {"type": "object", "properties": {"key": {"allOf": [{"type": "string", "writeOnly": True}]}}},
            "$.config_schema.properties.key.allOf[0].writeOnly",
        ),
        ({"type": "object", "writeOnly": True}, "$.config_schema.writeOnly"),
    ],
)
def test_the_manifest_check_refuses_write_only_below_the_top_level(vendor, schema, where):
    with pytest.raises(ValidationFailed) as caught:
        vendor.release(config_schema=schema)
    problems = {(d["path"], d["rule"]) for d in caught.value.details}
    assert (where, "config_secret_nested") in problems


def legacy_nested_secret(vendor) -> ExtensionVersion:
    """A version uploaded before the manifest check refused a nested writeOnly property."""
    plain = json.loads(json.dumps(NESTED).replace(', "writeOnly": true', ""))
    version = vendor.release("legacy", config_schema=plain)
    ExtensionVersion.objects.filter(pk=version.pk).update(manifest={**version.manifest, "config_schema": NESTED})
    return ExtensionVersion.objects.get(pk=version.pk)


def test_a_legacy_nested_write_only_value_is_masked_in_reads_errors_and_audit(acme, vendor, alice_api):
    version = legacy_nested_secret(vendor)
    res = install(alice_api, acme.org, version, config={"smtp": {"host": "h", "password": "NESTED-SECRET"}})
    assert res.status_code == 201, res.content
    assert res.json()["config"] == {"smtp": {"host": "h", "password": {"set": True}}}
    path = f"orgs/{acme.org.pk}/installations/{res.json()['id']}"
    assert "NESTED-SECRET" not in alice_api.call("GET", path).content.decode()
    # sent back as read, the value is kept
    res = alice_api.call("PUT", f"{path}/config", {"config": {"smtp": {"host": "h2", "password": {"set": True}}}})
    assert res.status_code == 200, res.content
    installation = Installation.objects.get(pk=res.json()["id"])
    assert installation.config == {"smtp": {"host": "h2", "password": "NESTED-SECRET"}}
    # an error about the object holding it never quotes it
    res = alice_api.call("PUT", f"{path}/config", {"config": {"smtp": {"password": "NESTED-NEW"}}})
    assert_error(res, 400, "config_invalid")
    assert "NESTED" not in res.content.decode()
    # a new value replaces it, and no audit entry holds either value
    res = alice_api.call("PUT", f"{path}/config", {"config": {"smtp": {"host": "h2", "password": "NESTED-NEW"}}})
    assert res.status_code == 200 and "NESTED" not in res.content.decode()
    events = AuditEvent.objects.filter(org_id=acme.org.pk, action__startswith="installation.")
    assert "NESTED" not in json.dumps([e.changes for e in events])
    last = events.filter(action="installation.configured").order_by("-seq").first()
    assert last.changes["secrets_changed"] == ["smtp.password"]
