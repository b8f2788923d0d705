"""Sending webhook requests: one aiohttp session per worker process, guarded against SSRF.

Every worker process keeps one event loop on a background thread and one ``ClientSession`` on it,
so connections to an endpoint are reused across messages, batches and tasks, and a batch of
requests is sent concurrently (``PLAZA_WEBHOOK_CONCURRENCY`` in flight). A fork (Celery's prefork
pool) starts a fresh loop and session in the child.

The SSRF guard works at connect time: :class:`GuardedResolver` resolves a host name once and
refuses it when any answer is not a public address (``apps.core.netguard.blocked_reason``), and
aiohttp connects to exactly the addresses it returned, so a second DNS answer (DNS rebinding)
cannot redirect the connection. IP-literal hosts never reach a resolver, so they are checked
before the request. Plain ``http://`` and private addresses are allowed only with
``PLAZA_ALLOW_PRIVATE_NETWORKS`` (development and tests). Redirects are never followed (a 3xx is a
failed attempt) and at most ``EXCERPT_BYTES`` of a response body are read: a receiver cannot make
a worker hold its body in memory.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from django.conf import settings

from apps.core import netguard

log = logging.getLogger(__name__)

EXCERPT_BYTES = 1024
USER_AGENT = "Plaza-Webhooks/1.0 (+https://www.standardwebhooks.com/)"


class BlockedDestination(OSError):
    """The destination resolves to an address Plaza does not connect to (see netguard)."""


@dataclass
class Request:
    url: str
    headers: dict[str, str]
    body: bytes
    key: str = ""  # the caller's reference (the message id)


@dataclass
class Outcome:
    status_code: int | None = None
    excerpt: str = ""
    duration_ms: int = 0
    error_class: str = ""  # "" on an HTTP answer; timeout, connect, dns, ssrf_blocked, tls, protocol, invalid_url
    error_message: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # response headers the engine reads (lower-case)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_KEPT_RESPONSE_HEADERS = ("retry-after", "webhook-delivery", "location", "content-type")


class GuardedResolver(AbstractResolver):
    """Resolves once and refuses any non-public answer (all answers must be public)."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for result in results:
                reason = netguard.blocked_reason(result["host"])
                if reason:
                    raise BlockedDestination(
                        f"{host} resolves to {result['host']}, which is {reason}; Plaza does not connect there."
                    )
        if not results:
            raise BlockedDestination(f"{host} resolves to no address.")
        return results

    async def close(self) -> None:
        await self._inner.close()


def url_refusal(url: str, *, allow_private: bool | None = None) -> tuple[str, str] | None:
    """Why ``url`` is not sent at all, as (error_class, message), or None. Host names are checked
    later, at resolution; IP literals here (aiohttp never resolves them)."""
    allow = netguard.private_networks_allowed() if allow_private is None else allow_private
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "invalid_url", "The URL cannot be parsed."
    if parts.scheme != "https" and not (allow and parts.scheme == "http"):
        return "invalid_url", "Only https:// URLs receive webhooks."
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return "invalid_url", "The URL needs a host and may not carry credentials."
    if port == 0:
        return "invalid_url", "Port 0 is not a destination."
    try:
        # The host as the client will send it: yarl normalises Unicode (a fullwidth "１" is "1"), so
        # "127.0.0.１" is the literal 127.0.0.1, which aiohttp connects to without resolving.
        sent_host = yarl.URL(url).raw_host or ""
    except (ValueError, UnicodeError):
        return "invalid_url", "The URL's host cannot be sent."
    if allow:
        return None
    for host in dict.fromkeys((parts.hostname, sent_host)):
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            continue
        reason = netguard.blocked_reason(host)
        if reason:
            return "ssrf_blocked", f"{host} is {reason}; Plaza does not connect there."
    return None


def _classify(exc: BaseException) -> tuple[str, str]:
    text = f"{type(exc).__name__}: {exc}"[:300]
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, BlockedDestination):
            return "ssrf_blocked", str(cause)[:300]
        cause = getattr(cause, "os_error", None) or cause.__cause__
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError | TimeoutError):
        return "timeout", text
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns", text
    if isinstance(exc, aiohttp.ClientSSLError):
        return "tls", text
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect", text
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid_url", text
    return "protocol", text


async def send_one(session: aiohttp.ClientSession, request: Request, *, allow_private: bool) -> Outcome:
    refused = url_refusal(request.url, allow_private=allow_private)
    if refused:
        return Outcome(error_class=refused[0], error_message=refused[1])
    started = time.perf_counter()
    try:
        async with session.post(
            request.url, data=request.body, headers=request.headers, allow_redirects=False
        ) as response:
            chunks = bytearray()
            while len(chunks) < EXCERPT_BYTES:
                chunk = await response.content.read(EXCERPT_BYTES - len(chunks))
                if not chunk:
                    break
                chunks += chunk
            if not response.content.at_eof():
                # Never drain a big body: drop the connection instead of reusing it.
                response.close()
            kept = {h: response.headers[h] for h in _KEPT_RESPONSE_HEADERS if h in response.headers}
            return Outcome(
                status_code=response.status,
                excerpt=bytes(chunks).decode("utf-8", errors="replace"),
                duration_ms=int((time.perf_counter() - started) * 1000),
                headers=kept,
            )
    except Exception as exc:  # every failure is an attempt's outcome, never the task's crash
        error_class, message = _classify(exc)
        return Outcome(
            error_class=error_class,
            error_message=message,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )


class _ProcessClient:
    """The worker process's loop thread and session."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.allow_private = netguard.private_networks_allowed()
        self.thread = threading.Thread(target=self.loop.run_forever, name="plaza-webhooks-http", daemon=True)
        self.thread.start()
        self.session: aiohttp.ClientSession | None = None
        self.settings_key = _settings_key()

    async def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(allow_private=self.allow_private),
                limit=max(1, settings.PLAZA_WEBHOOK_CONCURRENCY),
                limit_per_host=0,
                ttl_dns_cache=10,
                enable_cleanup_closed=True,
            )
            self.session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=settings.PLAZA_WEBHOOK_TIMEOUT,
                    sock_connect=settings.PLAZA_WEBHOOK_CONNECT_TIMEOUT,
                    sock_read=settings.PLAZA_WEBHOOK_TIMEOUT,
                ),
                trust_env=False,  # never through an environment proxy: the guard must see the target
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
            )
        return self.session

    async def _batch(self, requests: Sequence[Request]) -> list[Outcome]:
        session = await self._session()
        limit = asyncio.Semaphore(max(1, settings.PLAZA_WEBHOOK_CONCURRENCY))

        async def one(request: Request) -> Outcome:
            async with limit:
                return await send_one(session, request, allow_private=self.allow_private)

        return list(await asyncio.gather(*(one(r) for r in requests)))

    def submit(self, requests: Sequence[Request]) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(self._batch(requests), self.loop)

    def send(self, requests: Sequence[Request]) -> list[Outcome]:
        return self.submit(requests).result()

    def close(self) -> None:
        async def _close() -> None:
            if self.session is not None:
                await self.session.close()

        try:
            asyncio.run_coroutine_threadsafe(_close(), self.loop).result(timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)


def _settings_key() -> tuple:
    return (
        netguard.private_networks_allowed(),
        settings.PLAZA_WEBHOOK_TIMEOUT,
        settings.PLAZA_WEBHOOK_CONNECT_TIMEOUT,
        settings.PLAZA_WEBHOOK_CONCURRENCY,
    )


_client: _ProcessClient | None = None
_client_lock = threading.Lock()


def client() -> _ProcessClient:
    """This process's client (made again after a fork, or when tests change its settings)."""
    global _client
    with _client_lock:
        current = _client
        if current is None or current.pid != os.getpid() or current.settings_key != _settings_key():
            if current is not None and current.pid == os.getpid():
                try:
                    current.close()
                except Exception:  # an old loop that will not close must not stop sending
                    log.warning("webhooks: could not close the previous HTTP client", exc_info=True)
            _client = _ProcessClient()
        return _client


@atexit.register
def _close_at_exit() -> None:
    current = _client
    if current is not None and current.pid == os.getpid():
        try:
            current.close()
        except Exception:  # the interpreter is going away: nothing left to report to
            log.debug("webhooks: HTTP client not closed at exit", exc_info=True)


def submit_batch(requests: Sequence[Request]) -> concurrent.futures.Future:
    """Start sending every request concurrently; the future's result is ``send_batch``'s."""
    if not requests:
        done: concurrent.futures.Future = concurrent.futures.Future()
        done.set_result([])
        return done
    return client().submit(requests)


def send_batch(requests: Sequence[Request]) -> list[Outcome]:
    """Send every request concurrently; one ``Outcome`` per request, in order. Never raises for
    a request's failure."""
    if not requests:
        return []
    return client().send(requests)
