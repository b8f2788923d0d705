"""The publisher's side of a listing: its draft, images, submission for review, and profile."""

from __future__ import annotations

from django.db import transaction

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.extensions.models import Extension
from apps.listings import content as checks
from apps.listings.images import process_image, store_image
from apps.listings.models import DraftStatus, Listing, ListingDraft, ListingMedia, MediaKind, PublisherProfile
from apps.listings.services.counters import listing_install_count_refresh
from apps.orgs.models import Organization


def actor(principal):
    return principal.user if principal is not None and principal.kind == "user" else None


def _newest_manifest(extension: Extension) -> dict:
    version = extension.versions.order_by("-created_at", "-id").only("manifest").first()
    manifest = version.manifest if version is not None else {}
    return manifest if isinstance(manifest, dict) else {}


def listing_ensure(*, principal, extension: Extension) -> Listing:
    """The extension's listing, created (unpublished, with a draft prefilled from the extension and
    its newest manifest) the first time its publisher edits it."""
    if extension.deleted_at is not None:
        raise Conflict("This extension was deleted.", code="extension_deleted")
    existing = Listing.objects.filter(extension=extension).select_related("draft").first()
    if existing is not None:
        return existing
    manifest = _newest_manifest(extension)
    description = manifest.get("description") if isinstance(manifest.get("description"), str) else ""
    with transaction.atomic():
        listing, created = Listing.objects.get_or_create(
            extension=extension, defaults={"org_id": extension.org_id, "name": extension.name}
        )
        if created:
            ListingDraft.objects.create(
                listing=listing,
                name=extension.name,
                tagline=extension.summary,
                description=description[: checks.MAX_DESCRIPTION],
                updated_by=actor(principal),
            )
            audit_record(
                action="listing.created", org_id=extension.org_id, target=listing, changes={"key": extension.key}
            )
    if created:
        listing_install_count_refresh(extension_id=extension.pk)
    return Listing.objects.select_related("draft").get(pk=listing.pk)


def _locked_draft(listing: Listing) -> ListingDraft:
    return ListingDraft.objects.select_for_update().get(listing=listing)


def _reopen(draft: ListingDraft) -> list[str]:
    """An edited draft needs a new submission: staff approve exactly what they reviewed."""
    if draft.status == DraftStatus.EDITING:
        return []
    draft.status = DraftStatus.EDITING
    return ["status"]


def listing_draft_update(*, principal, extension: Extension, data: dict) -> ListingDraft:
    """Replace the draft's text, links, tags, categories and pricing (images are uploaded apart)."""
    cleaned = checks.clean_content(data)
    listing = listing_ensure(principal=principal, extension=extension)
    with transaction.atomic():
        draft = _locked_draft(listing)
        changed = [name for name, value in cleaned.items() if getattr(draft, name) != value]
        for name, value in cleaned.items():
            setattr(draft, name, value)
        fields = [*cleaned, *(_reopen(draft) if changed else []), "updated_at", "updated_by"]
        draft.updated_at, draft.updated_by = clock.now(), actor(principal)
        draft.save(update_fields=fields)
        if changed:
            audit_record(
                action="listing.draft_updated", org_id=listing.org_id, target=listing, changes={"fields": changed}
            )
    draft.listing = listing
    return draft


def listing_submit(*, principal, extension: Extension) -> ListingDraft:
    """Hand the draft to platform staff. Submitting a draft already waiting changes nothing."""
    listing = listing_ensure(principal=principal, extension=extension)
    with transaction.atomic():
        draft = _locked_draft(listing)
        if draft.status == DraftStatus.SUBMITTED:
            draft.listing = listing
            return draft
        problems = checks.submission_problems(draft)
        if problems:
            raise ValidationFailed(
                "The listing is not ready for review: " + " ".join(p["message"] for p in problems),
                code="listing_incomplete",
                param=problems[0]["param"],
                details=problems,
            )
        draft.status, draft.submitted_at, draft.submitted_by = DraftStatus.SUBMITTED, clock.now(), actor(principal)
        draft.save(update_fields=["status", "submitted_at", "submitted_by"])
        audit_record(action="listing.submitted", org_id=listing.org_id, target=listing)
    draft.listing = listing
    return draft


def listing_media_add(*, principal, extension: Extension, kind: str, data: bytes, caption: str = "") -> ListingMedia:
    """Validate, clean and store an icon (replacing the draft's) or a screenshot (appended)."""
    caption = checks.clean_line(caption, "caption", max_length=140)
    image = process_image(data, kind)  # before any lock: decoding is the slow part
    listing = listing_ensure(principal=principal, extension=extension)
    store_image(image)
    with transaction.atomic():
        draft = _locked_draft(listing)
        if kind == MediaKind.SCREENSHOT and len(draft.screenshots) >= checks.MAX_SCREENSHOTS:
            raise Conflict(
                f"A listing has at most {checks.MAX_SCREENSHOTS} screenshots; remove one first.",
                code="too_many_screenshots",
            )
        media = ListingMedia.objects.create(
            listing=listing,
            kind=kind,
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            size_bytes=len(image.data),
            created_by=actor(principal),
        )
        entry = {"id": media.pk, "sha256": media.sha256, "width": media.width, "height": media.height}
        if kind == MediaKind.ICON:
            draft.icon = entry
            fields = ["icon"]
        else:
            draft.screenshots = [*draft.screenshots, {**entry, "caption": caption}]
            fields = ["screenshots"]
        draft.updated_at, draft.updated_by = clock.now(), actor(principal)
        draft.save(update_fields=[*fields, *_reopen(draft), "updated_at", "updated_by"])
        audit_record(action=f"listing.{kind}_added", org_id=listing.org_id, target=listing, changes={"media": media.pk})
    media.caption = caption
    return media


def listing_screenshot_remove(*, principal, listing: Listing, media: ListingMedia) -> None:
    """Take a screenshot out of the draft (the live listing keeps showing it until the next approval)."""
    with transaction.atomic():
        draft = _locked_draft(listing)
        kept = [s for s in draft.screenshots if s.get("id") != media.pk]
        if len(kept) == len(draft.screenshots):
            raise NotFound("No such screenshot in the draft.")
        draft.screenshots = kept
        draft.updated_at, draft.updated_by = clock.now(), actor(principal)
        draft.save(update_fields=["screenshots", *_reopen(draft), "updated_at", "updated_by"])
        audit_record(
            action="listing.screenshot_removed", org_id=listing.org_id, target=listing, changes={"media": media.pk}
        )


def listing_icon_remove(*, principal, listing: Listing) -> None:
    with transaction.atomic():
        draft = _locked_draft(listing)
        if draft.icon is None:
            return
        draft.icon = None
        draft.updated_at, draft.updated_by = clock.now(), actor(principal)
        draft.save(update_fields=["icon", *_reopen(draft), "updated_at", "updated_by"])
        audit_record(action="listing.icon_removed", org_id=listing.org_id, target=listing)


def publisher_profile_update(*, principal, org: Organization, about: str = "", website: str = "") -> PublisherProfile:
    """The publisher's storefront profile text and website (https)."""
    about = checks.clean_text(about, "about", max_length=1000)
    website = checks.clean_https_url(website, "website")
    with transaction.atomic():
        profile, _ = PublisherProfile.objects.select_for_update().get_or_create(org=org)
        changed = [name for name, value in (("about", about), ("website", website)) if getattr(profile, name) != value]
        profile.about, profile.website, profile.updated_at = about, website, clock.now()
        profile.save(update_fields=["about", "website", "updated_at"])
        if changed:
            audit_record(
                action="publisher_profile.updated",
                org_id=org.pk,
                target_type="publisherprofile",
                target_id=org.pk,
                target_label=org.name,
                changes={"fields": changed},
            )
    return profile
