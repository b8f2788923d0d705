"""Reads of an organisation's install controls: its rules (and what each one blocks), its install
requests, and a publisher's sandbox tenant. Tenant scoping and authorisation happen here."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.core.ids import is_valid_id
from apps.extensions.models import Extension
from apps.installs.models import (
    Installation,
    InstallationStatus,
    InstallRequest,
    InstallRule,
    RequestStatus,
    RuleEffect,
    RuleKind,
)
from apps.installs.rules import Refusal, install_mode, install_refusal, scope_matches
from apps.orgs.models import Organization
from apps.orgs.policy import Principal, authorize


# --- rules ---------------------------------------------------------------------------------------
def rules_of(org: Organization) -> QuerySet[InstallRule]:
    return InstallRule.objects.filter(org=org).select_related("created_by")


def get_install_rule_for_principal(principal: Principal, org: Organization, rule_id: str, action: str) -> InstallRule:
    """A rule of ``org`` (already resolved for this principal); NotFound for anything else."""
    if not is_valid_id(rule_id, "irl"):
        raise NotFound("No such install rule.")
    rule = InstallRule.objects.filter(org=org, pk=rule_id).first()
    if rule is None:
        raise NotFound("No such install rule.")
    rule.org = org
    authorize(principal, action, rule)
    return rule


def live_installations(org: Organization) -> list[Installation]:
    """The organisation's active and blocked installations, oldest first, with their extensions."""
    return list(
        Installation.objects.filter(org=org, status__in=(InstallationStatus.ACTIVE, InstallationStatus.BLOCKED))
        .select_related("extension", "extension__org")
        .defer("config", "config_secrets_encrypted")
        .order_by("pk")
    )


def rule_refuses(rule: InstallRule, installation: Installation) -> bool:
    """Whether this deny rule, on its own, refuses ``installation`` (allow rules never refuse)."""
    if rule.effect != RuleEffect.DENY:
        return False
    if rule.kind == RuleKind.EXTENSION:
        return rule.value == installation.extension_id
    if rule.kind == RuleKind.PUBLISHER:
        return rule.value == installation.extension.org_id
    return any(scope_matches(rule.value, scope) for scope in installation.granted_scopes or ())


def blocks_by_rule(rules: list[InstallRule], installations: list[Installation]) -> dict[str, list[Installation]]:
    """{rule id: the live installations that rule refuses}: what removing it would not be enough to
    unblock, and what adding it blocked."""
    return {rule.pk: [i for i in installations if rule_refuses(rule, i)] for rule in rules}


def rule_targets(rules: list[InstallRule]) -> dict[str, str]:
    """{rule id: what the value names in words}: the extension's name and key, the publisher's
    name, or the scope's plain-language description. Two queries for any number of rules."""
    ext_ids = [r.value for r in rules if r.kind == RuleKind.EXTENSION]
    org_ids = [r.value for r in rules if r.kind == RuleKind.PUBLISHER]
    extensions = {e.pk: f"{e.name} ({e.key})" for e in Extension.objects.filter(pk__in=ext_ids)} if ext_ids else {}
    publishers = dict(Organization.objects.filter(pk__in=org_ids).values_list("pk", "name")) if org_ids else {}
    labels = {}
    for rule in rules:
        if rule.kind == RuleKind.EXTENSION:
            labels[rule.pk] = extensions.get(rule.value, "an extension that no longer exists")
        elif rule.kind == RuleKind.PUBLISHER:
            labels[rule.pk] = publishers.get(rule.value, "a publisher that no longer exists")
        else:
            labels[rule.pk] = scope_words(rule.value)
    return labels


def scope_words(pattern: str) -> str:
    from apps.extensions import scopes as scope_vocab

    if pattern.endswith("*"):
        return f"every scope starting with '{pattern[:-1]}'"
    try:
        return scope_vocab.parse(pattern).describe()
    except scope_vocab.UnknownScope:
        return pattern


@dataclass
class Judgement:
    installation: Installation
    refusal: Refusal | None


def judge_installations(org: Organization, installations: list[Installation], *, mode: str | None = None) -> list:
    """Each live installation with the refusal the rules give it now (``mode`` overrides the
    organisation's, to preview a switch to allowlist-only)."""
    rules = list(InstallRule.objects.filter(org=org))
    mode = mode or install_mode(org)
    return [
        Judgement(i, install_refusal(org, i.extension, i.granted_scopes, rules=rules, mode=mode)) for i in installations
    ]


# --- install requests ----------------------------------------------------------------------------
def install_requests_of(org: Organization, *, status: str = "", requested_by=None) -> QuerySet[InstallRequest]:
    qs = InstallRequest.objects.filter(org=org).select_related(
        "extension", "extension__org", "requested_by", "decided_by"
    )
    if status:
        qs = qs.filter(status=status)
    if requested_by is not None:
        qs = qs.filter(requested_by=requested_by)
    return qs


def visible_install_requests(principal: Principal, org: Organization, *, status: str = "", mine: bool = False):
    """Admins (who decide) see every request of the organisation; everyone else sees their own."""
    from apps.orgs.policy import can

    own = mine or not can(principal, "install_request.decide", org)
    if own and (principal.kind != "user" or principal.user is None):
        return InstallRequest.objects.none()
    return install_requests_of(org, status=status, requested_by=principal.user if own else None)


def get_install_request_for_principal(
    principal: Principal, org: Organization, request_id: str, action: str, *, own: bool = False
) -> InstallRequest:
    """A request of ``org`` (already resolved for this principal); with ``own``, only one the
    principal made (anyone else's answers NotFound, as another organisation's does)."""
    if not is_valid_id(request_id, "irq"):
        raise NotFound("No such install request.")
    qs = install_requests_of(org).filter(pk=request_id)
    if own:
        if principal.kind != "user" or principal.user is None:
            raise NotFound("No such install request.")
        qs = qs.filter(requested_by=principal.user)
    request = qs.first()
    if request is None:
        raise NotFound("No such install request.")
    request.org = org
    authorize(principal, action, request)
    return request


def requestable_extension(*, extension_id: str = "", extension_key: str = "") -> Extension:
    """The extension a member asks for, by id or key; deleted ones do not exist here."""
    qs = Extension.objects.filter(deleted_at__isnull=True).select_related("org")
    if extension_id:
        ext = qs.filter(pk=extension_id).first() if is_valid_id(extension_id, "ext") else None
        param = "extension_id"
    else:
        ext = qs.filter(key=extension_key.strip().lower()).first() if extension_key else None
        param = "extension_key"
    if ext is None or ext.org.sandbox_of_id:
        raise NotFound("No such extension.", param=param)
    return ext


def request_verdicts(org: Organization, requests: list[InstallRequest]) -> dict[str, Refusal | None]:
    """{request id: why the rules would refuse installing its extension now (or None)}, judged
    with the scopes of the version the stable channel serves (what "Install now" offers)."""
    from apps.installs.selectors import installable_version

    rules = list(InstallRule.objects.filter(org=org))
    mode = install_mode(org)
    verdicts: dict[str, Refusal | None] = {}
    by_extension: dict[str, Refusal | None] = {}
    for request in requests:
        ext = request.extension
        if ext.pk not in by_extension:
            version = installable_version(org, ext)
            by_extension[ext.pk] = install_refusal(org, ext, version.scopes if version else [], rules=rules, mode=mode)
        verdicts[request.pk] = by_extension[ext.pk]
    return verdicts


def pending_count(org: Organization) -> int:
    return InstallRequest.objects.filter(org=org, status=RequestStatus.PENDING).count()


def installed_extension_ids(org: Organization, extension_ids: list[str]) -> set[str]:
    return set(
        Installation.objects.filter(org=org, extension_id__in=extension_ids)
        .exclude(status=InstallationStatus.UNINSTALLED)
        .values_list("extension_id", flat=True)
    )


# --- sandbox tenants -----------------------------------------------------------------------------
def sandbox_for_publisher(org: Organization) -> Organization | None:
    """The publisher ``org``'s sandbox tenant; made now if the publisher has extensions but no
    sandbox yet (one created before sandboxes existed and missed by the backfill). None for an
    organisation that publishes nothing, and for a sandbox itself."""
    from apps.orgs.services.sandbox import sandbox_of, sandbox_org_ensure

    if org.sandbox_of_id:
        return None
    sandbox = sandbox_of(org)
    if sandbox is None and Extension.objects.filter(org=org).exists():
        sandbox = sandbox_org_ensure(org=org)
    return sandbox
