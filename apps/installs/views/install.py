"""Installing: choosing the organisation (``install_start``) and the consent screen with the
settings form (``install_consent``), whose POST installs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.extensions.models import Channel
from apps.installs import selectors
from apps.installs import services as install_services
from apps.installs.config import config_schema, config_validate
from apps.installs.config_form import ConfigForm
from apps.installs.models import UpdatePolicy
from apps.installs.rules import install_refusal
from apps.installs.views._common import (
    REFUSAL_CODES,
    _channel_of,
    _clean,
    _config_errors,
    _granted_from,
    _request_url,
    _rules_url,
    _storefront_url,
    _visible_extension,
)
from apps.orgs.policy import check
from apps.orgs.portal import org_context, org_page
from apps.orgs.selectors import nav_memberships_for_user, principal_from_request


# --- choosing where to install ----------------------------------------------------------------------
@login_required
def install_start(request, extension_id: str):
    """``/install/<extension>/?org=&channel=``: the organisations the signed-in person may install
    ``extension`` into (and their publishers' sandbox tenants); choosing one goes on to its consent
    screen. Where their role does not allow installing, they may ask an admin instead."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    principal = principal_from_request(request)
    try:
        extension = _visible_extension(principal, extension_id)
    except NotFound as exc:
        return render(request, "errors/404.html", {"message": exc.message}, status=404)
    channel = _clean(request.GET.get("channel", ""), 20)
    channel = channel if channel in Channel.values else ""
    choices = []
    memberships = list(nav_memberships_for_user(request.user))
    installed_in = selectors.live_installations_by_org((m.org.pk for m in memberships), extension)
    for membership in memberships:
        org = membership.org
        principal.remember_role(org.pk, membership.role)
        try:
            reason = check(principal, "installation.create", org)
        except NotFound:
            continue
        installed = installed_in.get(org.pk)
        choices.append(
            {
                "org": org,
                "sandbox": bool(getattr(membership, "is_sandbox", False) or org.sandbox_of_id),
                "can_install": reason is None,
                "reason": reason,
                "installed": installed,
                "request_url": _request_url(org, extension) if reason == "role" and installed is None else None,
                "consent_url": reverse("install_consent", kwargs={"org_id": org.pk, "extension_id": extension.pk})
                + (f"?{urlencode({'channel': channel})}" if channel else ""),
            }
        )
    chosen = _clean(request.GET.get("org", ""), 40)
    error = ""
    if chosen:
        match = next((c for c in choices if c["org"].pk == chosen), None)
        if match is not None and match["installed"] is not None:
            return redirect("installation_detail", org_id=chosen, installation_id=match["installed"].pk)
        if match is not None and match["can_install"]:
            return redirect(match["consent_url"])
        error = (
            "Your role in that organisation does not allow installing extensions."
            if match is not None
            else "Choose one of your organisations."
        )
    ctx = {
        "extension": extension,
        "publisher": extension.org,
        "choices": choices,
        "channel": channel,
        "error": error,
        "storefront_url": _storefront_url(),
    }
    return render(request, "installs/start.html", ctx, status=400 if error else 200)


# --- the consent screen -----------------------------------------------------------------------------
def _consent_state(principal, org, extension, version, reason: str | None) -> dict | None:
    """What stops the install before the form is filled in: the person's role, an existing
    installation, no installable version, an organisation rule. None when nothing does."""
    if reason is not None:
        return {"kind": "forbidden", "status": 403, "code": reason, "message": _forbidden_message(reason),
                "request_url": _request_url(org, extension) if reason == "role" else None}  # fmt: skip
    existing = selectors.installations_of(org).filter(extension=extension).first()
    if existing is not None:
        return _installed_state(org, extension, existing)
    if version is None:
        return {
            "kind": "unavailable",
            "status": 409,
            "code": "version_not_installable",
            "message": f"No channel of {extension.name} serves a version {org.name} can install: only certified "
            "versions can be installed"
            + ("." if org.sandbox_of_id else " (your publisher's sandbox tenant may install uncertified ones)."),
        }
    refusal = install_refusal(org, extension, version.scopes or [])
    if refusal is not None:
        return _refused(principal, org, refusal.code, refusal.message)
    return None


def _refused(principal, org, code: str, message: str) -> dict:
    return {"kind": "refused", "status": 403, "code": code, "message": message, "rules_url": _rules_url(principal, org)}


FORBIDDEN = {
    "role": "Your role in this organisation does not allow installing extensions. An admin can install it for you.",
    "ip_not_allowed": "Your organisation's IP allowlist does not include this address.",
    "mfa_required": "This organisation requires two-factor authentication. Enrol a device to continue.",
    "sso_required": "This organisation requires single sign-on. Sign out, then continue with single sign-on.",
}


def _forbidden_message(reason: str) -> str:
    return FORBIDDEN.get(reason, "You are not allowed to install extensions here.")


def _installed_state(org, extension, existing) -> dict:
    return {"kind": "installed", "status": 409, "code": "already_installed", "installation": existing,
            "message": f"{extension.name} is already installed in {org.name}."}  # fmt: skip


@org_page("installation.view")
def install_consent(request, org, principal, extension_id: str):
    """The consent screen: the extension, its publisher, the version the chosen channel serves,
    every scope in plain words with what it reaches, the settings form from the config schema and
    the update policy. The admin ticks "I allow …" and installs (POST); refusals are page states.
    htmx requests for another channel get only the ``consent`` partial."""
    extension = _visible_extension(principal, extension_id)
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
    posted = request.method == "POST"
    source = request.POST if posted else request.GET
    available = {ch: selectors.installable_version(org, extension, ch) for ch in Channel.values}
    available = {ch: v for ch, v in available.items() if v is not None}
    channel = _channel_of(_clean(source.get("channel", ""), 20), list(available))
    version = available.get(channel)
    state = _consent_state(principal, org, extension, version, check(principal, "installation.create", org))
    policy = _clean(source.get("update_policy", UpdatePolicy.AUTO), 10)
    page = {
        "state": state,
        "errors": {},
        "status": state["status"] if state else 200,
        "config_form": ConfigForm(config_schema(version), data=request.POST if posted and state is None else None),
        "update_policy": policy,
    }
    if posted and state is None:
        done = _install_post(request, principal, org, extension, version, channel, page)
        if done is not None:
            return done
    ctx = org_context(
        request,
        org,
        principal,
        extension=extension,
        publisher=extension.org,
        channels=[(value, label) for value, label in Channel.choices if value in available],
        channel=channel,
        version=version,
        scopes=selectors.scope_lines(version.scopes if version else []),
        update_policies=UpdatePolicy.choices,
        consented=posted and request.POST.get("consent") == "yes",
        **{**page, "update_policy": policy if policy in UpdatePolicy.values else UpdatePolicy.AUTO},
    )
    template = "installs/consent.html#consent" if request.htmx and not posted else "installs/consent.html"
    return render(request, template, ctx, status=page["status"])


def _install_post(request, principal, org, extension, version, channel: str, page: dict):
    """The consent form posted: install, or put every problem on the page (``page``) and return None."""
    post, errors, form = request.POST, page["errors"], page["config_form"]
    if post.get("version") != version.pk:
        errors["form"] = (
            f"The {channel} channel now serves {extension.name} {version.version}. "
            "Review what it asks for below, then install."
        )
        page["status"] = 409
        return None
    if version.scopes and post.get("consent") != "yes":
        errors["consent"] = f"Tick the box to allow {extension.name} these scopes, or cancel."
    if page["update_policy"] not in UpdatePolicy.values:
        errors["update_policy"] = "Choose how this installation updates."
    parsed = form.is_valid()
    if parsed and errors and form.schema:
        # Say everything at once: the settings' problems too, not only the missing consent.
        try:
            config_validate(form.schema, form.cleaned)
        except ValidationFailed as exc:
            _config_errors(form, exc)
    if errors or not parsed:
        page["status"] = 400
        return None
    try:
        installation = install_services.installation_create(
            principal=principal,
            org=org,
            extension=extension,
            granted_scopes=_granted_from(post),
            channel=channel,
            version=version,
            config=form.cleaned if form.schema else None,
            update_policy=page["update_policy"],
        )
    except ValidationFailed as exc:
        if exc.code == "config_invalid":
            _config_errors(form, exc)
        else:
            key = {"consent_mismatch": "consent"}.get(exc.code) or (
                "update_policy" if exc.param == "update_policy" else "form"
            )
            errors[key] = exc.message
        page["status"] = 400
        return None
    except PermissionDenied as exc:
        if exc.code not in REFUSAL_CODES:
            raise  # the role or the session: the 403 page
        page.update(state=_refused(principal, org, exc.code, exc.message), status=403)
        return None
    except Conflict as exc:
        existing = selectors.installations_of(org).filter(extension=extension).first()
        if exc.code == "already_installed" and existing is not None:
            page["state"] = _installed_state(org, extension, existing)
        else:
            page["state"] = {"kind": "unavailable", "status": 409, "code": exc.code, "message": exc.message}
        page["status"] = 409
        return None
    messages.success(request, f"{extension.name} {installation.version.version} is installed in {org.name}.")
    return redirect("installation_detail", org_id=org.pk, installation_id=installation.pk)
