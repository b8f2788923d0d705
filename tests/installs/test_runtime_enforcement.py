"""Extension code runs only for an active installation its organisation's rules still allow, and
only with the scopes it was granted."""

from __future__ import annotations

import pytest

from apps.installs import services
from apps.installs.models import Installation, InstallRule
from apps.installs.services import runtime as runtime_services
from apps.installs.services.runtime import DENIED_BY_RULE, NOT_ACTIVE
from apps.runtime import outcomes
from apps.runtime.models import Invocation, KVEntry
from tests.installs.support import KV_MODULE, KV_SCOPES, installed, person, session


@pytest.fixture
def installation(acme, vendor) -> Installation:
    version = vendor.release(scopes=KV_SCOPES, files={"modules/main.wasm": KV_MODULE})
    return installed(session(acme.owner), acme.org, version)


def run(installation):
    installation = Installation.objects.select_related("org", "extension", "version").get(pk=installation.pk)
    return services.installation_invoke(
        installation=installation, export="on_order_created", input_value={"id": 1}, correlation_id="c-1"
    )


def test_an_active_installation_runs_with_its_grant(installation):
    result = run(installation)
    assert result.outcome == outcomes.OK and result.output is True
    assert list(KVEntry.objects.filter(installation_id=installation.pk).values_list("key", flat=True)) == ["ran"]
    record = Invocation.objects.get(installation_id=installation.pk)
    assert (record.outcome, record.correlation_id, record.version_id) == ("ok", "c-1", installation.version_id)


@pytest.mark.parametrize("status", ["blocked", "uninstalled"])
def test_an_inactive_installation_does_not_run(installation, status):
    # given the installation was blocked by a rule (or uninstalled)
    Installation.objects.filter(pk=installation.pk).update(status=status)
    # when its hook is invoked
    result = run(installation)
    # then nothing ran, and the refusal is on record: linked to a blocked installation, but not to
    # an uninstalled one (its cleanup report said no record was linked to it any more)
    assert result.outcome == NOT_ACTIVE
    assert not KVEntry.objects.filter(installation_id=installation.pk).exists()
    record = Invocation.objects.get()
    assert record.outcome == NOT_ACTIVE
    assert record.installation_id == ("" if status == "uninstalled" else installation.pk)


def test_a_caller_holding_a_stale_installation_does_not_run_it_after_uninstall(acme, installation):
    # given a worker loaded the installation, then the admin uninstalled it
    stale = Installation.objects.select_related("org", "extension", "version").get(pk=installation.pk)
    report = services.installation_uninstall(principal=person(acme.owner), installation=installation)
    assert report.verified
    # when the worker goes on with what it loaded
    result = services.installation_invoke(installation=stale, export="on_order_created", input_value={})
    # then the status is read again: nothing ran, nothing is stored or linked after the report
    assert result.outcome == NOT_ACTIVE
    assert not KVEntry.objects.filter(installation_id=installation.pk).exists()
    assert not Invocation.objects.filter(installation_id=installation.pk).exists()


def test_an_uninstall_while_the_code_runs_leaves_nothing_behind(acme, installation, monkeypatch):
    # given the admin uninstalls after the call read the status, before the code stores its data
    # (the rules check runs in between: the uninstall is slipped in there)
    reports = []
    judge = runtime_services.install_refusal

    def uninstall_meanwhile(org, extension, scopes):
        row = Installation.objects.get(pk=installation.pk)
        reports.append(services.installation_uninstall(principal=person(acme.owner), installation=row))
        return judge(org, extension, scopes)

    monkeypatch.setattr(runtime_services, "install_refusal", uninstall_meanwhile)
    run(installation)
    # then the code's key-value write was refused, its record is detached, and the report holds
    assert reports[0].verified
    assert not KVEntry.objects.filter(installation_id=installation.pk).exists()
    assert not Invocation.objects.filter(installation_id=installation.pk).exists()
    assert Invocation.objects.get().installation_id == ""


@pytest.mark.parametrize(
    ("kind", "value"),
    [("scope", lambda i: "kv:*"), ("extension", lambda i: i.extension_id), ("publisher", lambda i: i.extension.org_id)],
)
def test_a_rule_added_after_install_stops_it_at_runtime(acme, installation, kind, value):
    # given a deny rule made after install (before any enforcement pass blocked it)
    InstallRule.objects.create(org=acme.org, kind=kind, effect="deny", value=value(installation))
    # then its code does not run
    result = run(installation)
    assert result.outcome == DENIED_BY_RULE
    assert not KVEntry.objects.filter(installation_id=installation.pk).exists()
    assert Invocation.objects.get(installation_id=installation.pk).outcome == DENIED_BY_RULE


def test_allowlist_mode_without_an_allow_rule_stops_it(acme, installation):
    from apps.installs.models import InstallPolicy

    InstallPolicy.objects.create(org=acme.org, mode="allowlist")
    assert run(installation).outcome == DENIED_BY_RULE
    InstallRule.objects.create(org=acme.org, kind="extension", effect="allow", value=installation.extension_id)
    assert run(installation).outcome == outcomes.OK


def test_only_granted_scopes_are_linked(installation):
    # given a grant that lacks kv:write although the version asks for it
    Installation.objects.filter(pk=installation.pk).update(granted_scopes=["events:read:order.created"])
    # then the module, which imports kv_set, does not link
    result = run(installation)
    assert result.outcome == outcomes.CAPABILITY_NOT_GRANTED
    assert not KVEntry.objects.filter(installation_id=installation.pk).exists()
