"""The public storefront: home, search (htmx results as you type, a plain GET form without
JavaScript), listing pages with reviews, publisher profiles, and listing images.

No sign-in is needed to browse. Signed-in visitors also get, on a listing page, the install form
(their organisations where they may install), a request link (where they may not), the review
form (organisations that have or had it installed) and, for the publisher, reply forms. Every page
runs a fixed number of queries whatever the number of results (tests/listings/test_query_counts.py).
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_safe

from apps.core.errors import NotFound, PlazaError, ValidationFailed
from apps.listings import images, search, selectors, services
from apps.listings.models import Listing, ListingMedia, Pricing
from apps.orgs.policy import can
from apps.orgs.portal import form_error, page_of
from apps.orgs.selectors import get_org_for_principal, memberships_for_user, principal_from_request

PAGE_SIZE = 20
SORT_LABELS = (
    ("relevance", "Relevance"),
    ("installs", "Most installed"),
    ("rating", "Top rated"),
    ("newest", "Newest"),
)
SHA256 = re.compile(r"[0-9a-f]{64}")


def url_or(name: str, kwargs: dict, fallback: str, query: str = "") -> str:
    """The URL named ``name``, or ``fallback`` while that page does not exist (another part of the
    marketplace is built separately): a missing page must not break the listing page."""
    try:
        url = reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        url = fallback
    return f"{url}?{query}" if query else url


# --- home and search -------------------------------------------------------------------------------
@require_safe
def storefront(request):
    """Categories, featured listings (staff picks), the most installed and the newest."""
    ctx = {
        "categories": selectors.categories_with_counts(),
        "featured": selectors.featured_listings(),
        "popular": selectors.popular_listings(),
        "newest": selectors.newest_listings(),
        "sorts": SORT_LABELS,
        "pricings": Pricing.choices,
        "params": search.SearchParams(),
    }
    return render(request, "listings/home.html", ctx)


def _next_page_url(request, cursor: str | None) -> str:
    if not cursor:
        return ""
    query = request.GET.copy()
    query["cursor"] = cursor
    return f"{request.path}?{query.urlencode()}"


@require_safe
def storefront_search(request):
    """Results for ``?q=&category=&pricing=&verified=&min_rating=&sort=``; htmx requests (typing in
    the search box) get only the ``results`` partial. Unknown filter values are ignored."""
    get = request.GET
    params = search.clean_params(
        q=get.get("q", ""),
        category=get.get("category", "")[:40],
        pricing=get.get("pricing", "")[:10],
        verified=get.get("verified", "")[:5],
        min_rating=get.get("min_rating", "")[:5],
        sort=get.get("sort", "")[:10],
        strict=False,
    )
    try:
        rows, cursor = search.page(search.search(params), limit=PAGE_SIZE, cursor=get.get("cursor") or None)
    except ValidationFailed:  # a cursor that is not ours starts over
        rows, cursor = search.page(search.search(params), limit=PAGE_SIZE, cursor=None)
    ctx = {
        "listings": rows,
        "next_page": _next_page_url(request, cursor),
        "params": params,
        "categories": selectors.categories_with_counts(),
        "sorts": SORT_LABELS,
        "pricings": Pricing.choices,
    }
    template = "listings/search.html#results" if request.htmx else "listings/search.html"
    return render(request, template, ctx)


# --- a listing -------------------------------------------------------------------------------------
def listing_context(listing: Listing) -> dict:
    """What the listing page shows about the listing itself (also used by the publisher's preview)."""
    channels = selectors.listing_channels(listing.extension)
    primary = next((c for c in channels if c.channel == "stable"), channels[0] if channels else None)
    return {
        "listing": listing,
        "categories": listing.category_list
        if hasattr(listing, "category_list")
        else selectors.listing_categories(listing),
        "channels": channels,
        "primary": primary,
        "scopes": selectors.scope_lines(primary.current.scopes) if primary else [],
    }


def viewer_context(request, listing: Listing, reviews: list) -> dict:
    """What the signed-in visitor may do here, in a fixed number of queries."""
    principal = principal_from_request(request)
    if principal is None:
        return {"signed_in": False}
    extension = listing.extension
    memberships = list(memberships_for_user(request.user))
    for m in memberships:
        principal.remember_role(m.org_id, m.role)
    orgs = [m.org for m in memberships if not m.org.sandbox_of_id]
    installed = selectors.installations_by_org(extension, [o.pk for o in orgs])
    live = {org_id for org_id, rows in installed.items() if any(i.status != "uninstalled" for i in rows)}
    install_orgs, request_links, review_orgs = [], [], []
    for org in orgs:
        if org.pk in live:
            continue
        if can(principal, "installation.create", org):
            install_orgs.append(org)
        elif can(principal, "install_request.create", org):
            request_links.append(
                {
                    "org": org,
                    "url": url_or(
                        "install_request_new",
                        {"org_id": org.pk},
                        f"/orgs/{org.pk}/console/install-requests/new/",
                        f"extension={extension.pk}",
                    ),
                }
            )
    for org in orgs:
        if org.pk in installed and org.pk != extension.org_id and can(principal, "review.create", org):
            review_orgs.append(org)
    own_reviews = selectors.reviews_by_org(listing, [o.pk for o in review_orgs]) if review_orgs else {}
    return {
        "signed_in": True,
        "installed_in": [o for o in orgs if o.pk in live],
        "install_orgs": install_orgs,
        "install_url": url_or("install_start", {"extension_id": extension.pk}, f"/install/{extension.pk}/"),
        "request_links": request_links,
        "review_orgs": [{"org": o, "review": own_reviews.get(o.pk)} for o in review_orgs],
        "can_reply": can(principal, "review.reply", listing.org),
    }


def listing_detail(request, key: str):
    """The listing page. POST (signed in): ``op`` = review | reply | report."""
    try:
        listing = selectors.get_visible_listing(key)
    except NotFound:
        return render(request, "errors/404.html", {"message": "No such listing."}, status=404)
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
    error, status = None, 200
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            message = _act(request, listing)
            messages.success(request, message)
            return redirect(f"{request.path}#reviews")
        except PlazaError as exc:
            error = form_error(exc, ("rating", "text", "reason"))
            error["op"] = request.POST.get("op", "")
            error["review_id"] = request.POST.get("review_id", "")
            status = exc.status
    reviews, next_page = page_of(request, selectors.visible_reviews(listing), size=20)
    ctx = {
        **listing_context(listing),
        "reviews": reviews,
        "next_page": next_page,
        "error": error,
        **viewer_context(request, listing, reviews),
    }
    return render(request, "listings/detail.html", ctx, status=status)


def _act(request, listing: Listing) -> str:
    principal = principal_from_request(request)
    op = request.POST.get("op", "")
    if op == "review":
        org = get_org_for_principal(principal, request.POST.get("org_id", "")[:40], "review.create")
        try:
            rating = int(request.POST.get("rating", ""))
        except ValueError:
            raise ValidationFailed("Choose a rating from 1 to 5 stars.", param="rating") from None
        _, created = services.review_submit(
            principal=principal,
            org=org,
            extension=listing.extension,
            rating=rating,
            text=request.POST.get("text", "")[:10_000],
        )
        return f"Your review for {org.name} is {'published' if created else 'updated'}."
    review_id = request.POST.get("review_id", "")[:40]
    if op == "reply":
        get_org_for_principal(principal, listing.org_id, "review.reply")
        review = selectors.get_review_of_listing(principal, listing, review_id, "review.reply")
        services.review_reply(principal=principal, review=review, text=request.POST.get("text", "")[:10_000])
        return "Your reply is published."
    if op == "report":
        review = selectors.get_review_of_listing_public(listing, review_id)
        services.review_report(principal=principal, review=review, reason=request.POST.get("reason", "")[:2000])
        return "Thank you: platform staff will look at this review."
    raise ValidationFailed("Unknown action.")


# --- publishers ------------------------------------------------------------------------------------
@require_safe
def publisher_profile(request, slug: str):
    """A publisher's profile: its verification, about text, website and visible listings."""
    try:
        org = selectors.get_publisher(slug)
    except NotFound:
        return render(request, "errors/404.html", {"message": "No such publisher."}, status=404)
    rows, next_page = page_of(request, selectors.publisher_listings(org), size=PAGE_SIZE)
    profile = getattr(org, "publisher_profile", None)
    ctx = {"publisher": org, "profile": profile, "listings": rows, "next_page": next_page}
    return render(request, "listings/publisher.html", ctx)


# --- images ----------------------------------------------------------------------------------------
@require_safe
def media(request, sha256: str):
    """A listing image by digest: immutable (a new image has a new address), served as WebP with
    ``nosniff`` and a CSP that forbids everything, so a browser never treats it as a document."""
    if not SHA256.fullmatch(sha256) or not ListingMedia.objects.filter(sha256=sha256).exists():
        raise Http404("No such image.")
    try:
        handle = images.open_image(sha256)
    except (FileNotFoundError, OSError):
        raise Http404("No such image.") from None
    response = FileResponse(handle, content_type=images.CONTENT_TYPE)
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = f'inline; filename="{sha256[:16]}.{images.EXTENSION}"'
    return response
