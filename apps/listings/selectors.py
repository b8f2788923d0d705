"""Reads of listings, reviews and publisher profiles.

Storefront reads are public: they only ever return *visible* listings (``visible_listings``).
Publisher reads go through ``get_org_for_principal``/``get_extension_for_principal`` first;
staff reads through ``get_platform_org_for_principal`` (in the views and API)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.models import BooleanField, Case, Count, Exists, OuterRef, Q, QuerySet, Value, When

from apps.core.errors import NotFound
from apps.core.ids import is_valid_id
from apps.extensions import scopes as scope_vocab
from apps.extensions.manifest import EXTENSION_ID
from apps.extensions.models import Channel, ChannelRelease, Extension, VersionStatus
from apps.installs.models import Installation
from apps.listings.models import Category, DraftStatus, Listing, ListingDraft, ListingMedia, PublisherProfile, Review
from apps.orgs.models import Domain, Organization
from apps.orgs.policy import Principal, authorize
from apps.orgs.selectors import get_object_for_principal


# --- visibility ------------------------------------------------------------------------------------
def _serving_release():
    """A channel release of the listing's extension whose version is not yanked."""
    return ChannelRelease.objects.filter(extension_id=OuterRef("extension_id")).exclude(
        version__status=VersionStatus.YANKED
    )


def verified_expression():
    """For a Listing queryset: True when staff marked the publisher verified *and* the publisher
    has a verified domain now (either alone is not enough)."""
    domain = Domain.objects.filter(org_id=OuterRef("org_id"), verified_at__isnull=False)
    return Case(
        When(Q(org__publisher_profile__verified_at__isnull=False) & Q(Exists(domain)), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def _visible() -> QuerySet[Listing]:
    return Listing.objects.filter(
        published_at__isnull=False,
        extension__deleted_at__isnull=True,
        org__sandbox_of__isnull=True,
    ).filter(Exists(_serving_release()))


def visible_listings() -> QuerySet[Listing]:
    """Listings the storefront shows: approved by staff, of an extension that is not deleted and
    serves a non-yanked version on some channel, by a publisher that is not a sandbox tenant.
    Each row carries ``publisher_verified``; its extension, publisher and profile are loaded."""
    return (
        _visible()
        .select_related("extension", "org", "org__publisher_profile")
        .annotate(publisher_verified=verified_expression())
        .defer("description", "search_vector", "description_html")
    )


def is_visible(listing: Listing) -> bool:
    return visible_listings().filter(pk=listing.pk).exists()


def get_visible_listing(key: str) -> Listing:
    """The visible listing of the extension ``key`` (publisher.name), with its full content."""
    if not isinstance(key, str) or len(key) > 125 or not re.fullmatch(EXTENSION_ID, key):
        raise NotFound("No such listing.")
    listing = visible_listings().defer(None).defer("search_vector").filter(extension__key=key).first()
    if listing is None:
        raise NotFound("No such listing.")
    return listing


def is_verified_publisher(org: Organization) -> bool:
    profile = PublisherProfile.objects.filter(org=org, verified_at__isnull=False).exists()
    return profile and Domain.objects.filter(org=org, verified_at__isnull=False).exists()


# --- the storefront --------------------------------------------------------------------------------
def categories_with_counts() -> list[Category]:
    """Every category, each with ``listing_count``: its visible listings (one query)."""
    return list(
        Category.objects.annotate(listing_count=Count("listings", filter=Q(listings__in=_visible().values("pk"))))
    )


def featured_listings(limit: int = 6) -> list[Listing]:
    return list(visible_listings().filter(featured_at__isnull=False).order_by("-featured_at", "-id")[:limit])


def popular_listings(limit: int = 6) -> list[Listing]:
    return list(visible_listings().order_by("-install_count", "-id")[:limit])


def newest_listings(limit: int = 6) -> list[Listing]:
    return list(visible_listings().order_by("-published_at", "-id")[:limit])


def listing_categories(listing: Listing) -> list[Category]:
    return list(Category.objects.filter(listings=listing))


@dataclass
class ChannelView:
    channel: str
    label: str
    current: object | None = None  # the ExtensionVersion the channel serves
    history: list = field(default_factory=list)  # [{"version", "released_at", "scope_changes", "summary"}]


def listing_channels(extension: Extension, *, history: int = 10) -> list[ChannelView]:
    """Per channel: the certified version it serves (the newest non-yanked release) and its recent
    releases, newest first, each with its scope changes and the version's summary (one query)."""
    releases = (
        ChannelRelease.objects.filter(extension=extension)
        .exclude(version__status=VersionStatus.YANKED)
        .select_related("version")
        .order_by("-promoted_at", "-id")[:200]
    )
    views = {value: ChannelView(value, label) for value, label in Channel.choices}
    seen: dict[str, set] = {value: set() for value in views}
    for release in releases:
        view = views[release.channel]
        version = release.version
        if view.current is None:
            view.current = version
        if version.pk in seen[release.channel] or len(view.history) >= history:
            continue
        seen[release.channel].add(version.pk)
        manifest = version.manifest or {}
        view.history.append(
            {
                "version": version.version,
                "version_id": version.pk,
                "released_at": release.promoted_at,
                "scope_changes": version.scope_changes or [],
                "summary": manifest.get("summary", "") if isinstance(manifest, dict) else "",
                "description": manifest.get("description", "") if isinstance(manifest, dict) else "",
            }
        )
    return [view for view in views.values() if view.current is not None]


def scope_lines(scopes: list[str]) -> list[dict]:
    """[{"scope", "describe", "reaches"}] in plain words, for the listing page and consent."""
    lines = []
    for name in scopes or ():
        try:
            scope = scope_vocab.parse(name)
        except scope_vocab.UnknownScope:
            lines.append({"scope": name, "describe": name, "reaches": ""})
        else:
            lines.append({"scope": name, "describe": scope.describe(), "reaches": scope.reaches()})
    return lines


def visible_reviews(listing: Listing) -> QuerySet[Review]:
    return Review.objects.filter(listing=listing, hidden_at__isnull=True).select_related("org").order_by("-id")


def publisher_listings(org: Organization) -> QuerySet[Listing]:
    return visible_listings().filter(org=org).order_by("-install_count", "-id")


def get_publisher(slug: str) -> Organization:
    """A publisher by slug: an organisation with at least one visible listing."""
    if not isinstance(slug, str) or len(slug) > 60 or not re.fullmatch(r"[-a-zA-Z0-9_]+", slug):
        raise NotFound("No such publisher.")
    org = (
        Organization.objects.filter(slug=slug, sandbox_of__isnull=True)
        .select_related("publisher_profile")
        .annotate(
            publisher_verified=Case(
                When(
                    Q(publisher_profile__verified_at__isnull=False)
                    & Q(Exists(Domain.objects.filter(org_id=OuterRef("pk"), verified_at__isnull=False))),
                    then=Value(True),
                ),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
        .first()
    )
    if org is None or not visible_listings().filter(org=org).exists():
        raise NotFound("No such publisher.")
    return org


# --- viewers ---------------------------------------------------------------------------------------
def installations_by_org(extension: Extension, org_ids: list[str]) -> dict[str, list[Installation]]:
    """The installations (any status) of ``extension`` in these organisations (one query)."""
    out: dict[str, list[Installation]] = {}
    for inst in Installation.objects.filter(extension=extension, org_id__in=org_ids).only("id", "org_id", "status"):
        out.setdefault(inst.org_id, []).append(inst)
    return out


def reviews_by_org(listing: Listing, org_ids: list[str]) -> dict[str, Review]:
    return {r.org_id: r for r in Review.objects.filter(listing=listing, org_id__in=org_ids)}


# --- publishers ------------------------------------------------------------------------------------
def draft_of(listing: Listing) -> ListingDraft:
    """The listing's draft; a listing written without one (imported, seeded) gets an unsaved copy
    of its live content."""
    try:
        return listing.draft
    except ListingDraft.DoesNotExist:
        draft = ListingDraft(listing=listing, status=DraftStatus.APPROVED)
        for name in ("name", "tagline", "description", "icon", "screenshots", "tags", "docs_url", "support_url",
                     "privacy_url", "pricing", "pricing_text"):  # fmt: skip
            setattr(draft, name, getattr(listing, name))
        draft.categories = []
        return draft


def listing_of(extension: Extension) -> Listing | None:
    return Listing.objects.filter(extension=extension).select_related("draft").first()


def get_listing_for_principal(principal: Principal, org: Organization, extension_id: str, action: str) -> tuple:
    """(extension, listing or None) for a publisher editing its listing."""
    from apps.extensions.selectors import get_extension_for_principal

    extension = get_extension_for_principal(principal, org, extension_id, action)
    return extension, listing_of(extension)


def get_media_for_listing(listing: Listing, media_id: str) -> ListingMedia:
    if not is_valid_id(media_id, "lmd"):
        raise NotFound("No such screenshot.")
    media = ListingMedia.objects.filter(listing=listing, pk=media_id).first()
    if media is None:
        raise NotFound("No such screenshot.")
    return media


def reviews_of_listing(listing: Listing) -> QuerySet[Review]:
    """Every review of a listing (hidden ones too), for its publisher."""
    return Review.objects.filter(listing=listing).select_related("org")


def get_review_of_listing(principal: Principal, listing: Listing | None, review_id: str, action: str) -> Review:
    if listing is None or not is_valid_id(review_id, "rev"):
        raise NotFound("No such review.")
    review = Review.objects.filter(listing=listing, pk=review_id).select_related("org", "listing").first()
    if review is None:
        raise NotFound("No such review.")
    authorize(principal, action, listing.org)
    return review


def get_review_of_listing_public(listing: Listing, review_id: str) -> Review:
    """A shown (not hidden) review of a visible listing."""
    if not is_valid_id(review_id, "rev"):
        raise NotFound("No such review.")
    review = visible_reviews(listing).filter(pk=review_id).first()
    if review is None:
        raise NotFound("No such review.")
    return review


def reviews_of_org(org: Organization) -> QuerySet[Review]:
    return Review.objects.filter(org=org).select_related("org", "listing", "listing__extension")


def get_org_review(principal: Principal, org: Organization, review_id: str, action: str) -> Review:
    return get_object_for_principal(
        principal, Review, org, review_id, action, queryset=Review.objects.select_related("listing")
    )


def publisher_profile_of(org: Organization) -> PublisherProfile:
    """The org's profile (unsaved and empty when it never had one)."""
    return PublisherProfile.objects.filter(org=org).first() or PublisherProfile(org=org)


# --- staff -----------------------------------------------------------------------------------------
def staff_drafts(status: str = DraftStatus.SUBMITTED, q: str = "") -> QuerySet[ListingDraft]:
    qs = ListingDraft.objects.select_related("listing", "listing__extension", "listing__org", "submitted_by")
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(Q(listing__extension__key__icontains=q) | Q(name__icontains=q))
    return qs


def staff_listings(q: str = "", featured: bool | None = None) -> QuerySet[Listing]:
    qs = Listing.objects.filter(published_at__isnull=False).select_related("extension", "org")
    qs = qs.annotate(publisher_verified=verified_expression()).defer("description", "description_html", "search_vector")
    if q:
        qs = qs.filter(Q(extension__key__icontains=q) | Q(name__icontains=q) | Q(org__name__icontains=q))
    if featured is not None:
        qs = qs.filter(featured_at__isnull=not featured)
    return qs


def get_staff_listing(listing_id: str) -> Listing:
    if not is_valid_id(listing_id, "lst"):
        raise NotFound("No such listing.")
    listing = (
        Listing.objects.filter(pk=listing_id)
        .select_related("extension", "org", "draft", "org__publisher_profile")
        .annotate(publisher_verified=verified_expression())
        .first()
    )
    if listing is None:
        raise NotFound("No such listing.")
    return listing


def staff_reported_reviews() -> QuerySet[Review]:
    return Review.objects.filter(open_reports__gt=0).select_related("org", "listing", "listing__extension")


def get_staff_review(review_id: str) -> Review:
    if not is_valid_id(review_id, "rev"):
        raise NotFound("No such review.")
    review = Review.objects.filter(pk=review_id).select_related("org", "listing", "listing__extension").first()
    if review is None:
        raise NotFound("No such review.")
    return review


def staff_publishers(q: str = "") -> QuerySet[Organization]:
    """Organisations that publish (have at least one listing), with their verification facts."""
    qs = (
        Organization.objects.filter(Exists(Listing.objects.filter(org_id=OuterRef("pk"))), sandbox_of__isnull=True)
        .select_related("publisher_profile")
        .annotate(
            domain_verified=Exists(Domain.objects.filter(org_id=OuterRef("pk"), verified_at__isnull=False)),
            listing_count=Count("listings", distinct=True),
        )
    )
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(slug__icontains=q))
    return qs


def get_staff_publisher(org_id: str) -> Organization:
    if not is_valid_id(org_id, "org"):
        raise NotFound("No such publisher.")
    org = Organization.objects.filter(pk=org_id, sandbox_of__isnull=True).first()
    if org is None:
        raise NotFound("No such publisher.")
    return org
