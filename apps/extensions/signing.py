"""Ed25519 signatures over packages: the publisher's upload signature and the platform's countersignature.

A publisher registers a public key and signs each package's SHA-256 digest; the signature proves the bytes we
store are the bytes the key holder built. When a version is certified, the platform countersigns the tuple
(extension, version, digest, publisher signature), so a client can tell a certified build from a merely
uploaded one. Every signed message starts with a context line, so a signature made for one purpose can never
be replayed as another.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import struct

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.core.errors import ValidationFailed

PACKAGE_SIGNATURE_CONTEXT = b"plaza-package-v1\n"
COUNTERSIGNATURE_CONTEXT = b"plaza-countersignature-v1\n"
ALGORITHM = "ed25519"

_KEY_FORMATS = 'a PEM "PUBLIC KEY" block, an OpenSSH "ssh-ed25519 AAAA…" line, or the base64 of the raw 32-byte key'
_OTHER_KEYS = (
    (rsa.RSAPublicKey, "an RSA"),
    (ec.EllipticCurvePublicKey, "an EC"),
    (dsa.DSAPublicKey, "a DSA"),
    (ed448.Ed448PublicKey, "an Ed448"),
)
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def _b64decode(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; None when it is not base64 at all."""
    text = text.strip() if isinstance(text, str) else ""
    if not _BASE64.fullmatch(text):
        return None
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        return None
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _key_invalid(detail: str) -> ValidationFailed:
    return ValidationFailed(
        f"The public key is not usable: {detail}. Give an ed25519 public key as {_KEY_FORMATS}.",
        code="signing_key_invalid",
        param="public_key",
    )


def _require_ed25519(key) -> Ed25519PublicKey:
    if not isinstance(key, Ed25519PublicKey):
        kind = next((name for cls, name in _OTHER_KEYS if isinstance(key, cls)), "another kind of")
        raise _key_invalid(f"it is {kind} key, not ed25519")
    return key


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Accept the forms publishers actually have at hand (openssl, ssh-keygen, a raw key) — ed25519 only."""
    if not isinstance(text, str) or not text.strip():
        raise _key_invalid("it is empty")
    text = text.strip()
    if "PRIVATE KEY" in text:
        raise _key_invalid("it is a private key — keep that secret and give the public half")
    if text.startswith("-----BEGIN"):
        try:
            return _require_ed25519(serialization.load_pem_public_key(text.encode()))
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise _key_invalid("the PEM block does not hold a public key")
    if text.startswith(("ssh-", "ecdsa-", "sk-")):
        words = text.split()  # type, base64 blob, optional comment
        if words[0] != "ssh-ed25519":
            raise _key_invalid(f"it is an {words[0][:40]} key, not ssh-ed25519")
        try:
            key = serialization.load_ssh_public_key(" ".join(words[:2]).encode())
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise _key_invalid("the OpenSSH line is malformed")
        return _require_ed25519(key)
    raw = _b64decode(text)
    if raw is None:
        raise _key_invalid("it is not in a recognised format")
    if len(raw) != 32:
        raise _key_invalid(f"the base64 decodes to {len(raw)} bytes, not 32")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise _key_invalid("the 32 bytes are not an ed25519 public key")


def public_key_raw(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The fingerprint ``ssh-keygen -l`` prints for the same key, so publishers can compare it with their own.

    OpenSSH hashes the key's wire encoding (string "ssh-ed25519", string key), not the bare 32 bytes."""
    name, raw = b"ssh-ed25519", public_key_raw(key)
    blob = struct.pack(">I", len(name)) + name + struct.pack(">I", len(raw)) + raw
    return "SHA256:" + _b64encode(hashlib.sha256(blob).digest()).rstrip("=")


def package_message(digest_hex: str) -> bytes:
    digest = digest_hex.lower() if isinstance(digest_hex, str) else ""
    if not _DIGEST.fullmatch(digest):
        raise ValueError("a package digest is 64 hexadecimal characters")
    return PACKAGE_SIGNATURE_CONTEXT + b"sha256:" + digest.encode("ascii")


def verify_package_signature(key: Ed25519PublicKey, digest_hex: str, signature: str) -> None:
    """Raise unless ``signature`` is the key's signature over this digest (see ``package_message``)."""
    raw = _b64decode(signature)
    if raw is None or len(raw) != 64:
        raise ValidationFailed(
            "The signature must be the base64 of a 64-byte ed25519 signature.",
            code="signature_malformed",
            param="signature",
        )
    try:
        key.verify(raw, package_message(digest_hex))
    except InvalidSignature:
        raise ValidationFailed(
            f"The signature does not match this package's digest (sha256:{digest_hex.lower()}) "
            f"and the key {key_fingerprint(key)}.",
            code="signature_invalid",
            param="signature",
        )


def canonical_signature(signature: str) -> str:
    """A verified signature as stored and shown: standard, padded base64 of its 64 bytes, whatever
    form (URL-safe, unpadded, surrounded by spaces) it was sent in."""
    raw = _b64decode(signature)
    if raw is None or len(raw) != 64:
        raise ValueError("not an ed25519 signature")
    return _b64encode(raw)


def sign_package(private_key: Ed25519PrivateKey, digest_hex: str) -> str:
    """What a publisher's tooling does; here for tests, demo data and the CLI."""
    return _b64encode(private_key.sign(package_message(digest_hex)))


def countersignature_message(*, extension_id: str, version: str, digest_hex: str, publisher_signature: str) -> bytes:
    """The fields are joined by newlines, so none may contain one (else two tuples could sign the same bytes)."""
    fields = (extension_id, version, digest_hex, publisher_signature)
    if any(not isinstance(value, str) or "\n" in value for value in fields):
        raise ValueError("countersigned fields are strings without newlines")
    if not _DIGEST.fullmatch(digest_hex := digest_hex.lower()):
        raise ValueError("a package digest is 64 hexadecimal characters")
    return COUNTERSIGNATURE_CONTEXT + "\n".join((extension_id, version, digest_hex, publisher_signature)).encode()


@functools.lru_cache(maxsize=4)
def _platform_key(setting: str, secret: str | bytes) -> Ed25519PrivateKey:
    if setting:
        seed = _b64decode(setting)
        if seed is None or len(seed) != 32:
            raise ImproperlyConfigured("PLAZA_SIGNING_KEY must be the base64 of a 32-byte ed25519 seed.")
        return Ed25519PrivateKey.from_private_bytes(seed)
    secret_bytes = secret.encode() if isinstance(secret, str) else secret
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"plaza platform signing key v1")
    return Ed25519PrivateKey.from_private_bytes(hkdf.derive(secret_bytes))


def platform_private_key() -> Ed25519PrivateKey:
    """From PLAZA_SIGNING_KEY, or derived from SECRET_KEY when unset (development only: rotating SECRET_KEY would
    then change the platform key). Cached per value, so changed settings take effect without a restart."""
    return _platform_key(getattr(settings, "PLAZA_SIGNING_KEY", "") or "", settings.SECRET_KEY)


def clear_platform_key_cache() -> None:
    _platform_key.cache_clear()


def platform_key_id() -> str:
    return key_fingerprint(platform_private_key())


def countersign(*, extension_id: str, version: str, digest_hex: str, publisher_signature: str) -> dict:
    message = countersignature_message(
        extension_id=extension_id, version=version, digest_hex=digest_hex, publisher_signature=publisher_signature
    )
    signature = platform_private_key().sign(message)
    return {"key_id": platform_key_id(), "algorithm": ALGORITHM, "signature": _b64encode(signature)}


def verify_countersignature(
    countersignature: dict, *, extension_id: str, version: str, digest_hex: str, publisher_signature: str
) -> bool:
    """True only for a well-formed countersignature, by the current or an earlier published platform key
    (PLAZA_SIGNING_KEYS_PREVIOUS), over exactly these fields."""
    if not isinstance(countersignature, dict) or countersignature.get("algorithm") != ALGORITHM:
        return False
    keys = {key_fingerprint(k): k for k in _platform_public_keys()}
    key = keys.get(countersignature.get("key_id"))
    raw = _b64decode(countersignature.get("signature"))
    if key is None or raw is None or len(raw) != 64:
        return False
    try:
        message = countersignature_message(
            extension_id=extension_id, version=version, digest_hex=digest_hex, publisher_signature=publisher_signature
        )
        key.verify(raw, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _platform_public_keys() -> list[Ed25519PublicKey]:
    """The current key first, then the retired ones whose countersignatures stay valid after a rotation."""
    keys = [platform_private_key().public_key()]
    for text in getattr(settings, "PLAZA_SIGNING_KEYS_PREVIOUS", []) or []:
        raw = _b64decode(text)
        if raw is None or len(raw) != 32:
            raise ImproperlyConfigured("PLAZA_SIGNING_KEYS_PREVIOUS holds base64 32-byte ed25519 public keys.")
        keys.append(Ed25519PublicKey.from_public_bytes(raw))
    return keys


def platform_public_keys() -> list[dict]:
    """What the platform publishes so anyone can check countersignatures offline: the current key and
    the earlier ones, each marked."""
    return [
        {
            "key_id": key_fingerprint(key),
            "algorithm": ALGORITHM,
            "public_key": _b64encode(public_key_raw(key)),
            "status": "current" if i == 0 else "retired",
        }
        for i, key in enumerate(_platform_public_keys())
    ]
