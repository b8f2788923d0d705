"""The webhooks app's uninstall cleaner (listed in ``PLAZA_INSTALL_CLEANERS``).

Pending messages of the installation are cancelled (nothing more is sent for it); delivered and
failed messages stay as the publisher's delivery history, but their link to the installation is
cleared and their bodies (which hold the tenant's event data) are emptied. What remains linked is
counted: zero after a clean run."""

from __future__ import annotations

from django.db.models import Q

from apps.core import clock
from apps.webhooks.models import Message, MessageStatus


def _held(installation_id: str) -> dict[str, int]:
    rows = Message.objects.filter(installation_id=installation_id)
    return {
        "pending_deliveries": rows.filter(status=MessageStatus.PENDING).count(),
        "delivery_records": rows.filter(~Q(status=MessageStatus.PENDING)).count(),
    }


def installation_deliveries(installation_id: str) -> dict:
    """Cancel the installation's pending deliveries and unlink (and empty) its delivery history."""
    removed = _held(installation_id)
    now = clock.now()
    rows = Message.objects.filter(installation_id=installation_id)
    rows.filter(status=MessageStatus.PENDING).update(
        status=MessageStatus.CANCELLED,
        lease_until=None,
        lease_token="",
        failed_at=now,
        last_error="Cancelled: the extension was uninstalled.",
    )
    rows.update(installation=None, body="{}")
    return {"label": "Webhook deliveries", "removed": removed, "remaining": _held(installation_id)}
