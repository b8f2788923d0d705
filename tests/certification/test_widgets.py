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
        "data:text/javascript,alert(1)",
    ],
)
def test_script_from_outside_the_package_is_reported(src):
    expected = [] if src.startswith("data:") else ["widget.external_script"]
    assert rules(check(page(f'<script src="{src}"></script>'))) == expected


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
