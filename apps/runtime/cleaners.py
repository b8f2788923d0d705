"""The runtime's uninstall cleaner (listed in ``PLAZA_INSTALL_CLEANERS``): an installation's
key-value storage is deleted; its invocation records stay for the publisher's logs and metrics but
are detached from it (``installation_id`` cleared). Knows the installation only by its id."""

from __future__ import annotations

from apps.runtime.models import Invocation, KVEntry


def _held(installation_id: str) -> dict[str, int]:
    return {
        "kv_entries": KVEntry.objects.filter(installation_id=installation_id).count(),
        "invocation_links": Invocation.objects.filter(installation_id=installation_id).count(),
    }


def installation_data(installation_id: str) -> dict:
    """Delete the installation's stored keys; detach its invocation records."""
    if not installation_id:  # calls made outside any installation (certification, the CLI)
        return {"label": "Stored data and call records", "removed": {}, "remaining": {}}
    removed = _held(installation_id)
    KVEntry.objects.filter(installation_id=installation_id).delete()
    Invocation.objects.filter(installation_id=installation_id).update(installation_id="")
    return {"label": "Stored data and call records", "removed": removed, "remaining": _held(installation_id)}
