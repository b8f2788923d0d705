"""Publisher pages of the runtime: an extension's calls and their metrics. Reads only."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import render

from apps.core import clock
from apps.extensions.selectors import get_extension_for_principal
from apps.orgs.portal import org_context, org_page, page_of
from apps.runtime.selectors import invocation_stats, invocations_of

STATS_HOURS = 24


@org_page("extension.view")
def invocation_list(request, org, principal, extension_id: str):
    ext = get_extension_for_principal(principal, org, extension_id, "extension.view")
    stats = invocation_stats(ext, clock.now() - dt.timedelta(hours=STATS_HOURS))
    rows, next_page = page_of(request, invocations_of(ext))
    ctx = org_context(
        request,
        org,
        principal,
        extension=ext,
        stats=stats,
        stats_hours=STATS_HOURS,
        error_percent=round(stats["error_rate"] * 100, 1),
        invocations=rows,
        next_page=next_page,
    )
    return render(request, "runtime/invocations.html", ctx)
