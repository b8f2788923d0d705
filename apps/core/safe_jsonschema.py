"""JSON Schema validation of schemas written by someone else (publishers' tool and config schemas).

jsonschema evaluates ``pattern``, ``patternProperties`` and ``additionalProperties`` with Python's
``re``, where a pattern such as ``^(a+)+$`` backtracks exponentially: one hostile schema would pin
a worker. This validator evaluates those keywords with the ``regex`` module (which avoids most
catastrophic backtracking) under a time limit per match; a pattern that runs out of time counts as
not matching and is reported as such."""

from __future__ import annotations

import functools

import regex
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

MATCH_TIMEOUT_SECONDS = 0.05


@functools.lru_cache(maxsize=512)
def _compile(pattern: str):
    try:
        return regex.compile(pattern)
    except (regex.error, TypeError, ValueError, OverflowError, RecursionError):
        return None


def search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches somewhere in ``text``; None when it is not a usable pattern or
    ran out of time."""
    compiled = _compile(pattern)
    if compiled is None:
        return None
    try:
        return compiled.search(text, timeout=MATCH_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        return None


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string"):
        found = search(pattern, instance)
        if found is None:
            yield ValidationError(f"The pattern {pattern!r} could not be evaluated in time (or is not valid).")
        elif not found:
            yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [k for k in instance if k not in properties and not any(search(p, k) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        yield ValidationError(f"Additional properties are not allowed ({', '.join(map(repr, sorted(extras)))}).")


SafeValidator = validators.extend(
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


def safe_validator(schema: dict) -> Draft202012Validator:
    """A draft 2020-12 validator (with format checks) whose regular expressions are time-bounded.
    The caller checks the schema itself first (``Draft202012Validator.check_schema``)."""
    return SafeValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
