"""Listings through their services: the draft, submission, staff decisions, counters and the
search document."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import Conflict, ValidationFailed
from apps.installs.models import Installation
from apps.installs.signals import installation_changed
from apps.listings import services
from apps.listings.models import DraftStatus, Listing, ListingCategory, Review
from tests.factories import OrganizationFactory
from tests.listings.support import CONTENT, ROBOT, install, publish, publish_listing, quick_extension

pytestmark = pytest.mark.django_db


def test_a_listing_starts_as_an_unpublished_draft_prefilled_from_the_extension(vendor):
    # given an extension with a released version
    vendor.release("order-tagger", "1.0.0", description="Long *description*.")
    extension = vendor.extension("order-tagger")
    # when its publisher opens the listing for the first time
    listing = services.listing_ensure(principal=ROBOT, extension=extension)
    # then it is unpublished, and the draft carries the extension's name, summary and description
    assert listing.published_at is None
    assert listing.draft.status == DraftStatus.EDITING
    assert listing.draft.name == extension.name
    assert listing.draft.tagline == "Tags new orders by what is in them."
    assert listing.draft.description == "Long *description*."
    assert AuditEvent.objects.filter(action="listing.created", org_id=vendor.org.pk).exists()


def test_approval_copies_the_draft_to_the_live_listing(vendor):
    listing = publish(vendor, tags=["labels", "orders"], categories=["orders", "shipping"])
    assert listing.published_at is not None
    assert listing.name == CONTENT["name"] and listing.tagline == CONTENT["tagline"]
    assert listing.tags == ["labels", "orders"]
    assert set(ListingCategory.objects.filter(listing=listing).values_list("category_id", flat=True)) == {
        "orders",
        "shipping",
    }
    assert "<strong>new order</strong>" in listing.description_html
    assert "Orders" in listing.search_keywords and "labels" in listing.search_keywords
    assert listing.draft.status == DraftStatus.APPROVED
    assert AuditEvent.objects.filter(action="listing.approved", org_id=vendor.org.pk).exists()


def test_the_live_listing_keeps_its_content_until_the_next_approval(vendor):
    # given a published listing
    listing = publish(vendor)
    extension = listing.extension
    # when the publisher edits and submits the draft
    services.listing_draft_update(principal=ROBOT, extension=extension, data={**CONTENT, "name": "Tagger Pro"})
    services.listing_submit(principal=ROBOT, extension=extension)
    # then the storefront still shows the approved name, until staff approve the change
    assert Listing.objects.get(pk=listing.pk).name == CONTENT["name"]
    services.listing_decide(principal=ROBOT, listing=listing, approve=True)
    assert Listing.objects.get(pk=listing.pk).name == "Tagger Pro"


def test_editing_a_submitted_draft_takes_it_out_of_the_queue(vendor):
    vendor.release()
    extension = vendor.extension()
    services.listing_draft_update(principal=ROBOT, extension=extension, data=CONTENT)
    draft = services.listing_submit(principal=ROBOT, extension=extension)
    assert draft.status == DraftStatus.SUBMITTED
    draft = services.listing_draft_update(principal=ROBOT, extension=extension, data={**CONTENT, "tagline": "New."})
    assert draft.status == DraftStatus.EDITING
    with pytest.raises(Conflict) as exc:
        services.listing_decide(principal=ROBOT, listing=draft.listing, approve=True)
    assert exc.value.code == "draft_not_submitted"


def test_saving_the_same_content_does_not_reopen_a_submitted_draft(vendor):
    vendor.release()
    extension = vendor.extension()
    services.listing_draft_update(principal=ROBOT, extension=extension, data=CONTENT)
    services.listing_submit(principal=ROBOT, extension=extension)
    draft = services.listing_draft_update(principal=ROBOT, extension=extension, data=CONTENT)
    assert draft.status == DraftStatus.SUBMITTED


def test_an_incomplete_draft_cannot_be_submitted(vendor):
    vendor.release()
    extension = vendor.extension()
    services.listing_draft_update(
        principal=ROBOT, extension=extension, data={**CONTENT, "categories": [], "privacy_url": ""}
    )
    with pytest.raises(ValidationFailed) as exc:
        services.listing_submit(principal=ROBOT, extension=extension)
    assert exc.value.code == "listing_incomplete"
    assert {d["param"] for d in exc.value.details} == {"categories", "privacy_url"}


def test_a_rejection_needs_a_reason_and_publishes_nothing(vendor):
    vendor.release()
    extension = vendor.extension()
    services.listing_draft_update(principal=ROBOT, extension=extension, data=CONTENT)
    draft = services.listing_submit(principal=ROBOT, extension=extension)
    with pytest.raises(ValidationFailed):
        services.listing_decide(principal=ROBOT, listing=draft.listing, approve=False, reason=" ")
    draft = services.listing_decide(principal=ROBOT, listing=draft.listing, approve=False, reason="Name is misleading.")
    assert draft.status == DraftStatus.REJECTED and draft.decision_reason == "Name is misleading."
    assert Listing.objects.get(pk=draft.listing_id).published_at is None


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("name", "", "name"),
        ("name", "x" * 61, "name"),
        ("name", "two\nlines", "name"),
        ("tagline", "bell\x07", "tagline"),
        ("description", "nul\x00", "description"),
        ("description", "x" * 20_001, "description"),
        ("tags", ["Not A Tag!"], "tags[0]"),
        ("tags", [f"t{i}" for i in range(11)], "tags"),
        ("categories", ["no-such-category"], "categories[0]"),
        ("categories", ["orders", "shipping", "finance", "support"], "categories"),
        ("docs_url", "http://vendor.example/docs", "docs_url"),
        ("docs_url", "javascript:alert(1)", "docs_url"),
        ("docs_url", "https://user:pw@vendor.example/", "docs_url"),
        ("docs_url", "https:///nohost", "docs_url"),
        ("privacy_url", "https://[::1", "privacy_url"),
        ("support_url", "https://vendor.example:99999/", "support_url"),
        ("pricing", "expensive", "pricing"),
        ("pricing_text", "x" * 81, "pricing_text"),
    ],
)
def test_draft_content_is_checked(vendor, field, value, param):
    vendor.release()
    with pytest.raises(ValidationFailed) as exc:
        services.listing_draft_update(principal=ROBOT, extension=vendor.extension(), data={**CONTENT, field: value})
    if param is not None:
        assert exc.value.param == param


def test_tags_are_normalised(vendor):
    vendor.release()
    draft = services.listing_draft_update(
        principal=ROBOT, extension=vendor.extension(), data={**CONTENT, "tags": ["Orders", "#tags", "orders"]}
    )
    assert draft.tags == ["orders", "tags"]


def test_a_deleted_extension_gets_no_listing(vendor):
    extension = vendor.extension()
    from apps.extensions.services import extension_delete

    extension_delete(principal=ROBOT, extension=extension)
    with pytest.raises(Conflict):
        services.listing_ensure(principal=ROBOT, extension=extension)


# --- counters ---------------------------------------------------------------------------------------
def _changed(installation, action="created"):
    installation_changed.send_robust(sender=Installation, installation=installation, action=action, actor_id="")


def test_install_count_is_recounted_on_every_installation_change_and_ignores_sandboxes(vendor, acme, globex):
    listing = publish(vendor)
    extension = listing.extension
    # given two customers' installations and one in the publisher's sandbox tenant
    first = install(acme.org, extension)
    _changed(first)
    second = install(globex.org, extension)
    _changed(second)
    sandbox = OrganizationFactory(slug="vendor-box", sandbox_of=OrganizationFactory(slug="other-pub"))
    _changed(install(sandbox, extension))
    assert Listing.objects.get(pk=listing.pk).install_count == 2
    # when one is blocked (still live) and the other uninstalled
    Installation.objects.filter(pk=first.pk).update(status="blocked")
    _changed(first, "blocked")
    Installation.objects.filter(pk=second.pk).update(status="uninstalled")
    _changed(second, "uninstalled")
    # then the count is what the rows say, however often the signal came
    _changed(second, "uninstalled")
    assert Listing.objects.get(pk=listing.pk).install_count == 1


def test_install_count_is_taken_when_the_listing_is_created(vendor, acme):
    vendor.release()
    extension = vendor.extension()
    install(acme.org, extension)
    listing = services.listing_ensure(principal=ROBOT, extension=extension)
    assert Listing.objects.get(pk=listing.pk).install_count == 1


def test_rating_is_the_average_of_shown_reviews(vendor, acme, globex):
    listing = publish(vendor)
    a = Review.objects.create(listing=listing, org=acme.org, rating=5)
    Review.objects.create(listing=listing, org=globex.org, rating=2)
    services.listing_rating_refresh(listing=listing)
    listing.refresh_from_db()
    assert (listing.rating_avg, listing.rating_count) == (3.5, 2)
    services.review_moderate(principal=ROBOT, review=a, action="hide", reason="Spam.")
    listing.refresh_from_db()
    assert (listing.rating_avg, listing.rating_count) == (2.0, 1)


def test_feature_needs_a_published_listing(vendor):
    vendor.release()
    listing = services.listing_ensure(principal=ROBOT, extension=vendor.extension())
    with pytest.raises(Conflict):
        services.listing_feature(principal=ROBOT, listing=listing, featured=True)
    listing = publish_listing(listing.extension)
    assert services.listing_feature(principal=ROBOT, listing=listing, featured=True).featured_at is not None
    assert services.listing_feature(principal=ROBOT, listing=listing, featured=False).featured_at is None


def test_publisher_verification_needs_a_verified_domain_and_both_must_hold(vendor):
    from apps.core import clock
    from apps.listings.selectors import is_verified_publisher
    from apps.orgs.models import Domain

    publish(vendor)
    with pytest.raises(Conflict) as exc:
        services.publisher_verify(principal=ROBOT, org=vendor.org, verified=True)
    assert exc.value.code == "domain_not_verified"
    domain = Domain.objects.create(
        org=vendor.org, name="vendor.example", verification_token="t", verified_at=clock.now()
    )
    services.publisher_verify(principal=ROBOT, org=vendor.org, verified=True)
    assert is_verified_publisher(vendor.org)
    # the badge goes with the domain, without staff action
    domain.delete()
    assert not is_verified_publisher(vendor.org)
    # and staff can revoke it
    Domain.objects.create(org=vendor.org, name="vendor.example", verification_token="t", verified_at=clock.now())
    services.publisher_verify(principal=ROBOT, org=vendor.org, verified=False)
    assert not is_verified_publisher(vendor.org)
    actions = set(AuditEvent.objects.filter(org_id=vendor.org.pk).values_list("action", flat=True))
    assert {"publisher.verified", "publisher.verification_revoked"} <= actions


def test_quick_extensions_can_be_listed_too(db):
    org = OrganizationFactory(slug="quick")
    listing = publish_listing(quick_extension(org, "thing"), name="Thing")
    assert listing.published_at
