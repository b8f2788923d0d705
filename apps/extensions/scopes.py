"""The capability scopes an extension may ask for: a closed vocabulary.

A scope is a family name and, for some families, one argument: ``events:read:order.created``,
``http:fetch:api.example.com``. Nothing outside this vocabulary is accepted, so every grant an
admin consents to has a plain-language description (``describe``) and a known reach.

``diff`` classifies the change between two versions' scopes for re-consent: a scope that gives
more power over something the old version already reached (``kv:read`` → ``kv:write``) is an
*escalation*; a scope over something new is *added*; one no longer asked for is *removed*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Event types and UI slots: dotted lowercase words (``order.created``, ``order.sidebar``).
DOTTED_NAME = r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+"
SLOT_NAME = r"[a-z][a-z0-9_]*(?:[.-][a-z0-9_]+)*"
# A DNS host name: lowercase labels, at least one dot, no IP literals, no wildcards, no port.
HOST_NAME = r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]"
API_SCOPE = r"[a-z][a-z_]*:(?:read|write)"
# Plaza API scopes an extension may ask for on an installation's token. Credentials, signing keys,
# members and the event catalog stay out of reach: no consent screen should offer them.
API_SCOPES_FOR_EXTENSIONS = frozenset({"org:read", "members:read", "domains:read", "audit:read"})


@dataclass(frozen=True)
class Family:
    prefix: str  # "kv:read", "events:read" …
    argument: str | None  # regex for the argument after "prefix:", or None when the scope takes none
    example: str
    describe: str  # plain words for the consent screen; {arg} is the argument
    reaches: str  # the data or power it reaches
    resource: str  # what it acts on, for escalation ("kv"); "{arg}" allowed
    level: int = 1  # within one resource, a higher level includes the lower (write > read)


FAMILIES: tuple[Family, ...] = (
    Family(
        "events:read",
        DOTTED_NAME,
        "events:read:order.created",
        "Receive '{arg}' events",
        "the fields of each '{arg}' event that this scope is allowed to see",
        "events:{arg}",
    ),
    Family(
        "events:emit",
        DOTTED_NAME,
        "events:emit:order.tagged",
        "Send '{arg}' events into your organisation",
        "your organisation's event stream",
        "emit:{arg}",
    ),
    Family("kv:read", None, "kv:read", "Read its own stored data", "data this extension stored for you", "kv"),
    Family(
        "kv:write",
        None,
        "kv:write",
        "Store, change and delete its own data",
        "data this extension stores for you",
        "kv",
        level=2,
    ),
    Family(
        "http:fetch",
        HOST_NAME,
        "http:fetch:api.example.com",
        "Connect to {arg} over HTTPS",
        "whatever the extension sends to {arg}, including data it received",
        "http:{arg}",
    ),
    Family(
        "ui:slot",
        SLOT_NAME,
        "ui:slot:order.sidebar",
        "Show a widget in the '{arg}' area of the product",
        "what people see in that area, and the context the product passes to the widget",
        "ui:{arg}",
    ),
    Family(
        "agent:tools",
        None,
        "agent:tools",
        "Offer tools that AI agents in your organisation can call",
        "the inputs agents send to its tools",
        "agent",
    ),
    Family(
        "billing:usage",
        None,
        "billing:usage",
        "Report usage that you are billed for",
        "your bill for this extension",
        "billing",
    ),
    Family(
        "pii:read",
        None,
        "pii:read",
        "See personal data — names, e-mail addresses, phone numbers, postal addresses — in the events it receives",
        "the personal data of your customers that the events it receives carry",
        "pii",
    ),
    Family(
        "api",
        API_SCOPE,
        "api:members:read",
        "Use the Plaza API with the scope '{arg}'",
        "what '{arg}' allows on your organisation",
        "api:{arg}",
    ),
)
_BY_PREFIX = {f.prefix: f for f in FAMILIES}
_PLAIN = {f.prefix for f in FAMILIES if f.argument is None}


@dataclass(frozen=True)
class Scope:
    family: Family
    argument: str | None

    @property
    def name(self) -> str:
        return self.family.prefix if self.argument is None else f"{self.family.prefix}:{self.argument}"

    @property
    def resource(self) -> str:
        arg = self.argument or ""
        if self.family.prefix == "api":  # api:members:read and api:members:write act on one resource
            arg = arg.rsplit(":", 1)[0]
        return self.family.resource.format(arg=arg)

    @property
    def level(self) -> int:
        if self.family.prefix == "api":
            return 2 if (self.argument or "").endswith(":write") else 1
        return self.family.level

    def describe(self) -> str:
        return self.family.describe.format(arg=self.argument)

    def reaches(self) -> str:
        return self.family.reaches.format(arg=self.argument)


class UnknownScope(ValueError):
    pass


def parse(text: str) -> Scope:
    """The scope named by ``text``; UnknownScope (with a sentence saying why) otherwise."""
    if not isinstance(text, str) or not text:
        raise UnknownScope("A scope is a non-empty string.")
    if text in _PLAIN:
        return Scope(_BY_PREFIX[text], None)
    for family in FAMILIES:
        if family.argument is None or not text.startswith(family.prefix + ":"):
            continue
        argument = text[len(family.prefix) + 1 :]
        if re.fullmatch(family.argument, argument):
            if family.prefix == "api":
                _check_api_scope(argument)
            return Scope(family, argument)
        raise UnknownScope(f"'{argument}' is not a valid argument for '{family.prefix}' (example: {family.example}).")
    known = ", ".join(f.example for f in FAMILIES)
    raise UnknownScope(f"'{text}' is not a Plaza scope. Known forms: {known}.")


def _check_api_scope(argument: str) -> None:
    if argument not in API_SCOPES_FOR_EXTENSIONS:
        raise UnknownScope(
            f"'{argument}' is not an API scope extensions may ask for. "
            f"Allowed: {', '.join(sorted(API_SCOPES_FOR_EXTENSIONS))}."
        )


def vocabulary() -> list[dict]:
    """The documented vocabulary, for docs and the schema endpoint."""
    return [
        {"scope": f.prefix if f.argument is None else f"{f.prefix}:<argument>", "example": f.example,
         "argument_pattern": f.argument, "description": f.describe}
        for f in FAMILIES
    ]  # fmt: skip


@dataclass(frozen=True)
class ScopeChange:
    scope: str
    change: str  # "added" | "removed" | "escalation"
    replaces: str | None = None  # for an escalation: the weaker scope it supersedes

    def as_dict(self) -> dict:
        return {"scope": self.scope, "change": self.change, "replaces": self.replaces}


def diff(old: list[str], new: list[str]) -> list[ScopeChange]:
    """What changed from ``old`` to ``new`` (both lists of valid scope names), sorted by scope."""
    old_scopes = {s.name: s for s in map(parse, old)}
    new_scopes = {s.name: s for s in map(parse, new)}
    old_by_resource: dict[str, Scope] = {}
    for scope in old_scopes.values():
        best = old_by_resource.get(scope.resource)
        if best is None or scope.level > best.level:
            old_by_resource[scope.resource] = scope
    changes: list[ScopeChange] = []
    superseded: set[str] = set()
    for name, scope in new_scopes.items():
        if name in old_scopes:
            continue
        before = old_by_resource.get(scope.resource)
        if before is None:
            changes.append(ScopeChange(name, "added"))
        elif before.level < scope.level:
            changes.append(ScopeChange(name, "escalation", replaces=before.name))
            superseded.add(before.name)
        # else: a weaker scope over something the old version reached more strongly (kv:write →
        # kv:read) is no new power; the stronger one shows up as removed below.
    for name in old_scopes:
        if name not in new_scopes and name not in superseded:
            changes.append(ScopeChange(name, "removed"))
    return sorted(changes, key=lambda c: (c.scope, c.change))


def needs_consent(changes: list[ScopeChange]) -> bool:
    """An update that adds or escalates a scope never applies without the admin's consent."""
    return any(c.change in ("added", "escalation") for c in changes)
