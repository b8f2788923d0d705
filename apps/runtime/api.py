"""Per-extension observability: the record of every call into an extension's code, and its metrics.
Publishers read their own extensions' calls (extension.view)."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Query, Router

from apps.core import clock
from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import ValidationFailed
from apps.core.ids import is_valid_id
from apps.extensions.selectors import get_extension_for_principal
from apps.orgs.selectors import get_org_for_principal
from apps.runtime import outcomes
from apps.runtime.schemas import InvocationOut, InvocationStatsOut
from apps.runtime.selectors import invocation_stats, invocations_of

router = Router(tags=["invocations"])


@router.get(
    "/orgs/{org_id}/extensions/{extension_id}/invocations",
    response=Page[InvocationOut],
    summary="List calls into the extension's code, newest first",
)
def list_invocations(
    request: HttpRequest,
    org_id: str,
    extension_id: str,
    outcome: str | None = Query(None, max_length=32, description="Only calls that ended with this outcome code."),
    version_id: str | None = Query(None, max_length=40, description="Only calls into this version."),
    limit: int = LIMIT_QUERY,
    cursor: str | None = CURSOR_QUERY,
):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "extension.view")
    rows = invocations_of(ext)
    if outcome:
        if outcome not in outcomes.ALL:
            raise ValidationFailed(f"Unknown outcome '{outcome[:32]}'.", code="outcome_unknown", param="outcome")
        rows = rows.filter(outcome=outcome)
    if version_id:
        if not is_valid_id(version_id, "ver"):
            raise ValidationFailed("Not a version id.", code="version_id_invalid", param="version_id")
        rows = rows.filter(version_id=version_id)
    page, next_cursor = paginate(rows, limit=limit, cursor=cursor)
    return {"data": page, "next_cursor": next_cursor}


@router.get(
    "/orgs/{org_id}/extensions/{extension_id}/invocations/stats",
    response=InvocationStatsOut,
    summary="Metrics of the calls into the extension's code over the last hours",
)
def invocation_metrics(
    request: HttpRequest,
    org_id: str,
    extension_id: str,
    hours: int = Query(24, ge=1, le=720, description="The window, in hours (1 to 720)."),
):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "extension.view")
    return invocation_stats(ext, clock.now() - dt.timedelta(hours=hours))
