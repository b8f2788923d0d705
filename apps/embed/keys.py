"""The ES256 (ECDSA P-256) keys delegated tokens are signed with, and the JWKS that publishes them.

``PLAZA_EMBED_TOKEN_KEY`` is the base64 of 32 random bytes; the private scalar is derived from them
(reduced into [1, n-1]), so an operator configures one short value, as with ``PLAZA_SIGNING_KEY``.
Unset, the key is derived from ``SECRET_KEY`` (development and test only: settings refuse to start
in production without it). ``PLAZA_EMBED_TOKEN_KEYS_PREVIOUS`` lists earlier values (or the base64
of an earlier public key, 65 bytes uncompressed): published in the JWKS, never used to sign.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "ES256"
# The order of the P-256 group.
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _b64decode(text: str) -> bytes | None:
    text = (text or "").strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if ("-" in text or "_" in text) else None)
    except (binascii.Error, ValueError):
        return None


def _private_from_seed(seed: bytes) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(b"plaza embed token key v1" + seed).digest(), "big") % (_N - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


@functools.lru_cache(maxsize=4)
def _current(setting: str, secret: str) -> ec.EllipticCurvePrivateKey:
    if setting:
        seed = _b64decode(setting)
        if seed is None or len(seed) != 32:
            raise ImproperlyConfigured("PLAZA_EMBED_TOKEN_KEY must be the base64 of 32 random bytes.")
        return _private_from_seed(seed)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"plaza embed token key v1")
    return _private_from_seed(hkdf.derive(secret.encode()))


def private_key() -> ec.EllipticCurvePrivateKey:
    """The signing key (cached per setting value, so tests that change the setting see the change)."""
    return _current(getattr(settings, "PLAZA_EMBED_TOKEN_KEY", "") or "", settings.SECRET_KEY)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict:
    numbers = key.public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    # RFC 7638 thumbprint (members in lexicographic order, no whitespace) as the key id.
    thumbprint = hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()).digest()
    return {**jwk, "kid": _b64url(thumbprint)[:16], "alg": ALGORITHM, "use": "sig"}


def current_kid() -> str:
    return public_jwk(private_key().public_key())["kid"]


def _previous_public_keys() -> list[ec.EllipticCurvePublicKey]:
    keys = []
    for text in getattr(settings, "PLAZA_EMBED_TOKEN_KEYS_PREVIOUS", []) or []:
        raw = _b64decode(text)
        if raw is not None and len(raw) == 32:
            keys.append(_private_from_seed(raw).public_key())
        elif raw is not None and len(raw) == 65 and raw[0] == 4:
            try:
                keys.append(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw))
            except ValueError:
                raise ImproperlyConfigured("PLAZA_EMBED_TOKEN_KEYS_PREVIOUS holds an invalid P-256 point.") from None
        else:
            raise ImproperlyConfigured(
                "PLAZA_EMBED_TOKEN_KEYS_PREVIOUS holds earlier PLAZA_EMBED_TOKEN_KEY values (base64 of 32 bytes) "
                "or base64 P-256 public keys (65 bytes, uncompressed)."
            )
    return keys


def jwks() -> dict:
    """The published key set: the current key first, then the earlier ones (rotation)."""
    keys = [public_jwk(private_key().public_key())]
    seen = {keys[0]["kid"]}
    for key in _previous_public_keys():
        jwk = public_jwk(key)
        if jwk["kid"] not in seen:
            seen.add(jwk["kid"])
            keys.append(jwk)
    return {"keys": keys}


def public_keys_by_kid() -> dict[str, ec.EllipticCurvePublicKey]:
    keys = {current_kid(): private_key().public_key()}
    for key in _previous_public_keys():
        keys.setdefault(public_jwk(key)["kid"], key)
    return keys
