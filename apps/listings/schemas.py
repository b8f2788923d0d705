from __future__ import annotations

import datetime as dt
from typing import Literal

from django.urls import reverse
from ninja import Field, Schema

from apps.listings import content as checks


def media_url(sha256: str) -> str:
    return reverse("listing_media", kwargs={"sha256": sha256})


def _media(entry: dict | None) -> dict | None:
    if not isinstance(entry, dict) or not entry.get("sha256"):
        return None
    return {
        "id": entry.get("id", ""),
        "url": media_url(entry["sha256"]),
        "width": entry.get("width", 0),
        "height": entry.get("height", 0),
        "caption": entry.get("caption", ""),
    }


# --- the storefront --------------------------------------------------------------------------------
class ListingMediaOut(Schema):
    id: str
    url: str = Field(..., description="Served with immutable caching; the address changes with the image.")
    width: int
    height: int
    caption: str = ""


class ListingCategoryOut(Schema):
    slug: str
    name: str
    description: str
    listing_count: int = Field(0, description="Visible listings in the category.")


class ListingPublisherOut(Schema):
    id: str
    slug: str
    name: str
    verified: bool = Field(..., description="Staff checked the publisher and it has a verified domain.")


class ListingRatingOut(Schema):
    average: float = Field(..., description="0 when there are no reviews yet.")
    count: int


class ListingPricingOut(Schema):
    model: str = Field(..., description="free | freemium | paid | trial")
    text: str


class ListingLinksOut(Schema):
    docs: str
    support: str
    privacy: str


class ListingSummaryOut(Schema):
    """A listing in search results and lists."""

    id: str
    extension_id: str
    key: str = Field(..., description="The extension's id (publisher.name): the listing page's address.")
    name: str
    tagline: str
    icon: ListingMediaOut | None
    publisher: ListingPublisherOut
    pricing: ListingPricingOut
    install_count: int
    rating: ListingRatingOut
    featured: bool
    published_at: dt.datetime | None

    @staticmethod
    def resolve_key(obj) -> str:
        return obj.extension.key

    @staticmethod
    def resolve_icon(obj):
        return _media(obj.icon)

    @staticmethod
    def resolve_publisher(obj) -> dict:
        return {
            "id": obj.org_id,
            "slug": obj.org.slug,
            "name": obj.org.name,
            "verified": bool(getattr(obj, "publisher_verified", False)),
        }

    @staticmethod
    def resolve_pricing(obj) -> dict:
        return {"model": obj.pricing, "text": obj.pricing_text}

    @staticmethod
    def resolve_rating(obj) -> dict:
        return {"average": obj.rating_avg, "count": obj.rating_count}

    @staticmethod
    def resolve_featured(obj) -> bool:
        return obj.featured_at is not None


class ListingScopeOut(Schema):
    scope: str
    describe: str = Field(..., description="What it allows, in plain words.")
    reaches: str = Field(..., description="The data or power it reaches.")


class ListingScopeChangeOut(Schema):
    scope: str
    change: str = Field(..., description="added | removed | escalation")
    replaces: str | None = None


class ListingVersionOut(Schema):
    version: str
    version_id: str
    released_at: dt.datetime
    summary: str
    scope_changes: list[ListingScopeChangeOut]


class ListingChannelOut(Schema):
    channel: str = Field(..., description="stable | beta | canary")
    version: str = Field(..., description="The certified version the channel serves.")
    version_id: str
    scopes: list[ListingScopeOut]
    history: list[ListingVersionOut] = Field(..., description="Recent releases on the channel, newest first.")


class ListingOut(ListingSummaryOut):
    description: str = Field(..., description="Markdown source.")
    description_html: str = Field(..., description="Sanitised HTML rendering of the description.")
    screenshots: list[ListingMediaOut]
    categories: list[ListingCategoryOut]
    tags: list[str]
    links: ListingLinksOut
    channels: list[ListingChannelOut]

    @staticmethod
    def resolve_screenshots(obj) -> list:
        return [m for m in map(_media, obj.screenshots or []) if m]

    @staticmethod
    def resolve_categories(obj) -> list:
        return [
            {"slug": c.slug, "name": c.name, "description": c.description, "listing_count": 0}
            for c in getattr(obj, "category_list", [])
        ]

    @staticmethod
    def resolve_channels(obj) -> list:
        from apps.listings.selectors import scope_lines

        return [
            {
                "channel": view.channel,
                "version": view.current.version,
                "version_id": view.current.pk,
                "scopes": scope_lines(view.current.scopes),
                "history": view.history,
            }
            for view in getattr(obj, "channel_views", [])
        ]

    @staticmethod
    def resolve_links(obj) -> dict:
        return {"docs": obj.docs_url, "support": obj.support_url, "privacy": obj.privacy_url}


class ReviewReplyOut(Schema):
    text: str
    at: dt.datetime | None


class ReviewOut(Schema):
    id: str
    extension_key: str
    org_id: str
    org_name: str
    rating: int
    text: str
    created_at: dt.datetime
    updated_at: dt.datetime
    reply: ReviewReplyOut | None

    @staticmethod
    def resolve_extension_key(obj) -> str:
        return obj.listing.extension.key

    @staticmethod
    def resolve_org_name(obj) -> str:
        return obj.org.name

    @staticmethod
    def resolve_reply(obj):
        return {"text": obj.reply_text, "at": obj.reply_at} if obj.reply_text else None


class OwnReviewOut(ReviewOut):
    """A review as its authors and the publisher see it."""

    hidden: bool
    hidden_reason: str

    @staticmethod
    def resolve_hidden(obj) -> bool:
        return obj.hidden_at is not None


# --- reviews ---------------------------------------------------------------------------------------
class ReviewSubmitIn(Schema):
    extension_id: str = Field(..., max_length=40, description="The reviewed extension (ext_…).")
    rating: int = Field(..., ge=1, le=5)
    text: str = Field("", max_length=5000)


class ReviewReplyIn(Schema):
    text: str = Field(..., max_length=3000, description="Empty removes the reply.")


class ReviewReportIn(Schema):
    reason: str = Field("", max_length=1000)


class ReviewReportOut(Schema):
    id: str
    review_id: str
    created_at: dt.datetime


# --- publishers ------------------------------------------------------------------------------------
class ListingDraftIn(Schema):
    name: str = Field(..., max_length=60)
    tagline: str = Field("", max_length=140)
    description: str = Field("", max_length=checks.MAX_DESCRIPTION, description="Markdown (no raw HTML).")
    tags: list[str] = Field(default_factory=list, max_length=checks.MAX_TAGS)
    categories: list[str] = Field(default_factory=list, max_length=checks.MAX_CATEGORIES)
    docs_url: str = Field("", max_length=500, description="https:// only.")
    support_url: str = Field("", max_length=500, description="https:// only.")
    privacy_url: str = Field("", max_length=500, description="https:// only; required to submit.")
    pricing: Literal["free", "freemium", "paid", "trial"] = "free"
    pricing_text: str = Field("", max_length=80)


class ListingProblemOut(Schema):
    param: str
    message: str


class ListingDraftOut(Schema):
    name: str
    tagline: str
    description: str
    icon: ListingMediaOut | None
    screenshots: list[ListingMediaOut]
    tags: list[str]
    categories: list[str]
    docs_url: str
    support_url: str
    privacy_url: str
    pricing: str
    pricing_text: str
    status: str = Field(..., description="editing | submitted | approved | rejected")
    submitted_at: dt.datetime | None
    decided_at: dt.datetime | None
    decision_reason: str = Field(..., description="Staff's reason, when rejected.")
    problems: list[ListingProblemOut] = Field(..., description="What is missing before it can be submitted.")

    @staticmethod
    def resolve_icon(obj):
        return _media(obj.icon)

    @staticmethod
    def resolve_screenshots(obj) -> list:
        return [m for m in map(_media, obj.screenshots or []) if m]

    @staticmethod
    def resolve_problems(obj) -> list:
        return checks.submission_problems(obj)


class PublisherListingOut(Schema):
    listing_id: str | None = Field(..., description="Null until the listing is first saved.")
    extension_id: str
    extension_key: str
    published: bool = Field(..., description="Staff approved a version of it.")
    visible: bool = Field(..., description="Shown in the storefront now (published, and a channel serves a version).")
    install_count: int
    rating: ListingRatingOut
    draft: ListingDraftOut


class PublisherProfileIn(Schema):
    about: str = Field("", max_length=1000)
    website: str = Field("", max_length=500, description="https:// only.")


class PublisherProfileOut(Schema):
    org_id: str
    about: str
    website: str
    verified: bool


# --- staff -----------------------------------------------------------------------------------------
class StaffListingOut(Schema):
    listing_id: str
    extension_id: str
    extension_key: str
    publisher: ListingPublisherOut
    published_at: dt.datetime | None
    featured: bool
    draft: ListingDraftOut | None


class ListingDecisionIn(Schema):
    decision: Literal["approve", "reject"]
    reason: str = Field("", max_length=2000, description="Required to reject; the publisher sees it.")


class ListingFeatureIn(Schema):
    featured: bool


class PublisherVerificationIn(Schema):
    verified: bool


class PublisherVerificationOut(Schema):
    org_id: str
    name: str
    slug: str
    domain_verified: bool
    staff_verified: bool
    verified: bool = Field(..., description="Both: what the storefront's badge shows.")


class ReviewModerationIn(Schema):
    action: Literal["hide", "restore", "dismiss"]
    reason: str = Field("", max_length=1000, description="Required to hide; the reviewing organisation sees it.")


class StaffReviewOut(OwnReviewOut):
    open_reports: int
