"""Billing fixtures: the embed fixtures (``shop``: acme with two widget installations, ``vendor``)."""

from tests.embed.conftest import shop  # noqa: F401
from tests.installs.conftest import event_catalog, vendor  # noqa: F401
