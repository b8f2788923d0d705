"""The gate's findings and how they are shown: ``Change`` (one finding), ``Report`` (the text and JSON the
command prints) and ``render`` (the snapshot text).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

OPENAPI_FILE = "openapi.json"
EVENTS_FILE = "events.json"
POLICY_FILE = "policy.json"
BREAKING, INFO = "breaking", "info"
UPDATE_COMMAND = "python manage.py check_contracts --update"
_FIELD_IN_MESSAGE = re.compile(r"(?:[Ff]ield|requires) '([^']*)'")


@dataclass(frozen=True)
class Change:
    area: str  # "api", "events" or "policy"
    severity: str  # BREAKING or INFO
    where: str  # "POST /api/v1/orgs request body", "order.created v2", ...
    rule: str  # stable machine code: the compatibility checker's rules plus this module's (operation_removed, ...)
    message: str
    field: str = ""  # "$.name" when the change concerns one field of a payload
    pointer: str = ""  # JSON Pointer into the schema that rejects it (from the compatibility checker), for tooling

    @property
    def breaking(self) -> bool:
        return self.severity == BREAKING

    def line(self) -> str:
        head, at = "BREAKING" if self.breaking else "info", f"{self.field}: " if self.field else ""
        return f"{head} {self.area}: {self.where}: {at}{self.message} (rule {self.rule})"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Report:
    changes: list[Change]
    snapshot_dir: Path
    documents: dict[str, dict | None]  # file name -> what --update writes (None: it could not be built)
    outdated: list[str] = field(default_factory=list)  # snapshot files that differ from ``documents`` or are missing

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def info(self) -> list[Change]:
        return [c for c in self.changes if not c.breaking]

    @property
    def status(self) -> str:
        return "breaking" if self.breaking else "outdated" if self.outdated else "ok"

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "ok" else 1

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "snapshot_dir": str(self.snapshot_dir),
            "outdated": self.outdated,
            "breaking": [c.as_dict() for c in self.breaking],
            "info": [c.as_dict() for c in self.info],
        }

    def text(self) -> str:
        where = _shown_dir(self.snapshot_dir)
        if self.status == "ok":
            from apps.events.contracts.api_diff import _operations  # api_diff imports this module: import late

            api, events = self.documents.get(OPENAPI_FILE) or {}, self.documents.get(EVENTS_FILE) or {}
            policy = self.documents.get(POLICY_FILE) or {}
            actions, scopes = len(policy.get("actions") or {}), len(policy.get("scopes") or {})
            return (
                f"contracts OK: the API ({len(_operations(api))} operations), {len(events)} event types and "
                f"{actions} token actions ({scopes} scopes) match {where}/"
            )
        lines = []
        if self.breaking:
            n = len(self.breaking)
            lines.append(f"contracts FAILED: {n} breaking change{'s' if n != 1 else ''} against {where}/")
        else:
            lines.append(
                f"contracts FAILED: no breaking change, but {where}/ is out of date ({', '.join(self.outdated)})"
            )
        api_breaks = [c for c in self.breaking if c.area == "api"]
        if api_breaks:
            lines += ["", "== REST API: breaking changes"]
            lines.append(
                "   (requests: producer = what clients send per the snapshot, reader = the API now; "
                "responses: producer = the API now, reader = clients per the snapshot)"
            )
            lines += [c.line() for c in api_breaks]
        event_breaks = [c for c in self.breaking if c.area == "events"]
        if event_breaks:
            lines += ["", "== Event schemas: breaking changes"]
            lines += [c.line() for c in event_breaks]
        policy_breaks = [c for c in self.breaking if c.area == "policy"]
        if policy_breaks:
            lines += ["", "== Token scopes and roles: breaking changes"]
            lines += [c.line() for c in policy_breaks]
        if self.info:
            lines += ["", "== Not breaking (info)"]
            lines += [c.line() for c in self.info]
        if missing := [name for name in self.outdated if not (self.snapshot_dir / name).exists()]:
            lines += ["", f"No snapshot yet: {', '.join(f'{where}/{name}' for name in missing)}."]
        lines.append("")
        if self.breaking:
            lines.append(
                "Fix the code so existing clients, consumers and tokens keep working. If the break is intended and "
                "approved under the N-1 policy (docs/compatibility.md), record it with"
            )
            lines.append(f"  {UPDATE_COMMAND} --allow-breaking")
        else:
            lines.append("Record the changes (and review the diff of contracts/ in the PR):")
            lines.append(f"  {UPDATE_COMMAND}")
        return "\n".join(lines)


class ContractsError(Exception):
    pass


def render(document: dict) -> str:
    """The snapshot text: pretty-printed with sorted keys, so a change is a reviewable diff."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _shown_dir(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        return str(path)


def _field_of(message: str) -> str:
    """ "$.a.b" from a checker message naming field 'a.b', "$" for the value itself, "" when it names none."""
    found = _FIELD_IN_MESSAGE.search(message)
    if found:
        name = found.group(1)
        return "$" + ("" if not name else name if name.startswith("[") else "." + name)
    return "$" if re.search(r"\bthe value\b", message, re.IGNORECASE) else ""
