"""Helpers for the delivery engine's tests: a small world (publisher, extension, customer,
installation, event type, endpoint) and a real local HTTP receiver.

``Receiver`` is an aiohttp server on 127.0.0.1 running on its own thread; ``behave`` decides each
answer (status, headers, body) from the request, and every request is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from apps.core import clock, crypto
from apps.events.models import DispatchStatus, Event, EventDispatch, EventSchema, EventType
from apps.extensions.models import Extension, ExtensionVersion, SigningKey
from apps.installs.models import Installation
from apps.orgs.models import Membership, Organization, Role
from apps.webhooks import signing
from apps.webhooks.models import Endpoint, EndpointSecret, Environment, Message, MessageStatus
from tests.factories import UserFactory

ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "total": {"type": "number"},
        "customer_email": {"type": "string", "x-plaza-scope": "pii:read"},
    },
    "required": ["order_id"],
}


@dataclass
class World:
    publisher: Organization
    customer: Organization
    extension: Extension
    version: ExtensionVersion
    installation: Installation
    event_type: EventType
    endpoint: Endpoint | None = None
    secret: str = ""
    publisher_email: str = ""


def _unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def make_extension(publisher: Organization, *, scopes: list[str], hooks: list[dict] | None = None):
    raw = secrets.token_bytes(32)
    key = SigningKey.objects.create(
        org=publisher,
        name=_unique("k"),
        public_key=base64.b64encode(raw).decode(),
        fingerprint=f"SHA256:{raw.hex()[:43]}",
    )
    name = _unique("ext")
    extension = Extension.objects.create(org=publisher, key=f"{publisher.slug}.{name}", name=name)
    version = ExtensionVersion.objects.create(
        extension=extension,
        version="1.0.0",
        status="published",
        manifest={"name": name, "hooks": hooks or []},
        scopes=scopes,
        package_sha256="0" * 64,
        package_size=1,
        signing_key=key,
        signature="sig",
    )
    return extension, version


def event_type(name: str = "order.created") -> EventType:
    etype, created = EventType.objects.get_or_create(name=name, defaults={"description": "An order was placed."})
    if created:
        EventSchema.objects.create(event_type=etype, version=1, schema=ORDER_SCHEMA, fingerprint="f" * 64)
    return etype


def make_world(
    *,
    scopes: tuple[str, ...] = ("events:read:order.created",),
    granted: tuple[str, ...] | None = None,
    hooks: list[dict] | None = None,
    url: str | None = None,
    sandbox: bool = False,
) -> World:
    publisher = Organization.objects.create(name="Vendor", slug=_unique("vendor"))
    owner = UserFactory(email=f"{_unique('owner')}@vendor.test")
    Membership.objects.create(org=publisher, user=owner, role=Role.OWNER)
    customer = Organization.objects.create(name="Acme", slug=_unique("acme"), sandbox_of=publisher if sandbox else None)
    extension, version = make_extension(publisher, scopes=list(scopes), hooks=hooks)
    installation = Installation.objects.create(
        org=customer, extension=extension, version=version, granted_scopes=list(granted or scopes)
    )
    world = World(publisher, customer, extension, version, installation, event_type(), publisher_email=owner.email)
    if url:
        world.endpoint, world.secret = make_endpoint(
            extension, url, environment=Environment.SANDBOX if sandbox else Environment.PRODUCTION
        )
    return world


def make_endpoint(extension: Extension, url: str, *, environment=Environment.PRODUCTION, event_types=None, **extra):
    endpoint = Endpoint.objects.create(
        extension=extension, url=url, environment=environment, event_types=event_types or [], **extra
    )
    secret = signing.secret_generate()
    EndpointSecret.objects.create(endpoint=endpoint, secret_encrypted=crypto.encrypt(secret), last4=secret[-4:])
    return endpoint, secret


def make_event(world: World, payload: dict | None = None, *, with_dispatch: bool = True) -> Event:
    event = Event.objects.create(
        org=world.customer,
        event_type=world.event_type,
        schema_version=1,
        payload=payload or {"order_id": "o-1", "total": 12.5, "customer_email": "ann@example.com"},
        occurred_at=clock.now(),
        source="tenant",
    )
    if with_dispatch:
        EventDispatch.objects.create(event=event, status=DispatchStatus.PENDING)
    return event


def bulk_messages(world: World, count: int, *, endpoint: Endpoint | None = None) -> list[str]:
    """``count`` pending messages due now at ``endpoint`` (bulk-created, no event rows)."""
    endpoint = endpoint or world.endpoint
    now = clock.now()
    rows = [
        Message(
            org=world.customer,
            installation=world.installation,
            endpoint=endpoint,
            event_type="order.created",
            body=f'{{"type":"order.created","data":{{"n":{i}}}}}',
            status=MessageStatus.PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        for i in range(count)
    ]
    Message.objects.bulk_create(rows, batch_size=1000)
    return [m.pk for m in rows]


def deliver_until_idle(*, timeout: float = 60.0, limit: int | None = None) -> int:
    """Run delivery batches until no message is pending (waiting out short retry delays)."""
    from apps.webhooks.services.delivery import deliver_due, next_due_in

    deadline = time.monotonic() + timeout
    batches = 0
    while time.monotonic() < deadline:
        report = deliver_due(budget_seconds=max(0.0, deadline - time.monotonic()), limit=limit)
        batches += 1
        if report.claimed:
            continue
        wait = next_due_in()
        if wait is None:
            return batches
        time.sleep(min(max(wait, 0.005), 0.2))
    raise AssertionError("messages still pending after the timeout")


@dataclass
class Seen:
    headers: dict
    body: bytes
    at: float


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 on a thread of its own."""

    behave: Callable[[Seen, int], tuple[int, dict, bytes] | web.StreamResponse] | None = None
    requests: list[Seen] = field(default_factory=list)
    port: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _run(self):
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request):
        seen = Seen(dict(request.headers), await request.read(), time.time())
        with self._lock:
            self.requests.append(seen)
            index = len(self.requests)
        if self.behave is None:
            return web.Response(status=204)
        answer = self.behave(seen, index)
        if asyncio.iscoroutine(answer):
            answer = await answer
        if isinstance(answer, web.StreamResponse):
            return answer
        status, headers, body = answer
        return web.Response(status=status, headers=headers, body=body)

    def ids(self) -> list[str]:
        with self._lock:
            return [r.headers.get("webhook-id") for r in self.requests]

    def close(self):
        async def stop():
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def later(seconds: float) -> dt.datetime:
    return clock.now() + dt.timedelta(seconds=seconds)
