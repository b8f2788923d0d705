"""In-process hooks the installs app sends (first-party code only; see docs/architecture.md)."""

from django.dispatch import Signal

installation_changed = Signal()
"""Sent after commit whenever an installation changes: the ``installation.created`` notification
and its siblings.

- ``sender``: the ``Installation`` class.
- ``installation``: the ``Installation`` as saved.
- ``action``: one of ``created``, ``configured``, ``updated``, ``update_offered``,
  ``rolled_back``, ``settings_changed``, ``blocked``, ``unblocked``, ``uninstalled``.
- ``actor_id``: the user id (or "" for the platform) that caused it.

Receivers must not raise (sent with ``send_robust``); return values are ignored. The storefront
keeps its install counts with it (apps/listings/receivers.py); webhooks (#8) turn it into
``installation.*`` events."""
