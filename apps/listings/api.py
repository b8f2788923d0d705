"""The marketplace over the API: the public storefront (search, listings, categories, reviews),
publishers' listings (draft, images, submission, replies to reviews, profile), customers' reviews,
and platform staff's moderation.

Storefront operations need no credentials. A request that does send ``Authorization`` must send
a valid token (401 otherwise), as everywhere else: a broken integration should fail loudly."""

from __future__ import annotations

from django.db.models import Q
from django.http import HttpRequest
from ninja import File, Form, Query, Router, Status, UploadedFile
from ninja.errors import AuthenticationError

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from apps.core.ids import is_valid_id
from apps.extensions.models import Extension
from apps.listings import images, search, selectors, services
from apps.listings.models import DraftStatus, Listing, ListingDraft, MediaKind
from apps.listings.schemas import (
    ListingCategoryOut,
    ListingDecisionIn,
    ListingDraftIn,
    ListingFeatureIn,
    ListingMediaOut,
    ListingOut,
    ListingSummaryOut,
    OwnReviewOut,
    PublisherListingOut,
    PublisherProfileIn,
    PublisherProfileOut,
    PublisherVerificationIn,
    PublisherVerificationOut,
    ReviewModerationIn,
    ReviewOut,
    ReviewReplyIn,
    ReviewReportIn,
    ReviewReportOut,
    ReviewSubmitIn,
    StaffListingOut,
    StaffReviewOut,
    _media,
)
from apps.orgs.auth import PlazaAuth
from apps.orgs.models import Domain
from apps.orgs.selectors import get_org_for_principal, get_platform_org_for_principal

router = Router(tags=["marketplace"])
SortChoice = Query("relevance", pattern="^(relevance|installs|rating|newest)$", description=", ".join(search.SORTS))


def _public(request: HttpRequest) -> None:
    """Anonymous is fine; credentials that are sent must be valid."""
    if "Authorization" in request.headers and PlazaAuth()(request) is None:
        raise AuthenticationError()


# --- the storefront (public) -----------------------------------------------------------------------
@router.get(
    "/marketplace/categories", auth=None, response=Page[ListingCategoryOut], summary="List the storefront's categories"
)
def list_categories(request: HttpRequest):
    _public(request)
    return {"data": selectors.categories_with_counts(), "next_cursor": None}


@router.get(
    "/marketplace/listings",
    auth=None,
    response=Page[ListingSummaryOut],
    summary="Search the storefront",
    description="Relevance-ranked full-text search (every word must match; the last also as a prefix), "
    "with filters and sort. Without `q`, relevance is the most installed first.",
)
def search_listings(
    request: HttpRequest,
    q: str = Query("", max_length=200, description="Words to look for."),
    category: str = Query("", max_length=40, description="A category slug (see /marketplace/categories)."),
    pricing: str = Query("", max_length=10, description="free | freemium | paid | trial"),
    verified: bool | None = Query(None, description="Only (or never) verified publishers."),
    min_rating: float | None = Query(None, ge=1, le=5, description="Average rating at least this."),
    sort: str = SortChoice,
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    _public(request)
    params = search.clean_params(
        q=q, category=category, pricing=pricing, verified=verified, min_rating=min_rating, sort=sort
    )
    rows, next_cursor = search.page(search.search(params), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


def _detailed(listing: Listing) -> Listing:
    listing.category_list = selectors.listing_categories(listing)
    listing.channel_views = selectors.listing_channels(listing.extension)
    return listing


@router.get(
    "/marketplace/listings/{extension_key}",
    auth=None,
    response=ListingOut,
    summary="Get a listing: description, screenshots, scopes in plain words, versions per channel",
)
def get_listing(request: HttpRequest, extension_key: str):
    _public(request)
    return _detailed(selectors.get_visible_listing(extension_key))


@router.get(
    "/marketplace/listings/{extension_key}/reviews",
    auth=None,
    response=Page[ReviewOut],
    summary="List a listing's reviews, newest first",
)
def list_listing_reviews(
    request: HttpRequest, extension_key: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY
):
    _public(request)
    listing = selectors.get_visible_listing(extension_key)
    rows, next_cursor = paginate(selectors.visible_reviews(listing), limit=limit, cursor=cursor)
    for row in rows:
        row.listing = listing
    return {"data": rows, "next_cursor": next_cursor}


@router.post(
    "/marketplace/reviews/{review_id}/report",
    response={201: ReviewReportOut},
    summary="Report a review to platform staff (signed-in people; once per review)",
)
def report_review(request: HttpRequest, review_id: str, payload: ReviewReportIn):
    if request.auth.kind != "user":
        raise PermissionDenied("Only people can report reviews.", code="users_only")
    review = selectors.get_staff_review(review_id)
    report = services.review_report(principal=request.auth, review=review, reason=payload.reason)
    return Status(201, report)


# --- publishers ------------------------------------------------------------------------------------
def _publisher_view(extension: Extension, listing: Listing | None) -> dict:
    if listing is not None:
        draft = selectors.draft_of(listing)
    else:
        draft = ListingDraft(name=extension.name, tagline=extension.summary)
    return {
        "listing_id": listing.pk if listing else None,
        "extension_id": extension.pk,
        "extension_key": extension.key,
        "published": bool(listing and listing.published_at),
        "visible": bool(listing and selectors.is_visible(listing)),
        "install_count": listing.install_count if listing else 0,
        "rating": {"average": listing.rating_avg if listing else 0.0, "count": listing.rating_count if listing else 0},
        "draft": draft,
    }


def _publisher(request, org_id: str, extension_id: str, action: str):
    org = get_org_for_principal(request.auth, org_id, action)
    extension, listing = selectors.get_listing_for_principal(request.auth, org, extension_id, action)
    return org, extension, listing


@router.get(
    "/orgs/{org_id}/extensions/{extension_id}/listing",
    response=PublisherListingOut,
    summary="Get the extension's listing: its draft and where it stands",
)
def get_publisher_listing(request: HttpRequest, org_id: str, extension_id: str):
    _, extension, listing = _publisher(request, org_id, extension_id, "listing.view")
    return _publisher_view(extension, listing)


@router.put(
    "/orgs/{org_id}/extensions/{extension_id}/listing",
    response=PublisherListingOut,
    summary="Replace the listing's draft (text, links, tags, categories, pricing)",
    description="The storefront keeps showing the approved content until staff approve the next submission. "
    "Changing a submitted draft takes it out of the review queue: submit it again.",
)
def put_publisher_listing(request: HttpRequest, org_id: str, extension_id: str, payload: ListingDraftIn):
    _, extension, _ = _publisher(request, org_id, extension_id, "listing.manage")
    services.listing_draft_update(principal=request.auth, extension=extension, data=payload.dict())
    return _publisher_view(extension, selectors.listing_of(extension))


@router.post(
    "/orgs/{org_id}/extensions/{extension_id}/listing/submit",
    response=PublisherListingOut,
    summary="Submit the listing's draft for staff review",
    description="Refused with `listing_incomplete` (every problem in `error.details`) while something is missing.",
)
def submit_publisher_listing(request: HttpRequest, org_id: str, extension_id: str):
    _, extension, _ = _publisher(request, org_id, extension_id, "listing.manage")
    services.listing_submit(principal=request.auth, extension=extension)
    return _publisher_view(extension, selectors.listing_of(extension))


def _read_image(upload: UploadedFile) -> bytes:
    limit = images.max_bytes()
    if upload.size is not None and upload.size > limit:
        raise ValidationFailed(f"The image is over {limit // (1024 * 1024)} MiB.", code="image_too_large", param="file")
    return upload.read(limit + 1)


_UPLOAD_HELP = (
    "Multipart field `file`: a PNG, JPEG or WebP image (at most 5 MiB and 25 megapixels). It is re-encoded "
    "(WebP, metadata removed) and resized to fit {size}."
)


@router.post(
    "/orgs/{org_id}/extensions/{extension_id}/listing/icon",
    response={201: ListingMediaOut},
    summary="Upload the listing's icon (replaces the draft's)",
    description=_UPLOAD_HELP.format(size="256×256; at least 64×64"),
)
def upload_icon(request: HttpRequest, org_id: str, extension_id: str, file: File[UploadedFile]):
    _, extension, _ = _publisher(request, org_id, extension_id, "listing.manage")
    media = services.listing_media_add(
        principal=request.auth, extension=extension, kind=MediaKind.ICON, data=_read_image(file)
    )
    return Status(201, _media({"id": media.pk, "sha256": media.sha256, "width": media.width, "height": media.height}))


@router.post(
    "/orgs/{org_id}/extensions/{extension_id}/listing/screenshots",
    response={201: ListingMediaOut},
    summary="Add a screenshot to the listing's draft (at most 8)",
    description=_UPLOAD_HELP.format(size="1600×1000; at least 320×200") + " Optional form field `caption`.",
)
def upload_screenshot(
    request: HttpRequest, org_id: str, extension_id: str, file: File[UploadedFile], caption: Form[str] = ""
):
    _, extension, _ = _publisher(request, org_id, extension_id, "listing.manage")
    if len(caption) > 140:
        raise ValidationFailed("caption is at most 140 characters.", param="caption")
    media = services.listing_media_add(
        principal=request.auth,
        extension=extension,
        kind=MediaKind.SCREENSHOT,
        data=_read_image(file),
        caption=caption,
    )
    return Status(
        201,
        _media(
            {
                "id": media.pk,
                "sha256": media.sha256,
                "width": media.width,
                "height": media.height,
                "caption": media.caption,
            }
        ),
    )


@router.delete(
    "/orgs/{org_id}/extensions/{extension_id}/listing/screenshots/{screenshot_id}",
    response={204: None},
    summary="Remove a screenshot from the listing's draft",
)
def delete_screenshot(request: HttpRequest, org_id: str, extension_id: str, screenshot_id: str):
    _, _, listing = _publisher(request, org_id, extension_id, "listing.manage")
    if listing is None:
        raise NotFound("No such screenshot.")
    media = selectors.get_media_for_listing(listing, screenshot_id)
    services.listing_screenshot_remove(principal=request.auth, listing=listing, media=media)
    return Status(204, None)


@router.get(
    "/orgs/{org_id}/extensions/{extension_id}/reviews",
    response=Page[OwnReviewOut],
    summary="List the reviews of the extension (hidden ones too), newest first",
)
def list_extension_reviews(
    request: HttpRequest, org_id: str, extension_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY
):
    _, extension, listing = _publisher(request, org_id, extension_id, "listing.view")
    if listing is None:
        return {"data": [], "next_cursor": None}
    rows, next_cursor = paginate(selectors.reviews_of_listing(listing), limit=limit, cursor=cursor)
    for row in rows:
        row.listing = listing
        listing.extension = extension
    return {"data": rows, "next_cursor": next_cursor}


@router.post(
    "/orgs/{org_id}/extensions/{extension_id}/reviews/{review_id}/reply",
    response=OwnReviewOut,
    summary="Reply publicly to a review of the extension (an empty text removes the reply)",
)
def reply_to_review(request: HttpRequest, org_id: str, extension_id: str, review_id: str, payload: ReviewReplyIn):
    _, extension, listing = _publisher(request, org_id, extension_id, "review.reply")
    review = selectors.get_review_of_listing(request.auth, listing, review_id, "review.reply")
    review = services.review_reply(principal=request.auth, review=review, text=payload.text)
    review.listing.extension = extension
    return review


@router.get("/orgs/{org_id}/publisher-profile", response=PublisherProfileOut, summary="Get the publisher profile")
def get_publisher_profile(request: HttpRequest, org_id: str):
    org = get_org_for_principal(request.auth, org_id, "listing.view")
    return _profile_out(org, selectors.publisher_profile_of(org))


@router.put(
    "/orgs/{org_id}/publisher-profile",
    response=PublisherProfileOut,
    summary="Replace the publisher profile shown in the storefront",
)
def put_publisher_profile(request: HttpRequest, org_id: str, payload: PublisherProfileIn):
    org = get_org_for_principal(request.auth, org_id, "listing.manage")
    profile = services.publisher_profile_update(
        principal=request.auth, org=org, about=payload.about, website=payload.website
    )
    return _profile_out(org, profile)


def _profile_out(org, profile) -> dict:
    return {
        "org_id": org.pk,
        "about": profile.about,
        "website": profile.website,
        "verified": selectors.is_verified_publisher(org),
    }


# --- customers: reviews ----------------------------------------------------------------------------
@router.get("/orgs/{org_id}/reviews", response=Page[OwnReviewOut], summary="List the organisation's reviews")
def list_org_reviews(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "org.view")
    rows, next_cursor = paginate(selectors.reviews_of_org(org), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.post(
    "/orgs/{org_id}/reviews",
    response={200: OwnReviewOut, 201: OwnReviewOut},
    summary="Rate and review an extension the organisation has (or had) installed",
    description="One review per organisation and extension: a second call replaces the first (200). Refused with "
    "403 `not_installed` when the organisation never installed the extension.",
)
def submit_review(request: HttpRequest, org_id: str, payload: ReviewSubmitIn):
    org = get_org_for_principal(request.auth, org_id, "review.create")
    extension = None
    if is_valid_id(payload.extension_id, "ext"):
        extension = Extension.objects.filter(pk=payload.extension_id, deleted_at__isnull=True).first()
    if extension is None:
        raise NotFound("No such listing.", param="extension_id")
    review, created = services.review_submit(
        principal=request.auth, org=org, extension=extension, rating=payload.rating, text=payload.text
    )
    review.listing.extension = extension
    return Status(201 if created else 200, review)


# --- platform staff --------------------------------------------------------------------------------
def _staff_listing_out(listing: Listing) -> dict:
    draft = selectors.draft_of(listing)
    return {
        "listing_id": listing.pk,
        "extension_id": listing.extension_id,
        "extension_key": listing.extension.key,
        "publisher": {
            "id": listing.org_id,
            "slug": listing.org.slug,
            "name": listing.org.name,
            "verified": bool(getattr(listing, "publisher_verified", False)),
        },
        "published_at": listing.published_at,
        "featured": listing.featured_at is not None,
        "draft": draft,
    }


@router.get(
    "/staff/listings",
    response=Page[StaffListingOut],
    summary="Listings by the state of their draft (staff); status=submitted is the review queue",
)
def staff_list_listings(
    request: HttpRequest,
    status: str = Query("submitted", description="editing | submitted | approved | rejected, or empty for all"),
    q: str = Query("", max_length=200, description="Extension id or name contains."),
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    get_platform_org_for_principal(request.auth, "marketplace.moderate")
    if status and status not in DraftStatus.values:
        raise ValidationFailed(f"The status is one of {', '.join(DraftStatus.values)}.", param="status")
    qs = Listing.objects.select_related("extension", "org", "draft").annotate(
        publisher_verified=selectors.verified_expression()
    )
    if status:
        qs = qs.filter(draft__status=status)
    if q:
        qs = qs.filter(Q(extension__key__icontains=q) | Q(name__icontains=q))
    rows, next_cursor = paginate(qs, limit=limit, cursor=cursor)
    return {"data": [_staff_listing_out(r) for r in rows], "next_cursor": next_cursor}


@router.get("/staff/listings/{listing_id}", response=StaffListingOut, summary="Get any listing with its draft (staff)")
def staff_get_listing(request: HttpRequest, listing_id: str):
    get_platform_org_for_principal(request.auth, "marketplace.moderate")
    return _staff_listing_out(selectors.get_staff_listing(listing_id))


@router.post(
    "/staff/listings/{listing_id}/decision",
    response=StaffListingOut,
    summary="Approve (publish) or reject a submitted listing draft, with a reason (staff)",
)
def staff_decide_listing(request: HttpRequest, listing_id: str, payload: ListingDecisionIn):
    get_platform_org_for_principal(request.auth, "marketplace.moderate")
    listing = selectors.get_staff_listing(listing_id)
    services.listing_decide(
        principal=request.auth, listing=listing, approve=payload.decision == "approve", reason=payload.reason
    )
    return _staff_listing_out(selectors.get_staff_listing(listing_id))


@router.post(
    "/staff/listings/{listing_id}/feature",
    response=StaffListingOut,
    summary="Feature a published listing on the storefront home, or stop (staff)",
)
def staff_feature_listing(request: HttpRequest, listing_id: str, payload: ListingFeatureIn):
    get_platform_org_for_principal(request.auth, "marketplace.moderate")
    listing = selectors.get_staff_listing(listing_id)
    services.listing_feature(principal=request.auth, listing=listing, featured=payload.featured)
    return _staff_listing_out(selectors.get_staff_listing(listing_id))


@router.post(
    "/staff/publishers/{publisher_id}/verification",
    response=PublisherVerificationOut,
    summary="Mark a publisher verified, or revoke it (staff)",
    description="Marking needs a verified domain (409 `domain_not_verified`). The badge shows while both hold.",
)
def staff_verify_publisher(request: HttpRequest, publisher_id: str, payload: PublisherVerificationIn):
    get_platform_org_for_principal(request.auth, "marketplace.moderate")
    org = selectors.get_staff_publisher(publisher_id)
    profile = services.publisher_verify(principal=request.auth, org=org, verified=payload.verified)
    domain_verified = Domain.objects.filter(org=org, verified_at__isnull=False).exists()
    return {
        "org_id": org.pk,
        "name": org.name,
        "slug": org.slug,
        "domain_verified": domain_verified,
        "staff_verified": profile.verified_at is not None,
        "verified": domain_verified and profile.verified_at is not None,
    }


@router.get("/staff/reviews", response=Page[StaffReviewOut], summary="Reviews with open abuse reports (staff)")
def staff_list_reviews(request: HttpRequest, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    get_platform_org_for_principal(request.auth, "marketplace.moderate")
    rows, next_cursor = paginate(selectors.staff_reported_reviews(), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.post(
    "/staff/reviews/{review_id}/moderation",
    response=StaffReviewOut,
    summary="Hide a review, restore a hidden one, or dismiss its reports (staff)",
)
def staff_moderate_review(request: HttpRequest, review_id: str, payload: ReviewModerationIn):
    get_platform_org_for_principal(request.auth, "marketplace.moderate")
    review = services.review_moderate(
        principal=request.auth,
        review=selectors.get_staff_review(review_id),
        action=payload.action,
        reason=payload.reason,
    )
    return selectors.get_staff_review(review.pk)
