"""Outbound HTTP that cannot be aimed at Plaza's own network (SSRF guard).

``resolve_public(host, port)`` resolves a host name and refuses it (``BlockedAddress``) when any
address it resolves to is loopback, private, link-local (cloud metadata at 169.254.169.254),
unspecified, multicast, reserved, carrier-grade NAT, or one of those embedded in IPv6 (IPv4-mapped,
6to4, NAT64). ``fetch`` resolves once, checks, and connects to the checked address itself, so a
second DNS answer (DNS rebinding) can never redirect the connection; TLS still verifies the
certificate against the host name. No redirects are followed, the whole exchange has one time
budget, and the response body is capped.

``settings.PLAZA_ALLOW_PRIVATE_NETWORKS`` (default off) lifts the address check and allows plain
``http://`` — for local development only."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddress(ValueError):
    """The destination is not a public address (or cannot be reached under the guard's rules)."""


class NetworkError(Exception):
    """The exchange failed: DNS, connection, TLS, protocol error, or the time budget ran out."""


class ResponseTooLarge(Exception):
    """The response body is over the cap."""


def private_networks_allowed() -> bool:
    return bool(getattr(settings, "PLAZA_ALLOW_PRIVATE_NETWORKS", False))


def blocked_reason(address: str) -> str | None:
    """Why ``address`` (an IP literal) is not a public destination, or None when it is."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = blocked_reason(str(embedded))
            if inner:
                return f"embeds {embedded}, which is {inner}"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local (cloud metadata lives there)"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "carrier-grade NAT (100.64.0.0/10)"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not globally routable"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def resolve_public(host: str, port: int, *, allow_private: bool | None = None) -> list[str]:
    """The addresses ``host`` resolves to, all of them public; else ``BlockedAddress``.

    Every answer must be public: one private answer blocks the host, so an attacker's name cannot
    mix a public address with an internal one. DNS failures raise ``socket.gaierror`` (OSError)."""
    allow = private_networks_allowed() if allow_private is None else allow_private
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        if not allow:
            reason = blocked_reason(address)
            if reason:
                raise BlockedAddress(f"{host} resolves to {address}, which is {reason}; Plaza does not connect there.")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise BlockedAddress(f"{host} resolves to no IPv4 or IPv6 address.")
    return addresses


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first checked address that answers (no name lookup here)."""
    last: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError("no address to connect to")


class _Pinned:
    """Mixin for http.client connections: connect to the checked addresses, not to ``self.host``.
    ``self.host`` stays the name, so the Host header and TLS SNI/verification use it."""

    def pin(self, addresses: list[str]) -> None:
        def create(address, timeout, source_address=None):
            return _connect(addresses, address[1], timeout)

        self._create_connection = create


class _PinnedHTTP(_Pinned, http.client.HTTPConnection):
    pass


class _PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    pass


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def fetch(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float,
    max_response_bytes: int,
    max_request_bytes: int | None = None,
    allow_private: bool | None = None,
) -> Response:
    """One HTTP exchange under the guard. Raises ``ValueError`` for a URL or request it refuses
    (``BlockedAddress`` for a non-public destination), ``ResponseTooLarge``, or ``NetworkError``.

    ``timeout`` (seconds) bounds resolving-to-last-byte as a whole (DNS itself is bounded by the
    system resolver). A 3xx is returned as it is: redirects are never followed."""
    allow = private_networks_allowed() if allow_private is None else allow_private
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow and parts.scheme == "http"):
        raise ValueError("Only https:// URLs may be fetched.")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError("The URL needs a host and may not carry credentials.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError("The URL's port is not a number from 0 to 65535.") from None
    if body is not None and max_request_bytes is not None and len(body) > max_request_bytes:
        raise ValueError(f"The request body is over {max_request_bytes} bytes.")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + timeout
    try:
        addresses = resolve_public(parts.hostname, port, allow_private=allow)
    except OSError as exc:
        raise NetworkError(f"Could not resolve {parts.hostname}: {exc}") from None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise NetworkError("Timed out resolving the host.")
    if parts.scheme == "https":
        conn = _PinnedHTTPS(parts.hostname, port, timeout=remaining, context=ssl.create_default_context())
    else:
        conn = _PinnedHTTP(parts.hostname, port, timeout=remaining)
    conn.pin(addresses)
    expired = threading.Event()

    def abort() -> None:  # wakes a read blocked on a server that drips or hangs
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also under TLS
            except OSError:
                pass

    watchdog = threading.Timer(remaining, abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        data = bytearray()
        while len(data) <= max_response_bytes:
            chunk = response.read(min(64 * 1024, max_response_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        if len(data) > max_response_bytes:
            raise ResponseTooLarge(f"The response body is over {max_response_bytes} bytes.")
        return Response(response.status, response.reason, response.getheaders(), bytes(data))
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise NetworkError(f"Timed out after {timeout:.3f} s.") from None
        raise NetworkError(f"{type(exc).__name__}: {exc}"[:300]) from None
    finally:
        watchdog.cancel()
        conn.close()
