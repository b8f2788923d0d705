"""In-process hooks certification sends (first-party code only; see docs/architecture.md)."""

from django.dispatch import Signal

run_finished = Signal()
"""Sent after commit when a certification run reaches an outcome: passed, failed, waiting for
review, or decided by staff (approved, rejected).

- ``sender``: the ``CertificationRun`` class.
- ``run``: the ``CertificationRun``, with ``status`` set and ``version`` loaded.

Receivers must not raise (the signal is sent with ``send_robust``); return values are ignored."""
