"""Reads of installations. Tenant scoping and authorisation happen here and only here.

Two sides read installations: the customer organisation that installed an extension
(``get_installation_for_principal``) and the publisher of the extension
(``installations_of_extension``, ``get_installation_of_extension``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.core.ids import is_valid_id
from apps.extensions import scopes as scope_vocab
from apps.extensions.manifest import parse_version
from apps.extensions.models import ChannelRelease, Extension, ExtensionVersion, VersionStatus
from apps.installs.config import config_public  # noqa: F401  (re-exported: a read of the installation)
from apps.installs.models import CleanupReport, Installation, InstallationStatus, InstallationVersion
from apps.orgs.models import Organization
from apps.orgs.policy import Principal, authorize

# A version a customer organisation may install or update to: certified, and once promoted, published.
CERTIFIED = frozenset({VersionStatus.CERTIFIED, VersionStatus.PUBLISHED})


def _related(qs: QuerySet[Installation]) -> QuerySet[Installation]:
    return qs.select_related("org", "extension", "version", "pending_version", "installed_by")


def installations_of(org: Organization) -> QuerySet[Installation]:
    """The organisation's live installations (active or blocked), newest first, related rows loaded."""
    return _related(Installation.objects.filter(org=org).exclude(status=InstallationStatus.UNINSTALLED)).order_by("-pk")


def installation_summaries_of(org: Organization) -> QuerySet[Installation]:
    """For lists: the versions' manifests (up to 256 KiB each) stay in the database."""
    return installations_of(org).defer("version__manifest", "pending_version__manifest")


def get_installation_for_principal(
    principal: Principal, org: Organization, installation_id: str, action: str
) -> Installation:
    """An installation of ``org`` (already resolved for this principal), uninstalled ones included
    (their cleanup report stays readable); NotFound for anything else."""
    if not is_valid_id(installation_id, "inst"):
        raise NotFound("No such installation.")
    installation = _related(Installation.objects.filter(org=org, pk=installation_id)).first()
    if installation is None:
        raise NotFound("No such installation.")
    installation.org = org
    authorize(principal, action, installation)
    return installation


def live_installations_by_org(org_ids, extension: Extension) -> dict[str, Installation]:
    """The live installation of ``extension`` in each of ``org_ids`` that has one, in one query."""
    rows = Installation.objects.filter(org_id__in=list(org_ids), extension=extension).exclude(
        status=InstallationStatus.UNINSTALLED
    )
    return {row.org_id: row for row in rows.select_related("version").defer("version__manifest")}


def installations_of_extension(extension: Extension) -> QuerySet[Installation]:
    """The publisher's view: every live installation of ``extension``, in any organisation."""
    return (
        Installation.objects.filter(extension=extension)
        .exclude(status=InstallationStatus.UNINSTALLED)
        .select_related("org", "version")
        .defer("version__manifest")
        .order_by("-pk")
    )


def get_installation_of_extension(extension: Extension, installation_id: str) -> Installation:
    """One live installation of ``extension`` (the caller authorised the publisher side)."""
    if not is_valid_id(installation_id, "inst"):
        raise NotFound("No such installation.")
    installation = (
        Installation.objects.filter(extension=extension, pk=installation_id)
        .exclude(status=InstallationStatus.UNINSTALLED)
        .select_related("org", "version")
        .first()
    )
    if installation is None:
        raise NotFound("No such installation.")
    installation.extension = extension
    return installation


def history_of(installation: Installation) -> QuerySet[InstallationVersion]:
    return (
        InstallationVersion.objects.filter(installation=installation)
        .select_related("version", "from_version", "by")
        .defer("version__manifest", "from_version__manifest")
    )


def cleanup_report_of(installation: Installation) -> CleanupReport | None:
    return CleanupReport.objects.filter(installation=installation).select_related("created_by").first()


# --- versions ---------------------------------------------------------------------------------------
def sandbox_may_install(org: Organization, extension: Extension) -> bool:
    """A publisher's sandbox tenant may install its publisher's own versions before certification."""
    return bool(org.sandbox_of_id) and org.sandbox_of_id == extension.org_id


def version_installable(org: Organization, version: ExtensionVersion, *, released: bool = True) -> bool:
    """Whether ``org`` may hold ``version``: certified (or published), served on a channel now or
    before (a ``ChannelRelease`` of it exists: the publisher chose to ship it), and its extension not
    deleted; in the publisher's sandbox, any version not yanked. ``released=False`` drops the
    channel condition, for a rollback to a version the installation already ran."""
    extension = version.extension
    if extension.deleted_at is not None:
        return False
    if sandbox_may_install(org, extension) and version.status != VersionStatus.YANKED:
        return True
    if version.status not in CERTIFIED:
        return False
    return not released or ChannelRelease.objects.filter(version_id=version.pk).exists()


def not_installable_reason(org: Organization, version: ExtensionVersion) -> str:
    """Why ``version_installable`` said no, in a sentence for the refusal."""
    label = f"{version.extension.key} {version.version}"
    if version.extension.deleted_at is not None:
        return f"{version.extension.key} was deleted by its publisher."
    if version.status in CERTIFIED:
        return f"{label} was never released on a channel, so it cannot be installed."
    return f"{label} is {version.status}: only certified versions released on a channel can be installed" + (
        "." if org.sandbox_of_id else " (a publisher's sandbox may also install its uncertified ones)."
    )


def channel_version(extension: Extension, channel: str) -> ExtensionVersion | None:
    """What ``channel`` serves now: its newest release whose version is not yanked."""
    release = (
        ChannelRelease.objects.filter(extension=extension, channel=channel)
        .exclude(version__status=VersionStatus.YANKED)
        .select_related("version__extension")
        .order_by("-promoted_at", "-pk")
        .first()
    )
    return release.version if release else None


def installable_version(org: Organization, extension: Extension, channel: str = "stable") -> ExtensionVersion | None:
    """The version an install of ``extension`` on ``channel`` gets: what the channel serves. In the
    publisher's sandbox, when the channel serves nothing yet, the newest uploaded version meant for
    that channel (not yanked)."""
    if extension.deleted_at is not None:
        return None
    version = channel_version(extension, channel)
    if version is None and sandbox_may_install(org, extension):
        candidates = ExtensionVersion.objects.filter(extension=extension, channel=channel).exclude(
            status=VersionStatus.YANKED
        )
        version = max(candidates.defer("manifest"), key=lambda v: parse_version(v.version), default=None)
        if version is not None:
            version = ExtensionVersion.objects.select_related("extension").get(pk=version.pk)
    return version


def is_newer(candidate: ExtensionVersion, than: ExtensionVersion) -> bool:
    try:
        return parse_version(candidate.version) > parse_version(than.version)
    except ValueError:
        return False


@dataclass
class UpdateOffer:
    """A newer version an installation could move to, and what the admin would consent to."""

    version: ExtensionVersion
    changes: list = field(default_factory=list)  # [ScopeChange] from the granted scopes to the version's
    needs_consent: bool = False


def update_offer(installation: Installation) -> UpdateOffer | None:
    """The version waiting for the admin (``pending_version``) or, failing that, a newer version
    the followed channel serves; None when the installation runs the newest one."""
    if installation.status == InstallationStatus.UNINSTALLED:
        return None
    target = installation.pending_version
    if target is not None and target.status == VersionStatus.YANKED:
        target = None  # withdrawn since it was offered
    served = channel_version(installation.extension, installation.channel)
    if served is not None and (target is None or is_newer(served, target)):
        target = served
    if target is None or target.pk == installation.version_id or not is_newer(target, installation.version):
        return None
    changes = scope_vocab.diff(installation.granted_scopes or [], target.scopes or [])
    return UpdateOffer(version=target, changes=changes, needs_consent=scope_vocab.needs_consent(changes))


def rollback_candidates(installation: Installation) -> list[ExtensionVersion]:
    """The earlier versions an installation may return to in one action: the previous
    ``PLAZA_INSTALL_ROLLBACK_VERSIONS`` distinct versions it ran (yanked ones excluded), newest first."""
    limit = settings.PLAZA_INSTALL_ROLLBACK_VERSIONS
    seen = {installation.version_id}
    found: list[ExtensionVersion] = []
    rows = (
        InstallationVersion.objects.filter(installation=installation)
        .exclude(version__status=VersionStatus.YANKED)
        .select_related("version__extension")
        .order_by("-at", "-pk")
    )
    for row in rows[: limit * 20]:  # history is short; the cap only bounds a pathological one
        if row.version_id in seen:
            continue
        seen.add(row.version_id)
        found.append(row.version)
        if len(found) >= limit:
            break
    return found


# --- scopes -----------------------------------------------------------------------------------------
def effective_scopes(installation: Installation) -> list[str]:
    """What the installation may use now: what the admin granted that its version asks for."""
    return sorted(set(installation.granted_scopes or []) & set(installation.version.scopes or []))


def api_scopes(scopes) -> list[str]:
    """The Plaza API scopes (``org:read`` …) among capability scopes (``api:org:read`` …)."""
    return sorted({s[len("api:") :] for s in scopes if isinstance(s, str) and s.startswith("api:")})


def scope_lines(scopes) -> list[dict]:
    """Each scope in plain words, for consent screens: [{"scope", "describe", "reaches"}]."""
    lines = []
    for name in sorted(set(scopes or [])):
        try:
            scope = scope_vocab.parse(name)
        except scope_vocab.UnknownScope:
            lines.append({"scope": name, "describe": name, "reaches": ""})
            continue
        lines.append({"scope": name, "describe": scope.describe(), "reaches": scope.reaches()})
    return lines
