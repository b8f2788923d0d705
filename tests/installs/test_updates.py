"""Channels, automatic updates on promotion, re-consent for added or escalated scopes, pinning and
rollback."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.extensions import services as ext_services
from apps.extensions.models import ChannelRelease
from apps.installs import services
from apps.installs.models import Installation, InstallationVersion, InstallRule
from apps.installs.selectors import effective_scopes, rollback_candidates
from apps.installs.services import controls
from tests.installs.conftest import CONFIG_SCHEMA, ROBOT
from tests.installs.support import installed, person, session
from tests.orgs.test_authorization import assert_error

V1_SCOPES = ["events:read:order.created", "kv:read"]
ESCALATED = ["events:read:order.created", "kv:write"]  # kv:read → kv:write


@pytest.fixture
def alice_api(acme):
    return session(acme.owner)


def path(installation, tail: str = "") -> str:
    return f"orgs/{installation.org_id}/installations/{installation.pk}{tail}"


def latest_release(version) -> ChannelRelease:
    return ChannelRelease.objects.filter(version=version).order_by("-promoted_at").first()


# --- automatic updates ----------------------------------------------------------------------------
def test_promotion_updates_auto_installations_through_the_receiver(
    acme, vendor, alice_api, django_capture_on_commit_callbacks
):
    # given acme runs 1.0.0 on stable, updating automatically
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1)
    # when the publisher promotes 1.1.0 (same scopes) and the promotion commits
    with django_capture_on_commit_callbacks(execute=True):
        v2 = vendor.release(version="1.1.0")
    # then the installation runs 1.1.0, as the platform's doing, audited
    installation.refresh_from_db()
    assert installation.version_id == v2.pk
    assert installation.pending_version_id is None
    row = InstallationVersion.objects.filter(installation=installation).order_by("-at", "-pk").first()
    assert (row.action, row.from_version_id, row.by_id) == ("update", v1.pk, None)
    event = AuditEvent.objects.filter(org_id=acme.org.pk, action="installation.updated").get()
    assert event.actor_type == "system" and event.changes["automatic"] is True


def test_an_escalation_is_offered_not_applied_until_the_admin_reconsents(acme, vendor, alice_api):
    # given acme runs 1.0.0 with kv:read
    v1 = vendor.release(version="1.0.0", scopes=V1_SCOPES)
    installation = installed(alice_api, acme.org, v1)
    # when 1.1.0 asking for kv:write is promoted
    v2 = vendor.release(version="1.1.0", scopes=ESCALATED)
    changed = services.channel_release_apply(release=latest_release(v2))
    # then it is offered, and nothing changed silently
    assert [i.pk for i in changed] == [installation.pk]
    installation.refresh_from_db()
    assert (installation.version_id, installation.pending_version_id) == (v1.pk, v2.pk)
    assert installation.granted_scopes == V1_SCOPES
    offer = alice_api.call("GET", path(installation, "/update")).json()
    assert offer["version"]["id"] == v2.pk and offer["needs_consent"] is True
    assert {"scope": "kv:write", "change": "escalation", "replaces": "kv:read"}.items() <= offer["changes"][0].items()
    # and updating without consent says which scope is new
    error = assert_error(alice_api.call("POST", path(installation, "/update"), {}), 409, "consent_required")
    assert "kv:write" in error["message"] and error["param"] == "granted_scopes"
    installation.refresh_from_db()
    assert installation.version_id == v1.pk
    # when alice consents to exactly the new scopes, it updates
    res = alice_api.call("POST", path(installation, "/update"), {"granted_scopes": ESCALATED})
    assert res.status_code == 200, res.content
    body = res.json()
    assert body["version"]["id"] == v2.pk and body["pending_version"] is None
    assert body["granted_scopes"] == sorted(ESCALATED)
    assert_error(alice_api.call("GET", path(installation, "/update")), 404, "no_update")


def test_reconsent_must_name_exactly_the_new_scopes(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0", scopes=V1_SCOPES)
    installation = installed(alice_api, acme.org, v1)
    vendor.release(version="1.1.0", scopes=ESCALATED)
    res = alice_api.call("POST", path(installation, "/update"), {"granted_scopes": V1_SCOPES})
    assert_error(res, 409, "consent_required")


def test_a_pinned_installation_stays_and_gets_an_offer(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1, update_policy="pinned")
    v2 = vendor.release(version="1.1.0")
    services.channel_release_apply(release=latest_release(v2))
    installation.refresh_from_db()
    assert (installation.version_id, installation.pending_version_id) == (v1.pk, v2.pk)
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="installation.update_offered")
    assert event.changes["reason"] == "pinned"
    # the admin takes it when she wants: no consent needed, so an empty body does it
    res = alice_api.call("POST", path(installation, "/update"), {})
    assert res.status_code == 200, res.content
    assert res.json()["version"]["id"] == v2.pk


def test_installations_on_other_channels_are_left_alone(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1)
    beta = vendor.release(version="1.1.0-beta.1", channel="beta")
    assert services.channel_release_apply(release=latest_release(beta)) == []
    installation.refresh_from_db()
    assert installation.version_id == v1.pk and installation.pending_version_id is None


def test_a_release_never_downgrades_and_applying_twice_changes_nothing(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    v2 = vendor.release(version="1.1.0")
    installation = installed(alice_api, acme.org, v2)
    assert services.channel_release_apply(release=latest_release(v1)) == []
    assert services.channel_release_apply(release=latest_release(v2)) == []
    installation.refresh_from_db()
    assert installation.version_id == v2.pk


def test_a_release_the_rules_now_refuse_is_only_offered(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0", scopes=V1_SCOPES)
    installation = installed(alice_api, acme.org, v1)
    InstallRule.objects.create(org=acme.org, kind="scope", effect="deny", value="events:emit:*")
    v2 = vendor.release(version="1.1.0", scopes=[*V1_SCOPES, "kv:write"])
    services.channel_release_apply(release=latest_release(v2))
    installation.refresh_from_db()
    assert installation.version_id == v1.pk and installation.pending_version_id == v2.pk
    # (kv:write is not denied, but it escalates: offered for consent; the denial case follows)
    InstallRule.objects.create(org=acme.org, kind="scope", effect="deny", value="kv:write")
    res = alice_api.call("POST", path(installation, "/update"), {"granted_scopes": [*V1_SCOPES, "kv:write"]})
    assert_error(res, 403, "scope_denied")
    installation.refresh_from_db()
    assert installation.version_id == v1.pk


def test_changing_the_channel_withdraws_the_old_offer(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1, update_policy="pinned")
    v2 = vendor.release(version="1.1.0")
    services.channel_release_apply(release=latest_release(v2))
    beta = vendor.release(version="1.2.0-beta.1", channel="beta")
    res = alice_api.call("PATCH", path(installation), {"channel": "beta", "update_policy": "auto"})
    assert res.status_code == 200, res.content
    assert (res.json()["channel"], res.json()["update_policy"], res.json()["pending_version"]) == ("beta", "auto", None)
    offer = alice_api.call("GET", path(installation, "/update")).json()
    assert offer["version"]["id"] == beta.pk
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="installation.settings_changed")
    assert event.changes == {"channel": ["stable", "beta"], "update_policy": ["pinned", "auto"]}


@pytest.mark.parametrize("body", [{"channel": "nightly"}, {"update_policy": "weekly"}, {"channel": 3}])
def test_settings_refuse_unknown_values(acme, vendor, alice_api, body):
    installation = installed(alice_api, acme.org, vendor.release())
    assert_error(alice_api.call("PATCH", path(installation), body), 400)


def test_update_keeps_config_and_adds_new_defaults(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1, update_policy="pinned")
    vendor.release(version="1.1.0", config_schema=CONFIG_SCHEMA)
    res = alice_api.call("POST", path(installation, "/update"), {})
    assert res.status_code == 200, res.content
    assert res.json()["config"] == {"tag_prefix": "auto-", "threshold": 10, "api_key": {"set": False}}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"version_id": "garbage"}, 404, "not_found"),
        ({"version_id": "ver_01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 404, "not_found"),
        ({"granted_scopes": "kv:read"}, 400, "validation_error"),
    ],
)
def test_update_answers_bad_input_as_client_errors(acme, vendor, alice_api, body, status, code):
    installation = installed(alice_api, acme.org, vendor.release())
    vendor.release(version="1.1.0")
    assert_error(alice_api.call("POST", path(installation, "/update"), body), status, code)


def test_update_refuses_an_older_or_the_same_version(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    v2 = vendor.release(version="1.1.0")
    installation = installed(alice_api, acme.org, v2)
    assert_error(alice_api.call("POST", path(installation, "/update"), {"version_id": v1.pk}), 409, "version_downgrade")
    assert_error(alice_api.call("POST", path(installation, "/update"), {"version_id": v2.pk}), 409, "no_update")
    assert_error(alice_api.call("POST", path(installation, "/update"), {}), 409, "no_update")


# --- rollback -------------------------------------------------------------------------------------
def test_rollback_returns_to_an_earlier_version_and_pins_it(
    acme, vendor, alice_api, django_capture_on_commit_callbacks
):
    # given acme updated from 1.0.0 to 1.1.0
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1)
    with django_capture_on_commit_callbacks(execute=True):
        vendor.release(version="1.1.0")
    installation.refresh_from_db()
    assert [v.pk for v in rollback_candidates(installation)] == [v1.pk]
    # when alice rolls back to 1.0.0
    res = alice_api.call("POST", path(installation, "/rollback"), {"version_id": v1.pk})
    # then it runs 1.0.0, pinned, with a rollback row and an audit entry, and 1.1.0 is on offer again
    assert res.status_code == 200, res.content
    body = res.json()
    assert (body["version"]["id"], body["update_policy"]) == (v1.pk, "pinned")
    history = alice_api.call("GET", path(installation, "/history")).json()["data"]
    assert [row["action"] for row in history] == ["rollback", "update", "install"]
    assert history[0]["by"] == acme.owner.email and history[1]["by"] is None
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="installation.rolled_back")
    assert event.changes == {"version": ["1.1.0", "1.0.0"], "update_policy": "pinned"}
    assert alice_api.call("GET", path(installation, "/update")).json()["version"]["version"] == "1.1.0"


def test_rollback_restores_the_grant_given_to_that_version(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0", scopes=V1_SCOPES)
    installation = installed(alice_api, acme.org, v1)
    vendor.release(version="1.1.0", scopes=ESCALATED)
    alice_api.call("POST", path(installation, "/update"), {"granted_scopes": ESCALATED})
    res = alice_api.call("POST", path(installation, "/rollback"), {"version_id": v1.pk})
    assert res.json()["granted_scopes"] == V1_SCOPES
    assert res.json()["effective_scopes"] == V1_SCOPES


def test_rollback_refuses_a_version_not_in_its_history(acme, vendor, alice_api):
    # given an installation that only ever ran 1.1.0, while 1.0.0 exists
    v1 = vendor.release(version="1.0.0")
    v2 = vendor.release(version="1.1.0")
    installation = installed(alice_api, acme.org, v2)
    # then neither 1.0.0 nor the current version is a rollback target
    for version in (v1, v2):
        res = alice_api.call("POST", path(installation, "/rollback"), {"version_id": version.pk})
        assert_error(res, 409, "rollback_unavailable")
    installation.refresh_from_db()
    assert (installation.version_id, installation.update_policy) == (v2.pk, "auto")


@pytest.mark.parametrize("version_id", ["garbage", "ver_01ARZ3NDEKTSV4RRFFQ69G5FAV", ""])
def test_rollback_to_an_unknown_version_is_not_found(acme, vendor, alice_api, version_id):
    installation = installed(alice_api, acme.org, vendor.release())
    assert_error(alice_api.call("POST", path(installation, "/rollback"), {"version_id": version_id}), 404)


def test_rollback_keeps_only_the_configured_number_of_versions(acme, vendor, alice_api, settings):
    settings.PLAZA_INSTALL_ROLLBACK_VERSIONS = 2
    versions = [vendor.release(version=f"1.{n}.0") for n in range(4)]
    installation = installed(alice_api, acme.org, versions[0], version_id=versions[0].pk, update_policy="pinned")
    for version in versions[1:]:
        res = alice_api.call("POST", path(installation, "/update"), {"version_id": version.pk})
        assert res.status_code == 200, res.content
    installation.refresh_from_db()
    assert [v.version for v in rollback_candidates(installation)] == ["1.2.0", "1.1.0"]
    res = alice_api.call("POST", path(installation, "/rollback"), {"version_id": versions[0].pk})
    assert_error(res, 409, "rollback_unavailable")


def test_rollback_skips_yanked_versions(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1, update_policy="pinned")
    vendor.release(version="1.1.0")
    alice_api.call("POST", path(installation, "/update"), {})
    ext_services.version_transition(version=v1, to="yanked")
    installation.refresh_from_db()
    assert rollback_candidates(installation) == []
    assert_error(alice_api.call("POST", path(installation, "/rollback"), {"version_id": v1.pk}), 409)


def test_bob_cannot_update_or_roll_back(acme, vendor, alice_api, bob):
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1, update_policy="pinned")
    vendor.release(version="1.1.0")
    bob_api = session(bob)
    assert_error(bob_api.call("POST", path(installation, "/update"), {}), 403, "role")
    assert_error(bob_api.call("POST", path(installation, "/rollback"), {"version_id": v1.pk}), 403, "role")
    assert_error(bob_api.call("PATCH", path(installation), {"update_policy": "auto"}), 403, "role")
    assert bob_api.call("GET", path(installation, "/update")).status_code == 200


def test_a_blocked_installation_is_not_updated_automatically(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1)
    Installation.objects.filter(pk=installation.pk).update(status="blocked")
    v2 = vendor.release(version="1.1.0")
    services.channel_release_apply(release=latest_release(v2))
    installation.refresh_from_db()
    assert (installation.version_id, installation.pending_version_id) == (v1.pk, v2.pk)
    assert_error(alice_api.call("POST", path(installation, "/update"), {}), 409, "installation_blocked")


def test_the_robot_principal_is_not_a_member(acme, vendor):
    # services authorise too: a principal without a role in acme finds nothing there
    from apps.core.errors import NotFound

    version = vendor.release()
    with pytest.raises(NotFound):
        services.installation_create(
            principal=ROBOT, org=acme.org, extension=version.extension, granted_scopes=V1_SCOPES
        )


def test_versions_are_precompiled_after_commit_when_they_enter_history_and_rollback_compiles_nothing(
    acme, vendor, alice_api, monkeypatch, django_capture_on_commit_callbacks
):
    # given a record of what gets compiled ahead of time
    compiled = []
    monkeypatch.setattr(
        "apps.runtime.tasks.version_precompile", lambda *, version: compiled.append(version.version) or []
    )
    v1 = vendor.release(version="1.0.0")
    # when acme installs 1.0.0, then 1.1.0 arrives and applies automatically
    with django_capture_on_commit_callbacks(execute=True):
        installation = installed(alice_api, acme.org, v1)
    assert compiled == ["1.0.0"]
    v2 = vendor.release(version="1.1.0")
    with django_capture_on_commit_callbacks(execute=True):
        services.channel_release_apply(release=latest_release(v2))
    assert compiled == ["1.0.0", "1.1.0"]
    # then rolling back only switches rows
    with django_capture_on_commit_callbacks(execute=True):
        res = alice_api.call("POST", path(installation, "/rollback"), {"version_id": v1.pk})
    assert res.status_code == 200, res.content
    assert compiled == ["1.0.0", "1.1.0"]


def test_an_offer_withdrawn_by_the_publisher_is_no_longer_offered(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1, update_policy="pinned")
    v2 = vendor.release(version="1.1.0")
    services.channel_release_apply(release=latest_release(v2))
    ext_services.version_transition(version=v2, to="yanked")
    assert_error(alice_api.call("GET", path(installation, "/update")), 404, "no_update")
    assert_error(alice_api.call("POST", path(installation, "/update"), {}), 409, "no_update")


# --- the grant follows the version (review findings) ----------------------------------------------
def test_an_automatic_update_that_drops_a_scope_drops_it_from_the_grant(acme, vendor, alice_api):
    # given acme granted http:fetch to 1.0.0
    with_fetch = ["events:read:order.created", "http:fetch:api.example.com"]
    v1 = vendor.release(version="1.0.0", scopes=with_fetch)
    installation = installed(alice_api, acme.org, v1)
    # when 1.1.0, which no longer fetches, applies automatically
    v2 = vendor.release(version="1.1.0", scopes=["events:read:order.created"])
    services.channel_release_apply(release=latest_release(v2))
    # then the grant is 1.1.0's scopes: the dropped scope is gone, audited
    installation.refresh_from_db()
    assert installation.version_id == v2.pk
    assert installation.granted_scopes == ["events:read:order.created"]
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="installation.updated")
    assert event.changes["granted_scopes"] == ["events:read:order.created"]
    # and a rule denying the dropped scope does not touch the installation
    controls.install_rule_create(
        principal=person(acme.owner), org=acme.org, kind="scope", effect="deny", value="http:fetch:*"
    )
    installation.refresh_from_db()
    assert installation.status == "active"
    # and a later version asking for it again needs consent again
    v3 = vendor.release(version="1.2.0", scopes=with_fetch)
    InstallRule.objects.filter(org=acme.org).delete()
    services.channel_release_apply(release=latest_release(v3))
    installation.refresh_from_db()
    assert (installation.version_id, installation.pending_version_id) == (v2.pk, v3.pk)
    assert_error(alice_api.call("POST", path(installation, "/update"), {}), 409, "consent_required")


@pytest.mark.parametrize("automatic", [True, False])
def test_an_update_from_kv_write_to_kv_read_grants_kv_read(acme, vendor, alice_api, automatic):
    v1 = vendor.release(version="1.0.0", scopes=ESCALATED)
    installation = installed(alice_api, acme.org, v1, update_policy="auto" if automatic else "pinned")
    v2 = vendor.release(version="1.1.0", scopes=V1_SCOPES)
    services.channel_release_apply(release=latest_release(v2))
    if not automatic:  # offered (pinned); the admin takes it without consent: nothing new is asked
        res = alice_api.call("POST", path(installation, "/update"), {})
        assert res.status_code == 200, res.content
    installation = Installation.objects.select_related("version").get(pk=installation.pk)
    assert installation.version_id == v2.pk
    assert installation.granted_scopes == sorted(V1_SCOPES)
    assert "kv:read" in effective_scopes(installation)


def test_update_refuses_a_certified_version_never_released_on_a_channel(acme, vendor, alice_api):
    v1 = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, v1)
    unreleased = vendor.release(version="1.1.0", promote=False)
    res = alice_api.call("POST", path(installation, "/update"), {"version_id": unreleased.pk})
    error = assert_error(res, 409, "version_not_installable")
    assert "never released" in error["message"]
    # once the publisher releases it, the same request updates
    ext_services.version_promote(principal=ROBOT, version=unreleased, channel="stable")
    res = alice_api.call("POST", path(installation, "/update"), {"version_id": unreleased.pk})
    assert res.status_code == 200, res.content
