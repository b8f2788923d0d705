"""Protocol v1 of embed.js (host) and sdk.js (widget) in a real Chromium, across five distinct origins
served by Playwright's request interception: Plaza, the host page, two widget origins (one per
installation) and an attacker. Plaza's endpoints are stubbed here so each rule of the protocol can be
driven precisely; ``test_embed_live.py`` runs the same loader and SDK against the real backend.

What a widget may do is driven from inside the widget document (``frame.evaluate`` runs in the
widget's own origin), exactly as a hostile or buggy extension would."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

STATIC = Path(__file__).resolve().parents[2] / "apps" / "embed" / "static" / "embed"

PLAZA = "http://plaza.test"
HOST = "http://shop.test"
WIDGET_A = "http://inst-aaaa.widgets.test"
WIDGET_B = "http://inst-bbbb.widgets.test"
ATTACKER = "http://attacker.test"
LOOKALIKE_HOST = "http://shop.test.attacker.test"
LAUNCH = "lch_TESTLAUNCH"

FRAMES = [
    {
        "installation_id": "inst_AAAA",
        "extension_id": "ext_A",
        "title": "Order notes",
        "src": f"{WIDGET_A}/w/view-a/",
        "origin": WIDGET_A,
        "sandbox": "allow-scripts allow-same-origin allow-forms",
        "allow": "",
        "referrerpolicy": "no-referrer",
        "height": 200,
        "min_height": 80,
        "max_height": 400,
    },
    {
        "installation_id": "inst_BBBB",
        "extension_id": "ext_B",
        "title": "Loyalty",
        "src": f"{WIDGET_B}/w/view-b/",
        "origin": WIDGET_B,
        "sandbox": "allow-scripts allow-same-origin allow-forms allow-popups",
        "allow": "clipboard-write",
        "referrerpolicy": "no-referrer",
        "height": 150,
        "min_height": 100,
        "max_height": 300,
    },
]

THEME = {
    "--plaza-color-bg": {"type": "color", "value": "#14151a"},
    "--plaza-color-text": {"type": "color", "value": "#eceef4"},
    "--plaza-font-sans": {"type": "fontFamily", "value": 'system-ui, "Segoe UI", sans-serif'},
}

HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Order 42</h1><a id="before" href="/orders/41">Previous order</a>
<div data-plaza-slot="order.sidebar"></div>
<a id="after" href="/orders/43">Next order</a>
<script type="module">
  import { mount } from "%(plaza)s/embed/embed.js";
  window.navigated = [];
  window.upgrades = [];
  window.plaza = await mount({
    launch: "%(launch)s",
    routes: ["/orders/", "/help"],
    onNavigate: (route) => window.navigated.push(route),
    context: {order_id: "42"},
  });
  document.body.dataset.mounted = "true";
</script></body></html>"""

WIDGET_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="plaza-parent-origin" content="%(parent)s">
<meta name="plaza-installation" content="%(inst)s">
<meta name="plaza-api-base" content="%(plaza)s">
<title>widget</title></head>
<body><p>Widget %(inst)s</p><button id="first">First</button><button id="last">Last</button>
<script type="module">
  import { connect } from "/w/sdk.js";
  window.received = [];
  window.addEventListener("message", (e) => window.received.push({origin: e.origin, type: e.data && e.data.type}));
  window.connecting = connect({timeout: %(timeout)d}).then(
    (c) => { window.client = c; document.body.dataset.connected = "true"; return true; },
    (e) => { document.body.dataset.connected = "error:" + e.code; return false; });
</script></body></html>"""

ATTACKER_PAGE = """<!doctype html><html><head><title>evil</title></head><body>
<iframe id="victim" src="%(src)s"></iframe>
<script>
  window.got = [];
  window.addEventListener("message", (e) => window.got.push({origin: e.origin, data: e.data}));
</script></body></html>"""


# Everything a page could have persisted or exposed, as one string (storage may be denied to a frame).
STORAGE_DUMP_JS = """() => {
  const read = (f) => { try { return f() } catch (e) { return 'denied:' + e.name } };
  return JSON.stringify([
    read(() => document.cookie), window.name, location.href, document.referrer,
    read(() => Object.entries(localStorage)), read(() => Object.entries(sessionStorage)),
  ]);
}"""


@dataclass
class Stub:
    """The stubbed origins: what each answers, and every request the browser made."""

    issued: list[str] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    widget_csp: dict[str, str] = field(default_factory=dict)
    token_seconds: int = 120
    extra: dict[str, tuple[int, dict, str]] = field(default_factory=dict)
    frames_for: dict[str, list[dict]] = field(default_factory=dict)

    def widget_page(self, origin: str, inst: str, parent: str = HOST, timeout: int = 3000) -> str:
        return WIDGET_PAGE % {"parent": parent, "inst": inst, "plaza": PLAZA, "timeout": timeout}

    def handle(self, route):
        request = route.request
        url = request.url
        self.requests.append({"url": url, "headers": request.headers, "method": request.method})
        origin = "/".join(url.split("/")[:3])
        path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
        if url in self.extra:
            status, headers, body = self.extra[url]
            return route.fulfill(status=status, headers=headers, body=body)
        cors = {"Access-Control-Allow-Origin": HOST, "Vary": "Origin", "Content-Type": "application/json"}
        if origin == PLAZA:
            if path == "/embed/embed.js":
                return route.fulfill(
                    body=(STATIC / "embed.js").read_text(),
                    headers={"Content-Type": "text/javascript", "Access-Control-Allow-Origin": "*"},
                )
            if request.method == "OPTIONS":
                return route.fulfill(
                    status=204,
                    headers=cors
                    | {"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "content-type"},
                )
            if path.startswith(f"/embed/v1/launches/{LAUNCH}/slots/"):
                name = path.rsplit("/", 1)[1]
                frames = FRAMES if name == "order.sidebar" else self.frames_for.get(name, [])
                return route.fulfill(headers=cors, body=json.dumps({"frames": frames}))
            if path.startswith(f"/embed/v1/launches/{LAUNCH}/theme"):
                return route.fulfill(headers=cors, body=json.dumps({"theme": THEME, "scheme": "dark"}))
            if path == f"/embed/v1/launches/{LAUNCH}/tokens" and request.method == "POST":
                body = json.loads(request.post_data or "{}")
                token = (
                    "eyJhbGciOiJFUzI1NiJ9.eyJpbnN0Ijoi"
                    + body.get("installation_id", "")
                    + "."
                    + secrets.token_urlsafe(24)
                )
                self.issued.append(token)
                return route.fulfill(
                    headers=cors,
                    body=json.dumps(
                        {"token": token, "expires_at": "2030-01-01T00:00:00Z", "expires_in": self.token_seconds}
                    ),
                )
            if path.startswith("/api/v1/"):
                api_cors = {
                    "Access-Control-Allow-Origin": request.headers.get("origin", "*"),
                    "Content-Type": "application/json",
                }
                if request.method == "OPTIONS":
                    return route.fulfill(
                        status=204,
                        headers=api_cors | {"Access-Control-Allow-Headers": "authorization, accept, content-type"},
                    )
                auth = request.headers.get("authorization", "")
                return route.fulfill(headers=api_cors, body=json.dumps({"seen_token": auth.removeprefix("Bearer ")}))
            return route.fulfill(status=404, body="")
        if origin == HOST:
            if path == "/" or path.startswith("/orders/"):
                return route.fulfill(
                    body=HOST_PAGE % {"plaza": PLAZA, "launch": LAUNCH}, headers={"Content-Type": "text/html"}
                )
            if path == "/plain/":  # no onNavigate: embed.js navigates the page itself
                body = (HOST_PAGE % {"plaza": PLAZA, "launch": LAUNCH}).replace(
                    "onNavigate: (route) => window.navigated.push(route),", ""
                )
                return route.fulfill(body=body, headers={"Content-Type": "text/html"})
            return route.fulfill(status=404, body="")
        if origin in (WIDGET_A, WIDGET_B) or origin.endswith(".widgets.test"):
            if path == "/w/sdk.js":
                return route.fulfill(body=(STATIC / "sdk.js").read_text(), headers={"Content-Type": "text/javascript"})
            if path.startswith("/w/view-"):
                inst = "inst_AAAA" if origin == WIDGET_A else "inst_BBBB"
                headers = {
                    "Content-Type": "text/html",
                    "Content-Security-Policy": self.widget_csp.get(origin, f"frame-ancestors {HOST}"),
                    "Cache-Control": "no-store",
                }
                return route.fulfill(body=self.widget_page(origin, inst), headers=headers)
            return route.fulfill(status=404, body="")
        if origin in (ATTACKER, LOOKALIKE_HOST):
            return route.fulfill(body="<!doctype html><title>attacker</title>", headers={"Content-Type": "text/html"})
        return route.abort()


@pytest.fixture
def stub():
    return Stub()


@pytest.fixture
def ctx(browser, stub, request):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(8000)
    context.route("**/*", stub.handle)
    console: list[str] = []
    context.console = console  # type: ignore[attr-defined]
    yield context
    context.close()


@pytest.fixture
def host(ctx) -> Page:
    """The host page with both widgets connected."""
    page = ctx.new_page()
    page.on("console", lambda msg: ctx.console.append(msg.text))
    page.goto(f"{HOST}/")
    expect(page.locator("body[data-mounted=true]")).to_be_attached()
    for frame in (widget(page, WIDGET_A), widget(page, WIDGET_B)):
        frame.wait_for_function("document.body.dataset.connected === 'true'")
    return page


def widget(page: Page, origin: str):
    for _ in range(50):
        for frame in page.frames:
            if frame.url.startswith(origin + "/"):
                return frame
        page.wait_for_timeout(100)
    raise AssertionError(f"no frame from {origin}: {[f.url for f in page.frames]}")


def iframe_height(page: Page, inst: str) -> int:
    return page.locator(f'iframe[data-plaza-installation="{inst}"]').evaluate("el => el.getBoundingClientRect().height")


# --- mounting ---------------------------------------------------------------------------------------


def test_slot_gets_one_iframe_per_frame_with_exact_attributes_in_order(host: Page):
    iframes = host.locator("[data-plaza-slot=order\\.sidebar] iframe")
    expect(iframes).to_have_count(2)
    for index, spec in enumerate(FRAMES):
        attrs = iframes.nth(index).evaluate(
            "el => ({sandbox: el.getAttribute('sandbox'), allow: el.getAttribute('allow'),"
            " title: el.getAttribute('title'),"
            " referrerpolicy: el.getAttribute('referrerpolicy'), src: el.getAttribute('src'),"
            " inst: el.dataset.plazaInstallation})"
        )
        assert attrs == {
            "sandbox": spec["sandbox"],
            "allow": spec["allow"],
            "title": spec["title"],
            "referrerpolicy": spec["referrerpolicy"],
            "src": spec["src"],
            "inst": spec["installation_id"],
        }
    # both ready; the initial theme reached the widgets as CSS variables
    expect(iframes.nth(0)).to_have_attribute("data-plaza-ready", "true")
    frame = widget(host, WIDGET_A)
    assert (
        frame.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--plaza-color-bg')") == "#14151a"
    )
    assert frame.evaluate("window.client.context") == {"order_id": "42"}
    assert frame.evaluate("window.client.version") == 1


# --- handshake and forged messages -----------------------------------------------------------------


def test_widget_talks_only_on_its_port_and_the_token_reaches_only_that_widget(host: Page, stub: Stub):
    a, b = widget(host, WIDGET_A), widget(host, WIDGET_B)
    token_a = a.evaluate("window.client.getToken()")
    token_b = b.evaluate("window.client.getToken()")
    assert token_a in stub.issued and token_b in stub.issued and token_a != token_b
    assert "inst_AAAA" in token_a and "inst_BBBB" in token_b
    # the API call carries it in the Authorization header only
    seen = a.evaluate("window.client.api('orgs')")
    assert seen == {"seen_token": token_a}
    # Only hello/init went over window messaging; init came from the host origin exactly.
    assert a.evaluate("window.received") == [{"origin": HOST, "type": "init"}]


def test_forged_messages_from_a_sibling_frame_change_nothing(host: Page, stub: Stub):
    a, b = widget(host, WIDGET_A), widget(host, WIDGET_B)
    token_a = a.evaluate("window.client.getToken()")
    before = iframe_height(host, "inst_AAAA")
    # B cannot script A: they are on different origins
    assert (
        b.evaluate("(() => { try { return parent.frames[0].document.title } catch (e) { return e.name } })()")
        == "SecurityError"
    )
    # B posts forged host→widget messages to A's window, and widget→host requests to the host window
    b.evaluate(
        """() => {
        const a = parent.frames[0];
        const port = new MessageChannel().port2;
        const env = (type, payload) => ({plaza: 1, id: 'forged-' + type, type, payload, replyTo: null});
        a.postMessage({...env('init', {version: 1, installation_id: 'inst_AAAA'})}, '*', [port]);
        a.postMessage(env('token', {token: 'forged-token', expires_in: 300}), '*');
        a.postMessage(env('theme', {theme: {'--plaza-color-bg': {type: 'color', value: '#ff0000'}}}), '*');
        for (const [type, payload] of [['resize', {height: 399}], ['navigate', {route: '/orders/666'}],
                                       ['upgrade', {feature: 'forged'}], ['toast', {message: 'forged'}],
                                       ['token.request', {}], ['init', {version: 1}]]) {
          parent.postMessage(env(type, payload), '*');
        }
    }"""
    )
    host.wait_for_timeout(500)
    assert a.evaluate("window.client.getToken()") == token_a
    assert a.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--plaza-color-bg')") == "#14151a"
    assert iframe_height(host, "inst_AAAA") == before
    assert host.evaluate("window.navigated") == []
    expect(host.locator("dialog")).to_have_count(0)
    expect(host.locator(".plaza-toast")).to_have_count(0)
    # A's received log shows the forged messages arrived at its window and were ignored
    types = [m["type"] for m in a.evaluate("window.received")]
    assert types[0] == "init" and "token" in types


def test_a_sibling_hello_reconnects_only_itself(host: Page):
    a, b = widget(host, WIDGET_A), widget(host, WIDGET_B)
    token_a = a.evaluate("window.client.getToken()")
    # B sends a fresh hello claiming to be A: the host answers B (by event.source), never A
    b.evaluate(
        "parent.postMessage({plaza: 1, id: 'again', type: 'hello',"
        " payload: {versions: [1], installation_id: 'inst_AAAA'},"
        " replyTo: null}, '" + HOST + "')"
    )
    # B's original handshake and its new one
    b.wait_for_function("() => window.received.filter(m => m.type === 'init').length === 2")
    assert a.evaluate("window.received.filter(m => m.type === 'init').length") == 1
    assert a.evaluate("window.client.getToken()") == token_a
    assert a.evaluate("window.client.resize(120)") == 120  # A's port still works


def test_attacker_window_that_opens_the_host_cannot_drive_it(host: Page, ctx):
    attacker = ctx.new_page()
    attacker.goto(f"{ATTACKER}/x")  # an empty page on the attacker origin
    with ctx.expect_page() as popup_info:
        attacker.evaluate(f"window.victim = window.open('{HOST}/orders/1')")
    popup = popup_info.value
    expect(popup.locator("body[data-mounted=true]")).to_be_attached()
    attacker.evaluate(
        """() => {
        const env = (type, payload) => ({plaza: 1, id: 'x-' + type, type, payload, replyTo: null});
        for (const [type, payload] of [['hello', {versions: [1]}], ['resize', {height: 399}],
               ['navigate', {route: '/orders/666'}], ['upgrade', {feature: 'pro'}], ['toast', {message: 'pwned'}]]) {
          window.victim.postMessage(env(type, payload), '*');
          const frames = window.victim.frames;
          for (let i = 0; i < frames.length; i++) frames[i].postMessage(env(type, payload), '*');
        }
    }"""
    )
    popup.wait_for_timeout(500)
    assert popup.evaluate("window.navigated") == []
    expect(popup.locator("dialog")).to_have_count(0)
    expect(popup.locator(".plaza-toast")).to_have_count(0)
    assert iframe_height(popup, "inst_AAAA") == 200


def test_widget_framed_by_an_unregistered_origin_is_blocked_by_frame_ancestors(ctx, stub: Stub):
    stub.extra[f"{ATTACKER}/"] = (200, {"Content-Type": "text/html"}, ATTACKER_PAGE % {"src": f"{WIDGET_A}/w/view-a/"})
    page = ctx.new_page()
    page.goto(f"{ATTACKER}/")
    page.wait_for_timeout(800)
    frames = [f for f in page.frames if f.url.startswith(WIDGET_A)]
    # Chromium replaces a refused frame with an error page: no widget document, no script ran.
    assert frames == [] or frames[0].evaluate("document.body ? document.body.innerText : ''") == ""
    assert page.evaluate("window.got") == []


def test_forged_init_from_an_attacker_parent_is_ignored_when_csp_is_missing(ctx, stub: Stub):
    # Defence in depth: even if the widget were framed by a foreign page (say its CSP were lost),
    # hello goes only to the server-named parent origin, and init from anyone else is ignored.
    stub.widget_csp[WIDGET_A] = "default-src * 'unsafe-inline'"
    for parent in (ATTACKER, LOOKALIKE_HOST):
        stub.extra[f"{parent}/"] = (
            200,
            {"Content-Type": "text/html"},
            ATTACKER_PAGE % {"src": f"{WIDGET_A}/w/view-a/"},
        )
        page = ctx.new_page()
        page.goto(f"{parent}/")
        frame = widget(page, WIDGET_A)
        frame.wait_for_function("window.received !== undefined")
        page.evaluate(
            """() => {
            const w = document.getElementById('victim').contentWindow;
            const ch = new MessageChannel();
            window.forgedPort = ch.port1;
            window.portTraffic = [];
            ch.port1.onmessage = (e) => window.portTraffic.push(e.data);
            for (const replyTo of [null, 'guess']) {
              const init = {version: 1, installation_id: 'inst_AAAA'};
              w.postMessage({plaza: 1, id: 'f', type: 'init', payload: init, replyTo}, '*', replyTo ? [] : [ch.port2]);
            }
        }"""
        )
        page.wait_for_timeout(400)
        assert page.evaluate("window.got") == []  # the hello was never delivered to this parent
        assert frame.evaluate("document.body.dataset.connected || ''") in ("", "error:timeout")
        assert page.evaluate("window.portTraffic") == []
        page.close()


def test_frame_navigated_to_a_lookalike_origin_gets_no_init(ctx, stub: Stub):
    lookalike = "http://inst-aaaa.widgets.test.attacker.test"
    frames = [dict(FRAMES[0])]
    stub.extra[f"{lookalike}/w/view-a/"] = (
        200,
        {"Content-Type": "text/html"},
        """<!doctype html><script>
        window.got = [];
        window.addEventListener('message', (e) => window.got.push(e.data && e.data.type));
        parent.postMessage({plaza: 1, id: 'h1', type: 'hello', payload: {versions: [1]}, replyTo: null}, '*');
        </script>""",
    )
    del frames
    page = ctx.new_page()
    page.goto(f"{HOST}/")
    a = widget(page, WIDGET_A)
    a.wait_for_function("document.body.dataset.connected === 'true'")
    # The widget navigates its own frame to a look-alike origin, which says hello from the same window.
    a.evaluate(f"location.href = '{lookalike}/w/view-a/'")
    for _ in range(30):
        lf = [f for f in page.frames if f.url.startswith(lookalike)]
        if lf:
            break
        page.wait_for_timeout(100)
    lf[0].wait_for_load_state()
    page.wait_for_timeout(400)
    assert lf[0].evaluate("window.got") == []  # no init, no response


def test_unsupported_version_and_unknown_type_and_timeout(ctx, stub: Stub):
    page = ctx.new_page()
    page.goto(f"{HOST}/")
    a = widget(page, WIDGET_A)
    a.wait_for_function("document.body.dataset.connected === 'true'")
    # an unknown request type answers `unsupported`
    assert a.evaluate("window.client.request('teleport', {}).then(() => 'ok', (e) => e.code)") == "unsupported"
    # something the host never answers times out
    assert (
        a.evaluate("window.client.request('response', {}, {timeout: 300}).then(() => 'ok', (e) => e.code)") == "timeout"
    )
    # a hello offering only v2 gets an unsupported_version answer on the window and no port
    result = a.evaluate(
        """(host) => new Promise((resolve) => {
        window.addEventListener('message', (e) => {
          if (e.data && e.data.replyTo === 'v2hello')
            resolve({type: e.data.type, ports: e.ports.length, code: e.data.payload.error.code});
        });
        parent.postMessage({plaza: 1, id: 'v2hello', type: 'hello', payload: {versions: [2]}, replyTo: null}, host);
    })""",
        HOST,
    )
    assert result == {"type": "response", "ports": 0, "code": "unsupported_version"}


# --- requests -----------------------------------------------------------------------------------------


def test_resize_is_clamped_to_the_slot_limits(host: Page):
    a, b = widget(host, WIDGET_A), widget(host, WIDGET_B)
    assert a.evaluate("window.client.resize(5000)") == 400
    assert iframe_height(host, "inst_AAAA") == 400
    assert a.evaluate("window.client.resize(1)") == 80
    assert iframe_height(host, "inst_AAAA") == 80
    assert a.evaluate("window.client.resize(250.4)") == 251
    assert b.evaluate("window.client.resize(-50)") == 100
    assert (
        a.evaluate("window.client.request('resize', {height: 'tall'}).then(() => 'ok', (e) => e.code)")
        == "invalid_payload"
    )
    assert iframe_height(host, "inst_AAAA") == 251


def test_navigate_only_to_allowed_host_routes(host: Page):
    a = widget(host, WIDGET_A)
    assert a.evaluate("window.client.navigate('/orders/7')") == {"navigated": True}
    refused = [
        "javascript:alert(document.domain)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "//attacker.test/orders/",
        "/\\attacker.test",
        "http://attacker.test/orders/1",
        "data:text/html,<script>alert(1)</script>",
        "/admin",
        "/orders/../admin",
        "/orders/%2e%2e/admin",
    ]
    for route in refused:
        code = a.evaluate("(r) => window.client.navigate(r).then(() => 'navigated', (e) => e.code)", route)
        assert code == "route_not_allowed", route
    assert host.evaluate("window.navigated") == ["/orders/7"]
    assert host.url == f"{HOST}/"


def test_widget_cannot_navigate_the_top_page_or_open_undeclared_popups(host: Page, ctx):
    a, b = widget(host, WIDGET_A), widget(host, WIDGET_B)
    # top navigation: no allow-top-navigation in the sandbox
    outcome = a.evaluate(
        f"(() => {{ try {{ top.location.href = '{ATTACKER}/pwned'; return 'assigned' }}"
        " catch (e) { return e.name } })()"
    )
    assert outcome == "SecurityError"
    outcome = a.evaluate(
        "(() => { try { top.location.href = 'javascript:document.body.dataset.pwned = 1'; return 'assigned' }"
        " catch (e) { return e.name } })()"
    )
    assert outcome == "SecurityError"
    a.evaluate(
        f"""() => {{ const l = document.createElement('a'); l.href = '{ATTACKER}/top'; l.target = '_top';
        document.body.append(l); l.click(); }}"""
    )
    host.wait_for_timeout(400)
    assert host.url == f"{HOST}/"
    assert host.evaluate("document.body.dataset.pwned") is None
    # popups: A did not declare them → window.open gives nothing; B declared them → it works
    pages_before = len(ctx.pages)
    assert a.evaluate(f"window.open('{ATTACKER}/popup') === null") is True
    host.wait_for_timeout(300)
    assert len(ctx.pages) == pages_before
    with ctx.expect_page() as popup:
        b.evaluate(f"window.open('{ATTACKER}/popup-b')")
    assert popup.value.url.startswith(ATTACKER)


def test_toast_and_upgrade_are_host_rendered_text(host: Page):
    a = widget(host, WIDGET_A)
    a.evaluate("window.client.toast('<img src=x onerror=alert(1)> saved', {kind: 'success'})")
    toast = host.locator(".plaza-toast")
    expect(toast).to_contain_text("<img src=x onerror=alert(1)> saved")
    expect(toast).to_contain_text("Order notes")
    assert host.locator(".plaza-toast img").count() == 0
    expect(host.get_by_role("status")).to_contain_text("saved")
    # upgrade: only a feature name, rendered by the host as an accessible modal dialog
    bad = a.evaluate("window.client.upgrade('<b>x</b>').then(() => 'ok', (e) => e.code)")
    assert bad == "invalid_payload"
    expect(host.locator("dialog")).to_have_count(0)
    a.evaluate("window.client.upgrade('pro-reports')")
    dialog = host.get_by_role("dialog", name="Upgrade needed")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Order notes needs the feature “pro-reports”")
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    host.keyboard.press("Escape")
    expect(host.locator("dialog")).to_have_count(0)


def test_theme_pushes_typed_pairs_only(host: Page):
    a = widget(host, WIDGET_A)
    kept = host.evaluate(
        """() => window.plaza.setTheme({
        'color.bg': {type: 'color', value: '#fafafa'},
        '--plaza-color-text': {$type: 'color', $value: '#101010'},
        '--plaza-color-primary': {type: 'color', value: 'red; background: url(https://attacker.test/x)'},
        '--plaza-color-border': {type: 'color', value: '#000}</style><script>alert(1)</script>'},
        'body { color': {type: 'color', value: 'red'},
        '--plaza-font-sans': {type: 'fontFamily', value: 'x\\\\"; }'},
        '--plaza-radius': {type: 'css', value: '4px'},
        '--plaza-space-1': {type: 'dimension', value: 'expression(alert(1))'},
        '--plaza-shadow': {type: 'shadow', value: 'var(--x)'},
    })"""
    )
    assert sorted(kept) == ["--plaza-color-bg", "--plaza-color-text"]
    a.wait_for_function("getComputedStyle(document.documentElement).getPropertyValue('--plaza-color-bg') === '#fafafa'")
    style = a.evaluate("document.documentElement.getAttribute('style')")
    assert "url(" not in style and "script" not in style and "expression" not in style
    # variables an earlier theme set and the new one lacks are removed
    assert a.evaluate("document.documentElement.style.getPropertyValue('--plaza-font-sans')") == ""
    # the widget's own SDK also refuses raw values, whoever sends them
    assert (
        a.evaluate("import('/w/sdk.js').then(m => m.applyTheme({'--plaza-x': {type: 'color', value: 'red;x:y'}}))")
        == []
    )


def test_keyboard_focus_leaves_the_widget(host: Page):
    a = widget(host, WIDGET_A)
    a.locator("#last").focus()
    host.keyboard.press("Tab")
    expect(host.locator('iframe[data-plaza-installation="inst_BBBB"]')).to_be_focused()
    b = widget(host, WIDGET_B)
    b.locator("#last").focus()
    host.keyboard.press("Tab")
    expect(host.locator("#after")).to_be_focused()
    # and backwards out of the first widget
    a.locator("#first").focus()
    host.keyboard.press("Shift+Tab")
    expect(host.locator("#before")).to_be_focused()


def test_token_is_pushed_again_before_expiry_and_never_leaks(ctx, stub: Stub):
    stub.token_seconds = 3  # refreshed min(30 s, 1 s) before expiry
    page = ctx.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.goto(f"{HOST}/")
    a = widget(page, WIDGET_A)
    a.wait_for_function("document.body.dataset.connected === 'true'")
    first = a.evaluate("window.client.getToken()")
    # Count pushes only from here: the push that follows init may still be on its way (it carries
    # the same token as getToken's answer), and only a push of a new token proves the refresh.
    a.evaluate(
        "first => { window.pushes = 0; window.client.on('token', () => {"
        " if (window.client.tokenState.token !== first) window.pushes++; }); return 0; }",
        first,
    )
    a.wait_for_function("window.pushes >= 1", timeout=6000)
    second = a.evaluate("window.client.tokenState.token")
    assert second != first and second in stub.issued
    a.evaluate("window.client.api('orgs')")
    # nowhere else: no URL, no header but Authorization, no storage, cookie, window.name or console line
    for request in stub.requests:
        for token in stub.issued:
            assert token not in request["url"]
            for name, value in request["headers"].items():
                if token in value:
                    assert name == "authorization" and request["url"].startswith(f"{PLAZA}/api/v1/"), request
    for frame in page.frames:
        dump = frame.evaluate(STORAGE_DUMP_JS)
        for token in stub.issued:
            assert token not in dump, frame.url
    for token in stub.issued:
        assert all(token not in line for line in console)


def test_default_navigation_assigns_the_allowed_same_origin_route(ctx):
    page = ctx.new_page()
    page.goto(f"{HOST}/plain/")
    a = widget(page, WIDGET_A)
    a.wait_for_function("document.body.dataset.connected === 'true'")
    assert (
        a.evaluate("window.client.navigate('/orders/../admin').then(() => 'ok', (e) => e.code)") == "route_not_allowed"
    )
    with page.expect_navigation():
        a.evaluate("window.client.navigate('/orders/9?tab=notes').catch(() => {})")
    assert page.url == f"{HOST}/orders/9?tab=notes"


def test_frames_on_the_host_or_plaza_origin_or_with_a_mismatched_origin_are_refused(ctx, stub: Stub):
    bad = [
        dict(FRAMES[0], src=f"{HOST}/w/view-a/", origin=HOST),
        dict(FRAMES[0], src=f"{PLAZA}/w/view-a/", origin=PLAZA),
        dict(FRAMES[0], origin=WIDGET_B),
    ]
    stub.frames_for["dashboard.card"] = bad
    page = ctx.new_page()
    page.goto(f"{HOST}/")
    expect(page.locator("body[data-mounted=true]")).to_be_attached()
    page.evaluate(
        """() => new Promise((resolve) => {
        const el = document.createElement('div');
        el.dataset.plazaSlot = 'dashboard.card';
        let errors = 0;
        el.addEventListener('plaza:error', () => { if (++errors === 3) resolve(); });
        document.body.append(el);
        window.plaza.mountSlot(el);
    })"""
    )
    expect(page.locator('[data-plaza-slot="dashboard.card"] iframe')).to_have_count(0)


def test_widget_opened_top_level_by_an_attacker_does_not_connect(ctx):
    attacker = ctx.new_page()
    attacker.goto(f"{ATTACKER}/")
    attacker.evaluate("window.got = []; addEventListener('message', (e) => window.got.push(e.data))")
    with ctx.expect_page() as opened:
        attacker.evaluate(f"window.w = window.open('{WIDGET_A}/w/view-a/')")
    widget_page = opened.value
    widget_page.wait_for_function("document.body && document.body.dataset.connected !== undefined")
    assert widget_page.evaluate("document.body.dataset.connected") == "error:not_embedded"
    # a forged init from the opener is ignored too
    attacker.evaluate(
        "window.w.postMessage({plaza: 1, id: 'i', type: 'init', payload: {version: 1}, replyTo: null}, '*',"
        " [new MessageChannel().port2])"
    )
    attacker.wait_for_timeout(300)
    assert widget_page.evaluate("window.client") is None
    assert attacker.evaluate("window.got") == []


def test_loader_never_grants_sandbox_tokens_or_features_beyond_the_allowed_ones(ctx, stub: Stub):
    """Even if Plaza answered more (a bug, a compromised response), no top navigation, modals,
    escaping popups or other permissions-policy features reach the iframe."""
    stub.frames_for["dashboard.card"] = [
        dict(
            FRAMES[0],
            sandbox="allow-scripts allow-same-origin allow-forms allow-popups allow-top-navigation "
            "allow-top-navigation-by-user-activation allow-popups-to-escape-sandbox allow-modals",
            allow="clipboard-write; camera *; geolocation; fullscreen",
        )
    ]
    page = ctx.new_page()
    page.goto(f"{HOST}/")
    expect(page.locator("body[data-mounted=true]")).to_be_attached()
    page.evaluate(
        """() => { const el = document.createElement('div'); el.dataset.plazaSlot = 'dashboard.card';
        document.body.append(el); return window.plaza.mountSlot(el).then(() => 0); }"""
    )
    iframe = page.locator('[data-plaza-slot="dashboard.card"] iframe')
    expect(iframe).to_have_count(1)
    assert iframe.get_attribute("sandbox") == "allow-scripts allow-same-origin allow-forms allow-popups"
    assert iframe.get_attribute("allow") == "clipboard-write; fullscreen"
