"""Helpers for reading a request: client IP behind a known number of proxies, request ids."""

from __future__ import annotations

import ipaddress
import re
import secrets

from django.conf import settings

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def accept_request_id(raw: str | None) -> str:
    """Echo a well-formed incoming id; anything else gets a fresh one."""
    if raw and _REQUEST_ID_RE.fullmatch(raw):
        return raw
    return new_request_id()


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def user_agent(request) -> str:
    """The caller's User-Agent, as stored (audit entries, sessions): control characters removed
    (PostgreSQL refuses NUL in text) and at most 400 characters."""
    return _CONTROL_RE.sub("", request.META.get("HTTP_USER_AGENT", ""))[:400]


def client_ip(request) -> str:
    """The caller's address, trusting exactly PLAZA_TRUSTED_PROXY_HOPS X-Forwarded-For entries."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    hops = settings.PLAZA_TRUSTED_PROXY_HOPS
    if hops > 0:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            remote = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(remote))
    except ValueError:
        return ""


def safe_next(request, candidate: str | None, default: str = "/") -> str:
    """A ``next`` URL that is safe to redirect to: on this host (no open redirect), with the scheme
    the request used, and without control characters (a NUL or newline would break the header)."""
    from django.utils.http import url_has_allowed_host_and_scheme

    if not candidate or len(candidate) > 2000 or _CONTROL_RE.search(candidate):
        return default
    # A path on this site, never a bare word: ``redirect()`` would look a word up as a URL name.
    if not candidate.startswith("/") or candidate.startswith("//"):
        return default
    if not url_has_allowed_host_and_scheme(candidate, {request.get_host()}, require_https=request.is_secure()):
        return default
    return candidate
