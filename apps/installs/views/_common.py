"""What the install console's pages share: cleaning input, links to other parts of the
marketplace (which may not exist yet: a missing one is left out, never a crash), and errors."""

from __future__ import annotations

from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

from apps.core.errors import NotFound, ValidationFailed
from apps.core.ids import is_valid_id
from apps.extensions.models import Channel, Extension
from apps.installs import selectors
from apps.installs.config_form import ConfigForm
from apps.orgs.policy import check

REFUSAL_CODES = frozenset({"extension_denied", "publisher_denied", "scope_denied", "not_allowlisted"})
MAX_SCOPES = 200  # a consent form names at most this many scopes (the manifest allows far fewer)


def _clean(value, limit: int = 200) -> str:
    # PostgreSQL refuses NUL in a query parameter (a 500)
    return value.replace("\x00", "").strip()[:limit] if isinstance(value, str) else ""


def _url_or_none(name: str, **kwargs) -> str | None:
    """A URL of a page another part of the marketplace owns; None while it does not exist."""
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def _storefront_url() -> str:
    return _url_or_none("storefront") or "/marketplace/"


def _request_url(org, extension) -> str | None:
    url = _url_or_none("install_request_new", org_id=org.pk)
    return f"{url}?{urlencode({'extension': extension.pk})}" if url else None


def _rules_url(principal, org) -> str | None:
    if check(principal, "install_rule.view", org) is not None:
        return None
    return _url_or_none("install_rules", org_id=org.pk)


def _granted_from(post) -> list[str]:
    return [_clean(s) for s in post.getlist("granted_scopes")[:MAX_SCOPES] if _clean(s)]


def _done(request, url: str):
    """After a change: htmx requests navigate (the page changed too much to swap a piece)."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _channel_of(value: str, available: list[str], default: str = Channel.STABLE) -> str:
    if value in available:
        return value
    return default if default in available else (available[0] if available else default)


def _visible_extension(principal, extension_id: str) -> Extension:
    """An extension a signed-in person may be offered: one a channel serves (the storefront's
    catalogue), or any of their own publisher's (to install into its sandbox). NotFound otherwise."""
    if not is_valid_id(extension_id, "ext"):
        raise NotFound("No such extension.")
    extension = Extension.objects.select_related("org").filter(pk=extension_id, deleted_at__isnull=True).first()
    if extension is None:
        raise NotFound("No such extension.")
    if principal.role_in(extension.org) is not None:
        return extension
    if any(selectors.channel_version(extension, channel) for channel in Channel.values):
        return extension
    raise NotFound("No such extension.")


def _config_errors(form: ConfigForm, exc: ValidationFailed) -> None:
    """Put a ``config_invalid`` error (and each of its details) next to the fields it names."""
    for detail in exc.details or []:
        if isinstance(detail, dict) and detail.get("message"):
            form.add_error(detail.get("param") or detail.get("path"), str(detail["message"]))
    if not exc.details:
        form.add_error(exc.param, exc.message)
