"""The built-in slots (the component registry) and the built-in theme packs, created on first use.

Created lazily rather than by a data migration: tests that flush the database (live-server
browser tests) would otherwise leave a registry without its rows."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.embed.models import ColorScheme, Slot, ThemePack
from apps.embed.themes import builtin_documents, parse_theme

# name, where it appears, description, min, max, default height (CSS pixels)
BUILTIN_SLOTS = (
    ("order.sidebar", "The order page, right-hand column", "Context and actions about one order.", 80, 800, 240),
    ("order.details", "The order page, below the line items", "Wide panels about one order.", 80, 1200, 320),
    ("dashboard.card", "The home dashboard, one card in the grid", "A summary card on the dashboard.", 80, 480, 200),
    ("customer.sidebar", "The customer page, right-hand column", "Context about one customer.", 80, 800, 240),
    ("product.sidebar", "The product page, right-hand column", "Context about one product.", 80, 800, 240),
    ("settings.page", "A page of its own under Settings → Apps", "Full-page settings of an extension.", 200, 2000, 600),
)


def ensure_registry() -> None:
    """Create whatever built-in slot or theme pack is missing (one query when none is)."""
    names = [row[0] for row in BUILTIN_SLOTS]
    documents = builtin_documents()
    have_slots = Slot.objects.filter(name__in=names).count()
    have_themes = ThemePack.objects.filter(org__isnull=True, name__in=list(documents)).values("name").distinct().count()
    if have_slots == len(names) and have_themes == len(documents):
        return
    Slot.objects.bulk_create(
        [
            Slot(
                name=name,
                placement=placement,
                description=description,
                min_height=lo,
                max_height=hi,
                default_height=default,
                position=i,
            )
            for i, (name, placement, description, lo, hi, default) in enumerate(BUILTIN_SLOTS)
        ],  # fmt: skip
        ignore_conflicts=True,
    )
    for name, (scheme, document) in documents.items():
        if not ThemePack.objects.filter(org__isnull=True, name=name).exists():
            try:
                with transaction.atomic():
                    ThemePack.objects.create(
                        org=None, name=name, version=1, scheme=scheme, source=document, resolved=parse_theme(document)
                    )
            except IntegrityError:  # pragma: no cover - a concurrent first use created it
                pass


def builtin_theme(scheme: str) -> ThemePack:
    ensure_registry()
    name = "Plaza dark" if scheme == ColorScheme.DARK else "Plaza light"
    return ThemePack.objects.filter(org__isnull=True, name=name).order_by("-version", "id").first()
