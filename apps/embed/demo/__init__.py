"""The demo widget extensions for seed_demo (``PLAZA_DEMO_SEEDERS``): two extensions of the demo
publisher, each with a widget in ``order.sidebar`` and ``dashboard.card`` (the files in
``widget/``), certified by the real pipeline, listed, installed into the demo customer, whose
embed settings register the demo host origin.

Two extensions rather than one, so the demo shows two widgets per slot from two origins and two
token audiences (a token of one is refused by the other)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from apps.embed.services import embed_settings_update
from apps.extensions import services as extension_services
from apps.extensions.demo import demo_private_key
from apps.extensions.models import Extension, ExtensionVersion, SigningKey, VersionStatus
from apps.extensions.packages import build_package
from apps.extensions.signing import public_key_raw, sign_package
from apps.installs.models import Installation
from apps.installs.services import installation_create
from apps.listings import services as listing_services
from apps.listings.models import Listing
from apps.orgs.models import Organization
from apps.orgs.policy import Principal

WIDGET_DIR = Path(__file__).resolve().parent / "widget"
FILES = ("order-sidebar.html", "dashboard-card.html", "widget.js", "widget.css")


@dataclass(frozen=True)
class DemoWidget:
    name: str
    display_name: str
    summary: str
    titles: tuple[str, str]  # order.sidebar, dashboard.card
    free_features: tuple[str, ...]
    card_permissions: tuple[str, ...] = ()
    scopes: tuple[str, ...] = field(default=("api:org:read", "api:members:read"))


WIDGETS = (
    DemoWidget(
        "order-insights",
        "Order Insights",
        "Notes and signals next to every order.",
        ("Order insights", "Insights summary"),
        free_features=("insights.basic",),
        card_permissions=("clipboard-write",),
    ),
    DemoWidget(
        "loyalty-points",
        "Loyalty Points",
        "The customer's points balance, where your team works.",
        ("Loyalty points", "Loyalty this week"),
        free_features=("loyalty.balance",),
        card_permissions=("popups",),
        scopes=("api:org:read",),
    ),
)


def _robot() -> Principal:
    return Principal(kind="user", user=None, mfa_verified=True)


def manifest_for(extension: Extension, widget: DemoWidget, version: str = "1.0.0") -> dict:
    card = {"slot": "dashboard.card", "entry": "widget/dashboard-card.html", "title": widget.titles[1], "height": 180}
    if widget.card_permissions:
        card["permissions"] = list(widget.card_permissions)
    return {
        "manifest_version": 1,
        "id": extension.key,
        "version": version,
        "name": widget.display_name,
        "summary": widget.summary,
        "platform": {"api": "^1.0"},
        "scopes": ["ui:slot:order.sidebar", "ui:slot:dashboard.card", *widget.scopes],
        "ui_slots": [
            {"slot": "order.sidebar", "entry": "widget/order-sidebar.html", "title": widget.titles[0], "height": 220},
            card,
        ],
        "pricing": {"model": "freemium", "currency": "EUR", "monthly_price": "9"},
    }


def package_files() -> dict[str, bytes]:
    return {f"widget/{name}": (WIDGET_DIR / name).read_bytes() for name in FILES}


def seed_versions(publisher: Organization) -> list[ExtensionVersion]:
    """Upload and submit 1.0.0 of each demo widget extension (certification takes it from there)."""
    robot, private = _robot(), demo_private_key()
    key = SigningKey.objects.filter(org=publisher, name="demo key").first() or extension_services.signing_key_register(
        principal=robot, org=publisher, name="demo key", public_key=base64.b64encode(public_key_raw(private)).decode()
    )
    versions = []
    for widget in WIDGETS:
        extension = Extension.objects.filter(key=f"{publisher.slug}.{widget.name}").first()
        if extension is None:
            extension = extension_services.extension_create(
                principal=robot, org=publisher, name=widget.name, display_name=widget.display_name,
                summary=widget.summary,
            )  # fmt: skip
        version = extension.versions.filter(version="1.0.0").first()
        if version is None:
            data = build_package(package_files(), manifest=manifest_for(extension, widget))
            version = extension_services.version_upload(
                principal=robot,
                extension=extension,
                data=data,
                signature=sign_package(private, hashlib.sha256(data).hexdigest()),
                key_id=key.pk,
            )
        if version.status == VersionStatus.DRAFT:
            version = extension_services.version_submit(principal=robot, version=version)
        versions.append(version)
    return versions


def seed_after(publisher: Organization, customer: Organization, customer_admin) -> None:
    """List and install each certified demo widget extension into ``customer`` and register the
    demo host origin there. Idempotent."""
    robot = _robot()
    admin = Principal(kind="user", user=customer_admin, mfa_verified=True)
    for widget in WIDGETS:
        extension = Extension.objects.get(key=f"{publisher.slug}.{widget.name}")
        release = extension.releases.first()
        if release is None:
            continue  # not certified (yet)
        listing = Listing.objects.filter(extension=extension).first()
        if listing is None or listing.published_at is None:
            listing_services.listing_draft_update(
                principal=robot,
                extension=extension,
                data={
                    "name": widget.display_name,
                    "tagline": widget.summary,
                    "description": f"## {widget.display_name}\n\n{widget.summary} A widget in the order page's "
                    "sidebar and a card on the dashboard, themed like your product.",
                    "tags": ["widgets", "orders"],
                    "categories": ["orders"],
                    "docs_url": f"https://docs.{publisher.slug}.example/{widget.name}",
                    "support_url": f"https://{publisher.slug}.example/support",
                    "privacy_url": f"https://{publisher.slug}.example/privacy",
                    "pricing": "freemium",
                    "pricing_text": "The basics free; exports with a grant.",
                },
            )
            listing_services.listing_submit(principal=robot, extension=extension)
            listing = Listing.objects.get(extension=extension)
            listing_services.listing_decide(principal=robot, listing=listing, approve=True)
        from apps.billing.services import listing_free_features_set  # billing sits below embed

        listing_free_features_set(principal=robot, extension=extension, features=list(widget.free_features))
        if not Installation.objects.filter(org=customer, extension=extension).exclude(status="uninstalled").exists():
            installation_create(
                principal=admin,
                org=customer,
                extension=extension,
                granted_scopes=list(release.version.scopes),
            )
    if settings.PLAZA_DEMO_HOST_ORIGIN:
        from apps.embed.selectors import host_origins_of

        origins = host_origins_of(customer)
        if settings.PLAZA_DEMO_HOST_ORIGIN not in origins:
            embed_settings_update(
                principal=admin, org=customer, host_origins=[*origins, settings.PLAZA_DEMO_HOST_ORIGIN]
            )
