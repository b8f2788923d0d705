"""In-process hooks the extension registry sends (first-party code only; see docs/architecture.md)."""

from django.dispatch import Signal

version_status_changed = Signal()
"""Sent after commit when an extension version changes status.

- ``sender``: the ``ExtensionVersion`` class.
- ``version``: the ``ExtensionVersion``, already saved with its new ``status``.
- ``before``: the status it had.

Receivers must not raise (the signal is sent with ``send_robust``); return values are ignored.
Certification (apps/certification/receivers.py) starts a run on ``submitted``."""

channel_released = Signal()
"""Sent after commit when a version is promoted to a channel (a new ``ChannelRelease``).

- ``sender``: the ``ChannelRelease`` class.
- ``release``: the ``ChannelRelease`` (``extension``, ``channel``, ``version``).

Receivers must not raise (sent with ``send_robust``); return values are ignored. Installations
following the channel update (apps/installs/receivers.py)."""
