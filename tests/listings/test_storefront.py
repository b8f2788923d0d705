"""The storefront pages (public) and what a signed-in visitor may do from a listing page; the
staff console; the public API's handling of credentials."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch

from apps.core import clock
from apps.listings import services, storefront
from apps.listings.models import Listing, PublisherProfile
from apps.orgs.models import Domain, Role
from tests.conftest import ApiClient
from tests.listings.support import CONTENT, ROBOT, install, publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def listing(vendor) -> Listing:
    return publish(vendor, description="Tags **orders**.\n\n[Docs](https://docs.example) [bad](javascript:alert(1))")


def test_the_home_page_needs_no_sign_in(client, listing):
    res = client.get("/marketplace/")
    html = res.content.decode()
    assert res.status_code == 200
    assert "Orders" in html and "AI tools" in html  # the seeded categories
    assert f"/marketplace/{listing.extension.key}/" in html
    assert 'href="/marketplace/"' in html  # the storefront link in the navigation


def test_featured_listings_are_on_the_home_page(client, listing):
    assert "Featured" not in client.get("/marketplace/").content.decode()
    services.listing_feature(principal=ROBOT, listing=listing, featured=True)
    assert 'id="featured-h"' in client.get("/marketplace/").content.decode()


def test_the_listing_page_for_anonymous_visitors(client, listing):
    html = client.get(f"/marketplace/{listing.extension.key}/").content.decode()
    assert "Sign in to install" in html
    assert "<strong>orders</strong>" in html and 'href="https://docs.example"' in html
    assert 'href="javascript:' not in html  # the bad link stays inert text
    assert "Receive &#x27;order.created&#x27; events" in html and "Read its own stored data" in html
    assert "Privacy policy" in html and 'rel="nofollow noopener noreferrer"' in html


def test_admins_get_the_install_form_and_members_a_request_link(listing, acme, login_client):
    page = f"/marketplace/{listing.extension.key}/"
    html = login_client(acme.owner).get(page).content.decode()
    assert f'action="/install/{listing.extension_id}/"' in html and f'value="{acme.org.pk}"' in html
    html = login_client(acme.user(Role.MEMBER)).get(page).content.decode()
    assert f'action="/install/{listing.extension_id}/"' not in html
    assert f"/orgs/{acme.org.pk}/console/install-requests/new/?extension={listing.extension_id}" in html


def test_an_org_that_has_it_installed_is_told_so(listing, acme, login_client):
    install(acme.org, listing.extension)
    html = login_client(acme.owner).get(f"/marketplace/{listing.extension.key}/").content.decode()
    assert "Installed in <strong>Acme</strong>" in html
    assert f'action="/install/{listing.extension_id}/"' not in html


def test_links_to_other_parts_fall_back_when_their_page_does_not_exist(monkeypatch):
    def missing(*args, **kwargs):
        raise NoReverseMatch("not built yet")

    monkeypatch.setattr(storefront, "reverse", missing)
    assert storefront.url_or("install_start", {"extension_id": "ext_1"}, "/install/ext_1/") == "/install/ext_1/"
    assert storefront.url_or("x", {}, "/orgs/o/new/", "extension=e") == "/orgs/o/new/?extension=e"


def test_the_verified_badge(client, listing, vendor):
    page = f"/marketplace/{listing.extension.key}/"
    assert "Verified publisher" not in client.get(page).content.decode()
    Domain.objects.create(org=vendor.org, name="vendor.example", verification_token="t", verified_at=clock.now())
    PublisherProfile.objects.create(org=vendor.org, verified_at=clock.now())
    assert "Verified publisher" in client.get(page).content.decode()
    assert client.get("/api/v1/marketplace/listings").json()["data"][0]["publisher"]["verified"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/marketplace/no.such/",
        "/marketplace/publishers/nobody/",
        "/marketplace/%00/",
        "/marketplace/publishers/%00/",
        "/marketplace/" + "a" * 300 + "/",
    ],
)
def test_unknown_pages_are_404(client, path):
    assert client.get(path).status_code == 404


def test_hostile_search_parameters_on_the_page(client, listing):
    res = client.get("/marketplace/search/", {"q": "a\x00b", "category": "\x00", "verified": "\x00", "cursor": "\x00"})
    assert res.status_code == 200


# --- the public API and credentials ------------------------------------------------------------------
def test_public_operations_accept_no_credentials_but_refuse_bad_ones(listing):
    key = listing.extension.key
    for path in ("marketplace/listings", f"marketplace/listings/{key}", "marketplace/categories"):
        assert ApiClient().call("GET", path).status_code == 200
        res = ApiClient("plz_not-a-real-token").call("GET", path)
        assert res.status_code == 401 and res.json()["error"]["code"] == "unauthenticated"
        assert ApiClient().call("GET", path, HTTP_AUTHORIZATION="Basic Zm9vOmJhcg==").status_code == 401


def test_categories_carry_their_counts(client, listing):
    data = client.get("/api/v1/marketplace/categories").json()["data"]
    counts = {c["slug"]: c["listing_count"] for c in data}
    assert counts["orders"] == 1 and counts["security"] == 0 and len(counts) == 9


def test_nul_in_a_public_query_is_400(client):
    res = client.get("/api/v1/marketplace/listings", {"q": "a\x00"})
    assert res.status_code == 400


# --- the staff console ---------------------------------------------------------------------------------
def test_the_staff_console_is_for_platform_staff_only(acme, staff, login_client, listing):
    assert login_client(acme.owner).get("/staff/listings/").status_code == 403
    assert login_client(staff.user(Role.MEMBER)).get("/staff/listings/").status_code == 403
    assert login_client(staff.owner).get("/staff/listings/").status_code == 200
    res = ApiClient().get("/staff/listings/")
    assert res.status_code == 302


def test_staff_approve_from_the_queue(vendor, staff, login_client, client):
    vendor.release()
    extension = vendor.extension()
    services.listing_draft_update(principal=ROBOT, extension=extension, data=CONTENT)
    services.listing_submit(principal=ROBOT, extension=extension)
    listing = Listing.objects.get()
    web = login_client(staff.owner)
    html = web.get("/staff/listings/").content.decode()
    assert extension.key in html and f"/staff/listings/{listing.pk}/" in html
    detail = web.get(f"/staff/listings/{listing.pk}/").content.decode()
    assert "as the storefront would show it" in detail and "Approve and publish" in detail
    res = web.post(f"/staff/listings/{listing.pk}/", {"op": "reject", "listing_id": listing.pk, "reason": ""})
    assert res.status_code == 400
    res = web.post("/staff/listings/?tab=queue", {"op": "approve", "listing_id": listing.pk})
    assert res.status_code == 302
    assert client.get(f"/marketplace/{extension.key}/").status_code == 200


def test_staff_feature_verify_and_moderate_from_the_console(listing, vendor, acme, globex, staff, login_client):
    web = login_client(staff.owner)
    assert web.post("/staff/listings/?tab=listings", {"op": "feature", "listing_id": listing.pk}).status_code == 302
    assert Listing.objects.get(pk=listing.pk).featured_at is not None
    # verification needs a verified domain
    res = web.post("/staff/listings/?tab=publishers", {"op": "verify", "publisher_id": vendor.org.pk})
    assert res.status_code == 409
    Domain.objects.create(org=vendor.org, name="vendor.example", verification_token="t", verified_at=clock.now())
    assert "Mark verified" in web.get("/staff/listings/?tab=publishers").content.decode()
    res = web.post("/staff/listings/?tab=publishers", {"op": "verify", "publisher_id": vendor.org.pk})
    assert res.status_code == 302
    assert PublisherProfile.objects.get(org=vendor.org).verified_at is not None
    # a reported review
    install(acme.org, listing.extension)
    review, _ = services.review_submit(principal=ROBOT, org=acme.org, extension=listing.extension, rating=1, text="Bad")
    from apps.orgs.policy import Principal

    services.review_report(principal=Principal(kind="user", user=globex.owner), review=review, reason="Spam")
    html = web.get("/staff/listings/?tab=reviews").content.decode()
    assert "Bad" in html and "Dismiss reports" in html
    res = web.post("/staff/listings/?tab=reviews", {"op": "hide", "review_id": review.pk, "reason": "Spam."})
    assert res.status_code == 302
    review.refresh_from_db()
    assert review.hidden_at is not None and review.open_reports == 0


def test_the_staff_console_filters_with_htmx(staff, login_client, listing):
    web = login_client(staff.owner)
    body = web.get("/staff/listings/", {"tab": "listings", "q": "tagger"}, HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith('<div id="staff-rows"') and listing.extension.key in body
    body = web.get("/staff/listings/", {"tab": "listings", "q": "zzz"}, HTTP_HX_REQUEST="true").content.decode()
    assert listing.extension.key not in body
