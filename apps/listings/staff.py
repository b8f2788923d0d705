"""The staff console of the marketplace (``marketplace.moderate`` on the platform organisation):
the queue of submitted listing drafts (approve / reject with a reason), featured listings,
publisher verification, and reported reviews."""

from __future__ import annotations

import functools

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render

from apps.core.errors import Conflict, NotFound, PermissionDenied, Unauthenticated, ValidationFailed
from apps.listings import selectors, services
from apps.listings.models import DraftStatus
from apps.listings.portal import draft_as_listing
from apps.listings.storefront import listing_context
from apps.orgs.portal import form_error, page_of
from apps.orgs.selectors import get_platform_org_for_principal, principal_from_request

TABS = (
    ("queue", "Waiting for review"),
    ("listings", "Published listings"),
    ("publishers", "Publishers"),
    ("reviews", "Reported reviews"),
)
STAFF_ACTION = "marketplace.moderate"


def staff_page(view):
    """Platform staff allowed to moderate the marketplace; others get 403 (a platform page, not a
    tenant's resource)."""

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        principal = principal_from_request(request)
        try:
            get_platform_org_for_principal(principal, STAFF_ACTION)
            return view(request, principal, *args, **kwargs)
        except NotFound as exc:
            return render(request, "errors/404.html", {"message": exc.message}, status=404)
        except PermissionDenied as exc:
            return render(request, "errors/403.html", {"message": exc.message, "code": exc.code}, status=403)
        except Unauthenticated:
            logout(request)
            return redirect_to_login(request.get_full_path())

    return wrapper


def _act(request, principal) -> str:
    op = request.POST.get("op", "")
    reason = request.POST.get("reason", "")[:3000]
    if op in ("approve", "reject"):
        listing = selectors.get_staff_listing(request.POST.get("listing_id", "")[:40])
        services.listing_decide(principal=principal, listing=listing, approve=op == "approve", reason=reason)
        return f"{listing.extension.key}: {'approved and published' if op == 'approve' else 'rejected'}."
    if op in ("feature", "unfeature"):
        listing = selectors.get_staff_listing(request.POST.get("listing_id", "")[:40])
        services.listing_feature(principal=principal, listing=listing, featured=op == "feature")
        return f"{listing.extension.key} is {'featured' if op == 'feature' else 'no longer featured'}."
    if op in ("verify", "unverify"):
        org = selectors.get_staff_publisher(request.POST.get("publisher_id", "")[:40])
        services.publisher_verify(principal=principal, org=org, verified=op == "verify")
        return f"{org.name} is {'marked verified' if op == 'verify' else 'no longer marked verified'}."
    if op in ("hide", "restore", "dismiss"):
        review = selectors.get_staff_review(request.POST.get("review_id", "")[:40])
        services.review_moderate(principal=principal, review=review, action=op, reason=reason)
        return {"hide": "Review hidden.", "restore": "Review shown again.", "dismiss": "Reports dismissed."}[op]
    raise ValidationFailed("Unknown action.")


@staff_page
def staff_listings(request, principal):
    """One page, four tabs; htmx requests get only the ``rows`` partial of the current tab."""
    tab = request.GET.get("tab", "queue")
    if tab not in dict(TABS):
        tab = "queue"
    q = request.GET.get("q", "").replace("\x00", "").strip()[:200]
    error, status = None, 200
    if request.method == "POST":
        try:
            messages.success(request, _act(request, principal))
            return redirect(f"{request.path}?tab={tab}")
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = form_error(exc, ("reason",))
            status = exc.status
    if tab == "queue":
        rows, next_page = page_of(request, selectors.staff_drafts(DraftStatus.SUBMITTED, q), newest_first=False)
    elif tab == "listings":
        rows, next_page = page_of(request, selectors.staff_listings(q))
    elif tab == "publishers":
        rows, next_page = page_of(request, selectors.staff_publishers(q))
    else:
        rows, next_page = page_of(request, selectors.staff_reported_reviews())
    ctx = {"tab": tab, "tabs": TABS, "rows": rows, "next_page": next_page, "q": q, "error": error}
    template = "listings/staff.html#rows" if request.htmx else "listings/staff.html"
    return render(request, template, ctx, status=status)


@staff_page
def staff_listing(request, principal, listing_id: str):
    """One listing's submitted draft beside what is live, rendered as the storefront would, with
    the decision form."""
    listing = selectors.get_staff_listing(listing_id)
    error, status = None, 200
    if request.method == "POST":
        try:
            messages.success(request, _act(request, principal))
            return redirect("staff_listing", listing_id=listing.pk)
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = form_error(exc, ("reason",))
            status = exc.status
            listing = selectors.get_staff_listing(listing_id)
    draft = selectors.draft_of(listing)
    preview = draft_as_listing(listing.extension, listing, draft, listing.org)
    changed = [
        name
        for name in ("name", "tagline", "description", "icon", "screenshots", "tags", "docs_url", "support_url",
                     "privacy_url", "pricing", "pricing_text")
        if getattr(listing, name) != getattr(draft, name)
    ]  # fmt: skip
    ctx = {
        **listing_context(preview),
        "staff_listing": listing,
        "draft": draft,
        "changed": changed if listing.published_at else [],
        "error": error,
        "reason": request.POST.get("reason", "") if error else "",
    }
    return render(request, "listings/staff_listing.html", ctx, status=status)
