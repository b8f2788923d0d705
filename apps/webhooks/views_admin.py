"""A customer organisation's admins: the deliveries of one of their installations (what the
extension received, with the payload minimised to the grant, and each attempt's outcome). No
endpoint secret, publisher URL or response body is shown here: those are the publisher's."""

from __future__ import annotations

from django.http import HttpResponseNotAllowed
from django.shortcuts import render

from apps.installs.selectors import get_installation_for_principal
from apps.orgs.portal import org_context, org_page, page_of
from apps.webhooks import selectors
from apps.webhooks.models import MessageStatus

_ALLOWED = ("GET", "HEAD")


@org_page("installation.deliveries.view")
def delivery_list(request, org, principal, installation_id: str):
    """The installation's messages, newest first, filtered by status (``failed``: those that gave
    up); htmx requests get only the rows."""
    installation = get_installation_for_principal(principal, org, installation_id, "installation.deliveries.view")
    if request.method not in _ALLOWED:
        return HttpResponseNotAllowed(_ALLOWED)
    status = request.GET.get("status", "")
    status = status if status in MessageStatus.values else ""
    rows, next_page = page_of(request, selectors.deliveries_of(installation, status=status), size=25)
    ctx = org_context(
        request,
        org,
        principal,
        installation=installation,
        extension=installation.extension,
        deliveries=rows,
        next_page=next_page,
        status=status,
        statuses=MessageStatus.choices,
    )
    template = "webhooks/deliveries.html#rows" if request.htmx else "webhooks/deliveries.html"
    return render(request, template, ctx)


@org_page("installation.deliveries.view")
def delivery_detail(request, org, principal, installation_id: str, message_id: str):
    installation = get_installation_for_principal(principal, org, installation_id, "installation.deliveries.view")
    message = selectors.get_delivery_for_principal(principal, installation, message_id, "installation.deliveries.view")
    if request.method not in _ALLOWED:
        return HttpResponseNotAllowed(_ALLOWED)
    ctx = org_context(
        request,
        org,
        principal,
        installation=installation,
        extension=installation.extension,
        message=message,
        customer_error=selectors.delivery_error_for_customer(message),
        attempts=list(selectors.attempts_of(message)),
    )
    return render(request, "webhooks/delivery.html", ctx)
