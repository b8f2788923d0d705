"""Theme packs: DTCG validation, aliases, cycles, CSS variable names, upload, choice and the theme answer."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.core.errors import ValidationFailed
from apps.embed.themes import VALUE_PATTERNS, builtin_documents, css_variable, parse_theme
from tests.conftest import ApiClient, issue_token
from tests.embed.conftest import HOST

GOOD = {
    "color": {
        "$type": "color",
        "brand": {"$value": "#0F766E"},
        "short": {"$value": "#abc"},
        "translucent": {"$value": "#11223380"},
        "object": {"$value": {"colorSpace": "srgb", "components": [1, 0.5, 0], "alpha": 0.5}},
        "accent": {"$value": "{color.brand}"},
        "accent-2": {"$value": "{color.accent}"},
    },
    "space": {"$type": "dimension", "md": {"$value": "16px"}, "lg": {"$value": {"value": 1.5, "unit": "rem"}}},
    "font": {
        "body": {"$type": "fontFamily", "$value": ["Inter", "Helvetica Neue", "sans-serif"]},
        "weight": {"$type": "fontWeight", "$value": "semi-bold"},
    },
    "motion": {"fast": {"$type": "duration", "$value": {"value": 150, "unit": "ms"}}},
    "ratio": {"$type": "number", "$value": 1.25, "$description": "ignored"},
}


def test_parse_resolves_aliases_types_and_names():
    resolved = parse_theme(GOOD)
    assert resolved["--plaza-color-brand"] == {"type": "color", "value": "#0f766e"}
    assert resolved["--plaza-color-short"]["value"] == "#aabbcc"
    assert resolved["--plaza-color-translucent"]["value"] == "#11223380"
    assert resolved["--plaza-color-object"]["value"] == "#ff800080"
    assert resolved["--plaza-color-accent"] == resolved["--plaza-color-accent-2"] == resolved["--plaza-color-brand"]
    assert resolved["--plaza-space-md"]["value"] == "16px" and resolved["--plaza-space-lg"]["value"] == "1.5rem"
    assert resolved["--plaza-font-body"]["value"] == 'Inter, "Helvetica Neue", sans-serif'
    assert resolved["--plaza-font-weight"] == {"type": "fontWeight", "value": "600"}
    assert resolved["--plaza-motion-fast"]["value"] == "150ms"
    assert resolved["--plaza-ratio"] == {"type": "number", "value": "1.25"}
    assert list(resolved) == sorted(resolved)
    import re

    for token in resolved.values():
        assert re.fullmatch(VALUE_PATTERNS[token["type"]], token["value"]), token


def test_css_variable_names_follow_token_paths():
    assert css_variable(("color", "bg")) == "--plaza-color-bg"
    assert css_variable(("font", "Size_SM")) == "--plaza-font-size-sm"


def test_builtin_packs_match_the_portal_tokens_css():
    light = parse_theme(builtin_documents()["Plaza light"][1])
    with open("static/css/tokens.css") as fh:
        css = fh.read()
    for name in ("--plaza-color-bg", "--plaza-color-primary", "--plaza-font-size-sm", "--plaza-radius"):
        assert f"{name}: {light[name]['value']}" in css


def _problems(document) -> list[dict]:
    with pytest.raises(ValidationFailed) as exc:
        parse_theme(document)
    assert exc.value.code == "theme_invalid"
    return exc.value.details


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"a": {"$type": "color", "$value": "{a}"}}, "a", "cycle"),
        ({"a": {"$type": "color", "$value": "{b}"}, "b": {"$type": "color", "$value": "{a}"}}, "a", "cycle"),
        ({"a": {"$type": "color", "$value": "{nope.x}"}}, "a", "names no token"),
        ({"a": {"$value": "#fff"}}, "a", "no $type"),
        ({"a": {"$type": "shadow", "$value": {}}}, "a", "not supported"),
        ({"a": {"$type": "color", "$value": "red; background: url(x)"}}, "a", "not a valid color"),
        ({"a": {"$type": "color", "$value": "expression(alert(1))"}}, "a", "not a valid color"),
        ({"a": {"$type": "dimension", "$value": "10px; x: y"}}, "a", "not a valid dimension"),
        ({"a": {"$type": "dimension", "$value": {"value": 1, "unit": "vh"}}}, "a", "not a valid dimension"),
        ({"a": {"$type": "fontFamily", "$value": "Inter; } body { color: red"}}, "a", "not a valid fontFamily"),
        ({"a": {"$type": "fontFamily", "$value": "x</style><script>"}}, "a", "not a valid fontFamily"),
        ({"a": {"$type": "fontWeight", "$value": 1001}}, "a", "not a valid fontWeight"),
        ({"a": {"$type": "number", "$value": True}}, "a", "not a valid number"),
        ({"a": {"$type": "duration", "$value": "-5ms"}}, "a", "not a valid duration"),
        ({"a": {"$type": "color", "$value": "#fff"}, "b": {"$type": "dimension", "$value": "{a}"}}, "b", "wrong type"),
        ({"bad name": {"$type": "color", "$value": "#fff"}}, "bad name", "names are"),
        ({"a": "#fff"}, "a", "group"),
        ({}, "$", "no tokens"),
        ({"a-b": {"$type": "color", "$value": "#fff"}, "a_b": {"$type": "color", "$value": "#000"}}, "a_b", "same CSS"),
    ],
)
def test_invalid_documents_are_refused_with_a_path(document, path, words):
    problems = _problems(document)
    assert any(p["path"] == path and words in p["message"] for p in problems), problems


def test_every_problem_is_reported_at_once():
    problems = _problems({"a": {"$type": "color", "$value": "nope"}, "b": {"$type": "shadow", "$value": 1}})
    assert {p["path"] for p in problems} == {"a", "b"}


@pytest.mark.parametrize("raw", [b"{", b"[]", b"null", b"1e999", b'{"a": NaN}', b"\xff", b"{" * 5000])
def test_hostile_raw_input_is_a_validation_error(raw):
    with pytest.raises(ValidationFailed):
        parse_theme(raw)


def test_deep_and_large_documents_are_bounded():
    deep = node = {}
    for _ in range(20):
        node["g"] = {}
        node = node["g"]
    node["t"] = {"$type": "number", "$value": 1}
    assert any("nest" in p["message"] for p in _problems(deep))
    many = {f"t{i}": {"$type": "number", "$value": i} for i in range(500)}
    assert any("at most" in p["message"] for p in _problems(many))
    with pytest.raises(ValidationFailed):
        parse_theme(json.dumps({"a": {"$type": "number", "$value": 1, "pad": "x" * 70000}}))


# --- through the API and the launch -------------------------------------------------------------
def _admin(shop) -> ApiClient:
    return ApiClient(issue_token(shop.org, scopes=["embed:read", "embed:write"]))


def test_upload_versions_and_choose_a_theme(shop):
    api = _admin(shop)
    first = api.call("POST", f"orgs/{shop.org.pk}/embed/themes", {"name": "Acme", "scheme": "light", "tokens": GOOD})
    assert first.status_code == 201, first.content
    second = api.call("POST", f"orgs/{shop.org.pk}/embed/themes", {"name": "Acme", "scheme": "light", "tokens": GOOD})
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert second.json()["tokens"]["--plaza-color-brand"] == {"type": "color", "value": "#0f766e"}
    res = api.call("PATCH", f"orgs/{shop.org.pk}/embed/settings", {"theme_id": second.json()["id"]})
    assert res.status_code == 200 and res.json()["theme_id"] == second.json()["id"]
    launch_id = shop.launch()
    theme = Client().get(f"/embed/v1/launches/{launch_id}/theme", HTTP_ORIGIN=HOST)
    assert theme.status_code == 200 and theme["Access-Control-Allow-Origin"] == HOST
    body = theme.json()
    assert body["name"] == "Acme" and body["version"] == 2 and body["scheme"] == "light"
    assert body["theme"]["--plaza-color-accent"] == {"type": "color", "value": "#0f766e"}
    dark = Client().get(f"/embed/v1/launches/{launch_id}/theme?scheme=dark", HTTP_ORIGIN=HOST).json()
    assert dark["name"] == "Plaza dark" and dark["theme"]["--plaza-color-bg"]["value"] == "#14151a"
    listed = api.call("GET", f"orgs/{shop.org.pk}/embed/themes").json()["data"]
    assert {p["name"] for p in listed} >= {"Plaza light", "Plaza dark", "Acme"}


def test_upload_invalid_pack_lists_problems(shop):
    res = _admin(shop).call(
        "POST",
        f"orgs/{shop.org.pk}/embed/themes",
        {"name": "Bad", "scheme": "dark", "tokens": {"a": {"$type": "color", "$value": "{a}"}}},
    )
    assert res.status_code == 400
    error = res.json()["error"]
    assert error["code"] == "theme_invalid" and error["param"] == "a"


def test_theme_of_wrong_scheme_or_other_tenant_refused(shop, globex):
    other = ApiClient(issue_token(globex.org, scopes=["embed:read", "embed:write"]))
    pack = other.call("POST", f"orgs/{globex.org.pk}/embed/themes", {"name": "G", "tokens": GOOD}).json()
    api = _admin(shop)
    assert api.call("PATCH", f"orgs/{shop.org.pk}/embed/settings", {"theme_id": pack["id"]}).status_code == 404
    own = api.call("POST", f"orgs/{shop.org.pk}/embed/themes", {"name": "L", "tokens": GOOD}).json()
    res = api.call("PATCH", f"orgs/{shop.org.pk}/embed/settings", {"theme_dark_id": own["id"]})
    assert res.status_code == 400 and res.json()["error"]["code"] == "theme_scheme"


def test_theme_endpoint_refuses_other_origins_and_bad_scheme(shop):
    launch_id = shop.launch()
    assert Client().get(f"/embed/v1/launches/{launch_id}/theme", HTTP_ORIGIN="https://evil.test").status_code == 403
    assert Client().get(f"/embed/v1/launches/{launch_id}/theme?scheme=neon", HTTP_ORIGIN=HOST).status_code == 400
