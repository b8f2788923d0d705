"""The compatibility gate: the committed snapshots under ``contracts/`` against what the code and the shipped
event catalog produce now. ``manage.py check_contracts`` runs it; the policy is in docs/compatibility.md.

REST API (N-1): a client written against ``contracts/openapi.json`` keeps working. What old clients send (parameters,
request bodies) must still be accepted: ``is_subschema(old, new)``; what the server sends now (2xx responses) must be
accepted by old clients: ``is_subschema(new, old)``. Event schemas: published versions never change, new versions
obey their type's compatibility mode, and the mode is never loosened.

Every finding is a ``Change``: ``breaking`` ones fail the gate, ``info`` ones (additions, compatible edits) only
need the snapshot to be updated so the PR shows them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from django.conf import settings

from apps.events.catalog_sync import CATALOG_DIR, CatalogError, load_catalog
from apps.events.contracts.api_diff import (
    DOC_KEYWORDS,
    METHODS,
    SCHEMA_LISTS,
    SCHEMA_MAPS,
    SCHEMA_ONE,
    compare_openapi,
)
from apps.events.contracts.event_diff import DEFAULT_MODE, GUARANTEES, compare_events
from apps.events.contracts.report import (
    BREAKING,
    EVENTS_FILE,
    INFO,
    OPENAPI_FILE,
    UPDATE_COMMAND,
    Change,
    ContractsError,
    Report,
    _shown_dir,
    render,
)
from apps.events.services import fingerprint

__all__ = [
    "BREAKING",
    "DEFAULT_MODE",
    "DOC_KEYWORDS",
    "EVENTS_FILE",
    "GUARANTEES",
    "INFO",
    "METHODS",
    "OPENAPI_FILE",
    "SCHEMA_LISTS",
    "SCHEMA_MAPS",
    "SCHEMA_ONE",
    "SNAPSHOT_DIR",
    "UPDATE_COMMAND",
    "Change",
    "ContractsError",
    "Report",
    "check",
    "compare_events",
    "compare_openapi",
    "events_document",
    "openapi_document",
    "render",
    "write_snapshots",
]

SNAPSHOT_DIR = Path(settings.BASE_DIR) / "contracts"


# --- the documents ----------------------------------------------------------------------------------------------


def openapi_document() -> dict:
    """The API's OpenAPI document as plain JSON, generated from the code (no database, no request)."""
    from config.api import api

    return json.loads(render(api.get_openapi_schema()))


def events_document(catalog_dir: Path | str | None = None) -> dict:
    """{name: {compatibility, versions: {"1": {fingerprint, schema}}}} for every type of the shipped catalog."""
    out = {}
    for doc in load_catalog(Path(catalog_dir or CATALOG_DIR)):
        versions = {
            str(v["version"]): {"fingerprint": fingerprint(v["schema"]), "schema": v["schema"]} for v in doc["versions"]
        }
        out[doc["name"]] = {"compatibility": doc.get("compatibility", DEFAULT_MODE), "versions": versions}
    return json.loads(render(out))


def check(
    snapshot_dir: Path | str | None = None,
    catalog_dir: Path | str | None = None,
    *,
    today: dt.date | None = None,
    openapi: dict | None = None,
) -> Report:
    """Compare the current API document (or ``openapi``) and catalog with the snapshots in ``snapshot_dir``."""
    snapshot_dir = Path(snapshot_dir or SNAPSHOT_DIR)
    changes: list[Change] = []
    documents: dict[str, dict | None] = {OPENAPI_FILE: openapi if openapi is not None else openapi_document()}
    try:
        documents[EVENTS_FILE] = events_document(catalog_dir)
    except CatalogError as exc:
        documents[EVENTS_FILE] = None
        changes.append(Change("events", BREAKING, "catalog", "catalog_invalid", str(exc)))
    outdated = []
    for name in (OPENAPI_FILE, EVENTS_FILE):
        path, current = snapshot_dir / name, documents[name]
        if not path.exists():
            outdated.append(name)
            continue
        text = path.read_text(encoding="utf-8")
        if current is None or text != render(current):
            outdated.append(name)
        try:
            snapshot = json.loads(text)
        except json.JSONDecodeError as exc:
            changes.append(
                Change(_area(name), BREAKING, f"{_shown_dir(snapshot_dir)}/{name}", "snapshot_invalid", str(exc))
            )
            continue
        if current is not None and name == OPENAPI_FILE:
            changes += compare_openapi(snapshot, current, today=today)
        elif current is not None:
            changes += compare_events(snapshot, current)
    return Report(changes, snapshot_dir, documents, outdated)


def write_snapshots(report: Report) -> list[str]:
    """Write what ``report`` found to its snapshot directory; a line per file saying what happened."""
    if any(doc is None for doc in report.documents.values()):
        raise ContractsError("The event catalog could not be read; fix it before updating the snapshots.")
    report.snapshot_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, doc in report.documents.items():
        path, text = report.snapshot_dir / name, render(doc)
        shown = f"{_shown_dir(report.snapshot_dir)}/{name}"
        if path.exists() and path.read_text(encoding="utf-8") == text:
            lines.append(f"{shown}: already up to date")
            continue
        existed = path.exists()
        path.write_text(text, encoding="utf-8")
        area = [c for c in report.changes if c.area == _area(name)]
        counts = f"{sum(c.breaking for c in area)} breaking, {sum(not c.breaking for c in area)} info"
        lines.append(f"{shown}: {'updated' if existed else 'created'} ({counts})")
    return lines


def _area(name: str) -> str:
    return "api" if name == OPENAPI_FILE else "events"
