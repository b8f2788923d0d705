"""The publisher's listing editor (draft, images, submission, profile) and its preview, rendered
exactly like the public listing page but from the draft, for the publisher only."""

from __future__ import annotations

import re

from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse

from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.extensions.selectors import get_extension_for_principal
from apps.listings import content as checks
from apps.listings import images, selectors, services
from apps.listings.markdown import render_markdown
from apps.listings.models import Category, Listing, ListingDraft, MediaKind, Pricing
from apps.listings.storefront import listing_context
from apps.orgs.policy import authorize
from apps.orgs.portal import form_error, org_context, org_page

FORM_FIELDS = (*checks.CONTENT_FIELDS, "file", "caption", "about", "website")


def _draft_or_defaults(extension, listing: Listing | None) -> ListingDraft:
    if listing is not None:
        return selectors.draft_of(listing)
    return ListingDraft(name=extension.name, tagline=extension.summary)


def _form_data(post) -> dict:
    return {
        "name": post.get("name", ""),
        "tagline": post.get("tagline", ""),
        "description": post.get("description", "")[: checks.MAX_DESCRIPTION + 1],
        "tags": post.get("tags", "")[:1000],
        "categories": post.getlist("categories")[:20],
        "docs_url": post.get("docs_url", ""),
        "support_url": post.get("support_url", ""),
        "privacy_url": post.get("privacy_url", ""),
        "pricing": post.get("pricing", ""),
        "pricing_text": post.get("pricing_text", ""),
    }


def _upload(request) -> bytes:
    upload = request.FILES.get("file")
    if upload is None:
        raise ValidationFailed("Choose an image file.", param="file")
    if upload.size is not None and upload.size > images.max_bytes():
        raise ValidationFailed(
            f"The image is over {images.max_bytes() // (1024 * 1024)} MiB.", code="image_too_large", param="file"
        )
    return upload.read(images.max_bytes() + 1)


def _act(request, principal, org, extension, listing) -> str:
    authorize(principal, "listing.manage", org)
    op = request.POST.get("op", "")
    if op == "save":
        services.listing_draft_update(principal=principal, extension=extension, data=_form_data(request.POST))
        return "Draft saved. Submit it for review when it is ready."
    if op == "submit":
        services.listing_draft_update(principal=principal, extension=extension, data=_form_data(request.POST))
        services.listing_submit(principal=principal, extension=extension)
        return "Submitted: platform staff review it before it goes live."
    if op in ("icon", "screenshot"):
        kind = MediaKind.ICON if op == "icon" else MediaKind.SCREENSHOT
        caption = request.POST.get("caption", "")[:500] if op == "screenshot" else ""
        services.listing_media_add(
            principal=principal, extension=extension, kind=kind, data=_upload(request), caption=caption
        )
        return "Icon uploaded." if op == "icon" else "Screenshot added."
    if op == "screenshot_remove":
        if listing is None:
            raise NotFound("No such screenshot.")
        media = selectors.get_media_for_listing(listing, request.POST.get("media_id", "")[:40])
        services.listing_screenshot_remove(principal=principal, listing=listing, media=media)
        return "Screenshot removed from the draft."
    if op == "icon_remove":
        if listing is not None:
            services.listing_icon_remove(principal=principal, listing=listing)
        return "Icon removed from the draft."
    if op == "profile":
        services.publisher_profile_update(
            principal=principal,
            org=org,
            about=request.POST.get("about", "")[:2000],
            website=request.POST.get("website", "")[:600],
        )
        return "Publisher profile saved."
    raise ValidationFailed("Unknown action.")


@org_page("listing.view")
def listing_edit(request, org, principal, extension_id: str):
    """Edit the listing's draft, upload images, submit it for review, edit the publisher profile."""
    extension, listing = selectors.get_listing_for_principal(principal, org, extension_id, "listing.view")
    error, status, form = None, 200, None
    if request.method == "POST":
        try:
            message = _act(request, principal, org, extension, listing)
            messages.success(request, message)
            return redirect("listing_edit", org_id=org.pk, extension_id=extension.pk)
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = form_error(exc, FORM_FIELDS)
            error["details"] = exc.details or []
            status = exc.status
            form = _form_data(request.POST) if request.POST.get("op") in ("save", "submit") else None
        listing = selectors.listing_of(extension)
    draft = _draft_or_defaults(extension, listing)
    if form is not None:  # show what was typed, not what is stored
        for name, value in form.items():
            setattr(draft, name, [t for t in re.split(r"[,\s]+", value) if t] if name == "tags" else value)
    ctx = org_context(
        request,
        org,
        principal,
        extension=extension,
        listing=listing,
        draft=draft,
        problems=checks.submission_problems(draft) if listing else [],
        visible=bool(listing and selectors.is_visible(listing)),
        all_categories=list(Category.objects.all()),
        pricings=Pricing.choices,
        profile=selectors.publisher_profile_of(org),
        verified=selectors.is_verified_publisher(org),
        error=error,
        max_screenshots=checks.MAX_SCREENSHOTS,
    )
    return render(request, "listings/edit.html", ctx, status=status)


def draft_as_listing(extension, listing: Listing | None, draft: ListingDraft, org) -> Listing:
    """An unsaved listing holding the draft's content, for rendering the preview."""
    preview = Listing(extension=extension, org=org)
    for name in (
        "name", "tagline", "description", "icon", "screenshots", "tags", "docs_url", "support_url", "privacy_url",
        "pricing", "pricing_text",
    ):  # fmt: skip
        setattr(preview, name, getattr(draft, name))
    preview.description_html = render_markdown(draft.description)
    if listing is not None:
        preview.pk = listing.pk
        preview.install_count, preview.rating_avg, preview.rating_count = (
            listing.install_count,
            listing.rating_avg,
            listing.rating_count,
        )
    preview.publisher_verified = selectors.is_verified_publisher(org)
    known = {c.slug: c for c in Category.objects.filter(slug__in=draft.categories or [])}
    preview.category_list = [known[s] for s in draft.categories or [] if s in known]
    return preview


@org_page("listing.view")
def listing_preview(request, org, principal, extension_id: str):
    """The draft, rendered as the storefront would show it (without reviews or install forms)."""
    extension = get_extension_for_principal(principal, org, extension_id, "listing.view")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    listing = selectors.listing_of(extension)
    draft = _draft_or_defaults(extension, listing)
    preview = draft_as_listing(extension, listing, draft, org)
    ctx = {
        **listing_context(preview),
        "preview": True,
        "draft": draft,
        "edit_url": reverse("listing_edit", kwargs={"org_id": org.pk, "extension_id": extension.pk}),
        "reviews": [],
        "signed_in": False,
    }
    return render(request, "listings/detail.html", ctx)
