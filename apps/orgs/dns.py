"""Looking up TXT records for domain verification, through a resolver settings can swap."""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class DnsLookupError(Exception):
    pass


class TxtResolver(Protocol):
    def txt(self, name: str) -> list[str]: ...


class DnsPythonResolver:
    """Asks the system's DNS servers with dnspython, with a short timeout."""

    def __init__(self, lifetime: float = 5.0):
        self.lifetime = lifetime

    def txt(self, name: str) -> list[str]:
        import dns.exception
        import dns.resolver

        try:
            answer = dns.resolver.resolve(name, "TXT", lifetime=self.lifetime)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise DnsLookupError(f"DNS lookup of {name} failed: {exc.__class__.__name__}") from exc
        return [b"".join(record.strings).decode(errors="replace") for record in answer]


class StaticResolver:
    """A resolver with fixed answers, for tests and offline development."""

    records: dict[str, list[str]] = {}

    def txt(self, name: str) -> list[str]:
        return list(self.records.get(name.rstrip(".").lower(), []))


def get_resolver() -> TxtResolver:
    return import_string(settings.PLAZA_DNS_RESOLVER)()
