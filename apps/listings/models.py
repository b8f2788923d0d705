"""Marketplace listings: what the storefront shows about an extension, the publisher's draft of it,
staff moderation, publisher profiles, categories, uploaded images, and reviews.

A ``Listing`` holds the *live* content (what the storefront shows, as staff last approved it); the
publisher edits a ``ListingDraft`` and submits it; staff approve (the draft's content is copied to
the listing) or reject it with a reason. Install counts and ratings are denormalised onto the
listing and recomputed from their sources whenever those change (never incremented blindly).

The search vector (``Listing.search_vector``) is a ``tsvector`` column written only on PostgreSQL
(on publish); its GIN index exists only there (migration 0001). On SQLite the column stays empty
and search uses a weighted fallback (apps/listings/search.py).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models

from apps.core import clock
from apps.core.ids import PrefixedIdField
from apps.extensions.models import Extension
from apps.orgs.models import Organization


class Category(models.Model):
    """One of the fixed storefront categories (seeded by migration 0002; staff do not edit them)."""

    slug = models.SlugField(max_length=40, primary_key=True)
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "slug"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Pricing(models.TextChoices):
    FREE = "free", "Free"
    FREEMIUM = "freemium", "Freemium"
    PAID = "paid", "Paid"
    TRIAL = "trial", "Free trial"


class ListingContent(models.Model):
    """What a publisher writes about an extension: shared by the live listing and its draft."""

    name = models.CharField(max_length=60)
    tagline = models.CharField(max_length=140, blank=True)
    description = models.TextField(blank=True)  # Markdown source (rendered and sanitised on display)
    # {"id": lmd_…, "sha256": …, "width": n, "height": n} of a ListingMedia, or null
    icon = models.JSONField(null=True, blank=True)
    # [{"id", "sha256", "width", "height", "caption"}], in display order
    screenshots = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True)  # lowercase words, at most MAX_TAGS
    docs_url = models.CharField(max_length=500, blank=True)
    support_url = models.CharField(max_length=500, blank=True)
    privacy_url = models.CharField(max_length=500, blank=True)
    pricing = models.CharField(max_length=10, choices=Pricing.choices, default=Pricing.FREE)
    pricing_text = models.CharField(max_length=80, blank=True)

    class Meta:
        abstract = True


class Listing(ListingContent):
    """An extension's storefront entry, one per extension. Only published listings of extensions
    that serve a non-yanked version on some channel are visible (``selectors.visible_listings``)."""

    id = PrefixedIdField(prefix="lst")
    extension = models.OneToOneField(Extension, on_delete=models.PROTECT, related_name="listing")
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="listings")  # the publisher
    categories = models.ManyToManyField(Category, through="ListingCategory", related_name="listings", blank=True)
    description_html = models.TextField(blank=True)  # sanitised rendering of ``description``
    # Set by staff approval; null until the listing was first approved.
    published_at = models.DateTimeField(null=True, blank=True)
    featured_at = models.DateTimeField(null=True, blank=True)  # staff pick on the storefront home
    # Denormalised, recomputed from their sources (services.listing_counts_refresh / rating_refresh).
    install_count = models.PositiveIntegerField(default=0)
    rating_avg = models.FloatField(default=0)
    rating_count = models.PositiveIntegerField(default=0)
    # Words searched at tag weight besides the tags: category names, the publisher's name, the key.
    search_keywords = models.TextField(blank=True)
    search_vector = SearchVectorField(null=True, blank=True, editable=False)  # PostgreSQL only
    # Features every installation may use without a grant (``apps.billing.entitlements``): names such
    # as "reports.export". A billing fact set by the publisher (API), not moderated storefront content.
    free_features = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["id"]
        indexes = [
            # One per sort order of the storefront (search.SORTS), matching it exactly.
            models.Index(fields=["-published_at", "-id"], name="listing_published"),
            models.Index(fields=["-install_count", "-id"], name="listing_installs"),
            models.Index(fields=["-rating_avg", "-rating_count", "-install_count", "-id"], name="listing_rating"),
            models.Index(fields=["featured_at"], name="listing_featured"),
        ]

    def __str__(self) -> str:
        return self.name or self.extension_id


class ListingCategory(models.Model):
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="+")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["listing", "category"], name="listing_category_once")]
        indexes = [models.Index(fields=["category", "listing"], name="listing_category_lookup")]

    def __str__(self) -> str:
        return f"{self.listing_id} in {self.category_id}"


class DraftStatus(models.TextChoices):
    EDITING = "editing", "Being edited"
    SUBMITTED = "submitted", "Waiting for staff review"
    APPROVED = "approved", "Approved (live)"
    REJECTED = "rejected", "Rejected"


class ListingDraft(ListingContent):
    """The publisher's working copy of a listing. Editing it after submission or a decision puts it
    back to ``editing``: what staff approve is exactly what they saw."""

    id = PrefixedIdField(prefix="lsd")
    listing = models.OneToOneField(Listing, on_delete=models.CASCADE, related_name="draft")
    categories = models.JSONField(default=list, blank=True)  # category slugs
    status = models.CharField(max_length=10, choices=DraftStatus.choices, default=DraftStatus.EDITING)
    updated_at = models.DateTimeField(default=clock.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    submitted_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_reason = models.CharField(max_length=2000, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "submitted_at"], name="listing_draft_queue")]

    def __str__(self) -> str:
        return f"draft of {self.listing_id} ({self.status})"


class MediaKind(models.TextChoices):
    ICON = "icon", "Icon"
    SCREENSHOT = "screenshot", "Screenshot"


class ListingMedia(models.Model):
    """An uploaded icon or screenshot, after validation and re-encoding (apps/listings/images.py).
    The bytes live in ``STORAGES["listing_media"]`` under their SHA-256 (the same image is stored once)."""

    id = PrefixedIdField(prefix="lmd")
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="media")
    kind = models.CharField(max_length=10, choices=MediaKind.choices)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["sha256"], name="listing_media_sha")]
        verbose_name_plural = "listing media"

    def __str__(self) -> str:
        return f"{self.kind} {self.sha256[:12]}"


class PublisherProfile(models.Model):
    """A publisher's storefront profile. Its **verified** badge shows only while staff have marked
    it verified *and* the organisation still has a verified domain."""

    org = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="publisher_profile"
    )
    about = models.CharField(max_length=1000, blank=True)
    website = models.CharField(max_length=500, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"publisher profile of {self.org_id}"


class Review(models.Model):
    """An organisation's rating and review of an extension it has (or had) installed; one per
    organisation and listing, editable. The publisher may reply; staff may hide it."""

    id = PrefixedIdField(prefix="rev")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="reviews")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="reviews_written")
    rating = models.PositiveSmallIntegerField()
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=clock.now)
    reply_text = models.TextField(blank=True)
    reply_at = models.DateTimeField(null=True, blank=True)
    reply_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_reason = models.CharField(max_length=1000, blank=True)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Open (unresolved) abuse reports, kept with the reports for the staff queue.
    open_reports = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["listing", "org"], name="one_review_per_org"),
            models.CheckConstraint(condition=models.Q(rating__gte=1, rating__lte=5), name="review_rating_1_to_5"),
        ]
        indexes = [
            models.Index(fields=["listing", "hidden_at"], name="review_listing"),
            models.Index(fields=["open_reports"], name="review_reported"),
        ]

    def __str__(self) -> str:
        return f"{self.org_id} on {self.listing_id}: {self.rating}"


class ReviewReport(models.Model):
    """A signed-in person's abuse report about a review (one per person and review)."""

    id = PrefixedIdField(prefix="rpt")
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=10, blank=True)  # hidden | dismissed

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["review", "reporter"], name="one_report_per_person")]

    def __str__(self) -> str:
        return f"report on {self.review_id}"
