"""Inputs made from tool input schemas (apps/certification/instances.py), and time-bounded
validation of publishers' schemas (apps/core/safe_jsonschema.py): valid when possible, quick always."""

from __future__ import annotations

import time

import pytest
from jsonschema import Draft202012Validator

from apps.certification.instances import valid_inputs
from apps.core.safe_jsonschema import safe_validator


def test_examples_come_first_then_minimal_and_full_instances():
    schema = {
        "type": "object",
        "required": ["sku"],
        "properties": {
            "sku": {"type": "string", "minLength": 3},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
            "at": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1},
        },
        "additionalProperties": False,
        "examples": [{"sku": "ABC-1", "quantity": 2}],
    }
    found = valid_inputs(schema)
    assert found[0] == {"sku": "ABC-1", "quantity": 2}
    assert {"sku": "aaa"} in found
    assert any(set(item) == {"sku", "quantity", "at", "tags"} for item in found)
    assert all(Draft202012Validator(schema).is_valid(item) for item in found)


def test_refs_one_of_and_all_of_are_followed():
    schema = {
        "$defs": {"money": {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number", "exclusiveMinimum": 0}}}},  # noqa: E501
        "allOf": [{"$ref": "#/$defs/money"}, {"required": ["currency"], "properties": {"currency": {"const": "EUR"}}}],
    }  # fmt: skip
    found = valid_inputs(schema)
    assert found and all(item["currency"] == "EUR" and item["amount"] > 0 for item in found)


def test_a_schema_that_cannot_be_satisfied_this_way_gives_nothing():
    assert valid_inputs({"type": "string", "pattern": "^[0-9]{4}-X$"}) == []
    assert valid_inputs({"not": {}}) == []
    assert valid_inputs({"type": "object", "minProperties": "x"}) == []  # not a valid schema


@pytest.mark.parametrize(
    "schema",
    [
        # exponential: 20 items of 20 items of … through a recursive $ref
        {"$defs": {"a": {"type": "array", "minItems": 20, "items": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"},
        # an object whose 8 properties each hold the object again
        {"$defs": {"o": {"type": "object", "properties": {f"p{i}": {"$ref": "#/$defs/o"} for i in range(8)}}},
         "$ref": "#/$defs/o"},
        # a $ref chain longer than the depth cap
        {"$defs": {f"d{i}": {"$ref": f"#/$defs/d{i + 1}"} for i in range(500)}, "$ref": "#/$defs/d0"},
        # huge sizes
        {"type": "string", "minLength": 10**9},
        {"type": "array", "minItems": 10**9, "items": {"type": "string", "minLength": 10**6}},
    ],
)  # fmt: skip
def test_hostile_schemas_finish_quickly(schema):
    started = time.perf_counter()
    found = valid_inputs(schema)
    assert time.perf_counter() - started < 2.0
    assert all(len(repr(item)) <= 64 * 1024 for item in found)


def test_catastrophic_patterns_are_bounded_in_time():
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}, "t": {"type": "string", "pattern": "(x+x+)+y"}},
        "patternProperties": {"^(b|bb)+$": {"type": "string"}},
        "additionalProperties": False,
        "examples": [{"s": "a" * 40 + "!", "t": "x" * 40}, {"b" * 40 + "!": "z"}],
    }
    started = time.perf_counter()
    assert valid_inputs(schema) == [{}]  # the hostile examples are refused, in bounded time
    errors = list(safe_validator(schema).iter_errors({"s": "a" * 5000 + "!", "t": "x" * 5000}))
    assert errors and time.perf_counter() - started < 2.0


def test_the_safe_validator_agrees_with_jsonschema_on_ordinary_schemas():
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "patternProperties": {"^x-": {"type": "integer"}},
        "additionalProperties": {"type": "boolean"},
    }
    for instance in ({"code": "EUR"}, {"code": "eur"}, {"x-a": 1}, {"x-a": "1"}, {"other": True}, {"other": 1}):
        assert safe_validator(schema).is_valid(instance) == Draft202012Validator(schema).is_valid(instance), instance
    closed = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    assert not safe_validator(closed).is_valid({"a": 1, "b": 2})
