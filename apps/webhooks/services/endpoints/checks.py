"""Checks of what a publisher may save: an endpoint's URL (without DNS), its event filter,
environment, description and rate limit."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import yarl

from apps.core.errors import ValidationFailed
from apps.core.netguard import blocked_reason, private_networks_allowed
from apps.extensions.models import Extension, ExtensionVersion, VersionStatus
from apps.webhooks.models import (
    Environment,
)
from apps.webhooks.services.endpoints._common import (
    _INTERNAL_SUFFIXES,
    _NUMERIC_HOST,
    MAX_DESCRIPTION,
    MAX_EVENT_TYPES,
    MAX_URL_LENGTH,
)


# --- validation ----------------------------------------------------------------------------------
def _url_error(message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, param="url")


def host_refusal(host: str) -> str | None:
    """Why ``host`` (from a URL) can never be a public destination, without asking DNS; or None."""
    host = host.rstrip(".").lower()
    literal = host[1:-1] if host.startswith("[") else host
    try:
        address = ipaddress.ip_address(literal.split("%", 1)[0])
    except ValueError:
        address = None
    if address is not None:
        reason = blocked_reason(str(address))
        return f"{literal} is {reason}" if reason else None
    last_label = host.rsplit(".", 1)[-1]
    if _NUMERIC_HOST.match(host) and (last_label.isdigit() or last_label.startswith("0x") or host.isdigit()):
        # inet_aton notations (127.1, 2130706433, 0x7f.0.0.1) resolve to addresses without DNS
        return f"{host} is an IP address in an unusual notation"
    if host == "localhost" or host.endswith(_INTERNAL_SUFFIXES):
        return f"{host} is an internal name"
    if "." not in host:
        return f"{host} is a single-label (intranet) name"
    return None


def endpoint_url_clean(url) -> str:
    """The URL as stored, or ``ValidationFailed`` (param ``url``) saying what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise _url_error("Enter the endpoint's URL.", "url_required")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _url_error(f"The URL is longer than {MAX_URL_LENGTH} characters.", "url_too_long")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise _url_error("The URL may not contain spaces or control characters.", "url_invalid")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise _url_error("That is not a valid URL.", "url_invalid") from None
    allow = private_networks_allowed()
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow and scheme == "http"):
        raise _url_error("Endpoints must use https://.", "url_not_https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _url_error(
            "The URL may not carry a user name or password; authenticate with the signature.", "url_credentials"
        )
    if not host:
        raise _url_error("The URL needs a host name.", "url_invalid")
    if port == 0:
        raise _url_error("The URL's port must be between 1 and 65535.", "url_invalid")
    if parts.fragment or url.endswith("#"):
        raise _url_error("The URL may not have a #fragment (it is never sent).", "url_invalid")
    sent_host = _host_as_sent(url)
    # A percent sign is only valid as an IPv6 zone id ("%25eth0"); a percent-encoded name is not
    # what DNS would be asked for.
    if sent_host is None or "%" in sent_host.split("%25", 1)[0]:
        raise _url_error("That is not a valid URL.", "url_invalid")
    if not allow:
        # Check the name the HTTP client will connect to, not only Python's reading of the URL:
        # the client maps Unicode (IDNA/UTS 46), so ``127.0.0.１`` or ``①②⑦.0.0.1`` become the
        # IP literal 127.0.0.1, which is connected to without any DNS answer for the guard to see.
        for candidate in dict.fromkeys((host, sent_host)):
            reason = host_refusal(candidate)
            if reason:
                raise _url_error(f"Plaza does not send to {reason}.", "url_not_public")
    return url


def _host_as_sent(url: str) -> str | None:
    """The host name as the sending client (aiohttp, through yarl) puts it on the wire: lower
    case, IDNA-encoded; None when the client would refuse the URL."""
    try:
        host = yarl.URL(url).raw_host
    except (ValueError, UnicodeError):
        return None
    return host or None


def subscribable_event_types(extension: Extension) -> set[str]:
    """The event types the extension may receive: ``events:read:<type>`` declared by any of its
    versions that is not rejected or yanked."""
    scopes = ExtensionVersion.objects.filter(extension=extension).exclude(
        status__in=(VersionStatus.REJECTED, VersionStatus.YANKED)
    )
    types: set[str] = set()
    for names in scopes.values_list("scopes", flat=True):
        for scope in names or ():
            if isinstance(scope, str) and scope.startswith("events:read:"):
                types.add(scope[len("events:read:") :])
    return types


def event_types_clean(extension: Extension, event_types) -> list[str]:
    """A sorted, deduplicated filter; every type must be one the extension's scopes subscribe to.
    Empty means "every type the installation's grant allows"."""
    if event_types is None:
        return []
    if not isinstance(event_types, list | tuple) or not all(isinstance(t, str) for t in event_types):
        raise ValidationFailed("The event types are a list of names.", code="event_types_invalid", param="event_types")
    names = sorted({t.strip() for t in event_types if t.strip()})
    if len(names) > MAX_EVENT_TYPES:
        raise ValidationFailed(
            f"At most {MAX_EVENT_TYPES} event types.", code="event_types_invalid", param="event_types"
        )
    allowed = subscribable_event_types(extension)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        shown = ", ".join(sorted(allowed)) or "none"
        raise ValidationFailed(
            f"{extension.key} does not subscribe to {', '.join(unknown)[:300]}: its versions declare "
            f"events:read for {shown[:500]}.",
            code="event_type_not_subscribed",
            param="event_types",
        )
    return names


def _clean_environment(environment) -> str:
    if environment not in Environment.values:
        raise ValidationFailed(
            f"The environment is one of {', '.join(Environment.values)}.",
            code="environment_invalid",
            param="environment",
        )
    return environment


def _clean_description(description) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise ValidationFailed("The description is text.", param="description")
    description = description.strip()
    if any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in description):
        raise ValidationFailed("The description may not contain control characters.", param="description")
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(f"The description is at most {MAX_DESCRIPTION} characters.", param="description")
    return description


def _clean_rate(rate) -> int | None:
    if rate in (None, ""):
        return None
    if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= 10_000:
        raise ValidationFailed(
            "The rate limit is a whole number of messages per second from 1 to 10000.",
            code="rate_limit_invalid",
            param="rate_limit_per_second",
        )
    return rate
