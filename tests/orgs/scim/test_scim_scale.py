"""Lists and searches stay cheap with thousands of members: without a filter (or with one the
database can answer) the page is counted and cut in SQL and only its documents are built; other
filters are evaluated on a bounded number of rows (more is 400 ``tooMany``)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from apps.core import clock
from apps.orgs.models import Membership, MemberSource, Role
from apps.orgs.scim import views
from tests.orgs.scim.conftest import scim_token

pytestmark = pytest.mark.django_db
MEMBERS = 3000
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@pytest.fixture
def crowded(acme):
    """acme with MEMBERS more SCIM members, made in bulk; every third one deactivated."""
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(email=f"person{i:05d}@acme.test", name=f"Person {i}", password="!") for i in range(MEMBERS)]
    )
    now = clock.now()
    Membership.objects.bulk_create(
        [
            Membership(
                org=acme.org,
                user=user,
                role=Role.MEMBER,
                source=MemberSource.SCIM,
                external_id=f"ext-{i:05d}" if i % 2 else "",
                scim_attributes={"displayName": f"Person {i}", "title": "Engineer" if i % 5 == 0 else "Analyst"},
                deactivated_at=now if i % 3 == 0 else None,
                created_at=now,
                updated_at=now,
            )
            for i, user in enumerate(users)
        ]
    )
    return acme


@pytest.fixture
def scim(crowded):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {scim_token(crowded.org)}")

    def get(path: str, **params):
        response = client.get(f"/scim/v2/{path}", params)
        return response.status_code, response.json()

    def post(path: str, body: dict):
        response = client.post(f"/scim/v2/{path}", body, content_type="application/scim+json")
        return response.status_code, response.json()

    get.post = post
    return get


@pytest.fixture
def built(monkeypatch):
    """The User documents the views build (a page should build only its own)."""
    calls = []
    real = views.user_doc

    def counting(membership, base):
        calls.append(membership.pk)
        return real(membership, base)

    monkeypatch.setattr(views, "user_doc", counting)
    return calls


def test_a_page_of_a_large_organisation_costs_a_bounded_number_of_queries(
    crowded, scim, django_assert_max_num_queries, built
):
    total = Membership.objects.filter(org=crowded.org).count()
    with django_assert_max_num_queries(12) as captured:
        status, body = scim("Users", count="1")
    assert status == 200 and body["totalResults"] == total and body["itemsPerPage"] == 1
    # one document built; the rows read are the page's (LIMIT in SQL), the total from COUNT(*)
    assert len(built) == 1
    assert any("LIMIT 1" in q["sql"] for q in captured.captured_queries)
    assert any("COUNT(*)" in q["sql"] for q in captured.captured_queries)
    first = Membership.objects.filter(org=crowded.org).order_by("pk").first()
    assert body["Resources"][0]["id"] == first.pk
    # a later page, and count=0
    with django_assert_max_num_queries(12):
        status, body = scim("Users", startIndex="2001", count="5")
    expected = list(Membership.objects.filter(org=crowded.org).order_by("pk").values_list("pk", flat=True)[2000:2005])
    assert [r["id"] for r in body["Resources"]] == expected and body["startIndex"] == 2001
    status, body = scim("Users", count="0")
    assert body["totalResults"] == total and body["Resources"] == []


@pytest.mark.parametrize(
    ("filter_", "expected", "fixture_members"),
    [
        ("active eq false", lambda i: i % 3 == 0, False),
        ("active eq true", lambda i: i % 3 != 0, True),
        ('userName sw "PERSON001"', lambda i: 100 <= i < 200, False),
        ('userName co "son0299" or userName ew "02998@acme.test"', lambda i: 2990 <= i < 3000, False),
        ('externalId sw "ext-0001"', lambda i: 10 <= i < 20 and i % 2, False),
        ('displayName co "son 12" and active ne false', lambda i: str(i).startswith("12") and i % 3 != 0, False),
        ('not (userName sw "person0") and userName ew "@acme.test"', lambda i: False, True),
    ],
)
def test_filters_the_database_answers_are_paginated_in_sql(
    crowded, scim, django_assert_max_num_queries, built, filter_, expected, fixture_members
):
    # fixture_members: the filter also selects acme's own five members (alice@acme.test, …)
    extra = Membership.objects.filter(org=crowded.org).count() - MEMBERS if fixture_members else 0
    want = sum(1 for i in range(MEMBERS) if expected(i))
    with django_assert_max_num_queries(12):
        status, body = scim("Users", filter=filter_, count="3")
    assert status == 200, body
    if "externalId sw" in filter_ and connection.vendor != "postgresql":
        # SQLite's LIKE ignores case: a case-exact sw there narrows in SQL and is checked in Plaza
        assert len(built) == want
    else:
        assert len(built) == body["itemsPerPage"]  # documents for the page only
    assert body["totalResults"] == want + extra
    assert body["itemsPerPage"] == min(3, want + extra)


def test_other_filters_are_evaluated_on_a_bounded_number_of_rows(crowded, scim, monkeypatch):
    # narrowed by the database first, then evaluated: the right answer
    status, body = scim("Users", filter='userName sw "person000" and title eq "engineer"', count="100")
    assert status == 200 and body["totalResults"] == 20  # person00000 … person00095, every fifth
    # beyond the cap: 400 tooMany (RFC 7644 §3.4.2.4), also on /.search
    monkeypatch.setattr(views, "MAX_FILTERED_ROWS", 1000)
    status, body = scim("Users", filter='title eq "Engineer"')
    assert status == 400 and body["scimType"] == "tooMany"
    status, body = scim.post(".search", {"schemas": [SEARCH], "filter": 'title eq "Engineer"'})
    assert status == 400 and body["scimType"] == "tooMany"
    # narrowed below the cap, it is answered
    status, body = scim("Users", filter='title eq "Engineer" and userName sw "person01"', count="1")
    assert status == 200 and body["totalResults"] == 200 and len(body["Resources"]) == 1


def test_root_search_pages_across_users_and_groups(crowded, scim):
    status, users = scim("Users", count="0")
    status, body = scim.post(".search", {"schemas": [SEARCH], "startIndex": users["totalResults"], "count": 3})
    assert status == 200 and body["totalResults"] == users["totalResults"]  # no groups yet
    assert len(body["Resources"]) == 1 and body["Resources"][0]["meta"]["resourceType"] == "User"
