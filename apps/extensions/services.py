"""Every write to the extension registry: one function per use case, transactional and audited."""

from __future__ import annotations

import base64
import hashlib
import re

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.core import clock
from apps.core.errors import Conflict, ValidationFailed
from apps.core.ids import is_valid_id
from apps.events.models import EventType
from apps.extensions import scopes as scope_vocab
from apps.extensions import signing
from apps.extensions.manifest import EXTENSION_ID, ManifestError, parse_version, validate_manifest
from apps.extensions.models import (
    TRANSITIONS,
    Channel,
    ChannelRelease,
    Extension,
    ExtensionVersion,
    KeyStatus,
    SigningKey,
    VersionStatus,
)
from apps.extensions.packages import PackageLimits, read_package
from apps.extensions.signals import channel_released, version_status_changed
from apps.extensions.storage import store_artifact
from apps.orgs.models import Organization
from apps.orgs.services.sandbox import sandbox_org_ensure

NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]|[\ud800-\udfff]")


def _actor(principal):
    return principal.user if principal is not None and principal.kind == "user" else None


# --- extensions ----------------------------------------------------------------------------------
def extension_create(
    *, principal, org: Organization, name: str, display_name: str = "", summary: str = ""
) -> Extension:
    """Reserve ``<org slug>.<name>`` for ``org``. The id is immutable and is never freed, even if
    the extension is deleted. The publisher's sandbox tenant is made in the same transaction (the
    first time); a sandbox tenant itself cannot publish (409 ``sandbox_cannot_publish``)."""
    if org.sandbox_of_id:
        raise Conflict(
            "This is a sandbox tenant: it installs its publisher's extensions for testing and cannot publish "
            "its own. Create the extension in the publisher organisation.",
            code="sandbox_cannot_publish",
        )
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValidationFailed(
            "The name is 1–64 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
            code="extension_name_invalid",
            param="name",
        )
    key = f"{org.slug}.{name}"
    if not re.fullmatch(EXTENSION_ID, key):
        raise ValidationFailed(f"'{key}' is not a valid extension id.", code="extension_name_invalid", param="name")
    for field, value in (("display_name", display_name), ("summary", summary)):
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValidationFailed(f"{field} must not contain control characters.", param=field)
    display_name = (display_name or name).strip()[:60]
    with transaction.atomic():
        try:
            with transaction.atomic():
                ext = Extension.objects.create(
                    org=org,
                    key=key,
                    name=display_name,
                    summary=(summary or "").strip()[:140],
                    created_by=_actor(principal),
                )
        except IntegrityError:
            raise Conflict(
                f"The extension id '{key}' is taken. Extension ids are never reused, even after deletion.",
                code="extension_id_taken",
                param="name",
            ) from None
        audit_record(action="extension.created", org_id=org.pk, target=ext, changes={"key": key})
        sandbox_org_ensure(org=org)
    return ext


def extension_delete(*, principal, extension: Extension) -> None:
    """Hide the extension; its id stays reserved and its versions stay on record."""
    with transaction.atomic():
        extension.deleted_at = clock.now()
        extension.save(update_fields=["deleted_at"])
        audit_record(action="extension.deleted", org_id=extension.org_id, target=extension)


# --- signing keys --------------------------------------------------------------------------------
def _new_key(*, principal, org: Organization, name: str, public_key: str) -> SigningKey:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(
            "Give the key a name of 1–100 characters.", code="signing_key_name_invalid", param="name"
        )
    key = signing.parse_public_key(public_key)
    fingerprint = signing.key_fingerprint(key)
    if SigningKey.objects.filter(org=org, fingerprint=fingerprint).exists():
        raise Conflict(f"The key {fingerprint} is already registered.", code="signing_key_exists", param="public_key")
    raw = base64.b64encode(signing.public_key_raw(key)).decode()
    return SigningKey.objects.create(
        org=org, name=name, public_key=raw, fingerprint=fingerprint, created_by=_actor(principal)
    )


def signing_key_register(*, principal, org: Organization, name: str, public_key: str) -> SigningKey:
    with transaction.atomic():
        key = _new_key(principal=principal, org=org, name=name, public_key=public_key)
        audit_record(
            action="signing_key.registered", org_id=org.pk, target=key, changes={"fingerprint": key.fingerprint}
        )
    return key


def _locked_key(key: SigningKey) -> SigningKey:
    """``key`` re-read under a row lock: its status decides what may happen next, and a concurrent
    revoke or rotate must not be undone by a decision made on a stale copy."""
    locked = SigningKey.objects.select_for_update().get(pk=key.pk)
    locked.org = key.org
    return locked


def signing_key_rotate(*, principal, key: SigningKey, name: str, public_key: str) -> SigningKey:
    """Register a successor and retire ``key``: versions it signed stay valid, new uploads need the new key."""
    with transaction.atomic():
        key = _locked_key(key)
        if key.status != KeyStatus.ACTIVE:
            raise Conflict(f"Only an active key can be rotated; this one is {key.status}.", code="signing_key_inactive")
        new = _new_key(principal=principal, org=key.org, name=name, public_key=public_key)
        key.status, key.replaced_by, key.status_changed_at = KeyStatus.RETIRED, new, clock.now()
        key.save(update_fields=["status", "replaced_by", "status_changed_at"])
        audit_record(
            action="signing_key.rotated",
            org_id=key.org_id,
            target=key,
            changes={"replaced_by": new.pk, "fingerprint": new.fingerprint},
        )
    return new


def signing_key_revoke(*, principal, key: SigningKey, reason: str = "") -> SigningKey:
    """Stop trusting ``key`` (it leaked): no upload is accepted with it, and certification refuses
    versions it signed."""
    with transaction.atomic():
        key = _locked_key(key)
        if key.status == KeyStatus.REVOKED:
            return key
        key.status, key.status_changed_at = KeyStatus.REVOKED, clock.now()
        key.revoke_reason = (reason or "").strip()[:500]
        key.save(update_fields=["status", "status_changed_at", "revoke_reason"])
        audit_record(action="signing_key.revoked", org_id=key.org_id, target=key, changes={"reason": key.revoke_reason})
    return key


# --- versions ------------------------------------------------------------------------------------
def _signing_key_for_upload(extension: Extension, key_id: str) -> SigningKey:
    key = None
    if is_valid_id(key_id or "", "key"):
        key = SigningKey.objects.filter(org_id=extension.org_id, pk=key_id).first()
    if key is None:
        raise ValidationFailed("No such signing key in this organisation.", code="signing_key_unknown", param="key_id")
    if key.status == KeyStatus.REVOKED:
        raise ValidationFailed(
            f"The key {key.fingerprint} was revoked; sign with an active key.",
            code="signing_key_revoked",
            param="key_id",
        )
    if key.status == KeyStatus.RETIRED:
        raise ValidationFailed(
            f"The key {key.fingerprint} was rotated out; sign with its successor.",
            code="signing_key_retired",
            param="key_id",
        )
    return key


def version_upload(
    *, principal, extension: Extension, data: bytes, signature: str, key_id: str, channel: str = Channel.STABLE
) -> ExtensionVersion:
    """Check and store an uploaded package as a new draft version.

    Order matters: the signature is checked over the raw bytes before the zip is parsed, the
    package's hygiene before its manifest, and the manifest before the version rules."""
    if extension.deleted_at is not None:
        raise Conflict("This extension was deleted.", code="extension_deleted")
    if channel not in Channel.values:
        raise ValidationFailed(
            f"The channel is one of {', '.join(Channel.values)}.", code="channel_invalid", param="channel"
        )
    limits = PackageLimits(max_bytes=settings.PLAZA_PACKAGE_MAX_BYTES)
    if len(data) > limits.max_bytes:
        raise ValidationFailed(
            f"The package is {len(data)} bytes; the limit is {limits.max_bytes}.",
            code="package_too_large",
            param="package",
        )
    key = _signing_key_for_upload(extension, key_id)
    digest = hashlib.sha256(data).hexdigest()
    signing.verify_package_signature(signing.parse_public_key(key.public_key), digest, signature)
    package = read_package(data, limits)
    errors = validate_manifest(
        package.manifest,
        files=set(package.files),
        known_event_types=set(EventType.objects.values_list("name", flat=True)),
    )
    manifest_id = package.manifest.get("id")
    if isinstance(manifest_id, str) and manifest_id != extension.key:
        errors.append(
            _mismatch("$.id", f"The manifest's id '{manifest_id}' is not this extension's id '{extension.key}'.")
        )
    if errors:
        raise ValidationFailed(
            f"The manifest has {len(errors)} problem{'s' if len(errors) != 1 else ''}: "
            + "; ".join(f"{e.path}: {e.message}" for e in errors[:5])[:1000],
            code="manifest_invalid",
            param="package",
            details=[e.as_dict() for e in errors],
        )
    number = parse_version(package.manifest["version"])
    if number.prerelease and channel == Channel.STABLE:
        raise ValidationFailed(
            f"{number} is a pre-release; upload it to the beta or canary channel.",
            code="channel_prerelease",
            param="channel",
        )
    with transaction.atomic():
        Extension.objects.select_for_update().filter(pk=extension.pk).first()  # serialise uploads per extension
        key = _locked_key(key)
        if key.status != KeyStatus.ACTIVE:  # revoked or rotated while this upload was being checked
            _signing_key_for_upload(extension, key.pk)
        earlier = list(ExtensionVersion.objects.filter(extension=extension).only("id", "version", "scopes", "status"))
        if any(v.version == str(number) for v in earlier):
            raise Conflict(
                f"Version {number} was already uploaded; a version number is never reused. Bump the version.",
                code="version_exists",
                param="package",
            )
        highest = max(earlier, key=lambda v: parse_version(v.version), default=None)
        if highest is not None and parse_version(highest.version) > number:
            raise Conflict(
                f"Version {number} is lower than {highest.version}, the highest so far; "
                "a new version must be greater than every earlier one.",
                code="version_not_greater",
                param="package",
            )
        new_scopes = sorted(scope_vocab.parse(s).name for s in package.manifest.get("scopes", []))
        previous, changes = _scope_changes(earlier, number, new_scopes)
        store_artifact(data)  # only for an upload that will be kept; a failure below rolls the row back
        version = ExtensionVersion.objects.create(
            extension=extension,
            version=str(number),
            channel=channel,
            manifest=package.manifest,
            scopes=new_scopes,
            previous=previous,
            scope_changes=changes,
            package_sha256=digest,
            package_size=len(data),
            signing_key=key,
            signature=signing.canonical_signature(signature),
            created_by=_actor(principal),
        )
        key.last_used_at = clock.now()
        key.save(update_fields=["last_used_at"])
        extension.name, extension.summary = package.manifest["name"][:60], package.manifest["summary"][:140]
        extension.save(update_fields=["name", "summary"])
        audit_record(
            action="extension_version.uploaded",
            org_id=extension.org_id,
            target=version,
            changes={"version": str(number), "sha256": digest, "channel": channel, "key": key.fingerprint},
        )
    return version


# Versions an installation can hold: scope changes are measured from the highest of these, so an
# escalation cannot slip through an intermediate version that never reached anyone.
INSTALLABLE = frozenset({VersionStatus.CERTIFIED, VersionStatus.PUBLISHED, VersionStatus.YANKED})


def _scope_changes(earlier, number, scopes: list[str]) -> tuple[ExtensionVersion | None, list[dict]]:
    """The highest installable version below ``number`` and the scope changes from it (all scopes
    count as added when none exists yet)."""
    reached = [v for v in earlier if v.status in INSTALLABLE and parse_version(v.version) < number]
    previous = max(reached, key=lambda v: parse_version(v.version), default=None)
    changes = scope_vocab.diff(previous.scopes if previous else [], scopes)
    return previous, [c.as_dict() for c in changes]


def _mismatch(path: str, message: str) -> ManifestError:
    return ManifestError(path, "id_mismatch", message)


def version_transition(*, version: ExtensionVersion, to: str, reason: str = "") -> ExtensionVersion:
    """Move ``version`` along its lifecycle (TRANSITIONS), audited; ``version_status_changed`` is
    sent after commit."""
    with transaction.atomic():
        locked = (
            ExtensionVersion.objects.select_for_update(of=("self",))
            .select_related("extension", "signing_key")
            .get(pk=version.pk)
        )
        if to not in TRANSITIONS[locked.status]:
            raise Conflict(
                f"A {locked.status} version cannot become {to}.", code="version_status_conflict", param="status"
            )
        before = locked.status
        now = clock.now()
        locked.status, locked.status_reason, locked.status_changed_at = to, (reason or "")[:1000], now
        fields = ["status", "status_reason", "status_changed_at"]
        if to == VersionStatus.SUBMITTED:
            locked.submitted_at = now
            fields.append("submitted_at")
        if to == VersionStatus.CERTIFIED:
            if locked.signing_key.status == KeyStatus.REVOKED:
                raise Conflict(
                    f"The key that signed {locked.version} was revoked; it cannot be certified.",
                    code="signing_key_revoked",
                )
            # Certification vouches for exactly these bytes, this id, this version and this publisher
            # signature; the scope changes are measured again from what installations can hold now.
            locked.countersignature = _countersignature(locked)
            earlier = list(locked.extension.versions.exclude(pk=locked.pk).only("id", "version", "scopes", "status"))
            locked.previous, locked.scope_changes = _scope_changes(
                earlier, parse_version(locked.version), locked.scopes
            )
            fields += ["countersignature", "previous", "scope_changes"]
        elif before == VersionStatus.CERTIFIED and to in (VersionStatus.CERTIFYING, VersionStatus.REJECTED):
            locked.countersignature = None  # no longer vouched for
            fields.append("countersignature")
        locked.save(update_fields=fields)
        audit_record(
            action=f"extension_version.{to}",
            org_id=locked.extension.org_id,
            target=locked,
            changes={"status": [before, to], **({"reason": locked.status_reason} if reason else {})},
        )
        transaction.on_commit(
            lambda: version_status_changed.send_robust(sender=ExtensionVersion, version=locked, before=before)
        )
    return locked


def version_submit(*, principal, version: ExtensionVersion) -> ExtensionVersion:
    """Hand a draft to certification. From here on nothing about it can change but its status."""
    if version.extension.deleted_at is not None:
        raise Conflict("This extension was deleted.", code="extension_deleted")
    return version_transition(version=version, to=VersionStatus.SUBMITTED)


def _countersignature(version: ExtensionVersion) -> dict:
    return signing.countersign(
        extension_id=version.extension.key,
        version=version.version,
        digest_hex=version.package_sha256,
        publisher_signature=version.signature,
    )


def version_countersign(*, version: ExtensionVersion) -> ExtensionVersion:
    """Add (or renew, e.g. after a platform key rotation) the platform's countersignature of a version.
    Becoming certified adds one by itself."""
    with transaction.atomic():
        version.countersignature = _countersignature(version)
        version.save(update_fields=["countersignature"])
        audit_record(
            action="extension_version.countersigned",
            org_id=version.extension.org_id,
            target=version,
            changes={"key_id": version.countersignature["key_id"]},
        )
    return version


# --- channels ------------------------------------------------------------------------------------
def version_promote(*, principal, version: ExtensionVersion, channel: str) -> ChannelRelease:
    """Serve a certified version on ``channel`` (stable, beta or canary). The first promotion
    publishes it. A pre-release never goes to stable, and a channel never moves to a lower version
    than it serves (installations roll back on their own, #7)."""
    if channel not in Channel.values:
        raise ValidationFailed(
            f"The channel is one of {', '.join(Channel.values)}.", code="channel_invalid", param="channel"
        )
    with transaction.atomic():
        extension = Extension.objects.select_for_update().get(pk=version.extension_id)  # one promotion at a time
        if extension.deleted_at is not None:
            raise Conflict("This extension was deleted.", code="extension_deleted")
        locked = (
            ExtensionVersion.objects.select_for_update(of=("self",))
            .select_related("extension", "signing_key")
            .get(pk=version.pk)
        )
        if locked.status not in (VersionStatus.CERTIFIED, VersionStatus.PUBLISHED):
            raise Conflict(
                f"Only a certified version can be promoted; {locked.version} is {locked.status}.",
                code="version_not_certified",
            )
        number = parse_version(locked.version)
        if number.prerelease and channel == Channel.STABLE:
            raise Conflict(
                f"{number} is a pre-release; promote it to beta or canary.", code="channel_prerelease", param="channel"
            )
        serving = (
            ChannelRelease.objects.filter(extension_id=locked.extension_id, channel=channel)
            .select_related("version")
            .first()
        )
        if serving is not None and serving.version_id == locked.pk:
            return serving
        # A yanked version does not hold the channel up: promoting an earlier one is the way back.
        baseline = (
            ChannelRelease.objects.filter(extension_id=locked.extension_id, channel=channel)
            .exclude(version__status=VersionStatus.YANKED)
            .select_related("version")
            .first()
        )
        if baseline is not None and parse_version(baseline.version.version) > number:
            raise Conflict(
                f"The {channel} channel serves {baseline.version.version}, higher than {number}.",
                code="channel_downgrade",
                param="channel",
            )
        current = serving
        release = ChannelRelease.objects.create(
            extension_id=locked.extension_id, channel=channel, version=locked, promoted_by=_actor(principal)
        )
        audit_record(
            action="extension_version.promoted",
            org_id=locked.extension.org_id,
            target=locked,
            changes={
                "channel": channel,
                "version": locked.version,
                "replaces": current.version_id if current else None,
            },
        )
        if locked.status == VersionStatus.CERTIFIED:
            version_transition(version=locked, to=VersionStatus.PUBLISHED, reason=f"Promoted to {channel}")
        transaction.on_commit(lambda: channel_released.send_robust(sender=ChannelRelease, release=release))
    return release
