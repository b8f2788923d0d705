"""The settings form generated from a config schema: schema → fields → submitted strings → typed
values, errors placed next to their fields, and hostile schemas and inputs (huge strings, wrong
types, injected fields, HTML in titles) handled without a crash or an unescaped byte."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.template.loader import render_to_string

from apps.installs.config_form import MAX_FIELDS, MAX_JSON, MAX_TEXT, ConfigForm, normalise_param
from tests.installs.conftest import CONFIG_SCHEMA

RICH = {
    "type": "object",
    "required": ["mode"],
    "properties": {
        "mode": {"type": "string", "enum": ["fast", "careful"], "default": "careful", "title": "Mode"},
        "level": {"enum": [1, 2, 3]},
        "enabled": {"type": "boolean", "default": True, "description": "Turn it on."},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "contact": {"type": "string", "format": "email"},
        "callback": {"type": "string", "format": "uri"},
        "notes": {"type": "string", "maxLength": 4000},
        "events": {"type": "array", "items": {"type": "string", "enum": ["created", "paid", "shipped"]}},
        "smtp": {
            "type": "object",
            "title": "Mail server",
            "required": ["host"],
            "properties": {
                "host": {"type": "string"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 25},
                "tls": {"type": "object", "properties": {"verify": {"type": "boolean"}}},
            },
        },
        "mapping": {"type": "array", "items": {"type": "object"}},
        "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "maybe": {"type": ["string", "null"]},
        "token": {"type": "string", "writeOnly": True},
        "pin": {"type": "integer", "writeOnly": True},
    },
}


def post(**values) -> QueryDict:
    """A submitted form; list values become repeated fields."""
    data = QueryDict(mutable=True)
    for key, value in values.items():
        name = "config." + key.replace("__", ".")
        if isinstance(value, list):
            data.setlist(name, value)
        else:
            data[name] = value
    return data


def by_name(form: ConfigForm) -> dict:
    return {f.name: f for f in form.fields}


# --- schema → fields --------------------------------------------------------------------------------
def test_the_fixture_schema_becomes_text_number_and_secret_fields_with_defaults():
    form = ConfigForm(CONFIG_SCHEMA)
    fields = by_name(form)
    assert list(fields) == ["tag_prefix", "threshold", "api_key"]
    prefix, threshold, key = fields["tag_prefix"], fields["threshold"], fields["api_key"]
    assert (prefix.kind, prefix.label, prefix.required, prefix.value) == ("text", "Tag prefix", True, "auto-")
    assert prefix.attrs["maxlength"] == 20
    assert (threshold.kind, threshold.label, threshold.value) == ("integer", "Threshold", "10")
    assert (threshold.attrs["min"], threshold.attrs["max"], threshold.attrs["step"]) == (0, 1000, "1")
    assert (key.kind, key.secret, key.value) == ("password", True, "")
    assert prefix.input_name == "config.tag_prefix" and prefix.input_id == "cfg-tag_prefix"


def test_every_supported_shape_gets_its_input():
    form = ConfigForm(RICH)
    kinds = {f.name: f.kind for f in form.fields}
    assert kinds == {
        "mode": "select",
        "level": "select",
        "enabled": "checkbox",
        "ratio": "number",
        "contact": "email",
        "callback": "url",
        "notes": "textarea",
        "events": "multi",
        "smtp.host": "text",
        "smtp.port": "integer",
        "smtp.tls.verify": "checkbox",
        "mapping": "json",
        "either": "json",
        "maybe": "text",
        "token": "password",
        "pin": "json",  # a secret that is not a string: JSON, still never shown
    }
    fields = by_name(form)
    assert fields["mode"].choices == [("fast", "fast"), ("careful", "careful")]
    assert fields["mode"].selected == ["careful"] and not fields["mode"].blank_option
    assert fields["level"].choices == [("1", "1"), ("2", "2"), ("3", "3")] and fields["level"].blank_option
    assert fields["enabled"].checked and fields["enabled"].help == "Turn it on."
    assert fields["smtp.host"].required and fields["smtp.port"].value == "25"
    assert fields["smtp.host"].input_name == "config.smtp.host"
    assert [g.name for g in form.groups] == ["smtp", "smtp.tls"]
    assert form.groups[0].label == "Mail server"
    assert fields["pin"].secret and fields["token"].secret


def test_current_values_fill_the_form_and_secrets_show_only_whether_they_are_set():
    values = {"tag_prefix": "x-", "threshold": 7, "api_key": {"set": True}}
    fields = by_name(ConfigForm(CONFIG_SCHEMA, values=values, editing=True))
    assert fields["tag_prefix"].value == "x-" and fields["threshold"].value == "7"
    assert fields["api_key"].secret_set and fields["api_key"].value == ""
    fields = by_name(ConfigForm(CONFIG_SCHEMA, values={"api_key": {"set": False}}, editing=True))
    assert not fields["api_key"].secret_set
    assert fields["tag_prefix"].value == "auto-"  # missing values show the default


# --- submitted strings → typed values ---------------------------------------------------------------
def test_submitted_strings_become_typed_values():
    data = post(
        mode="fast",
        level="2",
        enabled="on",
        ratio="0.25",
        contact=" a@example.com ",
        events=["shipped", "created"],
        smtp__host="mail.example.com",
        smtp__port="587",
        smtp__tls__verify="on",
        mapping='[{"from": "a", "to": "b"}]',
        either="12",
        token="s3cret",
        pin="1234",
    )
    form = ConfigForm(RICH, data=data)
    assert form.is_valid(), [(f.name, f.error) for f in form.fields if f.error]
    assert form.cleaned == {
        "mode": "fast",
        "level": 2,
        "enabled": True,
        "ratio": 0.25,
        "contact": "a@example.com",
        "events": ["created", "shipped"],  # in the schema's order
        "smtp": {"host": "mail.example.com", "port": 587, "tls": {"verify": True}},
        "mapping": [{"from": "a", "to": "b"}],
        "either": 12,
        "token": "s3cret",
        "pin": 1234,
    }


def test_empty_fields_are_left_out_so_defaults_apply_and_secrets_are_kept():
    form = ConfigForm(CONFIG_SCHEMA, data=post(tag_prefix="", threshold="", api_key=""), editing=True)
    assert form.is_valid()
    assert form.cleaned == {}
    form = ConfigForm(RICH, data=post())
    assert form.is_valid()
    # unticked boxes are a value (false); an unticked group of boxes is an empty list
    assert form.cleaned == {"enabled": False, "events": [], "smtp": {"tls": {"verify": False}}}


def test_a_whole_number_field_takes_an_integer_and_a_number_field_keeps_integers_whole():
    form = ConfigForm(RICH, data=post(ratio="1", smtp__port="+25"))
    assert form.is_valid()
    assert form.cleaned["ratio"] == 1 and isinstance(form.cleaned["ratio"], int)
    assert form.cleaned["smtp"]["port"] == 25


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("threshold", "abc", "Enter a whole number."),
        ("threshold", "1.5", "Enter a whole number."),
        ("threshold", "9" * 5000, "Enter a whole number."),  # beyond int()'s digit limit: no crash
        ("tag_prefix", "x" * (MAX_TEXT + 1), "too long"),
        ("tag_prefix", "nul\x00byte", "control character"),
    ],
)
def test_values_that_cannot_be_read_are_errors_next_to_their_field(field, value, message):
    form = ConfigForm(CONFIG_SCHEMA, data=post(**{field: value}))
    assert not form.is_valid()
    assert message in by_name(form)[field].error
    assert form.first_error_id == f"cfg-{field}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ratio", "1e999"),
        ("ratio", "NaN"),
        ("ratio", "Infinity"),
        ("ratio", "0x10"),
        ("ratio", "1" * 100),
        ("mapping", "[1, 2"),
        ("mapping", "NaN"),
        ("mapping", "[" * 100_000 + "]" * 100_000),
        ("mapping", "1" * (MAX_JSON + 1)),
        ("mode", "reckless"),
        ("level", "4"),
    ],
)
def test_hostile_values_are_refused_without_a_crash(field, value):
    form = ConfigForm(RICH, data=post(**{field: value}))
    assert not form.is_valid()
    assert by_name(form)[field].error


@pytest.mark.parametrize(
    "value",
    ['"x\\u0000y"', '{"a": "x\\u0000y"}', '[["deep", "bell\\u0007"]]', '{"k\\u0000": 1}', '"\\ud800"'],
)
def test_escaped_control_characters_in_a_json_field_are_refused(value):
    # the raw text holds only a backslash escape: the parsed value is checked at every depth
    form = ConfigForm(RICH, data=post(mapping=value))
    assert not form.is_valid()
    assert "control character" in by_name(form)["mapping"].error


def test_injected_values_for_a_group_of_boxes_are_refused():
    form = ConfigForm(RICH, data=post(events=["created", "deleted"]))
    assert not form.is_valid()
    assert by_name(form)["events"].error == "Choose only among the options shown."
    form = ConfigForm(RICH, data=post(events=["created"] * 50))
    assert not form.is_valid()


def test_fields_the_schema_does_not_name_are_ignored():
    data = post(tag_prefix="ok-", evil="1", tag_prefix__nested="2")
    data["csrfmiddlewaretoken"] = "x"
    data["config"] = '{"admin": true}'
    form = ConfigForm(CONFIG_SCHEMA, data=data)
    assert form.is_valid()
    assert form.cleaned == {"tag_prefix": "ok-"}


def test_a_submitted_form_shows_what_was_sent_except_secrets():
    form = ConfigForm(CONFIG_SCHEMA, data=post(tag_prefix="mine-", threshold="nope", api_key="s3cret"))
    assert not form.is_valid()
    fields = by_name(form)
    assert fields["tag_prefix"].value == "mine-" and fields["threshold"].value == "nope"
    assert fields["api_key"].value == ""


# --- errors from the service ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("param", "field"),
    [
        ("config.threshold", "threshold"),
        ("threshold", "threshold"),
        ("$.threshold", "threshold"),
        ("/threshold", "threshold"),
        ("config.smtp.port", "smtp.port"),
        ("config.smtp.tls.verify", "smtp.tls.verify"),
        ("config.events[1]", "events"),
        ("config['smtp']['host']", "smtp.host"),
        ("config.smtp", "smtp"),  # a fieldset
        ("config.smtp.unknown", "smtp"),
    ],
)
def test_service_errors_land_next_to_the_field_their_param_names(param, field):
    form = ConfigForm({**RICH, "properties": {**RICH["properties"], **CONFIG_SCHEMA["properties"]}})
    assert form.add_error(param, "Not valid.")
    target = form.field_for(param)
    assert target.name == field and target.error == "Not valid."
    assert form.has_errors


@pytest.mark.parametrize("param", ["config", "", None, "config.nope", "$"])
def test_service_errors_about_no_field_go_above_the_form(param):
    form = ConfigForm(RICH)
    assert not form.add_error(param, "The configuration is not valid.")
    assert form.errors == ["The configuration is not valid."]


def test_normalise_param():
    assert normalise_param("config.a.b[3].c") == "a.b.c"
    assert normalise_param("$.a") == "a"
    assert normalise_param("config") == ""


# --- hostile schemas --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "schema",
    [
        None,
        "not a schema",
        [],
        {"type": "object"},
        {"type": "object", "properties": []},
        {"type": "object", "properties": {"a": True, "b": None, "c": 3}},
        {"type": "object", "properties": {"a": {"type": "string", "title": 12, "description": ["x"]}}},
        {"type": "object", "properties": {"a": {"enum": [{"x": 1}, [1]]}}},
        {"type": "object", "properties": {"a": {"type": 7, "maxLength": "20", "minimum": "x"}}},
        {"type": "object", "properties": {"a": {"type": "integer", "minimum": True, "maximum": float("inf")}}},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "^" + "a" * 10_000 + "$"}}},
        {"type": "object", "properties": {"": {"type": "string"}, "x" * 1000: {"type": "string"}}},
    ],
)
def test_odd_schemas_give_a_form_without_a_crash(schema):
    form = ConfigForm(schema, data=post(a="1"))
    form.is_valid()
    html = render_to_string("installs/_config_fields.html", {"items": form.items, "editing": False})
    assert "Traceback" not in html


def test_a_huge_schema_is_cut_to_a_bounded_form():
    schema = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(5000)}}
    form = ConfigForm(schema)
    assert len(form.fields) == MAX_FIELDS and form.truncated


def test_deep_nesting_ends_in_a_json_field():
    schema: dict = {"type": "string"}
    for i in range(10):
        schema = {"type": "object", "properties": {f"l{i}": schema}}
    form = ConfigForm(schema)
    assert len(form.fields) == 1 and form.fields[0].kind == "json"
    assert len(form.groups) == 3


def test_property_names_with_dots_and_quotes_are_kept_apart():
    schema = {
        "type": "object",
        "properties": {
            "a.b": {"type": "string"},
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            'q"><script>': {"type": "string"},
        },
    }
    form = ConfigForm(schema)
    names = [f.input_name for f in form.fields]
    assert len(set(names)) == 3 and len({f.input_id for f in form.fields}) == 3
    data = QueryDict(mutable=True)
    for f, value in zip(form.fields, ["one", "two", "three"], strict=True):
        data[f.input_name] = value
    submitted = ConfigForm(schema, data=data)
    assert submitted.is_valid()
    assert submitted.cleaned == {"a.b": "one", "a": {"b": "two"}, 'q"><script>': "three"}
    html = render_to_string("installs/_config_fields.html", {"items": submitted.items, "editing": False})
    assert "<script>" not in html


def test_html_in_titles_descriptions_and_options_is_escaped():
    schema = {
        "type": "object",
        "title": "<b>form</b>",
        "properties": {
            "a": {
                "type": "string",
                "title": "<script>alert(1)</script>",
                "description": "<img src=x onerror=alert(2)>",
            },
            "b": {"enum": ["<i>x</i>"]},
            "c": {"type": "object", "title": "<u>group</u>", "properties": {"d": {"type": "boolean"}}},
            "e": {"type": "string", "default": '"><script>alert(3)</script>'},
        },
    }
    html = render_to_string("installs/_config_fields.html", {"items": ConfigForm(schema).items, "editing": False})
    for raw in ("<script>", "<img", "<i>x</i>", "<u>group</u>", '"><script>'):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;u&gt;group&lt;/u&gt;" in html


def test_a_secret_is_never_rendered_even_after_an_error():
    form = ConfigForm(CONFIG_SCHEMA, data=post(tag_prefix="", api_key="s3cret-value"), editing=True)
    form.is_valid()
    form.add_error("config.tag_prefix", "A value is required.")
    html = render_to_string("installs/_config_fields.html", {"items": form.items, "editing": True})
    assert "s3cret-value" not in html
    assert 'type="password"' in html and 'autocomplete="new-password"' in html
    assert 'aria-invalid="true"' in html and "A value is required." in html


def test_fields_have_labels_help_and_error_descriptions():
    form = ConfigForm(CONFIG_SCHEMA, data=post(threshold="x"))
    form.is_valid()
    html = render_to_string("installs/_config_fields.html", {"items": form.items, "editing": False})
    for f in form.fields:
        assert f'<label for="{f.input_id}">' in html
    assert 'aria-describedby="cfg-threshold-help cfg-threshold-error"' in html
    assert 'id="cfg-threshold-error"' in html and "From 0 to 1000." in html
