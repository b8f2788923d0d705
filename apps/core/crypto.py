"""Secrets Plaza hands out once and stores only as hashes."""

from __future__ import annotations

import hashlib
import secrets


def new_secret(prefix: str, nbytes: int = 30) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def secret_hash(secret: str) -> str:
    """SHA-256 is enough here: the secrets are 240 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(secret.encode()).hexdigest()
