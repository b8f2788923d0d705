"""An organisation's controls over what may be installed: allow and deny rules (by extension,
publisher or scope), the install mode (open, or allowlisted only), members' install requests, and
enforcement on what is installed already.

Every rule or mode change re-judges the organisation's live installations in the same transaction
(``installations_enforce``): one the rules now refuse is blocked (nothing of it runs, its
installation tokens stop working), one they allow again is unblocked. ``apps.installs.rules`` is
the one judge, so install, update, runtime and enforcement never disagree."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.audit.services import diff as audit_diff
from apps.core import clock, context
from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.core.ids import is_valid_id
from apps.extensions import scopes as scope_vocab
from apps.extensions.models import Extension
from apps.installs.models import (
    Installation,
    InstallationStatus,
    InstallMode,
    InstallPolicy,
    InstallRequest,
    InstallRule,
    RequestStatus,
    RuleEffect,
    RuleKind,
)
from apps.installs.rules import install_mode, install_refusal
from apps.installs.signals import installation_changed
from apps.orgs.models import Organization, ServiceAccount
from apps.orgs.policy import Principal, authorize

log = logging.getLogger(__name__)

MAX_RULES = 500  # per organisation: far more than any real policy, and bounded for enforcement
MAX_VALUE = 200
MAX_NOTE = 500
MAX_REASON = 1000
# Control characters (tab, newline and carriage return are allowed in free text only) and lone
# surrogates, which PostgreSQL cannot store.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]|[\ud800-\udfff]")
_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\ud800-\udfff]")


def _user(principal: Principal | None):
    return principal.user if principal is not None and principal.kind == "user" else None


def _actor_id(principal: Principal | None) -> str:
    if principal is None:
        return context.current().actor_id or ""
    if principal.kind == "user":
        return str(principal.user.pk) if principal.user is not None else ""
    return principal.service_account.pk if principal.service_account is not None else ""


def _lock_org(org: Organization) -> None:
    """Rule and mode changes of one organisation take turns, so enforcement always judges the
    rules as they are after the change (a concurrent change waits for this one to commit)."""
    Organization.objects.select_for_update().filter(pk=org.pk).first()


def _text(value, param: str, limit: int, *, multiline: bool = False) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{param} must be text.", param=param)
    value = value.strip()
    if len(value) > limit:
        raise ValidationFailed(f"{param} must be at most {limit} characters.", param=param)
    if (_CONTROL_TEXT if multiline else _CONTROL).search(value):
        raise ValidationFailed(f"{param} must not contain control characters.", param=param)
    return value


# --- validating rule values --------------------------------------------------------------------
_PATTERN_COMPLETIONS = ("x", "xx", "x.xx", "xx.xx", "read", "write")


def _family_names() -> list[str]:
    """What a family-wide pattern may end at: ``kv:``, ``http:``, ``http:fetch:``, ``api:`` …"""
    names: set[str] = set()
    for family in scope_vocab.FAMILIES:
        parts = family.prefix.split(":")
        for i in range(1, len(parts) + (1 if family.argument else 0)):
            names.add(":".join(parts[:i]) + ":")
    return sorted(names)


def clean_scope_pattern(value: str) -> str:
    """A scope from the vocabulary (``http:fetch:api.example.com``), or a prefix pattern ending in
    ``*`` at a ``:`` or ``.`` boundary that matches at least one possible scope (``http:fetch:*``,
    ``events:read:order.*``, ``kv:*``, ``api:members:*``)."""
    if "*" not in value:
        try:
            return scope_vocab.parse(value).name
        except scope_vocab.UnknownScope as exc:
            raise ValidationFailed(str(exc), code="rule_value_invalid", param="value") from None
    prefix = value[:-1]
    example = "e.g. http:fetch:* or events:read:order.*"
    if not value.endswith("*") or "*" in prefix:
        raise ValidationFailed(
            f"A scope pattern has one '*', at its end ({example}).", code="rule_value_invalid", param="value"
        )
    if not prefix or prefix[-1] not in ":.":
        raise ValidationFailed(
            f"A scope pattern ends with '*' right after a ':' or '.' ({example}).",
            code="rule_value_invalid",
            param="value",
        )
    if prefix in _family_names():
        return value
    for family in scope_vocab.FAMILIES:
        if family.argument is None or not prefix.startswith(family.prefix + ":"):
            continue
        for completion in _PATTERN_COMPLETIONS:
            try:
                scope_vocab.parse(prefix + completion)
            except scope_vocab.UnknownScope:
                continue
            return value
    raise ValidationFailed(
        f"'{value}' matches no Plaza scope ({example}; see the scope vocabulary in the docs).",
        code="rule_value_invalid",
        param="value",
    )


def _clean_extension_value(value: str) -> str:
    """An extension rule names the extension by id (``ext_…``) or by key (``acme.order-tagger``)."""
    qs = Extension.objects.all()
    ext = qs.filter(pk=value).first() if is_valid_id(value, "ext") else qs.filter(key=value.lower()).first()
    if ext is None:
        raise ValidationFailed(
            "No extension with this id or key (give its id, ext_…, or its key, publisher.name).",
            code="rule_value_invalid",
            param="value",
        )
    return ext.pk


def _clean_publisher_value(value: str) -> str:
    """A publisher rule names the publishing organisation by id (``org_…``) or by slug."""
    qs = Organization.objects.filter(sandbox_of__isnull=True, extensions__isnull=False).distinct()
    org = qs.filter(pk=value).first() if is_valid_id(value, "org") else qs.filter(slug=value.lower()).first()
    if org is None:
        raise ValidationFailed(
            "No publisher with this id or slug (give the publishing organisation's id, org_…, or its slug).",
            code="rule_value_invalid",
            param="value",
        )
    return org.pk


def clean_rule(kind, effect, value) -> tuple[str, str, str]:
    """(kind, effect, value) of a new rule, the value normalised to what the judge compares."""
    if not isinstance(kind, str) or kind not in RuleKind.values:
        raise ValidationFailed(f"The kind is one of {', '.join(RuleKind.values)}.", param="kind")
    if not isinstance(effect, str) or effect not in RuleEffect.values:
        raise ValidationFailed(f"The effect is one of {', '.join(RuleEffect.values)}.", param="effect")
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("Name what the rule is about in value.", code="rule_value_invalid", param="value")
    value = value.strip()
    if len(value) > MAX_VALUE:
        raise ValidationFailed(
            f"value must be at most {MAX_VALUE} characters.", code="rule_value_invalid", param="value"
        )
    if _CONTROL.search(value) or any(ch.isspace() for ch in value):
        raise ValidationFailed(
            "value must not contain spaces or control characters.", code="rule_value_invalid", param="value"
        )
    if kind == RuleKind.SCOPE:
        if effect != RuleEffect.DENY:
            raise ValidationFailed(
                'Scope rules only deny ("never allow http:fetch:*"); allow extensions or publishers instead.',
                code="scope_rules_deny_only",
                param="effect",
            )
        return kind, effect, clean_scope_pattern(value)
    if kind == RuleKind.EXTENSION:
        return kind, effect, _clean_extension_value(value)
    return kind, effect, _clean_publisher_value(value)


# --- rules and mode ----------------------------------------------------------------------------
def install_rule_create(
    *, principal: Principal, org: Organization, kind: str, effect: str, value: str, note: str = ""
) -> InstallRule:
    """Add an allow or deny rule (by extension, publisher or scope; scope rules deny only), then
    block every live installation it now refuses. A rule that exists already is 409
    ``install_rule_exists``."""
    authorize(principal, "install_rule.manage", org)
    kind, effect, value = clean_rule(kind, effect, value)
    note = _text(note, "note", MAX_NOTE)
    with transaction.atomic():
        _lock_org(org)
        if InstallRule.objects.filter(org=org, kind=kind, effect=effect, value=value).exists():
            raise Conflict("This rule exists already.", code="install_rule_exists", param="value")
        if InstallRule.objects.filter(org=org).count() >= MAX_RULES:
            raise Conflict(f"An organisation has at most {MAX_RULES} rules.", code="too_many_install_rules")
        try:
            with transaction.atomic():
                rule = InstallRule.objects.create(
                    org=org, kind=kind, effect=effect, value=value, note=note, created_by=_user(principal)
                )
        except IntegrityError:
            raise Conflict("This rule exists already.", code="install_rule_exists", param="value") from None
        audit_record(
            action="install_rule.created",
            org_id=org.pk,
            target=rule,
            changes={"kind": kind, "effect": effect, "value": value, "note": note},
        )
        installations_enforce(org=org, principal=principal)
    return rule


def install_rule_delete(*, principal: Principal, rule: InstallRule) -> None:
    """Remove a rule, then unblock the live installations nothing refuses any more (and block
    the ones an allowlist-only organisation no longer allows)."""
    org = rule.org
    authorize(principal, "install_rule.manage", org)
    with transaction.atomic():
        _lock_org(org)
        audit_record(
            action="install_rule.deleted",
            org_id=org.pk,
            target=rule,
            changes={"kind": rule.kind, "effect": rule.effect, "value": rule.value},
        )
        InstallRule.objects.filter(pk=rule.pk).delete()
        installations_enforce(org=org, principal=principal)


def install_policy_of(org: Organization) -> InstallPolicy:
    """The organisation's install settings (the defaults, unsaved, until an admin changes them)."""
    return InstallPolicy.objects.filter(org=org).first() or InstallPolicy(org=org)


def install_policy_update(
    *, principal: Principal, org: Organization, mode: str | None = None, requests_enabled: bool | None = None
) -> InstallPolicy:
    """Switch between open and allowlist-only mode and turn members' install requests on or off;
    a mode change re-judges the live installations at once."""
    authorize(principal, "install_rule.manage", org)
    if mode is not None and (not isinstance(mode, str) or mode not in InstallMode.values):
        raise ValidationFailed(f"The mode is one of {', '.join(InstallMode.values)}.", param="mode")
    if requests_enabled is not None and not isinstance(requests_enabled, bool):
        raise ValidationFailed("requests_enabled is true or false.", param="requests_enabled")
    with transaction.atomic():
        _lock_org(org)
        policy, _ = InstallPolicy.objects.select_for_update().get_or_create(org=org)
        before = {"mode": policy.mode, "requests_enabled": policy.requests_enabled}
        if mode is not None:
            policy.mode = mode
        if requests_enabled is not None:
            policy.requests_enabled = requests_enabled
        after = {"mode": policy.mode, "requests_enabled": policy.requests_enabled}
        changes = audit_diff(before, after)
        if not changes:
            return policy
        policy.updated_at = clock.now()
        policy.save(update_fields=["mode", "requests_enabled", "updated_at"])
        audit_record(action="install_policy.updated", org_id=org.pk, target_type="installpolicy",
                     target_id=org.pk, target_label=f"install policy of {org.name}"[:254], changes=changes)  # fmt: skip
        if "mode" in changes:
            installations_enforce(org=org, principal=principal)
    return policy


# --- enforcement -------------------------------------------------------------------------------
def _set_accounts(org: Organization, installation: Installation, *, disabled: bool) -> int:
    accounts = ServiceAccount.objects.filter(org=org, installation_id=installation.pk)
    if disabled:
        return accounts.filter(disabled_at__isnull=True).update(disabled_at=clock.now())
    return accounts.filter(disabled_at__isnull=False).update(disabled_at=None)


def installations_enforce(*, org: Organization, principal: Principal | None = None) -> list[Installation]:
    """Judge every live installation of ``org`` against its rules as they are now: block the ones
    refused (status ``blocked`` with the refusal as reason, their installation service account
    disabled so its tokens stop working) and unblock the ones allowed again (status ``active``,
    account re-enabled). Each change is audited and announced (``installation_changed``, actions
    ``blocked``/``unblocked``) after commit. Returns the installations that changed."""
    changed: list[Installation] = []
    actor = _actor_id(principal)
    with transaction.atomic():
        rules = list(InstallRule.objects.filter(org=org))
        mode = install_mode(org)
        live = (
            Installation.objects.select_for_update(of=("self",))
            .filter(org=org, status__in=(InstallationStatus.ACTIVE, InstallationStatus.BLOCKED))
            .select_related("extension")
            .order_by("pk")
        )
        for installation in live:
            refusal = install_refusal(org, installation.extension, installation.granted_scopes, rules=rules, mode=mode)
            if refusal is not None and installation.status == InstallationStatus.ACTIVE:
                installation.status = InstallationStatus.BLOCKED
                installation.status_reason = refusal.message[:500]
                action = "blocked"
            elif refusal is not None and installation.status_reason != refusal.message[:500]:
                # Still blocked, now by another rule: keep the reason shown to admins true.
                installation.status_reason = refusal.message[:500]
                installation.updated_at = clock.now()
                installation.save(update_fields=["status_reason", "updated_at"])
                continue
            elif refusal is None and installation.status == InstallationStatus.BLOCKED:
                installation.status = InstallationStatus.ACTIVE
                installation.status_reason = ""
                action = "unblocked"
            else:
                continue
            installation.updated_at = clock.now()
            installation.save(update_fields=["status", "status_reason", "updated_at"])
            accounts = _set_accounts(org, installation, disabled=action == "blocked")
            audit_record(
                action=f"installation.{action}",
                org_id=org.pk,
                target=installation,
                changes={
                    "extension": installation.extension.key,
                    "reason": refusal.message if refusal else "",
                    "code": refusal.code if refusal else "",
                    "rule": refusal.rule_id if refusal else "",
                    "service_accounts": accounts,
                },
            )
            changed.append(installation)
        for installation in changed:
            _announce_later(
                installation, "blocked" if installation.status == InstallationStatus.BLOCKED else "unblocked", actor
            )
    return changed


def _announce_later(installation: Installation, action: str, actor: str) -> None:
    transaction.on_commit(
        lambda: installation_changed.send_robust(
            sender=Installation, installation=installation, action=action, actor_id=actor
        )
    )


# --- install requests --------------------------------------------------------------------------
def install_request_create(
    *, principal: Principal, org: Organization, extension: Extension, reason: str = ""
) -> InstallRequest:
    """A member asks the organisation's admins to install ``extension``. Refused (409) while
    requests are turned off (``requests_disabled``), when it is installed already
    (``already_installed``) or when this member's request for it is pending (``request_pending``).
    Only people make requests (``users_only``)."""
    authorize(principal, "install_request.create", org)
    if principal.kind != "user" or principal.user is None:
        raise PermissionDenied("Only people ask for extensions; a token cannot.", code="users_only")
    if extension.deleted_at is not None:
        raise NotFound("No such extension.", param="extension_id")
    reason = _text(reason, "reason", MAX_REASON, multiline=True)
    with transaction.atomic():
        if not install_policy_of(org).requests_enabled:
            raise Conflict(
                "Your organisation's admins have turned install requests off; ask them directly.",
                code="requests_disabled",
            )
        live = Installation.objects.filter(org=org, extension=extension).exclude(status=InstallationStatus.UNINSTALLED)
        if live.exists():
            raise Conflict(f"{extension.key} is installed in this organisation already.", code="already_installed")
        pending = InstallRequest.objects.filter(
            org=org, extension=extension, requested_by=principal.user, status=RequestStatus.PENDING
        )
        if pending.exists():
            raise Conflict(f"You have asked for {extension.key} already; wait for an admin.", code="request_pending")
        try:
            with transaction.atomic():
                request = InstallRequest.objects.create(
                    org=org, extension=extension, requested_by=principal.user, reason=reason
                )
        except IntegrityError:
            raise Conflict(
                f"You have asked for {extension.key} already; wait for an admin.", code="request_pending"
            ) from None
        audit_record(
            action="install_request.created",
            org_id=org.pk,
            target=request,
            changes={"extension": extension.key, "reason": reason},
        )
    return request


def _locked_pending(request: InstallRequest) -> InstallRequest:
    locked = InstallRequest.objects.select_for_update(of=("self",)).select_related("extension", "requested_by")
    locked = locked.get(pk=request.pk)
    if locked.status != RequestStatus.PENDING:
        raise Conflict(f"This request is {locked.status} already.", code="request_not_pending")
    return locked


def install_request_withdraw(*, principal: Principal, request: InstallRequest) -> InstallRequest:
    """The member who asked takes a pending request back."""
    authorize(principal, "install_request.create", request.org)
    if principal.kind != "user" or principal.user is None or principal.user.pk != request.requested_by_id:
        raise PermissionDenied("Only the person who asked can withdraw a request.", code="not_requester")
    with transaction.atomic():
        locked = _locked_pending(request)
        locked.status, locked.decided_at, locked.decided_by = RequestStatus.WITHDRAWN, clock.now(), principal.user
        locked.save(update_fields=["status", "decided_at", "decided_by"])
        audit_record(
            action="install_request.withdrawn",
            org_id=locked.org_id,
            target=locked,
            changes={"extension": locked.extension.key},
        )
    return locked


def install_request_decide(
    *, principal: Principal, request: InstallRequest, approve: bool, note: str = ""
) -> InstallRequest:
    """An admin approves or denies a pending request, with a note the requester reads; the
    requester is e-mailed after commit. Approving does not install: the admin installs from the
    requests page (consent is theirs to give)."""
    authorize(principal, "install_request.decide", request.org)
    if not isinstance(approve, bool):
        raise ValidationFailed("The decision is approve or deny.", param="decision")
    note = _text(note, "note", MAX_REASON, multiline=True)
    with transaction.atomic():
        locked = _locked_pending(request)
        locked.status = RequestStatus.APPROVED if approve else RequestStatus.DENIED
        locked.decided_at, locked.decided_by, locked.decision_note = clock.now(), _user(principal), note
        locked.save(update_fields=["status", "decided_at", "decided_by", "decision_note"])
        audit_record(
            action=f"install_request.{locked.status}",
            org_id=locked.org_id,
            target=locked,
            changes={"extension": locked.extension.key, "requested_by": locked.requested_by.email, "note": note},
        )
        request_id = locked.pk
        transaction.on_commit(lambda: _tell_requester(request_id), robust=True)
    return locked


def _tell_requester(request_id: str) -> None:
    """After commit: e-mail the member who asked what the admins decided (through the queued
    e-mail backend, so a slow mail server never holds the request up)."""
    request = (
        InstallRequest.objects.select_related("org", "extension", "requested_by", "decided_by")
        .filter(pk=request_id)
        .first()
    )
    if request is None or not request.requested_by.email:
        return
    words = "approved" if request.status == RequestStatus.APPROVED else "denied"
    link = f"{settings.PLAZA_BASE_URL.rstrip('/')}/orgs/{request.org_id}/console/install-requests/"
    body = (
        f"Your request to install {request.extension.name} ({request.extension.key}) in {request.org.name} "
        f"was {words}"
        + (f" by {request.decided_by.email}" if request.decided_by else "")
        + ".\n\n"
        + (f"Their note: {request.decision_note}\n\n" if request.decision_note else "")
        + (
            "An admin will install it; you will find it among the organisation's extensions.\n\n"
            if request.status == RequestStatus.APPROVED
            else ""
        )
        + f"Your requests: {link}\n"
    )
    send_mail(
        f"[Plaza] Your request for {request.extension.name} was {words}", body, None, [request.requested_by.email]
    )


def install_requests_fulfil(*, installation) -> int:
    """An extension was installed: the pending requests for it in that organisation are approved
    (the installation is the answer), audited, and their requesters e-mailed. Returns how many."""
    with transaction.atomic():
        pending = list(
            InstallRequest.objects.select_for_update()
            .filter(org_id=installation.org_id, extension_id=installation.extension_id, status=RequestStatus.PENDING)
            .select_related("extension", "requested_by")
        )
        now = clock.now()
        for request in pending:
            request.status, request.decided_at = RequestStatus.APPROVED, now
            request.decided_by_id, request.decision_note = installation.installed_by_id, "Installed."
            request.save(update_fields=["status", "decided_at", "decided_by", "decision_note"])
            audit_record(
                action="install_request.approved",
                org_id=request.org_id,
                target=request,
                changes={"extension": request.extension.key, "installation": installation.pk},
            )
            request_id = request.pk
            transaction.on_commit(lambda request_id=request_id: _tell_requester(request_id), robust=True)
    return len(pending)
