"""Certification fixtures: acme as a publisher (from tests/extensions), packages built from the
corpus sources, and ``certify`` — upload, sign and submit a package the way the CLI does, then let
the (embedded, manual) executor run the certification it triggers."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import wasmtime

from apps.certification.models import CertificationRun
from apps.extensions import services
from apps.extensions.packages import build_package
from apps.extensions.signing import sign_package
from apps.orgs.policy import Principal
from tests.extensions.conftest import event_catalog, publisher  # noqa: F401  (fixtures)

CORPUS = Path(__file__).parent / "corpus"
REPO = Path(__file__).resolve().parents[2]
ORDER_TAGGER_AS = REPO / "pdk" / "assemblyscript" / "build" / "order_tagger.wasm"
ROBOT = Principal(kind="user", user=None, mfa_verified=True)


def wat(name: str) -> bytes:
    """A corpus module, assembled from its WAT source."""
    return bytes(wasmtime.wat2wasm((CORPUS / f"{name}.wat").read_text()))


ECHO_SCHEMA = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 100}, "loud": {"type": "boolean"}},
    "additionalProperties": False,
}

# The clean package: the AssemblyScript order tagger as a hook, the WAT echo as a tool.
CLEAN_MANIFEST = {
    "manifest_version": 1,
    "id": "acme.order-tagger",
    "version": "1.0.0",
    "name": "Order Tagger",
    "summary": "Tags new orders by what is in them.",
    "platform": {"api": "^1.0"},
    "scopes": ["events:read:order.created", "kv:write", "agent:tools"],
    "modules": {"main": "modules/main.wasm", "tools": "modules/tools.wasm"},
    "hooks": [{"event": "order.created", "module": "main", "export": "on_order_created"}],
    "tool_packs": [
        {
            "name": "text",
            "description": "Text tools.",
            "tools": [
                {
                    "name": "echo",
                    "description": "Says it back.",
                    "module": "tools",
                    "export": "echo",
                    "input_schema": ECHO_SCHEMA,
                    "output_schema": ECHO_SCHEMA,
                }
            ],
        }
    ],
}


def clean_files() -> dict[str, bytes]:
    return {"modules/main.wasm": ORDER_TAGGER_AS.read_bytes(), "modules/tools.wasm": wat("echo_tool")}


def clean_manifest(**overrides) -> dict:
    doc = copy.deepcopy(CLEAN_MANIFEST)
    doc.update(overrides)
    return doc


def upload(publisher, doc: dict, files: dict, *, sbom: dict | None = None, extension=None, channel: str = "stable"):  # noqa: F811
    """A signed draft of ``doc`` + ``files`` for ``publisher``'s extension (or ``extension``)."""
    extension = extension or publisher.extension
    doc = {**doc, "id": extension.key}
    data = build_package(files, manifest=doc, sbom=sbom)
    return services.version_upload(
        principal=ROBOT,
        extension=extension,
        data=data,
        signature=sign_package(publisher.private, hashlib.sha256(data).hexdigest()),
        key_id=publisher.key.pk,
        channel=channel,
    )


@pytest.fixture
def certify(publisher, django_capture_on_commit_callbacks):  # noqa: F811
    """certify(manifest, files, sbom=None, extension=None, before_submit=None) -> the finished run."""

    def run(doc: dict, files: dict, *, sbom: dict | None = None, extension=None, before_submit=None):
        version = upload(publisher, doc, files, sbom=sbom, extension=extension)
        if before_submit is not None:
            before_submit(version)
        with django_capture_on_commit_callbacks(execute=True):
            services.version_submit(principal=ROBOT, version=version)
        return CertificationRun.objects.get(version=version)

    return run


def not_passed(run: CertificationRun) -> dict[str, str]:
    """check id -> status, for the checks of ``run`` that did not pass cleanly."""
    return {c.check_id: c.status for c in run.checks.all() if c.status != "passed"}


def rules(run: CertificationRun, severity: str | None = None) -> set[str]:
    return {f["rule"] for c in run.checks.all() for f in c.findings if severity is None or f["severity"] == severity}
