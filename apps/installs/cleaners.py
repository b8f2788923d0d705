"""The installs app's own uninstall cleaner (listed in ``PLAZA_INSTALL_CLEANERS``).

A cleaner takes an installation id, purges what its app keeps for that installation, then counts
what is left: ``{"label": str, "removed": {kind: n}, "remaining": {kind: n}}``. The installation row
and its version history stay (they are the record of what was installed, and when)."""

from __future__ import annotations

from apps.installs.config import secrets_decrypt
from apps.installs.models import Installation


def _held(installation: Installation | None) -> dict[str, int]:
    if installation is None:
        return {"config_values": 0, "secrets": 0, "grants": 0, "pending_versions": 0}
    secrets = len(secrets_decrypt(installation.config_secrets_encrypted))
    if installation.config_secrets_encrypted and not secrets:
        secrets = 1  # stored, but unreadable with today's SECRET_KEY: still there
    return {
        "config_values": len(installation.config or {}),
        "secrets": secrets,
        "grants": len(installation.granted_scopes or []),
        "pending_versions": 1 if installation.pending_version_id else 0,
    }


def installation_records(installation_id: str) -> dict:
    """Configuration values, encrypted secrets, consent grants and the pending update offer."""
    rows = Installation.objects.filter(pk=installation_id)
    removed = _held(rows.first())
    rows.update(config={}, config_secrets_encrypted="", granted_scopes=[], pending_version=None)
    return {"label": "Configuration, secrets and grants", "removed": removed, "remaining": _held(rows.first())}
