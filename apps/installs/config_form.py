"""The settings form generated from an extension's config schema (JSON Schema, ``type: object``).

The schema comes from a publisher's manifest, so nothing in it is trusted: titles and descriptions
are only ever rendered escaped, odd shapes fall back to a JSON text area for that one field, and
the size of the form is bounded. Submitted strings are parsed back to typed values here; whether the
values satisfy the schema (required, ranges, patterns) is the service's judgement
(``config_invalid``), whose errors :meth:`ConfigForm.add_error` puts next to the field they name.

Shapes and their inputs:

- ``string`` → text (``format: email`` → e-mail, ``uri`` → URL, long ``maxLength`` → text area);
  a top-level ``writeOnly`` property (a secret, see ``apps.installs.config``) → password input,
  never filled in with a value (any other top-level secret shape: a JSON area, also never filled);
- ``integer`` / ``number`` → number input with ``minimum``/``maximum``;
- ``boolean`` → checkbox; ``enum`` → select; an array of ``enum`` items → a group of checkboxes;
- an object with ``properties`` → a fieldset whose fields are named with dots (``smtp.host``);
- anything else → a JSON text area for that field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from apps.installs.config import forbidden_text_at

PREFIX = "config."  # input names: config.<dotted path>, apart from the page's other fields
MAX_FIELDS = 100  # fields beyond this are not offered (a form nobody could fill in anyway)
MAX_DEPTH = 4  # deeper objects become one JSON field
MAX_TEXT = 10_000  # characters in one text value
MAX_JSON = 50_000  # characters in one JSON value
MAX_LABEL = 200
MAX_HELP = 1_000
LONG_TEXT = 500  # a string whose maxLength exceeds this gets a text area
_INTEGER = re.compile(r"[+-]?\d{1,18}")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?")
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # NUL etc.: refused by PostgreSQL json
TRUE_VALUES = frozenset({"on", "true", "1", "yes"})


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class ConfigField:
    """One input of the form. ``path`` is the property's place in the config (``("smtp", "host")``)."""

    path: tuple[str, ...]
    kind: str  # text | textarea | email | url | password | integer | number | checkbox | select | multi | json
    label: str
    help: str = ""
    required: bool = False
    secret: bool = False
    choices: list[tuple[str, str]] = field(default_factory=list)  # (option value, shown label)
    choice_values: dict[str, Any] = field(default_factory=dict)  # option value -> the enum item
    attrs: dict[str, Any] = field(default_factory=dict)  # maxlength, min, max, step, pattern
    default: Any = MISSING
    input_name: str = ""
    input_id: str = ""
    # What the page shows: the value (text kinds), checked / selected options, a secret's state.
    value: str = ""
    checked: bool = False
    selected: list[str] = field(default_factory=list)
    secret_set: bool = False
    error: str = ""
    editing: bool = False  # the form edits stored settings (a secret shows whether it is set)

    is_group = False

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def hint(self) -> str:
        """The help under the input: the schema's description, then what the input takes."""
        parts = [self.help]
        if self.secret:
            parts.append("A secret: stored encrypted and never shown again.")
            if self.editing:
                parts.append("Leave empty to keep the stored value.")
        elif self.kind == "json":
            parts.append("Enter JSON.")
        low, high = self.attrs.get("min"), self.attrs.get("max")
        if low is not None and high is not None:
            parts.append(f"From {low} to {high}.")
        elif low is not None:
            parts.append(f"At least {low}.")
        elif high is not None:
            parts.append(f"At most {high}.")
        elif self.attrs.get("maxlength"):
            parts.append(f"At most {self.attrs['maxlength']} characters.")
        return " ".join(part for part in parts if part)

    @property
    def describedby(self) -> str:
        ids = [f"{self.input_id}-help" if self.hint else ""]
        ids.append(f"{self.input_id}-state" if self.secret and self.editing else "")
        ids.append(f"{self.input_id}-error" if self.error else "")
        return " ".join(i for i in ids if i)

    @property
    def blank_option(self) -> bool:
        """A select offers "not set" when the field is optional (and "" is not one of its values)."""
        return not self.required and "" not in self.choice_values


@dataclass
class ConfigGroup:
    """A nested object: a fieldset around its own fields."""

    path: tuple[str, ...]
    label: str
    help: str = ""
    required: bool = False
    items: list = field(default_factory=list)
    input_id: str = ""
    error: str = ""

    is_group = True

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def describedby(self) -> str:
        ids = [f"{self.input_id}-help" if self.help else "", f"{self.input_id}-error" if self.error else ""]
        return " ".join(i for i in ids if i)


def _text(value: Any, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _label(key: str, schema: dict) -> str:
    title = _text(schema.get("title"), MAX_LABEL)
    if title:
        return title
    words = re.sub(r"[_\-]+", " ", key).strip()
    return (words[:1].upper() + words[1:])[:MAX_LABEL] or key[:MAX_LABEL]


def _option(item: Any) -> str:
    """The <option> value of an enum item: strings as they are, anything else as JSON."""
    return item if isinstance(item, str) else json.dumps(item, sort_keys=True)


def _types(schema: dict) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list) and all(isinstance(k, str) for k in kind):
        return [k for k in kind if k != "null"]
    return []


_COMPOSED = ("oneOf", "anyOf", "allOf", "$ref", "$dynamicRef", "if", "not", "const")


def _scalar_enum(schema: dict) -> list | None:
    enum = schema.get("enum")
    if not isinstance(enum, list) or not enum or len(enum) > 200:
        return None
    if not all(item is None or isinstance(item, str | int | float | bool) for item in enum):
        return None
    return enum


def _kind(schema: dict, depth: int) -> str:
    if not isinstance(schema, dict):
        return "json"
    if _scalar_enum(schema) is not None:
        return "select"
    if any(key in schema for key in _COMPOSED):
        return "json"
    types = _types(schema)
    if len(types) != 1:
        return "json"
    kind = types[0]
    if kind == "string":
        # Secrets are top-level properties (apps.installs.config keeps those, and only those, apart).
        if schema.get("writeOnly") is True and depth == 1:
            return "password"
        fmt = schema.get("format")
        if fmt == "email":
            return "email"
        if fmt in ("uri", "url", "iri"):
            return "url"
        max_length = schema.get("maxLength")
        if isinstance(max_length, int) and not isinstance(max_length, bool) and max_length > LONG_TEXT:
            return "textarea"
        return "text"
    if kind in ("integer", "number", "boolean"):
        return "checkbox" if kind == "boolean" else kind
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, dict) and _scalar_enum(items) is not None:
            return "multi"
        return "json"
    if kind == "object":
        props = schema.get("properties")
        if isinstance(props, dict) and props and depth < MAX_DEPTH and schema.get("writeOnly") is not True:
            return "group"
        return "json"
    return "json"


def _number_attr(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _attrs(kind: str, schema: dict) -> dict:
    attrs: dict[str, Any] = {}
    if kind in ("text", "textarea", "email", "url", "password"):
        max_length = schema.get("maxLength")
        if isinstance(max_length, int) and not isinstance(max_length, bool) and 0 < max_length <= MAX_TEXT:
            attrs["maxlength"] = max_length
        pattern = schema.get("pattern")
        # HTML anchors a pattern, JSON Schema does not: only an anchored one means the same to both.
        if isinstance(pattern, str) and len(pattern) <= 500 and pattern.startswith("^") and pattern.endswith("$"):
            attrs["pattern"] = pattern[1:-1]
    elif kind in ("integer", "number"):
        for attr, keys in (("min", ("minimum", "exclusiveMinimum")), ("max", ("maximum", "exclusiveMaximum"))):
            for key in keys:
                value = _number_attr(schema.get(key))
                if value is not None:
                    attrs[attr] = value
                    break
        attrs["step"] = "1" if kind == "integer" else "any"
    return attrs


class ConfigForm:
    """The form for ``schema``: ``items`` (fields and fieldsets, in schema order) to render,
    ``fields`` (every input) to parse. ``values`` are the current settings (a config as
    ``config_public`` shows it: a secret is ``{"set": bool}``); without them, the schema's defaults.
    With ``data`` (the submitted form), the fields show what was submitted (secrets excepted) and
    :meth:`is_valid` parses it; ``editing`` means an empty secret keeps the stored one."""

    def __init__(self, schema: Any, *, values: dict | None = None, data=None, editing: bool = False):
        self.schema = schema if isinstance(schema, dict) else {}
        self.editing = editing
        self.data = data
        self.fields: list[ConfigField] = []
        self.groups: list[ConfigGroup] = []
        self.truncated = False
        self.errors: list[str] = []  # errors that belong to no field
        self.cleaned: dict = {}
        self._ids: set[str] = set()
        self._names: set[str] = set()
        self.items = self._build(self.schema, (), 0, self.schema.get("required"))
        self._fill(values if isinstance(values, dict) else None)

    # --- building -------------------------------------------------------------------------------
    def _unique(self, base: str, taken: set[str]) -> str:
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}~{n}"
        taken.add(candidate)
        return candidate

    def _build(self, schema: dict, path: tuple[str, ...], depth: int, required: Any) -> list:
        props = schema.get("properties")
        if not isinstance(props, dict):
            return []
        required_names = {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
        items: list = []
        for key, sub in props.items():
            if len(self.fields) >= MAX_FIELDS:
                self.truncated = True
                break
            if not isinstance(key, str) or not key or len(key) > MAX_LABEL:
                continue
            sub_schema = sub if isinstance(sub, dict) else {}
            sub_path = (*path, key)
            kind = _kind(sub, depth + 1)
            label = _label(key, sub_schema)
            help_text = _text(sub_schema.get("description"), MAX_HELP)
            dom = "cfg-" + re.sub(r"[^A-Za-z0-9_-]", "_", ".".join(sub_path).replace(".", "--"))
            if kind == "group":
                group = ConfigGroup(
                    path=sub_path,
                    label=label,
                    help=help_text,
                    required=key in required_names,
                    input_id=self._unique(dom, self._ids),
                )
                self.groups.append(group)  # before its own groups: document order, for the error summary
                group.items = self._build(sub_schema, sub_path, depth + 1, sub_schema.get("required"))
                items.append(group)
                continue
            secret = depth == 0 and sub_schema.get("writeOnly") is True
            if secret and kind != "password":
                kind = "json"  # a secret that is not a string: typed as JSON, still never shown
            f = ConfigField(
                path=sub_path,
                kind=kind,
                label=label,
                help=help_text,
                required=key in required_names,
                secret=secret,
                attrs=_attrs(kind, sub_schema),
                default=sub_schema.get("default", MISSING),
                input_name=self._unique(PREFIX + ".".join(sub_path), self._names),
                input_id=self._unique(dom, self._ids),
                editing=self.editing,
            )
            enum = _scalar_enum(sub_schema) if kind == "select" else None
            if kind == "multi":
                enum = _scalar_enum(sub_schema["items"])
            if enum is not None:
                for item in enum:
                    f.choices.append((_option(item), "—" if item is None else str(item)[:MAX_LABEL]))
                    f.choice_values[_option(item)] = item
            self.fields.append(f)
            items.append(f)
        return items

    @staticmethod
    def _lookup(values: dict | None, path: tuple[str, ...]) -> Any:
        node: Any = values
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return MISSING
            node = node[key]
        return node

    def _fill(self, values: dict | None) -> None:
        for f in self.fields:
            current = self._lookup(values, f.path) if values is not None else MISSING
            if f.secret:
                f.secret_set = isinstance(current, dict) and current.get("set") is True
            if self.data is not None:
                self._show_submitted(f)
            elif not f.secret:
                self._show_value(f, f.default if current is MISSING else current)

    def _show_value(self, f: ConfigField, value: Any) -> None:
        if value is MISSING:
            return
        if f.kind == "checkbox":
            f.checked = value is True
        elif f.kind == "select":
            f.selected = [_option(value)] if _option(value) in f.choice_values else []
        elif f.kind == "multi":
            f.selected = [_option(v) for v in value if _option(v) in f.choice_values] if isinstance(value, list) else []
        elif f.kind == "json":
            f.value = json.dumps(value, indent=2, ensure_ascii=False)[:MAX_JSON]
        elif isinstance(value, bool) or value is None:
            f.value = "" if value is None else json.dumps(value)
        elif isinstance(value, str | int | float):
            f.value = str(value)[:MAX_TEXT]

    def _show_submitted(self, f: ConfigField) -> None:
        if f.secret:
            return  # never echoed back, not even after an error
        if f.kind == "checkbox":
            f.checked = self.data.get(f.input_name, "").strip().lower() in TRUE_VALUES
        elif f.kind == "multi":
            f.selected = [v for v in self.data.getlist(f.input_name) if v in f.choice_values]
        elif f.kind == "select":
            raw = self.data.get(f.input_name, "")
            f.selected = [raw] if raw in f.choice_values else []
        else:
            f.value = _FORBIDDEN.sub("", self.data.get(f.input_name, ""))[: MAX_JSON if f.kind == "json" else MAX_TEXT]

    # --- parsing --------------------------------------------------------------------------------
    def is_valid(self) -> bool:
        """Parse the submitted data into ``cleaned`` (typed values, nested by path; fields left
        empty are left out so the schema's defaults apply); False when a value cannot be read."""
        assert self.data is not None, "is_valid needs data"
        cleaned: dict = {}
        ok = True
        for f in self.fields:
            try:
                value = self._parse(f)
            except ValueError as exc:
                f.error = str(exc)
                ok = False
                continue
            if value is MISSING:
                continue
            node = cleaned
            for key in f.path[:-1]:
                node = node.setdefault(key, {})
            node[f.path[-1]] = value
        self.cleaned = cleaned
        return ok

    def _parse(self, f: ConfigField) -> Any:
        data = self.data
        if f.kind == "checkbox":
            return data.get(f.input_name, "").strip().lower() in TRUE_VALUES
        if f.kind == "multi":
            raw_values = data.getlist(f.input_name)
            if len(raw_values) > len(f.choices) or any(v not in f.choice_values for v in raw_values):
                raise ValueError("Choose only among the options shown.")
            chosen = set(raw_values)
            return [f.choice_values[value] for value, _ in f.choices if value in chosen]
        raw = data.get(f.input_name, "")
        if not isinstance(raw, str):
            raise ValueError("Enter a value.")
        limit = MAX_JSON if f.kind == "json" else MAX_TEXT
        if len(raw) > limit:
            raise ValueError(f"This is too long: at most {limit:,} characters.")
        if _FORBIDDEN.search(raw):
            raise ValueError("This contains a control character that is not allowed.")
        if f.kind == "select":
            if raw == "" and "" not in f.choice_values:
                return MISSING
            if raw not in f.choice_values:
                raise ValueError("Choose one of the options.")
            return f.choice_values[raw]
        if f.kind in ("integer", "number", "email", "url", "json"):
            raw = raw.strip()
        if raw == "":
            return MISSING  # unset: the default applies, a required field is reported; a secret is kept
        if f.kind == "integer":
            if not _INTEGER.fullmatch(raw):
                raise ValueError("Enter a whole number.")
            return int(raw)
        if f.kind == "number":
            if len(raw) > 40 or not _NUMBER.fullmatch(raw):
                raise ValueError("Enter a number.")
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError("Enter a number.")
            return int(number) if _INTEGER.fullmatch(raw) else number
        if f.kind == "json":
            return _parse_json(raw)
        return raw

    # --- errors ---------------------------------------------------------------------------------
    def field_for(self, param: str | None) -> ConfigField | ConfigGroup | None:
        """The field (or fieldset) an error's ``param`` names: ``tag_prefix``, ``smtp.host``,
        ``$.smtp.host``, ``config.smtp.host``, ``/smtp/host``, ``tags[2]`` all work."""
        by_name: dict[str, ConfigField | ConfigGroup] = {f.name: f for f in self.groups}
        by_name.update({f.name: f for f in self.fields})
        raw = param.strip() if isinstance(param, str) else ""
        for name in (raw, normalise_param(param)):  # a field may itself be called "config"
            candidate = name
            while candidate:
                if candidate in by_name:
                    return by_name[candidate]
                candidate = candidate.rpartition(".")[0]
        return None

    def add_error(self, param: str | None, message: str) -> bool:
        """Show ``message`` next to the field ``param`` names (True), else above the form (False)."""
        target = self.field_for(param)
        if target is None:
            if message not in self.errors:
                self.errors.append(message)
            return False
        if not target.error:
            target.error = message
        return True

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(f.error for f in self.fields) or any(g.error for g in self.groups)

    @property
    def first_error_id(self) -> str:
        for f in self.fields:
            if f.error:
                return f.input_id
        for g in self.groups:
            if g.error:
                return g.input_id
        return ""


def _parse_json(raw: str) -> Any:
    def refuse_constant(name: str):
        raise ValueError(name)

    try:
        value = json.loads(raw, parse_constant=refuse_constant)
    except (ValueError, RecursionError):
        raise ValueError('Enter valid JSON (for example "text", 12, true, [1, 2] or {"key": "value"}).')
    # "\u0000" escapes get past the check of the raw text: look at every key and string parsed.
    if forbidden_text_at(value) is not None:
        raise ValueError("This contains a control character (such as \\u0000) that is not allowed.")
    return value


def normalise_param(param: str | None) -> str:
    """A config error's ``param`` as a dotted field path."""
    if not isinstance(param, str):
        return ""
    name = param.strip()
    for prefix in ("$", "config_schema", "config"):
        if name == prefix:
            return ""
        for sep in (".", "/", "["):
            if name.startswith(prefix + sep):
                name = name[len(prefix) :]
                break
    name = re.sub(r"\[['\"]([^'\"\]]*)['\"]\]", r".\1", name)  # ['key'] → .key
    name = re.sub(r"\[\d*\]", "", name)  # array positions name the array's field
    name = name.replace("/", ".").strip(".")
    return re.sub(r"\.{2,}", ".", name)
