"""Benchmark of storefront search over 10,000 listings on PostgreSQL.

    .venv/bin/python bench/search_bench.py [--listings N] [--samples N] [--database-url URL]

Creates a fresh database (``test_<name>`` next to the one named by ``--database-url`` or
``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/plaza_bench``), migrates it, and
seeds N published listings (default 10,000) of 500 publishers — each with its extension, a
certified version released on a channel, 1–3 categories, tags, a tagline and a description of
80–200 words drawn from a marketplace vocabulary, installs and ratings, a fifth of the
publishers verified — then writes every search vector in one statement, as publishing does.

It measures realistic storefront queries (words, as-you-type prefixes, filters, sorts, the
default browse order) two ways:

- request: ``GET /api/v1/marketplace/listings?…&limit=20`` through Django's test client (routing,
  parameter checks, the query, serialisation) — what a visitor waits for;
- query: ``search.search()`` + one page, the database work alone;

and, in the same run, the baseline a storefront without full-text search would run: the same
words as case-insensitive substring filters over name, tagline and description (unindexed
``icontains``), ordered by installs.

Target: every query's request p95 < 100 ms. Exits 1 when it fails. The database is dropped
afterwards. On SQLite (``--database-url sqlite://``) it measures the fallback, with no target.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 100.0
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/plaza_bench"

# (label, query parameters): what people type and click in a storefront.
QUERIES = [
    ("one word", {"q": "invoice"}),
    ("two words", {"q": "shipping labels"}),
    ("as you type", {"q": "fulf"}),
    ("word + category", {"q": "fraud", "category": "security"}),
    ("words + verified + installs", {"q": "sales dashboard", "verified": "true", "sort": "installs"}),
    ("word + pricing + newest", {"q": "tags", "pricing": "free", "sort": "newest"}),
    ("word + rating >= 4", {"q": "customer", "min_rating": "4", "sort": "rating"}),
    ("browse (most installed)", {}),
    ("category by installs", {"category": "orders", "sort": "installs"}),
    ("top rated in category", {"category": "analytics", "min_rating": "4", "sort": "rating"}),
    ("no match", {"q": "xylophone"}),
]

TOPICS = {
    "orders": "order orders tagging routing fulfilment fulfillment split merge hold priority warehouse picking",
    "shipping": "shipping labels carrier tracking delivery parcel rates customs returns courier freight",
    "marketing": "email campaign newsletter loyalty coupon discount referral promotion audience segment",
    "analytics": "analytics dashboard report metrics cohort revenue forecast chart insight sales",
    "productivity": "automation workflow schedule bulk editor import export sync spreadsheet template",
    "security": "fraud risk compliance audit access password policy encryption screening chargeback",
    "finance": "invoice invoices accounting tax ledger payment refund reconciliation payout billing",
    "support": "helpdesk ticket chat support customer inbox reply satisfaction faq knowledge",
    "ai-tools": "assistant agent summarise classify generate copilot prompt model recommendation tags",
}
FILLER_TEXT = """the a for with your every new fast simple team store shop product products customers data rules
settings one click minutes hours daily real time without code secure reliable clear"""
FILLER = FILLER_TEXT.split()


def _setup_django(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["PLAZA_ENV"] = "test"
    os.environ["DATABASE_URL"] = "" if database_url.startswith("sqlite") else database_url
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    for name in ("CELERY_BROKER_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()


def _words(rng: random.Random, topic: str, n: int) -> str:
    vocab = TOPICS[topic].split()
    return " ".join(rng.choice(vocab) if rng.random() < 0.35 else rng.choice(FILLER) for _ in range(n))


def seed(n: int, rng: random.Random) -> None:
    """N visible listings, written in bulk (the services are measured by the test suite)."""
    from django.db import connection

    from apps.core import clock
    from apps.core.ids import new_id
    from apps.extensions.models import ChannelRelease, Extension, ExtensionVersion, SigningKey
    from apps.listings.models import Category, Listing, ListingCategory, PublisherProfile
    from apps.listings.search import search_vector_expression, uses_full_text
    from apps.orgs.models import Domain, Organization

    now = clock.now()
    categories = {c.slug: c.name for c in Category.objects.all()}
    publishers = [Organization(id=new_id("org"), name=f"Publisher {i}", slug=f"publisher-{i}") for i in range(500)]
    Organization.objects.bulk_create(publishers)
    keys = [
        SigningKey(id=new_id("key"), org=o, name="ci", public_key="A" * 44, fingerprint=f"SHA256:{o.pk}")
        for o in publishers
    ]
    SigningKey.objects.bulk_create(keys)
    verified = publishers[::5]
    Domain.objects.bulk_create(
        [Domain(org=o, name=f"{o.slug}.example", verification_token="t", verified_at=now) for o in verified]
    )
    PublisherProfile.objects.bulk_create([PublisherProfile(org=o, verified_at=now) for o in verified])
    extensions, versions, releases, listings, links = [], [], [], [], []
    for i in range(n):
        org_index = i % len(publishers)
        org = publishers[org_index]
        topic = rng.choice(list(TOPICS))
        ext = Extension(id=new_id("ext"), org=org, key=f"{org.slug}.ext-{i}", name=f"Ext {i}")
        channel = "stable" if rng.random() < 0.9 else "beta"
        version = ExtensionVersion(
            id=new_id("ver"), extension=ext, version="1.0.0" if channel == "stable" else "1.0.0-beta.1",
            channel=channel, status="published", manifest={"summary": "First release."}, scopes=["kv:read"],
            package_sha256="0" * 64, package_size=1, signing_key=keys[org_index], signature="sig",
        )  # fmt: skip
        name = " ".join(w.capitalize() for w in _words(rng, topic, rng.randint(2, 3)).split())
        tags = sorted({rng.choice(TOPICS[topic].split()) for _ in range(rng.randint(1, 5))})
        cats = [topic, *rng.sample(sorted(categories), rng.randint(0, 2))]
        cats = list(dict.fromkeys(cats))
        listing = Listing(
            id=new_id("lst"), extension=ext, org=org, name=name[:60],
            tagline=_words(rng, topic, rng.randint(6, 12))[:140],
            description=_words(rng, topic, rng.randint(80, 200)), tags=tags,
            pricing=rng.choice(["free", "free", "freemium", "paid", "trial"]),
            published_at=now, featured_at=now if i % 400 == 0 else None,
            install_count=int(rng.paretovariate(1.2) * 10), rating_count=rng.randint(0, 60),
            rating_avg=round(rng.uniform(2.5, 5.0), 2),
            search_keywords=" ".join([*tags, *(categories[c] for c in cats), org.name, ext.key]),
        )  # fmt: skip
        extensions.append(ext)
        versions.append(version)
        releases.append(ChannelRelease(id=new_id("rel"), extension=ext, channel=channel, version=version))
        listings.append(listing)
        links += [ListingCategory(listing=listing, category_id=c) for c in cats]
    for model, rows in (
        (Extension, extensions),
        (ExtensionVersion, versions),
        (ChannelRelease, releases),
        (Listing, listings),
        (ListingCategory, links),
    ):
        model.objects.bulk_create(rows, batch_size=2000)
    if uses_full_text():
        Listing.objects.update(search_vector=search_vector_expression())
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _measure(fn, samples: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _baseline(params: dict):
    """What a storefront without a search index runs: substring filters, ordered by installs."""
    from django.db.models import Q

    from apps.listings.search import clean_params, terms_of
    from apps.listings.selectors import visible_listings

    clean = clean_params(**{k: v for k, v in params.items() if k != "sort"})
    qs = visible_listings()
    if clean.category:
        qs = qs.filter(categories__slug=clean.category)
    if clean.pricing:
        qs = qs.filter(pricing=clean.pricing)
    if clean.verified is True:
        qs = qs.filter(publisher_verified=True)
    if clean.min_rating is not None:
        qs = qs.filter(rating_avg__gte=clean.min_rating)
    for term in terms_of(clean.q):
        qs = qs.filter(Q(name__icontains=term) | Q(tagline__icontains=term) | Q(description__icontains=term))
    return lambda: list(qs.order_by("-install_count", "-id")[:20])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=60, help="timed runs per query (after 3 warm-up runs)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args(argv)
    _setup_django(args.database_url)

    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from apps.listings import search

    setup_test_environment()
    started = time.perf_counter()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        seeded = time.perf_counter()
        seed(args.listings, random.Random(7))
        seed_s = time.perf_counter() - seeded
        vendor = connection.vendor
        version = connection.cursor().connection.info.server_version if vendor == "postgresql" else ""
        print(f"Plaza storefront search benchmark on {vendor} {version} ({name})")
        print(f"  {platform.python_implementation()} {platform.python_version()} on {platform.machine()}")
        print(f"  seeded {args.listings:,} listings of 500 publishers in {seed_s:.1f} s")
        print(f"  {args.samples} samples a query after 3 warm-up runs")
        print(f"  full-text search: {'yes (GIN-indexed tsvector)' if search.uses_full_text() else 'no (fallback)'}")
        client = Client()
        rows = []
        for label, params in QUERIES:
            query = {**params, "limit": 20}
            count = search.search(search.clean_params(**params)).count()

            def request(query=query):
                res = client.get("/api/v1/marketplace/listings", query)
                assert res.status_code == 200, res.content[:300]

            def database(params=params):
                search.page(search.search(search.clean_params(**params)), limit=20, cursor=None)

            req = _measure(request, args.samples)
            db = _measure(database, args.samples)
            base = _measure(_baseline(params), max(10, args.samples // 3))
            rows.append((label, count, req, db, base))
        print(f"\n  {'query (ms)':28}{'matches':>8}  {'request p50/p95':>16}  {'query p50/p95':>14}", end="")
        print(f"  {'baseline p50/p95':>17}")
        for label, count, req, db, base in rows:
            print(
                f"  {label:28}{count:8,}  {statistics.median(req):9.1f}/{_percentile(req, 95):6.1f}"
                f"   {statistics.median(db):7.1f}/{_percentile(db, 95):6.1f}"
                f"   {statistics.median(base):8.1f}/{_percentile(base, 95):7.1f}"
            )
        worst = max(_percentile(req, 95) for _, _, req, _, _ in rows)
        overall = _percentile([s for _, _, req, _, _ in rows for s in req], 95)
        text_rows = [r for r in rows if "q" in dict(QUERIES)[r[0]]]
        speedup = statistics.median(
            [statistics.median(base) / max(statistics.median(db), 0.001) for _, _, _, db, base in text_rows]
        )
        print(f"\n  all requests p95 {overall:.1f} ms; worst query p95 {worst:.1f} ms")
        print(f"  word queries: full-text query vs unindexed icontains baseline, median speed-up ×{speedup:.1f}")
        print("\nTargets")
        if vendor != "postgresql":
            print("  (none on SQLite: the target is for PostgreSQL)")
            return 0
        passed = worst < TARGET_MS
        verdict = "PASS" if passed else "FAIL"
        print(f"  {verdict}  every query's request p95 {worst:.1f} ms   (target < {TARGET_MS:.0f} ms)")
        print(f"\nTotal {time.perf_counter() - started:.1f} s")
        return 0 if passed else 1
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
