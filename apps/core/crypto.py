"""Secrets Plaza hands out once and stores only as hashes, and the few it must keep readable
(an identity provider's client secret), encrypted with a key derived from SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def new_secret(prefix: str, nbytes: int = 30) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def secret_hash(secret: str) -> str:
    """SHA-256 is enough here: the secrets are 240 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"plaza stored secrets v1").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext: str) -> str:
    """Authenticated encryption (Fernet) of a secret Plaza must read back later."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str | None:
    """The plaintext, or None if ``token`` was not made with this SECRET_KEY (rotated) or altered."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None
