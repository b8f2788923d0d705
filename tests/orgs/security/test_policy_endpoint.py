"""PUT /orgs/{org_id}/policy: idle timeout and SSO required, through the API and the policy page."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.orgs.models import Organization, Role, SsoConnection
from tests.orgs.security.conftest import signed_in
from tests.orgs.test_authorization import assert_error

BASE = {"require_mfa": False, "max_session_age_minutes": None, "ip_allowlist": []}


def test_owner_sets_an_idle_timeout_audited_with_the_change(acme):
    owner = signed_in(acme.owner)
    res = owner.call("PUT", f"orgs/{acme.org.pk}/policy", {**BASE, "idle_timeout_minutes": 30})
    assert res.status_code == 200, res.content
    assert res.json()["idle_timeout_minutes"] == 30 and res.json()["sso_required"] is False
    assert Organization.objects.get(pk=acme.org.pk).idle_timeout_minutes == 30
    event = AuditEvent.objects.filter(org_id=acme.org.pk, action="org.policy_updated").latest("seq")
    assert event.changes == {"idle_timeout_minutes": {"before": None, "after": 30}}
    assert owner.call("GET", f"orgs/{acme.org.pk}/policy").json()["idle_timeout_minutes"] == 30


@pytest.mark.parametrize("minutes", [4, 1441, -1])
def test_idle_timeout_out_of_range_is_refused(acme, minutes):
    res = signed_in(acme.owner).call("PUT", f"orgs/{acme.org.pk}/policy", {**BASE, "idle_timeout_minutes": minutes})
    error = assert_error(res, 400)
    assert error["param"] == "idle_timeout_minutes"
    assert Organization.objects.get(pk=acme.org.pk).idle_timeout_minutes is None


def test_sso_required_needs_an_enabled_connection(acme):
    owner = signed_in(acme.owner)
    path = f"orgs/{acme.org.pk}/policy"
    # without a connection, or with a disabled one: refused
    assert_error(owner.call("PUT", path, {**BASE, "sso_required": True}), 409, "sso_not_configured")
    connection = SsoConnection.objects.create(org=acme.org, issuer="https://idp.example", client_id="plaza")
    assert_error(owner.call("PUT", path, {**BASE, "sso_required": True}), 409, "sso_not_configured")
    assert Organization.objects.get(pk=acme.org.pk).sso_required is False
    # with an enabled one: allowed and audited
    connection.enabled = True
    connection.save(update_fields=["enabled"])
    res = owner.call("PUT", path, {**BASE, "sso_required": True})
    assert res.status_code == 200 and res.json()["sso_required"] is True
    event = AuditEvent.objects.filter(org_id=acme.org.pk, action="org.policy_updated").latest("seq")
    assert event.changes == {"sso_required": {"before": False, "after": True}}


def test_admins_cannot_change_the_policy(acme):
    res = signed_in(acme.user(Role.ADMIN)).call(
        "PUT", f"orgs/{acme.org.pk}/policy", {**BASE, "idle_timeout_minutes": 30}
    )
    assert_error(res, 403, "role")
    assert Organization.objects.get(pk=acme.org.pk).idle_timeout_minutes is None


def test_policy_page_edits_idle_timeout_and_refuses_sso_without_a_connection(acme):
    owner = signed_in(acme.owner)
    url = f"/orgs/{acme.org.pk}/security/"
    page = owner.get(url)
    assert b'name="idle_timeout_minutes"' in page.content and b'name="sso_required"' in page.content
    assert owner.post(url, {"idle_timeout_minutes": "45", "ip_allowlist": ""}).status_code == 302
    assert Organization.objects.get(pk=acme.org.pk).idle_timeout_minutes == 45
    refused = owner.post(url, {"idle_timeout_minutes": "45", "sso_required": "on"})
    assert refused.status_code == 400 and b"SSO connection" in refused.content
    assert Organization.objects.get(pk=acme.org.pk).sso_required is False
    bad = owner.post(url, {"idle_timeout_minutes": "abc"})
    assert bad.status_code == 400 and b"whole number" in bad.content
