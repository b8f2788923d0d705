"""An enterprise admin's whole journey with one extension, in a real browser: find it in the
storefront, install it with consent, configure it, take an update that asks for more access (seeing
the difference and consenting again), roll back, and uninstall with the cleanup report."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from apps.installs.models import Installation
from apps.runtime.models import KVEntry
from tests.browser.helpers import screenshot
from tests.installs.conftest import CONFIG_SCHEMA

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_finds_installs_configures_updates_rolls_back_and_uninstalls(page: Page, login_as, acme, vendor):
    # given a published extension in the storefront
    vendor.release(version="1.0.0", config_schema=CONFIG_SCHEMA, scopes=["events:read:order.created", "kv:read"])
    publish_listing(vendor)
    login_as(acme.owner)

    # --- search → listing ---------------------------------------------------------------------------
    page.goto("/marketplace/")
    page.get_by_role("searchbox").fill("tagger")
    page.get_by_role("searchbox").press("Enter")
    page.get_by_role("link", name="Order Tagger").first.click()
    expect(page.get_by_role("heading", name="Order Tagger", level=1)).to_be_visible()
    expect(page.get_by_text("Receive 'order.created' events").first).to_be_visible()
    screenshot(page, "install-01-listing")

    # --- install with consent -------------------------------------------------------------------------
    page.get_by_role("button", name="Install").first.click()
    if page.get_by_role("heading", name="Install Order Tagger").count() == 0:
        page.get_by_role("link", name=acme.org.name).first.click()  # the organisation chooser
    expect(page.get_by_role("heading", name="Install Order Tagger")).to_be_visible()
    expect(page.get_by_text("Receive 'order.created' events")).to_be_visible()
    expect(page.get_by_text("Read its own stored data")).to_be_visible()
    page.get_by_label("Tag prefix").fill("vip-")
    page.get_by_role("button", name="Install Order Tagger").click()
    expect(page.locator("#consent-error")).to_be_visible()  # no consent, no install
    assert not Installation.objects.filter(org=acme.org).exists()
    expect(page.get_by_label("Tag prefix")).to_have_value("vip-")  # nothing typed is lost
    page.locator("#c-consent").check()
    screenshot(page, "install-02-consent")
    page.get_by_role("button", name="Install Order Tagger").click()
    expect(page.get_by_role("heading", name="Order Tagger", level=1)).to_be_visible()
    installation = Installation.objects.get(org=acme.org)
    assert installation.config["tag_prefix"] == "vip-"
    assert sorted(installation.granted_scopes) == ["events:read:order.created", "kv:read"]

    # --- configure: a secret is stored, masked, and kept ---------------------------------------------
    page.get_by_label("API key").fill("s3cret-value")
    page.get_by_label("Threshold").fill("25")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#config")).to_contain_text("set")
    assert "s3cret-value" not in page.content()
    installation.refresh_from_db()
    assert installation.config["threshold"] == 25 and installation.config_secrets_encrypted

    # --- an update that escalates kv:read → kv:write waits for consent -----------------------------
    vendor.release(version="1.1.0", config_schema=CONFIG_SCHEMA, scopes=["events:read:order.created", "kv:write"])
    page.reload()
    update = page.locator("#update")
    expect(update).to_contain_text("1.0.0 → 1.1.0")
    expect(update).to_contain_text("kv:write")
    installation.refresh_from_db()
    assert installation.version.version == "1.0.0"  # never applied silently
    screenshot(page, "install-03-update-diff")
    page.locator("#u-consent").check()
    page.get_by_role("button", name="Consent and update to 1.1.0").click()
    expect(page.locator("#update")).to_have_count(0)
    installation.refresh_from_db()
    assert installation.version.version == "1.1.0" and "kv:write" in installation.granted_scopes

    # --- rollback in one action ----------------------------------------------------------------------
    page.once("dialog", lambda dialog: dialog.accept())  # hx-confirm asks first
    page.locator("#rollback").get_by_role("button", name="Roll back to 1.0.0").click()
    expect(page.get_by_role("region", name="History")).to_contain_text("Rolled back")
    installation.refresh_from_db()
    assert installation.version.version == "1.0.0" and installation.update_policy == "pinned"

    # --- uninstall with the cleanup report -----------------------------------------------------------
    KVEntry.objects.create(installation_id=installation.pk, key="orders-seen", value=b"3", size=14)
    page.locator("#uninstall").get_by_role("link", name="Uninstall Order Tagger…").click()
    expect(page.locator("#uninstall")).to_contain_text("removes")  # what will go, before it goes
    page.locator("#uninstall").get_by_role("button", name="Uninstall Order Tagger").click()
    expect(page.get_by_role("heading", name="Order Tagger was uninstalled")).to_be_visible()
    expect(page.locator("#cleanup-verdict")).to_contain_text("Verified")
    screenshot(page, "install-04-cleanup-report")
    assert not KVEntry.objects.filter(installation_id=installation.pk).exists()
    installation.refresh_from_db()
    assert installation.status == "uninstalled" and installation.cleanup_report.verified


def publish_listing(publisher) -> None:
    """The publisher's listing for order-tagger, submitted and approved by staff."""
    from apps.listings.models import Category
    from tests.listings.support import publish_listing as publish

    # A live-server test truncates every table between tests, the migration-seeded categories too.
    Category.objects.get_or_create(slug="orders", defaults={"name": "Orders"})

    publish(publisher.extension("order-tagger"))
