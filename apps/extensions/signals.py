"""In-process hooks the extension registry sends (first-party code only; see docs/architecture.md)."""

from django.dispatch import Signal

version_status_changed = Signal()
"""Sent after commit when an extension version changes status.

- ``sender``: the ``ExtensionVersion`` class.
- ``version``: the ``ExtensionVersion``, already saved with its new ``status``.
- ``before``: the status it had.

Receivers must not raise (the signal is sent with ``send_robust``); return values are ignored.
Certification (apps/certification/receivers.py) starts a run on ``submitted``."""
