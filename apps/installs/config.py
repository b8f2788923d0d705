"""An installation's configuration: the manifest's ``config_schema`` (a JSON Schema of type object)
with its defaults applied, validated on the server, and its secrets kept apart.

A secret is a top-level property marked ``"writeOnly": true``. Its value is stored encrypted
(``apps.core.crypto``) in ``Installation.config_secrets_encrypted``, never in ``config``, and never
shown again: reads say ``{"set": true}`` or ``{"set": false}``. When an admin saves the form again,
a secret left out (or empty, or sent back as ``{"set": …}``) keeps the value it had.

The manifest check refuses ``writeOnly`` anywhere else in a config schema. A version uploaded before
that check may still mark a nested property ``writeOnly``: its value stays in ``config`` (it cannot
be moved without a migration of the stored data), but it is treated like a secret everywhere it
could be seen: masked in reads and audit entries, kept when sent back masked, never quoted in errors.

No error message quotes a value that holds a secret: an error about a secret, about the whole
configuration, or about an object that contains a secret gets a message naming only the rule broken.

The schema is the publisher's, so it is evaluated with ``apps.core.safe_jsonschema`` (regular
expressions under a time limit); the manifest check at upload already refused invalid schemas and
remote ``$ref``s, and anything that still fails to evaluate is answered as invalid input, never as
a server error.
"""

from __future__ import annotations

import copy
import json
import re

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apps.core import crypto
from apps.core.errors import ValidationFailed
from apps.core.safe_jsonschema import safe_validator

CONFIG_MAX_BYTES = 64 * 1024  # of the whole configuration as JSON, secrets included
_ERRORS_SHOWN = 20
# Control characters (tab, newline and carriage return apart) and lone surrogates: PostgreSQL's
# json refuses NUL and lone surrogates, and no setting needs the others.
_FORBIDDEN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_WRITE_ONLY_DEPTH = 32  # nested writeOnly properties looked for down to this depth


def config_schema(version) -> dict | None:
    """The version's config schema, or None when it takes no configuration."""
    schema = (version.manifest or {}).get("config_schema") if version is not None else None
    return schema if isinstance(schema, dict) else None


def _properties(schema: dict | None) -> dict:
    props = (schema or {}).get("properties")
    return props if isinstance(props, dict) else {}


def secret_fields(schema: dict | None) -> list[str]:
    """Names of the schema's secrets (top-level ``writeOnly`` properties), in schema order."""
    return [name for name, prop in _properties(schema).items() if isinstance(prop, dict) and prop.get("writeOnly")]


def nested_write_only_paths(schema: dict | None) -> list[tuple[str, ...]]:
    """Paths (below the top level, through ``properties``) of properties marked ``writeOnly``: only
    in versions uploaded before the manifest check refused them. Their values are masked like
    secrets (see the module's docstring)."""
    found: list[tuple[str, ...]] = []
    stack: list[tuple[tuple[str, ...], dict]] = [
        ((name,), prop) for name, prop in _properties(schema).items() if isinstance(prop, dict)
    ]
    while stack:
        path, node = stack.pop()
        if len(path) > _WRITE_ONLY_DEPTH:
            continue
        if len(path) > 1 and node.get("writeOnly") is True:
            found.append(path)
            continue  # everything below is masked with it
        if len(path) == 1 and node.get("writeOnly") is True:
            continue  # a secret: kept apart whole
        for name, prop in _properties(node).items():
            if isinstance(prop, dict):
                stack.append(((*path, name), prop))
    return sorted(found)


_ABSENT = object()


def _get(value, path: tuple[str, ...]):
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _ABSENT
        value = value[key]
    return value


def config_masked(schema: dict | None, config) -> dict:
    """``config`` with the value of every nested ``writeOnly`` property replaced by
    ``{"set": true}`` (a copy; top-level secrets are never in ``config``)."""
    paths = nested_write_only_paths(schema)
    if not paths or not isinstance(config, dict):
        return config if isinstance(config, dict) else {}
    masked = copy.deepcopy(config)
    for path in paths:
        parent = _get(masked, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent:
            parent[path[-1]] = {"set": True}
    return masked


def nested_secrets_changed(schema: dict | None, before, after) -> list[str]:
    """Dotted names of the nested ``writeOnly`` values that differ between two configurations."""
    return [".".join(p) for p in nested_write_only_paths(schema) if _get(before, p) != _get(after, p)]


def config_defaults(schema: dict | None) -> dict:
    """The configuration a fresh installation starts from: every top-level default (secrets have
    none: a default secret would be the publisher's, shared by every customer)."""
    secrets = set(secret_fields(schema))
    return {
        name: copy.deepcopy(prop["default"])
        for name, prop in _properties(schema).items()
        if isinstance(prop, dict) and "default" in prop and name not in secrets
    }


# --- secrets at rest --------------------------------------------------------------------------------
def secrets_decrypt(encrypted: str) -> dict:
    """The stored secrets ({name: value}); {} when none are stored or they cannot be read (a rotated
    SECRET_KEY): the admin then enters them again."""
    if not encrypted:
        return {}
    plain = crypto.decrypt(encrypted)
    if plain is None:
        return {}
    try:
        value = json.loads(plain)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def secrets_encrypt(values: dict) -> str:
    return crypto.encrypt(json.dumps(values, separators=(",", ":"), sort_keys=True)) if values else ""


# --- validation -------------------------------------------------------------------------------------
def _param(path) -> str:
    out = "config"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _keeps_secret(value) -> bool:
    """What a form or client sends for "leave this secret as it is"."""
    return value is None or value == "" or (isinstance(value, dict) and set(value) <= {"set"})


def forbidden_text_at(value) -> tuple | None:
    """The path of the first key or string (at any depth) holding a control character or a lone
    surrogate; None when there is none. Iterative: the depth is bounded only by the size limit."""
    stack: list[tuple[tuple, object]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if _FORBIDDEN_TEXT.search(node):
                return path
        elif isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str) and _FORBIDDEN_TEXT.search(key):
                    return path
                stack.append(((*path, key), item))
        elif isinstance(node, list):
            stack.extend(((*path, i), item) for i, item in enumerate(node))
    return None


def _keep_nested_secrets(schema: dict, merged: dict, stored_config) -> None:
    """A nested ``writeOnly`` value sent back masked, empty or left out keeps its stored value."""
    for path in nested_write_only_paths(schema):
        parent = _get(merged, path[:-1])
        if not isinstance(parent, dict):
            continue
        if path[-1] in parent and not _keeps_secret(parent[path[-1]]):
            continue
        stored = _get(stored_config, path)
        if stored is not _ABSENT:
            parent[path[-1]] = copy.deepcopy(stored)
        else:
            parent.pop(path[-1], None)


def config_validate(
    schema: dict | None, config, *, stored_secrets: dict | None = None, stored_config: dict | None = None
) -> tuple[dict, dict]:
    """Check ``config`` (what the admin submitted) against ``schema``; returns ``(public, secrets)``
    to store. Defaults fill what is missing; a secret left out keeps ``stored_secrets``' value (a
    nested ``writeOnly`` value, ``stored_config``'s).

    Raises ValidationFailed ``config_invalid`` whose ``param`` is the field's path
    (``config.threshold``), with every problem in ``details``."""
    if not isinstance(config, dict):
        raise ValidationFailed("The configuration must be a JSON object.", code="config_invalid", param="config")
    try:
        size = len(json.dumps(config, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise ValidationFailed("The configuration is not valid JSON.", code="config_invalid", param="config") from None
    if size > CONFIG_MAX_BYTES:
        raise ValidationFailed(
            f"The configuration is {size} bytes as JSON; at most {CONFIG_MAX_BYTES} are accepted.",
            code="config_invalid",
            param="config",
        )
    bad = forbidden_text_at(config)
    if bad is not None:
        raise ValidationFailed(
            "Text in the configuration may not hold control characters (such as NUL) or lone surrogates.",
            code="config_invalid",
            param=_param(bad),
        )
    if schema is None:
        if config:
            raise ValidationFailed(
                "This version of the extension takes no configuration.", code="config_invalid", param="config"
            )
        return {}, {}
    secret_names = secret_fields(schema)
    stored = {k: v for k, v in (stored_secrets or {}).items() if k in secret_names}
    merged = {**config_defaults(schema), **{k: v for k, v in config.items() if k not in secret_names}}
    if nested_write_only_paths(schema):
        merged = copy.deepcopy(merged)
        _keep_nested_secrets(schema, merged, stored_config or {})
    secrets: dict = {}
    for name in secret_names:
        if name in config and not _keeps_secret(config[name]):
            secrets[name] = config[name]
        elif name in stored:
            secrets[name] = stored[name]
    errors = _errors(schema, {**merged, **secrets}, set(secret_names))
    if errors:
        first = errors[0]
        message = "; ".join(f"{e['param']}: {e['message']}" for e in errors[:5])
        raise ValidationFailed(
            f"The configuration is not valid: {message}"[:1000],
            code="config_invalid",
            param=first["param"],
            details=errors[:_ERRORS_SHOWN],
        )
    return merged, secrets


def _secret_texts(instance: dict, secret_paths: list[tuple]) -> list[str]:
    """The text in secret values, to make sure no message quotes it."""
    found: list[str] = []
    stack = [_get(instance, path) for path in secret_paths]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if len(node) >= 4:  # shorter text is in every message, and no real secret
                found.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _error_message(error, path: list, secret_paths: list[tuple]) -> str:
    """What the admin reads about one error. ``error.message`` quotes the value at ``path``
    (``{…} should not be valid under …``), so it is used only where that value holds no secret."""
    rule = str(error.validator)[:40]
    depth = len(path)
    if any(tuple(path[: len(sp)]) == sp for sp in secret_paths):
        return "A value is required." if error.validator == "required" else "This secret is not valid."
    if error.validator == "required":
        return error.message[:300]  # "'x' is a required property": names, never values
    if not path:
        return f"The configuration as a whole does not satisfy the schema's '{rule}' rule."
    if any(tuple(sp[:depth]) == tuple(path) for sp in secret_paths):
        return f"This value does not satisfy the schema's '{rule}' rule."
    return error.message[:300]


def _errors(schema: dict, instance: dict, secret_names: set[str]) -> list[dict]:
    try:
        Draft202012Validator.check_schema(schema)
        found = sorted(safe_validator(schema).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    except (SchemaError, RecursionError, TypeError, ValueError, LookupError) as exc:
        # The schema itself cannot be evaluated (it passed the manifest check, so this is rare):
        # nothing can be saved against it, and that is the publisher's to fix.
        return [
            {"param": "config", "message": f"The extension's config schema cannot be evaluated ({type(exc).__name__})."}
        ]
    secret_paths = [(name,) for name in sorted(secret_names)] + nested_write_only_paths(schema)
    texts = _secret_texts(instance, secret_paths)
    out = []
    for error in found:
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            # "'x' is a required property" concerns the field, not the object.
            missing = [name for name in (error.validator_value or []) if name not in error.instance]
            path += missing[:1]
        message = _error_message(error, path, secret_paths)
        if any(text in message for text in texts):
            # Belt and braces: a secret's text turned up anyway (the schema quoting it, say).
            message = f"This value does not satisfy the schema's '{str(error.validator)[:40]}' rule."
        out.append({"param": _param(path), "message": message})
    return out


def config_migrate(schema: dict | None, config: dict) -> dict:
    """The configuration carried to another version (update or rollback): the values kept, the new
    version's defaults added for fields it introduces. Values the new schema rejects stay, and the
    admin sees them when saving the form next (an update never fails on them)."""
    return {**config_defaults(schema), **(config or {})}


def config_public(installation) -> dict:
    """The configuration as reads show it: values, and each secret as ``{"set": bool}``."""
    schema = config_schema(installation.version)
    names = secret_fields(schema)
    public = {k: v for k, v in config_masked(schema, installation.config or {}).items() if k not in names}
    if names:
        stored = secrets_decrypt(installation.config_secrets_encrypted)
        for name in names:
            public[name] = {"set": name in stored}
    return public
