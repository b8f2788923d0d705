"""The compatibility gate: the committed snapshots under ``contracts/`` against what the code and the shipped
event catalog produce now. ``manage.py check_contracts`` runs it; the policy is in docs/compatibility.md.

REST API (N-1): a client written against ``contracts/openapi.json`` keeps working. What old clients send (parameters,
request bodies) must still be accepted: ``is_subschema(old, new)``; what the server sends now (2xx responses) must be
accepted by old clients: ``is_subschema(new, old)``. Event schemas: published versions never change, new versions
obey their type's compatibility mode, and the mode is never loosened.

Token scopes and roles (``contracts/policy.json``, from ``apps.orgs.policy``): a token or member that may do an
action today still may. Removing an action, changing its scope, taking a role from it or removing a scope is
breaking; additions are info.

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
    POLICY_FILE,
    UPDATE_COMMAND,
    Change,
    ContractsError,
    Report,
    _shown_dir,
    render,
)
from apps.events.services import fingerprint, validate_event_schema

__all__ = [
    "BREAKING",
    "DEFAULT_MODE",
    "DOC_KEYWORDS",
    "EVENTS_FILE",
    "GUARANTEES",
    "INFO",
    "METHODS",
    "OPENAPI_FILE",
    "POLICY_FILE",
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
    "compare_policy",
    "events_document",
    "openapi_document",
    "policy_document",
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
    """{name: {compatibility, versions: {"1": {fingerprint, schema}}}} for every type of the shipped catalog.

    A version the registry would refuse (``validate_event_schema``: not a valid JSON Schema, not an object, an
    example failing the schema, …) also carries ``problems``: [{path, rule, message}]; valid ones have no such key."""
    out = {}
    for doc in load_catalog(Path(catalog_dir or CATALOG_DIR)):
        versions = {}
        for v in doc["versions"]:
            schema = v.get("schema")
            entry = {"fingerprint": fingerprint(schema), "schema": schema}
            if problems := validate_event_schema(schema, v.get("examples", [])):
                entry["problems"] = problems
            versions[str(v["version"])] = entry
        out[doc["name"]] = {"compatibility": doc.get("compatibility", DEFAULT_MODE), "versions": versions}
    return json.loads(render(out))


def policy_document() -> dict:
    """{actions: {name: {scope, roles: [sorted]}}, scopes: {name: description}} from ``apps.orgs.policy``."""
    from apps.orgs import policy

    actions = {
        name: {"scope": str(scope), "roles": sorted(str(role) for role in roles)}
        for name, (scope, roles) in policy.ACTIONS.items()
    }
    return json.loads(render({"actions": actions, "scopes": {str(k): str(v) for k, v in policy.SCOPES.items()}}))


def compare_policy(old: dict, new: dict) -> list[Change]:
    """Changes from the snapshot ``old`` to the current ``new`` (both in ``policy_document`` form), breaking first:
    what an issued token or a member's role may do today must stay allowed."""
    changes: list[Change] = []

    def add(severity, where, rule, message):
        changes.append(Change("policy", severity, where, rule, message))

    old_actions, new_actions = old.get("actions") or {}, new.get("actions") or {}
    for name in sorted(old_actions.keys() | new_actions.keys()):
        before, after, where = old_actions.get(name), new_actions.get(name), f"action '{name}'"
        if after is None:
            why = "The action was removed: tokens and roles that may do it today would be refused."
            add(BREAKING, where, "action_removed", why)
            continue
        if before is None:
            why = f"New action (scope {after.get('scope')}, roles {', '.join(after.get('roles') or []) or 'none'})."
            add(INFO, where, "action_added", why)
            continue
        if before.get("scope") != after.get("scope"):
            why = (
                f"Its scope changed from {before.get('scope')} to {after.get('scope')}: tokens issued with "
                f"{before.get('scope')} would be refused."
            )
            add(BREAKING, where, "action_scope_changed", why)
        old_roles, new_roles = set(before.get("roles") or []), set(after.get("roles") or [])
        for role in sorted(old_roles - new_roles):
            add(BREAKING, where, "role_removed", f"The role {role} may no longer do it.")
        for role in sorted(new_roles - old_roles):
            add(INFO, where, "role_added", f"The role {role} may now do it.")
    old_scopes, new_scopes = old.get("scopes") or {}, new.get("scopes") or {}
    for name in sorted(old_scopes.keys() | new_scopes.keys()):
        where = f"scope '{name}'"
        if name not in new_scopes:
            add(BREAKING, where, "scope_removed", "The scope was removed: tokens issued with it would lose it.")
        elif name not in old_scopes:
            add(INFO, where, "scope_added", "New scope.")
        elif old_scopes[name] != new_scopes[name]:
            add(INFO, where, "scope_description_changed", f"Description changed to {new_scopes[name]!r}.")
    return sorted(changes, key=lambda c: not c.breaking)


def check(
    snapshot_dir: Path | str | None = None,
    catalog_dir: Path | str | None = None,
    *,
    today: dt.date | None = None,
    openapi: dict | None = None,
    policy: dict | None = None,
) -> Report:
    """Compare the current API document (or ``openapi``), catalog and token policy (or ``policy``) with the
    snapshots in ``snapshot_dir``."""
    snapshot_dir = Path(snapshot_dir or SNAPSHOT_DIR)
    changes: list[Change] = []
    documents: dict[str, dict | None] = {OPENAPI_FILE: openapi if openapi is not None else openapi_document()}
    try:
        documents[EVENTS_FILE] = events_document(catalog_dir)
    except CatalogError as exc:
        documents[EVENTS_FILE] = None
        changes.append(Change("events", BREAKING, "catalog", "catalog_invalid", str(exc)))
    documents[POLICY_FILE] = policy if policy is not None else policy_document()
    outdated = []
    for name in (OPENAPI_FILE, EVENTS_FILE, POLICY_FILE):
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
        elif current is not None and name == EVENTS_FILE:
            changes += compare_events(snapshot, current)
        elif current is not None:
            changes += compare_policy(snapshot, current)
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
    return {OPENAPI_FILE: "api", EVENTS_FILE: "events", POLICY_FILE: "policy"}[name]
