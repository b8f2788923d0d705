"""Plumbing shared by portal views: resolve the principal and organisation through the policy
engine, and turn domain exceptions into pages."""

from __future__ import annotations

import functools

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from apps.core.errors import NotFound, PermissionDenied, PlazaError, Unauthenticated
from apps.orgs.policy import ACTIONS, can
from apps.orgs.selectors import get_org_for_principal, principal_from_request


def org_page(action: str):
    """Decorate a view ``(request, org, principal, ...)`` taking ``org_id`` from the URL: the
    organisation is resolved and ``action`` authorised before the view runs."""

    def decorator(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, org_id: str, *args, **kwargs):
            principal = principal_from_request(request)
            try:
                org = get_org_for_principal(principal, org_id, action)
                request.current_org = org
                return view(request, org, principal, *args, **kwargs)
            except NotFound as exc:
                return render(request, "errors/404.html", {"message": exc.message}, status=404)
            except PermissionDenied as exc:
                return render(request, "errors/403.html", {"message": exc.message, "code": exc.code}, status=403)
            except Unauthenticated:
                # Sign out first: the sign-in page sends a signed-in visitor straight back to
                # ``next``, which would refuse again (a redirect loop instead of a new sign-in).
                logout(request)
                return redirect_to_login(request.get_full_path())

        return wrapper

    return decorator


def allowed_actions(principal, org) -> dict[str, bool]:
    """{"member_update": True, …} for templates; the role is cached, so this costs no queries."""
    return {name.replace(".", "_"): can(principal, name, org) for name in ACTIONS}


def org_context(request, org, principal, **extra) -> dict:
    return {"current_org": org, "can": allowed_actions(principal, org), "principal": principal, **extra}


def form_error(exc: PlazaError, fields: tuple[str, ...] = ()) -> dict:
    """The error for a template: next to one of the page's ``fields`` (``ip_allowlist[2]`` counts as
    ``ip_allowlist``), else at the top of the form, so the message is always shown."""
    field = (exc.param or "").split("[", 1)[0]
    return {"field": field if field in fields else "__all__", "message": exc.message}


PAGE_SIZE = 50


def page_of(request, queryset, *, newest_first: bool = True, size: int = PAGE_SIZE) -> tuple[list, str]:
    """One page of ``queryset`` for a portal list, keyed by ``?cursor=`` like the API; and the URL of
    the next page ("" on the last), with the request's other query parameters (the list's filters).
    A cursor that is not one of ours starts from the beginning."""
    from apps.core.api import InvalidCursor, paginate

    try:
        rows, cursor = paginate(
            queryset, limit=size, cursor=request.GET.get("cursor") or None, newest_first=newest_first
        )
    except InvalidCursor:
        rows, cursor = paginate(queryset, limit=size, cursor=None, newest_first=newest_first)
    if not cursor:
        return rows, ""
    query = request.GET.copy()  # the next page keeps the list's filters
    query["cursor"] = cursor
    return rows, f"{request.path}?{query.urlencode()}"
