"""The marketplace fixtures (vendor, event_catalog) of tests/installs/conftest.py."""

from tests.installs.conftest import event_catalog, vendor  # noqa: F401
