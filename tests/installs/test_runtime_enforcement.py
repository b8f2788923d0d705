"""Extension code runs only for an active installation its organisation's rules still allow, and
only with the scopes it was granted."""

from __future__ import annotations

import pytest

from apps.installs import services
from apps.installs.models import Installation, InstallRule
from apps.installs.services.runtime import DENIED_BY_RULE, NOT_ACTIVE
from apps.runtime import outcomes
from apps.runtime.models import Invocation, KVEntry
from tests.installs.support import KV_MODULE, KV_SCOPES, installed, session


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
    # then nothing ran, and the refusal is on record
    assert result.outcome == NOT_ACTIVE
    assert not KVEntry.objects.filter(installation_id=installation.pk).exists()
    assert Invocation.objects.get(installation_id=installation.pk).outcome == NOT_ACTIVE


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
