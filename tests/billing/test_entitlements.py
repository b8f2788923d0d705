"""Entitlements: the check (free features + per-installation grants), the API a widget calls with
its delegated token, admin grants over the API and the console, free features of a listing, cleanup."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.billing.cleaners import installation_entitlements
from apps.billing.entitlements import EntitlementRequired, entitlement_check, entitlement_require
from apps.billing.models import EntitlementGrant
from apps.billing.services import listing_free_features_set
from apps.listings.models import Listing
from apps.orgs.models import Role
from apps.orgs.policy import Principal
from tests.conftest import ApiClient, issue_token
from tests.embed.conftest import HOST

ROBOT = Principal(kind="user", user=None, mfa_verified=True)


def _listing(installation, free=()):
    listing = Listing.objects.create(extension=installation.extension, org=installation.extension.org, name="L")
    listing_free_features_set(principal=ROBOT, extension=installation.extension, features=list(free))
    return listing


def _delegated(shop, installation, user=None) -> ApiClient:
    launch_id = shop.launch(user)
    res = Client().post(f"/embed/v1/launches/{launch_id}/tokens", json.dumps({"installation_id": installation.pk}),
                        content_type="application/json", HTTP_ORIGIN=HOST)  # fmt: skip
    return ApiClient(res.json()["token"])


def _grants_api(shop) -> ApiClient:
    return ApiClient(issue_token(shop.org, scopes=["billing:read", "billing:write"]))


def test_check_answers_from_free_features_and_grants(shop):
    _listing(shop.notes, free=["notes.basic"])
    assert entitlement_check(installation=shop.notes, feature="notes.basic") is True
    assert entitlement_check(installation=shop.notes, feature="notes.export") is False
    assert entitlement_check(installation=shop.points, feature="notes.basic") is False  # per extension
    EntitlementGrant.objects.create(org=shop.org, installation_id=shop.notes.pk, feature="notes.export")
    assert entitlement_check(installation=shop.notes, feature="notes.export") is True
    with pytest.raises(EntitlementRequired) as exc:
        entitlement_require(installation=shop.points, feature="notes.export")
    assert exc.value.code == "entitlement_required" and exc.value.param == "notes.export" and exc.value.status == 403
    shop.notes.status = "blocked"
    assert entitlement_check(installation=shop.notes, feature="notes.basic") is False
    assert entitlement_check(installation=shop.notes, feature="Bad Feature") is False


def test_widget_asks_with_its_delegated_token(shop, bob):
    _listing(shop.notes, free=["notes.basic"])
    client = _delegated(shop, shop.notes, bob)
    res = client.call("GET", "entitlements/notes.basic")
    assert res.status_code == 200 and res.json() == {"feature": "notes.basic", "entitled": True}
    res = client.call("GET", "entitlements/notes.export")
    assert res.status_code == 403
    assert res.json()["error"]["code"] == "entitlement_required" and res.json()["error"]["param"] == "notes.export"


def test_grant_makes_the_widget_entitled_and_revoke_takes_it_away(shop, bob):
    _listing(shop.notes)
    api = _grants_api(shop)
    url = f"orgs/{shop.org.pk}/installations/{shop.notes.pk}/entitlements"
    res = api.call("POST", url, {"feature": "notes.export", "note": "trial"})
    assert res.status_code == 201 and res.json()["feature"] == "notes.export"
    assert api.call("POST", url, {"feature": "notes.export"}).status_code == 409
    assert _delegated(shop, shop.notes, bob).call("GET", "entitlements/notes.export").status_code == 200
    listed = api.call("GET", url).json()
    assert [g["feature"] for g in listed["data"]] == ["notes.export"] and listed["next_cursor"] is None
    assert api.call("DELETE", f"{url}/notes.export").status_code == 204
    assert api.call("DELETE", f"{url}/notes.export").status_code == 404
    assert _delegated(shop, shop.notes, bob).call("GET", "entitlements/notes.export").status_code == 403
    actions = set(AuditEvent.objects.filter(org_id=shop.org.pk).values_list("action", flat=True))
    assert {"entitlement.granted", "entitlement.revoked"} <= actions


@pytest.mark.parametrize("feature", ["", "Bad", "a b", "x" * 65, "1abc", "a/b", "<script>"])
def test_invalid_feature_names_are_400(shop, feature):
    res = _grants_api(shop).call("POST", f"orgs/{shop.org.pk}/installations/{shop.notes.pk}/entitlements",
                                 {"feature": feature})  # fmt: skip
    assert res.status_code == 400


def test_grants_need_admin_and_scope_and_hide_other_tenants(shop, globex):
    url = f"orgs/{shop.org.pk}/installations/{shop.notes.pk}/entitlements"
    dev = ApiClient(issue_token(shop.org, role=Role.DEVELOPER, scopes=["billing:read", "billing:write"]))
    assert dev.call("POST", url, {"feature": "x.y"}).status_code == 403
    reader = ApiClient(issue_token(shop.org, scopes=["billing:read"]))
    assert reader.call("GET", url).status_code == 200
    assert reader.call("POST", url, {"feature": "x.y"}).status_code == 403
    other = ApiClient(issue_token(globex.org, scopes=["billing:read", "billing:write"]))
    assert other.call("POST", url, {"feature": "x.y"}).status_code == 404
    assert other.call("POST", f"orgs/{globex.org.pk}/installations/{shop.notes.pk}/entitlements",
                      {"feature": "x.y"}).status_code == 404  # fmt: skip


def test_check_endpoint_needs_an_installation_token(shop):
    plain = ApiClient(issue_token(shop.org))
    res = plain.call("GET", "entitlements/notes.basic")
    assert res.status_code == 403 and res.json()["error"]["code"] == "installation_token_required"
    assert ApiClient().call("GET", "entitlements/notes.basic").status_code == 401


def test_publisher_declares_free_features(shop, vendor):
    _listing(shop.notes)
    api = ApiClient(issue_token(vendor.org, scopes=["listings:read", "listings:write"]))
    url = f"orgs/{vendor.org.pk}/extensions/{shop.notes.extension_id}/free-features"
    res = api.call("PUT", url, {"free_features": ["b.two", "a.one", "a.one"]})
    assert res.status_code == 200 and res.json()["free_features"] == ["a.one", "b.two"]
    assert api.call("GET", url).json()["free_features"] == ["a.one", "b.two"]
    assert entitlement_check(installation=shop.notes, feature="a.one")
    assert api.call("PUT", url, {"free_features": ["Not Valid"]}).status_code == 400
    customer = ApiClient(issue_token(shop.org, scopes=["listings:read", "listings:write"]))
    assert customer.call("PUT", f"orgs/{shop.org.pk}/extensions/{shop.notes.extension_id}/free-features",
                         {"free_features": ["x.y"]}).status_code == 404  # fmt: skip


def test_uninstall_cleaner_removes_grants(shop):
    EntitlementGrant.objects.create(org=shop.org, installation_id=shop.notes.pk, feature="a.b")
    result = installation_entitlements(shop.notes.pk)
    assert result["removed"] == {"grants": 1} and result["remaining"] == {"grants": 0}


def test_console_grants_and_revokes(shop, login_client, bob):
    _listing(shop.notes, free=["notes.basic"])
    client = login_client(shop.tenant.owner)
    url = f"/orgs/{shop.org.pk}/console/entitlements/"
    page = client.get(url)
    assert page.status_code == 200 and b"notes.basic" in page.content
    res = client.post(url, {"op": "grant", "installation": shop.notes.pk, "feature": "notes.export"})
    assert res.status_code == 302
    assert EntitlementGrant.objects.filter(installation_id=shop.notes.pk, feature="notes.export").exists()
    res = client.post(url, {"op": "grant", "installation": shop.notes.pk, "feature": "Bad Name"})
    assert res.status_code == 400 and b"feature name" in res.content
    res = client.post(url, {"op": "revoke", "installation": shop.notes.pk, "feature": "notes.export"})
    assert res.status_code == 302
    res = client.post(url, {"op": "grant", "installation": "inst_nope", "feature": "a.b"})
    assert res.status_code == 404
    assert login_client(bob).get(url).status_code == 403


def test_entitlement_check_applies_the_ip_allowlist(shop):
    _listing(shop.notes, free=["reports.basic"])
    api = _delegated(shop, shop.notes)
    assert api.call("GET", "entitlements/reports.basic").status_code == 200
    shop.org.__class__.objects.filter(pk=shop.org.pk).update(ip_allowlist=["203.0.113.0/24"])
    res = api.call("GET", "entitlements/reports.basic")
    assert res.status_code == 403 and res.json()["error"]["code"] == "ip_not_allowed"
