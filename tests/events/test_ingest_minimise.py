"""Payload minimisation (``x-plaza-scope``): what an installation receives, what the registry
accepts as an annotation, and the shipped catalog's personal-data versions."""

from __future__ import annotations

import copy

import pytest

from apps.events.catalog_sync import sync_catalog
from apps.events.minimise import annotated_paths, annotation_problems, payload_for_scopes
from apps.events.models import EventSchema
from apps.extensions import scopes as scope_vocabulary
from tests.orgs.test_authorization import assert_error

PII = "pii:read"

SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "email": {"type": "string", "x-plaza-scope": PII},
        "customer": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string", "x-plaza-scope": PII},
                "address": {
                    "type": "object",
                    "x-plaza-scope": PII,
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                },
            },
        },
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "gift_note_to": {"type": "string", "x-plaza-scope": PII}},
            },
        },
        "billing": {"$ref": "#/$defs/contact"},
        "shipping": {"$ref": "#/$defs/contact", "x-plaza-scope": PII},
    },
    "$defs": {
        "contact": {"type": "object", "properties": {"phone": {"type": "string", "x-plaza-scope": PII}, "country": {}}}
    },
}

PAYLOAD = {
    "order_id": "o1",
    "email": "ada@example.com",
    "customer": {"id": "c1", "name": "Ada", "address": {"street": "1 Main St", "city": "Paris"}},
    "line_items": [{"sku": "A", "gift_note_to": "Bob"}, {"sku": "B"}],
    "billing": {"phone": "+33 1", "country": "FR"},
    "shipping": {"phone": "+33 2", "country": "FR"},
    "unknown_extra": {"kept": True},
}


def test_without_the_scope_personal_fields_are_left_out_at_every_depth():
    minimal = payload_for_scopes(SCHEMA, PAYLOAD, {"events:read:order.created"})
    assert minimal == {
        "order_id": "o1",
        "customer": {"id": "c1"},
        "line_items": [{"sku": "A"}, {"sku": "B"}],
        "billing": {"country": "FR"},
        "unknown_extra": {"kept": True},
    }


def test_with_the_scope_everything_travels_and_the_input_is_untouched():
    before = copy.deepcopy(PAYLOAD)
    full = payload_for_scopes(SCHEMA, PAYLOAD, {PII})
    assert full == PAYLOAD and full is not PAYLOAD
    full["customer"]["id"] = "changed"
    minimal = payload_for_scopes(SCHEMA, PAYLOAD, set())
    minimal["line_items"][0]["sku"] = "changed"
    assert before == PAYLOAD


def test_an_event_schema_row_and_odd_inputs():
    row = EventSchema(schema=SCHEMA)
    assert "email" not in payload_for_scopes(row, PAYLOAD, set())
    assert payload_for_scopes(SCHEMA, {"customer": "not an object", "line_items": "nope"}, set()) == {
        "customer": "not an object",
        "line_items": "nope",
    }
    assert payload_for_scopes({"type": "object"}, PAYLOAD, set()) == PAYLOAD
    cyclic = {"type": "object", "properties": {"a": {"$ref": "#"}}, "x": 1}
    assert payload_for_scopes(cyclic, {"a": {"a": {"a": 1}}}, set()) == {"a": {"a": {"a": 1}}}


def test_several_scopes_on_one_path_all_apply():
    schema = {"type": "object", "properties": {"p": {"$ref": "#/$defs/d", "x-plaza-scope": PII}},
              "$defs": {"d": {"type": "string", "x-plaza-scope": "kv:read"}}}  # fmt: skip
    assert payload_for_scopes(schema, {"p": 1}, {PII}) == {}
    assert payload_for_scopes(schema, {"p": 1}, {PII, "kv:read"}) == {"p": 1}


def test_an_annotation_under_a_ref_sibling_is_honoured_too():
    # given a property described twice: by the node's own properties and by its $ref's definition,
    # where only the definition marks a nested field as personal data
    schema = {
        "$ref": "#/$defs/base",
        "type": "object",
        "properties": {"customer": {"type": "object"}},
        "$defs": {
            "base": {
                "properties": {
                    "customer": {
                        "type": "object",
                        "properties": {"email": {"type": "string", "x-plaza-scope": PII}},
                    }
                }
            }
        },
    }
    assert annotation_problems(schema) == []  # the registry accepts it, so it must be honoured
    payload = {"customer": {"email": "a@example.com", "id": "c-1"}}
    assert payload_for_scopes(schema, payload, {"events:read:x"}) == {"customer": {"id": "c-1"}}
    assert payload_for_scopes(schema, payload, {PII}) == payload


def test_annotated_paths_are_listed():
    assert annotated_paths(SCHEMA) == [
        ("$.billing.phone", PII),
        ("$.customer.address", PII),
        ("$.customer.name", PII),
        ("$.email", PII),
        ("$.line_items[*].gift_note_to", PII),
        ("$.shipping", PII),
        ("$.shipping.phone", PII),
    ]


# --- the registry --------------------------------------------------------------------------------
def test_the_registry_accepts_annotations_where_they_count():
    assert annotation_problems(SCHEMA) == []


POSITION = "scope_annotation_position"
OBJ = {"type": "object"}
MISPLACED = [
    ({**OBJ, "properties": {"a": {"x-plaza-scope": "pii:write"}}}, "properties.a", "scope_annotation"),
    ({**OBJ, "properties": {"a": {"x-plaza-scope": 5}}}, "properties.a", "scope_annotation"),
    ({**OBJ, "x-plaza-scope": PII}, "$.schema.x-plaza-scope", POSITION),
    ({**OBJ, "anyOf": [{"properties": {"a": {"x-plaza-scope": PII}}}]}, "anyOf[0]", POSITION),
    ({**OBJ, "additionalProperties": {"x-plaza-scope": PII}}, "additionalProperties", POSITION),
    ({**OBJ, "properties": {"l": {"type": "array", "items": {"x-plaza-scope": PII}}}}, "items", POSITION),
    # a definition used both by a property (honoured) and as array items (not): refused
    (
        {**OBJ, "properties": {"a": {"$ref": "#/$defs/d"}, "l": {"items": {"$ref": "#/$defs/d"}}},
         "$defs": {"d": {"x-plaza-scope": PII}}},
        "$defs.d",
        POSITION,
    ),
    ({**OBJ, "$defs": {"unused": {"x-plaza-scope": PII}}}, "$defs.unused", POSITION),
]  # fmt: skip


@pytest.mark.parametrize("schema, where, rule", MISPLACED)
def test_the_registry_refuses_annotations_that_would_not_be_honoured(schema, where, rule):
    problems = annotation_problems(schema)
    assert len(problems) == 1 and problems[0]["rule"] == rule and where in problems[0]["path"], problems


@pytest.fixture
def staff(globex, api_for, db):
    sync_catalog()
    globex.org.is_platform = True
    globex.org.save(update_fields=["is_platform"])
    return api_for(globex.org, role="developer")


def test_a_new_version_adding_a_restriction_is_compatible_and_a_bad_annotation_is_refused(staff):
    schema = copy.deepcopy(EventSchema.objects.get(event_type__name="order.created", version=1).schema)
    example = copy.deepcopy(EventSchema.objects.get(event_type__name="order.created", version=1).examples)
    schema["properties"]["note"]["x-plaza-scope"] = "nonsense"
    error = assert_error(
        staff.call("POST", "event-types/order.created/versions", {"schema": schema, "examples": example}), 400
    )
    assert error["code"] == "event_schema_invalid"
    assert error["details"][0]["path"] == "$.schema.properties.note.x-plaza-scope"
    # under FULL_TRANSITIVE: the annotation is no change to the payload's shape
    schema["properties"]["note"]["x-plaza-scope"] = PII
    res = staff.call("POST", "event-types/order.created/versions", {"schema": schema, "examples": example})
    assert res.status_code == 201, res.content
    # and taking it away again is compatible too
    del schema["properties"]["note"]["x-plaza-scope"]
    schema["properties"]["note"]["description"] = "Free text."
    assert (
        staff.call("POST", "event-types/order.created/versions", {"schema": schema, "examples": example}).status_code
        == 201
    )


# --- the catalog and the scope vocabulary --------------------------------------------------------
def test_the_catalog_marks_customer_personal_data_in_a_new_version(db):
    sync_catalog()
    v1 = EventSchema.objects.get(event_type__name="customer.created", version=1)
    v2 = EventSchema.objects.get(event_type__name="customer.created", version=2)
    assert annotated_paths(v1.schema) == []
    assert annotated_paths(v2.schema) == [("$.email", PII), ("$.name", PII)]
    example = v2.examples[0]
    assert payload_for_scopes(v2, example, {"events:read:customer.created"}) == {
        "customer_id": "cus_42",
        "marketing_consent": False,
        "created_at": "2026-10-30T12:00:00Z",
    }
    assert sync_catalog() == []


def test_pii_read_is_a_scope_extensions_may_ask_for():
    scope = scope_vocabulary.parse(PII)
    assert "personal data" in scope.describe() and scope.resource == "pii"
    assert any(entry["scope"] == PII for entry in scope_vocabulary.vocabulary())
    changes = scope_vocabulary.diff(["events:read:customer.created"], ["events:read:customer.created", PII])
    assert [(c.scope, c.change) for c in changes] == [(PII, "added")]
    assert scope_vocabulary.needs_consent(changes)
    with pytest.raises(scope_vocabulary.UnknownScope):
        scope_vocabulary.parse("pii:read:email")
