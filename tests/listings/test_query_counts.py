"""The storefront, the listing editor, the staff console and the marketplace API run as many SQL
queries with 20 results as with 2 (see tests/test_query_counts.py)."""

from __future__ import annotations

import pytest

from apps.core import clock
from apps.listings import services
from apps.listings.models import Listing, PublisherProfile, Review, ReviewReport
from apps.orgs.models import Domain, Role
from tests.conftest import ApiClient
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.listings.support import CONTENT, ROBOT, install, publish_listing, quick_extension
from tests.test_query_counts import Grower, assert_constant_queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def publisher(db):
    org = OrganizationFactory(slug="pub", name="Publisher")
    Domain.objects.create(org=org, name="pub.example", verification_token="t", verified_at=clock.now())
    PublisherProfile.objects.create(org=org, verified_at=clock.now(), about="We publish.")
    return org


@pytest.fixture
def subject(publisher) -> Listing:
    """The listing whose page and reviews grow: released on two channels."""
    extension = quick_extension(publisher, "subject", scopes=("kv:read", "events:read:order.created"))
    from apps.extensions.models import ChannelRelease, ExtensionVersion

    beta = ExtensionVersion.objects.get(extension=extension)
    ChannelRelease.objects.create(extension=extension, channel="beta", version=beta)
    return publish_listing(extension, name="Subject", categories=["orders", "finance"])


def add_listing(g, name):
    """Another published, featured listing of its own publisher, with a review and installs."""
    org = OrganizationFactory(slug=f"p-{name}", name=f"Publisher {name}")
    listing = publish_listing(quick_extension(org, name), name=name, categories=["orders"], tags=["common"])
    services.listing_feature(principal=ROBOT, listing=listing, featured=True)
    Listing.objects.filter(pk=listing.pk).update(install_count=5)


def add_publisher_listing(g, name):
    publish_listing(quick_extension(g.org, name), name=name)


def add_review(g, name):
    """A review of the subject by a new customer organisation (which installed it)."""
    listing = Listing.objects.get(extension__key="pub.subject")
    customer = OrganizationFactory(slug=f"c-{name}", name=f"Customer {name}")
    install(customer, listing.extension)
    review = Review.objects.create(listing=listing, org=customer, rating=4, text=name, reply_text=f"Thanks {name}")
    if g.user is not None:
        ReviewReport.objects.create(review=review, reporter=UserFactory(), reason="x")
        Review.objects.filter(pk=review.pk).update(open_reports=1)


def add_own_review(g, name):
    """A review written by the org (of a new listing it installed)."""
    org = OrganizationFactory(slug=f"m-{name}", name=f"Maker {name}")
    listing = publish_listing(quick_extension(org, name), name=name)
    install(g.org, listing.extension)
    Review.objects.create(listing=listing, org=g.org, rating=5, text=name)


def add_submitted(g, name):
    org = OrganizationFactory(slug=f"s-{name}", name=f"Submitter {name}")
    extension = quick_extension(org, name)
    services.listing_draft_update(principal=ROBOT, extension=extension, data={**CONTENT, "name": name})
    services.listing_submit(principal=ROBOT, extension=extension)


def add_membership(g, name):
    """Another organisation the signed-in person belongs to (install and review forms grow)."""
    org = OrganizationFactory(slug=name, name=name)
    MembershipFactory(org=org, user=g.user, role=Role.ADMIN if g.made % 2 else Role.MEMBER)
    install(org, Listing.objects.get(extension__key="pub.subject").extension)


def both(*adders):
    def add(g, name):
        for adder in adders:
            adder(g, name)

    return add


# --- pages ---------------------------------------------------------------------------------------------
PAGES = {
    # name -> (url, what grows, signed in as: None | "customer" | "publisher" | "staff")
    "home": ("/marketplace/", add_listing, None),
    "home-signed-in": ("/marketplace/", add_listing, "customer"),
    "search": ("/marketplace/search/?q=common&category=orders&sort=installs", add_listing, None),
    "search-relevance": ("/marketplace/search/?q=item", add_listing, None),
    "search-htmx": ("/marketplace/search/?verified=false&min_rating=&sort=newest", add_listing, None),
    "listing": ("/marketplace/pub.subject/", add_review, None),
    "listing-signed-in": ("/marketplace/pub.subject/", both(add_review, add_membership), "customer"),
    "listing-publisher": ("/marketplace/pub.subject/", add_review, "publisher"),
    "publisher": ("/marketplace/publishers/pub/", add_publisher_listing, None),
    "staff-queue": ("/staff/listings/", add_submitted, "staff"),
    "staff-listings": ("/staff/listings/?tab=listings", add_listing, "staff"),
    "staff-publishers": ("/staff/listings/?tab=publishers", add_listing, "staff"),
    "staff-reviews": ("/staff/listings/?tab=reviews", add_review, "staff"),
}


@pytest.mark.parametrize("page", list(PAGES))
def test_storefront_page_runs_a_fixed_number_of_queries(page, subject, publisher, acme, staff):
    url, add_one, who = PAGES[page]
    client = ApiClient()
    user = None
    if who == "customer":
        user = acme.owner
    elif who == "publisher":
        user = MembershipFactory(org=publisher, role=Role.OWNER, user=UserFactory(email="pub@pub.example")).user
    elif who == "staff":
        user = staff.owner
    if user is not None:
        client.force_login(user)
    org = publisher if add_one is add_publisher_listing else acme.org
    headers = {"HTTP_HX_REQUEST": "true"} if page.endswith("htmx") else {}
    assert_constant_queries(lambda: client.get(url, **headers), Grower(org, user, add_one), marker="item")


def test_the_listing_editor_runs_a_fixed_number_of_queries(subject, publisher):
    owner = MembershipFactory(org=publisher, role=Role.OWNER, user=UserFactory(email="pub@pub.example")).user
    client = ApiClient()
    client.force_login(owner)
    url = f"/orgs/{publisher.pk}/extensions/{subject.extension_id}/listing/"

    def add_org(g, name):
        MembershipFactory(org=OrganizationFactory(name=name, slug=name), user=owner, role=Role.MEMBER)

    assert_constant_queries(lambda: client.get(url), Grower(publisher, owner, add_org), marker="item")


# --- the API -------------------------------------------------------------------------------------------
API_LISTS = {
    "marketplace/listings": (add_listing, None),
    "marketplace/listings?q=common&sort=rating": (add_listing, None),
    "marketplace/listings/pub.subject/reviews": (add_review, None),
    "orgs/{org}/reviews": (add_own_review, "customer"),
    "staff/listings": (add_submitted, "staff"),
    "staff/reviews": (add_review, "staff"),
    "orgs/{publisher}/extensions/{subject}/reviews": (add_review, "publisher"),
}


@pytest.mark.parametrize("path", list(API_LISTS))
def test_marketplace_api_list_runs_a_fixed_number_of_queries(path, subject, publisher, acme, staff):
    add_one, who = API_LISTS[path]
    client, user = ApiClient(), None
    if who == "customer":
        user = acme.owner
    elif who == "staff":
        user = staff.owner
    elif who == "publisher":
        user = MembershipFactory(org=publisher, role=Role.OWNER, user=UserFactory(email="pub@pub.example")).user
    if user is not None:
        client.force_login(user)
    url = path.format(org=acme.org.pk, publisher=publisher.pk, subject=subject.extension_id)
    sep = "&" if "?" in url else "?"
    assert_constant_queries(
        lambda: client.call("GET", f"{url}{sep}limit=100"),
        Grower(acme.org, user, add_one),
        marker="item",
    )
