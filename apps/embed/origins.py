"""Origins of embeds: the host origins a tenant registers, and each installation's widget origin.

Every installation's widgets are served from an origin of their own below ``PLAZA_WIDGET_ORIGIN``
(``http://widgets.localhost:8000`` → ``http://inst-01jabc….widgets.localhost:8000``). The iframes
carry ``allow-same-origin`` (widgets need their origin for storage and CORS), so two widgets of
different extensions sharing one origin could script each other's documents through
``window.parent.frames``; distinct origins make the browser keep them apart.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.core.ids import is_valid_id

_LABEL = re.compile(r"^inst-([0-9a-hjkmnp-tv-z]{26})$")
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGIN_LENGTH = 200


def _split(origin: str) -> tuple[str, str, int | None]:
    parts = urlsplit(origin)
    return parts.scheme, parts.hostname or "", parts.port


def widget_base() -> tuple[str, str, int | None]:
    return _split(settings.PLAZA_WIDGET_ORIGIN)


def widget_origin(installation_id: str) -> str:
    """The origin ``installation_id``'s widgets are served from."""
    scheme, host, port = widget_base()
    label = installation_id.lower().replace("_", "-")
    return f"{scheme}://{label}.{host}" + (f":{port}" if port else "")


def _host_and_port(http_host: str) -> tuple[str, int | None]:
    """(host, port) of a Host header, lowercased and without a trailing dot: ``widgets.example.``
    names the same host as ``widgets.example`` (Django's ALLOWED_HOSTS check strips the dot too),
    so it must be routed the same way."""
    host, _, port = (http_host or "").lower().rpartition(":") if "]" not in (http_host or "") else (http_host, "", "")
    if not host:
        return (http_host or "").lower().removesuffix("."), None
    return host.removesuffix("."), int(port) if port.isdigit() else None


def widget_host_kind(http_host: str) -> tuple[str, str | None]:
    """("base", None) for the widget origin itself, ("installation", inst id) for an installation's,
    ("", None) for any other host. The port must match the widget origin's."""
    if not settings.PLAZA_WIDGET_ORIGIN:
        return "", None
    _, base_host, base_port = widget_base()
    host, port = _host_and_port(http_host)
    default = _DEFAULT_PORTS.get(widget_base()[0])
    if (port or default) != (base_port or default):
        return "", None
    if host == base_host:
        return "base", None
    label, dot, rest = host.partition(".")
    if dot and rest == base_host:
        match = _LABEL.fullmatch(label)
        if match:
            installation_id = "inst_" + match.group(1).upper()
            if is_valid_id(installation_id, "inst"):
                return "installation", installation_id
    return "", None


def is_demo_host(http_host: str) -> bool:
    if not settings.PLAZA_DEMO_HOST_ORIGIN:
        return False
    scheme, demo_host, demo_port = _split(settings.PLAZA_DEMO_HOST_ORIGIN)
    host, port = _host_and_port(http_host)
    default = _DEFAULT_PORTS.get(scheme)
    return host == demo_host and (port or default) == (demo_port or default)


def _potentially_trustworthy(host: str) -> bool:
    return host in ("localhost", "127.0.0.1") or host.endswith(".localhost")


def normalise_origin(value: object, *, param: str = "host_origin") -> str:
    """An exact origin ``scheme://host[:port]``, lowercase, default port dropped; anything else (a
    path, a wildcard, credentials, a trailing dot, plain http to a public host) is refused."""
    if not isinstance(value, str) or not value or len(value) > MAX_ORIGIN_LENGTH:
        raise ValidationFailed("An origin is scheme://host[:port], e.g. https://shop.example.com.", param=param)
    text = value.strip()
    match = re.fullmatch(r"(https?)://([A-Za-z0-9.-]+)(?::(\d{1,5}))?", text, re.IGNORECASE)
    if match is None:
        raise ValidationFailed(
            f"{value[:100]!r} is not an origin: write scheme://host[:port] with nothing after it "
            "(no path, no trailing slash, no wildcard).",
            param=param,
        )
    scheme, host, port_text = match.group(1).lower(), match.group(2).lower(), match.group(3)
    if not _HOST.fullmatch(host) or host.endswith("."):
        raise ValidationFailed(f"{host!r} is not a valid host name.", param=param)
    port = int(port_text) if port_text else None
    if port is not None and not 0 < port < 65536:
        raise ValidationFailed("The port must be between 1 and 65535.", param=param)
    if port == _DEFAULT_PORTS[scheme]:
        port = None
    if scheme == "http" and settings.IS_PRODUCTION and not _potentially_trustworthy(host):
        raise ValidationFailed("Host origins must use https://.", param=param)
    origin = f"{scheme}://{host}" + (f":{port}" if port else "")
    if widget_host_kind(f"{host}:{port or _DEFAULT_PORTS[scheme]}")[0] or origin == settings.PLAZA_BASE_URL.lower():
        raise ValidationFailed("A host origin cannot be Plaza's own or a widget origin.", param=param)
    return origin
