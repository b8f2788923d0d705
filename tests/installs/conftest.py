"""Marketplace fixtures shared by tests/installs and tests/listings.

- ``vendor``: a third tenant (``vera@vendor.test`` owner), the publisher, with a registered signing
  key; ``acme`` (alice owner, bob member) is the customer and ``globex`` (charlie) the outsider.
- ``vendor.release(name, version, scopes=…, config_schema=…, channel=…, promote=True)`` uploads a
  signed version of ``vendor.<name>`` through the services, takes it through the certification
  states (without running the checks: tests/certification covers those) and promotes it to its
  channel. ``certified=False`` leaves it a draft (for sandbox tests); ``promote=False`` leaves it
  certified but not on a channel.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apps.extensions import services as ext_services
from apps.extensions.models import Extension, ExtensionVersion, VersionStatus
from apps.extensions.packages import build_package
from apps.extensions.signing import sign_package
from apps.orgs.policy import Principal
from tests.conftest import Tenant, make_tenant
from tests.extensions.conftest import WASM, public_b64

ROBOT = Principal(kind="user", user=None, mfa_verified=True)

BASE = {
    "manifest_version": 1,
    "platform": {"api": "^1.0"},
    "summary": "Tags new orders by what is in them.",
    "modules": {"main": "modules/main.wasm"},
    "hooks": [{"event": "order.created", "module": "main", "export": "on_order_created"}],
}
DEFAULT_SCOPES = ["events:read:order.created", "kv:read"]
CONFIG_SCHEMA = {
    "type": "object",
    "properties": {
        "tag_prefix": {"type": "string", "default": "auto-", "maxLength": 20, "title": "Tag prefix"},
        "threshold": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 10},
        "api_key": {"type": "string", "writeOnly": True, "title": "API key"},
    },
    "required": ["tag_prefix"],
}


@dataclass
class Vendor:
    tenant: Tenant
    private: Ed25519PrivateKey
    key: object
    extensions: dict = field(default_factory=dict)

    @property
    def org(self):
        return self.tenant.org

    def extension(self, name: str = "order-tagger", display_name: str = "Order Tagger") -> Extension:
        if name not in self.extensions:
            self.extensions[name] = ext_services.extension_create(
                principal=ROBOT, org=self.org, name=name, display_name=display_name
            )
        return self.extensions[name]

    def release(
        self,
        name: str = "order-tagger",
        version: str = "1.0.0",
        *,
        scopes: list[str] | None = None,
        config_schema: dict | None = None,
        channel: str = "stable",
        certified: bool = True,
        promote: bool = True,
        files: dict | None = None,
        **manifest_extra,
    ) -> ExtensionVersion:
        extension = self.extension(name)
        doc = copy.deepcopy(BASE)
        doc.update(
            id=extension.key,
            version=version,
            name=extension.name,
            scopes=list(DEFAULT_SCOPES if scopes is None else scopes),
            **manifest_extra,
        )
        if config_schema is not None:
            doc["config_schema"] = config_schema
        data = build_package({"modules/main.wasm": WASM, **(files or {})}, manifest=doc)
        uploaded = ext_services.version_upload(
            principal=ROBOT,
            extension=extension,
            data=data,
            signature=sign_package(self.private, hashlib.sha256(data).hexdigest()),
            key_id=self.key.pk,
            channel=channel,
        )
        if not certified:
            return uploaded
        for status in (VersionStatus.SUBMITTED, VersionStatus.CERTIFYING, VersionStatus.CERTIFIED):
            uploaded = ext_services.version_transition(version=uploaded, to=status)
        if promote:
            ext_services.version_promote(principal=ROBOT, version=uploaded, channel=channel)
        return ExtensionVersion.objects.get(pk=uploaded.pk)


@pytest.fixture
def vendor(db, event_catalog) -> Vendor:
    tenant = make_tenant("vendor", "vera@vendor.test")
    private = Ed25519PrivateKey.generate()
    key = ext_services.signing_key_register(principal=ROBOT, org=tenant.org, name="ci", public_key=public_b64(private))
    return Vendor(tenant=tenant, private=private, key=key)


@pytest.fixture
def event_catalog(db):
    from apps.events.catalog_sync import sync_catalog

    sync_catalog()
