"""The platform's starting event catalog, kept as files under ``catalog/`` (one per event type) and
loaded into the registry by ``manage.py sync_event_catalog`` (and by ``seed_demo``).

Loading goes through the same services as the staff API, so each new version is checked against
its type's compatibility mode; a version already in the registry is never changed."""

from __future__ import annotations

import json
from pathlib import Path

from apps.events import services
from apps.events.models import EventType

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"


class CatalogError(Exception):
    pass


def load_catalog(directory: Path = CATALOG_DIR) -> list[dict]:
    """Every event type file, parsed:
    {name, description, compatibility, versions: [{version, schema, examples, changelog}]}."""
    types = []
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CatalogError(f"{path.name}: not readable JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("name") != path.stem:
            raise CatalogError(f"{path.name}: the file must hold an object whose 'name' is {path.stem!r}")
        versions = doc.get("versions")
        if not isinstance(versions, list) or not versions:
            raise CatalogError(f"{path.name}: 'versions' must be a non-empty list")
        for i, v in enumerate(versions, start=1):
            if not isinstance(v, dict) or v.get("version") != i:
                raise CatalogError(f"{path.name}: versions must be numbered 1, 2, 3 … in order (entry {i})")
        types.append(doc)
    return types


def sync_catalog(*, platform_org=None, directory: Path = CATALOG_DIR) -> list[str]:
    """Register what the files hold and the registry lacks; return a line per change."""
    changes = []
    for doc in load_catalog(directory):
        event_type = EventType.objects.filter(name=doc["name"]).first()
        versions = doc["versions"]
        if event_type is None:
            first = versions[0]
            event_type = services.event_type_create(
                principal=None,
                platform_org=platform_org,
                name=doc["name"],
                description=doc.get("description", ""),
                schema=first["schema"],
                examples=first.get("examples", []),
                compatibility=doc.get("compatibility", "FULL_TRANSITIVE"),
                changelog=first.get("changelog", ""),
            )
            changes.append(f"registered {doc['name']} v1")
        existing = {s.version: s.fingerprint for s in event_type.schemas.all()}
        for v in versions:
            number = v["version"]
            fingerprint = services.fingerprint(v["schema"])
            if number in existing:
                if existing[number] != fingerprint:
                    raise CatalogError(
                        f"{doc['name']} v{number} in the catalog differs from the registered version; "
                        "published schema versions never change: add a new version instead."
                    )
                continue
            if number != max(existing, default=0) + 1:
                raise CatalogError(f"{doc['name']}: v{number} cannot follow v{max(existing, default=0)}")
            services.event_schema_register(
                principal=None,
                platform_org=platform_org,
                event_type=event_type,
                schema=v["schema"],
                examples=v.get("examples", []),
                changelog=v.get("changelog", ""),
            )
            existing[number] = fingerprint
            changes.append(f"registered {doc['name']} v{number}")
    return changes
