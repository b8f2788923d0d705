"""``http_fetch`` (apps/runtime/host.py) and the SSRF guard under it (apps/core/netguard.py).

The success paths talk to a local ``http.server`` on 127.0.0.1 with PLAZA_ALLOW_PRIVATE_NETWORKS on;
the guard's refusals run with it off. ``api.plaza.test`` is resolved to 127.0.0.1 by a patched
``socket.getaddrinfo``, so the scope and the Host header carry a name, as in production."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.core import netguard
from apps.runtime import host, outcomes
from apps.runtime.limits import DEFAULT_LIMITS
from apps.runtime.runner import invoke
from tests.runtime.test_sandbox import assert_still_serving, hook, module

HOST = "api.plaza.test"
SCOPES = [f"http:fetch:{HOST}"]
SLOW = dataclasses.replace(DEFAULT_LIMITS, wall_ms=5000)  # room for real round trips
RESP = 131072  # where the guest asks for the response


def fetch_module(cap: int = 16384, times: int = 1) -> bytes:
    """Sends its input (the request JSON) ``times`` times; writes the last response as its output,
    or returns the last negative code as its status (``1``: the response did not fit ``cap``)."""
    return module(
        hook(
            "run",
            "(local.set $len (call $input_len))",
            "(drop (call $input_read (i32.const 0)))",
            "(loop $again",
            f"  (local.set $r (call $http_fetch (i32.const 0) (local.get $len) (i32.const {RESP}) (i32.const {cap})))",
            "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
            f"  (br_if $again (i32.lt_u (local.get $i) (i32.const {times}))))",
            "(if (i32.lt_s (local.get $r) (i32.const 0)) (then (return (local.get $r))))",
            f"(if (i32.gt_s (local.get $r) (i32.const {cap})) (then (return (i32.const 1))))",
            f"(drop (call $output_write (i32.const {RESP}) (local.get $r)))",
            "(i32.const 0)",
            locals_=("$len", "$r", "$i"),
        ),
        imports=["input_len", "input_read", "output_write", "http_fetch"],
        pages=8,
    )


FETCH = fetch_module()

# A first call with a 16-byte buffer, then the same request again with a buffer of the size it was told.
RETRY = module(
    hook(
        "run",
        "(local.set $len (call $input_len))",
        "(drop (call $input_read (i32.const 0)))",
        f"(local.set $r (call $http_fetch (i32.const 0) (local.get $len) (i32.const {RESP}) (i32.const 16)))",
        "(if (i32.le_s (local.get $r) (i32.const 16)) (then (return (i32.const 1))))",
        f"(local.set $r (call $http_fetch (i32.const 0) (local.get $len) (i32.const {RESP}) (local.get $r)))",
        "(if (i32.lt_s (local.get $r) (i32.const 0)) (then (return (local.get $r))))",
        f"(drop (call $output_write (i32.const {RESP}) (local.get $r)))",
        "(i32.const 0)",
        locals_=("$len", "$r"),
    ),
    imports=["input_len", "input_read", "output_write", "http_fetch"],
    pages=8,
)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.seen.append((self.command, self.path, self.headers.get("Host"), self.headers.get("X-Plaza")))
        if self.path == "/hello?x=1":
            self._send(200, "hi ✓".encode(), {"X-Test": "yes", "Content-Type": "text/plain; charset=utf-8"})
        elif self.path == "/redirect":
            self._send(302, b"moved", {"Location": "/hello?x=1"})
        elif self.path.startswith("/big/"):
            self._send(200, b"x" * int(self.path.removeprefix("/big/")))
        elif self.path == "/hang":
            self.server.release.wait(10)
            self._send(200, b"late")
        else:
            self._send(404, b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append((self.command, self.path, self.headers.get("Host"), body))
        self._send(201, b"got " + body, {"Content-Type": self.headers.get("Content-Type", "")})


@pytest.fixture
def server(settings, monkeypatch):
    """A local server that ``api.plaza.test`` resolves to; private networks allowed."""
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.seen, srv.release = [], threading.Event()
    real = socket.getaddrinfo

    def resolve(name, *args, **kwargs):
        return real("127.0.0.1" if name == HOST else name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.base = f"http://{HOST}:{srv.server_address[1]}"
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def request(url: str, method: str = "GET", **extra) -> dict:
    return {"method": method, "url": url, "headers": extra.pop("headers", {}), **extra}


# --- success ----------------------------------------------------------------------------------------
def test_a_get_round_trip_returns_status_headers_and_body(server):
    r = invoke(FETCH, "run", request(f"{server.base}/hello?x=1", headers={"X-Plaza": "1"}), scopes=SCOPES, limits=SLOW)
    assert r.outcome == outcomes.OK, r
    assert r.output["status"] == 200
    assert r.output["body"] == "hi ✓"
    assert r.output["headers"]["x-test"] == "yes"
    assert r.output["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert all(name == name.lower() for name in r.output["headers"])
    port = server.server_address[1]
    assert server.seen == [("GET", "/hello?x=1", f"{HOST}:{port}", "1")]  # the Host header names the host
    assert_still_serving()


def test_a_post_sends_its_body(server):
    req = request(f"{server.base}/echo", "POST", body='{"a": 1}', headers={"Content-Type": "application/json"})
    r = invoke(FETCH, "run", req, scopes=SCOPES, limits=SLOW)
    assert r.outcome == outcomes.OK, r
    assert (r.output["status"], r.output["body"]) == (201, 'got {"a": 1}')
    assert r.output["headers"]["content-type"] == "application/json"
    assert server.seen[0][0:2] == ("POST", "/echo")


def test_a_redirect_is_returned_not_followed(server):
    r = invoke(FETCH, "run", request(f"{server.base}/redirect"), scopes=SCOPES, limits=SLOW)
    assert r.outcome == outcomes.OK, r
    assert r.output["status"] == 302
    assert r.output["headers"]["location"] == "/hello?x=1"
    assert [seen[1] for seen in server.seen] == ["/redirect"]


def test_a_response_that_does_not_fit_is_returned_again_without_a_second_fetch(server):
    r = invoke(RETRY, "run", request(f"{server.base}/hello?x=1"), scopes=SCOPES, limits=SLOW)
    assert r.outcome == outcomes.OK, r
    assert r.output["body"] == "hi ✓"
    assert len(server.seen) == 1


# --- limits -----------------------------------------------------------------------------------------
def test_a_response_over_the_cap_is_too_large(server):
    limits = dataclasses.replace(SLOW, http_response_bytes=1000)
    r = invoke(FETCH, "run", request(f"{server.base}/big/1000"), scopes=SCOPES, limits=limits)
    assert r.outcome == outcomes.OK and len(r.output["body"]) == 1000, r
    r = invoke(FETCH, "run", request(f"{server.base}/big/1001"), scopes=SCOPES, limits=limits)
    assert (r.outcome, r.status) == (outcomes.FAILED, outcomes.E_TOO_LARGE)


def test_a_request_body_over_the_cap_is_too_large(server):
    body = "x" * (DEFAULT_LIMITS.http_request_bytes + 1)
    limits = SLOW.raised(input_bytes=2 * DEFAULT_LIMITS.input_bytes)  # the request arrives as the input
    r = invoke(FETCH, "run", request(f"{server.base}/echo", "POST", body=body), scopes=SCOPES, limits=limits)
    assert (r.outcome, r.status) == (outcomes.FAILED, outcomes.E_TOO_LARGE)
    assert server.seen == []


def test_a_hanging_server_is_a_network_error_within_the_budget(server):
    limits = dataclasses.replace(SLOW, http_timeout_ms=300)
    started = time.perf_counter()
    r = invoke(FETCH, "run", request(f"{server.base}/hang"), scopes=SCOPES, limits=limits)
    elapsed = time.perf_counter() - started
    assert (r.outcome, r.status) == (outcomes.FAILED, outcomes.E_NETWORK), r
    assert 0.25 < elapsed < 1.5
    r = invoke(FETCH, "run", request(f"{server.base}/hello?x=1"), scopes=SCOPES, limits=SLOW)
    assert r.outcome == outcomes.OK and r.output["status"] == 200, r
    assert_still_serving()


def test_a_hanging_server_under_the_default_wall_clock_ends_at_the_deadline(server):
    invoke(FETCH, "run", request(f"{server.base}/hello?x=1"), scopes=SCOPES, limits=SLOW)  # compiled: warm
    started = time.perf_counter()
    r = invoke(FETCH, "run", request(f"{server.base}/hang"), scopes=SCOPES)
    elapsed = time.perf_counter() - started
    assert r.outcome == outcomes.DEADLINE, r
    assert elapsed < 0.6  # the fetch got only the time left before the 100 ms deadline, not 2 s
    assert_still_serving()


def test_more_fetches_than_the_limit_are_refused(server):
    calls = DEFAULT_LIMITS.http_calls
    r = invoke(fetch_module(times=calls), "run", request(f"{server.base}/hello?x=1"), scopes=SCOPES, limits=SLOW)
    assert r.outcome == outcomes.OK, r
    r = invoke(fetch_module(times=calls + 1), "run", request(f"{server.base}/hello?x=1"), scopes=SCOPES, limits=SLOW)
    assert (r.outcome, r.status) == (outcomes.FAILED, outcomes.E_LIMIT)
    assert len(server.seen) == 2 * calls


# --- refusals ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "req",
    [
        {"method": "GET"},
        {"method": "TRACE", "url": f"https://{HOST}/"},
        {"method": "GET", "url": f"https://{HOST}/", "body": 1},
        {"method": "GET", "url": f"https://{HOST}/", "headers": {"Host": "internal"}},
        {"method": "GET", "url": f"https://{HOST}/", "headers": {"X-A": "1\r\nX-B: 2"}},
        {"method": "GET", "url": f"https://{HOST}/", "headers": {"X A": "1"}},
        {"method": "GET", "url": f"https://{HOST}/a b"},
        {"method": "GET", "url": f"ftp://{HOST}/"},
        {"method": "GET", "url": f"https://user:pw@{HOST}/"},
        {"method": "GET", "url": f"https://{HOST}/", "extra": 1},
        ["GET"],
        "not a request",
    ],
)
def test_a_malformed_request_is_invalid(server, req):
    r = invoke(FETCH, "run", req, scopes=SCOPES, limits=SLOW)
    assert (r.outcome, r.status) == (outcomes.FAILED, outcomes.E_INVALID), req
    assert server.seen == []


def test_request_bytes_that_are_not_json_are_invalid():
    bad = b"{not json"
    wasm = module(
        hook("run", f"(call $http_fetch (i32.const 0) (i32.const {len(bad)}) (i32.const 64) (i32.const 64))"),
        imports=["http_fetch"],
        data={0: bad},
    )
    r = invoke(wasm, "run", scopes=SCOPES)
    assert (r.outcome, r.status) == (outcomes.FAILED, outcomes.E_INVALID)


def test_an_undeclared_host_is_denied_without_a_connection(server, monkeypatch):
    attempts = []
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: attempts.append(address))
    for url in ("https://other.plaza.test/", f"https://{HOST}.evil.test/", f"https://sub.{HOST}/"):
        r = invoke(FETCH, "run", request(url), scopes=SCOPES, limits=SLOW)
        assert (r.outcome, r.status) == (outcomes.FAILED, outcomes.E_DENIED), url
    assert attempts == [] and server.seen == []


def test_without_private_networks_a_loopback_host_is_denied(server, settings):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = False
    for url in (f"https://{HOST}/hello?x=1", f"http://{HOST}/hello?x=1", f"{server.base}/hello?x=1"):
        r = invoke(FETCH, "run", request(url), scopes=SCOPES, limits=SLOW)
        assert (r.outcome, r.status) == (outcomes.FAILED, outcomes.E_DENIED), url
    assert server.seen == []


def test_the_function_needs_an_http_fetch_scope():
    for scopes in ([], ["kv:write", "events:emit:order.tagged"]):
        r = invoke(FETCH, "run", request(f"https://{HOST}/"), scopes=scopes)
        assert r.outcome == outcomes.CAPABILITY_NOT_GRANTED
        assert "http:fetch:<host>" in r.detail
    assert "http_fetch" in host.functions_for(host.capabilities_of(SCOPES))
    assert host.http_hosts_of(["http:fetch:API.example.com", "kv:read"]) == {"api.example.com"}
    assert_still_serving()


# --- the guard ----------------------------------------------------------------------------------------
def _answers(*addresses: str):
    def getaddrinfo(host, port, *args, **kwargs):
        out = []
        for address in addresses:
            if ":" in address:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return out

    return getaddrinfo


BLOCKED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "0.0.0.0",
    "100.64.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_blocked(monkeypatch, settings, address):
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = False
    monkeypatch.setattr(socket, "getaddrinfo", _answers(address))
    with pytest.raises(netguard.BlockedAddress, match="Plaza does not connect there"):
        netguard.resolve_public("evil.plaza.test", 443)
    settings.PLAZA_ALLOW_PRIVATE_NETWORKS = True
    assert netguard.resolve_public("evil.plaza.test", 443) == [address]


def test_one_private_answer_blocks_the_host(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _answers("93.184.216.34", "10.0.0.1"))
    with pytest.raises(netguard.BlockedAddress):
        netguard.resolve_public("mixed.plaza.test", 443, allow_private=False)


def test_public_addresses_pass(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _answers("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"))
    assert netguard.resolve_public("example.plaza.test", 443, allow_private=False) == [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
    ]


def test_the_connection_goes_to_the_checked_address_not_a_second_answer(monkeypatch):
    """DNS rebinding: the first answer is public, every later one loopback. Only one lookup is made,
    and the socket connects to the address that was checked."""
    lookups, connects = [], []

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        return _answers("93.184.216.34" if len(lookups) == 1 else "127.0.0.1")(host, port)

    def connect(sock, address):
        connects.append(address[:2])
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    with pytest.raises(netguard.NetworkError):
        netguard.fetch("GET", "https://rebind.plaza.test/x", timeout=1, max_response_bytes=100, allow_private=False)
    assert lookups == ["rebind.plaza.test"]
    assert connects == [("93.184.216.34", 443)]


def test_plain_http_is_refused_unless_private_networks_are_allowed():
    with pytest.raises(ValueError, match="https"):
        netguard.fetch("GET", "http://example.plaza.test/", timeout=1, max_response_bytes=10, allow_private=False)


def test_the_setting_defaults_to_off():
    from django.conf import settings

    assert settings.PLAZA_ALLOW_PRIVATE_NETWORKS is False
    json.dumps(netguard.blocked_reason("169.254.169.254"))  # a plain string reason
