"""Authorization-table rows of embeds and entitlements (see tests/orgs/marketplace_endpoints.py).
For the integrator: append this module to ``AREAS`` there, after the installs areas (its
``make_targets`` uses the installation the installs area made in the target tenant).

The target tenant gets a registered host origin, an uploaded theme pack, a slot override, a listing
for its extension (so free features can be set) and an entitlement grant on its installation."""

from __future__ import annotations

from apps.billing.models import EntitlementGrant
from apps.embed.models import EmbedSettings, Launch, SlotOverride, ThemePack
from apps.embed.registry import ensure_registry
from apps.installs.models import Installation
from apps.listings.models import Listing
from tests.orgs.endpoint import API, ORG, Endpoint  # noqa: F401

THEME = {"color": {"$type": "color", "bg": {"$value": "#ffffff"}}}

ENDPOINTS: list[Endpoint] = [
    # Allowed callers reach the service, which refuses the (static) user id: authorisation came first.
    Endpoint(
        "POST",
        f"{ORG}/embed/launches",
        ("embed.launch",),
        ok=400,
        body={"user_id": "usr_01JAAAAAAAAAAAAAAAAAAAAAAA", "host_origin": "https://shop.target.test"},
    ),
    Endpoint("GET", f"{ORG}/embed/settings", ("embed.settings.view",)),
    Endpoint("PATCH", f"{ORG}/embed/settings", ("embed.settings.manage",), body={"host_origins": ["https://x.test"]}),
    Endpoint("GET", f"{ORG}/embed/themes", ("embed.settings.view",)),
    Endpoint("POST", f"{ORG}/embed/themes", ("embed.settings.manage",), ok=201, body={"name": "T", "tokens": THEME}),
    Endpoint("GET", f"{ORG}/embed/slots", ("embed.settings.view",)),
    Endpoint("PUT", f"{ORG}/embed/slots/{{slot}}", ("embed.settings.manage",), body={"hidden": True}),
    Endpoint("GET", f"{ORG}/installations/{{installation_id}}/entitlements", ("entitlement.view",)),
    Endpoint(
        "POST",
        f"{ORG}/installations/{{installation_id}}/entitlements",
        ("entitlement.manage",),
        ok=201,
        body={"feature": "new.feature"},
    ),
    Endpoint(
        "DELETE", f"{ORG}/installations/{{installation_id}}/entitlements/{{feature}}", ("entitlement.manage",), ok=204
    ),
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}/free-features", ("listing.view",)),
    Endpoint(
        "PUT",
        f"{ORG}/extensions/{{extension_id}}/free-features",
        ("listing.manage",),
        body={"free_features": ["a.b"]},
    ),
    # Only an installation's token may ask (a widget's delegated token): every table caller gets 403.
    Endpoint("GET", f"{API}/entitlements/{{feature}}", ok=403),
]


def _installation(org) -> Installation | None:
    return Installation.objects.filter(org=org).exclude(status="uninstalled").order_by("pk").first()


def make_targets(tenant, targets) -> dict:
    org = tenant.org
    ensure_registry()
    EmbedSettings.objects.create(org=org, host_origins=[f"https://shop.{org.slug}.test"])
    from apps.embed.themes import parse_theme

    ThemePack.objects.create(org=org, name="Target", source=THEME, resolved=parse_theme(THEME))
    SlotOverride.objects.create(org=org, slot_id="order.sidebar", max_height=300)
    Listing.objects.get_or_create(extension=targets.extension, defaults={"org": org, "name": "Target"})
    installation = _installation(org)
    if installation is not None:
        EntitlementGrant.objects.create(org=org, installation_id=installation.pk, feature="target.feature")
    return {"slot": "order.sidebar", "feature": "target.feature"}


def snapshot(org) -> dict:
    return {
        "embed_settings": list(EmbedSettings.objects.filter(org=org).values()),
        "theme_packs": list(ThemePack.objects.filter(org=org).order_by("pk").values("pk", "name", "version")),
        "slot_overrides": list(SlotOverride.objects.filter(org=org).order_by("pk").values()),
        "launches": list(Launch.objects.filter(org=org).order_by("pk").values("pk")),
        "entitlement_grants": list(EntitlementGrant.objects.filter(org=org).order_by("pk").values()),
        "free_features": list(Listing.objects.filter(org=org).order_by("pk").values_list("pk", "free_features")),
    }


# Console pages (tests/orgs/test_tenant_isolation.py): another organisation's answer 404.
PORTAL_PAGES = ["embed_settings", "billing_entitlements"]
PAGE_FORMS = {
    "embed_settings": {"op": "origins", "host_origins": "https://mole.example"},
    "billing_entitlements": {"op": "grant", "installation": "inst_01JAAAAAAAAAAAAAAAAAAAAAAA", "feature": "mole.x"},
}
OTHER_KIND: dict = {}
# Slot and feature names are names, not ids (unknown ones are covered in tests/embed and tests/billing).
NOT_IDS = {"slot", "feature"}


def fuzz_targets(tenant, ids) -> dict:
    """Real values for the API fuzzer (tests/test_api_fuzz.py): a slot name and a granted feature."""
    ensure_registry()
    installation = _installation(tenant.org)
    if installation is not None:
        EntitlementGrant.objects.get_or_create(org=tenant.org, installation_id=installation.pk, feature="fuzz.feature")
    return {"slot": ["order.sidebar", "dashboard.card"], "feature": ["fuzz.feature", "other.feature"]}
