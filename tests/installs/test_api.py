"""The installations API as a whole: pagination, a fixed number of queries per list, other tenants'
installations, the publisher's view, and inputs that must never become server errors."""

from __future__ import annotations

import pytest

from apps.installs.models import Installation, InstallationVersion
from apps.orgs.models import Role
from tests.installs.support import install, installed, session
from tests.orgs.test_authorization import assert_error
from tests.test_query_counts import Grower, assert_constant_queries


@pytest.fixture
def alice_api(acme):
    return session(acme.owner)


def _grow_installations(vendor, org, user):
    def add(g, name):
        version = vendor.release(name, "1.0.0")
        installed(session(user), org, version)

    return add


def test_installations_are_paginated_newest_first(acme, vendor, alice_api):
    made = [installed(alice_api, acme.org, vendor.release(f"ext-{n}", "1.0.0")).pk for n in range(3)]
    first = alice_api.call("GET", f"orgs/{acme.org.pk}/installations", {"limit": 2}).json()
    assert [row["id"] for row in first["data"]] == made[::-1][:2]
    rest = alice_api.call("GET", f"orgs/{acme.org.pk}/installations", {"limit": 2, "cursor": first["next_cursor"]})
    assert [row["id"] for row in rest.json()["data"]] == made[:1]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "not-a-cursor"}])
def test_bad_pagination_is_a_client_error(acme, alice_api, query):
    assert_error(alice_api.call("GET", f"orgs/{acme.org.pk}/installations", query), 400)


@pytest.mark.parametrize("kind", ["session", "token"])
def test_the_installations_list_runs_a_fixed_number_of_queries(acme, vendor, api_for, kind):
    client = session(acme.owner) if kind == "session" else api_for(acme.org, role=Role.OWNER)
    assert_constant_queries(
        lambda: client.call("GET", f"orgs/{acme.org.pk}/installations", {"limit": 100}),
        Grower(acme.org, acme.owner, _grow_installations(vendor, acme.org, acme.owner)),
        marker="item",
    )


def test_the_publishers_list_runs_a_fixed_number_of_queries(vendor, api_for):
    # the publisher's extension grows installations across many organisations
    from tests.conftest import make_tenant

    version = vendor.release()

    def add(g, name):
        tenant = make_tenant(name, f"owner@{name}.test")
        installed(session(tenant.owner), tenant.org, version)

    client = session(vendor.tenant.owner)
    assert_constant_queries(
        lambda: client.call(
            "GET", f"orgs/{vendor.org.pk}/extensions/{version.extension_id}/installations", {"limit": 100}
        ),
        Grower(vendor.org, vendor.tenant.owner, add),
        marker="Item",
    )


def test_the_history_runs_a_fixed_number_of_queries(acme, vendor, alice_api):
    first = vendor.release(version="1.0.0")
    installation = installed(alice_api, acme.org, first, update_policy="pinned")
    counter = iter(range(1, 100))

    def add(g, name):
        # a pre-release named after the item (on beta: stable takes no pre-releases)
        version = vendor.release(version=f"1.{next(counter)}.0-{name}", channel="beta")
        InstallationVersion.objects.create(installation=installation, version=version, action="update", by=acme.owner)

    assert_constant_queries(
        lambda: alice_api.call("GET", f"orgs/{acme.org.pk}/installations/{installation.pk}/history", {"limit": 100}),
        Grower(acme.org, acme.owner, add),
        marker="item",
    )


def test_the_publisher_sees_installations_of_its_extension(acme, globex, vendor):
    version = vendor.release()
    mine = installed(session(acme.owner), acme.org, version)
    installed(session(globex.owner), globex.org, version)
    rows = (
        session(vendor.tenant.owner)
        .call("GET", f"orgs/{vendor.org.pk}/extensions/{version.extension_id}/installations")
        .json()["data"]
    )
    assert {row["org_name"] for row in rows} == {"Acme", "Globex"}
    assert {row["id"] for row in rows} >= {mine.pk}
    assert all(row["sandbox"] is False and row["version"]["version"] == "1.0.0" for row in rows)
    # a member of the publisher without a builder role may not look
    member = session(vendor.tenant.user(Role.MEMBER))
    res = member.call("GET", f"orgs/{vendor.org.pk}/extensions/{version.extension_id}/installations")
    assert_error(res, 403, "role")


def test_another_organisations_installation_is_not_found(acme, globex, vendor, alice_api):
    # given acme's installation
    installation = installed(alice_api, acme.org, vendor.release())
    charlie = session(globex.owner)
    # then globex's owner finds it neither under globex nor under acme
    for org_id in (globex.org.pk, acme.org.pk):
        base = f"orgs/{org_id}/installations/{installation.pk}"
        for method, tail, body in [
            ("GET", "", None), ("PATCH", "", {"update_policy": "pinned"}), ("DELETE", "", None),
            ("PUT", "/config", {"config": {}}), ("GET", "/update", None), ("POST", "/update", {}),
            ("POST", "/rollback", {"version_id": installation.version_id}), ("GET", "/history", None),
            ("GET", "/cleanup-report", None),
        ]:  # fmt: skip
            assert_error(charlie.call(method, base + tail, body), 404, "not_found")
    installation.refresh_from_db()
    assert (installation.status, installation.update_policy) == ("active", "auto")


def test_lists_show_only_the_organisations_own_installations(acme, globex, vendor, alice_api):
    version = vendor.release()
    mine = installed(alice_api, acme.org, version)
    installed(session(globex.owner), globex.org, version)
    rows = alice_api.call("GET", f"orgs/{acme.org.pk}/installations").json()["data"]
    assert [row["id"] for row in rows] == [mine.pk]


@pytest.mark.parametrize(
    "installation_id",
    ["garbage", "inst_01ARZ3NDEKTSV4RRFFQ69G5FAV", "ext_01ARZ3NDEKTSV4RRFFQ69G5FAV", "inst_x' OR '1'='1", "İnst_Ü"],
)
def test_malformed_installation_ids_are_not_found(acme, alice_api, installation_id):
    res = alice_api.call("GET", f"orgs/{acme.org.pk}/installations/{installation_id}")
    assert_error(res, 404)


def test_deeply_nested_or_odd_config_is_a_client_error(acme, vendor, alice_api):
    from tests.installs.conftest import CONFIG_SCHEMA

    version = vendor.release(config_schema=CONFIG_SCHEMA)
    nested: dict = {}
    node = nested
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    for config in (nested, {"threshold": 1e308}, {"threshold": 10**40}, {"tag_prefix": "\u202e" * 5}):
        res = install(alice_api, acme.org, version, config=config)
        assert res.status_code < 500, res.content
    assert Installation.objects.filter(org=acme.org).count() <= 1
