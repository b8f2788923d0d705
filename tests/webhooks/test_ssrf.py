"""The SSRF guard in production mode: non-public destinations are refused at connect time."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from apps.webhooks import transport
from apps.webhooks.models import Attempt, Message, MessageStatus
from apps.webhooks.services import delivery
from tests.webhooks.engine_support import Receiver, bulk_messages, make_endpoint, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _production_mode(settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = False
    settings.PLAZA_WEBHOOK_RATE_LIMIT = 0
    settings.PLAZA_WEBHOOK_TIMEOUT = 2


def fake_dns(monkeypatch, answers: dict[str, list]) -> list[str]:
    """``socket.getaddrinfo`` answering from ``answers`` (host -> list of answer lists, one per
    lookup, the last repeated); returns the log of looked-up hosts."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def lookup(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        out = []
        for address in addresses:
            if ":" in address:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return asked


def send_to(url: str) -> Attempt:
    world = make_world()
    endpoint, _ = make_endpoint(world.extension, url)
    [msg_id] = bulk_messages(world, 1, endpoint=endpoint)
    delivery.deliver_batch()
    message = Message.objects.get(pk=msg_id)
    assert message.status == MessageStatus.PENDING  # refused attempts are retried (the URL may be fixed)
    return Attempt.objects.get(message_id=msg_id)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "[::ffff:a9fe:a9fe]",  # 169.254.169.254, mapped
        "[fd00::1]",  # unique local
        "[fe80::1]",  # link-local
    ],
)
def test_ip_literals_of_non_public_addresses_are_refused(host):
    attempt = send_to(f"https://{host}/hook")
    assert attempt.error_class == "ssrf_blocked", attempt.error_message
    assert attempt.status_code is None


@pytest.mark.parametrize("host", ["127.0.0.\uff11", "\u2460\u2461\u2466.0.0.1", "10.0.0.\uff15"])
def test_unicode_spellings_of_private_literals_are_refused_at_send_time(host):
    # given a URL already stored (the save-time check is not the only guard): the client normalises
    # the fullwidth or circled digits to an IP literal that it connects to without resolving
    attempt = send_to(f"https://{host}/hook")
    assert attempt.error_class == "ssrf_blocked", attempt.error_message
    assert attempt.status_code is None


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.5", "169.254.169.254", "::ffff:127.0.0.1", "100.100.1.1", "::1"]
)
def test_names_resolving_to_non_public_addresses_are_refused(monkeypatch, address):
    fake_dns(monkeypatch, {"internal.example.com": [[address]]})
    attempt = send_to("https://internal.example.com/hook")
    assert attempt.error_class == "ssrf_blocked", attempt.error_message
    assert address.split("::ffff:")[-1] in attempt.error_message


def test_one_private_answer_among_public_ones_blocks_the_name(monkeypatch):
    fake_dns(monkeypatch, {"mixed.example.com": [["93.184.216.34", "10.0.0.1"]]})
    assert send_to("https://mixed.example.com/hook").error_class == "ssrf_blocked"


def test_plain_http_is_refused_in_production():
    attempt = send_to("http://hooks.example.com/hook")
    assert attempt.error_class == "invalid_url"


def test_dns_rebinding_cannot_redirect_the_connection(monkeypatch):
    """The name answers a public address, then (rebinding) the loopback address where a receiver
    listens. The guard resolves once and connects to what it checked, so the receiver never sees a
    request: the connection went to the public address (which the test network guard refuses)."""
    receiver = Receiver()
    try:
        asked = fake_dns(monkeypatch, {"rebind.example.com": [["93.184.216.34"], ["127.0.0.1"]]})
        connected: list = []
        guarded_connect = socket.socket.connect

        def spy(sock, address):
            connected.append(address[0] if isinstance(address, tuple) else address)
            return guarded_connect(sock, address)

        monkeypatch.setattr(socket.socket, "connect", spy)

        async def scenario():
            # plain http allowed (so a rebound connection would reach the receiver), addresses checked
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=transport.GuardedResolver(allow_private=False)),
                timeout=aiohttp.ClientTimeout(total=3),
            )
            async with session:
                url = f"http://rebind.example.com:{receiver.port}/hook"
                request = transport.Request(url=url, headers={}, body=b"{}")
                return [await transport.send_one(session, request, allow_private=True) for _ in range(3)]

        outcomes = asyncio.run(scenario())
        assert receiver.requests == []
        assert all(not o.ok for o in outcomes)
        assert "127.0.0.1" not in connected
        assert "93.184.216.34" in connected
        # and once the name answers loopback, the guard refuses it outright
        assert asked  # the name was looked up (once per new connection)
        assert {o.error_class for o in asyncio.run(scenario())} == {"ssrf_blocked"}
        assert receiver.requests == []
    finally:
        receiver.close()


def test_resolver_blocks_a_rebound_answer(monkeypatch):
    fake_dns(monkeypatch, {"flip.example.com": [["93.184.216.34"], ["169.254.169.254"]]})

    async def resolve_twice():
        resolver = transport.GuardedResolver(allow_private=False)
        first = await resolver.resolve("flip.example.com", 443)
        with pytest.raises(transport.BlockedDestination):
            await resolver.resolve("flip.example.com", 443)
        return first

    assert [r["host"] for r in asyncio.run(resolve_twice())] == ["93.184.216.34"]


def test_development_mode_allows_loopback_over_http(settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    receiver = Receiver()
    try:
        world = make_world(url=receiver.url)
        bulk_messages(world, 1)
        assert delivery.deliver_batch().succeeded == 1
    finally:
        receiver.close()
