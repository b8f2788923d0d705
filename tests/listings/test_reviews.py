"""Reviews: only from organisations that have (or had) the extension installed, one per
organisation, publisher replies, abuse reports, staff moderation; through the API and the page."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.listings.models import Listing, Review, ReviewReport
from apps.orgs.models import Organization, Role
from tests.conftest import ApiClient
from tests.factories import OrganizationFactory
from tests.listings.support import install, publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def listing(vendor) -> Listing:
    return publish(vendor)


def session(user) -> ApiClient:
    client = ApiClient()
    client.force_login(user)
    return client


def review(client, org, listing, rating=5, text="Works well."):
    return client.call(
        "POST", f"orgs/{org.pk}/reviews", {"extension_id": listing.extension_id, "rating": rating, "text": text}
    )


def test_an_org_that_installed_it_can_review_once_and_edit(listing, acme):
    install(acme.org, listing.extension)
    alice = session(acme.owner)
    # when acme reviews it
    res = review(alice, acme.org, listing, 4, "Good.")
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["rating"] == 4 and body["org_name"] == "Acme" and body["extension_key"] == listing.extension.key
    # then the listing's rating follows
    listing.refresh_from_db()
    assert (listing.rating_avg, listing.rating_count) == (4.0, 1)
    # and a second review replaces the first: one per organisation
    res = review(alice, acme.org, listing, 2, "Worse after the update.")
    assert res.status_code == 200 and res.json()["id"] == body["id"]
    assert Review.objects.filter(listing=listing, org=acme.org).count() == 1
    listing.refresh_from_db()
    assert (listing.rating_avg, listing.rating_count) == (2.0, 1)
    assert {"review.created", "review.updated"} <= set(
        AuditEvent.objects.filter(org_id=acme.org.pk).values_list("action", flat=True)
    )


def test_a_former_installation_still_counts(listing, acme):
    install(acme.org, listing.extension, status="uninstalled")
    assert review(session(acme.owner), acme.org, listing).status_code == 201


def test_an_org_that_never_installed_it_is_refused(listing, acme):
    res = review(session(acme.owner), acme.org, listing)
    assert res.status_code == 403 and res.json()["error"]["code"] == "not_installed"
    assert not Review.objects.exists()


def test_a_sandbox_tenant_cannot_review_and_its_installs_do_not_count(listing, vendor):
    sandbox = Organization.objects.filter(sandbox_of=vendor.org).first() or OrganizationFactory(
        slug="vendor-tests", sandbox_of=vendor.org
    )
    install(sandbox, listing.extension)
    res = review(session(vendor.tenant.owner), sandbox, listing)
    assert res.status_code == 403 and res.json()["error"]["code"] == "sandbox_cannot_review"


def test_a_publisher_cannot_review_its_own_extension(listing, vendor):
    install(vendor.org, listing.extension)
    res = review(session(vendor.tenant.owner), vendor.org, listing)
    assert res.status_code == 403 and res.json()["error"]["code"] == "own_extension"


def test_a_member_without_review_permission_is_refused(listing, acme):
    install(acme.org, listing.extension)
    res = review(session(acme.user(Role.MEMBER)), acme.org, listing)
    assert res.status_code == 403 and res.json()["error"]["code"] == "role"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": "five"}, "rating"),
        ({"text": "x" * 5001}, "text"),
        ({"text": "bell\x07"}, "text"),
        ({"extension_id": "ext_nope"}, "extension_id"),
    ],
)
def test_bad_reviews_are_refused(listing, acme, body, param):
    install(acme.org, listing.extension)
    payload = {"extension_id": listing.extension_id, "rating": 5, "text": "", **body}
    res = session(acme.owner).call("POST", f"orgs/{acme.org.pk}/reviews", payload)
    assert res.status_code in (400, 404), res.content
    assert res.json()["error"]["param"] == param
    assert not Review.objects.exists()


def test_an_unlisted_extension_cannot_be_reviewed(vendor, acme):
    version = vendor.release()
    install(acme.org, version.extension)
    res = review(session(acme.owner), acme.org, Listing(extension=version.extension))
    assert res.status_code == 404


def test_the_publisher_replies_and_the_reply_is_public(listing, acme, vendor, client):
    install(acme.org, listing.extension)
    rid = review(session(acme.owner), acme.org, listing).json()["id"]
    path = f"orgs/{vendor.org.pk}/extensions/{listing.extension_id}/reviews/{rid}/reply"
    # a customer cannot reply as the publisher
    assert session(acme.owner).call("POST", path, {"text": "Ha."}).status_code == 404
    # the publisher can
    res = session(vendor.tenant.owner).call("POST", path, {"text": "Thank you!"})
    assert res.status_code == 200 and res.json()["reply"]["text"] == "Thank you!"
    public = client.get(f"/api/v1/marketplace/listings/{listing.extension.key}/reviews").json()["data"]
    assert public[0]["reply"]["text"] == "Thank you!"
    # an empty reply removes it
    session(vendor.tenant.owner).call("POST", path, {"text": ""})
    public = client.get(f"/api/v1/marketplace/listings/{listing.extension.key}/reviews").json()["data"]
    assert public[0]["reply"] is None


def test_a_review_is_reported_once_per_person_and_staff_hide_it(listing, acme, globex, staff, client):
    install(acme.org, listing.extension)
    rid = review(session(acme.owner), acme.org, listing, 1, "Scam!!!").json()["id"]
    charlie = session(globex.owner)
    # anyone signed in may report it, once
    assert charlie.call("POST", f"marketplace/reviews/{rid}/report", {"reason": "Abusive"}).status_code == 201
    res = charlie.call("POST", f"marketplace/reviews/{rid}/report", {"reason": "Again"})
    assert res.status_code == 409 and res.json()["error"]["code"] == "already_reported"
    assert ApiClient().call("POST", f"marketplace/reviews/{rid}/report", {}).status_code == 401
    # staff see it in the queue, and hide it with a reason
    moderator = session(staff.owner)
    queue = moderator.call("GET", "staff/reviews").json()["data"]
    assert [r["id"] for r in queue] == [rid] and queue[0]["open_reports"] == 1
    assert moderator.call("POST", f"staff/reviews/{rid}/moderation", {"action": "hide"}).status_code == 400
    res = moderator.call("POST", f"staff/reviews/{rid}/moderation", {"action": "hide", "reason": "Abusive."})
    assert res.status_code == 200 and res.json()["hidden"] is True
    # it leaves the storefront and the rating, and the queue
    assert client.get(f"/api/v1/marketplace/listings/{listing.extension.key}/reviews").json()["data"] == []
    listing.refresh_from_db()
    assert listing.rating_count == 0
    assert moderator.call("GET", "staff/reviews").json()["data"] == []
    assert ReviewReport.objects.get().resolution == "hidden"
    # its authors still see it, with the reason
    own = session(acme.owner).call("GET", f"orgs/{acme.org.pk}/reviews").json()["data"][0]
    assert own["hidden"] and own["hidden_reason"] == "Abusive."
    # a hidden review cannot be reported again
    assert session(acme.owner).call("POST", f"marketplace/reviews/{rid}/report", {}).status_code == 404
    # staff can show it again
    moderator.call("POST", f"staff/reviews/{rid}/moderation", {"action": "restore"})
    listing.refresh_from_db()
    assert listing.rating_count == 1


def test_staff_can_dismiss_reports(listing, acme, globex, staff):
    install(acme.org, listing.extension)
    rid = review(session(acme.owner), acme.org, listing).json()["id"]
    session(globex.owner).call("POST", f"marketplace/reviews/{rid}/report", {"reason": "meh"})
    res = session(staff.owner).call("POST", f"staff/reviews/{rid}/moderation", {"action": "dismiss"})
    assert res.status_code == 200 and res.json()["hidden"] is False and res.json()["open_reports"] == 0


def test_service_accounts_cannot_report(listing, acme, globex, api_for):
    install(acme.org, listing.extension)
    rid = review(session(acme.owner), acme.org, listing).json()["id"]
    res = api_for(globex.org, role=Role.OWNER).call("POST", f"marketplace/reviews/{rid}/report", {})
    assert res.status_code == 403 and res.json()["error"]["code"] == "users_only"


def test_non_staff_cannot_moderate(listing, acme, staff):
    install(acme.org, listing.extension)
    rid = review(session(acme.owner), acme.org, listing).json()["id"]
    res = session(acme.owner).call("POST", f"staff/reviews/{rid}/moderation", {"action": "hide", "reason": "x"})
    assert res.status_code == 403 and res.json()["error"]["code"] == "staff_only"
    assert Review.objects.get(pk=rid).hidden_at is None


# --- on the listing page ----------------------------------------------------------------------------
def test_the_listing_page_offers_the_review_form_only_to_orgs_that_installed_it(listing, acme, globex, login_client):
    install(acme.org, listing.extension)
    page = f"/marketplace/{listing.extension.key}/"
    html = login_client(acme.owner).get(page).content.decode()
    assert 'name="op" value="review"' in html and acme.org.pk in html
    assert 'value="review"' not in login_client(globex.owner).get(page).content.decode()
    # posting anyway is refused, with the reason shown
    res = login_client(globex.owner).post(page, {"op": "review", "org_id": globex.org.pk, "rating": "5"})
    assert res.status_code == 403 and b"Only organisations that have installed" in res.content
    # acme's admin reviews through the page
    res = login_client(acme.owner).post(page, {"op": "review", "org_id": acme.org.pk, "rating": "3", "text": "OK."})
    assert res.status_code == 302
    html = login_client(acme.owner).get(page).content.decode()
    assert "OK." in html and "Update review" in html


def test_the_page_reply_and_report_forms(listing, acme, vendor, globex, login_client):
    install(acme.org, listing.extension)
    rid = review(session(acme.owner), acme.org, listing).json()["id"]
    page = f"/marketplace/{listing.extension.key}/"
    assert 'value="reply"' not in login_client(acme.owner).get(page).content.decode()
    res = login_client(vendor.tenant.owner).post(page, {"op": "reply", "review_id": rid, "text": "Cheers."})
    assert res.status_code == 302 and Review.objects.get(pk=rid).reply_text == "Cheers."
    # a customer posting a reply is refused
    res = login_client(acme.owner).post(page, {"op": "reply", "review_id": rid, "text": "Fake reply"})
    assert res.status_code == 404 and Review.objects.get(pk=rid).reply_text == "Cheers."
    res = login_client(globex.owner).post(page, {"op": "report", "review_id": rid, "reason": "Spam"})
    assert res.status_code == 302 and ReviewReport.objects.filter(review_id=rid).count() == 1


def test_anonymous_visitors_are_sent_to_sign_in_to_post(listing, client):
    res = client.post(f"/marketplace/{listing.extension.key}/", {"op": "report", "review_id": "rev_x"})
    assert res.status_code == 302 and "/accounts/login/" in res["Location"]
