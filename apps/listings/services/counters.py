"""Denormalised figures of a listing, recomputed from their sources (never incremented blindly, so
a lost or repeated signal cannot make them drift), and its search document."""

from __future__ import annotations

from django.db.models import Avg, Count

from apps.installs.models import Installation, InstallationStatus
from apps.listings.models import Category, Listing, Review


def install_count_of(extension_id: str) -> int:
    """Live installations (active or blocked) outside sandbox tenants."""
    return (
        Installation.objects.filter(extension_id=extension_id, org__sandbox_of__isnull=True)
        .exclude(status=InstallationStatus.UNINSTALLED)
        .count()
    )


def listing_install_count_refresh(*, extension_id: str) -> int | None:
    """Recount the installations of ``extension_id`` onto its listing (if it has one)."""
    count = install_count_of(extension_id)
    updated = Listing.objects.filter(extension_id=extension_id).update(install_count=count)
    return count if updated else None


def listing_rating_refresh(*, listing: Listing) -> Listing:
    """Average and count of the listing's visible (not hidden) reviews."""
    figures = Review.objects.filter(listing=listing, hidden_at__isnull=True).aggregate(avg=Avg("rating"), n=Count("id"))
    listing.rating_avg = round(float(figures["avg"] or 0), 2)
    listing.rating_count = figures["n"]
    Listing.objects.filter(pk=listing.pk).update(rating_avg=listing.rating_avg, rating_count=listing.rating_count)
    return listing


def search_keywords_of(listing: Listing, category_slugs: list[str]) -> str:
    names = dict(Category.objects.filter(slug__in=category_slugs).values_list("slug", "name"))
    words = [*listing.tags, *(names.get(s, s) for s in category_slugs), listing.org.name, listing.extension.key]
    return " ".join(w for w in words if w)


def listing_search_refresh(*, listing: Listing) -> None:
    """Write the listing's search vector from its columns (PostgreSQL; a no-op elsewhere)."""
    from apps.listings.search import search_vector_expression, uses_full_text

    if uses_full_text():
        Listing.objects.filter(pk=listing.pk).update(search_vector=search_vector_expression())
