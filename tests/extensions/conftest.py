"""Publishing fixtures: a signing key pair registered for acme, and helpers that build and upload
signed packages the way the `plaza` CLI does."""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.extensions.models import Extension, SigningKey
from apps.extensions.packages import build_package
from apps.extensions.signing import sign_package

WASM = b"\x00asm\x01\x00\x00\x00"  # the smallest valid module: the header alone

BASE_MANIFEST = {
    "manifest_version": 1,
    "id": "acme.order-tagger",
    "version": "1.0.0",
    "name": "Order Tagger",
    "summary": "Tags new orders by what is in them.",
    "platform": {"api": "^1.0"},
    "scopes": ["events:read:order.created", "kv:read"],
    "modules": {"main": "modules/main.wasm"},
    "hooks": [{"event": "order.created", "module": "main", "export": "on_order_created"}],
}


def manifest(**overrides) -> dict:
    doc = copy.deepcopy(BASE_MANIFEST)
    doc.update(overrides)
    return doc


def package_bytes(doc: dict, files: dict | None = None) -> bytes:
    return build_package({"modules/main.wasm": WASM, **(files or {})}, manifest=doc)


@dataclass
class Publisher:
    org: object
    api: object
    key: SigningKey
    private: Ed25519PrivateKey
    extension: Extension

    def upload(self, doc: dict | None = None, *, data: bytes | None = None, signature: str | None = None,
               key_id: str | None = None, channel: str = "stable", extension: Extension | None = None):  # fmt: skip
        data = data if data is not None else package_bytes(doc or manifest())
        if signature is None:
            signature = sign_package(self.private, hashlib.sha256(data).hexdigest())
        ext = extension or self.extension
        return self.api.post(
            f"/api/v1/orgs/{self.org.pk}/extensions/{ext.pk}/versions",
            {
                "package": SimpleUploadedFile("ext.zip", data, content_type="application/zip"),
                "signature": signature,
                "key_id": key_id if key_id is not None else self.key.pk,
                "channel": channel,
            },
            HTTP_AUTHORIZATION=f"Bearer {self.api.token}",
        )


def public_b64(private: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
def event_catalog(db):
    from apps.events.catalog_sync import sync_catalog

    sync_catalog()


@pytest.fixture
def publisher(acme, api_for, event_catalog) -> Publisher:
    """acme as a publisher: a developer token, a registered key and the extension acme.order-tagger."""
    api = api_for(acme.org, role="developer")
    admin = api_for(acme.org, role="admin")
    private = Ed25519PrivateKey.generate()
    r = admin.call("POST", f"orgs/{acme.org.pk}/signing-keys", {"name": "laptop", "public_key": public_b64(private)})
    assert r.status_code == 201, r.content
    key = SigningKey.objects.get(pk=r.json()["id"])
    r = api.call("POST", f"orgs/{acme.org.pk}/extensions", {"name": "order-tagger", "display_name": "Order Tagger"})
    assert r.status_code == 201, r.content
    return Publisher(
        org=acme.org,
        api=api,
        key=key,
        private=private,
        extension=Extension.objects.get(pk=r.json()["id"]),
    )


def publish_draft(org, private: Ed25519PrivateKey, *, name: str, key_name: str, version: str = "1.0.0"):
    """Through the services, as a robot principal: register ``private``'s public key in ``org``,
    reserve ``<slug>.<name>`` and upload a signed draft of ``version``. Returns (extension, version, key)."""
    from apps.extensions import services
    from apps.orgs.policy import Principal

    robot = Principal(kind="user", user=None, mfa_verified=True)
    key = services.signing_key_register(principal=robot, org=org, name=key_name, public_key=public_b64(private))
    extension = services.extension_create(principal=robot, org=org, name=name)
    data = package_bytes(manifest(id=extension.key, version=version))
    uploaded = services.version_upload(
        principal=robot,
        extension=extension,
        data=data,
        signature=sign_package(private, hashlib.sha256(data).hexdigest()),
        key_id=key.pk,
    )
    return extension, uploaded, key
