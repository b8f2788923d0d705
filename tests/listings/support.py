"""Helpers of the listings tests: listings published through the services, installations written
directly (H1's services are not needed to count or review), images made with Pillow."""

from __future__ import annotations

import io

from PIL import Image

from apps.extensions.models import ChannelRelease, Extension, ExtensionVersion, SigningKey
from apps.installs.models import Installation
from apps.listings import services
from apps.listings.models import Listing
from apps.orgs.models import Organization
from apps.orgs.policy import Principal

ROBOT = Principal(kind="user", user=None, mfa_verified=True)

CONTENT = {
    "name": "Order Tagger",
    "tagline": "Tags new orders by what is in them.",
    "description": "## How it works\n\nIt reads each **new order** and adds tags.",
    "tags": ["orders", "tagging"],
    "categories": ["orders"],
    "docs_url": "https://docs.vendor.example/tagger",
    "support_url": "https://vendor.example/support",
    "privacy_url": "https://vendor.example/privacy",
    "pricing": "free",
    "pricing_text": "",
}


def publish_listing(extension: Extension, **content) -> Listing:
    """Write the draft, submit it and approve it (as a robot staff member)."""
    services.listing_draft_update(principal=ROBOT, extension=extension, data={**CONTENT, **content})
    services.listing_submit(principal=ROBOT, extension=extension)
    listing = Listing.objects.get(extension=extension)
    services.listing_decide(principal=ROBOT, listing=listing, approve=True)
    return Listing.objects.get(pk=listing.pk)


def publish(vendor, name: str = "order-tagger", version: str = "1.0.0", **content) -> Listing:
    """vendor.<name> released (certified, stable) and its listing published."""
    vendor.release(name, version)
    return publish_listing(vendor.extension(name), **content)


def _key(org: Organization) -> SigningKey:
    key = SigningKey.objects.filter(org=org).first()
    if key is None:
        key = SigningKey.objects.create(org=org, name="quick", public_key="A" * 44, fingerprint=f"SHA256:{org.pk}"[:60])
    return key


def quick_extension(
    org: Organization, name: str, *, scopes=("kv:read",), channel: str = "stable", status: str = "certified"
) -> Extension:
    """An extension with one version released on ``channel``, written directly (no package)."""
    extension = Extension.objects.create(org=org, key=f"{org.slug}.{name}", name=name[:60])
    version = ExtensionVersion.objects.create(
        extension=extension,
        version="1.0.0",
        channel=channel,
        status=status,
        manifest={"id": extension.key, "version": "1.0.0", "summary": f"First release of {name}."},
        scopes=list(scopes),
        scope_changes=[{"scope": s, "change": "added", "replaces": None} for s in scopes],
        package_sha256="0" * 64,
        package_size=1,
        signing_key=_key(org),
        signature="sig",
    )
    ChannelRelease.objects.create(extension=extension, channel=channel, version=version)
    return extension


def quick_listing(org: Organization, name: str, **content) -> Listing:
    return publish_listing(quick_extension(org, name), **{"name": name[:60], **content})


def install(org: Organization, extension: Extension, *, status: str = "active") -> Installation:
    version = extension.versions.order_by("-created_at").first()
    return Installation.objects.create(
        org=org, extension=extension, version=version, status=status, granted_scopes=list(version.scopes)
    )


def image_bytes(width: int = 400, height: int = 300, *, fmt: str = "PNG", mode: str = "RGB", **save) -> bytes:
    image = Image.new(mode, (width, height), color=(200, 40, 40) if mode == "RGB" else None)
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()
