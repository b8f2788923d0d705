"""The demo storefront for seed_demo: a handful of the demo publisher's extensions, each certified
by the real pipeline, served on stable, listed and approved by staff; the demo customer installs
the order tagger and reviews it.

Every extension runs the same AssemblyScript module (pdk/assemblyscript), so each asks for what that
module uses; their listings differ in what a storefront shows: names, categories, tags, text."""

from __future__ import annotations

from dataclasses import dataclass

from apps.extensions.demo import seed_demo_extension
from apps.extensions.models import Extension, ExtensionVersion
from apps.installs.models import Installation
from apps.installs.services import installation_create
from apps.listings import services
from apps.listings.models import Listing, Review
from apps.orgs.models import Organization
from apps.orgs.policy import Principal

ORDER_TAGGER_CONFIG = {
    "type": "object",
    "properties": {
        "tag_prefix": {
            "type": "string",
            "title": "Tag prefix",
            "description": "Put before every tag this extension adds.",
            "default": "auto-",
            "maxLength": 20,
        },
        "vip_threshold": {
            "type": "integer",
            "title": "VIP order total",
            "description": "Orders at or above this total get the 'vip' tag.",
            "minimum": 0,
            "default": 500,
        },
    },
    "required": ["tag_prefix"],
}


@dataclass(frozen=True)
class DemoListing:
    name: str
    display_name: str
    tagline: str
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    description: str
    pricing: str = "free"
    pricing_text: str = ""
    featured: bool = False


CATALOGUE = (
    DemoListing(
        "order-tagger",
        "Order Tagger",
        "Tags each new order by what is in it.",
        ("orders", "productivity"),
        ("orders", "tagging", "automation"),
        "## Tags that sort themselves\n\nOrder Tagger reads every **new order** and adds tags — "
        "`vip` for large baskets, the product lines it contains — so your team filters instead of "
        "reading.\n\n- Runs inside Plaza's sandbox: no server of ours sees your orders.\n"
        "- Counts the orders it has seen in its own storage.\n",
        featured=True,
    ),
    DemoListing(
        "fraud-signals",
        "Fraud Signals",
        "Flags risky orders before they ship.",
        ("security", "orders"),
        ("fraud", "risk", "chargebacks"),
        "## Stop chargebacks early\n\nFraud Signals scores each new order on simple, explainable "
        "signals and tags the risky ones for review.",
        pricing="freemium",
        pricing_text="Free up to 1,000 orders a month.",
        featured=True,
    ),
    DemoListing(
        "shipping-rules",
        "Shipping Rules",
        "Routes orders to the right carrier.",
        ("shipping",),
        ("carriers", "routing", "fulfilment"),
        "## The right carrier, every time\n\nShipping Rules tags each order with the carrier and "
        "service your rules pick, by weight, destination and value.",
        pricing="paid",
        pricing_text="$19 per month.",
    ),
    DemoListing(
        "sales-digest",
        "Sales Digest",
        "A daily summary of what sold and to whom.",
        ("analytics",),
        ("reports", "sales", "daily"),
        "## Yesterday, in one glance\n\nSales Digest keeps running totals of new orders in its own "
        "storage and tags the day's best sellers.",
        pricing="trial",
        pricing_text="14 days free, then $9 per month.",
        featured=True,
    ),
    DemoListing(
        "support-context",
        "Support Context",
        "Order tags your help desk can search.",
        ("support", "orders"),
        ("helpdesk", "tickets", "context"),
        "## Answers without tab-hopping\n\nSupport Context tags orders with what agents ask about "
        "most, so the help desk finds them in one search.",
    ),
)


def _robot() -> Principal:
    return Principal(kind="user", user=None, mfa_verified=True)


def seed_demo_versions(publisher: Organization) -> list[ExtensionVersion]:
    """Upload and submit every demo extension's 1.0.0 (certification takes it from there)."""
    versions = []
    for item in CATALOGUE:
        version, _ = seed_demo_extension(
            publisher,
            name=item.name,
            display_name=item.display_name,
            summary=item.tagline,
            config_schema=ORDER_TAGGER_CONFIG if item.name == "order-tagger" else None,
        )
        versions.append(version)
    return versions


def seed_demo_listings(publisher: Organization, customer: Organization, customer_admin) -> list[Listing]:
    """List every demo extension that is served on a channel (published by staff, some featured),
    install the order tagger into ``customer`` and review it there. Idempotent."""
    robot = _robot()
    listings = []
    for item in CATALOGUE:
        extension = Extension.objects.get(key=f"{publisher.slug}.{item.name}")
        if not extension.releases.exists():
            continue  # not certified (yet): nothing to list
        listing = Listing.objects.filter(extension=extension).first()
        if listing is None or listing.published_at is None:
            services.listing_draft_update(
                principal=robot,
                extension=extension,
                data={
                    "name": item.display_name,
                    "tagline": item.tagline,
                    "description": item.description,
                    "tags": list(item.tags),
                    "categories": list(item.categories),
                    "docs_url": f"https://docs.{publisher.slug}.example/{item.name}",
                    "support_url": f"https://{publisher.slug}.example/support",
                    "privacy_url": f"https://{publisher.slug}.example/privacy",
                    "pricing": item.pricing,
                    "pricing_text": item.pricing_text,
                },
            )
            services.listing_submit(principal=robot, extension=extension)
            listing = Listing.objects.get(extension=extension)
            services.listing_decide(principal=robot, listing=listing, approve=True)
            if item.featured:
                services.listing_feature(principal=robot, listing=listing, featured=True)
        listings.append(Listing.objects.get(extension=extension))
    tagger = Extension.objects.get(key=f"{publisher.slug}.order-tagger")
    if tagger.releases.exists():
        admin = Principal(kind="user", user=customer_admin, mfa_verified=True)
        if not Installation.objects.filter(org=customer, extension=tagger).exclude(status="uninstalled").exists():
            version = tagger.releases.first().version
            installation_create(
                principal=admin,
                org=customer,
                extension=tagger,
                granted_scopes=list(version.scopes),
                config={"tag_prefix": "globex-"},
            )
        if not Review.objects.filter(org=customer, listing__extension=tagger).exists():
            services.review_submit(
                principal=admin,
                org=customer,
                extension=tagger,
                rating=5,
                text="Our warehouse team stopped reading every order. Set up in two minutes.",
            )
    return listings
