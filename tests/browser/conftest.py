"""Browser-test harness: Playwright (sync API) drives a real Chromium against pytest-django's ``live_server``.

Fixtures:

- ``browser`` (session): one headless Chromium per test process (so one per xdist worker);
- ``context`` / ``page``: a fresh browser context (cookies, storage) and page per test, with
  ``base_url`` set to the live server, so ``page.goto("/accounts/signup/")`` works;
- ``login_as(user)``: puts a signed-in session for ``user`` into ``context`` without the sign-in
  form (a user with a second factor still meets the code prompt);
- ``viewport``: the size of the page, ``WIDE`` by default; parametrize it for phone-sized runs,
  e.g. ``@pytest.mark.parametrize("viewport", [NARROW])``.

The browser is Debian's Chromium (Playwright's own download does not work here): ``PLAZA_CHROMIUM``
names it, default ``/usr/bin/chromium``. When it is missing the tests are skipped, unless
``PLAZA_REQUIRE_BROWSER=1`` (set in CI), when they fail. Every test under ``tests/browser/`` is marked
``browser`` (deselect them with ``-m "not browser"``). A failing test leaves a full-page screenshot,
the page's HTML and the error in ``test-results/FAILED-<test id>.*``.

The live server answers one request at a time (``_one_request_at_a_time``): on SQLite its threads
share the test database's one connection, and a page that loads several widget frames at once
would otherwise meet "database table is locked".
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from tests.browser.helpers import RESULTS_DIR, WIDE
from tests.installs.conftest import event_catalog, vendor  # noqa: F401  (the marketplace fixtures)

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_TIMEOUT_MS = 15_000

_reports = pytest.StashKey[dict]()


@pytest.fixture(scope="session", autouse=True)
def _one_request_at_a_time():
    """Serialises the live server's requests (the test client does not go through WSGIHandler)."""
    from django.core.handlers.wsgi import WSGIHandler

    lock = threading.Lock()
    original = WSGIHandler.__call__

    def locked(self, environ, start_response):
        with lock:  # a response's body is written out after the lock is released
            return original(self, environ, start_response)

    WSGIHandler.__call__ = locked
    yield
    WSGIHandler.__call__ = original


def chromium_path() -> str:
    return os.environ.get("PLAZA_CHROMIUM", "/usr/bin/chromium")


def pytest_collection_modifyitems(items):
    """Mark every test under tests/browser/ ``browser`` and run the browser tests last.

    Last, because once Playwright's sync API has started, its event loop counts as running in the
    main thread for the rest of the session, and Django only allows ORM calls there with
    DJANGO_ALLOW_ASYNC_UNSAFE set. Running the other tests first keeps them (and the processes
    they start, e.g. ``manage.py check --deploy``) free of both. pytest-xdist hands each worker its
    tests in this order, so the same holds with ``-n``.
    """
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)
    items[:] = sorted(items, key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        reason = (
            f"Chromium not found at {path}: "
            "install Debian's chromium (apt-get install -y chromium) to run browser tests"
        )
        if os.environ.get("PLAZA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"PLAZA_REQUIRE_BROWSER=1 but {reason} (or point PLAZA_CHROMIUM at it)", pytrace=False)
        pytest.skip(reason)

    # Playwright's sync API keeps an asyncio loop marked as running in this thread, so Django would
    # refuse ORM calls from tests and fixtures ("You cannot call this from an async context").
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        try:
            chromium = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            pytest.fail(f"Chromium at {path} did not start: {exc}", pytrace=False)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def viewport():
    """The viewport of ``context``; parametrize ``viewport`` with ``NARROW`` for phone-sized tests."""
    return WIDE


@pytest.fixture
def context(browser, live_server, viewport, request):
    for stale in RESULTS_DIR.glob(f"FAILED-{_stem(request.node.nodeid)}*"):
        stale.unlink()  # from an earlier failed run of this test
    ctx = browser.new_context(base_url=live_server.url, viewport=viewport, locale="en-GB", timezone_id="UTC")
    ctx.set_default_timeout(DEFAULT_TIMEOUT_MS)
    # The browser asks for /favicon.ico on its own; answer it here so no stray request races the test.
    ctx.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    yield ctx
    failed = [r for r in request.node.stash.get(_reports, {}).values() if r.failed]
    if failed:
        _save_failure_artefacts(ctx, request.node.nodeid, "\n\n".join(r.longreprtext for r in failed))
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def login_as(context, live_server):
    """``login_as(user)``: sign ``user`` in for every page of ``context`` (password step only)."""
    from django.conf import settings
    from django.test import Client

    def login(user) -> None:
        client = Client()
        client.force_login(user)
        session_cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        context.add_cookies([{"name": session_cookie.key, "value": session_cookie.value, "url": live_server.url}])

    return login


def _stem(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")


def _save_failure_artefacts(ctx, nodeid: str, error: str) -> None:
    """FAILED-<test>.png (full page), .html (the DOM) and .txt (the error) in test-results/."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stem = _stem(nodeid)
    (RESULTS_DIR / f"FAILED-{stem}.txt").write_text(error, encoding="utf-8")
    for index, pg in enumerate(ctx.pages):
        suffix = f"-{index}" if index else ""
        try:
            pg.screenshot(path=str(RESULTS_DIR / f"FAILED-{stem}{suffix}.png"), full_page=True)
            (RESULTS_DIR / f"FAILED-{stem}{suffix}.html").write_text(pg.content(), encoding="utf-8")
        except Exception as exc:  # the page may have crashed; the test's own error matters more
            print(f"could not save a screenshot of {pg.url}: {exc}")
