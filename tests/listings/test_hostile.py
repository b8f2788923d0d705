"""Hostile input to the marketplace API: every refusal is the error envelope with a 4xx, and a
refused write changes nothing."""

from __future__ import annotations

import pytest

from apps.listings.models import Listing, ListingDraft, Review
from tests.conftest import ApiClient
from tests.listings.support import CONTENT, install, publish

pytestmark = pytest.mark.django_db


def envelope(res, status: int) -> dict:
    assert res.status_code == status, (res.status_code, res.content[:300])
    error = res.json()["error"]
    assert {"type", "code", "message", "param", "request_id"} <= set(error)
    assert error["request_id"] == res["X-Request-Id"]
    return error


@pytest.fixture
def vera(vendor) -> ApiClient:
    client = ApiClient()
    client.force_login(vendor.tenant.owner)
    return client


@pytest.fixture
def listing(vendor) -> Listing:
    return publish(vendor)


@pytest.mark.parametrize(
    "body",
    [
        {**CONTENT, "name": "a\x00b"},
        {**CONTENT, "tags": ["ok", "\x00"]},
        {**CONTENT, "description": "\ud800"},
        {**CONTENT, "name": 5},
        {**CONTENT, "tags": "orders"},
        {**CONTENT, "tags": [f"t{i}" for i in range(500)]},
        {**CONTENT, "categories": {"orders": True}},
        {**CONTENT, "pricing": None},
        {**CONTENT, "docs_url": "https://" + "a" * 600 + ".example"},
        {**CONTENT, "privacy_url": "https://exa mple.com"},
        {**CONTENT, "support_url": "ftp://vendor.example"},
        {"tagline": "no name"},
    ],
)
def test_garbage_drafts_are_400_and_change_nothing(vendor, vera, listing, body):
    before = list(ListingDraft.objects.values())
    res = vera.call("PUT", f"orgs/{vendor.org.pk}/extensions/{listing.extension_id}/listing", body)
    envelope(res, 400)
    assert list(ListingDraft.objects.values()) == before


@pytest.mark.parametrize("raw", ["[]", '"x"', "null", "{", "1e999"])
def test_bodies_that_are_not_objects_are_400(vendor, vera, listing, raw):
    path = f"/api/v1/orgs/{vendor.org.pk}/extensions/{listing.extension_id}/listing"
    envelope(vera.put(path, raw, content_type="application/json"), 400)


@pytest.mark.parametrize(
    "key",
    [
        "vendor.ORDER-TAGGER",
        "vendor..x",
        "../etc/passwd",
        "vendor.order-tagger'--",
        "%2e%2e",
        "x" * 130,
        "vendor.order-tagger%0a",
    ],
)
def test_odd_listing_keys_are_404(client, listing, key):
    envelope(client.get(f"/api/v1/marketplace/listings/{key}"), 404)
    assert client.get(f"/marketplace/{key}/").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"extension_id": "ext_' OR 1=1 --", "rating": 5},
        {"extension_id": "\x00", "rating": 5},
        {"extension_id": 12, "rating": 5},
        {"rating": 5},
        {"extension_id": "x", "rating": 1.5},
        {"extension_id": "x", "rating": True, "text": ["a"]},
    ],
)
def test_garbage_reviews_are_refused(acme, listing, body):
    install(acme.org, listing.extension)
    client = ApiClient()
    client.force_login(acme.owner)
    res = client.call("POST", f"orgs/{acme.org.pk}/reviews", body)
    assert res.status_code in (400, 404)
    envelope(res, res.status_code)
    assert not Review.objects.exists()


@pytest.mark.parametrize("cursor", ["", "x", "b2Zmc2V0Oi0x", "b2Zmc2V0Ojk5OTk5OTk5", "\x00", "a" * 200])
def test_garbage_search_cursors_never_500(client, listing, cursor):
    res = client.get("/api/v1/marketplace/listings", {"cursor": cursor})
    assert res.status_code in (200, 400)


def test_a_review_cursor_from_another_list_is_refused(client, listing):
    from apps.core.api import encode_cursor

    res = client.get(
        f"/api/v1/marketplace/listings/{listing.extension.key}/reviews", {"cursor": encode_cursor(listing.pk)}
    )
    assert envelope(res, 400)["code"] == "invalid_cursor"
