"""Concurrent uploads to one extension (PostgreSQL row locks): version numbers stay unique and
increasing in the order versions are created, and a lost race is a clear 409, never a 500."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from apps.core.errors import Conflict
from apps.extensions import services
from apps.extensions.models import ExtensionVersion
from apps.extensions.signing import sign_package
from apps.orgs.policy import Principal
from tests.extensions.conftest import manifest, package_bytes
from tests.test_review_findings import _in_threads, postgres_only

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


def _uploads(publisher, numbers: list[str], monkeypatch):
    """One upload per number, all held at the door of the locked section until every one is there."""
    gate = threading.Barrier(len(numbers), timeout=5)
    real_store = services.store_artifact

    def store_then_wait(data):
        digest = real_store(data)
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            pass
        return digest

    monkeypatch.setattr(services, "store_artifact", store_then_wait)
    robot = Principal(kind="user", user=None, mfa_verified=True)

    def upload(number: str):
        data = package_bytes(manifest(version=number, summary=f"build {number}"))
        signature = sign_package(publisher.private, hashlib.sha256(data).hexdigest())
        return lambda: services.version_upload(
            principal=robot, extension=publisher.extension, data=data, signature=signature, key_id=publisher.key.pk
        )

    return _in_threads(*(upload(n) for n in numbers))


def test_the_same_number_uploaded_twice_at_once_is_stored_once(publisher, monkeypatch):
    errors = _uploads(publisher, ["1.0.0", "1.0.0"], monkeypatch)
    assert ExtensionVersion.objects.filter(extension=publisher.extension).count() == 1
    assert len(errors) == 1 and isinstance(errors[0], Conflict) and errors[0].code == "version_exists"


def test_racing_numbers_are_stored_in_increasing_order(publisher, monkeypatch):
    # 1.0.5 dawdles between reading the earlier versions and creating its row: without the lock,
    # 1.1.0 would be created in between and 1.0.5 stored after it
    real_create = ExtensionVersion.objects.create

    def create(**fields):
        if fields["version"] == "1.0.5":
            time.sleep(0.5)
        return real_create(**fields)

    monkeypatch.setattr(ExtensionVersion.objects, "create", create)
    errors = _uploads(publisher, ["1.1.0", "1.0.5"], monkeypatch)
    stored = list(ExtensionVersion.objects.filter(extension=publisher.extension).order_by("created_at", "pk"))
    # whichever came first, nothing lower than an earlier version was stored after it
    assert [v.version for v in stored] in (["1.1.0"], ["1.0.5", "1.1.0"])
    assert all(isinstance(e, Conflict) and e.code == "version_not_greater" for e in errors)
    assert len(stored) + len(errors) == 2
