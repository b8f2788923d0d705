"""The ``widget`` check: each UI slot's entry HTML, read the way the browser will run it under Plaza's CSP.

Plaza serves a widget with a policy that allows scripts from the package and inline scripts whose
hash the manifest lists (``ui_slots[].script_hashes``), and connections to ``connect_src`` only. This
check finds, before a version ships, what that policy would silently block (so the widget breaks for
the admin) or what must never be allowed (inline handlers, ``javascript:`` URLs, scripts from
elsewhere, navigation away, nested documents it cannot vet). It parses with the standard library's
``html.parser``, which is not a browser: the rules are written to err towards reporting. Until
widgets are served with that policy, this check is the only guard, so it judges what the browser
would run without the policy too.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from apps.certification.checks import ERROR, WARNING, Check, CheckContext, CheckOutcome, Finding

MAX_FINDINGS_PER_RULE = 10  # per entry file: one pattern repeated a thousand times is one problem
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "data"})
# Script types a browser executes (HTML "JavaScript MIME type essence matches", modules, import maps,
# speculation rules); any other type is an inert data block that CSP does not govern.
EXECUTED_SCRIPT_TYPES = frozenset(
    {"", "module", "importmap", "speculationrules", "text/javascript", "application/javascript",
     "application/ecmascript", "application/x-ecmascript", "application/x-javascript", "text/ecmascript",
     "text/javascript1.0", "text/javascript1.1", "text/javascript1.2", "text/javascript1.3",
     "text/javascript1.4", "text/javascript1.5", "text/jscript", "text/livescript", "text/x-ecmascript",
     "text/x-javascript"}
)  # fmt: skip
# Elements and attributes through which a page loads a sub-resource (scripts are judged separately).
RESOURCE_ATTRIBUTES = {
    "link": ("href",), "img": ("src", "srcset"), "source": ("src", "srcset"), "iframe": ("src",),
    "frame": ("src",), "embed": ("src",), "object": ("data",), "video": ("src", "poster"), "audio": ("src",),
    "track": ("src",), "input": ("src",), "image": ("href", "xlink:href"), "use": ("href", "xlink:href"),
}  # fmt: skip
_CSS_URL = re.compile(r"""(?:url\(\s*|@import\s+)['"]?\s*((?:[a-z][a-z0-9+.-]*:)?//[^'")\s;]+)""", re.I)
_URL_STRIP = re.compile(r"[\t\n\r]")  # browsers drop these anywhere in a URL
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):", re.I)
# Attributes through which a script element loads its code: ``src`` in HTML, ``href``/``xlink:href``
# in SVG (html.parser does not know which namespace an element is in, so all three count everywhere).
SCRIPT_URL_ATTRIBUTES = ("src", "href", "xlink:href")
# URLs whose script is code the check cannot vet (inline in the URL, or made by the page at run time).
LOCAL_SCRIPT_SCHEMES = frozenset({"data", "blob", "filesystem"})
# SVG animation attributes that set another attribute (an animated href="javascript:…" runs when clicked).
ANIMATION_VALUE_ATTRIBUTES = ("to", "from", "by", "values")
# The WHATWG Encoding Standard's labels of UTF-8: any other <meta charset> makes the browser decode the
# file differently from this check.
UTF8_LABELS = frozenset({"unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8"})
_META_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([^"';\s]*)""", re.I)
_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")  # UTF-16 LE (and UTF-32 LE), UTF-16 BE, UTF-32 BE


def csp_hash(script: str) -> str:
    """The CSP source expression that allows exactly this inline script's text."""
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def _clean_url(value: str) -> str:
    """A URL as the browser resolves it: without tabs and newlines, leading controls and spaces, or
    backslashes (which special schemes read as slashes, so ``\\\\evil.example`` is protocol-relative)."""
    return _URL_STRIP.sub("", value).lstrip("".join(map(chr, range(0x21)))).rstrip().replace("\\", "/")


def _scheme(url: str) -> str:
    """The URL's scheme, lowercase ("" for a relative URL)."""
    match = _SCHEME.match(_clean_url(url))
    return match.group(1).lower() if match else ""


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL that leaves the package, or None for a relative, data: or blob: URL."""
    url = _clean_url(url)
    try:
        parts = urlsplit("https:" + url if url.startswith("//") else url)
        port = parts.port
    except ValueError:
        return "(an unparsable URL)"
    scheme = parts.scheme.lower()
    if scheme in ("", "data", "blob", "about"):
        return None
    if not parts.netloc:  # "http:evil.example/x.js" is cross-origin from an https page; other schemes load nothing
        return f"{scheme}:" if scheme in ("http", "https") else None
    default = {"https": 443, "http": 80}.get(scheme)
    host = (parts.hostname or "").lower()
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def _attribute_values(attrs: list[tuple[str, str]]) -> dict[str, str]:
    """Each attribute's value; the browser keeps the first of duplicates (``dict()`` would keep the last)."""
    values: dict[str, str] = {}
    for name, value in attrs:
        values.setdefault(name, value)
    return values


class _WidgetParser(HTMLParser):
    """Collects what the rules need: tags with their attributes and inline scripts, each with its line."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[int, str, list[tuple[str, str]]]] = []
        self.inline_scripts: list[tuple[int, str]] = []
        self.styles: list[tuple[int, str]] = []
        self._script: tuple[int, list[str], bool] | None = None
        self._style: tuple[int, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        line = self.getpos()[0]
        attrs = [(name, value or "") for name, value in attrs]
        self.tags.append((line, tag, attrs))
        values = _attribute_values(attrs)
        if tag == "script":
            kind = values.get("type", "").strip(" \t\n\f\r").lower()
            if kind in EXECUTED_SCRIPT_TYPES:
                self._script = (line, [], any(name in values for name in SCRIPT_URL_ATTRIBUTES))
        elif tag == "style":
            self._style = (line, [])
        if values.get("style"):
            self.styles.append((line, values["style"]))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in ("script", "style"):  # "<script/>" does not close in HTML: its text follows
            self.handle_endtag(tag)

    def handle_data(self, data):
        for open_element in (self._script, self._style):
            if open_element is not None:
                open_element[1].append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            line, parts, has_url = self._script
            text = "".join(parts)
            # A script with a URL runs no text of its own, but HTML ignores href and SVG ignores src:
            # text next to a URL attribute is judged as an inline script too.
            if not has_url or text.strip():
                self.inline_scripts.append((line, text))
            self._script = None
        elif tag == "style" and self._style is not None:
            self.styles.append((self._style[0], "".join(self._style[1])))
            self._style = None

    def close(self):
        super().close()
        self.handle_endtag("script")  # an unclosed inline script still runs
        self.handle_endtag("style")


class WidgetCheck(Check):
    id = "widget"
    version = 2
    title = "UI widgets"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        slots = ctx.manifest.get("ui_slots")
        slots = slots if isinstance(slots, list) else []
        findings: list[Finding] = []
        measurements: dict = {}
        for index, slot in enumerate(slots):
            if isinstance(slot, dict):
                slot_findings, measured = _check_slot(ctx, index, slot)
                findings += slot_findings
                if measured:
                    measurements[f"ui_slots[{index}]"] = measured
        if not slots:
            summary = "The package declares no UI widgets."
        elif not findings:
            summary = f"{len(slots)} widget(s) checked: nothing the content security policy would block."
        else:
            errors = sum(f.severity == ERROR for f in findings)
            summary = f"{len(slots)} widget(s) checked: {len(findings)} finding(s), {errors} of them errors."
        return CheckOutcome(summary, findings, measurements)


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _check_slot(ctx: CheckContext, index: int, slot: dict) -> tuple[list[Finding], dict]:
    base = f"$.ui_slots[{index}]"
    findings: list[Finding] = []
    connect_src = _strings(slot.get("connect_src"))
    for j, origin in enumerate(connect_src):
        if "*" in origin or not origin.lower().startswith("https://"):
            findings.append(
                Finding(
                    "widget.wildcard_origin",
                    ERROR,
                    f"The widget may connect to {origin!r}: origins must be exact https:// origins.",
                    f"{base}.connect_src[{j}]",
                    "List each origin the widget talks to in full, e.g. https://api.acme.example, and ask for "
                    "the matching http:fetch scope.",
                )
            )
    entry = slot.get("entry")
    if not isinstance(entry, str):
        return findings, {}
    try:
        raw = ctx.package.read(entry)
    except KeyError:
        findings.append(
            Finding(
                "widget.entry_missing",
                ERROR,
                f"The widget's entry {entry} is not in the package.",
                f"{base}.entry",
                "Add the HTML file to the package at that path, or correct 'entry'.",
            )
        )
        return findings, {}
    if raw.startswith(_OTHER_BOMS):
        findings.append(
            Finding(
                "widget.encoding",
                ERROR,
                f"{entry} starts with a UTF-16 or UTF-32 byte order mark; widgets must be UTF-8, and the check "
                "cannot vet a file the browser decodes differently.",
                entry,
                "Save the file as UTF-8 (without a UTF-16/UTF-32 byte order mark).",
            )
        )
        return findings, {"bytes": len(raw)}
    body = raw.removeprefix(_UTF8_BOM)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        findings.append(
            Finding(
                "widget.encoding",
                ERROR,
                f"{entry} is not valid UTF-8 (byte {exc.start}): widgets must be UTF-8, and the browser may decode "
                "the file differently from the check.",
                entry,
                "Save the file as UTF-8.",
            )
        )
        text = body.decode("utf-8", "replace")
    # The HTML tokenizer turns CRLF and lone CR into LF before a script's text exists, so the
    # browser hashes LF-only text; hashing the raw bytes would reject a correct hash.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parser = _WidgetParser()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError) as exc:  # html.parser's way of giving up on a malformed document
        findings.append(
            Finding(
                "widget.unreadable",
                ERROR,
                f"{entry} could not be parsed as HTML ({str(exc)[:200]}), so its scripts cannot be vetted.",
                entry,
                "Fix the markup (an HTML validator points to the spot), e.g. a malformed <![ … ]> section.",
            )
        )
        return findings, {"bytes": len(raw)}
    allowed = set(_strings(slot.get("script_hashes")))
    origins = {o for o in map(_origin, connect_src) if o}  # "https://x:443" is "https://x"
    found = _document_findings(entry, parser, allowed, origins)
    findings += _capped(found)
    return findings, {"bytes": len(raw), "inline_scripts": len(parser.inline_scripts), "tags": len(parser.tags)}


def _document_findings(entry: str, parser: _WidgetParser, allowed: set[str], connect_src: set[str]) -> list[Finding]:
    found: list[Finding] = []

    def add(rule: str, severity: str, message: str, line: int, what: str, hint: str) -> None:
        found.append(Finding(f"widget.{rule}", severity, message, f"{entry}:{line} {what}", hint))

    for line, script in parser.inline_scripts:
        digest = csp_hash(script)
        if digest not in allowed:
            add(
                "inline_script",
                ERROR,
                f"An inline <script> ({len(script)} characters) is not allowed by the widget's script_hashes; "
                f"the browser will not run it. Its hash is {digest}.",
                line,
                "<script>",
                f"Add '{digest}' to this slot's script_hashes (recompute it whenever the script changes), "
                "or move the script into a .js file in the package.",
            )
    for line, tag, attrs in parser.tags:
        values = _attribute_values(attrs)
        for name, value in attrs:
            if name.startswith("on") and len(name) > 2:
                add(
                    "inline_handler",
                    ERROR,
                    f"<{tag} {name}=…> is an inline event handler; no content security policy hash can allow it.",
                    line,
                    f"<{tag} {name}>",
                    f"Attach the handler from a script instead: element.addEventListener('{name[2:]}', …).",
                )
            if (name in URL_ATTRIBUTES and _scheme(value) == "javascript") or (
                name in ANIMATION_VALUE_ATTRIBUTES and any(_scheme(part) == "javascript" for part in value.split(";"))
            ):
                add(
                    "javascript_url",
                    ERROR,
                    f"<{tag} {name}> holds a javascript: URL, which the widget's policy blocks.",
                    line,
                    f"<{tag} {name}>",
                    "Use a real URL (or '#') and run the code from an event listener in a packaged script.",
                )
        if tag == "meta" and values.get("http-equiv", "").strip().lower() == "content-security-policy":
            add(
                "meta_csp",
                WARNING,
                "The page sets its own Content-Security-Policy in a <meta> tag; Plaza ignores it and serves the "
                "widget with the policy built from the manifest.",
                line,
                "<meta http-equiv>",
                "Remove the <meta> tag; declare origins in connect_src and inline scripts in script_hashes.",
            )
        if tag == "meta":
            _meta_findings(add, values, line)
        if tag == "script":
            for name in SCRIPT_URL_ATTRIBUTES:
                if name in values:
                    _script_url(add, name, values[name], line)
        nested = "srcdoc" if "srcdoc" in values else None
        if nested is None and tag in ("iframe", "frame", "object", "embed"):
            nested = next(
                (a for a in ("src", "data") if _scheme(values.get(a, "")) in ("data", "blob", "filesystem")), None
            )
        if nested is not None:
            add(
                "srcdoc",
                ERROR,
                f"<{tag} {nested}> holds a whole nested document, which this check does not vet.",
                line,
                f"<{tag} {nested}>",
                "Put the nested page in the package as its own file and point the frame's src at it, or build the "
                "content from a packaged script.",
            )
        if tag == "noscript":
            add(
                "noscript",
                ERROR,
                "<noscript> content is parsed differently by browsers (which run widgets with scripts on) and by "
                "this check, so markup inside it cannot be vetted.",
                line,
                "<noscript>",
                "Remove the <noscript> element: widgets always run with scripts enabled.",
            )
        _form_findings(add, tag, values, connect_src, line)
        if tag == "base" and _origin(values.get("href", "")) is not None:
            add(
                "external_script",
                ERROR,
                f"<base href={values['href'][:200]!r}> makes every relative script URL point outside the package.",
                line,
                "<base href>",
                "Remove the <base> element; use relative paths.",
            )
        for name in RESOURCE_ATTRIBUTES.get(tag, ()):
            for url in _urls(name, values.get(name)):
                _external_resource(add, url, connect_src, line, f"<{tag} {name}>")
    for line, css in parser.styles:
        for url in _CSS_URL.findall(css):
            _external_resource(add, url, connect_src, line, "CSS url()")
    return found


def _form_findings(add, tag: str, values: dict[str, str], connect_src: set[str], line: int) -> None:
    for name in ("action", "formaction"):
        if name not in values or (name == "action" and tag != "form"):
            continue
        origin = _origin(values[name])
        if origin is None or origin in connect_src:
            continue
        add(
            "external_form",
            WARNING,
            f"<{tag} {name}={values[name][:200]!r}> sends the form to {origin}, which is not in the widget's "
            "connect_src.",
            line,
            f"<{tag} {name}>",
            f"Send the data with fetch() from a packaged script to an origin in connect_src, or add {origin} to "
            "connect_src (with its http:fetch scope) if the form must go there.",
        )


def _meta_findings(add, values: dict[str, str], line: int) -> None:
    http_equiv = values.get("http-equiv", "").strip().lower()
    if http_equiv == "refresh":
        add(
            "meta_refresh",
            ERROR,
            f"<meta http-equiv=refresh content={values.get('content', '')[:200]!r}> reloads or navigates the widget "
            "away; a widget never needs that.",
            line,
            "<meta http-equiv>",
            "Remove the <meta http-equiv=refresh> element; update the widget from a packaged script instead.",
        )
    charset = values.get("charset")
    if charset is None and http_equiv == "content-type":
        match = _META_CHARSET.search(values.get("content", ""))
        charset = match.group(1) if match else None
    if charset is not None and charset.strip(" \t\n\f\r").lower() not in UTF8_LABELS:
        add(
            "encoding",
            ERROR,
            f"The page declares the character encoding {charset[:100]!r}; widgets must be UTF-8, and the browser "
            "would decode the file differently from the check.",
            line,
            "<meta charset>",
            'Save the file as UTF-8 and declare <meta charset="utf-8">.',
        )


def _script_url(add, name: str, url: str, line: int) -> None:
    """Judges a script element's ``src``/``href``/``xlink:href``."""
    scheme = _scheme(url)
    if scheme in LOCAL_SCRIPT_SCHEMES:
        add(
            "data_script",
            ERROR,
            f"<script {name}={url[:200]!r}> runs code from a {scheme}: URL, which certification cannot vet.",
            line,
            f"<script {name}>",
            "Ship the script as a .js file in the package and refer to it with a relative path.",
        )
    elif _origin(url) is not None:
        add(
            "external_script",
            ERROR,
            f"<script {name}={url[:200]!r}> loads code from outside the package, which the widget's policy blocks "
            "(and certification could not vet).",
            line,
            f"<script {name}>",
            "Ship the script in the package and refer to it with a relative path.",
        )


def _urls(attribute: str, value: str | None) -> list[str]:
    if not value:
        return []
    if attribute == "srcset":  # "a.png 1x, https://cdn.example/b.png 2x"
        return [candidate.split()[0] for candidate in value.split(",") if candidate.split()]
    return [value]


def _external_resource(add, url: str, connect_src: set[str], line: int, what: str) -> None:
    origin = _origin(url)
    if origin is None or origin in connect_src:
        return
    add(
        "external_resource",
        WARNING,
        f"{what} loads {url[:200]!r} from {origin}, which is not in the widget's connect_src: the policy blocks it.",
        line,
        what,
        f"Ship the file in the package, or add {origin} to connect_src (with its http:fetch scope) if it "
        "must come from there.",
    )


def _capped(findings: list[Finding]) -> list[Finding]:
    """At most MAX_FINDINGS_PER_RULE of each rule; the last kept one says how many more there are."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    kept: list[Finding] = []
    for rule_findings in by_rule.values():
        head, rest = rule_findings[:MAX_FINDINGS_PER_RULE], rule_findings[MAX_FINDINGS_PER_RULE:]
        if rest:
            head[-1] = dataclasses.replace(head[-1], message=f"{head[-1].message} ({len(rest)} more like it.)")
        kept += head
    return kept
