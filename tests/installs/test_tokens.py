"""Installation access tokens: the publisher exchanges its credentials for a short-lived token that
acts in the customer organisation with exactly the Plaza API scopes the customer granted."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.audit.models import AuditEvent
from apps.core import clock
from apps.extensions.models import ChannelRelease
from apps.installs import services
from apps.installs.models import Installation
from apps.orgs.models import ApiToken, Role, ServiceAccount
from tests.conftest import ApiClient
from tests.installs.support import installed, session
from tests.orgs.test_authorization import assert_error

API_SCOPES = ["events:read:order.created", "api:org:read", "api:domains:read"]


@pytest.fixture
def installation(acme, vendor) -> Installation:
    version = vendor.release(scopes=API_SCOPES)
    return installed(session(acme.owner), acme.org, version)


def token_path(vendor, installation) -> str:
    return f"orgs/{vendor.org.pk}/extensions/{installation.extension_id}/installations/{installation.pk}/token"


def issue(vendor, installation, user=None):
    return session(user or vendor.tenant.owner).call("POST", token_path(vendor, installation))


def test_the_publisher_gets_a_token_with_exactly_the_granted_api_scopes(acme, vendor, installation):
    # when vera, the publisher's owner, asks for a token for acme's installation
    before = clock.now()
    res = issue(vendor, installation)
    # then it acts in acme, with the API scopes acme granted, for an hour
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["token"].startswith("plz_")
    assert (body["org_id"], body["installation_id"]) == (acme.org.pk, installation.pk)
    assert body["scopes"] == ["domains:read", "org:read"]
    token = ApiToken.objects.get(pk=body["token_id"])
    assert token.service_account.installation_id == installation.pk
    assert before + dt.timedelta(minutes=59) < token.expires_at <= clock.now() + dt.timedelta(minutes=60)
    # and both organisations' audit logs record it
    assert AuditEvent.objects.filter(org_id=acme.org.pk, action="installation.token_issued").count() == 1
    assert AuditEvent.objects.filter(org_id=vendor.org.pk, action="installation.token_issued").count() == 1


def test_the_token_reaches_only_what_its_scopes_allow(acme, vendor, installation):
    # given the publisher's token for acme's installation
    api = ApiClient(issue(vendor, installation).json()["token"])
    # then it reads acme and its domains, and nothing else
    assert api.call("GET", f"orgs/{acme.org.pk}").status_code == 200
    assert api.call("GET", f"orgs/{acme.org.pk}/domains").status_code == 200
    assert_error(api.call("GET", f"orgs/{acme.org.pk}/members"), 403, "missing_scope")
    assert_error(api.call("GET", f"orgs/{acme.org.pk}/audit-events"), 403, "missing_scope")
    assert_error(api.call("GET", f"orgs/{acme.org.pk}/installations"), 403, "missing_scope")
    assert_error(api.call("PATCH", f"orgs/{acme.org.pk}", {"name": "Pwned"}), 403, "missing_scope")
    assert_error(api.call("GET", f"orgs/{vendor.org.pk}"), 404, "not_found")


def test_the_token_stops_working_after_uninstall(acme, vendor, installation):
    api = ApiClient(issue(vendor, installation).json()["token"])
    assert api.call("GET", f"orgs/{acme.org.pk}").status_code == 200
    # when acme uninstalls the extension
    res = session(acme.owner).call("DELETE", f"orgs/{acme.org.pk}/installations/{installation.pk}")
    assert res.status_code == 200, res.content
    # then the token is refused, its account is gone, and no new token can be had
    assert_error(api.call("GET", f"orgs/{acme.org.pk}"), 401)
    assert not ServiceAccount.objects.filter(installation_id=installation.pk).exists()
    assert_error(issue(vendor, installation), 404, "not_found")


def test_a_blocked_installation_gets_no_token(vendor, installation):
    Installation.objects.filter(pk=installation.pk).update(status="blocked")
    assert_error(issue(vendor, installation), 409, "installation_not_active")


def test_an_installation_without_api_scopes_gets_no_token(acme, vendor):
    version = vendor.release("plain", "1.0.0")
    plain = installed(session(acme.owner), acme.org, version)
    assert_error(issue(vendor, plain), 409, "no_api_scopes")
    assert not ApiToken.objects.filter(service_account__installation_id=plain.pk).exists()


@pytest.mark.parametrize("role", [Role.MEMBER, Role.BILLING])
def test_publisher_members_without_a_builder_role_cannot_issue(vendor, installation, role):
    assert_error(issue(vendor, installation, vendor.tenant.user(role)), 403, "role")


def test_the_customer_cannot_issue_tokens_for_the_publisher(acme, vendor, installation):
    # acme's owner, naming acme as the organisation: the extension is not acme's
    path = f"orgs/{acme.org.pk}/extensions/{installation.extension_id}/installations/{installation.pk}/token"
    assert_error(session(acme.owner).call("POST", path), 404, "not_found")
    # nor can acme's owner name the publisher organisation
    assert_error(session(acme.owner).call("POST", token_path(vendor, installation)), 404, "not_found")


def test_another_extension_of_the_publisher_does_not_reach_the_installation(vendor, installation):
    other = vendor.extension("other-ext")
    path = f"orgs/{vendor.org.pk}/extensions/{other.pk}/installations/{installation.pk}/token"
    assert_error(session(vendor.tenant.owner).call("POST", path), 404, "not_found")


def test_issuing_again_clears_expired_tokens(vendor, installation):
    first = issue(vendor, installation).json()["token_id"]
    ApiToken.objects.filter(pk=first).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    second = issue(vendor, installation).json()["token_id"]
    assert list(
        ApiToken.objects.filter(service_account__installation_id=installation.pk).values_list("pk", flat=True)
    ) == [second]


def test_a_publisher_token_can_exchange_for_an_installation_token(acme, vendor, installation, api_for):
    publisher = api_for(vendor.org, role=Role.DEVELOPER, scopes=["extensions:write"])
    res = publisher.call("POST", token_path(vendor, installation))
    assert res.status_code == 201, res.content
    assert ApiClient(res.json()["token"]).call("GET", f"orgs/{acme.org.pk}").status_code == 200


# --- tokens never outlive the consent (review findings) --------------------------------------------
WITH_AUDIT = [*API_SCOPES, "api:audit:read"]


def test_a_rollback_revokes_tokens_whose_scopes_are_no_longer_granted(acme, vendor, installation):
    alice = session(acme.owner)
    base = f"orgs/{acme.org.pk}/installations/{installation.pk}"
    v1_token = issue(vendor, installation).json()
    # given acme updated to 1.1.0, consenting to audit:read, and the publisher got a token with it
    vendor.release(version="1.1.0", scopes=WITH_AUDIT)
    res = alice.call("POST", f"{base}/update", {"granted_scopes": WITH_AUDIT})
    assert res.status_code == 200, res.content
    wide = issue(vendor, installation).json()
    assert wide["scopes"] == ["audit:read", "domains:read", "org:read"]
    assert ApiClient(wide["token"]).call("GET", f"orgs/{acme.org.pk}/audit-events").status_code == 200
    # when acme rolls back to 1.0.0, whose grant has no audit:read
    res = alice.call("POST", f"{base}/rollback", {"version_id": installation.version_id})
    assert res.status_code == 200, res.content
    # then the wide token is revoked (audited), and the one within the grant still works
    assert_error(ApiClient(wide["token"]).call("GET", f"orgs/{acme.org.pk}/audit-events"), 401)
    assert ApiToken.objects.get(pk=wide["token_id"]).revoked_at is not None
    event = AuditEvent.objects.get(org_id=acme.org.pk, action="token.revoked")
    assert event.changes["reason"] == "scopes_no_longer_granted"
    assert ApiClient(v1_token["token"]).call("GET", f"orgs/{acme.org.pk}").status_code == 200


def test_an_update_that_drops_an_api_scope_revokes_tokens_that_carry_it(acme, vendor, installation):
    token = issue(vendor, installation).json()
    # when 1.1.0, which no longer asks for domains:read, applies automatically
    v2 = vendor.release(version="1.1.0", scopes=["events:read:order.created", "api:org:read"])
    services.channel_release_apply(release=ChannelRelease.objects.get(version=v2))
    # then the token minted with domains:read is revoked; a new one has only org:read
    assert_error(ApiClient(token["token"]).call("GET", f"orgs/{acme.org.pk}"), 401)
    assert issue(vendor, installation).json()["scopes"] == ["org:read"]


def test_a_members_read_token_lists_members_but_nothing_else_of_members_read(acme, vendor):
    # given an installation granted api:members:read (its managed account's role is admin)
    version = vendor.release("people", scopes=["events:read:order.created", "api:members:read"])
    installation = installed(session(acme.owner), acme.org, version)
    api = ApiClient(issue(vendor, installation).json()["token"])
    # then it lists members, which the consent screen offered ...
    assert api.call("GET", f"orgs/{acme.org.pk}/members").status_code == 200
    # ... but not what members:read also allows an admin: sessions, invitations, groups
    for tail in ("sessions", "invitations", "groups"):
        assert_error(api.call("GET", f"orgs/{acme.org.pk}/{tail}"), 403, "role")


def test_an_installation_account_may_only_do_the_reads_behind_extension_api_scopes(acme, vendor, installation):
    from apps.extensions.scopes import API_SCOPES_FOR_EXTENSIONS
    from apps.orgs.policy import ACTIONS, INSTALLATION_ACTIONS, Principal, check

    # the allowlist is exactly the actions behind the API scopes an extension may ask for
    assert {ACTIONS[action][0] for action in INSTALLATION_ACTIONS} == API_SCOPES_FOR_EXTENSIONS
    # and even with every scope, the managed account may do nothing else
    issue(vendor, installation)
    account = ServiceAccount.objects.get(installation_id=installation.pk)
    assert account.role == Role.ADMIN
    principal = Principal(kind="service_account", service_account=account)  # scopes None: not restricted
    for action in ACTIONS:
        expected = None if action in INSTALLATION_ACTIONS else "role"
        assert check(principal, action, acme.org) == expected, action
