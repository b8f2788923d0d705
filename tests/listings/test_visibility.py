"""What the storefront shows: only listings approved by staff, of extensions that are not deleted
and serve a non-yanked certified version on some channel, by publishers that are not sandboxes."""

from __future__ import annotations

import pytest

from apps.extensions import services as ext_services
from apps.extensions.models import ChannelRelease, ExtensionVersion, VersionStatus
from apps.listings import services
from apps.listings.models import Listing
from tests.factories import OrganizationFactory
from tests.listings.support import CONTENT, ROBOT, publish, publish_listing, quick_extension

pytestmark = pytest.mark.django_db


def shown(client, listing: Listing) -> bool:
    """Whether every storefront surface shows the listing (and agrees with the others)."""
    key = listing.extension.key
    api_search = key in [r["key"] for r in client.get("/api/v1/marketplace/listings").json()["data"]]
    api_get = client.get(f"/api/v1/marketplace/listings/{key}").status_code == 200
    page = client.get(f"/marketplace/{key}/").status_code == 200
    search_page = f"/marketplace/{key}/".encode() in client.get("/marketplace/search/").content
    home = f"/marketplace/{key}/".encode() in client.get("/marketplace/").content
    publisher = client.get(f"/marketplace/publishers/{listing.org.slug}/").status_code == 200
    assert api_search == api_get == page == search_page == home == publisher, (
        api_search, api_get, page, search_page, home, publisher,
    )  # fmt: skip
    return api_get


def test_a_published_listing_of_a_released_extension_is_shown(client, vendor):
    assert shown(client, publish(vendor))


def test_an_unpublished_listing_is_not_shown(client, vendor):
    vendor.release()
    extension = vendor.extension()
    services.listing_draft_update(principal=ROBOT, extension=extension, data=CONTENT)
    services.listing_submit(principal=ROBOT, extension=extension)
    assert not shown(client, Listing.objects.get(extension=extension))


def test_a_rejected_listing_is_not_shown(client, vendor):
    vendor.release()
    extension = vendor.extension()
    services.listing_draft_update(principal=ROBOT, extension=extension, data=CONTENT)
    draft = services.listing_submit(principal=ROBOT, extension=extension)
    services.listing_decide(principal=ROBOT, listing=draft.listing, approve=False, reason="No.")
    assert not shown(client, Listing.objects.get(extension=extension))


def test_an_approved_listing_without_a_released_version_is_not_shown(client, vendor):
    vendor.release(promote=False)  # certified, on no channel
    listing = publish_listing(vendor.extension())
    assert listing.published_at is not None
    assert not shown(client, listing)
    # until a version is promoted
    version = ExtensionVersion.objects.get(extension=listing.extension)
    ext_services.version_promote(principal=ROBOT, version=version, channel="stable")
    assert shown(client, listing)


def test_a_listing_whose_only_released_version_is_yanked_is_not_shown(client, vendor):
    listing = publish(vendor)
    version = ExtensionVersion.objects.get(extension=listing.extension)
    ext_services.version_transition(version=version, to=VersionStatus.YANKED)
    assert not shown(client, listing)


def test_a_yanked_release_does_not_hide_the_others(client, vendor):
    listing = publish(vendor)
    newer = vendor.release("order-tagger", "1.1.0")
    ext_services.version_transition(version=newer, to=VersionStatus.YANKED)
    assert shown(client, listing)
    data = client.get(f"/api/v1/marketplace/listings/{listing.extension.key}").json()
    assert [(c["channel"], c["version"]) for c in data["channels"]] == [("stable", "1.0.0")]


def test_a_deleted_extension_is_not_shown(client, vendor):
    listing = publish(vendor)
    ext_services.extension_delete(principal=ROBOT, extension=listing.extension)
    assert not shown(client, listing)


def test_a_sandbox_tenants_extension_is_never_shown(client):
    publisher = OrganizationFactory(slug="pub")
    sandbox = OrganizationFactory(slug="pub-sandbox", sandbox_of=publisher)
    listing = publish_listing(quick_extension(sandbox, "test-build"))
    assert listing.published_at is not None
    assert not shown(client, listing)


def test_a_beta_only_extension_is_shown_with_its_beta_channel(client, vendor):
    vendor.release("order-tagger", "2.0.0-beta.1", channel="beta")
    listing = publish_listing(vendor.extension())
    assert shown(client, listing)
    data = client.get(f"/api/v1/marketplace/listings/{listing.extension.key}").json()
    assert [(c["channel"], c["version"]) for c in data["channels"]] == [("beta", "2.0.0-beta.1")]


def test_each_channel_shows_what_it_serves_and_its_history(client, vendor):
    listing = publish(vendor)
    vendor.release("order-tagger", "1.1.0", scopes=["events:read:order.created", "kv:write"])
    vendor.release("order-tagger", "1.2.0-beta.1", channel="beta", scopes=["events:read:order.created", "kv:write"])
    data = client.get(f"/api/v1/marketplace/listings/{listing.extension.key}").json()
    channels = {c["channel"]: c for c in data["channels"]}
    assert channels["stable"]["version"] == "1.1.0" and channels["beta"]["version"] == "1.2.0-beta.1"
    assert [h["version"] for h in channels["stable"]["history"]] == ["1.1.0", "1.0.0"]
    changes = channels["stable"]["history"][0]["scope_changes"]
    assert {"scope": "kv:write", "change": "escalation", "replaces": "kv:read"} in changes
    scopes = {s["scope"]: s for s in channels["stable"]["scopes"]}
    assert scopes["kv:write"]["describe"] == "Store, change and delete its own data"
    assert scopes["kv:write"]["reaches"] == "data this extension stores for you"
    # and the page explains them in plain words
    html = client.get(f"/marketplace/{listing.extension.key}/").content.decode()
    assert "Store, change and delete its own data" in html and "More access" in html


def test_the_release_counts_not_the_version_status_alone(client, vendor):
    listing = publish(vendor)
    ChannelRelease.objects.filter(extension=listing.extension).delete()
    assert not shown(client, listing)
