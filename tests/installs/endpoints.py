"""Authorization-table rows of the installations API (see tests/orgs/marketplace_endpoints.py).

The target tenant publishes ``targets.extension`` and installs it into itself: 0.7.0, then an update
to 0.8.0 (so 0.7.0 is a rollback candidate), while the stable channel serves 0.8.1 (so an update is on
offer). Its versions ask for ``api:org:read`` (so the publisher can get an installation token). A
second extension, ``<slug>.installable-ext``, is released and not installed, for the install row.
"""

from __future__ import annotations

import json

from apps.extensions.models import ChannelRelease, Extension, ExtensionVersion
from apps.installs import services
from apps.installs.models import CleanupReport, Installation, InstallationVersion
from apps.orgs.policy import Principal
from tests.extensions.conftest import BASE_MANIFEST
from tests.orgs.endpoint import API, ORG, Endpoint  # noqa: F401

SCOPES = ["events:read:order.created", "api:org:read"]
INSTALLABLE = "installable-ext"


class LazyJson:
    """A JSON body naming ids that only exist once ``make_targets`` ran: resolved when sent (the
    test client sends a body that is not a dict as ``str(body)``). Objects of the newest target
    tenant are named; requests naming another tenant's organisation fail before the body matters."""

    def __init__(self, resolve):
        self.resolve = resolve

    def __str__(self) -> str:
        return json.dumps(self.resolve())

    def __repr__(self) -> str:
        return "LazyJson(…)"


def _install_body() -> dict:
    extension = Extension.objects.filter(key__endswith=f".{INSTALLABLE}").order_by("-pk").first()
    return {"extension_id": extension.pk, "granted_scopes": SCOPES}


def _rollback_body() -> dict:
    version = (
        ExtensionVersion.objects.filter(extension__key__endswith=".target-ext", version="0.7.0").order_by("-pk").first()
    )
    return {"version_id": version.pk}


ONE = f"{ORG}/installations/{{installation_id}}"
ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", f"{ORG}/installations", ("installation.view",)),
    Endpoint("POST", f"{ORG}/installations", ("installation.create",), ok=201, body=LazyJson(_install_body)),
    Endpoint("GET", ONE, ("installation.view",)),
    Endpoint("PATCH", ONE, ("installation.view", "installation.update"), body={"update_policy": "pinned"}),
    Endpoint("DELETE", ONE, ("installation.view", "installation.delete")),
    Endpoint("PUT", f"{ONE}/config", ("installation.view", "installation.update"), body={"config": {}}),
    Endpoint("GET", f"{ONE}/update", ("installation.view",)),
    Endpoint("POST", f"{ONE}/update", ("installation.view", "installation.update"), body={}),
    Endpoint("POST", f"{ONE}/rollback", ("installation.view", "installation.update"), body=LazyJson(_rollback_body)),
    Endpoint("GET", f"{ONE}/history", ("installation.view",)),
    # the target installation is live: its cleanup report does not exist yet (404 no_cleanup_report)
    Endpoint("GET", f"{ONE}/cleanup-report", ("installation.view",), ok=404),
    # the publisher's side
    Endpoint("GET", f"{ORG}/extensions/{{extension_id}}/installations", ("extension.installations.view",)),
    Endpoint(
        "POST",
        f"{ORG}/extensions/{{extension_id}}/installations/{{installation_id}}/token",
        ("installation.token",),
        ok=201,
    ),
]


def _version(extension: Extension, key, number: str) -> ExtensionVersion:
    return ExtensionVersion.objects.create(
        extension=extension,
        version=number,
        status="published",
        manifest={**BASE_MANIFEST, "id": extension.key, "version": number, "scopes": SCOPES},
        scopes=SCOPES,
        package_sha256="0" * 64,
        package_size=1,
        signing_key=key,
        signature="x",
    )


def make_targets(tenant, targets) -> dict:
    extension, key, org = targets.extension, targets.signing_key, tenant.org
    owner = Principal(kind="user", user=tenant.owner, mfa_verified=True)
    first, second, served = (_version(extension, key, n) for n in ("0.7.0", "0.8.0", "0.8.1"))
    for version in (first, second, served):  # each released in turn: only released versions install
        ChannelRelease.objects.create(extension=extension, channel="stable", version=version)
    installation = services.installation_create(
        principal=owner, org=org, extension=extension, granted_scopes=SCOPES, version=first, update_policy="pinned"
    )
    installation = services.installation_update(principal=owner, installation=installation, version=second)
    services.installation_settings_update(principal=owner, installation=installation, update_policy="auto")
    other = Extension.objects.create(org=org, key=f"{org.slug}.{INSTALLABLE}", name="Installable")
    ChannelRelease.objects.create(extension=other, channel="stable", version=_version(other, key, "1.0.0"))
    return {"installation_id": installation.pk}


def snapshot(org) -> dict:
    return {
        "installations": list(Installation.objects.filter(org=org).order_by("pk").values()),
        "installation_history": list(InstallationVersion.objects.filter(installation__org=org).order_by("pk").values()),
        "cleanup_reports": list(CleanupReport.objects.filter(org=org).order_by("pk").values()),
    }


# The install console's organisation page without other URL parameters (apps/installs/urls.py, H4),
# for the portal's tenant-isolation tests; its pages about one installation or extension
# (install_consent, installation_detail, installation_cleanup) need PORTAL_ACTIONS entries there.
PORTAL_PAGES = ["installations"]
PAGE_FORMS = {"installations": {}}
PORTAL_ACTIONS = {"installation_detail": ("installation_id",), "installation_cleanup": ("installation_id",)}
PORTAL_EXEMPT = {
    # The extension is a public catalogue item: another publisher's served extension opens the
    # consent page for one's own organisation (tests/installs/test_console_pages.py covers refusals).
    "install_consent": "public extension",
}
OTHER_KIND = {"installation_id": lambda t: t.extension.pk}


def fuzz_targets(tenant, ids: dict) -> dict:
    """A real installation for the API fuzzer (tests/test_api_fuzz.py), made like the table's."""
    from types import SimpleNamespace

    from apps.extensions.models import Extension, SigningKey

    extension = Extension.objects.get(pk=ids["extension_id"][0])
    key = SigningKey.objects.filter(org=extension.org).first()
    made = make_targets(tenant, SimpleNamespace(org=tenant.org, extension=extension, signing_key=key))
    return {name: [value] for name, value in made.items()}
