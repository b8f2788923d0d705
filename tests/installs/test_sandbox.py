"""Sandbox tenants: every publisher gets one with its first extension; its members reach it with
their role in the publisher (and under the publisher's security policy); it cannot publish; the
API names it; the org switcher shows it; existing publishers get one from the backfill."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.errors import Conflict
from apps.extensions import services as ext_services
from apps.extensions.models import Extension
from apps.orgs.models import Organization, Role, Workspace
from apps.orgs.services import sandbox as sandbox_module
from apps.orgs.services import sandbox_org_ensure
from tests.factories import OrganizationFactory
from tests.installs.conftest import ROBOT
from tests.installs.support import install, session
from tests.orgs.test_authorization import assert_error

backfill = importlib.import_module("apps.installs.migrations.0002_backfill_sandboxes")


def sandbox_of(org) -> Organization:
    return Organization.objects.get(sandbox_of=org)


# --- made with the first extension ----------------------------------------------------------------
def test_the_first_extension_gives_the_publisher_a_sandbox(vendor):
    # given a publisher without extensions: no sandbox
    assert not Organization.objects.filter(sandbox_of=vendor.org).exists()
    # when it creates its first extension
    vendor.extension()
    # then it has a sandbox tenant, named after it, with a Default workspace, audited in both
    sandbox = sandbox_of(vendor.org)
    assert sandbox.name == "Vendor sandbox" and sandbox.slug == "vendor-sandbox"
    assert list(Workspace.objects.filter(org=sandbox).values_list("slug", flat=True)) == ["default"]
    assert AuditEvent.objects.filter(org_id=vendor.org.pk, action="org.sandbox_created", target_id=sandbox.pk).exists()
    assert AuditEvent.objects.filter(org_id=sandbox.pk, action="org.created").exists()
    # and it has no members of its own
    assert not sandbox.memberships.exists()


def test_more_extensions_keep_the_one_sandbox(vendor):
    vendor.extension("one")
    vendor.extension("two")
    assert Organization.objects.filter(sandbox_of=vendor.org).count() == 1
    assert sandbox_org_ensure(org=vendor.org) == sandbox_of(vendor.org)


def test_a_taken_slug_gets_a_suffix(vendor):
    OrganizationFactory(slug="vendor-sandbox", name="Someone Else")
    vendor.extension()
    slug = sandbox_of(vendor.org).slug
    assert slug.startswith("vendor-sandbox-") and len(slug) <= 60


def test_a_long_name_and_slug_still_fit(db):
    org = OrganizationFactory(slug="p" * 60, name="N" * 100)
    sandbox = sandbox_org_ensure(org=org)
    assert len(sandbox.slug) <= 60 and sandbox.slug.endswith("-sandbox")
    assert len(sandbox.name) <= 100 and sandbox.name.endswith(" sandbox")


def test_ensure_loses_a_race_gracefully(vendor, monkeypatch):
    # given the sandbox exists, but this request looked before it did (twice: before and after the lock)
    existing = sandbox_org_ensure(org=vendor.org)
    looks = iter([None, None])
    real = sandbox_module.sandbox_of
    monkeypatch.setattr(sandbox_module, "sandbox_of", lambda org: next(looks, real(org)))
    # when it tries to create one, the database refuses the second sandbox: it answers the first
    assert sandbox_org_ensure(org=vendor.org) == existing
    assert Organization.objects.filter(sandbox_of=vendor.org).count() == 1


def test_a_sandbox_cannot_publish_nor_have_a_sandbox(vendor):
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    with pytest.raises(Conflict) as caught:
        ext_services.extension_create(principal=ROBOT, org=sandbox, name="sneaky")
    assert caught.value.code == "sandbox_cannot_publish"
    with pytest.raises(Conflict):
        sandbox_org_ensure(org=sandbox)
    assert not Extension.objects.filter(org=sandbox).exists()
    assert not Organization.objects.filter(sandbox_of=sandbox).exists()


def test_a_sandbox_cannot_publish_over_the_api(vendor):
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    res = session(vendor.tenant.owner).call("POST", f"orgs/{sandbox.pk}/extensions", {"name": "sneaky"})
    assert_error(res, 409, "sandbox_cannot_publish")


# --- reaching it ----------------------------------------------------------------------------------
def test_the_api_names_the_sandbox_to_the_publishers_members(vendor):
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    res = session(vendor.tenant.user(Role.MEMBER)).call("GET", f"orgs/{vendor.org.pk}/sandbox")
    assert res.status_code == 200
    assert res.json() == {
        **res.json(),
        "id": sandbox.pk,
        "slug": sandbox.slug,
        "name": sandbox.name,
        "sandbox_of": vendor.org.pk,
    }


def test_an_organisation_that_publishes_nothing_has_no_sandbox(acme, vendor):
    assert_error(session(acme.owner).call("GET", f"orgs/{acme.org.pk}/sandbox"), 404, "no_sandbox")
    assert not Organization.objects.filter(sandbox_of=acme.org).exists()
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    res = session(vendor.tenant.owner).call("GET", f"orgs/{sandbox.pk}/sandbox")
    assert_error(res, 404, "no_sandbox")


def test_a_publisher_missed_by_the_backfill_gets_its_sandbox_when_asked(vendor):
    Extension.objects.create(org=vendor.org, key="vendor.legacy", name="Legacy")
    res = session(vendor.tenant.owner).call("GET", f"orgs/{vendor.org.pk}/sandbox")
    assert res.status_code == 200 and res.json()["id"] == sandbox_of(vendor.org).pk


@pytest.mark.parametrize("role", list(Role.values))
def test_publisher_members_act_in_the_sandbox_with_their_publisher_role(vendor, role):
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    client = session(vendor.tenant.user(role))
    assert client.call("GET", f"orgs/{sandbox.pk}").status_code == 200
    res = client.call("GET", f"orgs/{sandbox.pk}/install-rules")
    if role in (Role.OWNER, Role.ADMIN):
        assert res.status_code == 200
    else:
        assert_error(res, 403, "role")


def test_outsiders_and_publisher_tokens_do_not_reach_the_sandbox(acme, vendor, api_for):
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    assert_error(session(acme.owner).call("GET", f"orgs/{sandbox.pk}"), 404, "not_found")
    assert_error(session(acme.owner).call("GET", f"orgs/{vendor.org.pk}/sandbox"), 404, "not_found")
    # a publisher's service account belongs to the publisher only
    token = api_for(vendor.org, role=Role.OWNER)
    assert_error(token.call("GET", f"orgs/{sandbox.pk}"), 404, "not_found")


def test_a_deactivated_publisher_member_loses_the_sandbox(vendor):
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    member = vendor.tenant.user(Role.DEVELOPER)
    member.memberships.update(deactivated_at="2026-01-01T00:00:00Z")
    assert_error(session(member).call("GET", f"orgs/{sandbox.pk}"), 404, "not_found")


def test_the_publishers_security_policy_holds_in_its_sandbox(vendor):
    # given the publisher allows only its office network (the test client is 127.0.0.1)
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    vendor.org.ip_allowlist = ["10.0.0.0/8"]
    vendor.org.save(update_fields=["ip_allowlist"])
    # then its sandbox refuses the same caller: the sandbox is no way around the policy
    assert_error(session(vendor.tenant.owner).call("GET", f"orgs/{sandbox.pk}"), 403, "ip_not_allowed")


def test_the_sandbox_installs_its_publishers_uncertified_versions_only_there(acme, vendor):
    # given a draft (uncertified) version
    draft = vendor.release(certified=False)
    sandbox = sandbox_of(vendor.org)
    owner = session(vendor.tenant.owner)
    # then the sandbox installs it, and a customer cannot
    res = install(owner, sandbox, draft, version_id=draft.pk)
    assert res.status_code == 201, res.content
    assert_error(install(session(acme.owner), acme.org, draft, version_id=draft.pk), 409, "version_not_installable")


# --- the org switcher -----------------------------------------------------------------------------
def test_the_org_switcher_lists_the_sandbox_after_its_publisher(vendor, acme):
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    res = session(vendor.tenant.owner).get(reverse("org_overview", kwargs={"org_id": vendor.org.pk}))
    html = res.content.decode()
    assert f'value="{sandbox.pk}"' in html and "↳ Vendor sandbox" in html
    assert html.index(f'value="{vendor.org.pk}"') < html.index(f'value="{sandbox.pk}"')
    # someone else's switcher does not
    other = session(acme.owner).get(reverse("org_overview", kwargs={"org_id": acme.org.pk}))
    assert sandbox.pk not in other.content.decode()


def test_switching_to_the_sandbox_opens_its_overview_with_a_marker_and_the_console(vendor, acme):
    vendor.extension()
    sandbox = sandbox_of(vendor.org)
    client = session(vendor.tenant.user(Role.ADMIN))
    res = client.get(reverse("org_switch"), {"org": sandbox.pk})
    assert res.status_code == 302 and res["Location"] == reverse("org_overview", kwargs={"org_id": sandbox.pk})
    page = client.get(res["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert ">Sandbox</span>" in html
    assert f'href="{reverse("org_console", kwargs={"org_id": sandbox.pk})}"' in html
    # an outsider cannot switch there
    res = session(acme.owner).get(reverse("org_switch"), {"org": sandbox.pk})
    assert res["Location"] == reverse("home")


# --- the backfill ---------------------------------------------------------------------------------
def test_the_backfill_gives_existing_publishers_a_sandbox_once(db):
    publisher = OrganizationFactory(slug="oldco", name="Old Co")
    Extension.objects.create(org=publisher, key="oldco.tagger", name="Tagger")
    customer = OrganizationFactory(slug="buyer", name="Buyer")
    backfill.forwards(django_apps, None)
    backfill.forwards(django_apps, None)
    sandbox = sandbox_of(publisher)
    assert sandbox.name == "Old Co sandbox" and sandbox.slug == "oldco-sandbox"
    assert Workspace.objects.filter(org=sandbox, slug="default").count() == 1
    assert not Organization.objects.filter(sandbox_of=customer).exists()
    assert not Organization.objects.filter(sandbox_of=sandbox).exists()
    assert Organization.objects.filter(sandbox_of__isnull=False).count() == 1
