"""The REST API half of the gate: the committed OpenAPI snapshot against the document the code generates now,
judged for N-1 clients (see the package docstring).

What is compared: operations, parameters (schema, required, serialization), request bodies, responses (every
documented status code; bodies and headers of the non-error ones, the shared error envelope of 4xx/5xx), security,
security schemes and base URLs (``servers``). Anything else that changes or goes away outside documentation fields
(``DOC_FIELDS``, ``x-*``) is ``unchecked_change``, breaking: the gate cannot prove old clients keep working, so a
reviewer must look (an addition there is ``unchecked_added``, info). Only a difference confined to documentation (or
to what the checks prove equal, such as a renamed component of the same shape) is ``documentation_changed``.
"""

from __future__ import annotations

import datetime as dt
import re

from apps.core import clock
from apps.events.compat import Incompatibility, is_subschema
from apps.events.compat.reading import _same
from apps.events.contracts.openapi_model import (
    DOC_KEYWORDS,
    METHODS,
    SCHEMA_LISTS,
    SCHEMA_MAPS,
    SCHEMA_ONE,
    _as_sent,
    _deref,
    _fields,
    _operations,
    _security,
    _serialization,
    _server_urls,
    _servers,
    _shape,
    _unchecked,
    _without_null,
)
from apps.events.contracts.report import BREAKING, INFO, Change, _field_of, render

# The document's vocabulary is re-exported: ``apps.events.contracts`` imports it from here.
__all__ = ["DOC_KEYWORDS", "METHODS", "SCHEMA_LISTS", "SCHEMA_MAPS", "SCHEMA_ONE", "compare_openapi"]


def compare_openapi(old: dict, new: dict, *, today: dt.date | None = None) -> list[Change]:
    """Changes from the snapshot ``old`` to the current document ``new``, breaking ones for N-1 clients first."""
    return _ApiDiff(old, new, today or clock.now().date()).run()


def _date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _is_error(code) -> bool:
    return str(code)[:1] in ("4", "5") or str(code) == "default"


def _is_open(requirements: list) -> bool:
    return not requirements or any(not r for r in requirements)


def _satisfies(old_alternative: dict, new_alternative: dict) -> bool:
    """A client meeting ``old_alternative`` (schemes and scopes) also meets ``new_alternative``."""
    return all(
        name in old_alternative and set(scopes or []) <= set(old_alternative[name] or [])
        for name, scopes in new_alternative.items()
    )


def _names(alternatives: list) -> str:
    return " or ".join(" + ".join(sorted(a)) for a in alternatives if a) or "nothing"


class _ApiDiff:
    def __init__(self, old: dict, new: dict, today: dt.date):
        self.old, self.new, self.today = old, new, today
        self.old_sent, self.new_sent = _as_sent(old), _as_sent(new)  # the roots responses are compared in
        self.old_ops_sent, self.new_ops_sent = _operations(self.old_sent), _operations(self.new_sent)
        self.changes: list[Change] = []
        self.error_problems: dict[tuple, list[str]] = {}
        self._same_roots: dict[str, bool] = {}

    def _roots_same(self, which: str, a: dict, b: dict) -> bool:
        if which not in self._same_roots:
            self._same_roots[which] = _same(a, b)
        return self._same_roots[which]

    def request_subschema(self, writer, reader) -> list[Incompatibility]:
        """What old clients send (old document) is still accepted (new document)."""
        same = self._roots_same("requests", self.old, self.new)
        return is_subschema(writer, reader, writer_root=self.old, reader_root=self.new, same_roots=same)

    def response_subschema(self, writer, reader) -> list[Incompatibility]:
        """What the new code sends (as sent) is still accepted by old clients."""
        same = self._roots_same("responses", self.new_sent, self.old_sent)
        return is_subschema(writer, reader, writer_root=self.new_sent, reader_root=self.old_sent, same_roots=same)

    def add(self, severity: str, where: str, rule: str, message: str, field: str = "", pointer: str = "") -> None:
        self.changes.append(Change("api", severity, where, rule, message, field, pointer))

    def add_problems(self, where: str, problems: list[Incompatibility]) -> None:
        for p in problems:
            self.add(BREAKING, where, p.rule, p.message, _field_of(p.message), p.path)

    def run(self) -> list[Change]:
        old_ops, new_ops = _operations(self.old), _operations(self.new)
        for key in sorted(old_ops.keys() | new_ops.keys(), key=lambda k: (k[0], METHODS.index(k[1]))):
            if key not in new_ops:
                self.removed(*old_ops[key][:2], key[1])
            elif key not in old_ops:
                path, op, _item = new_ops[key]
                self.add(INFO, f"{key[1].upper()} {path}", "operation_added", "New operation.")
            else:
                self.operation(key, old_ops[key], new_ops[key])
        self.security_schemes()
        self.error_envelope()
        self.servers("servers", self.old.get("servers"), self.new.get("servers"))
        self.unchecked()
        if not self.changes and render(self.old) != render(self.new):
            why = (
                "The document changed without changing the contract (descriptions, summaries, tags, examples, order…)."
            )
            self.add(INFO, "document", "documentation_changed", why)
        return sorted(self.changes, key=lambda c: not c.breaking)

    def removed(self, path: str, op: dict, method: str) -> None:
        where, sunset = f"{method.upper()} {path}", _date(op.get("x-sunset"))
        if op.get("deprecated") is True and sunset is not None and sunset <= self.today:
            self.add(INFO, where, "removed_after_sunset", f"Removed after its sunset date {sunset.isoformat()}.")
        elif op.get("deprecated") is True and sunset is not None:
            why = f"Removed before its sunset date {sunset.isoformat()}: a deprecated operation stays until then."
            self.add(BREAKING, where, "operation_removed", why)
        elif op.get("deprecated") is True:
            why = "Removed, but the snapshot gives it no x-sunset date: deprecate it with a sunset date first."
            self.add(BREAKING, where, "operation_removed", why)
        else:
            why = "The operation was removed: clients calling it would fail. Deprecate it with a sunset date first."
            self.add(BREAKING, where, "operation_removed", why)

    def operation(self, key, old_entry, new_entry) -> None:
        (old_path, old_op, old_item), (new_path, new_op, new_item) = old_entry, new_entry
        where = f"{key[1].upper()} {new_path}"
        renamed = dict(zip(re.findall(r"\{([^}]*)\}", old_path), re.findall(r"\{([^}]*)\}", new_path), strict=False))
        if old_path != new_path:
            names = ", ".join(f"{{{a}}} → {{{b}}}" for a, b in renamed.items() if a != b)
            self.add(INFO, where, "path_parameter_renamed", f"Path parameter renamed ({names}); URLs are unchanged.")
        if old_op.get("operationId") != new_op.get("operationId"):
            why = f"operationId changed from {old_op.get('operationId')!r} to {new_op.get('operationId')!r} "
            self.add(INFO, where, "operation_id_changed", why + "(generated SDKs rename the method).")
        if (old_op.get("deprecated") is True) != (new_op.get("deprecated") is True):
            if new_op.get("deprecated") is True:
                why = f"Deprecated (sunset {new_op.get('x-sunset') or 'not given'})."
            else:
                why = "No longer deprecated."
            self.add(INFO, where, "deprecation_changed", why)
        self.parameters(where, renamed, (old_path, old_op, old_item), (new_path, new_op, new_item))
        self.request_body(where, old_op, new_op)
        self.responses(where, key)
        self.security(where, old_op, new_op)
        if any("servers" in obj for obj in (old_op, old_item, new_op, new_item)):  # else the document's apply
            old_servers, new_servers = _servers(self.old, old_op, old_item), _servers(self.new, new_op, new_item)
            self.servers(f"{where} servers", old_servers, new_servers)

    # parameters

    def _parameters(self, doc: dict, op: dict, item: dict, renamed: dict | None = None) -> dict:
        found = {}
        for param in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
            param = _deref(doc, param)
            if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                continue
            place, name = param.get("in"), param["name"]
            name = name.lower() if place == "header" else (renamed or {}).get(name, name) if place == "path" else name
            found[(place, name)] = param
        return found

    @staticmethod
    def _param_schema(param: dict):
        if "schema" in param:
            return param["schema"]
        for media in (param.get("content") or {}).values():
            if isinstance(media, dict) and "schema" in media:
                return media["schema"]
        return None

    def parameters(self, where: str, renamed: dict, old_entry, new_entry) -> None:
        old = self._parameters(self.old, old_entry[1], old_entry[2], renamed)
        new = self._parameters(self.new, new_entry[1], new_entry[2])

        def required(p):
            return p.get("in") == "path" or p.get("required") is True

        for (place, name), param in old.items():
            at = f"{where} {place} parameter '{name}'"
            if (place, name) not in new:
                why = "Parameter removed: old clients may still send it and the API now ignores it."
                self.add(INFO, at, "parameter_removed", why)
                continue
            other = new[(place, name)]
            if required(other) and not required(param):
                self.add(BREAKING, at, "parameter_now_required", "The optional parameter is now required.")
            before, after = _serialization(param), _serialization(other)
            for key in before:
                if before[key] != after[key]:
                    why = f"Its serialization changed ({key}: {before[key]!r} → {after[key]!r})."
                    self.add(BREAKING, at, "parameter_style_changed", why)
            writer, reader = self._param_schema(param), self._param_schema(other)
            if reader is None:
                continue
            writer = {} if writer is None else writer
            problems = self.request_subschema(_without_null(writer), _without_null(reader))
            self.add_problems(at, problems)
            if not problems and _shape(writer, self.old) != _shape(reader, self.new):
                self.add(INFO, at, "parameter_changed", "The parameter's schema changed and accepts every old value.")
        for (place, name), param in new.items():
            if (place, name) not in old:
                at = f"{where} {place} parameter '{name}'"
                if required(param):
                    self.add(BREAKING, at, "parameter_added_required", "New required parameter: old clients omit it.")
                else:
                    self.add(INFO, at, "parameter_added", "New optional parameter.")

    # request bodies

    def request_body(self, where: str, old_op: dict, new_op: dict) -> None:
        at = f"{where} request body"
        old, new = _deref(self.old, old_op.get("requestBody")), _deref(self.new, new_op.get("requestBody"))
        old = old if isinstance(old, dict) else None
        new = new if isinstance(new, dict) else None
        old_required, new_required = (
            bool(old and old.get("required") is True),
            bool(new and new.get("required") is True),
        )
        if new_required and not old_required:
            why = (
                "A request body is now required; old clients send none." if old is None else "The body is now required."
            )
            self.add(BREAKING, at, "body_now_required", why)
        if old is not None and new is None:
            self.add(INFO, at, "body_removed", "The operation no longer reads a body; old clients' bodies are ignored.")
        if old is None and new is not None and not new_required:
            self.add(INFO, at, "body_added", "New optional request body.")
        if old is None or new is None:
            return
        old_content, new_content = old.get("content") or {}, new.get("content") or {}
        for ctype, media in old_content.items():
            if ctype not in new_content:
                why = f"The content type {ctype} is no longer accepted (now: {', '.join(new_content) or 'none'})."
                self.add(BREAKING, at, "request_content_type_changed", why)
                continue
            writer = media.get("schema", {}) if isinstance(media, dict) else {}
            reader = new_content[ctype].get("schema") if isinstance(new_content[ctype], dict) else None
            if reader is None:
                continue
            problems = self.request_subschema(writer, reader)
            self.add_problems(at, problems)
            old_fields, new_fields = _fields(writer, self.old), _fields(reader, self.new)
            for name in sorted(new_fields - old_fields):
                self.add(INFO, at, "field_added", "New field.", name)
            for name in sorted(old_fields - new_fields):
                self.add(
                    INFO, at, "field_removed", "Field removed: old clients may still send it; it is ignored.", name
                )
            if not problems and old_fields == new_fields and _shape(writer, self.old) != _shape(reader, self.new):
                self.add(INFO, at, "schema_changed", "The body schema changed and accepts everything old clients send.")
        for ctype in new_content.keys() - old_content.keys():
            self.add(INFO, at, "request_content_type_added", f"The content type {ctype} is now accepted too.")

    # responses

    def responses(self, where: str, key) -> None:
        old_responses = self.old_ops_sent[key][1].get("responses") or {}
        new_responses = self.new_ops_sent[key][1].get("responses") or {}
        for code, response in old_responses.items():
            at = f"{where} response {code}"
            old, new = _deref(self.old_sent, response), _deref(self.new_sent, new_responses.get(code))
            if new is None:  # any documented status: clients may branch on a 304 or a 404 as much as on a 200
                why = f"The {code} response is gone (now: {', '.join(sorted(map(str, new_responses))) or 'none'})."
                self.add(BREAKING, at, "response_removed", why)
            elif _is_error(code) and isinstance(old, dict) and isinstance(new, dict):
                self.error_response(f"{code} of {where}", old, new)
            elif isinstance(old, dict) and isinstance(new, dict):
                self.response(at, old, new)
        for code in new_responses:
            if code not in old_responses:
                self.add(INFO, f"{where} response {code}", "response_added", f"New {code} response.")

    def response(self, at: str, old: dict, new: dict) -> None:
        old_content, new_content = old.get("content") or {}, new.get("content") or {}
        for ctype, media in old_content.items():
            if ctype not in new_content:
                why = f"The response is no longer sent as {ctype} (now: {', '.join(new_content) or 'no body'})."
                self.add(BREAKING, at, "response_content_type_changed", why)
                continue
            reader = media.get("schema") if isinstance(media, dict) else None
            writer = new_content[ctype].get("schema") if isinstance(new_content[ctype], dict) else None
            if reader is None:
                continue  # clients had no schema to rely on
            if writer is None:
                self.add(BREAKING, at, "response_schema_removed", "The response no longer has a schema to check.")
                continue
            problems = self.response_subschema(writer, reader)
            self.add_problems(at, problems)
            old_fields, new_fields = _fields(reader, self.old_sent), _fields(writer, self.new_sent)
            for name in sorted(new_fields - old_fields):
                self.add(INFO, at, "field_added", "New field.", name)
            if (
                not problems
                and old_fields == new_fields
                and _shape(reader, self.old_sent) != _shape(writer, self.new_sent)
            ):
                self.add(INFO, at, "schema_changed", "The response schema changed; old clients accept what is sent.")
        for ctype in new_content.keys() - old_content.keys():
            self.add(INFO, at, "response_content_type_added", f"The response may also be sent as {ctype}.")
        self.response_headers(at, old, new)

    def response_headers(self, at: str, old: dict, new: dict) -> None:
        """Documented response headers (names case-insensitive): clients may read every one the snapshot lists."""

        def headers(doc, response):
            found = response.get("headers") if isinstance(response.get("headers"), dict) else {}
            return {name.lower(): _deref(doc, h) for name, h in found.items() if name.lower() != "content-type"}

        old_headers, new_headers = headers(self.old_sent, old), headers(self.new_sent, new)
        for name, header in old_headers.items():
            where, other = f"{at} header '{name}'", new_headers.get(name)
            header = header if isinstance(header, dict) else {}
            if not isinstance(other, dict):
                why = "The response header is no longer documented: clients reading it may get nothing."
                self.add(BREAKING, where, "response_header_removed", why)
                continue
            if header.get("required") is True and other.get("required") is not True:
                why = "The response header was always sent and now may be missing."
                self.add(BREAKING, where, "response_header_optional", why)
            reader, writer = self._param_schema(header), self._param_schema(other)
            if reader is None:
                continue
            writer = {} if writer is None else writer
            problems = self.response_subschema(writer, reader)
            self.add_problems(where, problems)
            if not problems and _shape(reader, self.old_sent) != _shape(writer, self.new_sent):
                self.add(INFO, where, "response_header_changed", "The header's schema changed; old clients accept it.")
        for name in sorted(new_headers.keys() - old_headers.keys()):
            self.add(INFO, f"{at} header '{name}'", "response_header_added", "New response header.")

    def error_response(self, label: str, old: dict, new: dict) -> None:
        """4xx/5xx bodies are the one shared error envelope: compared, but reported once per problem."""
        for ctype, media in (old.get("content") or {}).items():
            reader = media.get("schema") if isinstance(media, dict) else None
            other = (new.get("content") or {}).get(ctype)
            writer = other.get("schema") if isinstance(other, dict) else None
            if reader is None or writer is None:
                continue
            for p in self.response_subschema(writer, reader):
                self.error_problems.setdefault((p.rule, p.message, p.path), []).append(label)

    def error_envelope(self) -> None:
        for (rule, message, pointer), labels in self.error_problems.items():
            more = f" and {len(labels) - 1} more" if len(labels) > 1 else ""
            self.add(BREAKING, f"error envelope ({labels[0]}{more})", rule, message, _field_of(message), pointer)

    # security

    def security(self, where: str, old_op: dict, new_op: dict) -> None:
        at = f"{where} security"
        old, new = _security(self.old, old_op), _security(self.new, new_op)
        if _is_open(old) and not _is_open(new):
            self.add(BREAKING, at, "security_added", f"The operation was open and now requires {_names(new)}.")
        elif not _is_open(old) and _is_open(new):
            self.add(INFO, at, "security_removed", "The operation no longer requires authentication.")
        elif not _is_open(old):
            lost = [a for a in old if not any(_satisfies(a, b) for b in new)]
            if lost:
                why = f"Clients authenticating with {_names(lost)} would be refused: it now requires {_names(new)}."
                self.add(BREAKING, at, "security_changed", why)

    # base URLs

    def servers(self, where: str, old, new) -> None:
        before, after = _server_urls(old), _server_urls(new)
        for url in sorted(before - after):
            now = ", ".join(sorted(after)) or "none"
            why = f"The base URL {url} is gone (now: {now}): clients calling it would fail."
            self.add(BREAKING, where, "server_removed", why)
        for url in sorted(after - before):
            self.add(INFO, where, "server_added", f"New base URL {url}.")

    # the rest

    def unchecked(self) -> None:
        """Differences outside what the checks above compare and outside documentation: not provably safe."""
        old, new = _unchecked(self.old), _unchecked(self.new)
        for key in sorted(old.keys() & new.keys(), key=str):
            (_label, before), (label, after) = old[key], new[key]
            changed = sorted(k for k in before if k not in after or render({"v": before[k]}) != render({"v": after[k]}))
            added = sorted(after.keys() - before.keys())
            if changed:
                why = (
                    f"Changed in a part the gate does not check ({', '.join(changed)}): it cannot prove old clients "
                    "keep working. Review the diff; if it is harmless, record it with --allow-breaking."
                )
                self.add(BREAKING, label, "unchecked_change", why)
            if added:
                why = f"New {', '.join(added)} (not checked by the gate: an addition, review it)."
                self.add(INFO, label, "unchecked_added", why)

    def security_schemes(self) -> None:
        def schemes(doc):
            found = (doc.get("components") or {}).get("securitySchemes")
            return found if isinstance(found, dict) else {}

        old, new = schemes(self.old), schemes(self.new)
        for name, scheme in old.items():
            if name in new and _shape(scheme, self.old) != _shape(new[name], self.new):
                why = "The security scheme changed: credentials clients send today may no longer be accepted."
                self.add(BREAKING, f"security scheme '{name}'", "security_scheme_changed", why)
