"""The install controls over the API: rules and the mode (and that installing honours them),
blocking and unblocking what is installed (down to the installation's token), install requests
from members, and hostile input."""

from __future__ import annotations

import pytest
from django.core import mail

from apps.installs.models import Installation, InstallationStatus, InstallPolicy, InstallRequest, InstallRule
from apps.orgs.models import Role, ServiceAccount
from tests.conftest import ApiClient
from tests.installs.support import install, installed, session
from tests.orgs.test_authorization import assert_error

FETCH_SCOPES = ["events:read:order.created", "http:fetch:api.example.com"]


def rules_path(org) -> str:
    return f"orgs/{org.pk}/install-rules"


def add_rule(client, org, kind: str, effect: str, value: str, **extra):
    return client.call("POST", rules_path(org), {"kind": kind, "effect": effect, "value": value, **extra})


@pytest.fixture
def alice(acme) -> ApiClient:
    return session(acme.owner)


@pytest.fixture
def bob(acme) -> ApiClient:
    return session(acme.user(Role.MEMBER))


# --- every refusal at install -----------------------------------------------------------------------
def test_install_refuses_a_denylisted_extension(acme, vendor, alice):
    version = vendor.release()
    assert add_rule(alice, acme.org, "extension", "deny", version.extension.key).status_code == 201
    assert_error(install(alice, acme.org, version), 403, "extension_denied")
    assert not Installation.objects.exists()


def test_install_refuses_a_denylisted_publisher(acme, vendor, alice):
    version = vendor.release()
    assert add_rule(alice, acme.org, "publisher", "deny", vendor.org.pk).status_code == 201
    assert_error(install(alice, acme.org, version), 403, "publisher_denied")


def test_install_refuses_a_denied_scope_pattern(acme, vendor, alice):
    fetching = vendor.release("fetcher", "1.0.0", scopes=FETCH_SCOPES)
    quiet = vendor.release("quiet", "1.0.0")
    assert add_rule(alice, acme.org, "scope", "deny", "http:fetch:*").status_code == 201
    error = assert_error(install(alice, acme.org, fetching), 403, "scope_denied")
    assert "http:fetch:api.example.com" in error["message"]
    assert install(alice, acme.org, quiet).status_code == 201


def test_install_refuses_what_is_not_allowlisted_in_allowlist_mode(acme, vendor, alice):
    version = vendor.release()
    assert alice.call("PATCH", f"orgs/{acme.org.pk}/install-policy", {"mode": "allowlist"}).status_code == 200
    assert_error(install(alice, acme.org, version), 403, "not_allowlisted")
    assert add_rule(alice, acme.org, "extension", "allow", version.extension_id).status_code == 201
    assert install(alice, acme.org, version).status_code == 201


# --- rules ----------------------------------------------------------------------------------------
def test_a_rule_answers_what_it_names_and_what_it_blocks(acme, vendor, alice):
    inst = installed(alice, acme.org, vendor.release())
    res = add_rule(alice, acme.org, "publisher", "deny", "vendor", note="Not vetted.")
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["value"] == vendor.org.pk and body["target"] == vendor.org.name
    assert body["blocks"] == [inst.pk] and body["note"] == "Not vetted."
    listed = alice.call("GET", rules_path(acme.org)).json()
    assert [r["id"] for r in listed["data"]] == [body["id"]] and listed["data"][0]["blocks"] == [inst.pk]
    policy = alice.call("GET", f"orgs/{acme.org.pk}/install-policy").json()
    assert policy == {**policy, "mode": "open", "requests_enabled": True, "blocked_installations": [inst.pk]}


def test_blocking_disables_the_installation_token_and_unblocking_restores_it(acme, vendor, alice):
    # given an installation holding an API scope, and a token the publisher got for it
    version = vendor.release(scopes=["events:read:order.created", "api:org:read"])
    inst = installed(alice, acme.org, version)
    publisher = session(vendor.tenant.owner)
    res = publisher.call(
        "POST", f"orgs/{vendor.org.pk}/extensions/{version.extension_id}/installations/{inst.pk}/token"
    )
    assert res.status_code == 201, res.content
    token = ApiClient(res.json()["token"])
    assert token.call("GET", f"orgs/{acme.org.pk}").status_code == 200
    # when acme denies the extension
    rule = add_rule(alice, acme.org, "extension", "deny", version.extension_id).json()
    # then the installation is blocked and its token refused
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.BLOCKED
    assert ServiceAccount.objects.get(installation_id=inst.pk).disabled_at is not None
    assert token.call("GET", f"orgs/{acme.org.pk}").status_code == 401
    # when the rule is removed, the same token works again
    assert alice.call("DELETE", f"{rules_path(acme.org)}/{rule['id']}").status_code == 204
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.ACTIVE
    assert token.call("GET", f"orgs/{acme.org.pk}").status_code == 200


def test_switching_to_allowlist_blocks_and_back_unblocks(acme, vendor, alice):
    inst = installed(alice, acme.org, vendor.release())
    res = alice.call("PATCH", f"orgs/{acme.org.pk}/install-policy", {"mode": "allowlist"})
    assert res.json()["blocked_installations"] == [inst.pk]
    res = alice.call("PATCH", f"orgs/{acme.org.pk}/install-policy", {"mode": "open", "requests_enabled": False})
    assert res.json() == {**res.json(), "mode": "open", "requests_enabled": False, "blocked_installations": []}


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"kind": "app", "effect": "deny", "value": "kv:*"}, 400, "validation_error", "kind"),
        ({"kind": 7, "effect": "deny", "value": "kv:*"}, 400, "validation_error", "kind"),
        ({"kind": "scope", "effect": "maybe", "value": "kv:*"}, 400, "validation_error", "effect"),
        ({"kind": "scope", "effect": "allow", "value": "kv:*"}, 400, "scope_rules_deny_only", "effect"),
        ({"kind": "scope", "effect": "deny", "value": "files:*"}, 400, "rule_value_invalid", "value"),
        ({"kind": "scope", "effect": "deny", "value": "x" * 10_000}, 400, "validation_error", "value"),
        ({"kind": "scope", "effect": "deny", "value": "kv:read\x07"}, 400, "rule_value_invalid", "value"),
        ({"kind": "scope", "effect": "deny", "value": "kv:read\u202e"}, 400, "rule_value_invalid", "value"),
        ({"kind": "scope", "effect": "deny", "value": "kv\x00:read"}, 400, None, "value"),
        ({"kind": "scope", "effect": "deny", "value": ["kv:read"]}, 400, "validation_error", "value"),
        ({"kind": "scope", "effect": "deny"}, 400, "validation_error", "value"),
        ({"kind": "scope", "effect": "deny", "value": "kv:*", "note": "n" * 501}, 400, "validation_error", "note"),
        ({"kind": "scope", "effect": "deny", "value": "kv:*", "note": "a\x1bb"}, 400, None, "note"),
        ({"kind": "extension", "effect": "deny", "value": "ext_../../etc"}, 400, "rule_value_invalid", "value"),
        ({"kind": "publisher", "effect": "deny", "value": "org_01JAAAAAAAAAAAAAAAAAAAAAAA"}, 400, None, "value"),
    ],
)
def test_hostile_rules_get_clear_400s_and_create_nothing(acme, alice, body, status, code, param):
    res = alice.call("POST", rules_path(acme.org), body)
    error = assert_error(res, status, code)
    assert error["param"] == param
    assert not InstallRule.objects.exists()


def test_a_duplicate_rule_is_409(acme, alice):
    assert add_rule(alice, acme.org, "scope", "deny", "kv:*").status_code == 201
    assert_error(add_rule(alice, acme.org, "scope", "deny", "kv:*"), 409, "install_rule_exists")


def test_another_organisations_rule_is_not_found_and_not_removed(acme, globex, alice):
    theirs = add_rule(session(globex.owner), globex.org, "scope", "deny", "kv:*").json()
    assert_error(alice.call("DELETE", f"{rules_path(acme.org)}/{theirs['id']}"), 404, "not_found")
    for bad in ("nope", "irl_" + "0" * 26, "x" * 300):
        assert_error(alice.call("DELETE", f"{rules_path(acme.org)}/{bad}"), 404, "not_found")
    assert InstallRule.objects.filter(pk=theirs["id"]).exists()


def test_members_may_not_read_or_change_rules(acme, bob):
    assert_error(bob.call("GET", rules_path(acme.org)), 403, "role")
    assert_error(bob.call("PATCH", f"orgs/{acme.org.pk}/install-policy", {"mode": "allowlist"}), 403, "role")
    assert not InstallPolicy.objects.exists()


@pytest.mark.parametrize("body", [{"mode": "closed"}, {"mode": 3}, {"requests_enabled": "sometimes"}, {"mode": None}])
def test_bad_policy_changes_are_400_or_nothing(acme, alice, body):
    res = alice.call("PATCH", f"orgs/{acme.org.pk}/install-policy", body)
    if body == {"mode": None}:  # nothing to change
        assert res.status_code == 200 and res.json()["mode"] == "open"
    else:
        assert_error(res, 400, "validation_error")
        assert not InstallPolicy.objects.exists()


# --- install requests -----------------------------------------------------------------------------
def requests_path(org) -> str:
    return f"orgs/{org.pk}/install-requests"


def test_a_member_asks_the_admin_sees_it_and_approves(acme, vendor, alice, bob, django_capture_on_commit_callbacks):
    version = vendor.release()
    res = bob.call("POST", requests_path(acme.org), {"extension_key": version.extension.key, "reason": "Need it."})
    assert res.status_code == 201, res.content
    asked = res.json()
    assert asked["status"] == "pending" and asked["extension_id"] == version.extension_id
    assert asked["requested_by"]["email"] == acme.user(Role.MEMBER).email
    pending = alice.call("GET", requests_path(acme.org), {"status": "pending"}).json()["data"]
    assert [r["id"] for r in pending] == [asked["id"]]
    with django_capture_on_commit_callbacks(execute=True):
        res = alice.call(
            "POST", f"{requests_path(acme.org)}/{asked['id']}/decision", {"decision": "approve", "note": "On it."}
        )
    assert res.status_code == 200 and res.json()["status"] == "approved"
    assert res.json()["decided_by"]["email"] == acme.owner.email
    assert mail.outbox[-1].to == [acme.user(Role.MEMBER).email] and "On it." in mail.outbox[-1].body
    assert_error(
        alice.call("POST", f"{requests_path(acme.org)}/{asked['id']}/decision", {"decision": "deny"}),
        409,
        "request_not_pending",
    )


def test_members_see_only_their_own_requests(acme, vendor, alice, bob):
    extension = vendor.release().extension
    mine = bob.call("POST", requests_path(acme.org), {"extension_id": extension.pk}).json()
    dev = session(acme.user(Role.DEVELOPER))
    theirs = dev.call("POST", requests_path(acme.org), {"extension_id": extension.pk}).json()
    assert [r["id"] for r in bob.call("GET", requests_path(acme.org)).json()["data"]] == [mine["id"]]
    assert {r["id"] for r in alice.call("GET", requests_path(acme.org)).json()["data"]} == {mine["id"], theirs["id"]}
    assert alice.call("GET", requests_path(acme.org), {"mine": "true"}).json()["data"] == []


def test_only_the_requester_withdraws(acme, vendor, alice, bob):
    asked = bob.call("POST", requests_path(acme.org), {"extension_id": vendor.release().extension_id}).json()
    path = f"{requests_path(acme.org)}/{asked['id']}/withdraw"
    assert_error(alice.call("POST", path), 404, "not_found")
    res = bob.call("POST", path)
    assert res.status_code == 200 and res.json()["status"] == "withdrawn"
    assert_error(bob.call("POST", path), 409, "request_not_pending")


def test_members_cannot_decide(acme, vendor, bob):
    asked = bob.call("POST", requests_path(acme.org), {"extension_id": vendor.release().extension_id}).json()
    res = bob.call("POST", f"{requests_path(acme.org)}/{asked['id']}/decision", {"decision": "approve"})
    assert_error(res, 403, "role")
    assert InstallRequest.objects.get().status == "pending"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "validation_error"),
        ({"extension_id": "ext_01JAAAAAAAAAAAAAAAAAAAAAAA"}, 404, "not_found"),
        ({"extension_key": "nobody.nothing"}, 404, "not_found"),
        ({"extension_id": "../../x"}, 404, "not_found"),
        ({"extension_key": "k" * 126}, 400, "validation_error"),
        ({"extension_key": "vendor.order-tagger", "reason": "r" * 1001}, 400, "validation_error"),
        ({"extension_key": "vendor.order-tagger", "reason": "bell\x07"}, 400, "validation_error"),
        ({"extension_key": "vendor.order-tagger", "extension_id": "ext_01JAAAAAAAAAAAAAAAAAAAAAAA"}, 400, None),
    ],
)
def test_hostile_requests_get_clear_answers_and_create_nothing(acme, vendor, bob, body, status, code):
    vendor.release()
    assert_error(bob.call("POST", requests_path(acme.org), body), status, code)
    assert not InstallRequest.objects.exists()


def test_requests_refused_when_installed_pending_or_turned_off(acme, vendor, alice, bob):
    version = vendor.release()
    body = {"extension_id": version.extension_id}
    assert bob.call("POST", requests_path(acme.org), body).status_code == 201
    assert_error(bob.call("POST", requests_path(acme.org), body), 409, "request_pending")
    installed(alice, acme.org, version)
    assert_error(
        session(acme.user(Role.DEVELOPER)).call("POST", requests_path(acme.org), body), 409, "already_installed"
    )
    alice.call("PATCH", f"orgs/{acme.org.pk}/install-policy", {"requests_enabled": False})
    other = vendor.release("other", "1.0.0")
    assert_error(
        bob.call("POST", requests_path(acme.org), {"extension_id": other.extension_id}), 409, "requests_disabled"
    )


def test_a_token_cannot_ask(acme, vendor, api_for):
    res = api_for(acme.org, role=Role.OWNER).call(
        "POST", requests_path(acme.org), {"extension_key": "vendor.order-tagger"}
    )
    assert_error(res, 403, "users_only")


def test_another_organisations_requests_are_not_found(acme, globex, vendor, alice):
    asked = (
        session(globex.owner)
        .call("POST", requests_path(globex.org), {"extension_id": vendor.release().extension_id})
        .json()
    )
    for suffix in ("decision", "withdraw"):
        res = alice.call("POST", f"{requests_path(acme.org)}/{asked['id']}/{suffix}", {"decision": "deny"})
        assert_error(res, 404, "not_found")
    assert InstallRequest.objects.get(pk=asked["id"]).status == "pending"


def test_a_bad_status_filter_is_400(acme, alice):
    assert_error(alice.call("GET", requests_path(acme.org), {"status": "everything"}), 400, "validation_error")
