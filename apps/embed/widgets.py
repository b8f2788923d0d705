"""What a widget is made of: the slots an installation's manifest declares, the iframe attributes
they earn, the package files they are served from, and the document with its security policy."""

from __future__ import annotations

import functools
import html
from html.parser import HTMLParser
from urllib.parse import urlsplit

from django.conf import settings

from apps.extensions.packages import Package, read_package
from apps.extensions.storage import read_artifact
from apps.installs.models import Installation, InstallationStatus
from apps.installs.selectors import effective_scopes

SANDBOX = "allow-scripts allow-same-origin allow-forms"
ALLOW_FEATURES = ("clipboard-write", "fullscreen")  # manifest permission -> Permissions Policy feature
REFERRER_POLICY = "no-referrer"
ASSET_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "json": "application/json",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "ico": "image/x-icon",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "txt": "text/plain; charset=utf-8",
}


def declared_slots(installation: Installation) -> list[dict]:
    """The manifest's ui_slots whose ``ui:slot:<name>`` scope the organisation granted."""
    granted = set(effective_scopes(installation))
    slots = (installation.version.manifest or {}).get("ui_slots") or []
    return [
        slot
        for slot in slots
        if isinstance(slot, dict) and isinstance(slot.get("slot"), str) and f"ui:slot:{slot['slot']}" in granted
    ]


def slot_declaration(installation: Installation, slot_name: str) -> dict | None:
    return next((slot for slot in declared_slots(installation) if slot["slot"] == slot_name), None)


def widget_ready(installation: Installation) -> bool:
    return installation.status == InstallationStatus.ACTIVE and bool(declared_slots(installation))


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def sandbox_for(slot: dict) -> str:
    return SANDBOX + (" allow-popups" if "popups" in _strings(slot.get("permissions")) else "")


def allow_for(slot: dict) -> str:
    declared = _strings(slot.get("permissions"))
    return "; ".join(feature for feature in ALLOW_FEATURES if feature in declared)


def plaza_origin() -> str:
    parts = urlsplit(settings.PLAZA_BASE_URL)
    return f"{parts.scheme}://{parts.netloc}"


def _fetch_host(origin: str) -> str:
    return origin.split("://", 1)[-1].split(":", 1)[0]


def content_security_policy(
    slots: list[dict], *, host_origin: str, nonce: str, granted: frozenset[str] | set[str] | None = None
) -> str:
    """The widget document's policy: its own origin (the installation's), the nonce and declared
    hashes for inline scripts, Plaza's API and the manifest's connect_src — only the origins whose
    ``http:fetch:<host>`` the organisation granted (``granted``: the installation's effective
    scopes) — framed by the host only."""
    hashes = sorted({f"'{h}'" for slot in slots for h in _strings(slot.get("script_hashes"))})
    connect = sorted(
        {
            origin
            for slot in slots
            for origin in _strings(slot.get("connect_src"))
            if granted is None or f"http:fetch:{_fetch_host(origin)}" in granted
        }
    )
    directives = [
        "default-src 'self'",
        " ".join(["script-src 'self'", f"'nonce-{nonce}'", *hashes]),
        f"style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' data:",
        "font-src 'self'",
        " ".join(["connect-src 'self'", plaza_origin(), *connect]),
        " ".join(["form-action 'self'", *connect]),
        "frame-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        f"frame-ancestors {host_origin}",
    ]
    return "; ".join(directives)


@functools.lru_cache(maxsize=16)
def package_of(digest: str) -> Package:
    """The installed version's package (read and checked once per process; the digest pins it)."""
    return read_package(read_artifact(digest))


class _TagFinder(HTMLParser):
    """Offsets of the start tags the document needs changed: every <script> and <style>, and the
    first <head> / <html>. html.parser treats script and style content as text, so a "<script"
    inside a script is not mistaken for a tag."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=False)
        self._line_starts = [0]
        for index, char in enumerate(text):
            if char == "\n":
                self._line_starts.append(index + 1)
        self.nonce_at: list[int] = []
        self.head_end: int | None = None
        self.html_end: int | None = None
        self.doctype_end: int | None = None
        self._text = text

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag, attrs):
        start = self._offset()
        end = start + len(self.get_starttag_text() or "")
        if tag in ("script", "style"):
            self.nonce_at.append(start + 1 + len(tag))
        elif tag == "head" and self.head_end is None:
            self.head_end = end
        elif tag == "html" and self.html_end is None:
            self.html_end = end

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_decl(self, decl):
        if self.doctype_end is None:
            self.doctype_end = self._text.find(">", self._offset()) + 1


def widget_document(raw: bytes, *, nonce: str, parent_origin: str, installation_id: str) -> bytes:
    """The entry HTML with the nonce on every <script> and <style>, and Plaza's <meta> tags first in <head>."""
    text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    finder = _TagFinder(text)
    try:
        finder.feed(text)
        finder.close()
    except (AssertionError, ValueError):  # malformed beyond html.parser: serve nothing of it
        text, finder = "", _TagFinder("")
    metas = (
        f'<meta name="plaza-parent-origin" content="{html.escape(parent_origin)}">'
        f'<meta name="plaza-installation" content="{html.escape(installation_id)}">'
        f'<meta name="plaza-api-base" content="{html.escape(plaza_origin())}">'
    )
    insert_meta = next((at for at in (finder.head_end, finder.html_end, finder.doctype_end) if at is not None), 0)
    edits = [(at, f' nonce="{nonce}"') for at in finder.nonce_at] + [(insert_meta, metas)]
    out, last = [], 0
    for at, piece in sorted(edits, key=lambda edit: edit[0]):
        out.append(text[last:at])
        out.append(piece)
        last = at
    out.append(text[last:])
    return "".join(out).encode("utf-8")
