"""HTTP for the OpenID Connect exchanges allauth makes (discovery, JWKS, token, userinfo), sent
through Plaza's SSRF guard (apps/core/netguard.py).

An organisation admin chooses the issuer URL, so without this a connection could aim Plaza's
servers at internal addresses (cloud metadata, the database). allauth asks the social-account
adapter for a ``requests.Session``; ours carries this transport for both schemes, so every request
(and every redirect hop requests follows) is resolved, checked and pinned by ``netguard.fetch``."""

from __future__ import annotations

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from apps.core import netguard

DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 1024 * 1024


def _seconds(timeout) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, tuple):
        return float(sum(t for t in timeout if t is not None) or DEFAULT_TIMEOUT)
    return float(timeout)


class GuardedTransport(BaseAdapter):
    """A requests transport adapter that sends through ``netguard.fetch``."""

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        headers = {k: v for k, v in request.headers.items() if k.lower() != "accept-encoding"}
        headers["Accept-Encoding"] = "identity"  # netguard returns the body as sent: no gzip to undo
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        try:
            answer = netguard.fetch(
                request.method,
                request.url,
                headers=headers,
                body=body,
                timeout=_seconds(timeout),
                max_response_bytes=MAX_RESPONSE_BYTES,
            )
        except (ValueError, netguard.NetworkError, netguard.ResponseTooLarge) as exc:
            raise requests.ConnectionError(str(exc), request=request) from None
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.body
        response.encoding = get_encoding_from_headers(response.headers)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def guarded_session(timeout: float = DEFAULT_TIMEOUT) -> requests.Session:
    """A ``requests.Session`` whose every request goes through the SSRF guard."""
    import functools

    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: the guard connects itself
    transport = GuardedTransport()
    session.mount("https://", transport)
    session.mount("http://", transport)
    session.request = functools.partial(session.request, timeout=timeout)
    return session
