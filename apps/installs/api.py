"""Installations over the API: a customer organisation installs, configures, updates, rolls back
and uninstalls extensions; a publisher lists the installations of its extensions and exchanges its
credentials for an installation's short-lived access token."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import NotFound
from apps.core.ids import is_valid_id
from apps.extensions.models import Extension, ExtensionVersion
from apps.extensions.selectors import get_extension_for_principal
from apps.installs import services
from apps.installs.schemas import (
    CleanupReportOut,
    ConfigIn,
    HistoryOut,
    InstallationCreateIn,
    InstallationOut,
    InstallationSettingsIn,
    InstallationSummaryOut,
    InstallationTokenOut,
    PublisherInstallationOut,
    RollbackIn,
    UpdateIn,
    UpdateOfferOut,
)
from apps.installs.selectors import (
    cleanup_report_of,
    get_installation_for_principal,
    get_installation_of_extension,
    history_of,
    installation_summaries_of,
    installations_of_extension,
    scope_lines,
    update_offer,
)
from apps.orgs.selectors import get_org_for_principal

router = Router(tags=["installations"])
ONE = "/orgs/{org_id}/installations/{installation_id}"


def _installation(request: HttpRequest, org_id: str, installation_id: str, action: str):
    org = get_org_for_principal(request.auth, org_id, "installation.view")
    return get_installation_for_principal(request.auth, org, installation_id, action)


def _version_of(extension_id: str, version_id: str | None, param: str = "version_id") -> ExtensionVersion | None:
    """A version of the extension named by id, or None when none was asked for; 404 otherwise."""
    if version_id is None:
        return None
    version = None
    if is_valid_id(version_id, "ver"):
        version = ExtensionVersion.objects.filter(pk=version_id, extension_id=extension_id).first()
    if version is None:
        raise NotFound("No such version of this extension.", param=param)
    return version


def _version_ref(version) -> dict | None:
    return {"id": version.pk, "version": version.version, "status": version.status} if version else None


# --- the customer organisation -------------------------------------------------------------------
@router.get(
    "/orgs/{org_id}/installations",
    response=Page[InstallationSummaryOut],
    summary="List the organisation's installed extensions, newest first",
)
def list_installations(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "installation.view")
    rows, next_cursor = paginate(installation_summaries_of(org), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.post(
    "/orgs/{org_id}/installations",
    response={201: InstallationOut},
    summary="Install an extension, consenting to exactly the scopes its version asks for",
)
def create_installation(request: HttpRequest, org_id: str, payload: InstallationCreateIn):
    """Errors: `consent_mismatch` (400), `config_invalid` (400, `param` names the field),
    `extension_denied` / `publisher_denied` / `scope_denied` / `not_allowlisted` (403, the
    organisation's rules), `version_not_installable` and `already_installed` (409)."""
    org = get_org_for_principal(request.auth, org_id, "installation.create")
    extension = None
    if is_valid_id(payload.extension_id, "ext"):
        extension = Extension.objects.filter(pk=payload.extension_id, deleted_at__isnull=True).first()
    if extension is None:
        raise NotFound("No such extension.", param="extension_id")
    installation = services.installation_create(
        principal=request.auth,
        org=org,
        extension=extension,
        granted_scopes=payload.granted_scopes,
        channel=payload.channel,
        version=_version_of(extension.pk, payload.version_id),
        config=payload.config,
        update_policy=payload.update_policy,
    )
    return Status(201, get_installation_for_principal(request.auth, org, installation.pk, "installation.view"))


@router.get(ONE, response=InstallationOut, summary="Get an installation (secrets masked)")
def get_installation(request: HttpRequest, org_id: str, installation_id: str):
    return _installation(request, org_id, installation_id, "installation.view")


@router.patch(ONE, response=InstallationOut, summary="Change the channel it follows or its update policy")
def update_installation_settings(
    request: HttpRequest, org_id: str, installation_id: str, payload: InstallationSettingsIn
):
    installation = _installation(request, org_id, installation_id, "installation.update")
    return services.installation_settings_update(
        principal=request.auth, installation=installation, channel=payload.channel, update_policy=payload.update_policy
    )


@router.delete(ONE, response=CleanupReportOut, summary="Uninstall: remove everything of it and report what was removed")
def uninstall(request: HttpRequest, org_id: str, installation_id: str):
    """Answers with the cleanup report; `verified` is false when a cleaner failed or found
    something remaining (each item says which)."""
    installation = _installation(request, org_id, installation_id, "installation.delete")
    return services.installation_uninstall(principal=request.auth, installation=installation)


@router.put(
    f"{ONE}/config", response=InstallationOut, summary="Save the configuration (validated; secrets kept when omitted)"
)
def configure(request: HttpRequest, org_id: str, installation_id: str, payload: ConfigIn):
    installation = _installation(request, org_id, installation_id, "installation.update")
    services.installation_configure(principal=request.auth, installation=installation, config=payload.config)
    return _installation(request, org_id, installation_id, "installation.view")


@router.get(
    f"{ONE}/update", response=UpdateOfferOut, summary="The update on offer and the scopes it changes (404 no_update)"
)
def get_update_offer(request: HttpRequest, org_id: str, installation_id: str):
    installation = _installation(request, org_id, installation_id, "installation.view")
    offer = update_offer(installation)
    if offer is None:
        raise NotFound("No newer version is on offer.", code="no_update")
    describe = {line["scope"]: line["describe"] for line in scope_lines(offer.version.scopes)}
    return {
        "version": _version_ref(offer.version),
        "needs_consent": offer.needs_consent,
        "changes": [{**c.as_dict(), "describe": describe.get(c.scope, c.scope)} for c in offer.changes],
        "scopes": scope_lines(offer.version.scopes),
    }


@router.post(f"{ONE}/update", response=InstallationOut, summary="Update to the offered (or a given) newer version")
def update(request: HttpRequest, org_id: str, installation_id: str, payload: UpdateIn):
    """Errors: `consent_required` (409, the version adds or escalates scopes: send `granted_scopes`),
    `consent_mismatch` (400), `no_update`, `version_downgrade`, `installation_blocked` (409), an
    organisation rule (403)."""
    installation = _installation(request, org_id, installation_id, "installation.update")
    services.installation_update(
        principal=request.auth,
        installation=installation,
        version=_version_of(installation.extension_id, payload.version_id),
        granted_scopes=payload.granted_scopes,
    )
    return _installation(request, org_id, installation_id, "installation.view")


@router.post(f"{ONE}/rollback", response=InstallationOut, summary="Roll back to an earlier version it ran (pins it)")
def rollback(request: HttpRequest, org_id: str, installation_id: str, payload: RollbackIn):
    """Errors: `rollback_unavailable` (409: not one of its recent earlier versions)."""
    installation = _installation(request, org_id, installation_id, "installation.update")
    version = _version_of(installation.extension_id, payload.version_id)
    services.installation_rollback(principal=request.auth, installation=installation, version=version)
    return _installation(request, org_id, installation_id, "installation.view")


@router.get(f"{ONE}/history", response=Page[HistoryOut], summary="The versions it ran, newest first")
def history(
    request: HttpRequest, org_id: str, installation_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY
):
    installation = _installation(request, org_id, installation_id, "installation.view")
    rows, next_cursor = paginate(history_of(installation), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.get(
    f"{ONE}/cleanup-report", response=CleanupReportOut, summary="The proof of removal of an uninstalled installation"
)
def cleanup_report(request: HttpRequest, org_id: str, installation_id: str):
    installation = _installation(request, org_id, installation_id, "installation.view")
    report = cleanup_report_of(installation)
    if report is None:
        raise NotFound("This installation has not been uninstalled.", code="no_cleanup_report")
    return report


# --- the publisher -------------------------------------------------------------------------------
@router.get(
    "/orgs/{org_id}/extensions/{extension_id}/installations",
    response=Page[PublisherInstallationOut],
    summary="List the live installations of one of your extensions, newest first",
)
def list_extension_installations(
    request: HttpRequest, org_id: str, extension_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY
):
    org = get_org_for_principal(request.auth, org_id, "extension.installations.view")
    extension = get_extension_for_principal(request.auth, org, extension_id, "extension.installations.view")
    rows, next_cursor = paginate(installations_of_extension(extension), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.post(
    "/orgs/{org_id}/extensions/{extension_id}/installations/{installation_id}/token",
    response={201: InstallationTokenOut},
    summary="Get a short-lived API token acting in the customer organisation with the granted API scopes",
)
def issue_installation_token(request: HttpRequest, org_id: str, extension_id: str, installation_id: str):
    """Errors: `installation_not_active`, `no_api_scopes` (409)."""
    org = get_org_for_principal(request.auth, org_id, "installation.token")
    extension = get_extension_for_principal(request.auth, org, extension_id, "installation.token")
    installation = get_installation_of_extension(extension, installation_id)
    token, raw = services.installation_token_issue(principal=request.auth, installation=installation)
    return Status(
        201,
        {
            "token": raw,
            "token_id": token.pk,
            "installation_id": installation.pk,
            "org_id": installation.org_id,
            "scopes": token.scopes,
            "expires_at": token.expires_at,
        },
    )
