"""Ratings and reviews: written by an organisation that has (or had) the extension installed, one
per organisation (editable); replies by the publisher; abuse reports by signed-in people."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.extensions.models import Extension
from apps.installs.models import Installation
from apps.listings import content as checks
from apps.listings.models import Review, ReviewReport
from apps.listings.selectors import visible_listings
from apps.listings.services.counters import listing_rating_refresh
from apps.listings.services.listings import actor
from apps.orgs.models import Organization

MAX_REVIEW = 5000
MAX_REPLY = 3000


def _rating(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValidationFailed("The rating is a whole number from 1 to 5.", param="rating")
    return value


def review_eligibility(org: Organization, extension: Extension) -> str | None:
    """Why ``org`` may not review ``extension`` (an error code), or None when it may."""
    if org.sandbox_of_id:
        return "sandbox_cannot_review"
    if org.pk == extension.org_id:
        return "own_extension"
    # Any installation counts, uninstalled ones too: a former customer's opinion is still real.
    if not Installation.objects.filter(org=org, extension=extension).exists():
        return "not_installed"
    return None


_REFUSALS = {
    "sandbox_cannot_review": "A sandbox tenant cannot review extensions.",
    "own_extension": "A publisher cannot review its own extension.",
    "not_installed": "Only organisations that have installed this extension can review it.",
}


def review_submit(*, principal, org: Organization, extension: Extension, rating, text: str = "") -> tuple[Review, bool]:
    """The organisation's review of ``extension``: created, or its earlier one replaced (one per
    organisation). Returns (review, created). The caller authorised ``review.create`` on ``org``."""
    rating = _rating(rating)
    text = checks.clean_text(text, "text", max_length=MAX_REVIEW)
    listing = visible_listings().filter(extension=extension).first()
    if listing is None:
        raise NotFound("No such listing.", param="extension_id")
    refusal = review_eligibility(org, extension)
    if refusal:
        raise PermissionDenied(_REFUSALS[refusal], code=refusal)
    try:
        with transaction.atomic():
            review = Review.objects.select_for_update().filter(listing=listing, org=org).first()
            created = review is None
            now = clock.now()
            if created:
                review = Review.objects.create(
                    listing=listing, org=org, rating=rating, text=text, created_by=actor(principal), updated_at=now
                )
            else:
                review.rating, review.text, review.updated_at = rating, text, now
                review.save(update_fields=["rating", "text", "updated_at"])
            listing_rating_refresh(listing=listing)
            audit_record(
                action="review.created" if created else "review.updated",
                org_id=org.pk,
                target=review,
                changes={"extension": extension.key, "rating": rating},
            )
    except IntegrityError:  # two first reviews at once: the other one won
        raise Conflict("The organisation's review was written at the same time; try again.") from None
    review.listing = listing
    return review, created


def review_reply(*, principal, review: Review, text: str) -> Review:
    """The publisher's public reply to a review (an empty text removes it). The caller authorised
    ``review.reply`` on the publisher organisation."""
    text = checks.clean_text(text, "text", max_length=MAX_REPLY)
    with transaction.atomic():
        locked = Review.objects.select_for_update().select_related("listing").get(pk=review.pk)
        locked.reply_text = text
        locked.reply_at = clock.now() if text else None
        locked.reply_by = actor(principal) if text else None
        locked.save(update_fields=["reply_text", "reply_at", "reply_by"])
        audit_record(
            action="review.replied" if text else "review.reply_removed",
            org_id=locked.listing.org_id,
            target=locked,
        )
    return locked


def review_report(*, principal, review: Review, reason: str = "") -> ReviewReport:
    """A signed-in person reports a review to platform staff (once per person and review)."""
    if principal is None or principal.kind != "user":
        raise PermissionDenied("Only people can report reviews.", code="users_only")
    reason = checks.clean_text(reason, "reason", max_length=1000)
    if review.hidden_at is not None:
        raise NotFound("No such review.")
    try:
        with transaction.atomic():
            report = ReviewReport.objects.create(review=review, reporter=principal.user, reason=reason)
            locked = Review.objects.select_for_update().get(pk=review.pk)
            locked.open_reports = ReviewReport.objects.filter(review=locked, resolved_at__isnull=True).count()
            locked.save(update_fields=["open_reports"])
            # The platform's chain: the reporter's identity is not the publisher's or reviewer's business.
            audit_record(action="review.reported", target=locked, changes={"report": report.pk})
    except IntegrityError:
        raise Conflict("You have already reported this review.", code="already_reported") from None
    return report
