"""Standard Webhooks signing (https://www.standardwebhooks.com/, spec ``standard-webhooks.md``).

A message is signed over ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256, keyed by
the base64-decoded part of a ``whsec_`` secret; the signature header lists one ``v1,<base64>``
per valid secret, space-separated, so during a rotation's overlap receivers holding either the
old or the new secret accept the message. Every retry of a message keeps its id and body but is
signed again with a fresh timestamp (receivers refuse timestamps more than 5 minutes off).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# Standard Webhooks: secrets of 24 to 64 bytes.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """A signature that does not verify, or headers that cannot be checked."""


def secret_generate() -> str:
    """A fresh endpoint secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (the base64-decoded part after the prefix)."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("the secret is not valid base64") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise SignatureError(f"a secret must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{int(timestamp)}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">``."""
    return _signature(secret_key(secret), msg_id, timestamp, _as_bytes(body))


def signature_header(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value: one ``v1`` signature per secret, space-separated."""
    raw = _as_bytes(body)
    return " ".join(_signature(secret_key(s), msg_id, timestamp, raw) for s in secrets_)


def signature_header_for_keys(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """``signature_header`` with the secrets already decoded (``secret_key``): the delivery loop
    decodes each endpoint's secrets once per batch, not once per message."""
    return " ".join(_signature(key, msg_id, timestamp, body) for key in keys)


def headers_for(secrets_: Iterable[str], msg_id: str, body: bytes | str, *, timestamp: int | None = None) -> dict:
    """The three Standard Webhooks headers for one attempt."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header(secrets_, msg_id, ts, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Check a received message the way a receiver should (for our tests and the CLI).

    Raises ``SignatureError`` unless one of the header's ``v1`` signatures matches ``secret`` and
    the timestamp lies within ``tolerance`` seconds of ``now``."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, ts_raw, sig_header = (lower.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and ts_raw and sig_header):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        ts = int(ts_raw)
    except ValueError as exc:
        raise SignatureError("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise SignatureError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, msg_id, ts, body).split(",", 1)[1].encode()
    for item in sig_header.split(" "):
        version, _, value = item.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value.encode()):
            return
    raise SignatureError("no matching signature")
