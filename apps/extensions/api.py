"""Publishing: extensions, versions (multipart upload), signing keys, and manifest validation."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja import Body, File, Form, Router, Status, UploadedFile

from apps.core.api import CURSOR_QUERY, LIMIT_QUERY, Page, paginate
from apps.core.errors import ValidationFailed
from apps.events.models import EventType
from apps.extensions import services
from apps.extensions.manifest import validate_manifest
from apps.extensions.models import Channel
from apps.extensions.schemas import (
    ExtensionCreateIn,
    ExtensionOut,
    ManifestCheckOut,
    PromoteIn,
    ReleaseOut,
    SigningKeyCreateIn,
    SigningKeyOut,
    SigningKeyRevokeIn,
    VersionOut,
    VersionSummaryOut,
)
from apps.extensions.selectors import (
    extensions_of,
    get_extension_for_principal,
    get_signing_key_for_principal,
    get_version_for_principal,
    releases_of,
    signing_keys_of,
    version_summaries_of,
)
from apps.orgs.selectors import get_org_for_principal

router = Router(tags=["extensions"])


# --- extensions ----------------------------------------------------------------------------------
@router.get("/orgs/{org_id}/extensions", response=Page[ExtensionOut], summary="List the organisation's extensions")
def list_extensions(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    rows, next_cursor = paginate(extensions_of(org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/extensions", response={201: ExtensionOut}, summary="Create an extension (reserve its id)")
def create_extension(request: HttpRequest, org_id: str, payload: ExtensionCreateIn):
    org = get_org_for_principal(request.auth, org_id, "extension.create")
    ext = services.extension_create(
        principal=request.auth, org=org, name=payload.name, display_name=payload.display_name, summary=payload.summary
    )
    return Status(201, ext)


@router.get("/orgs/{org_id}/extensions/{extension_id}", response=ExtensionOut, summary="Get an extension")
def get_extension(request: HttpRequest, org_id: str, extension_id: str):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    return get_extension_for_principal(request.auth, org, extension_id, "extension.view")


@router.delete(
    "/orgs/{org_id}/extensions/{extension_id}",
    response={204: None},
    summary="Delete an extension (its id stays reserved forever)",
)
def delete_extension(request: HttpRequest, org_id: str, extension_id: str):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "extension.delete")
    services.extension_delete(principal=request.auth, extension=ext)
    return Status(204, None)


# --- versions ------------------------------------------------------------------------------------
@router.get(
    "/orgs/{org_id}/extensions/{extension_id}/versions",
    response=Page[VersionSummaryOut],
    summary="List versions, newest first (without manifests)",
)
def list_versions(
    request: HttpRequest, org_id: str, extension_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY
):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "extension.view")
    rows, next_cursor = paginate(version_summaries_of(ext), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


@router.post(
    "/orgs/{org_id}/extensions/{extension_id}/versions",
    response={201: VersionOut},
    summary="Upload a signed package as a new draft version (multipart)",
    description="Form fields: `package` (the zip), `signature` (base64 ed25519 signature over "
    "`plaza-package-v1\\nsha256:<hex digest of the zip>`), `key_id` (a registered signing key) and "
    "`channel` (stable, beta or canary). Every manifest problem is listed in `error.details`.",
)
def upload_version(
    request: HttpRequest,
    org_id: str,
    extension_id: str,
    package: File[UploadedFile],
    signature: Form[str],
    key_id: Form[str],
    channel: Form[str] = Channel.STABLE,
):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "version.upload")
    if len(signature) > 200:
        raise ValidationFailed("The signature is too long to be one.", code="signature_malformed", param="signature")
    if len(key_id) > 40:
        raise ValidationFailed("No such signing key in this organisation.", code="signing_key_unknown", param="key_id")
    version = services.version_upload(
        principal=request.auth,
        extension=ext,
        data=_read_upload(package),
        signature=signature,
        key_id=key_id,
        channel=channel,
    )
    return Status(201, version)


def _read_upload(upload: UploadedFile) -> bytes:
    if upload.size is not None and upload.size > settings.PLAZA_PACKAGE_MAX_BYTES:
        raise ValidationFailed(
            f"The package is {upload.size} bytes; the limit is {settings.PLAZA_PACKAGE_MAX_BYTES}.",
            code="package_too_large",
            param="package",
        )
    return upload.read(settings.PLAZA_PACKAGE_MAX_BYTES + 1)


@router.get(
    "/orgs/{org_id}/extensions/{extension_id}/versions/{version_id}", response=VersionOut, summary="Get a version"
)
def get_version(request: HttpRequest, org_id: str, extension_id: str, version_id: str):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "extension.view")
    return get_version_for_principal(request.auth, ext, version_id, "extension.view")


@router.post(
    "/orgs/{org_id}/extensions/{extension_id}/versions/{version_id}/submit",
    response=VersionOut,
    summary="Submit a draft version for certification",
)
def submit_version(request: HttpRequest, org_id: str, extension_id: str, version_id: str):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "extension.view")
    version = get_version_for_principal(request.auth, ext, version_id, "version.submit")
    return services.version_submit(principal=request.auth, version=version)


@router.post(
    "/orgs/{org_id}/extensions/{extension_id}/versions/{version_id}/promote",
    response=ReleaseOut,
    summary="Promote a certified version to a channel (the first promotion publishes it)",
)
def promote_version(request: HttpRequest, org_id: str, extension_id: str, version_id: str, payload: PromoteIn):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "extension.view")
    version = get_version_for_principal(request.auth, ext, version_id, "version.promote")
    return services.version_promote(principal=request.auth, version=version, channel=payload.channel)


@router.get(
    "/orgs/{org_id}/extensions/{extension_id}/releases",
    response=Page[ReleaseOut],
    summary="List channel promotions, newest first (the newest per channel is what it serves)",
)
def list_releases(
    request: HttpRequest, org_id: str, extension_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY
):
    org = get_org_for_principal(request.auth, org_id, "extension.view")
    ext = get_extension_for_principal(request.auth, org, extension_id, "extension.view")
    rows, next_cursor = paginate(releases_of(ext), limit=limit, cursor=cursor)
    return {"data": rows, "next_cursor": next_cursor}


# --- signing keys --------------------------------------------------------------------------------
@router.get("/orgs/{org_id}/signing-keys", response=Page[SigningKeyOut], summary="List package signing keys")
def list_signing_keys(request: HttpRequest, org_id: str, limit: int = LIMIT_QUERY, cursor: str | None = CURSOR_QUERY):
    org = get_org_for_principal(request.auth, org_id, "signing_key.view")
    rows, next_cursor = paginate(signing_keys_of(org), limit=limit, cursor=cursor, newest_first=False)
    return {"data": rows, "next_cursor": next_cursor}


@router.post("/orgs/{org_id}/signing-keys", response={201: SigningKeyOut}, summary="Register an ed25519 public key")
def create_signing_key(request: HttpRequest, org_id: str, payload: SigningKeyCreateIn):
    org = get_org_for_principal(request.auth, org_id, "signing_key.create")
    key = services.signing_key_register(
        principal=request.auth, org=org, name=payload.name, public_key=payload.public_key
    )
    return Status(201, key)


@router.get("/orgs/{org_id}/signing-keys/{key_id}", response=SigningKeyOut, summary="Get a signing key")
def get_signing_key(request: HttpRequest, org_id: str, key_id: str):
    org = get_org_for_principal(request.auth, org_id, "signing_key.view")
    return get_signing_key_for_principal(request.auth, org, key_id, "signing_key.view")


@router.post(
    "/orgs/{org_id}/signing-keys/{key_id}/rotate",
    response={201: SigningKeyOut},
    summary="Rotate: register a successor and retire this key",
)
def rotate_signing_key(request: HttpRequest, org_id: str, key_id: str, payload: SigningKeyCreateIn):
    org = get_org_for_principal(request.auth, org_id, "signing_key.view")
    key = get_signing_key_for_principal(request.auth, org, key_id, "signing_key.rotate")
    new = services.signing_key_rotate(principal=request.auth, key=key, name=payload.name, public_key=payload.public_key)
    return Status(201, new)


@router.post("/orgs/{org_id}/signing-keys/{key_id}/revoke", response=SigningKeyOut, summary="Revoke a key (it leaked)")
def revoke_signing_key(request: HttpRequest, org_id: str, key_id: str, payload: SigningKeyRevokeIn):
    org = get_org_for_principal(request.auth, org_id, "signing_key.view")
    key = get_signing_key_for_principal(request.auth, org, key_id, "signing_key.revoke")
    return services.signing_key_revoke(principal=request.auth, key=key, reason=payload.reason)


# --- manifests -----------------------------------------------------------------------------------
@router.post(
    "/manifests/validate",
    response=ManifestCheckOut,
    summary="Validate a manifest and list every problem",
    description="Send the extension.json document as the body. File references are not checked (no package).",
)
def validate(request: HttpRequest, payload: Body[dict]):
    errors = validate_manifest(payload, known_event_types=set(EventType.objects.values_list("name", flat=True)))
    return {"valid": not errors, "errors": [e.as_dict() for e in errors]}
