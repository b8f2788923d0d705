"""The demo publisher's extension, for seed_demo: a signing key derived from SECRET_KEY (so every
run signs with the same key) and one signed, submitted version (certification takes it from there)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from apps.extensions import services
from apps.extensions.models import Extension, ExtensionVersion, SigningKey, VersionStatus
from apps.extensions.packages import build_package
from apps.extensions.signing import public_key_raw, sign_package
from apps.orgs.models import Organization
from apps.orgs.policy import Principal


def _module() -> bytes:
    """The AssemblyScript order tagger (pdk/assemblyscript, committed with a rebuild check): tags each
    order and counts the orders it has seen in its key-value storage."""
    return (Path(settings.BASE_DIR) / "pdk" / "assemblyscript" / "build" / "order_tagger.wasm").read_bytes()


def demo_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"plaza demo key {settings.SECRET_KEY}".encode()).digest()
    )


def seed_demo_extension(
    org: Organization,
    *,
    name: str = "order-tagger",
    display_name: str = "Order Tagger",
    summary: str = "Tags each new order by what is in it.",
    version_number: str = "1.0.0",
    config_schema: dict | None = None,
) -> tuple[ExtensionVersion, str]:
    """``<org>.<name>`` ``version_number`` (the AssemblyScript order tagger's module), signed and
    submitted; and the demo key's private seed (base64)."""
    robot = Principal(kind="user", user=None, mfa_verified=True)
    private = demo_private_key()
    public = base64.b64encode(public_key_raw(private)).decode()
    key = SigningKey.objects.filter(org=org, name="demo key").first() or services.signing_key_register(
        principal=robot, org=org, name="demo key", public_key=public
    )
    ext = Extension.objects.filter(key=f"{org.slug}.{name}").first() or services.extension_create(
        principal=robot, org=org, name=name, display_name=display_name, summary=summary
    )
    version = ext.versions.filter(version=version_number).first()
    if version is None:
        manifest = {
            "manifest_version": 1,
            "id": ext.key,
            "version": version_number,
            "name": display_name,
            "summary": summary,
            "platform": {"api": "^1.0"},
            "scopes": ["events:read:order.created", "kv:write"],
            "modules": {"main": "modules/main.wasm"},
            "hooks": [{"event": "order.created", "module": "main", "export": "on_order_created"}],
            "pricing": {"model": "free"},
            **({"config_schema": config_schema} if config_schema else {}),
        }
        data = build_package({"modules/main.wasm": _module()}, manifest=manifest)
        version = services.version_upload(
            principal=robot,
            extension=ext,
            data=data,
            signature=sign_package(private, hashlib.sha256(data).hexdigest()),
            key_id=key.pk,
        )
    if version.status == VersionStatus.DRAFT:
        version = services.version_submit(principal=robot, version=version)
    seed = base64.b64encode(private.private_bytes_raw()).decode()
    return version, seed
