"""Judging an organisation's allow/deny rules against an extension and the scopes it would hold.

One function answers for install, update and runtime alike (``install_refusal``), so the three can
never disagree. Deny wins over allow; in allowlist-only mode an extension needs an allow rule naming
it or its publisher. Scope rules only deny: ``http:fetch:*`` refuses every ``http:fetch:…`` scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from apps.installs.models import InstallMode, InstallPolicy, InstallRule, RuleEffect, RuleKind


@dataclass(frozen=True)
class Refusal:
    code: str  # extension_denied | publisher_denied | scope_denied | not_allowlisted
    message: str
    rule_id: str = ""
    scope: str = ""


def scope_matches(pattern: str, scope: str) -> bool:
    """``pattern`` is a scope, or a prefix ending in ``*`` (``http:fetch:*``, ``events:read:order.*``)."""
    if pattern.endswith("*"):
        return scope.startswith(pattern[:-1])
    return scope == pattern


def install_mode(org) -> str:
    policy = InstallPolicy.objects.filter(org=org).only("mode").first()
    return policy.mode if policy else InstallMode.OPEN


def install_refusal(org, extension, scopes: Iterable[str], *, rules: list[InstallRule] | None = None,
                    mode: str | None = None) -> Refusal | None:  # fmt: skip
    """Why ``org``'s rules refuse ``extension`` holding ``scopes``, or None when they allow it.
    ``rules`` and ``mode`` may be passed in when judging many installations of one org at once."""
    if rules is None:
        rules = list(InstallRule.objects.filter(org=org))
    if mode is None:
        mode = install_mode(org)
    publisher_id = extension.org_id
    for rule in rules:
        if rule.effect != RuleEffect.DENY:
            continue
        if rule.kind == RuleKind.EXTENSION and rule.value == extension.pk:
            return Refusal("extension_denied", f"Your organisation does not allow {extension.key}.", rule.pk)
        if rule.kind == RuleKind.PUBLISHER and rule.value == publisher_id:
            return Refusal(
                "publisher_denied", f"Your organisation does not allow extensions by this publisher ({extension.key}).",
                rule.pk,
            )  # fmt: skip
        if rule.kind == RuleKind.SCOPE:
            for scope in scopes:
                if scope_matches(rule.value, scope):
                    return Refusal(
                        "scope_denied",
                        f"Your organisation never allows the scope '{scope}' (rule '{rule.value}'), "
                        f"which {extension.key} needs.",
                        rule.pk,
                        scope,
                    )
    if mode == InstallMode.ALLOWLIST:
        allowed = any(
            rule.effect == RuleEffect.ALLOW
            and (
                (rule.kind == RuleKind.EXTENSION and rule.value == extension.pk)
                or (rule.kind == RuleKind.PUBLISHER and rule.value == publisher_id)
            )
            for rule in rules
        )
        if not allowed:
            return Refusal(
                "not_allowlisted",
                f"Your organisation only allows allowlisted extensions, and {extension.key} is not on the list.",
            )
    return None
