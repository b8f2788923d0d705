"""The event schema registry: the catalog is readable by everyone signed in, writable by platform
staff, and every new version is held to the type's compatibility mode."""

from __future__ import annotations

import copy

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.events.catalog_sync import CATALOG_DIR, CatalogError, sync_catalog
from apps.events.models import EventSchema
from tests.orgs.test_authorization import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db):
    sync_catalog()


@pytest.fixture
def staff(globex, api_for, catalog):
    """globex is the platform organisation; a developer token of it is staff."""
    globex.org.is_platform = True
    globex.org.save(update_fields=["is_platform"])
    return api_for(globex.org, role="developer")


def order_schema() -> dict:
    return copy.deepcopy(EventSchema.objects.get(event_type__name="order.created", version=1).schema)


def order_example() -> dict:
    return copy.deepcopy(EventSchema.objects.get(event_type__name="order.created", version=1).examples[0])


def test_the_catalog_is_listed_for_anyone_signed_in(acme, api_for, catalog):
    api = api_for(acme.org, role="member", scopes=["org:read"])
    body = api.call("GET", "event-types").json()
    names = [t["name"] for t in body["data"]]
    assert {"order.created", "order.fulfilled", "customer.created"} <= set(names)
    order = next(t for t in body["data"] if t["name"] == "order.created")
    assert order["scope"] == "events:read:order.created" and order["latest_version"] == 1
    assert order["compatibility"] == "FULL_TRANSITIVE"
    v1 = api.call("GET", "event-types/order.created/versions/1").json()
    assert v1["schema"]["type"] == "object" and v1["examples"]
    assert_error(api.call("GET", "event-types/nope.nothing"), 404)
    assert_error(api.call("GET", "event-types/order.created/versions/2"), 404)


def test_only_platform_staff_register(acme, api_for, catalog):
    api = api_for(acme.org, role="owner")
    body = {"name": "invoice.paid", "description": "Paid.", "schema": {"type": "object"}, "examples": [{}]}
    assert_error(api.call("POST", "event-types", body), 403, "staff_only")
    assert_error(api.call("POST", "event-types/order.created/versions", {"schema": {}, "examples": []}), 403)
    assert_error(api.call("PATCH", "event-types/order.created", {"compatibility": "NONE"}), 403, "staff_only")


def test_staff_need_a_builder_role_and_the_scope(globex, api_for, staff):
    member = api_for(globex.org, role="member")
    body = {"name": "invoice.paid", "description": "Paid.", "schema": {"type": "object"}, "examples": [{}]}
    assert_error(member.call("POST", "event-types", body), 403, "role")
    scoped = api_for(globex.org, role="owner", scopes=["org:read"])
    assert_error(scoped.call("POST", "event-types", body), 403, "missing_scope")


def test_staff_register_a_type_and_it_is_audited(globex, staff):
    body = {
        "name": "invoice.paid",
        "description": "An invoice was paid.",
        "compatibility": "BACKWARD",
        "schema": {"type": "object", "required": ["invoice_id"], "properties": {"invoice_id": {"type": "string"}}},
        "examples": [{"invoice_id": "inv_1"}],
    }
    res = staff.call("POST", "event-types", body)
    assert res.status_code == 201, res.content
    assert res.json()["latest_version"] == 1
    assert AuditEvent.objects.filter(org_id=globex.org.pk, action="event_type.created").exists()
    assert_error(staff.call("POST", "event-types", body), 409, "event_type_exists")


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"name": "Invoice Paid"}, "event_name_invalid"),
        ({"name": "invoice"}, "event_name_invalid"),
        ({"compatibility": "SIDEWAYS"}, "compatibility_mode_invalid"),
        ({"schema": {"type": "nonsense"}}, "event_schema_invalid"),
        ({"schema": {"type": "array"}}, "event_schema_invalid"),
        (
            {"schema": {"type": "object", "properties": {"a": {"$ref": "https://evil.example/x"}}}},
            "event_schema_invalid",
        ),
        ({"examples": []}, "event_schema_invalid"),
        ({"examples": [{"invoice_id": 5}]}, "event_schema_invalid"),
    ],
)
def test_bad_event_types_are_refused_with_the_reason(staff, patch, code):
    body = {
        "name": "invoice.paid",
        "description": "An invoice was paid.",
        "schema": {"type": "object", "properties": {"invoice_id": {"type": "string"}}},
        "examples": [{"invoice_id": "inv_1"}],
        **patch,
    }
    assert_error(staff.call("POST", "event-types", body), 400, code)


def test_a_compatible_version_is_registered(staff):
    schema = order_schema()
    schema["properties"]["gift_wrap"] = {"type": "boolean"}  # an optional field: FULL compatible
    example = {**order_example(), "gift_wrap": True}
    res = staff.call(
        "POST",
        "event-types/order.created/versions",
        {"schema": schema, "examples": [example], "changelog": "Gift wrap."},
    )
    assert res.status_code == 201, res.content
    assert res.json()["version"] == 2


def test_a_breaking_version_is_refused_with_a_precise_report(staff):
    schema = order_schema()
    schema["required"].append("channel")  # producers of v1 never send it: breaks BACKWARD
    schema["properties"]["channel"] = {"type": "string"}
    schema["properties"]["total"] = {"type": "number"}  # string → number: breaks both ways
    example = {**order_example(), "channel": "web", "total": 59.9}
    res = staff.call("POST", "event-types/order.created/versions", {"schema": schema, "examples": [example]})
    error = assert_error(res, 409, "event_schema_incompatible")
    paths = {(d["path"], d["direction"], d["against_version"]) for d in error["details"]}
    assert any("total" in p for p, _, _ in paths), error["details"]
    assert any(d["rule"] == "required_added" for d in error["details"]), error["details"]
    assert EventSchema.objects.filter(event_type__name="order.created").count() == 1


def test_the_dry_run_reports_without_registering(staff):
    schema = order_schema()
    del schema["properties"]["note"]
    res = staff.call("POST", "event-types/order.created/compatibility", {"schema": schema})
    assert res.status_code == 200 and res.json()["compatible"] is True
    schema["required"].remove("currency")  # FORWARD break: old readers require it
    res = staff.call("POST", "event-types/order.created/compatibility", {"schema": schema})
    body = res.json()
    assert body["compatible"] is False and body["mode"] == "FULL_TRANSITIVE"
    assert all(p["direction"] == "forward" for p in body["problems"]), body
    res = staff.call("POST", "event-types/order.created/compatibility", {"schema": schema, "compatibility": "BACKWARD"})
    assert res.json()["compatible"] is True


def test_an_identical_schema_is_not_a_new_version(staff):
    res = staff.call(
        "POST", "event-types/order.created/versions", {"schema": order_schema(), "examples": [order_example()]}
    )
    assert_error(res, 409, "event_schema_unchanged")


def test_mode_changes_are_audited(globex, staff):
    res = staff.call("PATCH", "event-types/order.created", {"compatibility": "BACKWARD", "deprecated": True})
    assert res.status_code == 200 and res.json()["compatibility"] == "BACKWARD" and res.json()["deprecated"]
    entry = AuditEvent.objects.get(org_id=globex.org.pk, action="event_type.updated")
    assert entry.changes == {
        "compatibility": {"before": "FULL_TRANSITIVE", "after": "BACKWARD"},
        "deprecated": {"before": False, "after": True},
    }


# --- published schema documents ------------------------------------------------------------------
def test_schemas_are_served_publicly_with_etags(client, catalog):
    res = client.get("/schemas/events/order.created/1.json")
    assert res.status_code == 200
    assert res["Content-Type"] == "application/schema+json"
    assert res["Access-Control-Allow-Origin"] == "*"
    doc = res.json()
    assert doc["$schema"].endswith("2020-12/schema") and doc["$id"].endswith("/schemas/events/order.created/1.json")
    assert doc["examples"] and doc["required"]
    again = client.get("/schemas/events/order.created/1.json", HTTP_IF_NONE_MATCH=res["ETag"])
    assert again.status_code == 304
    for path in ("/schemas/events/order.created/2.json", "/schemas/events/nope.x/1.json",
                 "/schemas/events/order.created/99999999999999999999.json"):  # fmt: skip
        assert client.get(path).status_code == 404


def test_manifest_schema_is_served(client):
    res = client.get("/schemas/extension.v1.json")
    assert res.status_code == 200
    doc = res.json()
    assert doc["$id"] == "http://testserver/schemas/extension.v1.json"
    assert "scopes" in doc["properties"] and doc["additionalProperties"] is False


# --- the catalog files ---------------------------------------------------------------------------
def test_sync_is_idempotent_and_refuses_edits_to_published_versions(tmp_path, db):
    assert call_command("sync_event_catalog") is None
    assert sync_catalog() == []
    for path in CATALOG_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    edited = tmp_path / "order.fulfilled.json"
    edited.write_text(edited.read_text().replace('"maxLength": 100}', '"maxLength": 50}', 1))
    with pytest.raises(CatalogError, match="never change"):
        sync_catalog(directory=tmp_path)


@pytest.mark.parametrize("path", ["event-types/a%00b", "event-types/a%00b/versions", "event-types/a%00b/versions/1",
                                  "event-types/Order.Created", "event-types/" + "a." * 150 + "b"])  # fmt: skip
def test_names_that_cannot_exist_are_not_found(acme, api_for, catalog, path):
    assert_error(api_for(acme.org).call("GET", path), 404)


def test_unstorable_text_in_schemas_or_examples_is_refused(staff):
    body = {"name": "invoice.paid", "description": "Paid.", "schema": {"type": "object"}, "examples": [{"a": "\ud800"}]}
    assert_error(staff.call("POST", "event-types", body), 400)
    from apps.events.services import validate_event_schema

    problems = validate_event_schema({"type": "object", "title": "x\x00"}, [{}])
    assert problems == [{"path": "$.schema.title", "rule": "text_invalid", "message": problems[0]["message"]}]
    problems = validate_event_schema({"type": "object"}, [{"note": "\ud800"}])
    assert problems[0]["path"] == "$.examples[0].note" and problems[0]["rule"] == "text_invalid"
