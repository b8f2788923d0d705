"""The event-schema half of the gate: the committed catalog snapshot against the shipped catalog. Published
versions never change, new versions obey their type's compatibility mode, the mode is never loosened, and every
version is one the registry accepts (``events_document`` attaches ``validate_event_schema``'s problems).
"""

from __future__ import annotations

from apps.events.compat import Mode, check_compatibility
from apps.events.contracts.report import BREAKING, INFO, Change, _field_of

DEFAULT_MODE = "FULL_TRANSITIVE"  # what catalog_sync registers when a catalog file names no mode
# A mode's promises; loosening = dropping one of them.
GUARANTEES = {
    Mode.NONE: frozenset(),
    Mode.BACKWARD: frozenset({"backward"}),
    Mode.BACKWARD_TRANSITIVE: frozenset({"backward", "backward, every version"}),
    Mode.FORWARD: frozenset({"forward"}),
    Mode.FORWARD_TRANSITIVE: frozenset({"forward", "forward, every version"}),
    Mode.FULL: frozenset({"backward", "forward"}),
    Mode.FULL_TRANSITIVE: frozenset({"backward", "forward", "backward, every version", "forward, every version"}),
}


def _mode(value) -> Mode | None:
    try:
        return Mode(str(value).upper())
    except ValueError:
        return None


def compare_events(old: dict, new: dict) -> list[Change]:
    """Changes from the snapshot ``old`` to the catalog's ``new`` (both in ``events_document`` form)."""
    changes: list[Change] = []

    def add(severity, where, rule, message, field="", pointer=""):
        changes.append(Change("events", severity, where, rule, message, field, pointer))

    for name in sorted(old):
        before, after = old[name], new.get(name)
        if after is None:
            why = "The event type is gone from the catalog: subscribed consumers would stop receiving it. Deprecate it."
            add(BREAKING, name, "event_type_removed", why)
            continue
        old_mode, new_mode = _mode(before.get("compatibility")), _mode(after.get("compatibility"))
        mode = new_mode
        if new_mode is None:
            add(BREAKING, name, "mode_invalid", f"Unknown compatibility mode {after.get('compatibility')!r}.")
            mode = old_mode
        elif old_mode is not None and not GUARANTEES[old_mode] <= GUARANTEES[new_mode]:
            why = f"Compatibility mode loosened from {old_mode} to {new_mode}: later versions could break consumers."
            add(BREAKING, name, "mode_loosened", why)
            mode = old_mode  # new versions are still held to what consumers were promised
        elif old_mode != new_mode:
            add(INFO, name, "mode_changed", f"Compatibility mode tightened from {old_mode} to {new_mode}.")
        published, current = before.get("versions") or {}, after.get("versions") or {}
        for number in sorted(published, key=int):
            if number not in current:
                why = f"Published version {number} is gone from the catalog; published schema versions never change."
                add(BREAKING, f"{name} v{number}", "version_removed", why)
            elif current[number].get("fingerprint") != published[number].get("fingerprint"):
                why = (
                    f"Published version {number} was edited; published schema versions never change: restore it and "
                    f"add version {len(current) + 1} instead."
                )
                add(BREAKING, f"{name} v{number}", "version_changed", why)
        _new_versions(name, published, current, mode or Mode(DEFAULT_MODE), add)
    for name in sorted(new):
        versions = new[name].get("versions") or {}
        for number in sorted(versions, key=int):
            for p in versions[number].get("problems") or []:
                why = f"{p.get('message')} (the registry refuses this version: {p.get('rule')})"
                add(BREAKING, f"{name} v{number}", "version_invalid", why, p.get("path", ""))
    for name in sorted(new.keys() - old.keys()):
        mode = _mode(new[name].get("compatibility"))
        count = len(new[name].get("versions") or {})
        add(INFO, name, "event_type_added", f"New event type ({count} version{'s' if count != 1 else ''}, {mode}).")
        if mode is None:
            add(BREAKING, name, "mode_invalid", f"Unknown compatibility mode {new[name].get('compatibility')!r}.")
        _new_versions(name, {}, new[name].get("versions") or {}, mode or Mode(DEFAULT_MODE), add, quiet=True)
    return sorted(changes, key=lambda c: not c.breaking)


def _new_versions(name: str, published: dict, current: dict, mode: Mode, add, quiet: bool = False) -> None:
    """Each version not yet published, checked under ``mode`` against every earlier one (the published text where
    there is one)."""
    for number in sorted(current.keys() - published.keys(), key=int):
        earlier = [
            (int(k), (published.get(k) or current[k]).get("schema"))
            for k in sorted(current.keys() | published.keys(), key=int)
            if int(k) < int(number)
        ]
        problems = check_compatibility(current[number].get("schema"), earlier, mode)
        for p in problems:
            why = f"{p.message} ({p.direction} check against v{p.against_version}, {mode})"
            add(BREAKING, f"{name} v{number}", p.rule, why, _field_of(p.message), p.path)
        previous = str(int(number) - 1)
        latest = (published.get(previous) or current.get(previous) or {}).get("fingerprint")
        if latest is not None and latest == current[number].get("fingerprint"):
            why = f"The schema is identical to v{previous}: the registry refuses it (event_schema_unchanged)."
            add(BREAKING, f"{name} v{number}", "version_unchanged", why)
        elif not problems and not quiet and not current[number].get("problems"):
            add(INFO, f"{name} v{number}", "version_added", f"New version, compatible under {mode}.")
