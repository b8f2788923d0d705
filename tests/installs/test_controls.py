"""The organisation's install controls as services: the judge (``apps.installs.rules``), rule
validation, enforcement on what is installed (block/unblock, the installation's service account)
and the install request flow."""

from __future__ import annotations

import pytest
from django.core import mail

from apps.audit.models import AuditEvent
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.extensions.models import Extension
from apps.installs.models import (
    Installation,
    InstallationStatus,
    InstallPolicy,
    InstallRequest,
    InstallRule,
    RequestStatus,
)
from apps.installs.rules import install_refusal
from apps.installs.services import controls
from apps.installs.signals import installation_changed
from apps.orgs.models import Role, ServiceAccount
from tests.installs.support import person

FETCH_SCOPES = ["events:read:order.created", "http:fetch:api.example.com"]


@pytest.fixture
def alice_p(acme):
    return person(acme.owner)


@pytest.fixture
def bob_p(acme):
    return person(acme.user(Role.MEMBER))


def put_installed(org, version, *, status=InstallationStatus.ACTIVE) -> Installation:
    """An installation row with its managed service account, as installation_create leaves them
    (written directly: these tests are about enforcement, not installing)."""
    inst = Installation.objects.create(
        org=org,
        extension=version.extension,
        version=version,
        granted_scopes=list(version.scopes),
        status=status,
    )
    ServiceAccount.objects.create(org=org, name="ext", role=Role.ADMIN, installation_id=inst.pk)
    return inst


def account(inst) -> ServiceAccount:
    return ServiceAccount.objects.get(installation_id=inst.pk)


@pytest.fixture
def signals_seen():
    seen = []

    def receiver(sender, installation, action, actor_id, **kwargs):
        seen.append((installation.pk, action, actor_id))

    installation_changed.connect(receiver)
    yield seen
    installation_changed.disconnect(receiver)


# --- the judge ------------------------------------------------------------------------------------
def test_the_judge_refuses_a_denylisted_extension(acme, vendor, alice_p):
    version = vendor.release()
    controls.install_rule_create(
        principal=alice_p, org=acme.org, kind="extension", effect="deny", value=version.extension_id
    )
    refusal = install_refusal(acme.org, version.extension, version.scopes)
    assert refusal.code == "extension_denied" and version.extension.key in refusal.message


def test_the_judge_refuses_a_denylisted_publisher(acme, vendor, alice_p):
    version = vendor.release()
    controls.install_rule_create(principal=alice_p, org=acme.org, kind="publisher", effect="deny", value="vendor")
    assert install_refusal(acme.org, version.extension, version.scopes).code == "publisher_denied"


def test_the_judge_refuses_a_denied_scope_pattern(acme, vendor, alice_p):
    version = vendor.release(scopes=FETCH_SCOPES)
    controls.install_rule_create(principal=alice_p, org=acme.org, kind="scope", effect="deny", value="http:fetch:*")
    refusal = install_refusal(acme.org, version.extension, version.scopes)
    assert refusal.code == "scope_denied" and refusal.scope == "http:fetch:api.example.com"
    # an extension without the scope is unaffected
    other = vendor.release("other", "1.0.0")
    assert install_refusal(acme.org, other.extension, other.scopes) is None


def test_the_judge_refuses_what_is_not_allowlisted_in_allowlist_mode(acme, vendor, alice_p):
    version = vendor.release()
    controls.install_policy_update(principal=alice_p, org=acme.org, mode="allowlist")
    assert install_refusal(acme.org, version.extension, version.scopes).code == "not_allowlisted"
    controls.install_rule_create(principal=alice_p, org=acme.org, kind="publisher", effect="allow", value="vendor")
    assert install_refusal(acme.org, version.extension, version.scopes) is None


def test_deny_wins_over_allow(acme, vendor, alice_p):
    version = vendor.release()
    for effect in ("allow", "deny"):
        controls.install_rule_create(
            principal=alice_p, org=acme.org, kind="extension", effect=effect, value=version.extension_id
        )
    assert install_refusal(acme.org, version.extension, version.scopes).code == "extension_denied"


# --- rule validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "effect", "value", "param", "code"),
    [
        ("app", "deny", "x", "kind", "validation_error"),
        ("", "deny", "x", "kind", "validation_error"),
        (None, "deny", "x", "kind", "validation_error"),
        ("scope", "block", "kv:read", "effect", "validation_error"),
        ("scope", "allow", "kv:read", "effect", "scope_rules_deny_only"),
        ("scope", "deny", "files:read", "value", "rule_value_invalid"),
        ("scope", "deny", "*", "value", "rule_value_invalid"),
        ("scope", "deny", "http*", "value", "rule_value_invalid"),
        ("scope", "deny", "http:fetch*", "value", "rule_value_invalid"),
        ("scope", "deny", "http:fetch:**", "value", "rule_value_invalid"),
        ("scope", "deny", "http:*:fetch", "value", "rule_value_invalid"),
        ("scope", "deny", "*.example.com", "value", "rule_value_invalid"),
        ("scope", "deny", "api:secrets:*", "value", "rule_value_invalid"),
        ("scope", "deny", "nope:*", "value", "rule_value_invalid"),
        ("scope", "deny", "http:fetch:" + "a" * 300, "value", "rule_value_invalid"),
        ("scope", "deny", "kv:read\x00", "value", "rule_value_invalid"),
        ("scope", "deny", "kv:\x1bread", "value", "rule_value_invalid"),
        ("scope", "deny", "kv: read", "value", "rule_value_invalid"),
        ("scope", "deny", "", "value", "rule_value_invalid"),
        ("scope", "deny", 42, "value", "rule_value_invalid"),
        ("extension", "deny", "ext_01JAAAAAAAAAAAAAAAAAAAAAAA", "value", "rule_value_invalid"),
        ("extension", "deny", "nobody.nothing", "value", "rule_value_invalid"),
        ("publisher", "deny", "org_01JAAAAAAAAAAAAAAAAAAAAAAA", "value", "rule_value_invalid"),
        ("publisher", "deny", "acme", "value", "rule_value_invalid"),  # publishes nothing
    ],
)
def test_bad_rules_are_refused_with_the_field_named(acme, vendor, alice_p, kind, effect, value, param, code):
    vendor.release()
    with pytest.raises(ValidationFailed) as caught:
        controls.install_rule_create(principal=alice_p, org=acme.org, kind=kind, effect=effect, value=value)
    assert caught.value.param == param and caught.value.code == code
    assert caught.value.message
    assert not InstallRule.objects.exists()


@pytest.mark.parametrize(
    "value",
    [
        "http:fetch:*",
        "http:*",
        "events:read:order.*",
        "events:*",
        "kv:*",
        "api:members:*",
        "api:*",
        "ui:slot:order.*",
        "http:fetch:corp.*",
        "events:read:order.created",
        "http:fetch:api.example.com",
        "agent:tools",
    ],
)
def test_scope_rules_take_scopes_and_prefix_patterns(acme, alice_p, value):
    rule = controls.install_rule_create(principal=alice_p, org=acme.org, kind="scope", effect="deny", value=value)
    assert rule.value == value


def test_extension_and_publisher_rules_are_stored_by_id_whatever_names_them(acme, vendor, alice_p):
    version = vendor.release()
    by_key = controls.install_rule_create(
        principal=alice_p, org=acme.org, kind="extension", effect="deny", value=" VENDOR.order-tagger "
    )
    by_slug = controls.install_rule_create(
        principal=alice_p, org=acme.org, kind="publisher", effect="allow", value="vendor"
    )
    assert by_key.value == version.extension_id and by_slug.value == vendor.org.pk


def test_a_sandbox_tenant_is_no_publisher_to_name(acme, vendor, alice_p):
    vendor.release()
    sandbox = vendor.org.sandbox
    with pytest.raises(ValidationFailed):
        controls.install_rule_create(principal=alice_p, org=acme.org, kind="publisher", effect="deny", value=sandbox.pk)


def test_a_duplicate_rule_is_a_conflict(acme, alice_p):
    controls.install_rule_create(principal=alice_p, org=acme.org, kind="scope", effect="deny", value="kv:*")
    with pytest.raises(Conflict) as caught:
        controls.install_rule_create(principal=alice_p, org=acme.org, kind="scope", effect="deny", value="kv:*")
    assert caught.value.code == "install_rule_exists"
    assert InstallRule.objects.count() == 1


def test_members_cannot_manage_rules_or_the_mode(acme, bob_p):
    with pytest.raises(PermissionDenied):
        controls.install_rule_create(principal=bob_p, org=acme.org, kind="scope", effect="deny", value="kv:*")
    with pytest.raises(PermissionDenied):
        controls.install_policy_update(principal=bob_p, org=acme.org, mode="allowlist")
    assert not InstallRule.objects.exists() and not InstallPolicy.objects.exists()


def test_rule_changes_are_audited(acme, alice_p):
    rule = controls.install_rule_create(
        principal=alice_p, org=acme.org, kind="scope", effect="deny", value="kv:*", note="No storage."
    )
    controls.install_rule_delete(principal=alice_p, rule=rule)
    controls.install_policy_update(principal=alice_p, org=acme.org, mode="allowlist", requests_enabled=False)
    actions = list(AuditEvent.objects.filter(org_id=acme.org.pk).values_list("action", flat=True))
    assert {"install_rule.created", "install_rule.deleted", "install_policy.updated"} <= set(actions)
    changed = AuditEvent.objects.get(org_id=acme.org.pk, action="install_policy.updated").changes
    assert changed["mode"] == {"before": "open", "after": "allowlist"}


@pytest.mark.parametrize(
    ("changes", "param"),
    [({"mode": "closed"}, "mode"), ({"mode": 1}, "mode"), ({"requests_enabled": "yes"}, "requests_enabled")],
)
def test_bad_policy_values_are_refused(acme, alice_p, changes, param):
    with pytest.raises(ValidationFailed) as caught:
        controls.install_policy_update(principal=alice_p, org=acme.org, **changes)
    assert caught.value.param == param


# --- enforcement ----------------------------------------------------------------------------------
def test_a_new_deny_rule_blocks_live_installations_and_disables_their_token_account(
    acme, vendor, alice_p, signals_seen, django_capture_on_commit_callbacks
):
    # given an active installation of vendor's extension with its managed service account
    version = vendor.release()
    inst = put_installed(acme.org, version)
    # when alice denies the extension
    with django_capture_on_commit_callbacks(execute=True):
        rule = controls.install_rule_create(
            principal=alice_p, org=acme.org, kind="extension", effect="deny", value=version.extension_id
        )
    # then the installation is blocked with the refusal as reason, and its account is disabled
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.BLOCKED
    assert "does not allow" in inst.status_reason
    assert account(inst).disabled_at is not None
    assert (inst.pk, "blocked", acme.owner.pk) in signals_seen
    audit = AuditEvent.objects.get(org_id=acme.org.pk, action="installation.blocked")
    assert audit.target_id == inst.pk and audit.changes["rule"] == rule.pk
    # when the rule goes, it runs again
    with django_capture_on_commit_callbacks(execute=True):
        controls.install_rule_delete(principal=alice_p, rule=rule)
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.ACTIVE and inst.status_reason == ""
    assert account(inst).disabled_at is None
    assert (inst.pk, "unblocked", acme.owner.pk) in signals_seen
    assert AuditEvent.objects.filter(org_id=acme.org.pk, action="installation.unblocked", target_id=inst.pk).exists()


def test_a_scope_pattern_blocks_only_installations_holding_a_matching_scope(acme, vendor, alice_p):
    fetching = put_installed(acme.org, vendor.release("fetcher", "1.0.0", scopes=FETCH_SCOPES))
    quiet = put_installed(acme.org, vendor.release("quiet", "1.0.0"))
    controls.install_rule_create(principal=alice_p, org=acme.org, kind="scope", effect="deny", value="http:fetch:*")
    assert list(Installation.objects.filter(status="blocked").values_list("pk", flat=True)) == [fetching.pk]
    assert account(fetching).disabled_at is not None
    quiet.refresh_from_db()
    assert quiet.status == InstallationStatus.ACTIVE and account(quiet).disabled_at is None


def test_allowlist_mode_blocks_what_no_allow_rule_names_and_an_allow_rule_unblocks_it(acme, vendor, alice_p):
    inst = put_installed(acme.org, vendor.release())
    controls.install_policy_update(principal=alice_p, org=acme.org, mode="allowlist")
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.BLOCKED and "allowlisted" in inst.status_reason
    assert account(inst).disabled_at is not None
    controls.install_rule_create(principal=alice_p, org=acme.org, kind="publisher", effect="allow", value="vendor")
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.ACTIVE and account(inst).disabled_at is None


def test_switching_back_to_open_unblocks(acme, vendor, alice_p):
    inst = put_installed(acme.org, vendor.release())
    controls.install_policy_update(principal=alice_p, org=acme.org, mode="allowlist")
    controls.install_policy_update(principal=alice_p, org=acme.org, mode="open")
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.ACTIVE


def test_a_blocked_installation_stays_blocked_while_another_rule_refuses_it(acme, vendor, alice_p):
    version = vendor.release(scopes=FETCH_SCOPES)
    inst = put_installed(acme.org, version)
    by_scope = controls.install_rule_create(
        principal=alice_p, org=acme.org, kind="scope", effect="deny", value="http:*"
    )
    controls.install_rule_create(principal=alice_p, org=acme.org, kind="publisher", effect="deny", value="vendor")
    controls.install_rule_delete(principal=alice_p, rule=by_scope)
    inst.refresh_from_db()
    assert inst.status == InstallationStatus.BLOCKED and "publisher" in inst.status_reason
    assert account(inst).disabled_at is not None


def test_enforcement_leaves_uninstalled_installations_and_other_organisations_alone(acme, globex, vendor, alice_p):
    version = vendor.release()
    gone = put_installed(acme.org, version, status=InstallationStatus.UNINSTALLED)
    theirs = put_installed(globex.org, version)
    controls.install_rule_create(
        principal=alice_p, org=acme.org, kind="extension", effect="deny", value=version.extension_id
    )
    gone.refresh_from_db()
    theirs.refresh_from_db()
    assert gone.status == InstallationStatus.UNINSTALLED
    assert theirs.status == InstallationStatus.ACTIVE and account(theirs).disabled_at is None


def test_enforce_directly_repairs_a_stale_status(acme, vendor, alice_p):
    # given a rule written without enforcement (as a data fix would), the judge and the row disagree
    version = vendor.release()
    inst = put_installed(acme.org, version)
    InstallRule.objects.create(org=acme.org, kind="extension", effect="deny", value=version.extension_id)
    # when enforcement runs, it blocks; and running it again changes nothing
    assert [i.pk for i in controls.installations_enforce(org=acme.org)] == [inst.pk]
    assert controls.installations_enforce(org=acme.org) == []


# --- install requests -----------------------------------------------------------------------------
def test_a_member_asks_and_an_admin_approves_with_a_note_the_member_gets_by_mail(
    acme, vendor, alice_p, bob_p, django_capture_on_commit_callbacks
):
    version = vendor.release()
    request = controls.install_request_create(
        principal=bob_p, org=acme.org, extension=version.extension, reason="Tag orders\nautomatically."
    )
    assert request.status == RequestStatus.PENDING and request.requested_by == acme.user(Role.MEMBER)
    with django_capture_on_commit_callbacks(execute=True):
        decided = controls.install_request_decide(
            principal=alice_p, request=request, approve=True, note="Installing today."
        )
    assert decided.status == RequestStatus.APPROVED and decided.decided_by == acme.owner
    sent = [m for m in mail.outbox if acme.user(Role.MEMBER).email in m.to]
    assert len(sent) == 1 and "approved" in sent[0].subject and "Installing today." in sent[0].body
    actions = set(AuditEvent.objects.filter(org_id=acme.org.pk).values_list("action", flat=True))
    assert {"install_request.created", "install_request.approved"} <= actions


def test_a_denied_request_tells_the_member_why(acme, vendor, alice_p, bob_p, django_capture_on_commit_callbacks):
    version = vendor.release()
    request = controls.install_request_create(principal=bob_p, org=acme.org, extension=version.extension)
    with django_capture_on_commit_callbacks(execute=True):
        controls.install_request_decide(principal=alice_p, request=request, approve=False, note="Use the other one.")
    assert "denied" in mail.outbox[-1].subject and "Use the other one." in mail.outbox[-1].body


def test_a_request_is_decided_once(acme, vendor, alice_p, bob_p):
    request = controls.install_request_create(principal=bob_p, org=acme.org, extension=vendor.release().extension)
    controls.install_request_decide(principal=alice_p, request=request, approve=False)
    with pytest.raises(Conflict) as caught:
        controls.install_request_decide(principal=alice_p, request=request, approve=True)
    assert caught.value.code == "request_not_pending"


def test_members_cannot_decide(acme, vendor, bob_p):
    request = controls.install_request_create(principal=bob_p, org=acme.org, extension=vendor.release().extension)
    with pytest.raises(PermissionDenied):
        controls.install_request_decide(principal=bob_p, request=request, approve=True)
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


def test_a_second_pending_request_for_the_same_extension_is_refused(acme, vendor, bob_p, alice_p):
    extension = vendor.release().extension
    controls.install_request_create(principal=bob_p, org=acme.org, extension=extension)
    with pytest.raises(Conflict) as caught:
        controls.install_request_create(principal=bob_p, org=acme.org, extension=extension)
    assert caught.value.code == "request_pending"
    # another member may still add theirs
    controls.install_request_create(principal=person(acme.user(Role.DEVELOPER)), org=acme.org, extension=extension)
    assert InstallRequest.objects.filter(status="pending").count() == 2


def test_requests_are_refused_when_turned_off(acme, vendor, alice_p, bob_p):
    controls.install_policy_update(principal=alice_p, org=acme.org, requests_enabled=False)
    with pytest.raises(Conflict) as caught:
        controls.install_request_create(principal=bob_p, org=acme.org, extension=vendor.release().extension)
    assert caught.value.code == "requests_disabled"


def test_requests_for_an_installed_extension_are_refused(acme, vendor, bob_p):
    version = vendor.release()
    put_installed(acme.org, version)
    with pytest.raises(Conflict) as caught:
        controls.install_request_create(principal=bob_p, org=acme.org, extension=version.extension)
    assert caught.value.code == "already_installed"


def test_requests_for_a_deleted_extension_are_refused(acme, vendor, bob_p):
    extension = vendor.release().extension
    Extension.objects.filter(pk=extension.pk).update(deleted_at="2026-01-01T00:00:00Z")
    extension.refresh_from_db()
    with pytest.raises(NotFound):
        controls.install_request_create(principal=bob_p, org=acme.org, extension=extension)


@pytest.mark.parametrize("reason", ["bell\x07", "esc\x1b[31m", "x" * 1001])
def test_hostile_reasons_are_refused(acme, vendor, bob_p, reason):
    with pytest.raises(ValidationFailed) as caught:
        controls.install_request_create(
            principal=bob_p, org=acme.org, extension=vendor.release().extension, reason=reason
        )
    assert caught.value.param == "reason"
    assert not InstallRequest.objects.exists()


def test_only_the_requester_withdraws_and_only_once(acme, vendor, alice_p, bob_p):
    request = controls.install_request_create(principal=bob_p, org=acme.org, extension=vendor.release().extension)
    with pytest.raises(PermissionDenied) as caught:
        controls.install_request_withdraw(principal=alice_p, request=request)
    assert caught.value.code == "not_requester"
    withdrawn = controls.install_request_withdraw(principal=bob_p, request=request)
    assert withdrawn.status == RequestStatus.WITHDRAWN
    with pytest.raises(Conflict):
        controls.install_request_withdraw(principal=bob_p, request=request)
    # a withdrawn request no longer blocks asking again
    controls.install_request_create(principal=bob_p, org=acme.org, extension=request.extension)
