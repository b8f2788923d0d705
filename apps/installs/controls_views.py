"""The organisation's install controls in the console (HTMX pages): the extension rules page (rules,
mode, what each rule blocks), the install requests page (admins decide; members follow and
withdraw their own) and a member's request form. Thin: parse the form, call one service, render.

Forms post to the page itself and work without JavaScript (post, redirect, get); an htmx post
gets back only the page's ``controls`` partial, with the outcome inside it."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.installs import controls_selectors as selectors
from apps.installs.models import InstallMode, RequestStatus, RuleEffect, RuleKind
from apps.installs.services import controls as services
from apps.orgs.policy import can
from apps.orgs.portal import form_error, org_context, org_page, page_of

RULE_FIELDS = ("kind", "effect", "value", "note")


def _clean(request, name: str, limit: int = 200) -> str:
    # PostgreSQL refuses NUL in a query parameter (a 500)
    return request.GET.get(name, "").replace("\x00", "").strip()[:limit]


def _respond(request, template: str, ctx: dict, *, status: int = 200):
    """The whole page (with the error's status), or for htmx only its ``controls`` partial —
    always a 200 there, with the error inside: htmx does not swap 4xx responses in."""
    if request.htmx:
        return render(request, f"{template}#controls", ctx)
    return render(request, template, ctx, status=status)


# --- extension rules ----------------------------------------------------------------------------
def _rules_context(request, org, principal, **extra) -> dict:
    rows, next_page = page_of(request, selectors.rules_of(org), newest_first=False)
    installations = selectors.live_installations(org)
    blocks = selectors.blocks_by_rule(rows, installations)
    targets = selectors.rule_targets(rows)
    for rule in rows:
        rule.target = targets.get(rule.pk, "")
        rule.blocked = blocks.get(rule.pk, [])
    policy = services.install_policy_of(org)
    blocked = [j for j in selectors.judge_installations(org, installations) if j.refusal is not None]
    preview = []
    if policy.mode == InstallMode.OPEN and installations:
        # What switching to allowlist-only would block (beyond what is blocked already).
        judged = selectors.judge_installations(org, installations, mode=InstallMode.ALLOWLIST)
        preview = [j for j in judged if j.refusal is not None and j.refusal.code == "not_allowlisted"]
    return org_context(
        request,
        org,
        principal,
        rules=rows,
        next_page=next_page,
        policy=policy,
        modes=InstallMode.choices,
        kinds=RuleKind.choices,
        effects=RuleEffect.choices,
        blocked=blocked,
        installations_count=len(installations),
        allowlist_preview=preview,
        **extra,
    )


def _rules_post(request, org, principal) -> str:
    """Run the posted operation; the sentence telling what happened."""
    op = request.POST.get("op", "")
    if op == "add":
        values = {key: request.POST.get(key, "") for key in RULE_FIELDS}
        rule = services.install_rule_create(principal=principal, org=org, **values)
        changed = [i for i in selectors.live_installations(org) if selectors.rule_refuses(rule, i)]
        return f"Rule added: {rule.effect} {rule.kind} {rule.value}." + (
            f" It blocks {len(changed)} installed extension{'s' if len(changed) != 1 else ''}." if changed else ""
        )
    if op == "remove":
        rule = selectors.get_install_rule_for_principal(
            principal, org, request.POST.get("rule", ""), "install_rule.manage"
        )
        services.install_rule_delete(principal=principal, rule=rule)
        return f"Rule removed: {rule.effect} {rule.kind} {rule.value}."
    if op == "policy":
        mode = request.POST.get("mode") or None
        requests_enabled = request.POST.get("requests_enabled") == "on"
        policy = services.install_policy_update(
            principal=principal, org=org, mode=mode, requests_enabled=requests_enabled
        )
        return (
            f"Saved: {policy.get_mode_display().lower()}; member requests {'on' if policy.requests_enabled else 'off'}."
        )
    raise ValidationFailed("Unknown action.")


@org_page("install_rule.view")
def install_rules(request, org, principal):
    """The organisation's allow/deny rules with what each one blocks now, the install mode (with
    what a switch to allowlist-only would block), and the blocked installations."""
    error, status, values, notice = None, 200, {}, ""
    if request.method == "POST":
        values = {key: request.POST.get(key, "")[:300] for key in RULE_FIELDS}
        try:
            notice = _rules_post(request, org, principal)
        except (ValidationFailed, Conflict, PermissionDenied) as exc:
            error, status = form_error(exc, RULE_FIELDS), exc.status
            error["op"] = request.POST.get("op", "")
        except NotFound as exc:  # a rule removed meanwhile (or another organisation's)
            error, status = form_error(exc), 404
        else:
            if not request.htmx:
                messages.success(request, notice)
                return redirect("install_rules", org_id=org.pk)
            values = {}
    ctx = _rules_context(request, org, principal, error=error, values=values, notice=notice)
    return _respond(request, "installs/controls/rules.html", ctx, status=status)


# --- install requests ---------------------------------------------------------------------------
def _requests_context(request, org, principal, **extra) -> dict:
    deciding = can(principal, "install_request.decide", org)
    filters = {"status": _clean(request, "status", 20), "mine": _clean(request, "mine", 5)}
    if "status" not in request.GET and deciding:
        filters["status"] = RequestStatus.PENDING
    if filters["status"] not in RequestStatus.values:
        filters["status"] = ""
    mine = filters["mine"] in ("1", "on", "true")
    qs = selectors.visible_install_requests(principal, org, status=filters["status"], mine=mine)
    rows, next_page = page_of(request, qs)
    verdicts = selectors.request_verdicts(org, [r for r in rows if r.status == RequestStatus.PENDING])
    installed = selectors.installed_extension_ids(org, [r.extension_id for r in rows])
    user_id = principal.user.pk if principal.kind == "user" and principal.user is not None else None
    for item in rows:
        item.refusal = verdicts.get(item.pk)
        item.installed = item.extension_id in installed
        item.own = item.requested_by_id == user_id
    return org_context(
        request,
        org,
        principal,
        requests=rows,
        next_page=next_page,
        filters=filters,
        mine=mine,
        deciding=deciding,
        statuses=RequestStatus.choices,
        can_install=can(principal, "installation.create", org),
        policy=services.install_policy_of(org),
        **extra,
    )


def _requests_post(request, org, principal) -> str:
    op = request.POST.get("op", "")
    request_id = request.POST.get("request", "")
    if op in ("approve", "deny"):
        item = selectors.get_install_request_for_principal(principal, org, request_id, "install_request.decide")
        decided = services.install_request_decide(
            principal=principal, request=item, approve=op == "approve", note=request.POST.get("note", "")
        )
        return f"{decided.extension.name}: request {decided.status}; {decided.requested_by.email} is told by e-mail."
    if op == "withdraw":
        item = selectors.get_install_request_for_principal(
            principal, org, request_id, "install_request.create", own=True
        )
        services.install_request_withdraw(principal=principal, request=item)
        return f"Your request for {item.extension.name} is withdrawn."
    raise ValidationFailed("Unknown action.")


@org_page("install_request.view")
def install_requests(request, org, principal):
    """Admins: the members' requests (pending first by default) to approve or deny with a note,
    and an "Install now" link to the consent page. Everyone else: their own requests, which they
    may withdraw while pending."""
    error, status, notice = None, 200, ""
    if request.method == "POST":
        try:
            notice = _requests_post(request, org, principal)
        except (ValidationFailed, Conflict, PermissionDenied) as exc:
            error, status = form_error(exc, ("note",)), exc.status
            error["request"] = request.POST.get("request", "")[:40]
        except NotFound as exc:
            error, status = form_error(exc), 404
        else:
            if not request.htmx:
                messages.success(request, notice)
                return redirect(request.get_full_path())
    ctx = _requests_context(request, org, principal, error=error, notice=notice)
    return _respond(request, "installs/controls/requests.html", ctx, status=status)


@org_page("install_request.create")
def install_request_new(request, org, principal):
    """A member's request for one extension (``?extension=<id>``, linked from its storefront
    listing): why they need it, for the admins."""
    extension_id = (request.GET.get("extension") or request.POST.get("extension") or "").replace("\x00", "")[:40]
    extension = selectors.requestable_extension(extension_id=extension_id or "-")
    error, status, reason = None, 200, ""
    if request.method == "POST":
        reason = request.POST.get("reason", "")[:2000]
        try:
            services.install_request_create(principal=principal, org=org, extension=extension, reason=reason)
        except (ValidationFailed, Conflict, PermissionDenied) as exc:
            error, status = form_error(exc, ("reason",)), exc.status
        else:
            messages.success(request, f"Asked the admins of {org.name} for {extension.name}. You will get an e-mail.")
            return redirect("install_requests", org_id=org.pk)
    installed = extension.pk in selectors.installed_extension_ids(org, [extension.pk])
    pending = (
        principal.kind == "user"
        and selectors.install_requests_of(org, status=RequestStatus.PENDING, requested_by=principal.user)
        .filter(extension=extension)
        .exists()
    )
    ctx = org_context(
        request,
        org,
        principal,
        extension=extension,
        installed=installed,
        pending=pending,
        policy=services.install_policy_of(org),
        can_install=can(principal, "installation.create", org),
        error=error,
        reason=reason,
    )
    return render(request, "installs/controls/request_new.html", ctx, status=status)
