"""The organisation's installations: the list, one installation (update settings, settings form,
update with re-consent, rollback, history, uninstall) and the cleanup report an uninstall leaves."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.extensions.models import Channel
from apps.installs import selectors
from apps.installs import services as install_services
from apps.installs.config import config_schema
from apps.installs.config_form import ConfigForm
from apps.installs.models import InstallationStatus, UpdatePolicy
from apps.installs.views._common import (
    REFUSAL_CODES,
    _clean,
    _config_errors,
    _done,
    _granted_from,
    _rules_url,
    _storefront_url,
)
from apps.orgs.policy import check
from apps.orgs.portal import form_error, org_context, org_page, page_of

STATUS_FILTERS = (("", "Any"), (InstallationStatus.ACTIVE, "Active"), (InstallationStatus.BLOCKED, "Blocked"))


def scope_change_lines(changes) -> list[dict]:
    """An update's scope diff in plain words: added, escalated (what it replaces) and removed."""
    lines = []
    for change in changes:
        describe = {line["scope"]: line for line in selectors.scope_lines([change.scope, change.replaces or ""])}
        line = describe.get(change.scope, {"describe": change.scope, "reaches": ""})
        replaced = describe.get(change.replaces or "", {}).get("describe", "")
        lines.append(
            {
                "scope": change.scope,
                "change": change.change,
                "describe": line["describe"],
                "reaches": line["reaches"],
                "replaces": change.replaces or "",
                "replaces_describe": replaced,
            }
        )
    order = {"escalation": 0, "added": 1, "removed": 2}
    return sorted(lines, key=lambda line: (order.get(line["change"], 3), line["scope"]))


# --- the organisation's installations ---------------------------------------------------------------
@org_page("installation.view")
def installations(request, org, principal):
    """The organisation's installed extensions, filtered by status, paged; htmx requests get only
    the ``rows`` partial. With none yet, the way to the storefront."""
    status = _clean(request.GET.get("status", ""), 20)
    error = None
    if status and status not in dict(STATUS_FILTERS):
        error = form_error(ValidationFailed("Choose a status from the list.", param="status"), ("status",))
        status = ""
    qs = selectors.installation_summaries_of(org).select_related("extension__org")
    if status:
        qs = qs.filter(status=status)
    rows, next_page = page_of(request, qs)
    ctx = org_context(
        request,
        org,
        principal,
        installations=rows,
        next_page=next_page,
        status=status,
        statuses=STATUS_FILTERS,
        error=error,
        storefront_url=_storefront_url(),
        rules_url=_rules_url(principal, org),
    )
    template = "installs/installations.html#rows" if request.htmx else "installs/installations.html"
    return render(request, template, ctx, status=400 if error else 200)


# --- one installation -------------------------------------------------------------------------------
DETAIL_OPS = {
    "settings": "installation.update",
    "configure": "installation.update",
    "update": "installation.update",
    "rollback": "installation.update",
    "uninstall": "installation.delete",
}


@org_page("installation.view")
def installation_detail(request, org, principal, installation_id: str):
    """One installation: version, channel and update policy, the scopes granted, the settings form,
    a pending update with its scope diff (re-consent when it adds or escalates), rollback to an
    earlier version, the history, and uninstall (after a confirmation listing what goes)."""
    installation = selectors.get_installation_for_principal(principal, org, installation_id, "installation.view")
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
    if installation.status == InstallationStatus.UNINSTALLED:
        return redirect("installation_cleanup", org_id=org.pk, installation_id=installation.pk)
    here = reverse("installation_detail", kwargs={"org_id": org.pk, "installation_id": installation.pk})
    schema = config_schema(installation.version)
    public = selectors.config_public(installation)
    confirm = request.GET.get("confirm", "") == "uninstall" and check(principal, "installation.delete", org) is None
    view = {"status": 200, "errors": {}, "section": "", "confirm": confirm}
    form = None
    if request.method == "POST":
        op = request.POST.get("op", "")
        # Members may look but not change: the 403 page (org_page renders it) before anything else.
        action = DETAIL_OPS.get(op, "installation.update")
        installation = selectors.get_installation_for_principal(principal, org, installation_id, action)
        if op not in DETAIL_OPS:
            view.update(status=400, section="top")
            view["errors"]["top"] = "Unknown action."
        else:
            view["section"] = op
            result = _detail_post(request, principal, installation, op, schema, public, view)
            if result is not None:
                return result
            if request.htmx:  # the one-click rollback: say what went wrong on the page it reloads
                for message in view["errors"].values():
                    messages.error(request, message)
                return HttpResponseClientRedirect(here)
            form = view.pop("form", None)
            installation = selectors.get_installation_for_principal(
                principal, org, installation_id, "installation.view"
            )
            if installation.status == InstallationStatus.UNINSTALLED:
                return _done(request, reverse("installation_cleanup", args=[org.pk, installation.pk]))
            public = selectors.config_public(installation)
            schema = config_schema(installation.version)
    if form is None:
        form = ConfigForm(schema, values=public, editing=True)
    offer = selectors.update_offer(installation)
    history, next_page = page_of(request, selectors.history_of(installation), size=20)
    ctx = org_context(
        request,
        org,
        principal,
        installation=installation,
        extension=installation.extension,
        here=here,
        granted=selectors.scope_lines(installation.granted_scopes),
        unused=sorted(set(installation.granted_scopes or []) - set(installation.version.scopes or [])),
        config_form=form,
        has_config=schema is not None,
        offer=offer,
        offer_lines=scope_change_lines(offer.changes) if offer else [],
        offer_scopes=sorted(set(offer.version.scopes or [])) if offer else [],
        candidates=selectors.rollback_candidates(installation),
        history=history,
        next_page=next_page,
        channels=Channel.choices,
        update_policies=UpdatePolicy.choices,
        rules_url=_rules_url(principal, org),
        blocked=installation.status == InstallationStatus.BLOCKED,
        removal=_removal_list(installation, public),
        **view,
    )
    if request.htmx and request.method == "GET" and view["confirm"]:
        return render(request, "installs/installation.html#uninstall", ctx)
    return render(request, "installs/installation.html", ctx, status=view["status"])


def _detail_post(request, principal, installation, op: str, schema, public, view: dict):
    """Carry out one form of the installation page; a response when done, None to show the page
    again with ``view``'s errors (and status)."""
    org = installation.org
    here = reverse("installation_detail", kwargs={"org_id": org.pk, "installation_id": installation.pk})
    post = request.POST
    errors = view["errors"]
    name = installation.extension.name
    try:
        if op == "settings":
            channel = _clean(post.get("channel", ""), 20)
            policy = _clean(post.get("update_policy", ""), 10)
            install_services.installation_settings_update(
                principal=principal, installation=installation, channel=channel, update_policy=policy
            )
            messages.success(request, f"Update settings of {name} saved.")
            return _done(request, here)
        if op == "configure":
            form = ConfigForm(schema, values=public, data=post, editing=True)
            view["form"] = form
            if not form.is_valid():
                view["status"] = 400
                return None
            try:
                install_services.installation_configure(
                    principal=principal, installation=installation, config=form.cleaned
                )
            except ValidationFailed as exc:
                if exc.code != "config_invalid":
                    raise
                _config_errors(form, exc)
                view["status"] = 400
                return None
            messages.success(request, f"Settings of {name} saved.")
            return _done(request, here)
        if op == "update":
            offer = selectors.update_offer(installation)
            if offer is None or post.get("version") != offer.version.pk:
                errors["update"] = (
                    f"The update on offer changed: {name} {offer.version.version} is on offer now. Review it below."
                    if offer
                    else f"{name} is already up to date."
                )
                view["status"] = 409
                return None
            granted = None
            if offer.needs_consent:
                if post.get("consent") != "yes":
                    errors["consent"] = f"Tick the box to allow {name} the new scopes, or keep the current version."
                    view["status"] = 400
                    return None
                granted = _granted_from(post)
            updated = install_services.installation_update(
                principal=principal, installation=installation, version=offer.version, granted_scopes=granted
            )
            messages.success(request, f"{name} updated to {updated.version.version}.")
            return _done(request, here)
        if op == "rollback":
            candidates = {v.pk: v for v in selectors.rollback_candidates(installation)}
            target = candidates.get(post.get("version", ""))
            if target is None:
                errors["rollback"] = "That version is not one this installation can roll back to."
                view["status"] = 409
                return None
            if post.get("confirmed") != "yes":
                view["confirm_rollback"] = target
                return None
            install_services.installation_rollback(principal=principal, installation=installation, version=target)
            messages.success(
                request,
                f"{name} rolled back to {target.version} and pinned to it: switch its update policy back to "
                "automatic to follow the channel again.",
            )
            return _done(request, here)
        # uninstall
        if post.get("confirmed") != "yes":
            view["confirm"] = True
            return None
        report = install_services.installation_uninstall(principal=principal, installation=installation)
        messages.success(
            request,
            f"{name} was uninstalled from {org.name}."
            + (" Nothing of it remains." if report.verified else " Some of its data could not be removed: see below."),
        )
        return _done(request, reverse("installation_cleanup", args=[org.pk, installation.pk]))
    except PermissionDenied as exc:
        if exc.code not in REFUSAL_CODES:
            raise
        errors[op] = exc.message
        view["status"] = 403
        view["refusal_code"] = exc.code
    except Conflict as exc:
        errors["consent" if exc.code == "consent_required" else op] = exc.message
        view["status"] = 409
    except ValidationFailed as exc:
        field = exc.param if exc.param in ("channel", "update_policy") else op
        errors[field] = exc.message
        view["status"] = 400
    return None


def _removal_list(installation, public: dict) -> list[str]:
    """What an uninstall removes, in the words of the confirmation step."""
    name = installation.extension.name
    granted = len(installation.granted_scopes or [])
    has_secrets = any(isinstance(v, dict) and v.get("set") is True for v in public.values())
    items = [
        f"{name}'s access to {installation.org.name}: the {granted} scope{'' if granted == 1 else 's'} granted to it",
        "its settings" + (" and stored secrets" if has_secrets else ""),
        "its API access: the managed service account and every token issued to it",
        "the data it stored for you (key-value storage)",
        "its event subscriptions and deliveries still waiting",
    ]
    if installation.pending_version_id:
        items.append(f"the update to {installation.pending_version.version} waiting for your consent")
    return items


# --- the cleanup report -----------------------------------------------------------------------------
@org_page("installation.view")
def installation_cleanup(request, org, principal, installation_id: str):
    """The proof an uninstall left: per cleaner, what it removed and what it still found, and
    whether everything was verified gone."""
    installation = selectors.get_installation_for_principal(principal, org, installation_id, "installation.view")
    if request.method not in ("GET", "HEAD"):  # after the lookup: another org's id is a 404 whatever the method
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if installation.status != InstallationStatus.UNINSTALLED:
        return redirect("installation_detail", org_id=org.pk, installation_id=installation.pk)
    report = selectors.cleanup_report_of(installation)
    items = [_report_item(item) for item in (report.items if report and isinstance(report.items, list) else [])]
    ctx = org_context(
        request,
        org,
        principal,
        installation=installation,
        extension=installation.extension,
        report=report,
        items=items,
        totals=_totals(items),
        storefront_url=_storefront_url(),
    )
    return render(request, "installs/cleanup.html", ctx)


def _counts(value) -> list[tuple[str, int]]:
    if not isinstance(value, dict):
        return []
    counts = [(str(k).replace("_", " "), n) for k, n in value.items() if isinstance(n, int) and not isinstance(n, bool)]
    return sorted(counts)


def _report_item(item) -> dict:
    item = item if isinstance(item, dict) else {}
    remaining = _counts(item.get("remaining"))
    error = str(item.get("error") or "")
    left = [(kind, n) for kind, n in remaining if n]
    return {
        "label": str(item.get("label") or item.get("cleaner") or "cleaner"),
        "cleaner": str(item.get("cleaner") or ""),
        "removed": _counts(item.get("removed")),
        "remaining": remaining,
        "left": left,
        "error": error,
        "verified": not error and not left,
    }


def _totals(items: list[dict]) -> dict:
    removed = sum(n for item in items for _, n in item["removed"])
    remaining = sum(n for item in items for _, n in item["left"])
    return {"removed": removed, "remaining": remaining, "failed": sum(1 for item in items if not item["verified"])}
