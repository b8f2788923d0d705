"""The marketplace fixtures (vendor, event_catalog) of tests/installs/conftest.py, and platform staff."""

from __future__ import annotations

import pytest

from tests.conftest import make_tenant
from tests.installs.conftest import event_catalog, vendor  # noqa: F401


@pytest.fixture
def staff(db):
    """The platform organisation ("plaza"); its builders are platform staff (owner@plaza.test owns it)."""
    platform = make_tenant("plaza", "owner@plaza.test")
    platform.org.is_platform = True
    platform.org.save(update_fields=["is_platform"])
    return platform


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Listing images go to this test's own directory."""
    settings.STORAGES = {
        **settings.STORAGES,
        "listing_media": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "listing-media")},
        },
    }
