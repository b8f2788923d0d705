"""The compatibility gate (apps/events/contracts/, ``manage.py check_contracts``) and the deprecation headers
(apps/core/deprecation.py). Policy: docs/compatibility.md."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import path
from ninja import NinjaAPI, Router

from apps.core.api import install_exception_handlers
from apps.core.deprecation import Deprecation, deprecate
from apps.core.errors import ValidationFailed
from apps.events import contracts
from apps.events.catalog_sync import CATALOG_DIR

TODAY = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def current() -> dict:
    return contracts.openapi_document()


@pytest.fixture(autouse=True)
def _one_openapi_document(monkeypatch, current):
    """Generating the document takes seconds and no test here changes the API's code: the command
    gets a copy of the one generated per module (the other-process test still generates its own)."""
    monkeypatch.setattr(contracts, "openapi_document", lambda: copy.deepcopy(current))


def run(*args, **options) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_contracts", *args, stdout=out, **options)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


# --- (a) the committed snapshots -----------------------------------------------------------------------------------


def test_the_committed_snapshots_match_the_code():
    code, out = run()
    assert code == 0, (
        "The API or the event catalog no longer matches the committed snapshots in contracts/.\n"
        "Breaking changes must be fixed; intended, reviewed changes are recorded with\n"
        f"  {contracts.UPDATE_COMMAND}   (add --allow-breaking only for an approved break)\n"
        f"and contracts/ committed with the change.\n\n{out}"
    )
    assert out.startswith("contracts OK: the API (")


def test_the_document_is_the_same_in_another_process_with_another_hash_seed(current):
    script = "import django; django.setup(); from apps.events import contracts; "
    script += "print(contracts.render(contracts.openapi_document()), end='')"
    env = os.environ | {"PYTHONHASHSEED": "4242", "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == contracts.render(current)


def test_the_snapshot_is_pretty_printed_with_sorted_keys(current):
    text = contracts.render(current)
    assert text.endswith("}\n") and '\n  "components": {' in text
    assert list(json.loads(text)) == sorted(current)


# --- (b) API changes -------------------------------------------------------------------------------------------------

ORGS, ORG = "/api/v1/orgs", "/api/v1/orgs/{org_id}"


def op(doc: dict, method: str, route: str) -> dict:
    return doc["paths"][route][method]


def component(doc: dict, name: str) -> dict:
    return doc["components"]["schemas"][name]


def param(doc: dict, method: str, route: str, name: str) -> dict:
    return next(p for p in op(doc, method, route)["parameters"] if p["name"] == name)


def remove_operation(old, new):
    del new["paths"][ORGS]["post"]


def remove_path(old, new):
    del new["paths"][ORG]


def add_required_query_param(old, new):
    op(new, "get", ORGS)["parameters"].append(
        {"in": "query", "name": "region", "required": True, "schema": {"type": "string"}}
    )


def add_optional_query_param(old, new):
    op(new, "get", ORGS)["parameters"].append({"in": "query", "name": "region", "schema": {"type": "string"}})


def lower_param_maximum(old, new):
    param(new, "get", ORGS, "limit")["schema"]["maximum"] = 50


def raise_param_maximum(old, new):
    param(new, "get", ORGS, "limit")["schema"]["maximum"] = 500


def change_param_type(old, new):
    param(new, "get", ORGS, "cursor")["schema"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}


def drop_null_from_optional_param(old, new):
    param(new, "get", ORGS, "cursor")["schema"] = {"maxLength": 200, "type": "string"}


def make_param_required(old, new):
    param(new, "get", ORGS, "limit")["required"] = True


def remove_optional_param(old, new):
    op(new, "get", ORGS)["parameters"] = [p for p in op(new, "get", ORGS)["parameters"] if p["name"] != "cursor"]


def add_required_request_field(old, new):
    component(new, "OrgCreateIn")["properties"]["region"] = {"type": "string"}
    component(new, "OrgCreateIn")["required"].append("region")


def add_optional_request_field(old, new):
    component(new, "OrgCreateIn")["properties"]["region"] = {"type": "string"}


def shorten_request_field(old, new):
    component(new, "OrgCreateIn")["properties"]["name"]["maxLength"] = 50


def change_request_content_type(old, new):
    body = op(new, "post", ORGS)["requestBody"]
    body["content"] = {"application/x-www-form-urlencoded": body["content"]["application/json"]}


def require_a_body(old, new):
    op(new, "get", ORGS)["requestBody"] = {
        "content": {"application/json": {"schema": {"type": "object"}}},
        "required": True,
    }


def remove_response_field(old, new):
    out = component(new, "OrgOut")
    del out["properties"]["slug"]
    out["required"].remove("slug")


def remove_defaulted_response_field(old, new):
    del component(new, "Page_OrgOut_")["properties"]["next_cursor"]


def change_response_field_type(old, new):
    component(new, "OrgOut")["properties"]["created_at"] = {"type": "integer"}


def make_response_field_nullable(old, new):
    component(new, "OrgOut")["properties"]["name"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def add_response_field(old, new):
    component(new, "OrgOut")["properties"]["region"] = {"type": "string"}


def remove_2xx_response(old, new):
    responses = op(new, "post", ORGS)["responses"]
    responses["200"] = responses.pop("201")


def add_2xx_response(old, new):
    op(new, "post", ORGS)["responses"]["202"] = {"description": "Accepted"}


def secure_an_open_operation(old, new):
    op(old, "get", ORGS)["security"] = []


def change_the_security_scheme(old, new):
    op(new, "get", ORGS)["security"] = [{"SomeOtherAuth": []}]


def change_a_security_scheme_definition(old, new):
    new["components"]["securitySchemes"]["PlazaAuth"] = {"type": "apiKey", "in": "header", "name": "X-Key"}


def add_operation(old, new):
    new["paths"]["/api/v1/widgets"] = {"get": {"operationId": "widgets", "responses": {"200": {"description": "OK"}}}}


def deprecate_operation(old, new):
    op(new, "post", ORGS).update({"deprecated": True, "x-sunset": "2027-01-01"})


def remove_deprecated_operation_after_sunset(old, new):
    op(old, "post", ORGS).update({"deprecated": True, "x-sunset": "2026-05-01"})
    del new["paths"][ORGS]["post"]


def remove_deprecated_operation_before_sunset(old, new):
    op(old, "post", ORGS).update({"deprecated": True, "x-sunset": "2026-12-01"})
    del new["paths"][ORGS]["post"]


def rename_path_parameter(old, new):
    item = json.loads(json.dumps(new["paths"].pop(ORG)).replace('"org_id"', '"id"'))
    new["paths"]["/api/v1/orgs/{id}"] = item


def edit_a_description(old, new):
    op(new, "get", ORGS)["summary"] = "List the organisations you belong to"


def edit_documentation_only(old, new):
    get = op(new, "get", ORG)
    get.update({"summary": "Fetch", "description": "Any words.", "tags": ["renamed"]})
    param(new, "get", ORG, "org_id").update({"description": "The id.", "example": "org_1"})
    get["responses"]["200"]["description"] = "The organisation"
    get["responses"]["200"]["content"]["application/json"]["examples"] = {"one": {"value": {"id": "org_1"}}}
    component(new, "OrgOut")["description"] = "An organisation."
    new["info"]["title"] = "Another title"
    new["tags"] = [{"name": "organisations", "description": "Tenants."}]


def change_the_servers(old, new):
    new["servers"] = [{"url": "https://api.plaza.example.com/v2"}]


def add_a_server(old, new):
    old["servers"] = [{"url": "https://api.plaza.example.com"}]
    new["servers"] = [{"url": "https://api.plaza.example.com/", "description": "Production"}]
    new["servers"].append({"url": "https://eu.api.plaza.example.com"})


def give_an_operation_its_own_server(old, new):
    op(new, "get", ORG)["servers"] = [{"url": "https://other.plaza.example.com"}]


def with_header(doc, name="ETag", **header):
    op(doc, "get", ORG)["responses"]["200"]["headers"] = {name: {"schema": {"type": "string"}, **header}}


def remove_a_response_header(old, new):
    with_header(old)


def add_a_response_header(old, new):
    with_header(new)


def narrow_a_response_header(old, new):
    with_header(old, "X-Total", schema={"type": "integer"}, required=True)
    with_header(new, "x-total", schema={"type": "string"})


def describe_a_response_header(old, new):
    with_header(old)
    with_header(new, description="The version of the organisation.")


def remove_a_304_response(old, new):
    op(old, "get", ORG)["responses"]["304"] = {"description": "Not modified"}


def remove_a_404_response(old, new):
    op(old, "get", ORG)["responses"]["404"] = {"description": "Not found"}


def add_a_304_response(old, new):
    op(new, "get", ORG)["responses"]["304"] = {"description": "Not modified"}


def change_path_param_style(old, new):
    param(new, "get", ORG, "org_id")["style"] = "label"


def change_path_param_explode(old, new):
    param(new, "get", ORG, "org_id")["explode"] = True


def change_path_item_param_style(old, new):
    for doc, style in ((old, None), (new, "matrix")):
        item = doc["paths"][ORG]
        params = op(doc, "get", ORG).pop("parameters")
        item["parameters"] = params if style is None else [{**params[0], "style": style}]
        op(doc, "patch", ORG).pop("parameters", None)


def spell_out_the_default_style(old, new):
    param(new, "get", ORG, "org_id").update({"style": "simple", "explode": False})
    param(new, "get", ORGS, "limit").update({"style": "form", "explode": True})


def remove_response_links(old, new):
    op(old, "get", ORG)["responses"]["200"]["links"] = {"self": {"operationId": "apps_orgs_api_get_org"}}


def add_a_callback(old, new):
    op(new, "post", ORGS)["callbacks"] = {"created": {}}


ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "code", "message"],
            "properties": {"type": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def change_the_error_envelope(old, new):
    for doc in (old, new):
        doc["components"]["schemas"]["Error"] = copy.deepcopy(ENVELOPE)
        for method, route in (("get", ORGS), ("post", ORGS)):
            ref = {"$ref": "#/components/schemas/Error"}
            op(doc, method, route)["responses"]["400"] = {"content": {"application/json": {"schema": ref}}}
    component(new, "Error")["properties"]["error"]["properties"]["code"] = {"type": "integer"}


def change_an_error_response_compatibly(old, new):
    change_the_error_envelope(old, new)
    component(new, "Error")["properties"]["error"]["properties"]["code"] = {"type": "string", "maxLength": 40}


BRK, INF = contracts.BREAKING, contracts.INFO
# (change, expected (severity, where, rule[, field]) — each must be reported; without a BREAKING one, none may be)
API_TABLE = [
    (remove_operation, [(BRK, "POST /api/v1/orgs", "operation_removed")]),
    (remove_path, [(BRK, f"GET {ORG}", "operation_removed"), (BRK, f"PATCH {ORG}", "operation_removed")]),
    (add_required_query_param, [(BRK, "GET /api/v1/orgs query parameter 'region'", "parameter_added_required")]),
    (add_optional_query_param, [(INF, "GET /api/v1/orgs query parameter 'region'", "parameter_added")]),
    (lower_param_maximum, [(BRK, "GET /api/v1/orgs query parameter 'limit'", "maximum_lowered", "$")]),
    (raise_param_maximum, [(INF, "GET /api/v1/orgs query parameter 'limit'", "parameter_changed")]),
    (change_param_type, [(BRK, "GET /api/v1/orgs query parameter 'cursor'", "type_changed")]),
    (drop_null_from_optional_param, [(INF, "GET /api/v1/orgs query parameter 'cursor'", "parameter_changed")]),
    (make_param_required, [(BRK, "GET /api/v1/orgs query parameter 'limit'", "parameter_now_required")]),
    (remove_optional_param, [(INF, "GET /api/v1/orgs query parameter 'cursor'", "parameter_removed")]),
    (add_required_request_field, [(BRK, "POST /api/v1/orgs request body", "required_added", "$.region")]),
    (add_optional_request_field, [(INF, "POST /api/v1/orgs request body", "field_added", "$.region")]),
    (shorten_request_field, [(BRK, "POST /api/v1/orgs request body", "max_length_lowered", "$.name")]),
    (change_request_content_type, [(BRK, "POST /api/v1/orgs request body", "request_content_type_changed")]),
    (require_a_body, [(BRK, "GET /api/v1/orgs request body", "body_now_required")]),
    (remove_response_field, [(BRK, f"GET {ORG} response 200", "required_added", "$.slug")]),
    (remove_defaulted_response_field, [(BRK, "GET /api/v1/orgs response 200", "required_added", "$.next_cursor")]),
    (change_response_field_type, [(BRK, f"GET {ORG} response 200", "type_changed", "$.created_at")]),
    (make_response_field_nullable, [(BRK, "POST /api/v1/orgs response 201", "type_changed", "$.name")]),
    (add_response_field, [(INF, f"GET {ORG} response 200", "field_added", "$.region")]),
    (remove_2xx_response, [(BRK, "POST /api/v1/orgs response 201", "response_removed")]),
    (add_2xx_response, [(INF, "POST /api/v1/orgs response 202", "response_added")]),
    (secure_an_open_operation, [(BRK, "GET /api/v1/orgs security", "security_added")]),
    (change_the_security_scheme, [(BRK, "GET /api/v1/orgs security", "security_changed")]),
    (change_a_security_scheme_definition, [(BRK, "security scheme 'PlazaAuth'", "security_scheme_changed")]),
    (add_operation, [(INF, "GET /api/v1/widgets", "operation_added")]),
    (deprecate_operation, [(INF, "POST /api/v1/orgs", "deprecation_changed")]),
    (remove_deprecated_operation_after_sunset, [(INF, "POST /api/v1/orgs", "removed_after_sunset")]),
    (remove_deprecated_operation_before_sunset, [(BRK, "POST /api/v1/orgs", "operation_removed")]),
    (rename_path_parameter, [(INF, "GET /api/v1/orgs/{id}", "path_parameter_renamed")]),
    (edit_a_description, [(INF, "document", "documentation_changed")]),
    (edit_documentation_only, [(INF, "document", "documentation_changed")]),
    (change_the_servers, [(BRK, "servers", "server_removed"), (INF, "servers", "server_added")]),
    (add_a_server, [(INF, "servers", "server_added")]),
    (give_an_operation_its_own_server, [(BRK, f"GET {ORG} servers", "server_removed")]),
    (remove_a_response_header, [(BRK, f"GET {ORG} response 200 header 'etag'", "response_header_removed")]),
    (add_a_response_header, [(INF, f"GET {ORG} response 200 header 'etag'", "response_header_added")]),
    (
        narrow_a_response_header,
        [
            (BRK, f"GET {ORG} response 200 header 'x-total'", "response_header_optional"),
            (BRK, f"GET {ORG} response 200 header 'x-total'", "type_changed", "$"),
        ],
    ),
    (describe_a_response_header, [(INF, "document", "documentation_changed")]),
    (remove_a_304_response, [(BRK, f"GET {ORG} response 304", "response_removed")]),
    (remove_a_404_response, [(BRK, f"GET {ORG} response 404", "response_removed")]),
    (add_a_304_response, [(INF, f"GET {ORG} response 304", "response_added")]),
    (change_path_param_style, [(BRK, f"GET {ORG} path parameter 'org_id'", "parameter_style_changed")]),
    (change_path_param_explode, [(BRK, f"GET {ORG} path parameter 'org_id'", "parameter_style_changed")]),
    (change_path_item_param_style, [(BRK, f"GET {ORG} path parameter 'org_id'", "parameter_style_changed")]),
    (spell_out_the_default_style, [(INF, "document", "documentation_changed")]),
    (remove_response_links, [(BRK, f"GET {ORG} response 200", "unchecked_change")]),
    (add_a_callback, [(INF, "POST /api/v1/orgs", "unchecked_added")]),
    (
        change_the_error_envelope,
        [(BRK, "error envelope (400 of GET /api/v1/orgs and 1 more)", "type_changed", "$.error.code")],
    ),
    (change_an_error_response_compatibly, []),
]


@pytest.mark.parametrize(("change", "expected"), API_TABLE, ids=[c.__name__ for c, _ in API_TABLE])
def test_api_changes_are_classified(current, change, expected):
    old, new = copy.deepcopy(current), copy.deepcopy(current)
    change(old, new)
    found = contracts.compare_openapi(old, new, today=TODAY)
    listing = "\n".join(c.line() for c in found)
    for severity, where, rule, *field in expected:
        assert any(
            (c.severity, c.where, c.rule) == (severity, where, rule) and c.field == (field or [c.field])[0]
            for c in found
        ), f"expected {severity} {where} {rule} {field}, got:\n{listing}"
    if not any(e[0] == BRK for e in expected):
        assert not [c for c in found if c.breaking], listing


def test_an_unchanged_document_has_no_changes(current):
    assert contracts.compare_openapi(current, copy.deepcopy(current), today=TODAY) == []


def test_a_breaking_line_names_the_operation_the_field_and_the_rule(current):
    old, new = copy.deepcopy(current), copy.deepcopy(current)
    add_required_request_field(old, new)
    [change] = [c for c in contracts.compare_openapi(old, new, today=TODAY) if c.breaking]
    assert change.line().startswith("BREAKING api: POST /api/v1/orgs request body: $.region: ")
    assert change.line().endswith("(rule required_added)")
    assert change.pointer.endswith("/required")


# --- (c) event changes ---------------------------------------------------------------------------------------------


def catalog_copy(tmp_path: Path, name: str = "catalog") -> Path:
    target = tmp_path / name
    shutil.copytree(CATALOG_DIR, target)
    return target


def edit(directory: Path, event: str, fn) -> None:
    file = directory / f"{event}.json"
    doc = json.loads(file.read_text())
    fn(doc)
    file.write_text(json.dumps(doc))


def add_version(schema_fn, examples_fn=None):
    """A new last version: ``schema_fn`` applied to the latest schema, with the latest examples (or
    ``examples_fn`` applied to them)."""

    def fn(doc):
        schema = schema_fn(copy.deepcopy(doc["versions"][-1]["schema"]))
        examples = copy.deepcopy(doc["versions"][-1].get("examples", []))
        examples = examples_fn(examples) if examples_fn else examples
        doc["versions"].append({"version": len(doc["versions"]) + 1, "schema": schema, "examples": examples})

    return fn


def unchanged(schema):
    return schema


def with_a_total_number_example(examples):
    examples[0]["total"] = 59.9
    return examples


def no_examples(examples):
    return []


def with_invalid_json_schema(schema):
    schema["properties"]["channel"] = {"type": "string", "maxLength": -1}
    return schema


def with_string_type(schema):
    return {"type": "string"}


def with_optional_field(schema):
    schema["properties"]["channel"] = {"type": "string", "maxLength": 40}
    return schema


def with_required_field(schema):
    schema = with_optional_field(schema)
    schema["required"].append("channel")
    return schema


def without_required_field(schema):
    schema["required"].remove("customer_id")
    return schema


def edit_published(doc):
    doc["versions"][0]["schema"]["properties"]["note"]["maxLength"] = 100


def set_mode(mode):
    def fn(doc):
        doc["compatibility"] = mode

    return fn


EVENTS_TABLE = [
    ("edit a published version", [("order.created", edit_published)], [(BRK, "order.created v1", "version_changed")]),
    (
        "incompatible new version",
        [("order.created", add_version(with_required_field))],
        [(BRK, "order.created v2", "required_added")],
    ),
    (
        "compatible new version",
        [("order.created", add_version(with_optional_field))],
        [(INF, "order.created v2", "version_added")],
    ),
    (
        "loosen the mode",
        [("order.created", set_mode("BACKWARD"))],
        [(BRK, "order.created", "mode_loosened")],
    ),
    (
        "loosen the mode to NONE",
        [("order.fulfilled", set_mode("NONE"))],
        [(BRK, "order.fulfilled", "mode_loosened")],
    ),
    (
        "loosen the mode and add a version only the new mode allows",
        [("order.created", set_mode("BACKWARD")), ("order.created", add_version(without_required_field))],
        [(BRK, "order.created", "mode_loosened"), (BRK, "order.created v2", "required_added")],
    ),
    ("tighten the mode", [("customer.created", set_mode("FULL"))], [(INF, "customer.created", "mode_changed")]),
    ("unknown mode", [("customer.created", set_mode("SIDEWAYS"))], [(BRK, "customer.created", "mode_invalid")]),
    (
        "compatible new version whose example fails its schema",
        [("order.created", add_version(with_optional_field, with_a_total_number_example))],
        [(BRK, "order.created v2", "version_invalid", "$.examples[0].total")],
    ),
    (
        "compatible new version without examples",
        [("order.created", add_version(with_optional_field, no_examples))],
        [(BRK, "order.created v2", "version_invalid", "$.examples")],
    ),
    (
        "new version that is not a valid JSON Schema",
        [("order.created", add_version(with_invalid_json_schema))],
        [(BRK, "order.created v2", "version_invalid", "$.schema.properties.channel.maxLength")],
    ),
    (
        "new version that is not an object schema",
        [("order.created", set_mode("NONE")), ("order.created", add_version(with_string_type))],
        [(BRK, "order.created v2", "version_invalid", "$.schema.type")],
    ),
    (
        "new version identical to the latest",
        [("order.created", add_version(unchanged))],
        [(BRK, "order.created v2", "version_unchanged")],
    ),
]


@pytest.mark.parametrize(("label", "edits", "expected"), EVENTS_TABLE, ids=[row[0] for row in EVENTS_TABLE])
def test_event_changes_are_classified(tmp_path, label, edits, expected):
    snapshot = contracts.events_document()
    directory = catalog_copy(tmp_path)
    for event, fn in edits:
        edit(directory, event, fn)
    found = contracts.compare_events(snapshot, contracts.events_document(directory))
    listing = "\n".join(c.line() for c in found)
    for severity, where, rule, *field in expected:
        assert any(
            (c.severity, c.where, c.rule) == (severity, where, rule) and c.field == (field or [c.field])[0]
            for c in found
        ), listing
    if not any(e[0] == BRK for e in expected):
        assert not [c for c in found if c.breaking], listing
    if any(e[2] in ("version_invalid", "version_unchanged") for e in expected):
        assert not [c for c in found if c.rule == "version_added"], listing


def test_removed_version_and_removed_type_are_breaking(tmp_path):
    directory = catalog_copy(tmp_path)
    edit(directory, "order.created", add_version(with_optional_field))
    snapshot = contracts.events_document(directory)
    edit(directory, "order.created", lambda doc: doc["versions"].pop())
    (directory / "order.fulfilled.json").unlink()
    found = {
        (c.severity, c.where, c.rule) for c in contracts.compare_events(snapshot, contracts.events_document(directory))
    }
    assert (BRK, "order.created v2", "version_removed") in found
    assert (BRK, "order.fulfilled", "event_type_removed") in found


def test_a_new_event_type_is_info_but_its_versions_must_be_compatible(tmp_path):
    snapshot = contracts.events_document()
    directory = catalog_copy(tmp_path)
    doc = json.loads((directory / "order.created.json").read_text())
    doc["name"] = "order.cancelled"
    doc["versions"].append({"version": 2, "schema": with_required_field(copy.deepcopy(doc["versions"][0]["schema"]))})
    (directory / "order.cancelled.json").write_text(json.dumps(doc))
    found = {
        (c.severity, c.where, c.rule) for c in contracts.compare_events(snapshot, contracts.events_document(directory))
    }
    assert (INF, "order.cancelled", "event_type_added") in found
    assert (BRK, "order.cancelled v2", "required_added") in found


def test_the_events_snapshot_holds_every_shipped_type_with_fingerprints():
    doc = contracts.events_document()
    assert set(doc) == {p.stem for p in CATALOG_DIR.glob("*.json")}
    v1 = doc["order.created"]["versions"]["1"]
    assert doc["order.created"]["compatibility"] == "FULL_TRANSITIVE"
    assert len(v1["fingerprint"]) == 64 and v1["schema"]["type"] == "object"
    assert not [v for t in doc.values() for v in t["versions"].values() if "problems" in v]  # all registrable


def test_an_invalid_version_of_a_new_type_is_breaking_with_its_path(tmp_path):
    snapshot = contracts.events_document()
    directory = catalog_copy(tmp_path)
    doc = json.loads((directory / "order.created.json").read_text())
    doc["name"] = "order.cancelled"
    doc["versions"][0]["examples"][0]["currency"] = "euro"
    (directory / "order.cancelled.json").write_text(json.dumps(doc))
    current = contracts.events_document(directory)
    assert current["order.cancelled"]["versions"]["1"]["problems"][0]["path"] == "$.examples[0].currency"
    found = [c for c in contracts.compare_events(snapshot, current) if c.breaking]
    assert [(c.where, c.rule, c.field) for c in found] == [
        ("order.cancelled v1", "version_invalid", "$.examples[0].currency")
    ]
    assert found[0].line().startswith("BREAKING events: order.cancelled v1: $.examples[0].currency: 'euro' does not")
    assert found[0].line().endswith("(the registry refuses this version: pattern) (rule version_invalid)")


# --- (c2) token scopes and roles ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy() -> dict:
    return contracts.policy_document()


def remove_action(old, new):
    del new["actions"]["extension.view"]


def change_action_scope(old, new):
    new["actions"]["extension.view"]["scope"] = "org:read"


def take_roles_from_action(old, new):
    new["actions"]["extension.view"]["roles"] = ["admin", "owner"]


def give_role_to_action(old, new):
    new["actions"]["audit.view"]["roles"] = sorted([*new["actions"]["audit.view"]["roles"], "developer"])


def add_action(old, new):
    new["actions"]["report.view"] = {"scope": "audit:read", "roles": ["admin", "owner"]}


def remove_scope(old, new):
    del new["scopes"]["audit:read"]


def add_scope(old, new):
    new["scopes"]["reports:read"] = "Read reports"


def describe_scope(old, new):
    new["scopes"]["audit:read"] = "Read the audit log"


EXT = "action 'extension.view'"
POLICY_TABLE = [
    (remove_action, [(BRK, EXT, "action_removed")]),
    (change_action_scope, [(BRK, EXT, "action_scope_changed")]),
    (
        take_roles_from_action,
        [
            (BRK, EXT, "role_removed", "billing"),
            (BRK, EXT, "role_removed", "developer"),
            (BRK, EXT, "role_removed", "member"),
        ],
    ),
    (give_role_to_action, [(INF, "action 'audit.view'", "role_added", "developer")]),
    (add_action, [(INF, "action 'report.view'", "action_added")]),
    (remove_scope, [(BRK, "scope 'audit:read'", "scope_removed")]),
    (add_scope, [(INF, "scope 'reports:read'", "scope_added")]),
    (describe_scope, [(INF, "scope 'audit:read'", "scope_description_changed")]),
]


@pytest.mark.parametrize(("change", "expected"), POLICY_TABLE, ids=[c.__name__ for c, _ in POLICY_TABLE])
def test_policy_changes_are_classified(policy, change, expected):
    old, new = copy.deepcopy(policy), copy.deepcopy(policy)
    change(old, new)
    found = contracts.compare_policy(old, new)
    listing = "\n".join(c.line() for c in found)
    for severity, where, rule, *word in expected:
        assert any(
            (c.area, c.severity, c.where, c.rule) == ("policy", severity, where, rule)
            and (word or [""])[0] in c.message
            for c in found
        ), f"expected {severity} {where} {rule} {word}, got:\n{listing}"
    assert len(found) == len(expected), listing
    assert contracts.compare_policy(policy, copy.deepcopy(policy)) == []


def test_the_policy_snapshot_holds_every_action_and_scope(policy):
    from apps.orgs.policy import ACTIONS, SCOPES

    assert set(policy["actions"]) == set(ACTIONS) and policy["scopes"] == SCOPES
    assert policy["actions"]["org.policy.update"] == {"scope": "org:write", "roles": ["owner"]}
    assert policy["actions"]["extension.view"]["roles"] == sorted(policy["actions"]["extension.view"]["roles"])


# --- (d) the command and --update --------------------------------------------------------------------------------


@pytest.fixture
def snapshots(tmp_path) -> Path:
    directory = tmp_path / "contracts"
    code, out = run("--update", snapshot_dir=str(directory))
    assert code == 0 and "created" in out, out
    return directory


def add_ghost_operation(directory: Path) -> None:
    """The snapshot has an operation the code lacks: as if the code removed it."""
    file = directory / contracts.OPENAPI_FILE
    doc = json.loads(file.read_text())
    doc["paths"]["/api/v1/ghosts"] = {"get": {"operationId": "ghosts", "responses": {"200": {"description": "OK"}}}}
    file.write_text(contracts.render(doc))


def test_update_creates_snapshots_that_then_pass(snapshots):
    assert {p.name for p in snapshots.iterdir()} == {"openapi.json", "events.json", "policy.json"}
    code, out = run(snapshot_dir=str(snapshots))
    assert code == 0 and out.startswith("contracts OK")


def test_missing_snapshots_fail_and_name_the_command(tmp_path):
    code, out = run(snapshot_dir=str(tmp_path / "nowhere"))
    assert code == 1 and "No snapshot yet" in out and contracts.UPDATE_COMMAND in out


def test_a_breaking_change_fails_with_a_readable_report(snapshots):
    add_ghost_operation(snapshots)
    code, out = run(snapshot_dir=str(snapshots))
    assert code == 1
    assert out.startswith("contracts FAILED: 1 breaking change against ")
    assert "== REST API: breaking changes" in out
    assert "BREAKING api: GET /api/v1/ghosts: The operation was removed" in out
    assert "(rule operation_removed)" in out and "--update --allow-breaking" in out


def test_json_report(snapshots):
    add_ghost_operation(snapshots)
    code, out = run("--json", snapshot_dir=str(snapshots))
    report = json.loads(out)
    assert code == 1 and report["status"] == "breaking"
    [change] = report["breaking"]
    assert (change["area"], change["severity"], change["where"]) == ("api", "breaking", "GET /api/v1/ghosts")
    assert change["rule"] == "operation_removed" and change["message"] and report["info"] == []


def test_update_refuses_breaking_changes_unless_allowed(snapshots):
    add_ghost_operation(snapshots)
    before = (snapshots / "openapi.json").read_text()
    code, out = run("--update", snapshot_dir=str(snapshots))
    assert code == 1 and "Refusing to update the snapshots: 1 breaking change(s)" in out
    assert (snapshots / "openapi.json").read_text() == before
    code, out = run("--update", "--allow-breaking", snapshot_dir=str(snapshots))
    assert code == 0, out
    assert "BREAKING api: GET /api/v1/ghosts" in out and "contracts/openapi.json: updated (1 breaking, 0 info)" in out
    assert run(snapshot_dir=str(snapshots))[0] == 0


def test_an_addition_only_needs_an_update(snapshots, current):
    file = snapshots / contracts.OPENAPI_FILE
    doc = json.loads(file.read_text())
    del doc["paths"][ORGS]["post"]  # the code has an operation the snapshot lacks
    file.write_text(contracts.render(doc))
    code, out = run(snapshot_dir=str(snapshots))
    assert code == 1 and "no breaking change, but" in out and "out of date (openapi.json)" in out
    assert "info api: POST /api/v1/orgs: New operation. (rule operation_added)" in out
    code, out = run("--update", snapshot_dir=str(snapshots))
    assert code == 0 and "contracts/openapi.json: updated (0 breaking, 1 info)" in out
    assert file.read_text() == contracts.render(current)


def test_event_catalog_changes_go_through_catalog_dir(snapshots, tmp_path):
    directory = catalog_copy(tmp_path)
    edit(directory, "order.created", edit_published)
    code, out = run(snapshot_dir=str(snapshots), catalog_dir=str(directory))
    assert code == 1 and "== Event schemas: breaking changes" in out
    assert "BREAKING events: order.created v1: Published version 1 was edited" in out
    code, out = run("--update", snapshot_dir=str(snapshots), catalog_dir=str(directory))
    assert code == 1 and "Refusing" in out


def test_an_invalid_catalog_version_fails_the_command(snapshots, tmp_path):
    directory = catalog_copy(tmp_path)
    edit(directory, "order.created", add_version(with_optional_field, with_a_total_number_example))
    code, out = run(snapshot_dir=str(snapshots), catalog_dir=str(directory))
    assert code == 1 and "== Event schemas: breaking changes" in out
    assert "BREAKING events: order.created v2: $.examples[0].total: 59.9 is not of type 'string'" in out
    assert "version_added" not in out


def test_a_token_scope_or_role_change_in_the_code_fails_the_command(snapshots, monkeypatch):
    from apps.orgs import policy
    from apps.orgs.models import Role

    monkeypatch.setitem(policy.ACTIONS, "extension.view", ("org:read", frozenset({Role.OWNER, Role.ADMIN})))
    code, out = run(snapshot_dir=str(snapshots))
    assert code == 1 and out.startswith("contracts FAILED: 4 breaking changes against ")
    assert "== Token scopes and roles: breaking changes" in out
    assert (
        "BREAKING policy: action 'extension.view': Its scope changed from extensions:read to org:read: tokens "
        "issued with extensions:read would be refused. (rule action_scope_changed)"
    ) in out
    assert "BREAKING policy: action 'extension.view': The role member may no longer do it. (rule role_removed)" in out
    code, out = run("--update", snapshot_dir=str(snapshots))
    assert code == 1 and "Refusing" in out


def test_a_new_action_only_needs_an_update(snapshots, monkeypatch):
    from apps.orgs import policy
    from apps.orgs.models import Role

    monkeypatch.setitem(policy.ACTIONS, "report.view", ("audit:read", frozenset({Role.OWNER})))
    code, out = run(snapshot_dir=str(snapshots))
    assert code == 1 and "out of date (policy.json)" in out
    assert "info policy: action 'report.view': New action (scope audit:read, roles owner). (rule action_added)" in out
    code, out = run("--update", snapshot_dir=str(snapshots))
    assert code == 0 and "contracts/policy.json: updated (0 breaking, 1 info)" in out
    assert json.loads((snapshots / "policy.json").read_text())["actions"]["report.view"]["roles"] == ["owner"]


def test_an_unreadable_catalog_is_reported_and_never_written(snapshots, tmp_path):
    directory = catalog_copy(tmp_path)
    (directory / "order.created.json").write_text("{not json")
    code, out = run("--update", "--allow-breaking", snapshot_dir=str(snapshots), catalog_dir=str(directory))
    assert code == 1 and "catalog_invalid" in out and "Refusing" in out


# --- (e) deprecation headers -----------------------------------------------------------------------------------------

SINCE, SUNSET = dt.date(2026, 1, 1), dt.date(2026, 7, 1)
LINK = "https://plaza.example.com/docs/changes#widgets"
router = Router()


@router.get("/widgets")
@deprecate(since=SINCE, sunset=SUNSET, link=LINK)
def list_widgets(request):
    return {"widgets": []}


@deprecate(since=SINCE, sunset=SUNSET)
@router.post("/widgets")
def create_widget(request):
    raise ValidationFailed("No widgets today.", param="name")


@router.get("/gadgets")
def list_gadgets(request):
    return {"gadgets": []}


widgets_api = NinjaAPI(urls_namespace="deprecation-test", docs_url=None)
install_exception_handlers(widgets_api)
widgets_api.add_router("", router)
urlpatterns = [path("api/test/", widgets_api.urls)]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_deprecated_operation_answers_with_deprecation_sunset_and_link(client):
    res = client.get("/api/test/widgets")
    assert res.status_code == 200
    assert res["Deprecation"] == "@1767225600"  # 2026-01-01T00:00:00Z, RFC 9745
    assert res["Sunset"] == "Wed, 01 Jul 2026 00:00:00 GMT"  # RFC 8594 HTTP-date
    assert res["Link"] == f'<{LINK}>; rel="deprecation"'


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_errors_of_a_deprecated_operation_carry_the_headers_too(client):
    res = client.post("/api/test/widgets", data={}, content_type="application/json")
    assert res.status_code == 400 and res.json()["error"]["param"] == "name"
    assert res["Deprecation"] == "@1767225600" and "Link" not in res


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_other_operations_have_no_deprecation_headers(client):
    res = client.get("/api/test/gadgets")
    assert res.status_code == 200
    assert not {"Deprecation", "Sunset", "Link"} & set(res.headers)


def test_the_document_marks_deprecated_operations_for_the_gate():
    doc = json.loads(contracts.render(widgets_api.get_openapi_schema(path_prefix="/api/test/")))
    widgets = doc["paths"]["/api/test/widgets"]
    for method in ("get", "post"):
        assert widgets[method]["deprecated"] is True
        assert widgets[method]["x-sunset"] == "2026-07-01"
        assert widgets[method]["x-deprecated-since"] == "2026-01-01"
    assert widgets["get"]["x-deprecation-link"] == LINK
    assert "deprecated" not in doc["paths"]["/api/test/gadgets"]["get"]

    removed = copy.deepcopy(doc)
    del removed["paths"]["/api/test/widgets"]
    del removed["paths"]["/api/test/gadgets"]
    early = {(c.severity, c.rule) for c in contracts.compare_openapi(doc, removed, today=dt.date(2026, 6, 30))}
    late = {(c.where, c.severity, c.rule) for c in contracts.compare_openapi(doc, removed, today=SUNSET)}
    assert early == {(BRK, "operation_removed")}
    assert late == {
        ("GET /api/test/widgets", INF, "removed_after_sunset"),
        ("POST /api/test/widgets", INF, "removed_after_sunset"),
        ("GET /api/test/gadgets", BRK, "operation_removed"),
    }


def test_the_sunset_gives_at_least_six_months_notice():
    with pytest.raises(ValueError, match="at least 6 months"):
        Deprecation(since=dt.date(2026, 1, 31), sunset=dt.date(2026, 7, 30))
    assert Deprecation(since=dt.date(2026, 8, 31), sunset=dt.date(2027, 2, 28)).sunset.month == 2
