"""Small helpers for browser tests: TOTP codes, mails from the locmem outbox, screenshots, API calls.

Plain functions (import them: ``from tests.browser.helpers import totp_code``); the fixtures are in
``tests/browser/conftest.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
NARROW = {"width": 390, "height": 844}  # a phone
WIDE = {"width": 1280, "height": 900}  # a laptop


def totp_code(secret_b32: str, *, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """The RFC 6238 code (HMAC-SHA1) an authenticator app shows for ``secret_b32`` at time ``at``."""
    secret = secret_b32.strip().replace(" ", "").upper()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def mails_to(address: str) -> list:
    """Messages sent to ``address`` so far (the locmem backend is shared with the live server thread)."""
    from django.core import mail

    return [m for m in getattr(mail, "outbox", []) if address in m.to]


def link_in(message, pattern: str) -> str:
    """The first URL in ``message``'s body whose path matches the regular expression ``pattern``."""
    for url in re.findall(r"https?://\S+", message.body):
        if re.search(pattern, url):
            return url
    raise AssertionError(f"no link matching {pattern!r} in mail {message.subject!r}:\n{message.body}")


def screenshot(page, name: str, *, narrow_too: bool = True, check_overflow: bool = True) -> list[Path]:
    """Full-page screenshots of ``page`` into test-results/: ``<name>-wide.png`` and, unless
    ``narrow_too`` is false, ``<name>-narrow.png`` (390 px). The viewport is restored afterwards.

    At the narrow size the page must not scroll sideways (``check_overflow``): the elements that
    stick out are named in the AssertionError."""
    RESULTS_DIR.mkdir(exist_ok=True)
    page.wait_for_load_state("load")
    original = page.viewport_size
    shots, overflow = [], []
    sizes = [("wide", WIDE)] + ([("narrow", NARROW)] if narrow_too else [])
    try:
        for label, size in sizes:
            page.set_viewport_size(size)
            path = RESULTS_DIR / f"{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            shots.append(path)
            if label == "narrow" and check_overflow:
                overflow = horizontal_overflow(page)
    finally:
        if original:
            page.set_viewport_size(original)
    assert not overflow, f"{page.url} scrolls sideways at {NARROW['width']}px because of: {', '.join(overflow)}"
    return shots


def api_call(base_url: str, path: str, token: str, *, method: str = "GET", data=None) -> tuple[int, dict]:
    """Call Plaza's API over real HTTP with a bearer token; returns (status, JSON body). Proxies from
    the environment are ignored: the live server is on loopback."""
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(
        f"{base_url}/api/v1/{path.lstrip('/')}",
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
        | ({"Content-Type": "application/json"} if body is not None else {}),
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


_OVERFLOW_JS = """() => {
  const root = document.documentElement;
  if (root.scrollWidth <= root.clientWidth) return [];
  const limit = root.clientWidth + 1;
  // Is el clipped by a scroll container that itself fits? Follow the containing-block chain, so an
  // absolutely positioned child escapes a container that is not positioned (as browsers do).
  const clipped = (el) => {
    let cur = el;
    while (cur && cur !== document.body) {
      const position = getComputedStyle(cur).position;
      if (position === 'fixed') return false;
      let up = cur.parentElement;
      if (position === 'absolute') {
        while (up && up !== document.body && getComputedStyle(up).position === 'static') up = up.parentElement;
      }
      if (!up || up === document.body) return false;
      if (getComputedStyle(up).overflowX !== 'visible' && up.getBoundingClientRect().right <= limit) return true;
      cur = up;
    }
    return false;
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right <= limit || r.width === 0 || clipped(el)) continue;
    if (Array.from(el.children).some((c) => c.getBoundingClientRect().right > limit && !clipped(c))) continue;
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + [...el.classList].map((c) => '.' + c).join('');
    out.push(`${name} (right edge ${Math.round(r.right)}px)`);
  }
  return out.length ? out : [`the page is ${root.scrollWidth}px wide`];
}"""


def horizontal_overflow(page) -> list[str]:
    """The innermost elements that make the page scroll sideways (wider than the viewport), or [].
    Content clipped by a scroll container such as ``.table-wrap`` does not count."""
    page.wait_for_load_state("load")  # stylesheets applied: an unstyled page is wider
    return page.evaluate(_OVERFLOW_JS)
