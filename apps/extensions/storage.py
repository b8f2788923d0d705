"""Package artifacts, stored by SHA-256 through Django's storage API (``STORAGES["artifacts"]``).

Content addressing makes a store idempotent (the same bytes are stored once) and lets every read
check that what comes back is what was signed."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import storages


class ArtifactCorrupted(Exception):
    pass


def _storage():
    return storages["artifacts"]


def artifact_name(sha256: str) -> str:
    return f"packages/{sha256[:2]}/{sha256}.zip"


def store_artifact(data: bytes) -> str:
    """Store ``data`` under its digest (once) and return the digest."""
    sha256 = hashlib.sha256(data).hexdigest()
    storage, name = _storage(), artifact_name(sha256)
    if not storage.exists(name):
        saved = storage.save(name, ContentFile(data))
        if saved != name:  # a concurrent upload of the same bytes won the name; ours is a duplicate
            storage.delete(saved)
    return sha256


def read_artifact(sha256: str) -> bytes:
    """The stored bytes, verified against their digest."""
    with _storage().open(artifact_name(sha256), "rb") as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactCorrupted(f"artifact {sha256} does not match its digest")
    return data


def artifact_exists(sha256: str) -> bool:
    return _storage().exists(artifact_name(sha256))
