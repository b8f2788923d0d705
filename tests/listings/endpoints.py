"""Authorization-table rows of the marketplace listings (see tests/orgs/marketplace_endpoints.py).

Publisher rows act on the table's extension of the caller's organisation, whose listing
``make_targets`` publishes once and submits again (so staff can decide on it and feature it).
Customer rows review ``<slug>-maker.helper``, an extension of another publisher that the
organisation installed; the publisher reply, report and moderation rows act on a review of the
organisation's own extension by a customer ``<slug>-customer``. Storefront rows are public."""

from __future__ import annotations

from types import SimpleNamespace

from django.utils.functional import lazy

from apps.core import clock
from apps.extensions.models import Extension, ExtensionVersion
from apps.installs.models import Installation
from apps.listings import services
from apps.listings.models import (
    Listing,
    ListingDraft,
    ListingMedia,
    PublisherProfile,
    Review,
    ReviewReport,
)
from apps.orgs.models import Domain
from tests.conftest import MultipartForm
from tests.factories import OrganizationFactory
from tests.listings.support import CONTENT, ROBOT, image_bytes, install, publish_listing, quick_extension
from tests.orgs.endpoint import API, ORG, Endpoint

LISTING = f"{ORG}/extensions/{{extension_id}}/listing"
# Storefront rows need no credentials (bad ones are still 401): marked public once the table's
# Endpoint has that field (tests/orgs/endpoint.py).
PUBLIC = {"public": True} if "public" in getattr(Endpoint, "__dataclass_fields__", {}) else {}


def _reviewed_extension_id() -> str:
    """The extension the caller's organisation reviews (made by make_targets; evaluated when sent)."""
    return Extension.objects.filter(key__endswith="-maker.helper").order_by("pk").values_list("pk", flat=True)[0]


REVIEW_BODY = {"extension_id": lazy(_reviewed_extension_id, str)(), "rating": 5, "text": "Does what it says."}
ICON = MultipartForm({}, {"file": image_bytes(128, 128)})
SCREENSHOT = MultipartForm({"caption": "The settings page"}, {"file": image_bytes(640, 400)})

ENDPOINTS: list[Endpoint] = [
    # the storefront: public
    Endpoint("GET", f"{API}/marketplace/categories", **PUBLIC),
    Endpoint("GET", f"{API}/marketplace/listings", **PUBLIC),
    Endpoint("GET", f"{API}/marketplace/listings/{{extension_key}}", **PUBLIC),
    Endpoint("GET", f"{API}/marketplace/listings/{{extension_key}}/reviews", **PUBLIC),
    Endpoint("POST", f"{API}/marketplace/reviews/{{review_id}}/report", ok=201, users_only=True,
             body={"reason": "Spam."}),
    # the publisher's listing
    Endpoint("GET", LISTING, ("listing.view",)),
    Endpoint("PUT", LISTING, ("listing.manage",), body={**CONTENT, "tagline": "Tags orders, fast."}),
    Endpoint("POST", f"{LISTING}/submit", ("listing.manage",)),
    Endpoint("POST", f"{LISTING}/icon", ("listing.manage",), ok=201, body=ICON),
    Endpoint("POST", f"{LISTING}/screenshots", ("listing.manage",), ok=201, body=SCREENSHOT),
    Endpoint("DELETE", f"{LISTING}/screenshots/{{screenshot_id}}", ("listing.manage",), ok=204),
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}/reviews", ("listing.view",)),
    Endpoint("POST", f"{ORG}/extensions/{{extension_id}}/reviews/{{review_id}}/reply", ("review.reply",),
             body={"text": "Thanks for the feedback."}),
    Endpoint("GET", f"{ORG}/publisher-profile", ("listing.view",)),
    Endpoint("PUT", f"{ORG}/publisher-profile", ("listing.manage",),
             body={"about": "We make order tools.", "website": "https://vendor.example"}),
    # customers' reviews
    Endpoint("GET", f"{ORG}/reviews", ("org.view",)),
    Endpoint("POST", f"{ORG}/reviews", ("review.create",), ok=201, body=REVIEW_BODY),
    # platform staff
    Endpoint("GET", f"{API}/staff/listings", ("marketplace.moderate",), staff=True),
    Endpoint("GET", f"{API}/staff/listings/{{listing_id}}", ("marketplace.moderate",), staff=True),
    Endpoint("POST", f"{API}/staff/listings/{{listing_id}}/decision", ("marketplace.moderate",), staff=True,
             body={"decision": "approve", "reason": ""}),
    Endpoint("POST", f"{API}/staff/listings/{{listing_id}}/feature", ("marketplace.moderate",), staff=True,
             body={"featured": True}),
    Endpoint("POST", f"{API}/staff/publishers/{{publisher_id}}/verification", ("marketplace.moderate",), staff=True,
             body={"verified": True}),
    Endpoint("GET", f"{API}/staff/reviews", ("marketplace.moderate",), staff=True),
    Endpoint("POST", f"{API}/staff/reviews/{{review_id}}/moderation", ("marketplace.moderate",), staff=True,
             body={"action": "hide", "reason": "Abusive."}),
]  # fmt: skip


def make_targets(tenant, targets) -> dict:
    org, slug = tenant.org, tenant.org.slug
    # the organisation's own listing: published once, then changed and submitted again
    extension = targets.extension
    listing = publish_listing(extension)
    services.listing_draft_update(principal=ROBOT, extension=extension, data={**CONTENT, "tagline": "Even better."})
    services.listing_submit(principal=ROBOT, extension=extension)
    # a screenshot in the draft (written directly: tests/listings cover the image pipeline)
    screenshot = ListingMedia.objects.create(
        listing=listing, kind="screenshot", sha256="a" * 64, width=640, height=400, size_bytes=1
    )
    entry = {"id": screenshot.pk, "sha256": screenshot.sha256, "width": 640, "height": 400, "caption": ""}
    ListingDraft.objects.filter(listing=listing).update(screenshots=[entry])
    # a verified domain, so staff can mark the publisher verified
    Domain.objects.create(org=org, name=f"{slug}-pub.example", verification_token="t" * 32, verified_at=clock.now())
    # a customer who installed the organisation's extension and reviewed it
    customer = OrganizationFactory(slug=f"{slug}-customer", name=f"{slug} customer")
    Installation.objects.create(org=customer, extension=extension, version=targets.version)
    review = Review.objects.create(listing=listing, org=customer, rating=4, text="Handy.")
    # another publisher's listed extension that the organisation installed (and may review)
    maker = OrganizationFactory(slug=f"{slug}-maker", name=f"{slug} maker")
    helper = quick_extension(maker, "helper")
    publish_listing(helper, name="Helper")
    install(org, helper)
    return {
        "extension_key": helper.key,
        "screenshot_id": screenshot.pk,
        "review_id": review.pk,
        "listing_id": listing.pk,
        "publisher_id": org.pk,
    }


# For the tenant-isolation tests (tests/orgs/test_tenant_isolation.py): a real id of another kind
# for each placeholder these paths add; the extension key is a name, not an id; the listing
# editor and its preview are organisation pages about one extension.
OTHER_KIND = {
    "screenshot_id": lambda t: t.extra["review_id"],
    "review_id": lambda t: t.extra["screenshot_id"],
    "listing_id": lambda t: t.extension.pk,
    "publisher_id": lambda t: t.workspace.pk,
}
NOT_IDS = {"extension_key"}
PORTAL_ACTIONS = {"listing_edit": ("extension_id",), "listing_preview": ("extension_id",)}


def fuzz_targets(tenant, ids: dict) -> dict:
    """The fuzzer's rows for these paths (tests/test_api_fuzz.py)."""
    extension = Extension.objects.get(pk=ids["extension_id"][0])
    version = ExtensionVersion.objects.get(pk=ids["version_id"][0])
    made = make_targets(tenant, SimpleNamespace(org=tenant.org, extension=extension, version=version))
    return {name: [value] for name, value in made.items()}


def snapshot(org) -> dict:
    return {
        "listings": list(Listing.objects.filter(org=org).order_by("pk").values()),
        "listing_drafts": list(ListingDraft.objects.filter(listing__org=org).order_by("pk").values()),
        "listing_media": list(ListingMedia.objects.filter(listing__org=org).order_by("pk").values()),
        "reviews_written": list(Review.objects.filter(org=org).order_by("pk").values()),
        "reviews_received": list(Review.objects.filter(listing__org=org).order_by("pk").values()),
        "review_reports": list(ReviewReport.objects.filter(review__listing__org=org).order_by("pk").values()),
        "publisher_profile": list(PublisherProfile.objects.filter(org=org).values()),
    }
