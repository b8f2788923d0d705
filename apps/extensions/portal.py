"""Publisher pages: extensions, versions (upload with problems shown in place), signing keys, and
a manifest checker. Thin: every write is a service call, every read a selector."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from apps.core.errors import Conflict, NotFound, PermissionDenied, PlazaError, ValidationFailed
from apps.events.models import EventType
from apps.extensions import scopes as scope_vocab
from apps.extensions import services
from apps.extensions.annotate import annotate
from apps.extensions.manifest import validate_manifest
from apps.extensions.models import Channel, KeyStatus, VersionStatus
from apps.extensions.packages import read_package
from apps.extensions.selectors import (
    extensions_of,
    get_extension_for_principal,
    get_signing_key_for_principal,
    get_version_for_principal,
    releases_of,
    signing_keys_of,
    version_summaries_of,
)
from apps.orgs.policy import authorize
from apps.orgs.portal import form_error, org_context, org_page, page_of

UPLOAD_FIELDS = ("package", "key_id", "signature", "channel")


def _scope_rows(names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        try:
            scope = scope_vocab.parse(name)
        except scope_vocab.UnknownScope:
            rows.append({"name": name, "describe": "", "reaches": ""})
        else:
            rows.append({"name": name, "describe": scope.describe(), "reaches": scope.reaches()})
    return rows


@org_page("extension.view")
def extension_list(request, org, principal):
    error = None
    if request.method == "POST":
        try:
            authorize(principal, "extension.create", org)
            ext = services.extension_create(
                principal=principal,
                org=org,
                name=request.POST.get("name", "").strip(),
                display_name=request.POST.get("display_name", ""),
                summary=request.POST.get("summary", ""),
            )
            messages.success(request, f"{ext.key} is yours. Upload its first version below.")
            return redirect("extension_detail", org_id=org.pk, extension_id=ext.pk)
        except (ValidationFailed, Conflict) as exc:
            error = form_error(exc, ("name",))
    rows, next_page = page_of(request, extensions_of(org), newest_first=False)
    ctx = org_context(request, org, principal, extensions=rows, next_page=next_page, error=error)
    return render(request, "extensions/list.html", ctx, status=400 if error else 200)


def _manifest_problems(data: bytes, exc: PlazaError) -> dict | None:
    """For a refused manifest: the manifest with each problem under its line (the package itself
    passed its hygiene checks, so it can be read again safely)."""
    if exc.code != "manifest_invalid" or not exc.details:
        return None
    try:
        manifest = read_package(data).manifest
    except PlazaError:
        return None
    return {"lines": annotate(manifest, exc.details), "count": len(exc.details)}


@org_page("extension.view")
def extension_detail(request, org, principal, extension_id: str):
    ext = get_extension_for_principal(principal, org, extension_id, "extension.view")
    error, problems = None, None
    if request.method == "POST":
        upload = request.FILES.get("package")
        data = b""
        try:
            authorize(principal, "version.upload", ext)
            if upload is None:
                raise ValidationFailed("Choose the package (.zip) to upload.", param="package")
            if upload.size > settings.PLAZA_PACKAGE_MAX_BYTES:
                raise ValidationFailed(
                    f"The package is {upload.size} bytes; the limit is {settings.PLAZA_PACKAGE_MAX_BYTES}.",
                    param="package",
                )
            data = upload.read()
            version = services.version_upload(
                principal=principal,
                extension=ext,
                data=data,
                signature=request.POST.get("signature", "")[:200],
                key_id=request.POST.get("key_id", "")[:40],
                channel=request.POST.get("channel", Channel.STABLE),
            )
            messages.success(request, f"Version {version.version} uploaded as a draft. Submit it for certification.")
            return redirect("version_detail", org_id=org.pk, extension_id=ext.pk, version_id=version.pk)
        except (ValidationFailed, Conflict) as exc:
            error = form_error(exc, UPLOAD_FIELDS)
            problems = _manifest_problems(data, exc)
    versions, next_page = page_of(request, version_summaries_of(ext))
    ctx = org_context(
        request,
        org,
        principal,
        extension=ext,
        versions=versions,
        next_page=next_page,
        keys=list(signing_keys_of(org).filter(status=KeyStatus.ACTIVE)),
        channels=Channel.choices,
        error=error,
        problems=problems,
        max_bytes=settings.PLAZA_PACKAGE_MAX_BYTES,
    )
    return render(request, "extensions/detail.html", ctx, status=400 if error else 200)


def _channel_releases(ext) -> list:
    """What each channel serves now (the newest release of each): one query per channel."""
    current = (releases_of(ext).filter(channel=channel).first() for channel in Channel.values)
    return [release for release in current if release is not None]


@org_page("extension.view")
def version_detail(request, org, principal, extension_id: str, version_id: str):
    ext = get_extension_for_principal(principal, org, extension_id, "extension.view")
    version = get_version_for_principal(principal, ext, version_id, "extension.view")
    error, promote_error = None, None
    if request.method == "POST":
        op = request.POST.get("op", "submit")
        try:
            if op == "promote":
                authorize(principal, "version.promote", version)
                release = services.version_promote(
                    principal=principal, version=version, channel=request.POST.get("channel", "")
                )
                messages.success(request, f"Version {version.version} is served on the {release.channel} channel.")
            elif op == "submit":
                authorize(principal, "version.submit", version)
                services.version_submit(principal=principal, version=version)
                messages.success(request, f"Version {version.version} submitted for certification.")
            else:
                raise ValidationFailed("Unknown action.")
            return redirect("version_detail", org_id=org.pk, extension_id=ext.pk, version_id=version.pk)
        except (Conflict, ValidationFailed) as exc:
            if op == "promote":
                promote_error = form_error(exc, ("channel",))
            else:
                error = form_error(exc)
    ctx = org_context(
        request,
        org,
        principal,
        extension=ext,
        version=version,
        scopes=_scope_rows(version.scopes),
        manifest_json=json.dumps(version.manifest, indent=2, ensure_ascii=False),
        releases=_channel_releases(ext),
        channels=Channel.choices,
        promotable=version.status in (VersionStatus.CERTIFIED, VersionStatus.PUBLISHED),
        error=error,
        promote_error=promote_error,
    )
    return render(request, "extensions/version.html", ctx, status=400 if error or promote_error else 200)


@org_page("signing_key.view")
def signing_key_list(request, org, principal):
    error, op = None, request.POST.get("op", "")
    if request.method == "POST":
        try:
            if op == "register":
                authorize(principal, "signing_key.create", org)
                key = services.signing_key_register(
                    principal=principal,
                    org=org,
                    name=request.POST.get("name", ""),
                    public_key=request.POST.get("public_key", "")[:2000],
                )
                messages.success(request, f"Key {key.fingerprint} registered.")
            elif op in ("rotate", "revoke"):
                key = get_signing_key_for_principal(principal, org, request.POST.get("key", ""), f"signing_key.{op}")
                if op == "rotate":
                    new = services.signing_key_rotate(
                        principal=principal,
                        key=key,
                        name=request.POST.get("name", ""),
                        public_key=request.POST.get("public_key", "")[:2000],
                    )
                    messages.success(request, f"{key.name} retired; sign new uploads with {new.fingerprint}.")
                else:
                    services.signing_key_revoke(principal=principal, key=key, reason=request.POST.get("reason", ""))
                    messages.success(request, f"Key {key.fingerprint} revoked.")
            else:
                raise ValidationFailed("Unknown action.")
            return redirect("signing_key_list", org_id=org.pk)
        except (ValidationFailed, Conflict, NotFound, PermissionDenied) as exc:
            error = form_error(exc, ("name", "public_key") if op == "register" else ())
    rows, next_page = page_of(request, signing_keys_of(org), newest_first=False)
    ctx = org_context(request, org, principal, keys=rows, next_page=next_page, error=error)
    return render(request, "extensions/keys.html", ctx, status=400 if error else 200)


@login_required
def manifest_check(request):
    """Paste an extension.json; see every problem under the line it concerns."""
    source, lines, count, parse_error = request.POST.get("manifest", ""), None, None, None
    if request.method == "POST":
        try:
            document = json.loads(source[:262144])
        except (ValueError, RecursionError) as exc:
            parse_error = f"Not JSON: {str(exc)[:200]}"
        else:
            known = set(EventType.objects.values_list("name", flat=True))
            errors = validate_manifest(document, known_event_types=known)
            lines, count = annotate(document, errors), len(errors)
    ctx = {"source": source, "lines": lines, "count": count, "parse_error": parse_error}
    return render(request, "extensions/check.html", ctx, status=400 if parse_error else 200)
