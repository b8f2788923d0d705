import pytest
from tests.listings.support import publish, quick_listing, install
from apps.listings.models import Listing

pytestmark = pytest.mark.django_db

def test_smoke(vendor, acme, client, login_client, staff):
    listing = publish(vendor)
    assert listing.published_at
    r = client.get("/marketplace/")
    assert r.status_code == 200, r.content[:2000]
    assert b"Order Tagger" in r.content
    r = client.get("/marketplace/search/?q=order")
    assert r.status_code == 200
    assert b"Order Tagger" in r.content
    r = client.get(f"/marketplace/{listing.extension.key}/")
    assert r.status_code == 200, r.content[:3000]
    r = login_client(acme.owner).get(f"/marketplace/{listing.extension.key}/")
    assert r.status_code == 200
    assert b"Install" in r.content
    r = client.get("/api/v1/marketplace/listings?q=order")
    assert r.status_code == 200, r.content
    assert r.json()["data"][0]["key"] == listing.extension.key
    r = client.get(f"/api/v1/marketplace/listings/{listing.extension.key}")
    assert r.status_code == 200, r.content
    print(r.json())
    r = login_client(vendor.tenant.owner).get(f"/orgs/{vendor.org.pk}/extensions/{listing.extension_id}/listing/")
    assert r.status_code == 200, r.content[:3000]
    r = login_client(vendor.tenant.owner).get(f"/orgs/{vendor.org.pk}/extensions/{listing.extension_id}/listing/preview/")
    assert r.status_code == 200, r.content[:3000]
    r = login_client(staff.owner).get("/staff/listings/")
    assert r.status_code == 200, r.content[:3000]
    for tab in ("listings", "publishers", "reviews"):
        assert login_client(staff.owner).get(f"/staff/listings/?tab={tab}").status_code == 200
    r = login_client(staff.owner).get(f"/staff/listings/{listing.pk}/")
    assert r.status_code == 200, r.content[:3000]
    r = client.get(f"/marketplace/publishers/{vendor.org.slug}/")
    assert r.status_code == 200, r.content[:3000]
