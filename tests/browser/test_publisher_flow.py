"""A publisher's first version, end to end in a real browser: register a signing key, reserve an
extension id, upload a package whose manifest is wrong and see each problem under its line, upload
a signed, valid one, and submit it for certification."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Page, expect

from apps.extensions.packages import build_package
from apps.extensions.signing import sign_package
from tests.browser.helpers import screenshot

PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes(range(7, 39)))
PUBLIC_PEM = (
    PRIVATE.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
MANIFEST = {
    "manifest_version": 1,
    "id": "acme.order-notes",
    "version": "1.0.0",
    "name": "Order Notes",
    "summary": "Keeps notes on orders.",
    "platform": {"api": "^1.0"},
    "scopes": ["kv:read", "kv:write"],
    "modules": {"main": "modules/main.wasm"},
}
WASM = b"\x00asm\x01\x00\x00\x00"


def _package(manifest: dict) -> tuple[dict, str]:
    data = build_package({"modules/main.wasm": WASM}, manifest=manifest)
    upload = {"name": "order-notes.zip", "mimeType": "application/zip", "buffer": data}
    return upload, sign_package(PRIVATE, hashlib.sha256(data).hexdigest())


def test_publisher_uploads_and_submits_a_signed_version(page: Page, login_as, acme):
    login_as(acme.owner)
    page.goto(f"/orgs/{acme.org.pk}/signing-keys/")
    expect(page.get_by_text("No keys yet")).to_be_visible()
    page.get_by_label("Name").fill("release laptop")
    page.get_by_label("Public key").fill(PUBLIC_PEM)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("registered")).to_be_visible()

    # --- reserve the id ---------------------------------------------------------------------------
    page.get_by_role("navigation", name=acme.org.name).get_by_role("link", name="Extensions").click()
    page.get_by_label("Name", exact=True).fill("order-notes")
    page.get_by_label("Display name").fill("Order Notes")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Order Notes")).to_be_visible()
    expect(page.get_by_text("No versions yet.")).to_be_visible()

    # --- a wrong manifest: every problem under its line -------------------------------------------
    upload, signature = _package({**MANIFEST, "version": "1.0", "scopes": ["kv:admin"]})
    page.get_by_label("Package").set_input_files(upload)
    page.get_by_label("Signature (base64)").fill(signature)
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("The manifest has 2 problems")).to_be_visible()
    version_line = page.locator(".aline", has_text='"version": "1.0"')
    expect(version_line.locator(".field-error")).to_contain_text("semantic version")
    scope_line = page.locator(".aline", has_text='"kv:admin"')
    expect(scope_line.locator(".field-error")).to_contain_text("not a Plaza scope")
    screenshot(page, "publisher-01-manifest-problems")

    # --- a signature that does not match: shown next to its field ---------------------------------
    upload, _ = _package(MANIFEST)
    page.get_by_label("Package").set_input_files(upload)
    page.get_by_label("Signature (base64)").fill(base64.b64encode(b"\0" * 64).decode())
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#signature-error")).to_contain_text("does not match")

    # --- the real thing ---------------------------------------------------------------------------
    upload, signature = _package(MANIFEST)
    page.get_by_label("Package").set_input_files(upload)
    page.get_by_label("Signature (base64)").fill(signature)
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Version 1.0.0 uploaded as a draft")).to_be_visible()
    expect(page.get_by_role("cell", name="Store, change and delete its own data")).to_be_visible()
    page.get_by_role("button", name="Submit for certification").click()
    expect(page.get_by_text("submitted for certification")).to_be_visible()
    expect(page.get_by_role("button", name="Submit for certification")).to_have_count(0)
    screenshot(page, "publisher-02-submitted")
