"""Installation access tokens: the publisher exchanges its credentials for a short-lived token that
acts in the customer organisation with exactly the Plaza API scopes the customer granted."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.audit.models import AuditEvent
from apps.core import clock
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
