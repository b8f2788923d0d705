"""What the endpoint services share: limits, the acting user, secrets, locking, audit, guards."""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.db.models import Q

from apps.audit.services import audit_record
from apps.core import clock, crypto
from apps.core.errors import Conflict
from apps.orgs.policy import Principal
from apps.webhooks.models import (
    Endpoint,
    EndpointSecret,
    EndpointSource,
)

MAX_URL_LENGTH = 2000
MAX_DESCRIPTION = 200
MAX_EVENT_TYPES = 100
MAX_OVERLAP_HOURS = 7 * 24
DEFAULT_OVERLAP_HOURS = 24
MANIFEST_REMOVED = "Removed from the manifest"
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".lan", ".home.arpa", ".intranet")
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)  # 127.1, 2130706433, 0x7f000001 …
_UNSET = object()


def max_endpoints() -> int:
    """Endpoints per extension and environment (``PLAZA_WEBHOOK_MAX_ENDPOINTS``, default 20)."""
    return int(getattr(settings, "PLAZA_WEBHOOK_MAX_ENDPOINTS", 20))


def acting_user(principal: Principal | None):
    return principal.user if principal is not None and principal.kind == "user" else None


# --- secrets -------------------------------------------------------------------------------------
def _secret_generate() -> str:
    from apps.webhooks.signing import secret_generate

    return secret_generate()


def _secret_add(endpoint: Endpoint, *, now: dt.datetime | None = None) -> tuple[EndpointSecret, str]:
    raw = _secret_generate()
    row = EndpointSecret.objects.create(
        endpoint=endpoint, secret_encrypted=crypto.encrypt(raw), last4=raw[-4:], created_at=now or clock.now()
    )
    return row, raw


def secret_plaintexts(endpoint: Endpoint, *, now: dt.datetime | None = None) -> list[str]:
    """The secrets that sign ``endpoint``'s messages now, newest first (for tests and the engine)."""
    now = now or clock.now()
    rows = EndpointSecret.objects.filter(endpoint=endpoint).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return [s for s in (crypto.decrypt(r.secret_encrypted) for r in rows) if s]


def _lock(endpoint: Endpoint) -> Endpoint:
    """The endpoint's row, locked until the transaction ends (two rotations take turns)."""
    locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    locked.extension = endpoint.extension
    if hasattr(endpoint, "org"):
        locked.org = endpoint.org
    return locked


def _audit(action: str, endpoint: Endpoint, changes: dict | None = None) -> None:
    audit_record(
        action=action,
        org_id=endpoint.extension.org_id,
        target=endpoint,
        target_type="webhook_endpoint",
        target_label=f"{endpoint.extension.key} {endpoint.environment} {endpoint.url}"[:254],
        changes=changes or {},
    )


def _ensure_live(endpoint: Endpoint) -> None:
    if endpoint.deleted_at is not None:
        raise Conflict("This endpoint was deleted.", code="endpoint_deleted")


def _ensure_manual(endpoint: Endpoint, what: str) -> None:
    if endpoint.source == EndpointSource.MANIFEST:
        raise Conflict(
            f"This endpoint is declared in the manifest: change its {what} in extension.json and release a version.",
            code="endpoint_managed_by_manifest",
        )
