"""RFC 7644 conformance: discovery, error bodies, status codes and scimType for malformed input,
and hostile bodies that must never produce a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.orgs.models import Role
from tests.conftest import issue_token

pytestmark = pytest.mark.django_db(transaction=True)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def assert_error(response, status: int, scim_type: str | None = None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status) and body["detail"]
    if scim_type:
        assert body["scimType"] == scim_type


def test_discovery_lists_are_list_responses(acme, scim_for):
    client, raw = scim_for(acme.org)  # scim2-client's discover() parsed all three already
    config = raw("GET", "ServiceProviderConfig").json()
    assert config["etag"]["supported"] is True and config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False and config["sort"]["supported"] is False
    for path in ("Schemas", "ResourceTypes"):
        body = raw("GET", path).json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
        assert body["totalResults"] == len(body["Resources"]) > 0
    assert raw("GET", f"Schemas/{USER}").json()["id"] == USER
    assert raw("GET", "ResourceTypes/User").json()["endpoint"] == "/Users"
    assert_error(raw("GET", "Schemas/urn:nope"), 404)
    assert_error(raw("GET", "ResourceTypes/Nope"), 404)
    assert_error(raw("GET", "Schemas", params={"filter": 'id eq "x"'}), 403)
    assert {s.id for s in client.provider.resource_types} == {"User", "Group"}


def test_authentication_errors_are_scim_errors(acme, live_server):
    from tests.orgs.scim.conftest import Raw

    base = f"{live_server.url}/scim/v2/"
    assert_error(Raw(base, None)("GET", "Users"), 401)
    assert_error(Raw(base, "plz_" + "x" * 40)("GET", "Users"), 401)
    no_scope = issue_token(acme.org, role=Role.ADMIN, scopes=["members:read"])
    assert_error(Raw(base, no_scope)("GET", "Users"), 403)
    developer = issue_token(acme.org, role=Role.DEVELOPER, scopes=["scim:write"])
    assert_error(Raw(base, developer)("GET", "Users"), 403)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "scim_type"),
    [
        ("GET", "Users?filter=userName%20eq", None, 400, "invalidFilter"),
        ("GET", "Users?filter=userName%20zz%20%22a%22", None, 400, "invalidFilter"),
        ("GET", "Users?startIndex=abc", None, 400, "invalidValue"),
        ("POST", "Users", b"{not json", 400, "invalidSyntax"),
        ("POST", "Users", b"[1,2]", 400, "invalidSyntax"),
        ("POST", "Users", {"userName": "x@acme.test"}, 400, "invalidSyntax"),
        ("POST", "Users", {"schemas": [USER]}, 400, "invalidValue"),
        ("POST", "Users", {"schemas": [USER], "userName": 42}, 400, "invalidValue"),
        ("POST", "Users", {"schemas": [USER], "userName": "not an email"}, 400, "invalidValue"),
        ("POST", "Users", {"schemas": [USER], "userName": "a@acme.test", "emails": "a@acme.test"}, 400, "invalidValue"),
        ("POST", "Users", {"schemas": [USER], "userName": "a@acme.test", "active": "maybe"}, 400, "invalidValue"),
        (
            "POST",
            "Users",
            {
                "schemas": [USER],
                "userName": "a@acme.test",
                "emails": [{"value": "a", "primary": True}, {"value": "b", "primary": True}],
            },
            400,
            "invalidValue",
        ),
        ("POST", "Users", {"schemas": [USER], "userName": "a\u0000@acme.test"}, 400, "invalidValue"),
        ("PATCH", "Users/{id}", {"schemas": [PATCH], "Operations": [{"op": "remove"}]}, 400, "noTarget"),
        (
            "PATCH",
            "Users/{id}",
            {
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": 'emails[type eq "fax"].value', "value": "x"}],
            },
            400,
            "noTarget",
        ),
        (
            "PATCH",
            "Users/{id}",
            {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "no.such.path!", "value": 1}]},
            400,
            "invalidPath",
        ),
        (
            "PATCH",
            "Users/{id}",
            {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "bogus", "value": 1}]},
            400,
            "invalidPath",
        ),
        (
            "PATCH",
            "Users/{id}",
            {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "emails[type eq", "value": 1}]},
            400,
            "invalidPath",
        ),
        (
            "PATCH",
            "Users/{id}",
            {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "id", "value": "mem_x"}]},
            400,
            "mutability",
        ),
        (
            "PATCH",
            "Users/{id}",
            {"schemas": [PATCH], "Operations": [{"op": "add", "path": "groups", "value": [{"value": "grp_x"}]}]},
            400,
            "mutability",
        ),
        (
            "PATCH",
            "Users/{id}",
            {"schemas": [PATCH], "Operations": [{"op": "jump", "path": "title", "value": "x"}]},
            400,
            "invalidSyntax",
        ),
        ("PATCH", "Users/{id}", {"schemas": [PATCH], "Operations": []}, 400, "invalidSyntax"),
        (
            "PATCH",
            "Users/{id}",
            {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": [1]}]},
            400,
            "invalidValue",
        ),
        ("GET", "Users/mem_doesnotexist0000", None, 404, None),
        ("GET", "Users/a%2Fb", None, 404, None),
        ("GET", "Nope", None, 404, None),
        ("DELETE", "Users", None, 405, None),
        ("POST", "Bulk", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]}, 501, None),
    ],
)
def test_malformed_requests_get_rfc_errors(acme, scim_for, method, path, body, status, scim_type):
    client, raw = scim_for(acme.org)
    member = raw("POST", "Users", {"schemas": [USER], "userName": "ada@acme.test"}).json()
    assert_error(raw(method, path.replace("{id}", member["id"]), body), status, scim_type)


def test_huge_and_deep_bodies_are_refused_without_500(acme, scim_for):
    client, raw = scim_for(acme.org)
    assert_error(raw("POST", "Users", b'{"schemas": ["' + b"x" * (2 * 1024 * 1024) + b'"]}'), 413)
    deep = b"[" * 100000 + b"]" * 100000
    assert raw("POST", "Users", deep).status_code == 400
    nested = {"schemas": [USER], "userName": "a@acme.test", "name": json.loads("[" * 40 + "]" * 40)}
    assert raw("POST", "Users", nested).status_code == 400
    assert raw("POST", "Users", b"\xff\xfe").status_code == 400
    big_number = b'{"schemas": ["' + USER.encode() + b'"], "userName": "a@acme.test", "title": ' + b"9" * 5000 + b"}"
    assert raw("POST", "Users", big_number).status_code == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
paths = st.sampled_from(
    [
        "title",
        "emails",
        'emails[type eq "work"].value',
        "name.givenName",
        "active",
        "members",
        "userName",
        "meta",
        "x[",
        "",
        None,
    ]
)
ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Replace", "remove", "bogus"]), "path": paths, "value": json_values}
)


def test_patch_never_answers_500(acme, scim_for):
    client, raw = scim_for(acme.org)
    member = raw(
        "POST",
        "Users",
        {"schemas": [USER], "userName": "ada@acme.test", "emails": [{"value": "a@example.com", "type": "work"}]},
    ).json()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(ops, min_size=1, max_size=4))
    def check(operations):
        response = raw("PATCH", f"Users/{member['id']}", {"schemas": [PATCH], "Operations": operations})
        assert response.status_code in (200, 400, 409), response.text
        if response.status_code >= 400:
            assert response.json()["schemas"] == [ERROR]

    check()


@pytest.mark.parametrize("start", ["100000000000000000000", str(2**63), "-5"])
def test_a_start_index_far_past_the_end_is_an_empty_page_not_an_error(acme, scim_for, start):
    _, raw = scim_for(acme.org)
    for resource in ("Users", "Groups"):
        body = raw("GET", resource, params={"startIndex": start, "count": "100000000000000000000"}).json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
        if start != "-5":
            assert body["Resources"] == [] and body["totalResults"] >= 0
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "startIndex": int(start)}
    assert raw("POST", ".search", search).status_code == 200
