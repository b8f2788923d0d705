"""Storefront search: relevance ranking, filters and sort over the visible listings.

PostgreSQL: full-text search over ``Listing.search_vector``, a stored ``tsvector`` (English
stemming) written when a listing is published, weighted name (A) > tagline (B) > tags, category
names, publisher and key (C) > description (D), GIN-indexed (migration 0001); every word of the
query must match, the last one also as a prefix (results update while someone types); ranked by
``ts_rank``, then by install count.

SQLite (and any other database): the same contract without an index. Every word must occur in one
of the fields (case-insensitive substring); the score adds 8 for each word found in the name, 4
in the tagline, 2 in the keywords and 1 in the description, so the same fields win.

Pagination is by offset, carried in an opaque cursor (relevance order has no stable key to seek
on); offsets stop at ``MAX_OFFSET``, far past any page a person reads.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Case, F, FloatField, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce

from apps.core.errors import ValidationFailed
from apps.listings.models import Category, Listing, Pricing
from apps.listings.selectors import visible_listings

SORTS = ("relevance", "installs", "rating", "newest")
MAX_TERMS = 8
MAX_QUERY = 200
MAX_OFFSET = 10_000
CONFIG = "english"
_WORD = re.compile(r"\w+", re.UNICODE)
# SQLite fallback weights: name > tagline > keywords (tags, categories, publisher) > description.
WEIGHTS = (("name", 8), ("tagline", 4), ("search_keywords", 2), ("description", 1))


@dataclass
class SearchParams:
    q: str = ""
    category: str = ""
    pricing: str = ""
    verified: bool | None = None
    min_rating: float | None = None
    sort: str = "relevance"
    publisher_id: str = ""


def clean_params(
    *,
    q: str = "",
    category: str = "",
    pricing: str = "",
    verified=None,
    min_rating=None,
    sort: str = "",
    strict: bool = True,
) -> SearchParams:
    """Checked search parameters. ``strict`` (the API) refuses unknown values with a 400; the page
    (not strict) drops them, so a stale bookmark still shows results."""

    def bad(message: str, param: str):
        if strict:
            raise ValidationFailed(message, param=param)

    # PostgreSQL refuses NUL in a query parameter: it is never part of a valid value anyway.
    q = (q or "").replace("\x00", "")[:MAX_QUERY].strip()
    category = (category or "").replace("\x00", "").strip()
    if category and not Category.objects.filter(slug=category).exists():
        bad("Unknown category.", "category")
        category = ""
    pricing = (pricing or "").replace("\x00", "").strip()
    if pricing and pricing not in Pricing.values:
        bad(f"pricing is one of {', '.join(Pricing.values)}.", "pricing")
        pricing = ""
    if isinstance(verified, str):
        verified = {"true": True, "1": True, "on": True, "yes": True, "false": False, "0": False, "": None}.get(
            verified.strip().lower(), "bad"
        )
        if verified == "bad":
            bad("verified is true or false.", "verified")
            verified = None
    if isinstance(min_rating, str):
        try:
            min_rating = float(min_rating) if min_rating.strip() else None
        except ValueError:
            bad("min_rating is a number from 1 to 5.", "min_rating")
            min_rating = None
    if min_rating is not None and not (1 <= min_rating <= 5):
        bad("min_rating is a number from 1 to 5.", "min_rating")
        min_rating = None
    sort = (sort or "relevance").strip()
    if sort not in SORTS:
        bad(f"sort is one of {', '.join(SORTS)}.", "sort")
        sort = "relevance"
    return SearchParams(q=q, category=category, pricing=pricing, verified=verified, min_rating=min_rating, sort=sort)


def terms_of(q: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(q)][:MAX_TERMS]


def uses_full_text() -> bool:
    return connection.vendor == "postgresql"


def search_vector_expression():
    """What ``Listing.search_vector`` holds (PostgreSQL), from the listing's own columns."""
    return (
        SearchVector("name", weight="A", config=CONFIG)
        + SearchVector("tagline", weight="B", config=CONFIG)
        + SearchVector("search_keywords", weight="C", config=CONFIG)
        + SearchVector("description", weight="D", config=CONFIG)
    )


def _tsquery(terms: list[str]) -> str:
    # Each term quoted as a lexeme (only word characters reach here, so nothing can break out of
    # the quotes); the last also matches as a prefix.
    parts = [f"'{t}'" for t in terms]
    parts[-1] += ":*"
    return " & ".join(parts)


def _with_text(qs: QuerySet[Listing], terms: list[str]) -> QuerySet[Listing]:
    if uses_full_text():
        query = SearchQuery(_tsquery(terms), search_type="raw", config=CONFIG)
        return qs.filter(search_vector=query).annotate(
            relevance=SearchRank(F("search_vector"), query, cover_density=False)
        )
    score = Value(0, output_field=IntegerField())
    for term in terms:
        matches = Q()
        for field, weight in WEIGHTS:
            lookup = Q(**{f"{field}__icontains": term})
            matches |= lookup
            score = score + Case(When(lookup, then=Value(weight)), default=Value(0), output_field=IntegerField())
        qs = qs.filter(matches)
    return qs.annotate(relevance=Coalesce(score, Value(0), output_field=FloatField()))


def search(params: SearchParams) -> QuerySet[Listing]:
    """The visible listings matching ``params``, in the requested order."""
    qs = visible_listings()
    if params.publisher_id:
        qs = qs.filter(org_id=params.publisher_id)
    if params.category:
        qs = qs.filter(categories__slug=params.category)
    if params.pricing:
        qs = qs.filter(pricing=params.pricing)
    if params.verified is True:
        qs = qs.filter(publisher_verified=True)
    elif params.verified is False:
        qs = qs.filter(publisher_verified=False)
    if params.min_rating is not None:
        qs = qs.filter(rating_count__gt=0, rating_avg__gte=params.min_rating)
    terms = terms_of(params.q)
    if terms:
        qs = _with_text(qs, terms)
    order = {
        "installs": ["-install_count", "-rating_avg", "-id"],
        "rating": ["-rating_avg", "-rating_count", "-install_count", "-id"],
        "newest": ["-published_at", "-id"],
    }.get(params.sort)
    if order is None:  # relevance; without words, the most installed first
        order = ["-relevance", "-install_count", "-id"] if terms else ["-install_count", "-id"]
    return qs.order_by(*order)


# --- offset cursors --------------------------------------------------------------------------------
def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    match = re.fullmatch(r"offset:(\d{1,6})", raw)
    if not match or int(match.group(1)) > MAX_OFFSET:
        raise ValidationFailed("The cursor is not one this API gave out.", code="invalid_cursor", param="cursor")
    return int(match.group(1))


def page(qs: QuerySet[Listing], *, limit: int, cursor: str | None) -> tuple[list[Listing], str | None]:
    """One page of a search and the cursor of the next one."""
    offset = decode_offset(cursor)
    rows = list(qs[offset : offset + limit + 1])
    more = len(rows) > limit and offset + limit < MAX_OFFSET
    return rows[:limit], encode_offset(offset + limit) if more else None
