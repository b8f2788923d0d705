import datetime as dt

import pytest

from apps.core import clock
from apps.orgs.models import ApiToken
from tests.conftest import ApiClient


def test_token_is_shown_once_and_stored_hashed(acme, api_for):
    # given an admin token of acme
    api = api_for(acme.org)
    sa_id = api.call("GET", "me").json()["id"]
    # when a new token is issued
    res = api.call(
        "POST", f"orgs/{acme.org.pk}/service-accounts/{sa_id}/tokens", {"name": "ci", "scopes": ["org:read"]}
    )
    # then the secret is in the response only, and the database holds its hash
    assert res.status_code == 201, res.content
    secret = res.json()["token"]
    assert secret.startswith("plz_")
    row = ApiToken.objects.get(pk=res.json()["id"])
    assert secret not in (row.token_hash, row.name) and row.last_four == secret[-4:]
    listed = api.call("GET", f"orgs/{acme.org.pk}/tokens").json()["data"]
    assert all("token" not in t for t in listed)
    assert ApiClient(secret).call("GET", f"orgs/{acme.org.pk}").status_code == 200


def test_token_scopes_are_enforced(acme, api_for):
    api = api_for(acme.org, scopes=["org:read"])
    assert api.call("GET", f"orgs/{acme.org.pk}").status_code == 200
    res = api.call("GET", f"orgs/{acme.org.pk}/members")
    assert res.status_code == 403
    assert res.json()["error"]["code"] == "missing_scope"


def test_token_cannot_mint_broader_token(acme, api_for):
    api = api_for(acme.org, scopes=["tokens:read", "tokens:write"])
    sa_id = api.call("GET", "me").json()["id"]
    res = api.call(
        "POST", f"orgs/{acme.org.pk}/service-accounts/{sa_id}/tokens", {"name": "x", "scopes": ["audit:read"]}
    )
    assert res.status_code == 403
    assert res.json()["error"]["code"] == "scope_escalation"


@pytest.mark.parametrize("state", ["expired", "revoked", "disabled_account"])
def test_unusable_tokens_are_refused(acme, api_for, state):
    api = api_for(acme.org)
    token = ApiToken.objects.get(org=acme.org)
    if state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    elif state == "revoked":
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=clock.now())
    else:
        token.service_account.disabled_at = clock.now()
        token.service_account.save(update_fields=["disabled_at"])
    res = api.call("GET", "me")
    assert res.status_code == 401
    assert res.json()["error"]["type"] == "authentication_error"
    assert res["X-Request-Id"] == res.json()["error"]["request_id"]


def test_revoking_through_the_api_takes_effect_at_once(acme, api_for):
    admin = api_for(acme.org)
    victim = api_for(acme.org, scopes=["org:read"])
    token_id = ApiToken.objects.filter(org=acme.org).order_by("-id").first().pk
    assert admin.call("DELETE", f"orgs/{acme.org.pk}/tokens/{token_id}").json()["status"] == "revoked"
    assert victim.call("GET", f"orgs/{acme.org.pk}").status_code == 401


def test_last_used_is_recorded(acme, api_for):
    api = api_for(acme.org)
    api.call("GET", "me")
    assert ApiToken.objects.get(org=acme.org).last_used_at is not None


def test_a_developer_cannot_revoke_or_mint_credentials_of_an_admin_account(acme, api_for, login_client):
    api_for(acme.org, role="admin")
    admin_token = ApiToken.objects.get(org=acme.org, service_account__role="admin")
    dev = login_client(acme.user("developer"))
    res = dev.delete(f"/api/v1/orgs/{acme.org.pk}/tokens/{admin_token.pk}")
    assert res.status_code == 403 and res.json()["error"]["code"] == "role_escalation"
    res = dev.post(
        f"/api/v1/orgs/{acme.org.pk}/service-accounts/{admin_token.service_account_id}/tokens",
        {"name": "x", "scopes": ["org:read"]},
        content_type="application/json",
    )
    assert res.status_code == 403 and res.json()["error"]["code"] == "role_escalation"
    # the developer still manages developer-role accounts
    api_for(acme.org, role="developer")
    dev_token = ApiToken.objects.get(org=acme.org, service_account__role="developer")
    assert dev.delete(f"/api/v1/orgs/{acme.org.pk}/tokens/{dev_token.pk}").status_code == 200


def test_a_token_cannot_mint_a_token_that_outlives_it(acme, api_for):
    api = api_for(acme.org, expires_in_days=30)
    sa_id = api.call("GET", "me").json()["id"]
    url = f"orgs/{acme.org.pk}/service-accounts/{sa_id}/tokens"
    for days in (31, None):
        res = api.call("POST", url, {"name": "longer", "scopes": ["org:read"], "expires_in_days": days})
        assert res.status_code == 400 and res.json()["error"]["code"] == "outlives_issuer"
    assert api.call("POST", url, {"name": "shorter", "scopes": ["org:read"], "expires_in_days": 29}).status_code == 201
