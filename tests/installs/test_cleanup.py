"""Uninstall with proof: everything tied to the installation is removed, then each cleaner counts
what remains, and the cleanup report says so (``verified`` only when nothing remains anywhere)."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.billing.models import EntitlementGrant
from apps.installs import services
from apps.installs.models import CleanupReport, Installation
from apps.installs.signals import installation_changed
from apps.orgs.models import ApiToken, ServiceAccount
from apps.runtime.models import Invocation, KVEntry
from apps.webhooks.models import Endpoint, Message, MessageStatus
from tests.installs.conftest import CONFIG_SCHEMA
from tests.installs.support import KV_MODULE, KV_SCOPES, installed, session
from tests.orgs.test_authorization import assert_error

DEFAULT_CLEANERS = [
    "apps.installs.cleaners.installation_records",
    "apps.orgs.cleaners.installation_tokens",
    "apps.runtime.cleaners.installation_data",
    "apps.webhooks.cleaners.installation_deliveries",
    "apps.billing.cleaners.installation_entitlements",
]


def broken_cleaner(installation_id: str) -> dict:
    raise RuntimeError("the storage backend is down")


def leaky_cleaner(installation_id: str) -> dict:
    return {"label": "Leaky", "removed": {"things": 1}, "remaining": {"things": 2}}


def odd_cleaner(installation_id: str):
    return ["not", "a", "report"]


@pytest.fixture
def alice_api(acme):
    return session(acme.owner)


@pytest.fixture
def busy(acme, vendor, alice_api) -> Installation:
    """An installation with a secret, a pending offer, stored data, a call record, a token, a pending
    and a delivered webhook message, and an entitlement grant."""
    version = vendor.release(
        scopes=[*KV_SCOPES, "api:org:read"], config_schema=CONFIG_SCHEMA, files={"modules/main.wasm": KV_MODULE}
    )
    installation = installed(alice_api, acme.org, version, config={"api_key": "k"}, update_policy="pinned")
    result = services.installation_invoke(installation=installation, export="on_order_created", input_value={})
    assert result.ok, result
    session(vendor.tenant.owner).call(
        "POST", f"orgs/{vendor.org.pk}/extensions/{version.extension_id}/installations/{installation.pk}/token"
    )
    newer = vendor.release(version="1.1.0", scopes=[*KV_SCOPES, "api:org:read"], config_schema=CONFIG_SCHEMA)
    Installation.objects.filter(pk=installation.pk).update(pending_version=newer)
    assert KVEntry.objects.filter(installation_id=installation.pk).count() == 1
    assert ApiToken.objects.filter(service_account__installation_id=installation.pk).count() == 1
    endpoint = Endpoint.objects.create(extension=version.extension, url="https://hooks.vendor.example/plaza")
    for status in (MessageStatus.PENDING, MessageStatus.SUCCEEDED):
        Message.objects.create(
            org=acme.org, installation=installation, endpoint=endpoint, event_type="order.created", body='{"a":1}',
            status=status,
        )  # fmt: skip
    EntitlementGrant.objects.create(org=acme.org, installation_id=installation.pk, feature="reports.export")
    return installation


def test_uninstall_removes_everything_and_proves_it(acme, busy, alice_api, django_capture_on_commit_callbacks):
    heard = []

    def listener(sender, installation, action, **kwargs):
        heard.append(action)

    installation_changed.connect(listener, dispatch_uid="cleanup-listener")
    try:
        # when alice uninstalls it
        with django_capture_on_commit_callbacks(execute=True):
            res = alice_api.call("DELETE", f"orgs/{acme.org.pk}/installations/{busy.pk}")
    finally:
        installation_changed.disconnect(dispatch_uid="cleanup-listener")
    # then the report lists what each cleaner removed, and nothing remains
    assert res.status_code == 200, res.content
    report = res.json()
    assert report["verified"] is True
    by_cleaner = {item["cleaner"]: item for item in report["items"]}
    assert list(by_cleaner) == DEFAULT_CLEANERS
    assert by_cleaner["apps.installs.cleaners.installation_records"]["removed"] == {
        "config_values": 2, "secrets": 1, "grants": 3, "pending_versions": 1,
    }  # fmt: skip
    assert by_cleaner["apps.orgs.cleaners.installation_tokens"]["removed"] == {"service_accounts": 1, "tokens": 1}
    assert by_cleaner["apps.runtime.cleaners.installation_data"]["removed"] == {"kv_entries": 1, "invocation_links": 1}
    assert by_cleaner["apps.webhooks.cleaners.installation_deliveries"]["removed"] == {
        "pending_deliveries": 1, "delivery_records": 1,
    }  # fmt: skip
    assert by_cleaner["apps.billing.cleaners.installation_entitlements"]["removed"] == {"grants": 1}
    assert all(not any(item["remaining"].values()) and not item["error"] for item in report["items"])
    # and the database agrees
    assert not KVEntry.objects.filter(installation_id=busy.pk).exists()
    assert not ServiceAccount.objects.filter(installation_id=busy.pk).exists()
    assert not ApiToken.objects.filter(service_account__installation_id=busy.pk).exists()
    assert Invocation.objects.filter(export="on_order_created", installation_id="").count() == 1
    assert not Message.objects.filter(installation_id=busy.pk).exists()
    assert sorted(Message.objects.values_list("status", "body")) == [("cancelled", "{}"), ("succeeded", "{}")]
    assert not EntitlementGrant.objects.filter(installation_id=busy.pk).exists()
    busy.refresh_from_db()
    assert (busy.status, busy.config, busy.config_secrets_encrypted, busy.granted_scopes) == ("uninstalled", {}, "", [])
    assert busy.pending_version_id is None and busy.uninstalled_by == acme.owner
    # and the report stays readable, the audit log and the notification say so
    again = alice_api.call("GET", f"orgs/{acme.org.pk}/installations/{busy.pk}/cleanup-report")
    assert again.json() == report
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="installation.uninstalled")
    assert event.changes["verified"] is True and event.changes["removed"]["kv_entries"] == 1
    assert heard == ["uninstalled"]
    listed = alice_api.call("GET", f"orgs/{acme.org.pk}/installations").json()["data"]
    assert busy.pk not in [row["id"] for row in listed]
    assert alice_api.call("GET", f"orgs/{acme.org.pk}/installations/{busy.pk}").json()["status"] == "uninstalled"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("tests.installs.test_cleanup.broken_cleaner", "RuntimeError: the storage backend is down"),
        ("tests.installs.test_cleanup.odd_cleaner", "did not answer"),
        ("tests.installs.no_such_module.cleaner", "No module named"),
    ],
)
def test_a_failing_cleaner_is_reported_and_the_report_is_not_verified(acme, busy, alice_api, settings, extra, error):
    # given one more cleaner that fails, placed before the runtime's
    settings.PLAZA_INSTALL_CLEANERS = [*DEFAULT_CLEANERS[:2], extra, DEFAULT_CLEANERS[2]]
    # when alice uninstalls
    res = alice_api.call("DELETE", f"orgs/{acme.org.pk}/installations/{busy.pk}")
    # then the uninstall still happens, the others still clean, and the report says what failed
    assert res.status_code == 200, res.content
    report = res.json()
    assert report["verified"] is False
    failed = [item for item in report["items"] if item["error"]]
    assert [item["cleaner"] for item in failed] == [extra]
    assert error in failed[0]["error"]
    assert not KVEntry.objects.filter(installation_id=busy.pk).exists()
    assert CleanupReport.objects.get(installation=busy).verified is False
    assert AuditEvent.objects.get(org_id=acme.org.pk, action="installation.uninstalled").changes["errors"] == [extra]


def test_a_cleaner_that_finds_something_remaining_is_not_verified(acme, busy, alice_api, settings):
    settings.PLAZA_INSTALL_CLEANERS = [*DEFAULT_CLEANERS, "tests.installs.test_cleanup.leaky_cleaner"]
    report = alice_api.call("DELETE", f"orgs/{acme.org.pk}/installations/{busy.pk}").json()
    assert report["verified"] is False
    assert report["items"][-1] == {
        "cleaner": "tests.installs.test_cleanup.leaky_cleaner", "label": "Leaky", "removed": {"things": 1},
        "remaining": {"things": 2}, "error": "",
    }  # fmt: skip


def test_uninstalled_is_final_and_the_extension_can_be_installed_again(acme, vendor, busy, alice_api):
    path = f"orgs/{acme.org.pk}/installations/{busy.pk}"
    assert alice_api.call("DELETE", path).status_code == 200
    assert_error(alice_api.call("DELETE", path), 409, "installation_uninstalled")
    assert_error(alice_api.call("PUT", f"{path}/config", {"config": {}}), 409, "installation_uninstalled")
    assert_error(alice_api.call("PATCH", path, {"update_policy": "auto"}), 409, "installation_uninstalled")
    assert_error(alice_api.call("POST", f"{path}/update", {}), 409, "installation_uninstalled")
    assert CleanupReport.objects.filter(installation=busy).count() == 1
    # a fresh install is a new installation
    again = installed(alice_api, acme.org, busy.version, config={"api_key": "k"})
    assert again.pk != busy.pk


def test_bob_cannot_uninstall(acme, busy, bob):
    res = session(bob).call("DELETE", f"orgs/{acme.org.pk}/installations/{busy.pk}")
    assert_error(res, 403, "role")
    busy.refresh_from_db()
    assert busy.status == "active"
    assert KVEntry.objects.filter(installation_id=busy.pk).exists()


def test_no_report_before_uninstall(acme, busy, alice_api):
    res = alice_api.call("GET", f"orgs/{acme.org.pk}/installations/{busy.pk}/cleanup-report")
    assert_error(res, 404, "no_cleanup_report")


def test_the_cleaners_leave_other_installations_alone(acme, globex, vendor, busy, alice_api):
    # given globex has the same extension installed, with its own data
    other = installed(
        session(globex.owner), globex.org, busy.version, version_id=busy.version_id, config={"api_key": "g"}
    )
    services.installation_invoke(installation=other, export="on_order_created", input_value={})
    # when acme uninstalls
    alice_api.call("DELETE", f"orgs/{acme.org.pk}/installations/{busy.pk}")
    # then globex keeps everything
    assert KVEntry.objects.filter(installation_id=other.pk).count() == 1
    assert ServiceAccount.objects.filter(installation_id=other.pk).count() == 1
    other.refresh_from_db()
    assert other.status == "active" and other.config_secrets_encrypted
