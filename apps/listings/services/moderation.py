"""Platform staff's side: approve or reject listing drafts, feature listings, verify publishers,
moderate reviews. Callers check ``marketplace.moderate`` on the platform organisation first
(``get_platform_org_for_principal``); each decision is audited in the affected organisation."""

from __future__ import annotations

from django.db import transaction

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.errors import Conflict, ValidationFailed
from apps.listings import content as checks
from apps.listings.markdown import render_markdown
from apps.listings.models import (
    DraftStatus,
    Listing,
    ListingCategory,
    ListingDraft,
    PublisherProfile,
    Review,
    ReviewReport,
)
from apps.listings.services.counters import listing_rating_refresh, listing_search_refresh, search_keywords_of
from apps.listings.services.listings import actor
from apps.orgs.models import Domain, Organization

COPIED_FIELDS = (
    "name", "tagline", "description", "icon", "screenshots", "tags", "docs_url", "support_url", "privacy_url",
    "pricing", "pricing_text",
)  # fmt: skip
REVIEW_ACTIONS = ("hide", "restore", "dismiss")
AUDIT_ACTIONS = {"hide": "review.hidden", "restore": "review.restored", "dismiss": "review.reports_dismissed"}


def listing_decide(*, principal, listing: Listing, approve: bool, reason: str = "") -> ListingDraft:
    """Approve the submitted draft (its content becomes the live listing, published from then on)
    or reject it with a reason the publisher sees."""
    reason = checks.clean_text(reason, "reason", max_length=2000)
    if not approve and not reason:
        raise ValidationFailed("Say why the listing is rejected: the publisher sees the reason.", param="reason")
    with transaction.atomic():
        draft = ListingDraft.objects.select_for_update().filter(listing_id=listing.pk).first()
        if draft is None or draft.status != DraftStatus.SUBMITTED:
            raise Conflict("There is no submitted draft of this listing to decide on.", code="draft_not_submitted")
        now = clock.now()
        draft.status = DraftStatus.APPROVED if approve else DraftStatus.REJECTED
        draft.decided_at, draft.decided_by, draft.decision_reason = now, actor(principal), reason
        draft.save(update_fields=["status", "decided_at", "decided_by", "decision_reason"])
        live = Listing.objects.select_for_update().select_related("org", "extension").get(pk=listing.pk)
        if approve:
            _publish(live, draft, now)
        audit_record(
            action="listing.approved" if approve else "listing.rejected",
            org_id=live.org_id,
            target=live,
            changes={"reason": reason} if reason else {},
        )
    return draft


def _publish(live: Listing, draft: ListingDraft, now) -> None:
    for name in COPIED_FIELDS:
        setattr(live, name, getattr(draft, name))
    live.description_html = render_markdown(live.description)
    live.search_keywords = search_keywords_of(live, draft.categories)
    live.published_at = live.published_at or now
    live.updated_at = now
    live.save(update_fields=[*COPIED_FIELDS, "description_html", "search_keywords", "published_at", "updated_at"])
    ListingCategory.objects.filter(listing=live).delete()
    ListingCategory.objects.bulk_create([ListingCategory(listing=live, category_id=s) for s in draft.categories])
    listing_search_refresh(listing=live)


def listing_feature(*, principal, listing: Listing, featured: bool) -> Listing:
    """Show (or stop showing) a published listing among the storefront's featured ones."""
    with transaction.atomic():
        live = Listing.objects.select_for_update().get(pk=listing.pk)
        if featured and live.published_at is None:
            raise Conflict("Only a published listing can be featured.", code="listing_not_published")
        if featured == (live.featured_at is not None):
            return live
        live.featured_at = clock.now() if featured else None
        live.save(update_fields=["featured_at"])
        audit_record(action="listing.featured" if featured else "listing.unfeatured", org_id=live.org_id, target=live)
    return live


def publisher_verify(*, principal, org: Organization, verified: bool) -> PublisherProfile:
    """Mark a publisher verified (it must have a verified domain) or revoke the mark. The badge
    shows only while both hold: removing the domain hides it without staff action."""
    with transaction.atomic():
        profile, _ = PublisherProfile.objects.select_for_update().get_or_create(org=org)
        if verified and not Domain.objects.filter(org=org, verified_at__isnull=False).exists():
            raise Conflict(
                "The publisher has no verified domain; it must verify one before it can be marked verified.",
                code="domain_not_verified",
            )
        if verified == (profile.verified_at is not None):
            return profile
        profile.verified_at = clock.now() if verified else None
        profile.verified_by = actor(principal) if verified else None
        profile.save(update_fields=["verified_at", "verified_by"])
        audit_record(
            action="publisher.verified" if verified else "publisher.verification_revoked",
            org_id=org.pk,
            target_type="publisherprofile",
            target_id=org.pk,
            target_label=org.name,
        )
    return profile


def review_moderate(*, principal, review: Review, action: str, reason: str = "") -> Review:
    """``hide`` a review (it leaves the storefront and the rating; its reports are resolved),
    ``restore`` a hidden one, or ``dismiss`` its reports and leave it shown."""
    if action not in REVIEW_ACTIONS:
        raise ValidationFailed(f"The action is one of {', '.join(REVIEW_ACTIONS)}.", param="action")
    reason = checks.clean_text(reason, "reason", max_length=1000)
    if action == "hide" and not reason:
        raise ValidationFailed("Say why the review is hidden: its authors see the reason.", param="reason")
    with transaction.atomic():
        locked = Review.objects.select_for_update().select_related("listing").get(pk=review.pk)
        now = clock.now()
        if action == "hide":
            locked.hidden_at, locked.hidden_reason, locked.hidden_by = now, reason, actor(principal)
        elif action == "restore":
            locked.hidden_at, locked.hidden_reason, locked.hidden_by = None, "", None
        if action in ("hide", "dismiss"):
            ReviewReport.objects.filter(review=locked, resolved_at__isnull=True).update(
                resolved_at=now, resolution="hidden" if action == "hide" else "dismissed"
            )
        locked.open_reports = ReviewReport.objects.filter(review=locked, resolved_at__isnull=True).count()
        locked.save(update_fields=["hidden_at", "hidden_reason", "hidden_by", "open_reports"])
        listing_rating_refresh(listing=locked.listing)
        audit_record(
            action=AUDIT_ACTIONS[action],
            org_id=locked.org_id,
            target=locked,
            changes={"reason": reason} if reason else {},
        )
    return locked
