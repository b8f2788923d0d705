"""Embeds end to end in a real Chromium against the live server, across four distinct origins:

- Plaza ``http://localhost:<port>`` (the live server: API, embed.js, slots/tokens/theme, JWKS);
- the host ``http://host.localhost:<port>`` (the demo host page, ``PLAZA_DEMO_HOST_ORIGIN``);
- widgets ``http://inst-….widgets.localhost:<port>`` (one origin per installation below
  ``PLAZA_WIDGET_ORIGIN``);
- an attacker ``http://attacker.localhost:<port2>`` (a tiny threaded HTTP server of this module),
  which also plays the look-alike host ``http://host.localhost:<port2>``.

Chromium resolves every ``*.localhost`` name to loopback, so no DNS is involved. The demo widget
package (``apps/embed/demo/widget/``) is released by two extensions (A "insights", B "loyalty"),
installed in acme, whose embed settings register the host origin.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import jwt
import pytest
from playwright.sync_api import Page, expect

from apps.embed.demo import package_files
from apps.embed.services import embed_settings_update
from apps.installs.models import Installation
from apps.installs.services import installation_create
from apps.orgs.models import Membership, Role
from apps.orgs.policy import Principal
from tests.browser.helpers import api_call
from tests.browser.test_embed_protocol import STORAGE_DUMP_JS
from tests.conftest import issue_token

pytestmark = pytest.mark.django_db(transaction=True)

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
SIDEBAR = {"slot": "order.sidebar", "entry": "widget/order-sidebar.html", "height": 220}
CARD = {"slot": "dashboard.card", "entry": "widget/dashboard-card.html", "height": 180}
SANDBOX = "allow-scripts allow-same-origin allow-forms"


# --- the attacker's server ----------------------------------------------------------------------------


class _Attacker(BaseHTTPRequestHandler):
    pages: dict[str, str] = {}
    seen: list[dict] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.seen.append({"path": self.path, "headers": dict(self.headers)})
        body = self.pages.get(self.path.split("?")[0], "<!doctype html><title>attacker</title><p>nothing here</p>")
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def attacker():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    _Attacker.pages, _Attacker.seen = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# --- the four origins and the data --------------------------------------------------------------------


@dataclass
class Embeds:
    plaza: str
    host: str
    widget_base: str
    a: Installation
    b: Installation
    host_token: str
    org_id: str
    member_id: str
    members: int
    requests: list = field(default_factory=list)
    console: list = field(default_factory=list)

    def launch(self, user_id: str) -> str:
        status, body = api_call(
            self.plaza, f"orgs/{self.org_id}/embed/launches", self.host_token, method="POST",
            data={"user_id": user_id, "host_origin": self.host},
        )  # fmt: skip
        assert status == 201, body
        return body["id"]

    def slots(self, launch: str, slot: str) -> list[dict]:
        request = urllib.request.Request(
            f"{self.plaza}/embed/v1/launches/{launch}/slots/{slot}", headers={"Origin": self.host}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return json.loads(response.read())["frames"]


def _release(vendor, name: str, *, card_permissions=(), scopes=("api:org:read", "api:members:read")):
    card = dict(
        CARD, title=f"{name.title()} summary", **({"permissions": list(card_permissions)} if card_permissions else {})
    )
    return vendor.release(
        name,
        "1.0.0",
        scopes=["events:read:order.created", "ui:slot:order.sidebar", "ui:slot:dashboard.card", *scopes],
        files=package_files(),
        ui_slots=[dict(SIDEBAR, title=f"{name.title()} notes"), card],
    )


@pytest.fixture
def embeds(live_server, settings, acme, vendor) -> Embeds:
    port = live_server.url.rsplit(":", 1)[1]
    settings.PLAZA_BASE_URL = f"http://localhost:{port}"
    settings.PLAZA_WIDGET_ORIGIN = f"http://widgets.localhost:{port}"
    settings.PLAZA_DEMO_HOST_ORIGIN = f"http://host.localhost:{port}"
    settings.ALLOWED_HOSTS = ["localhost", ".localhost", "127.0.0.1"]
    admin = Principal(kind="user", user=acme.owner, mfa_verified=True)
    installed = []
    for version in (
        _release(vendor, "insights", card_permissions=("clipboard-write",)),
        _release(vendor, "loyalty", card_permissions=("popups",), scopes=("api:org:read",)),
    ):
        installed.append(
            installation_create(
                principal=admin, org=acme.org, extension=version.extension, granted_scopes=list(version.scopes)
            )
        )
    embed_settings_update(principal=admin, org=acme.org, host_origins=[settings.PLAZA_DEMO_HOST_ORIGIN])
    return Embeds(
        plaza=settings.PLAZA_BASE_URL,
        host=settings.PLAZA_DEMO_HOST_ORIGIN,
        widget_base=settings.PLAZA_WIDGET_ORIGIN,
        a=installed[0],
        b=installed[1],
        host_token=issue_token(acme.org, scopes=["embed:launch"]),
        org_id=acme.org.pk,
        member_id=acme.user(Role.MEMBER).pk,
        members=Membership.objects.filter(org=acme.org, deactivated_at__isnull=True).count(),
    )


def widget_frame(page: Page, installation: Installation, slot: str = "order.sidebar"):
    handle = page.locator(
        f'[data-plaza-slot="{slot}"] iframe[data-plaza-installation="{installation.pk}"]'
    ).element_handle()
    frame = handle.content_frame()
    assert frame is not None
    frame.wait_for_function("() => document.documentElement.dataset.connected === 'true'")
    return frame


def sdk(frame, call: str):
    """Run ``call`` (an expression over ``m``, the SDK module) inside the widget, e.g. ``m.resize(5)``."""
    return frame.evaluate(f"import('/w/sdk.js').then((m) => {call})")


def sdk_error(frame, call: str) -> str:
    return frame.evaluate(f"import('/w/sdk.js').then((m) => {call}).then(() => 'ok', (e) => e.code)")


@pytest.fixture
def demo(page: Page, embeds: Embeds) -> Page:
    """The demo host page with all four widgets connected; every request and console line recorded."""
    page.on("request", lambda r: embeds.requests.append({"url": r.url, "headers": r.headers}))
    page.on("console", lambda m: embeds.console.append(m.text))
    page.goto(f"{embeds.host}/demo-host/")
    expect(page.locator("iframe")).to_have_count(4)
    for installation in (embeds.a, embeds.b):
        for slot in ("order.sidebar", "dashboard.card"):
            widget_frame(page, installation, slot)
    return page


# --- the demo host, and its screenshots ---------------------------------------------------------------


def test_demo_host_shows_two_widgets_per_slot_in_light_and_dark(demo: Page, embeds: Embeds):
    sidebar = demo.locator('[data-plaza-slot="order.sidebar"] iframe')
    expect(sidebar).to_have_count(2)
    # stable order: installation creation order
    assert sidebar.evaluate_all("els => els.map(e => e.dataset.plazaInstallation)") == [embeds.a.pk, embeds.b.pk]
    card_a = widget_frame(demo, embeds.a, "dashboard.card")
    expect(card_a.locator("#member-count")).to_have_text(str(embeds.members))
    expect(widget_frame(demo, embeds.a).locator("#org-name")).to_contain_text("Acme")
    light_bg = card_a.evaluate("getComputedStyle(document.body).backgroundColor")
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    shoot(demo, DOCS_IMG / "embed-demo-light.png")

    demo.locator("#theme-switch").click()
    card_a.wait_for_function("(before) => getComputedStyle(document.body).backgroundColor !== before", arg=light_bg)
    for installation in (embeds.a, embeds.b):
        for slot in ("order.sidebar", "dashboard.card"):
            frame = widget_frame(demo, installation, slot)
            frame.wait_for_function(
                "(before) => getComputedStyle(document.body).backgroundColor !== before", arg=light_bg
            )
    shoot(demo, DOCS_IMG / "embed-demo-dark.png")


def shoot(page: Page, path: Path) -> None:
    """The whole page in one viewport: Chromium paints cross-origin iframes below the fold blank in a
    full-page capture, so the viewport grows to the page's height first."""
    page.wait_for_timeout(400)  # the widgets' auto-resize settles
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": height})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})


# --- attributes, policy, framing ---------------------------------------------------------------------


def test_iframes_carry_exactly_the_sandbox_allow_title_and_referrer_policy(demo: Page, embeds: Embeds):
    expected = {
        (embeds.a.pk, "order.sidebar"): (SANDBOX, "", "Insights notes"),
        (embeds.a.pk, "dashboard.card"): (SANDBOX, "clipboard-write", "Insights summary"),
        (embeds.b.pk, "order.sidebar"): (SANDBOX, "", "Loyalty notes"),
        (embeds.b.pk, "dashboard.card"): (SANDBOX + " allow-popups", "", "Loyalty summary"),
    }
    for (inst, slot), (sandbox, allow, title) in expected.items():
        attrs = demo.locator(f'[data-plaza-slot="{slot}"] iframe[data-plaza-installation="{inst}"]').evaluate(
            "el => [el.getAttribute('sandbox'), el.getAttribute('allow'), el.getAttribute('title'),"
            " el.getAttribute('referrerpolicy'), new URL(el.src).origin]"
        )
        assert attrs[:4] == [sandbox, allow, title, "no-referrer"], (inst, slot)
        assert attrs[4] == embeds.widget_base.replace("//", f"//{inst.lower().replace('_', '-')}.")
    # the sandbox is enforced: no top navigation, no javascript: on top, no undeclared popup
    frame = widget_frame(demo, embeds.a)
    assert (
        frame.evaluate(
            "(() => { try { top.location.href = 'http://attacker.localhost:1/'; return 'navigated' }"
            " catch (e) { return e.name } })()"
        )
        == "SecurityError"
    )
    assert (
        frame.evaluate(
            "(() => { try { top.location.href = 'javascript:document.title = \"pwned\"'; return 'navigated' }"
            " catch (e) { return e.name } })()"
        )
        == "SecurityError"
    )
    assert frame.evaluate("window.open('http://attacker.localhost:1/') === null") is True
    assert sdk_error(frame, "m.navigate('javascript:alert(1)')") == "route_not_allowed"
    assert sdk_error(frame, "m.navigate('//attacker.localhost/')") == "route_not_allowed"
    demo.wait_for_timeout(300)
    assert demo.url == f"{embeds.host}/demo-host/" and "pwned" not in demo.title()
    assert len(demo.context.pages) == 1
    # B declared popups for its card: window.open works there (and stays sandboxed)
    with demo.context.expect_page() as popup:
        widget_frame(demo, embeds.b, "dashboard.card").evaluate("window.open('about:blank#popup')")
    assert popup.value.url.startswith("about:blank")


def test_widget_framed_by_an_unregistered_or_lookalike_origin_is_blocked(embeds: Embeds, attacker, page: Page):
    launch = embeds.launch(embeds.member_id)
    src = embeds.slots(launch, "order.sidebar")[0]["src"]
    port = attacker.server_address[1]
    _Attacker.pages["/frame"] = f"""<!doctype html><title>evil</title>
        <script>window.got = []; addEventListener('message', (e) => window.got.push(e.origin));</script>
        <iframe id="victim" src="{src}"></iframe>"""
    for origin in (f"http://attacker.localhost:{port}", f"http://host.localhost:{port}"):  # other site; look-alike port
        blocked = []
        page.on("console", lambda m, blocked=blocked: blocked.append(m.text))
        page.goto(f"{origin}/frame")
        page.wait_for_timeout(1000)
        frame = page.locator("#victim").element_handle().content_frame()
        # Chromium replaces the refused document: nothing of the widget ran or rendered
        assert frame.evaluate("document.documentElement.dataset.connected") is None
        assert frame.evaluate("document.getElementById('app')") is None
        assert page.evaluate("window.got") == []
        assert any("frame-ancestors" in line for line in blocked), blocked
        # nor may such a page mint tokens with the launch id (CORS and an exact Origin check)
        outcome = page.evaluate(
            """([url, inst]) => fetch(url, {
                method: 'POST', headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({installation_id: inst}),
            }).then((r) => r.status, (e) => e.name)""",
            [f"{embeds.plaza}/embed/v1/launches/{launch}/tokens", embeds.a.pk],
        )
        assert outcome == "TypeError"
    # the registered host origin may frame it (the same document, on the same launch)
    page.goto(f"{embeds.host}/demo-host/")
    widget_frame(page, embeds.a)


# --- requests from widgets ------------------------------------------------------------------------------


def test_resize_clamps_to_the_slot_limits(demo: Page, embeds: Embeds):
    launch = embeds.launch(embeds.member_id)
    spec = embeds.slots(launch, "order.sidebar")[0]
    frame = widget_frame(demo, embeds.a)
    iframe = demo.locator(f'[data-plaza-slot="order.sidebar"] iframe[data-plaza-installation="{embeds.a.pk}"]')
    assert sdk(frame, "m.resize(100000)") == spec["max_height"]
    assert round(iframe.evaluate("e => e.getBoundingClientRect().height")) == spec["max_height"]
    assert sdk(frame, "m.resize(0)") == spec["min_height"]
    assert round(iframe.evaluate("e => e.getBoundingClientRect().height")) == spec["min_height"]


def test_toast_and_upgrade_prompt_are_rendered_by_the_host(demo: Page, embeds: Embeds):
    sidebar = widget_frame(demo, embeds.a)
    sidebar.get_by_label("Note for this order").fill("Gift wrap, please")
    sidebar.get_by_role("button", name="Save note").click()
    toast = demo.locator(".plaza-toast")
    expect(toast).to_contain_text("Insights notes")
    expect(toast).to_contain_text("Note saved")
    card = widget_frame(demo, embeds.a, "dashboard.card")
    card.get_by_role("button", name="Export the report").click()
    dialog = demo.get_by_role("dialog", name="Upgrade needed")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("“reports.export”")
    expect(card.locator("#report-result")).to_have_text("Exports need an upgrade.")
    dialog.get_by_role("button", name="Close").click()
    expect(demo.locator("dialog")).to_have_count(0)


def test_keyboard_focus_can_leave_the_widget(demo: Page, embeds: Embeds):
    frame = widget_frame(demo, embeds.b, "dashboard.card")  # the last widget of the page
    frame.get_by_role("button", name="Export the report").focus()
    demo.keyboard.press("Tab")
    active = demo.evaluate("document.activeElement && document.activeElement.tagName")
    assert active != "IFRAME"
    # and into the next widget from the one before it
    first = widget_frame(demo, embeds.a, "order.sidebar")
    first.get_by_role("button", name="Show history").focus()
    demo.keyboard.press("Tab")
    expect(
        demo.locator(f'[data-plaza-slot="order.sidebar"] iframe[data-plaza-installation="{embeds.b.pk}"]')
    ).to_be_focused()


def test_forged_messages_from_an_attacker_window_and_a_sibling_change_nothing(demo: Page, embeds: Embeds, attacker):
    a, b = widget_frame(demo, embeds.a), widget_frame(demo, embeds.b)
    token_a = sdk(a, "m.getToken()")
    iframe_a = demo.locator(f'[data-plaza-slot="order.sidebar"] iframe[data-plaza-installation="{embeds.a.pk}"]')
    height = iframe_a.evaluate("e => e.style.height")
    # the sibling cannot script A (distinct origins), and its forged posts are ignored by A and the host
    assert (
        b.evaluate("(() => { try { return parent.frames[0].document.title } catch (e) { return e.name } })()")
        == "SecurityError"
    )
    b.evaluate(
        """() => {
        const env = (type, payload) => ({plaza: 1, id: 'f-' + type, type, payload, replyTo: null});
        const a = parent.frames[0];
        a.postMessage(env('init', {version: 1}), '*', [new MessageChannel().port2]);
        a.postMessage(env('token', {token: 'forged', expires_in: 300}), '*');
        const forged = [
          ['resize', {height: 9999}], ['upgrade', {feature: 'forged'}], ['navigate', {route: '/demo-host/'}],
        ];
        for (const [t, p] of forged)
          parent.postMessage(env(t, p), '*');
    }"""
    )
    # an attacker page that opens the host and posts to it and its frames
    port = attacker.server_address[1]
    attacker_page = demo.context.new_page()
    attacker_page.goto(f"http://attacker.localhost:{port}/")
    attacker_page.evaluate(
        """(host) => {
        const w = window.open(host + '/demo-host/');
        const env = (type, payload) => ({plaza: 1, id: 'x-' + type, type, payload, replyTo: null});
        setInterval(() => {
          for (const [t, p] of [['hello', {versions: [1]}], ['resize', {height: 9999}], ['upgrade', {feature: 'x'}]]) {
            try {
              w.postMessage(env(t, p), '*');
              for (let i = 0; i < w.frames.length; i++) w.frames[i].postMessage(env(t, p), '*');
            } catch (e) {}
          }
        }, 200);
    }""",
        embeds.host,
    )
    demo.wait_for_timeout(1500)
    popup = demo.context.pages[-1]
    expect(popup.locator("dialog")).to_have_count(0)
    expect(demo.locator("dialog")).to_have_count(0)
    assert iframe_a.evaluate("e => e.style.height") == height
    assert sdk(a, "m.getToken()") == token_a
    assert demo.url == f"{embeds.host}/demo-host/"


# --- the delegated token --------------------------------------------------------------------------------


@contextmanager
def later(seconds: int):
    """PyJWT's clock (the server's and ours, one process) ``seconds`` ahead."""
    real = dt.datetime

    class Later(real):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + dt.timedelta(seconds=seconds)

    with mock.patch("jwt.api_jwt.datetime", Later):
        yield


def test_token_lives_only_on_the_port_and_binds_audience_and_expiry(demo: Page, embeds: Embeds):
    a, b = widget_frame(demo, embeds.a), widget_frame(demo, embeds.b)
    token_a, token_b = sdk(a, "m.getToken()"), sdk(b, "m.getToken()")
    assert token_a != token_b
    demo.wait_for_timeout(300)

    # --- never in a URL, Referer, storage, cookie or the console --------------------------------------
    for request in embeds.requests:
        for token in (token_a, token_b):
            assert token not in request["url"], request["url"]
            for name, value in request["headers"].items():
                if token in value:
                    assert name == "authorization" and request["url"].startswith(f"{embeds.plaza}/api/v1/"), request
    for frame in demo.frames:
        dump = frame.evaluate(STORAGE_DUMP_JS)
        assert token_a not in dump and token_b not in dump, frame.url
    assert all(token_a not in line and token_b not in line for line in embeds.console)
    # no Referer leaves the host page for Plaza's embed endpoints or the widget origins
    for request in embeds.requests:
        if "/embed/v1/" in request["url"] or ".widgets.localhost" in request["url"]:
            assert "referer" not in request["headers"], request

    # --- verified with the JWKS, as an extension backend would --------------------------------------
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        f"{embeds.plaza}/.well-known/jwks.json"
    ) as r:
        jwks = jwt.PyJWKSet.from_dict(json.loads(r.read()))
    header = jwt.get_unverified_header(token_a)
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(token_a, key.key, algorithms=["ES256"], audience=embeds.a.extension_id)
    assert claims["aud"] == embeds.a.extension_id and claims["inst"] == embeds.a.pk
    assert 60 <= claims["exp"] - claims["iat"] <= 300
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token_a, key.key, algorithms=["ES256"], audience=embeds.b.extension_id)
    # the pairwise subject differs per extension for the same user
    claims_b = jwt.decode(token_b, key.key, algorithms=["ES256"], audience=embeds.b.extension_id)
    assert claims["sub"] != claims_b["sub"]

    # --- Plaza's API: accepted for its scopes, refused after expiry ---------------------------------
    status, body = api_call(embeds.plaza, f"orgs/{embeds.org_id}", token_a)
    assert status == 200, body
    status, _ = api_call(embeds.plaza, f"orgs/{embeds.org_id}/members", token_b)  # B was not granted members:read
    assert status in (403, 404)
    lifetime = claims["exp"] - claims["iat"]
    with later(lifetime + 5):
        with pytest.raises(jwt.ExpiredSignatureError):
            jwt.decode(token_a, key.key, algorithms=["ES256"], audience=embeds.a.extension_id)
        status, _ = api_call(embeds.plaza, f"orgs/{embeds.org_id}", token_a)
        assert status == 401


def test_demo_sidebar_shows_the_launch_context_and_opens_the_order(demo: Page, embeds: Embeds):
    sidebar = widget_frame(demo, embeds.a)
    expect(sidebar.locator("#order")).to_have_text("Order #1001")
    with demo.expect_navigation():
        sidebar.get_by_role("button", name="Open order").click()
    assert demo.url == f"{embeds.host}/demo-host/?order=1001"
