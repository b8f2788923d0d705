"""The ``widget`` certification check: each UI slot's entry HTML against the policy Plaza serves it with."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.certification.checks import CheckContext
from apps.certification.checks.widgets import WidgetCheck, csp_hash
from apps.extensions.manifest import validate_manifest
from apps.extensions.packages import build_package, read_package

ENTRY = "ui/sidebar.html"
API = "https://api.acme.example"
CLEAN = f"""<!doctype html>
<html>
<head><meta charset="utf-8"><title>Notes</title><link rel="stylesheet" href="sidebar.css"></head>
<body>
  <button id="save" type="button">Save</button>
  <a href="#top">Top</a>
  <img src="icon.png" alt=""><img src="data:image/png;base64,iVBORw0KGgo=" alt="">
  <img src="{API}/avatar.png" alt="">
  <script src="sidebar.js"></script>
  <script type="application/json" id="config">{{"theme": "light"}}</script>
</body>
</html>
"""


@dataclass
class _Version:
    manifest: dict
    package_sha256: str = ""


def slot(**changes) -> dict:
    return {"slot": "order.sidebar", "entry": ENTRY, "title": "Notes", "connect_src": [API], **changes}


def manifest(*slots: dict) -> dict:
    return {
        "manifest_version": 1,
        "id": "acme.notes",
        "version": "1.0.0",
        "name": "Notes",
        "summary": "Notes on orders.",
        "platform": {"api": "^1.0"},
        "scopes": ["ui:slot:order.sidebar", "http:fetch:api.acme.example"],
        "ui_slots": list(slots) or [slot()],
    }


def check(html: str | None, *slots: dict):
    m = manifest(*slots)
    files = {ENTRY: html} if html is not None else {}
    ctx = CheckContext(version=_Version(m))
    ctx.__dict__["package"] = read_package(build_package(files, manifest=m))
    return WidgetCheck().run(ctx)


def page(body: str) -> str:
    return f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>"


def rules(outcome) -> list[str]:
    return sorted(f.rule for f in outcome.findings)


def test_clean_widget_has_no_findings():
    outcome = check(CLEAN)
    assert outcome.findings == []
    assert outcome.status == "passed"
    assert outcome.measurements["ui_slots[0]"]["inline_scripts"] == 0


def test_missing_entry_is_reported():
    outcome = check(None)
    assert rules(outcome) == ["widget.entry_missing"]
    assert outcome.findings[0].location == "$.ui_slots[0].entry"


def test_unhashed_inline_script_is_reported_with_its_hash():
    script = "document.title = 'hi';"
    outcome = check(page(f"<script>{script}</script>"))
    assert rules(outcome) == ["widget.inline_script"]
    assert csp_hash(script) in outcome.findings[0].hint
    assert outcome.findings[0].location == f"{ENTRY}:1 <script>"


def test_hashed_inline_script_passes():
    script = "\n  document.getElementById('save').addEventListener('click', save);\n"
    expected = "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert check(page(f"<script>{script}</script>"), slot(script_hashes=[expected])).findings == []


def test_script_hash_is_of_the_text_the_browser_sees_after_newline_normalisation():
    # the browser hashes LF-only text even when the file has CRLF line ends
    assert check(page("<script>\r\nrun();\r\n</script>"), slot(script_hashes=[csp_hash("\nrun();\n")])).findings == []


def test_module_scripts_are_inline_scripts_too():
    assert rules(check(page('<script type="module">import "./a.js";</script>'))) == ["widget.inline_script"]


def test_data_blocks_are_not_scripts():
    assert check(page('<script type="application/ld+json">{"a": 1}</script>')).findings == []


@pytest.mark.parametrize(
    "markup", ['<button onclick="save()">Save</button>', "<svg onload=alert(1)></svg>", '<body ONMOUSEOVER="x()">']
)
def test_inline_event_handler_is_reported(markup):
    outcome = check(page(markup), slot(script_hashes=[csp_hash("save()")]))
    assert rules(outcome) == ["widget.inline_handler"]


@pytest.mark.parametrize(
    "markup",
    [
        '<a href="javascript:alert(1)">x</a>',
        '<a href="  JavaScript:alert(1)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        '<a href="java\nscript:alert(1)">x</a>',
        '<form action="javascript:go()"></form>',
        '<button formaction="javascript:go()">x</button>',
        '<iframe src="javascript:1"></iframe>',
    ],
)
def test_javascript_url_is_reported(markup):
    assert rules(check(page(markup))) == ["widget.javascript_url"]


@pytest.mark.parametrize(
    "src",
    [
        "https://cdn.example.com/lib.js",
        "//cdn.example.com/lib.js",
        "\\\\cdn.example.com/lib.js",
        f"{API}/lib.js",  # even from an origin the widget may connect to: code ships in the package
    ],
)
def test_script_from_outside_the_package_is_reported(src):
    assert rules(check(page(f'<script src="{src}"></script>'))) == ["widget.external_script"]


@pytest.mark.parametrize("attribute", ["href", "xlink:href"])
def test_svg_script_href_is_judged_like_src(attribute):
    outcome = check(page(f'<svg><script {attribute}="https://evil.example/x.js"></script></svg>'))
    assert rules(outcome) == ["widget.external_script"]
    assert outcome.findings[0].location == f"{ENTRY}:1 <script {attribute}>"
    assert check(page(f'<svg><script {attribute}="chart.js"></script></svg>')).findings == []


def test_text_next_to_a_script_url_is_an_inline_script():
    # HTML ignores href on <script> (and SVG ignores src): the text runs
    assert rules(check(page('<script href="app.js">alert(1)</script>'))) == ["widget.inline_script"]


def test_the_first_of_duplicate_attributes_is_judged():
    # the browser loads the first src; dict() would keep the last one
    outcome = check(page('<script src="https://evil.example/x.js" src="app.js"></script>'))
    assert rules(outcome) == ["widget.external_script"]


@pytest.mark.parametrize(
    "markup",
    [
        '<script src="data:text/javascript,alert(1)"></script>',
        '<script src=" DATA:,alert(1)"></script>',
        '<script src="blob:https://plaza.example/0b8c"></script>',
        '<script src="filesystem:https://plaza.example/temporary/x.js"></script>',
        '<svg><script href="data:,alert(1)"></script></svg>',
    ],
)
def test_script_from_a_data_blob_or_filesystem_url_is_refused(markup):
    outcome = check(page(markup))
    assert rules(outcome) == ["widget.data_script"]
    assert outcome.status == "failed"


@pytest.mark.parametrize(
    "meta", ['<meta http-equiv="refresh" content="0;url=https://evil.example">', "<meta http-equiv=REFRESH content=5>"]
)
def test_meta_refresh_is_refused(meta):
    outcome = check(page("").replace("<head>", f"<head>{meta}"))
    assert rules(outcome) == ["widget.meta_refresh"]
    assert outcome.status == "failed"


def test_iframe_srcdoc_is_refused():
    outcome = check(page('<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>'))
    assert rules(outcome) == ["widget.srcdoc"]
    assert outcome.status == "failed"


@pytest.mark.parametrize(
    "markup",
    [
        '<iframe src="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
        '<iframe src=" BLOB:https://x/1"></iframe>',
        '<object data="data:text/html;base64,PHNjcmlwdD4="></object>',
        '<embed src="data:image/svg+xml,&lt;svg onload=alert(1)&gt;">',
    ],
)
def test_frames_of_data_and_blob_urls_are_refused_like_srcdoc(markup):
    assert "widget.srcdoc" in rules(check(page(markup)))


@pytest.mark.parametrize(
    "markup",
    [
        "<noscript>Enable JavaScript.</noscript>",
        # html.parser reads a title attribute; a browser with scripts on ends <noscript> inside it and runs the script
        '<noscript><p title="</noscript><script>alert(1)</script>"></p></noscript>',
    ],
)
def test_noscript_is_refused(markup):
    outcome = check(page(markup))
    assert rules(outcome) == ["widget.noscript"]
    assert outcome.status == "failed"


@pytest.mark.parametrize(
    "markup",
    [
        '<form action="https://collect.example/steal" method="post"></form>',
        '<form action="//collect.example/steal"></form>',
        '<form><button formaction="https://collect.example/steal">Send</button></form>',
        '<form><input type="submit" formaction="http://api.acme.example/x"></form>',  # http: is another origin
    ],
)
def test_form_sent_to_an_origin_outside_connect_src_is_a_warning(markup):
    outcome = check(page(markup))
    assert rules(outcome) == ["widget.external_form"]
    assert outcome.status == "warned"


def test_form_sent_inside_the_package_or_to_connect_src_passes():
    markup = f'<form action="save.html"><button formaction="{API}/notes">Save</button></form>'
    assert check(page(markup)).findings == []


@pytest.mark.parametrize(
    "markup",
    [
        '<svg><a><animate attributeName="href" to="javascript:alert(1)"/><text>x</text></a></svg>',
        '<svg><a><set attributeName="xlink:href" to=" JavaScript:alert(1)"/></a></svg>',
        '<svg><a><animate attributeName="href" values="#;javascript:alert(1)"/></a></svg>',
        '<svg><a><animate attributeName="href" from="javascript:alert(1)" to="#"/></a></svg>',
    ],
)
def test_svg_animation_to_a_javascript_url_is_reported(markup):
    assert rules(check(page(markup))) == ["widget.javascript_url"]


def check_bytes(raw: bytes):
    m = manifest()
    ctx = CheckContext(version=_Version(m))
    ctx.__dict__["package"] = read_package(build_package({ENTRY: raw}, manifest=m))
    return WidgetCheck().run(ctx)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_entry_in_utf16_or_utf32_is_refused(codec):
    html = page("<script>alert(1)</script>")
    raw = html.encode(codec) if codec != "utf-16-be" else b"\xfe\xff" + html.encode(codec)
    outcome = check_bytes(raw)
    assert rules(outcome) == ["widget.encoding"]
    assert outcome.status == "failed"


def test_entry_that_is_not_valid_utf8_is_refused():
    outcome = check_bytes(page("caf\xe9").encode("latin-1"))
    assert rules(outcome) == ["widget.encoding"]


def test_utf8_with_its_byte_order_mark_passes():
    assert check_bytes(b"\xef\xbb\xbf" + CLEAN.encode()).findings == []


@pytest.mark.parametrize(
    "meta",
    [
        '<meta charset="utf-16">',
        '<meta charset="iso-2022-jp">',
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">',
    ],
)
def test_meta_charset_other_than_utf8_is_refused(meta):
    outcome = check(page("").replace("<head>", f"<head>{meta}"))
    assert rules(outcome) == ["widget.encoding"]
    assert outcome.status == "failed"


@pytest.mark.parametrize(
    "meta",
    [
        '<meta charset="UTF-8">',
        "<meta charset=utf8>",
        '<meta http-equiv="content-type" content="text/html; charset=utf-8">',
    ],
)
def test_meta_charset_utf8_passes(meta):
    assert check(page("").replace("<head>", f"<head>{meta}")).findings == []


def test_base_href_pointing_elsewhere_is_an_external_script():
    assert rules(check(page('<base href="https://cdn.example.com/"><script src="app.js"></script>'))) == [
        "widget.external_script"
    ]


@pytest.mark.parametrize("origin", ["https://*.acme.example", "http://api.acme.example", "*"])
def test_wildcard_or_plain_http_origin_is_reported(origin):
    outcome = check(CLEAN, slot(connect_src=[origin]))
    assert "widget.wildcard_origin" in rules(outcome)
    assert any(f.location == "$.ui_slots[0].connect_src[0]" for f in outcome.findings)


def test_meta_csp_is_a_warning():
    outcome = check(
        page("").replace("<head>", '<head><meta http-equiv="content-security-policy" content="default-src *">')
    )
    assert rules(outcome) == ["widget.meta_csp"]
    assert outcome.status == "warned"


@pytest.mark.parametrize(
    "markup",
    [
        '<link rel="stylesheet" href="https://fonts.example.com/css">',
        '<img src="https://images.example.com/a.png">',
        '<img srcset="a.png 1x, https://images.example.com/a@2x.png 2x">',
        '<iframe src="https://video.example.com/embed"></iframe>',
        "<style>@import 'https://fonts.example.com/a.css';</style>",
        "<div style=\"background: url('//images.example.com/bg.png')\"></div>",
        '<img src="http://api.acme.example/a.png">',  # http: not the https origin in connect_src
    ],
)
def test_resource_from_an_origin_outside_connect_src_is_a_warning(markup):
    outcome = check(page(markup))
    assert rules(outcome) == ["widget.external_resource"]
    assert outcome.status == "warned"


def test_repeated_findings_are_capped_per_rule():
    outcome = check(page('<button onclick="x()">b</button>' * 50))
    assert len(outcome.findings) == 10
    assert "40 more" in outcome.findings[-1].message


def test_every_finding_names_a_location_and_a_hint():
    html = page('<a href="javascript:x()" onclick="y()">x</a><script>z()</script><script src="//cdn.x/a.js"></script>')
    outcome = check(html)
    assert len(outcome.findings) == 4
    assert all(f.message and f.location and f.hint for f in outcome.findings)


def test_each_slot_is_checked():
    other = slot(slot="order.footer", entry="ui/footer.html")
    m = manifest(slot(), other)
    ctx = CheckContext(version=_Version(m))
    ctx.__dict__["package"] = read_package(
        build_package({ENTRY: CLEAN, "ui/footer.html": page("<script>x()</script>")}, manifest=m)
    )
    outcome = WidgetCheck().run(ctx)
    assert rules(outcome) == ["widget.inline_script"]
    assert outcome.findings[0].location.startswith("ui/footer.html:")


def test_manifest_schema_accepts_script_hashes_and_refuses_malformed_ones():
    good = manifest(slot(script_hashes=[csp_hash("a")]))
    assert validate_manifest(good, known_event_types=set()) == []
    bad = manifest(slot(script_hashes=["sha384-abc"]))
    assert [e.path for e in validate_manifest(bad, known_event_types=set())] == ["$.ui_slots[0].script_hashes[0]"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/!-[]=\"' abcdefghijklmnopqrstuvwxyz&#;:\n\r\x00")), max_size=300))
def test_any_markup_gives_findings_never_an_exception(html):
    outcome = check(html)
    assert outcome.status in ("passed", "warned", "failed")


def test_markup_the_parser_gives_up_on_is_unreadable():
    outcome = check(page("<![foo[ x ]]><script>x()</script>"))
    assert rules(outcome) == ["widget.unreadable"]


def test_connect_src_with_the_default_port_matches_the_resource_origin():
    outcome = check(page(f'<img src="{API}/a.png">'), slot(connect_src=[f"{API}:443"]))
    assert outcome.findings == []
