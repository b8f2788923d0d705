"""An installation's configuration: the manifest's ``config_schema`` (a JSON Schema of type object)
with its defaults applied, validated on the server, and its secrets kept apart.

A secret is a top-level property marked ``"writeOnly": true``. Its value is stored encrypted
(``apps.core.crypto``) in ``Installation.config_secrets_encrypted``, never in ``config``, and never
shown again: reads say ``{"set": true}`` or ``{"set": false}``. When an admin saves the form again,
a secret left out (or empty, or sent back as ``{"set": …}``) keeps the value it had.

The schema is the publisher's, so it is evaluated with ``apps.core.safe_jsonschema`` (regular
expressions under a time limit); the manifest check at upload already refused invalid schemas and
remote ``$ref``s, and anything that still fails to evaluate is answered as invalid input, never as
a server error.
"""

from __future__ import annotations

import copy
import json

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apps.core import crypto
from apps.core.errors import ValidationFailed
from apps.core.safe_jsonschema import safe_validator

CONFIG_MAX_BYTES = 64 * 1024  # of the whole configuration as JSON, secrets included
_ERRORS_SHOWN = 20


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


def config_validate(schema: dict | None, config, *, stored_secrets: dict | None = None) -> tuple[dict, dict]:
    """Check ``config`` (what the admin submitted) against ``schema``; returns ``(public, secrets)``
    to store. Defaults fill what is missing; a secret left out keeps ``stored_secrets``' value.

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
    if schema is None:
        if config:
            raise ValidationFailed(
                "This version of the extension takes no configuration.", code="config_invalid", param="config"
            )
        return {}, {}
    secret_names = secret_fields(schema)
    stored = {k: v for k, v in (stored_secrets or {}).items() if k in secret_names}
    merged = {**config_defaults(schema), **{k: v for k, v in config.items() if k not in secret_names}}
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
    out = []
    for error in found:
        path = list(error.absolute_path)
        if not path and error.validator == "required":
            # "'x' is a required property" concerns the field, not the object.
            missing = [name for name in (error.validator_value or []) if name not in instance]
            path = missing[:1]
        if path and path[0] in secret_names:
            message = "A value is required." if error.validator == "required" else "This secret is not valid."
        else:
            message = error.message[:300]
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
    public = {k: v for k, v in (installation.config or {}).items() if k not in names}
    if names:
        stored = secrets_decrypt(installation.config_secrets_encrypted)
        for name in names:
            public[name] = {"set": name in stored}
    return public
