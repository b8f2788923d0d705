"""The JSON Schema compatibility checker (apps/events/compat/): verdicts per mode, precise reports, robustness.

Pure Python: no database. Semantics are described in docs/compatibility.md.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry

from apps.events.compat import Incompatibility, Mode, check_compatibility, is_subschema

OK, NO = True, False


def obj(properties: dict, required=(), **extra) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), **extra}


STR, INT, NUM, NULL = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "null"}
ORDER = obj({"id": STR, "total": NUM}, ["id"])
DEFS_INT = {"$defs": {"Money": INT}, "type": "object", "properties": {"total": {"$ref": "#/$defs/Money"}}}
DEFS_NUM = {"$defs": {"Money": NUM}, "type": "object", "properties": {"total": {"$ref": "#/$defs/Money"}}}
CUSTOMER = obj({"customer": obj({"email": STR})})
CUSTOMER_EMAIL = obj({"customer": obj({"email": {"type": "string", "format": "email"}})})
CLOSED_A = obj({"a": STR}, additionalProperties=False)
CLOSED_AB = obj({"a": STR, "b": STR}, additionalProperties=False)
MAP_OF_STR, MAP_OF_INT = obj({}, additionalProperties=STR), obj({}, additionalProperties=INT)
NEEDS_B, SHORT = obj({"b": STR}, ["b"]), {"maxLength": 3}

# (change, old schema, new schema, BACKWARD, FORWARD, FULL, NONE)
TABLE = [
    ("add optional field", ORDER, obj({"id": STR, "total": NUM, "note": STR}, ["id"]), OK, OK, OK, OK),
    ("add required field", ORDER, obj({"id": STR, "total": NUM, "cur": STR}, ["id", "cur"]), NO, OK, NO, OK),
    ("remove optional field", ORDER, obj({"id": STR}, ["id"]), OK, OK, OK, OK),
    ("remove required field", ORDER, obj({"total": NUM}), OK, NO, NO, OK),
    ("make optional field required", ORDER, obj({"id": STR, "total": NUM}, ["id", "total"]), NO, OK, NO, OK),
    ("make required field optional", ORDER, obj({"id": STR, "total": NUM}), OK, NO, NO, OK),
    ("narrow a type (number to integer)", obj({"total": NUM}), obj({"total": INT}), NO, OK, NO, OK),
    ("widen a type (integer to number)", obj({"total": INT}), obj({"total": NUM}), OK, NO, NO, OK),
    ("change a type (string to integer)", obj({"code": STR}), obj({"code": INT}), NO, NO, NO, OK),
    ("add a type alternative", obj({"note": STR}), obj({"note": {"type": ["string", "null"]}}), OK, NO, NO, OK),
    ("nullable via anyOf (pydantic)", obj({"n": STR}), obj({"n": {"anyOf": [STR, NULL]}}), OK, NO, NO, OK),
    ("widen an enum", {"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, OK, NO, NO, OK),
    ("narrow an enum", {"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]}, NO, OK, NO, OK),
    ("add an enum to a free string", STR, {"type": "string", "enum": ["a", "b"]}, NO, OK, NO, OK),
    ("remove an enum from a string", {"type": "string", "enum": ["a"]}, STR, OK, NO, NO, OK),
    ("add a property to a closed object", CLOSED_A, CLOSED_AB, OK, NO, NO, OK),
    ("open object becomes closed", obj({"a": STR}), CLOSED_A, OK, OK, OK, OK),
    ("closed object gains a field and opens", CLOSED_A, obj({"a": STR, "b": STR}), OK, NO, NO, OK),
    ("additionalProperties schema changed", MAP_OF_STR, MAP_OF_INT, NO, NO, NO, OK),
    ("raise a minimum", {"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 1}, NO, OK, NO, OK),
    ("lower a maximum", {"type": "number", "maximum": 10}, {"type": "number", "maximum": 5}, NO, OK, NO, OK),
    ("add an exclusive minimum", NUM, {"type": "number", "exclusiveMinimum": 0}, NO, OK, NO, OK),
    ("same integer bound spelled differently", {**INT, "exclusiveMinimum": 0}, {**INT, "minimum": 1}, OK, OK, OK, OK),
    ("relax maxLength", {"type": "string", "maxLength": 10}, {"type": "string", "maxLength": 20}, OK, NO, NO, OK),
    ("add minLength", STR, {"type": "string", "minLength": 1}, NO, OK, NO, OK),
    ("change a pattern", {"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^b"}, NO, NO, NO, OK),
    ("change format", {"type": "string", "format": "email"}, {"type": "string", "format": "uri"}, NO, NO, NO, OK),
    ("add multipleOf", NUM, {"type": "number", "multipleOf": 0.5}, NO, OK, NO, OK),
    ("nested object field gains a format", CUSTOMER, CUSTOMER_EMAIL, NO, OK, NO, OK),
    ("nested field removed", CUSTOMER, obj({"customer": obj({})}), OK, OK, OK, OK),
    ("array items narrowed", {"type": "array", "items": NUM}, {"type": "array", "items": INT}, NO, OK, NO, OK),
    ("array items widened", {"type": "array", "items": INT}, {"type": "array", "items": NUM}, OK, NO, NO, OK),
    ("add minItems", {"type": "array", "items": STR}, {"type": "array", "items": STR, "minItems": 1}, NO, OK, NO, OK),
    ("add uniqueItems", {"type": "array"}, {"type": "array", "uniqueItems": True}, NO, OK, NO, OK),
    ("prefixItems position narrowed", {"prefixItems": [NUM]}, {"prefixItems": [INT]}, NO, OK, NO, OK),
    ("$ref target widened in $defs", DEFS_INT, DEFS_NUM, OK, NO, NO, OK),
    ("$ref target narrowed in $defs", DEFS_NUM, DEFS_INT, NO, OK, NO, OK),
    ("inline schema moved behind $ref", obj({"total": INT}), DEFS_INT, OK, OK, OK, OK),
    ("anyOf branch added", {"anyOf": [STR, INT]}, {"anyOf": [STR, INT, NULL]}, OK, NO, NO, OK),
    ("anyOf branch removed", {"anyOf": [STR, INT]}, {"anyOf": [STR]}, NO, OK, NO, OK),
    ("oneOf branch removed", {"oneOf": [STR, INT]}, {"oneOf": [STR]}, NO, OK, NO, OK),
    ("allOf mixin adds a required field", obj({"a": STR}), {"allOf": [obj({"a": STR}), NEEDS_B]}, NO, OK, NO, OK),
    ("unknown keyword changed", {"propertyNames": SHORT}, {"propertyNames": {"maxLength": 4}}, NO, NO, NO, OK),
    ("unknown keyword unchanged", {"propertyNames": SHORT}, {"propertyNames": SHORT, "title": "t"}, OK, OK, OK, OK),
    ("annotations and x- extensions only", ORDER, {**ORDER, "description": "d", "x-owner": "b"}, OK, OK, OK, OK),
    ("identical schemas", ORDER, ORDER, OK, OK, OK, OK),
    ("identical schemas with $ref", DEFS_INT, DEFS_INT, OK, OK, OK, OK),
]


@pytest.mark.parametrize(
    ("change", "old", "new", "backward", "forward", "full", "none"), TABLE, ids=[r[0] for r in TABLE]
)
def test_verdict_table(change, old, new, backward, forward, full, none):
    expected = {Mode.BACKWARD: backward, Mode.FORWARD: forward, Mode.FULL: full, Mode.NONE: none}
    for mode, compatible in expected.items():
        problems = check_compatibility(new, [(1, old)], mode)
        assert (problems == []) is compatible, f"{change} / {mode}: {[p.message for p in problems]}"
        assert all(p.rule and p.message and p.against_version == 1 for p in problems)


def test_modes_accept_any_spelling_and_reject_unknown_names():
    assert check_compatibility(STR, [(1, INT)], "backward")[0].direction == "backward"
    assert check_compatibility(STR, [], Mode.FULL) == []
    with pytest.raises(ValueError):
        check_compatibility(STR, [(1, STR)], "SIDEWAYS")


# --- transitive modes: v1 -> v2 drops a field, v3 brings it back with another type ---------------------------

V1 = obj({"id": STR, "ref": STR})
V2 = obj({"id": STR})
V3 = obj({"id": STR, "ref": INT})


@pytest.mark.parametrize(
    ("plain", "transitive", "directions"),
    [
        (Mode.BACKWARD, Mode.BACKWARD_TRANSITIVE, {"backward"}),
        (Mode.FORWARD, Mode.FORWARD_TRANSITIVE, {"forward"}),
        (Mode.FULL, Mode.FULL_TRANSITIVE, {"backward", "forward"}),
    ],
)
def test_transitive_modes_compare_with_every_earlier_version(plain, transitive, directions):
    history = [(1, V1), (2, V2)]
    assert check_compatibility(V3, history, plain) == []
    problems = check_compatibility(V3, history, transitive)
    assert {p.against_version for p in problems} == {1}
    assert {p.direction for p in problems} == directions
    assert {(p.path, p.rule) for p in problems} == {("/properties/ref/type", "type_changed")}


# --- precise reports ---------------------------------------------------------------------------------------


def only(problems: list[Incompatibility]) -> Incompatibility:
    assert len(problems) == 1, [p.as_dict() for p in problems]
    return problems[0]


def test_report_names_the_field_and_both_types():
    found = only(check_compatibility(obj({"total": INT}), [(3, obj({"total": NUM}))], Mode.BACKWARD))
    assert found.as_dict() == {
        "path": "/properties/total/type",
        "rule": "type_narrowed",
        "message": "Field 'total' may be a number in the producer's schema but the reader accepts only integer.",
        "direction": "backward",
        "against_version": 3,
    }


def test_report_for_a_new_required_field():
    new = obj({"id": STR, "total": NUM, "currency": STR}, ["id", "currency"])
    found = only(is_subschema(ORDER, new))
    assert (found.path, found.rule) == ("/required", "required_added")
    assert "'currency'" in found.message


def test_report_for_a_removed_enum_value_and_a_closed_reader():
    assert (only(is_subschema({"enum": ["a", "b"]}, {"enum": ["a"]})).path) == "/enum"
    assert only(is_subschema({"enum": ["a", "b"]}, {"enum": ["a"]})).rule == "enum_value_removed"
    found = only(is_subschema(obj({"a": STR, "b": STR}), obj({"a": STR}, additionalProperties=False)))
    assert (found.path, found.rule) == ("/properties/b", "property_not_accepted")


def test_nested_reports_point_into_the_nested_field():
    found = only(is_subschema(CUSTOMER, CUSTOMER_EMAIL))
    assert found.path == "/properties/customer/properties/email/format"
    assert found.rule == "format_changed"
    assert "'customer.email'" in found.message


def test_report_inside_a_ref_points_at_the_reader_definition():
    found = only(is_subschema(DEFS_NUM, DEFS_INT))
    assert (found.path, found.rule) == ("/$defs/Money/type", "type_narrowed")
    assert "'total'" in found.message


def test_every_problem_is_reported_not_only_the_first():
    old = obj({"a": STR, "b": NUM, "c": {"type": "array", "items": STR}})
    new = obj(
        {"a": INT, "b": {"type": "number", "minimum": 0}, "c": {"type": "array", "items": STR, "maxItems": 3}}, ["a"]
    )
    rules = {(p.path, p.rule) for p in is_subschema(old, new)}
    assert rules == {
        ("/properties/a/type", "type_changed"),
        ("/properties/b/minimum", "minimum_raised"),
        ("/properties/c/maxItems", "max_items_lowered"),
        ("/required", "required_added"),
    }


def test_nullable_branch_reports_the_branch_of_the_right_type():
    old = {"anyOf": [STR, {"type": "null"}]}
    new = {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]}
    found = only(is_subschema(old, new))
    assert (found.path, found.rule) == ("/anyOf/0/maxLength", "max_length_lowered")
    assert only(is_subschema({"type": "boolean"}, {"anyOf": [STR, INT]})).rule == "no_matching_branch"


def test_unknown_keyword_is_reported_as_unprovable():
    found = only(is_subschema({"dependentRequired": {"a": ["b"]}}, {"dependentRequired": {"a": ["c"]}}))
    assert (found.path, found.rule) == ("/dependentRequired", "unsupported_keyword")


def test_openapi_components_refs_resolve_against_the_given_roots():
    old_doc = {"components": {"schemas": {"Order": obj({"total": NUM})}}}
    new_doc = {"components": {"schemas": {"Order": obj({"total": INT})}}}
    ref = {"$ref": "#/components/schemas/Order"}
    found = only(is_subschema(ref, ref, writer_root=old_doc, reader_root=new_doc))
    assert found.path == "/components/schemas/Order/properties/total/type"
    assert is_subschema(ref, ref, writer_root=new_doc, reader_root=old_doc) == []


def test_recursive_schemas_are_compared_without_looping():
    def tree(leaf):
        return {
            "$defs": {"N": obj({"v": leaf, "kids": {"type": "array", "items": {"$ref": "#/$defs/N"}}})},
            "$ref": "#/$defs/N",
        }

    assert is_subschema(tree(INT), tree(NUM)) == []
    found = only(is_subschema(tree(NUM), tree(INT)))
    assert (found.path, found.rule) == ("/$defs/N/properties/v/type", "type_narrowed")


def test_semantics_beyond_the_table():
    # OpenAPI 3.0 nullable, and Optional[str] written as a type list against the anyOf spelling
    assert is_subschema({"type": "string", "nullable": True}, {"type": ["string", "null"]}) == []
    assert is_subschema({"type": ["string", "null"]}, {"anyOf": [STR, {"type": "null"}], "default": None}) == []
    # Draft 4 / OpenAPI 3.0 boolean exclusiveMinimum
    assert only(is_subschema({**NUM, "minimum": 0}, {**NUM, "minimum": 0, "exclusiveMinimum": True})).path == (
        "/minimum"
    )
    # a boolean producer against a reader enum is checked value by value
    assert is_subschema({"type": "boolean"}, {"enum": [True, False]}) == []
    assert only(is_subschema({"type": "boolean"}, {"enum": [True]})).rule == "enum_value_removed"
    # a reader's "not" is proved when the types cannot meet
    assert is_subschema(STR, {"not": {"type": "null"}}) == []
    assert only(is_subschema(STR, {"not": {"pattern": "^x"}})).rule == "unsupported_keyword"
    # unevaluatedProperties without applicators is read as additionalProperties
    closed = {**obj({"a": STR}), "unevaluatedProperties": False}
    assert only(is_subschema(obj({"a": STR, "b": STR}), closed)).rule == "property_not_accepted"
    assert is_subschema(obj({"a": STR}), closed) == []


def test_explicit_additional_properties_schema_produces_other_names():
    typed_map = obj({}, additionalProperties=INT)
    found = only(is_subschema(typed_map, obj({"a": STR})))
    assert (found.path, found.rule) == ("/properties/a/type", "type_changed")
    assert only(is_subschema(typed_map, obj({}, additionalProperties=False))).rule == "property_not_accepted"
    assert is_subschema(obj({}), obj({"a": STR})) == []  # an open writer sends only what it declares


def test_writer_allof_with_a_referenced_base_sends_the_base_properties():
    defs = {"Base": obj({"id": STR}, ["id"])}
    child = {"$defs": defs, "allOf": [{"$ref": "#/$defs/Base"}, obj({"note": STR})]}
    assert is_subschema(child, obj({"id": STR, "note": STR}, ["id"], additionalProperties=False)) == []
    found = only(is_subschema(child, obj({"id": STR}, ["id"], additionalProperties=False)))
    assert (found.path, found.rule) == ("/properties/note", "property_not_accepted")


def test_hostile_alternatives_stop_with_too_complex():
    many = {"anyOf": [{"anyOf": [{"type": "string", "maxLength": i * 40 + j} for j in range(40)]} for i in range(40)]}
    reader = {"anyOf": [{"type": "string", "maxLength": j} for j in range(30)]}
    problems = is_subschema(many, reader)
    assert problems and {p.rule for p in problems} <= {"too_complex", "max_length_lowered", "no_matching_branch"}
    assert "too_complex" in {p.rule for p in problems}


# --- malformed input: reported, never raised ---------------------------------------------------------------

MALFORMED = [
    {"type": 5},
    {"type": ["string", "text"]},
    {"properties": []},
    {"required": "id"},
    {"$ref": "http://x"},
    {"$ref": "#/$defs/missing"},
    {"$ref": 7},
    {"$ref": "#"},
    {"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"},
    {"anyOf": []},
    {"allOf": "x"},
    {"enum": 3},
    {"minimum": "0"},
    {"maxLength": -1},
    {"patternProperties": {"(": STR}},
    {"items": 5},
    {"prefixItems": {}},
    [],
    "string",
    3.5,
    None,
]


@pytest.mark.parametrize("schema", MALFORMED, ids=[repr(s)[:40] for s in MALFORMED])
@pytest.mark.parametrize("other", [ORDER, {"type": "string", "minLength": 2}, True, False])
def test_malformed_schemas_give_results_not_exceptions(schema, other):
    for mode in Mode:
        assert isinstance(check_compatibility(schema, [(1, other)], mode), list)
        assert isinstance(check_compatibility(other, [(1, schema)], mode), list)
    problems = is_subschema(other, schema) + is_subschema(schema, other)
    assert all(isinstance(p, Incompatibility) and p.message for p in problems)


def test_malformed_and_unprovable_cases_are_reported_with_a_rule():
    assert only(is_subschema({"type": 5}, STR)).rule == "invalid_schema"
    assert only(is_subschema({"properties": []}, obj({"a": STR}))).path == "/properties"
    assert only(is_subschema(STR, {"$ref": "http://x"})).rule == "unsupported_ref"
    assert only(is_subschema(STR, {"$ref": "#/$defs/missing"})).rule == "unresolvable_ref"
    assert only(is_subschema(STR, {"$ref": "#"})).rule == "unresolvable_ref"
    assert is_subschema({"$ref": "#"}, {"$ref": "#"}) == []
    # a cycle that never goes deeper into the value describes nothing: not "compatible by assumption"
    assert only(is_subschema({"enum": [None]}, {"properties": {}, "$ref": "#"})).rule == "unresolvable_ref"


# --- properties ---------------------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.5, "", "a", "b", "ab"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(NAMES, inner, max_size=2),
    max_leaves=4,
)
TYPE_NAMES = st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array"])
LEAF_KEYWORDS = {
    "type": TYPE_NAMES | st.lists(TYPE_NAMES, min_size=1, max_size=3, unique=True),
    "enum": st.lists(VALUES, min_size=1, max_size=3),
    "const": VALUES,
    "minimum": st.integers(-2, 2),
    "exclusiveMaximum": st.integers(-2, 2),
    "multipleOf": st.sampled_from([1, 2, 0.5]),
    "minLength": st.integers(0, 2),
    "maxLength": st.integers(0, 2),
    "pattern": st.sampled_from(["^a", "b$"]),
    "format": st.sampled_from(["email", "date"]),
    "minItems": st.integers(0, 2),
    "uniqueItems": st.booleans(),
    "required": st.lists(NAMES, max_size=2, unique=True),
    "maxProperties": st.integers(0, 2),
    "propertyNames": st.fixed_dictionaries({"maxLength": st.integers(0, 2)}),
}


def composite(inner):
    return st.fixed_dictionaries(
        {},
        optional={
            "type": TYPE_NAMES,
            "properties": st.dictionaries(NAMES, inner, max_size=3),
            "additionalProperties": inner,
            "items": inner,
            "prefixItems": st.lists(inner, min_size=1, max_size=2),
            "anyOf": st.lists(inner, min_size=1, max_size=3),
            "oneOf": st.lists(inner, min_size=1, max_size=2),
            "allOf": st.lists(inner, min_size=1, max_size=2),
            "not": inner,
            "$ref": st.sampled_from(["#", "#/$defs/A", "#/$defs/missing", "http://example.test/s"]),
            "$defs": st.fixed_dictionaries({"A": inner}),
            "required": st.lists(NAMES, max_size=2, unique=True),
        },
    )


SCHEMAS = st.recursive(
    st.booleans() | st.fixed_dictionaries({}, optional=LEAF_KEYWORDS),
    composite,
    max_leaves=8,
)
JUNK = st.recursive(
    VALUES | st.fixed_dictionaries({}, optional={k: VALUES for k in ["type", "properties", "items", "$ref", "anyOf"]}),
    lambda inner: st.dictionaries(st.sampled_from(["properties", "items", "anyOf", "not", "a"]), inner, max_size=3),
    max_leaves=6,
)
PROPERTY_SETTINGS = settings(
    max_examples=300, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)


@PROPERTY_SETTINGS
@given(schema=SCHEMAS | JUNK)
def test_a_schema_is_compatible_with_itself(schema):
    assert is_subschema(schema, schema) == []
    for mode in Mode:
        assert check_compatibility(schema, [(1, schema)], mode) == []


@PROPERTY_SETTINGS
@given(new=SCHEMAS | JUNK, old=SCHEMAS | JUNK)
def test_check_compatibility_never_raises(new, old):
    for mode in Mode:
        problems = check_compatibility(new, [(1, old), (2, old)], mode)
        assert all(isinstance(p, Incompatibility) and p.rule and p.message for p in problems)


def annotated(schema):
    """The same schema with a description on every subschema: equal in meaning, never equal as data."""
    if not isinstance(schema, dict):
        return schema
    out = {**schema, "description": "annotated"}
    for key in ("items", "additionalProperties", "not"):
        if key in schema:
            out[key] = annotated(schema[key])
    for key in ("anyOf", "oneOf", "prefixItems"):
        if key in schema:
            out[key] = [annotated(s) for s in schema[key]]
    if "properties" in schema:
        out["properties"] = {n: annotated(s) for n, s in schema["properties"].items()}
    return out


SCALARS = st.fixed_dictionaries(
    {"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])},
    optional={k: LEAF_KEYWORDS[k] for k in ("minimum", "exclusiveMaximum", "multipleOf", "maxLength", "pattern")},
) | st.fixed_dictionaries({"enum": st.lists(VALUES, min_size=1, max_size=3)})
PLAIN_SCHEMAS = st.recursive(
    SCALARS,
    lambda inner: (
        st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.dictionaries(NAMES, inner, max_size=3)},
            optional={"required": st.lists(NAMES, max_size=2, unique=True), "additionalProperties": st.booleans()},
        )
        | st.fixed_dictionaries({"type": st.just("array"), "items": inner}, optional={"minItems": st.integers(0, 2)})
        | st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=3)})
    ),
    max_leaves=8,
)


@PROPERTY_SETTINGS
@given(schema=PLAIN_SCHEMAS)
def test_structural_comparison_of_a_schema_with_itself_finds_nothing(schema):
    """Annotations everywhere defeat the identical-schema shortcut, so every keyword is really compared."""
    assert is_subschema(schema, annotated(schema)) == []
    assert is_subschema(annotated(schema), schema) == []


def valid(schema, value) -> bool | None:
    try:
        return Draft202012Validator(schema, registry=Registry()).is_valid(value)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # referencing's Rust core panics (not an Exception) on endless $ref loops
        return None  # the schema cannot be evaluated (bad $ref, bad regex, ...)


@PROPERTY_SETTINGS
@given(values=st.lists(VALUES, min_size=1, max_size=4), writer_extra=SCHEMAS, reader=SCHEMAS)
def test_values_a_compatible_writer_produces_validate_under_the_reader(values, writer_extra, reader):
    writer = {**writer_extra, "enum": values} if isinstance(writer_extra, dict) else {"enum": values}
    if is_subschema(writer, reader) != []:
        return
    for value in values:
        if valid(writer, value):
            assert valid(reader, value), (value, reader)
