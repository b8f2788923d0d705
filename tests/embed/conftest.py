"""Embed fixtures.

- ``vendor`` (tests/installs/conftest.py) publishes widget extensions; ``acme`` (alice owner, bob
  member) installs them and registers ``HOST`` as its host origin; ``globex`` (charlie) is the outsider.
- ``shop``: acme's embed setup — two installed widget extensions (``shop.notes``, ``shop.points``),
  the host token (a service account with ``embed:launch``) and ``shop.launch(user)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from apps.embed.origins import widget_origin
from apps.embed.services import embed_settings_update
from apps.installs.models import Installation
from apps.installs.services import installation_create
from apps.orgs.models import Role
from apps.orgs.policy import Principal
from tests.conftest import ApiClient, Tenant, issue_token
from tests.installs.conftest import event_catalog, vendor  # noqa: F401

HOST = "https://shop.acme.test"
WIDGET_BASE = "http://widgets.localhost:8000"

SIDEBAR_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Notes</title><style>body{margin:0}</style></head>
<body>
<p id="s">hi</p>
<script>document.getElementById("s").textContent = "ran <script> inline";</script>
<script type="module" src="/w/sdk.js"></script>
<script type="module" src="app.js"></script>
</body>
</html>
"""
CARD_HTML = "<!doctype html><title>Card</title><p>card</p><script src='app.js'></script>"
SCOPES = [
    "events:read:order.created",
    "ui:slot:order.sidebar",
    "ui:slot:dashboard.card",
    "api:org:read",
    "api:members:read",
    "api:audit:read",
]


def ui_slots(**overrides) -> list[dict]:
    sidebar = {"slot": "order.sidebar", "entry": "ui/sidebar.html", "title": "Notes", "height": 300}
    card = {"slot": "dashboard.card", "entry": "ui/card.html", "title": "Card"}
    sidebar.update(overrides.get("sidebar", {}))
    card.update(overrides.get("card", {}))
    return [sidebar, card]


def widget_files() -> dict[str, bytes]:
    return {
        "ui/sidebar.html": SIDEBAR_HTML.encode(),
        "ui/card.html": CARD_HTML.encode(),
        "ui/app.js": b"export const x = 1;\n",
        "ui/logo.png": b"\x89PNG\r\n\x1a\n",
        "ui/other.html": b"<p>not an entry</p>",
    }


def release_widget(publisher, name: str, *, scopes=None, slots=None, version: str = "1.0.0"):
    return publisher.release(
        name, version, scopes=list(SCOPES if scopes is None else scopes), files=widget_files(),
        ui_slots=slots if slots is not None else ui_slots(),
    )  # fmt: skip


def install(org, admin, version, scopes=None) -> Installation:
    return installation_create(
        principal=Principal(kind="user", user=admin, mfa_verified=True),
        org=org,
        extension=version.extension,
        granted_scopes=list(version.scopes if scopes is None else scopes),
    )


@dataclass
class Shop:
    tenant: Tenant
    notes: Installation
    points: Installation
    host_token: str

    @property
    def org(self):
        return self.tenant.org

    def api(self) -> ApiClient:
        return ApiClient(self.host_token)

    def launch(self, user=None, origin: str = HOST, context=None) -> str:
        user = user or self.tenant.user(Role.ADMIN)
        body = {"user_id": user.pk, "host_origin": origin}
        if context is not None:
            body["context"] = context
        res = self.api().call("POST", f"orgs/{self.org.pk}/embed/launches", body)
        assert res.status_code == 201, res.content
        return res.json()["id"]


@pytest.fixture
def shop(acme, vendor) -> Shop:  # noqa: F811
    notes = install(acme.org, acme.owner, release_widget(vendor, "notes"))
    points = install(
        acme.org,
        acme.owner,
        release_widget(
            vendor,
            "points",
            scopes=[
                "events:read:order.created",
                "ui:slot:order.sidebar",
                "ui:slot:dashboard.card",
                "api:org:read",
                "http:fetch:api.points.example",
            ],
            slots=ui_slots(
                sidebar={"permissions": ["popups", "clipboard-write"], "connect_src": ["https://api.points.example"]}
            ),
        ),
    )
    embed_settings_update(
        principal=Principal(kind="user", user=acme.owner, mfa_verified=True), org=acme.org, host_origins=[HOST]
    )
    return Shop(tenant=acme, notes=notes, points=points, host_token=issue_token(acme.org, scopes=["embed:launch"]))


def widget_host(installation_id: str) -> str:
    return widget_origin(installation_id).split("://", 1)[1]


def frames(client, launch_id: str, slot: str, origin: str = HOST):
    return client.get(f"/embed/v1/launches/{launch_id}/slots/{slot}", HTTP_ORIGIN=origin)
