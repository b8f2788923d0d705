"""SCIM Users over HTTP with scim2-client: create, read, filter, patch, replace, deactivate, delete."""

from __future__ import annotations

import pytest
from scim2_models import Email, EnterpriseUser, Name, PatchOp, PatchOperation, PhoneNumber, SearchRequest, User

from apps.orgs.models import Membership, MemberSource, Role

pytestmark = pytest.mark.django_db(transaction=True)

EMAILS = [
    {"value": "ada@example.com", "type": "work", "primary": True},
    {"value": "ada@example.org", "type": "home"},
]


def new_user(user_name="ada@acme.test", **extra) -> User:
    return User[EnterpriseUser](
        user_name=user_name,
        external_id=extra.pop("external_id", "okta-1"),
        name=Name(given_name="Ada", family_name="Lovelace", formatted="Ada Lovelace"),
        display_name="Ada Lovelace",
        emails=[Email(**{**e}) for e in EMAILS],
        phone_numbers=[PhoneNumber(value="+44 20 7946 0000", type="work")],
        title="Analyst",
        active=True,
        **extra,
    )


def test_create_provisions_a_scim_member_with_the_default_role_and_round_trips_attributes(acme, scim_for):
    # given
    client, raw = scim_for(acme.org)
    # when
    created = client.create(new_user())
    # then
    membership = Membership.objects.get(pk=created.id)
    assert membership.org == acme.org and membership.source == MemberSource.SCIM and membership.role == Role.MEMBER
    assert not membership.user.has_usable_password()
    assert created.user_name == "ada@acme.test" and created.external_id == "okta-1" and created.active is True
    body = raw("GET", f"Users/{created.id}").json()
    assert body["emails"] == EMAILS
    assert body["phoneNumbers"] == [{"value": "+44 20 7946 0000", "type": "work"}]
    assert body["name"] == {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"}
    assert body["meta"]["resourceType"] == "User" and body["meta"]["version"].startswith('W/"')
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{created.id}")


def test_duplicate_user_name_is_a_uniqueness_conflict_case_insensitively(acme, scim_for):
    client, raw = scim_for(acme.org)
    client.create(new_user())
    response = raw(
        "POST", "Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ADA@acme.test"}
    )
    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness" and response.json()["status"] == "409"
    # an existing manual member is a uniqueness conflict too
    response = raw(
        "POST", "Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob@acme.test"}
    )
    assert response.status_code == 201
    assert (
        raw(
            "POST", "Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@acme.test"}
        ).status_code
        == 409
    )


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ('userName eq "ADA@acme.test"', ["ada@acme.test"]),
        ('externalId eq "okta-1"', ["ada@acme.test"]),
        ('emails[type eq "work"].value eq "ada@example.com"', ["ada@acme.test"]),
        ('emails.value eq "ada@example.org"', ["ada@acme.test"]),
        ('userName sw "ada" and active eq true', ["ada@acme.test"]),
        ('userName ew "@acme.test" and not (userName eq "ada@acme.test") and title pr', []),
        ('title co "naly" or userName eq "nobody@x.test"', ["ada@acme.test"]),
        ('meta.lastModified gt "2000-01-01T00:00:00Z" and userName eq "ada@acme.test"', ["ada@acme.test"]),
        ("active eq false", ["grace@acme.test"]),
    ],
)
def test_filters(acme, scim_for, filter_, expected):
    client, raw = scim_for(acme.org)
    client.create(new_user())
    grace = client.create(
        User(user_name="grace@acme.test", external_id="okta-2", emails=[Email(value="grace@example.net")])
    )
    client.modify(User, grace.id, PatchOp[User](operations=[PatchOperation(op="replace", path="active", value=False)]))
    result = client.query(User, query_parameters=SearchRequest(filter=filter_))
    assert sorted(u.user_name for u in (result.resources or [])) == expected
    assert result.total_results == len(expected)


def test_pagination_and_attribute_selection(acme, scim_for):
    client, raw = scim_for(acme.org)
    body = raw("GET", "Users", params={"startIndex": "2", "count": "2", "attributes": "userName,emails.value"}).json()
    total = Membership.objects.filter(org=acme.org).count()
    assert body["totalResults"] == total and body["startIndex"] == 2 and body["itemsPerPage"] == 2
    assert all(set(r) <= {"schemas", "id", "userName", "emails"} for r in body["Resources"])
    body = raw("GET", "Users", params={"count": "0"}).json()
    assert body["totalResults"] == total and body["Resources"] == []
    body = raw("GET", "Users", params={"excludedAttributes": "meta,groups"}).json()
    assert all("meta" not in r for r in body["Resources"])


def test_patch_paths_value_filters_and_azure_quirks(acme, scim_for):
    client, raw = scim_for(acme.org)
    user = client.create(new_user())
    ops = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "lovelace@example.com"},
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+44 7700 900000"},
            {"op": "remove", "path": 'emails[type eq "home"]'},
            {"op": "Replace", "value": {"name.givenName": "Augusta", "title": "Countess"}},
            {
                "op": "add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "value": "R&D",
            },
        ],
    }
    response = raw("PATCH", f"Users/{user.id}", ops)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["emails"] == [{"value": "lovelace@example.com", "type": "work", "primary": True}]
    assert {"type": "mobile", "value": "+44 7700 900000"} in body["phoneNumbers"]
    assert body["name"]["givenName"] == "Augusta" and body["title"] == "Countess"
    assert body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] == {"department": "R&D"}
    # Azure AD sends booleans as strings
    azure = {"schemas": ops["schemas"], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    assert raw("PATCH", f"Users/{user.id}", azure).json()["active"] is False
    assert (
        raw("PATCH", f"Users/{user.id}", {"schemas": ops["schemas"], "Operations": [{"op": "remove", "path": "title"}]})
        .json()
        .get("title")
        is None
    )


def test_put_replaces_everything_the_provider_owns(acme, scim_for):
    client, raw = scim_for(acme.org)
    user = client.create(new_user())
    user.title = None
    user.emails = [Email(value="ada@example.com", type="work", primary=True)]
    replaced = client.replace(user)
    assert replaced.title is None and [e.value for e in replaced.emails] == ["ada@example.com"]


def test_etags(acme, scim_for):
    client, raw = scim_for(acme.org)
    user = client.create(new_user())
    first = raw("GET", f"Users/{user.id}")
    etag = first.headers["ETag"]
    assert etag == first.json()["meta"]["version"]
    assert raw("GET", f"Users/{user.id}", headers={"If-None-Match": etag}).status_code == 304
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Lead"}],
    }
    assert raw("PATCH", f"Users/{user.id}", patch, headers={"If-Match": etag}).status_code == 200
    stale = raw("PATCH", f"Users/{user.id}", patch, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["status"] == "412"
    assert raw("DELETE", f"Users/{user.id}", headers={"If-Match": etag}).status_code == 412


def test_search_endpoints(acme, scim_for):
    client, raw = scim_for(acme.org)
    client.create(new_user())
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName eq "ada@acme.test"',
        "attributes": ["userName"],
    }
    for path in ("Users/.search", ".search"):
        body = raw("POST", path, search).json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
        assert body["totalResults"] == 1 and body["Resources"][0]["userName"] == "ada@acme.test"
        assert "emails" not in body["Resources"][0]
