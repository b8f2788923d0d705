"""Storefront search: relevance ranking, filters, sort and pagination, through the API and the
page. The same tests run on SQLite (weighted fallback) and on PostgreSQL (full-text search)."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.core import clock
from apps.listings.models import Listing, PublisherProfile
from apps.orgs.models import Domain
from tests.factories import OrganizationFactory
from tests.listings.support import publish_listing, quick_extension

pytestmark = pytest.mark.django_db
API = "/api/v1/marketplace/listings"


@pytest.fixture
def publisher(db):
    return OrganizationFactory(slug="pub", name="Publisher")


def listed(org, key: str, **content) -> Listing:
    content.setdefault("name", key.title())
    content.setdefault("tagline", "Does a useful thing.")
    content.setdefault("description", "Plain words about it.")
    content.setdefault("tags", ["misc"])
    return publish_listing(quick_extension(org, key), **content)


def keys(res) -> list[str]:
    assert res.status_code == 200, res.content
    return [row["key"].split(".", 1)[1] for row in res.json()["data"]]


@pytest.fixture
def ranked(publisher):
    """Four listings with the word 'zephyr' in exactly one field each."""
    listed(publisher, "in-description", name="Beta Thing", description="It uses zephyr under the hood.")
    listed(publisher, "in-tags", name="Gamma Thing", tags=["zephyr"])
    listed(publisher, "in-tagline", name="Delta Thing", tagline="A zephyr powered helper.")
    listed(publisher, "in-name", name="Zephyr Sync")
    listed(publisher, "unrelated", name="Other Thing")


def test_relevance_ranks_name_over_tagline_over_tags_over_description(client, ranked):
    assert keys(client.get(API, {"q": "zephyr"})) == ["in-name", "in-tagline", "in-tags", "in-description"]


def test_search_is_case_insensitive_and_matches_prefixes_as_you_type(client, ranked):
    assert keys(client.get(API, {"q": "ZEPHYR"}))[0] == "in-name"
    assert set(keys(client.get(API, {"q": "zeph"}))) == {"in-name", "in-tagline", "in-tags", "in-description"}


def test_every_word_must_match(client, ranked):
    assert keys(client.get(API, {"q": "zephyr sync"})) == ["in-name"]
    assert keys(client.get(API, {"q": "zephyr nothingmatcheshere"})) == []


def test_publisher_name_and_category_are_searchable(client, publisher):
    listed(publisher, "thing", name="Thing", categories=["finance"])
    assert keys(client.get(API, {"q": "publisher"})) == ["thing"]
    assert keys(client.get(API, {"q": "finance"})) == ["thing"]


def test_a_longer_match_in_the_name_beats_a_popular_listing_matching_only_in_the_description(client, publisher):
    popular = listed(publisher, "popular", name="Popular", description="Mentions invoices once.")
    Listing.objects.filter(pk=popular.pk).update(install_count=10_000)
    listed(publisher, "exact", name="Invoices")
    assert keys(client.get(API, {"q": "invoices"})) == ["exact", "popular"]


@pytest.mark.parametrize(
    "q",
    ["'; DROP TABLE listings_listing; --", "a & b | !c", "zephyr:*", "((((", "\\", "'", "ü ø 漢字", "x" * 200,
     "%_%", "null", "<script>"],
)  # fmt: skip
def test_hostile_queries_are_just_words(client, ranked, q):
    res = client.get(API, {"q": q})
    assert res.status_code == 200, res.content
    page = client.get("/marketplace/search/", {"q": q})
    assert page.status_code == 200
    assert b"<script>" not in page.content


def test_an_over_long_query_is_a_validation_error(client):
    res = client.get(API, {"q": "x" * 201})
    assert res.status_code == 400 and res.json()["error"]["param"] == "q"


# --- filters and sort -------------------------------------------------------------------------------
@pytest.fixture
def catalog(publisher):
    verified_pub = OrganizationFactory(slug="trusted", name="Trusted")
    Domain.objects.create(org=verified_pub, name="trusted.example", verification_token="t", verified_at=clock.now())
    PublisherProfile.objects.create(org=verified_pub, verified_at=clock.now())
    rows = {
        "cheap": listed(publisher, "cheap", categories=["orders"], pricing="free"),
        "pricey": listed(publisher, "pricey", categories=["finance"], pricing="paid"),
        "trial": listed(verified_pub, "trial", categories=["finance", "orders"], pricing="trial"),
        "loved": listed(verified_pub, "loved", categories=["support"], pricing="freemium"),
    }
    figures = {"cheap": (10, 3.0, 4), "pricey": (500, 4.5, 2), "trial": (50, 0, 0), "loved": (5, 5.0, 9)}
    for key, (installs, avg, count) in figures.items():
        Listing.objects.filter(pk=rows[key].pk).update(install_count=installs, rating_avg=avg, rating_count=count)
    return rows


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "orders"}, {"cheap", "trial"}),
        ({"category": "finance"}, {"pricey", "trial"}),
        ({"pricing": "paid"}, {"pricey"}),
        ({"verified": "true"}, {"trial", "loved"}),
        ({"verified": "false"}, {"cheap", "pricey"}),
        ({"min_rating": "4"}, {"pricey", "loved"}),
        ({"min_rating": "4", "category": "support"}, {"loved"}),
        ({"category": "security"}, set()),
    ],
)
def test_filters(client, catalog, params, expected):
    assert set(keys(client.get(API, params))) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("installs", ["pricey", "trial", "cheap", "loved"]),
        ("rating", ["loved", "pricey", "cheap", "trial"]),
        ("newest", ["loved", "trial", "pricey", "cheap"]),
    ],
)
def test_sort(client, catalog, sort, expected):
    assert keys(client.get(API, {"sort": sort})) == expected


def test_without_words_relevance_is_the_most_installed_first(client, catalog):
    assert keys(client.get(API)) == ["pricey", "trial", "cheap", "loved"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"category": "nope"}, "category"),
        ({"pricing": "cheap"}, "pricing"),
        ({"min_rating": "6"}, "min_rating"),
        ({"min_rating": "x"}, "min_rating"),
        ({"sort": "random"}, "sort"),
        ({"verified": "maybe"}, "verified"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
    ],
)
def test_bad_parameters_are_400_in_the_api(client, catalog, params, param):
    res = client.get(API, params)
    assert res.status_code == 400, res.content
    assert res.json()["error"]["param"] == param


def test_the_page_ignores_bad_parameters(client, catalog):
    res = client.get("/marketplace/search/", {"category": "nope", "min_rating": "x", "sort": "??", "cursor": "junk"})
    assert res.status_code == 200
    assert b"Cheap" in res.content


def test_pagination_walks_every_result_once(client, publisher):
    for i in range(23):
        listed(publisher, f"item-{i:02d}", name=f"Widget {i:02d}")
    seen, cursor, pages = [], None, 0
    while True:
        res = client.get(API, {"q": "widget", "limit": 10, **({"cursor": cursor} if cursor else {})})
        seen += keys(res)
        cursor = res.json()["next_cursor"]
        pages += 1
        if not cursor:
            break
    assert pages == 3 and len(seen) == 23 == len(set(seen))


def test_the_search_page_updates_results_with_htmx_and_works_without(client, ranked):
    full = client.get("/marketplace/search/", {"q": "zephyr"})
    assert full.status_code == 200 and b"<form" in full.content and b"Zephyr Sync" in full.content
    assert b'hx-get="/marketplace/search/"' in full.content
    partial = client.get("/marketplace/search/", {"q": "zephyr"}, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert body.lstrip().startswith('<section id="results"') and "<form" not in body and "Zephyr Sync" in body
    html = full.content.decode()
    assert html.index("Zephyr Sync") < html.index("Delta Thing") < html.index("Gamma Thing") < html.index("Beta Thing")


def test_full_text_search_uses_the_stored_vector_on_postgresql(publisher):
    listing = listed(publisher, "vec", name="Vector")
    value = Listing.objects.filter(pk=listing.pk).values_list("search_vector", flat=True)[0]
    if connection.vendor == "postgresql":
        assert "'vector':1A" in value
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'listing_search_vector_gin'")
            assert "gin" in cursor.fetchone()[0]
    else:
        assert value is None
