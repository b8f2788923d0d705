"""No N+1 queries: every list endpoint and every portal page runs as many SQL queries with 20
items as with 2.

Each case names what to grow; ``assert_constant_queries`` warms the request up once (the first
request after signing in writes the session's last-seen time, a token's first use is recorded, the
MFA page makes its pending device), then counts the queries with a few items and with many.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import UserSession
from apps.audit.services import audit_record
from apps.certification.models import CertificationRun, CheckResult
from apps.core import clock
from apps.core.crypto import secret_hash
from apps.events.models import EventSchema, EventType
from apps.extensions.models import Extension, ExtensionVersion, SigningKey
from apps.orgs.models import (
    ApiToken,
    Domain,
    Group,
    Invitation,
    Membership,
    Organization,
    Role,
    ServiceAccount,
    Workspace,
)
from apps.runtime.models import Invocation
from tests.conftest import ApiClient
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

SMALL, LARGE = 2, 20


def assert_constant_queries(request: Callable, grow: Callable[[int], None], *, marker: str, expect_status: int = 200):
    """``request()`` runs the same number of queries with SMALL and with LARGE items (``grow(n)``
    adds n items, named ``{marker}-{i}``); on failure, print both counts and the queries run."""
    grow(SMALL)
    request()  # warm-up: one-off writes of a first request
    with CaptureQueriesContext(connection) as few:
        res = request()
    assert res.status_code == expect_status, res.status_code
    grow(LARGE - SMALL)
    with CaptureQueriesContext(connection) as many:
        res = request()
    assert res.status_code == expect_status, res.status_code
    if expect_status == 200:
        assert f"{marker}-{LARGE - 1}".encode() in res.content, "the list does not show the items added"
    if len(few) != len(many):
        listing = "\n".join(f"  {q['sql']}" for q in many.captured_queries)
        pytest.fail(
            f"{len(few)} queries with {SMALL} items, {len(many)} with {LARGE}: N+1?\nqueries with {LARGE}:\n{listing}",
            pytrace=False,
        )


# --- growing each kind of list --------------------------------------------------------------------
@dataclass
class Grower:
    """Adds ``n`` more items of one kind to ``org`` (for ``user``), numbering them across calls."""

    org: object
    user: object
    add_one: Callable
    made: int = 0

    def __call__(self, n: int) -> None:
        for _ in range(n):
            self.add_one(self, f"item-{self.made}")
            self.made += 1


def add_workspace(g, name):
    Workspace.objects.create(org=g.org, name=name, slug=name)


def add_member(g, name):
    MembershipFactory(org=g.org, role=Role.DEVELOPER, user=UserFactory(email=f"{name}@example.com", name=name))


def add_invitation(g, name):
    inviter = UserFactory(email=f"inviter-{name}@example.com")  # a different inviter each time
    Invitation.objects.create(
        org=g.org,
        email=f"{name}@example.com",
        invited_by=inviter,
        token_hash=secret_hash(secrets.token_hex(16)),
        expires_at=clock.now() + dt.timedelta(days=7),
    )


def add_member_and_invitation(g, name):
    add_member(g, name)
    add_invitation(g, name)


def add_domain(g, name):
    Domain.objects.create(org=g.org, name=f"{name}.example", verification_token=secrets.token_hex(16))


def add_service_account(g, name):
    ServiceAccount.objects.create(org=g.org, name=name, role=Role.DEVELOPER, created_by=g.user)


def add_token(g, name):
    """A token of its own service account, so a per-row account lookup would show."""
    sa = ServiceAccount.objects.create(org=g.org, name=f"{name}-account", role=Role.DEVELOPER)
    ApiToken.objects.create(
        org=g.org,
        service_account=sa,
        name=name,
        token_hash=secret_hash(secrets.token_hex(16)),
        last_four="abcd",
        scopes=["org:read"],
        created_by=g.user,
    )


def add_audit_event(g, name):
    audit_record(action="workspace.updated", org_id=g.org.pk, target_type="workspace", target_label=name)


def add_session(g, name):
    UserSession.objects.create(user=g.user, session_key=secrets.token_hex(16), user_agent=name, ip="10.0.0.1")


def add_org(g, name):
    """Another organisation the user belongs to: the org list, and the portal's org switcher."""
    MembershipFactory(org=OrganizationFactory(name=name, slug=name), user=g.user, role=Role.MEMBER)


def add_workspace_manager(g, name):
    """A member holding the manage_workspace grant on the org's first workspace."""
    from guardian.shortcuts import assign_perm

    member = MembershipFactory(org=g.org, role=Role.MEMBER, user=UserFactory(email=f"{name}@example.com", name=name))
    assign_perm("orgs.manage_workspace", member.user, Workspace.objects.filter(org=g.org).order_by("pk").first())


def _extension(org) -> Extension:
    return Extension.objects.get_or_create(org=org, key=f"{org.slug}.counted", defaults={"name": "Counted"})[0]


def add_extension(g, name):
    Extension.objects.create(org=g.org, key=f"{g.org.slug}.{name}", name=name)


def add_signing_key(g, name):
    raw = secrets.token_bytes(32)
    SigningKey.objects.create(
        org=g.org, name=name, public_key=base64.b64encode(raw).decode(), fingerprint=f"SHA256:{raw.hex()[:43]}"
    )


def add_version(g, name):
    """A version of the org's one extension, signed by a key of its own, scoping changes against the last."""
    add_signing_key(g, f"{name}-key")
    ext = _extension(g.org)
    ExtensionVersion.objects.create(
        extension=ext,
        version=f"1.0.0-{name}",
        manifest={"name": name},
        scopes=["kv:read"],
        previous=ext.versions.order_by("-pk").first(),
        scope_changes=[{"scope": "kv:read", "change": "added", "replaces": None}],
        package_sha256="0" * 64,
        package_size=1,
        signing_key=SigningKey.objects.get(org=g.org, name=f"{name}-key"),
        signature="sig",
    )


def add_invocation(g, name):
    """A recorded call into the org's one extension (through a version made on the first call)."""
    version = ExtensionVersion.objects.filter(extension=_extension(g.org)).order_by("pk").first()
    if version is None:
        add_version(g, f"{name}-v")
        version = ExtensionVersion.objects.filter(extension=_extension(g.org)).order_by("pk").first()
    Invocation.objects.create(
        version=version, module_sha256="0" * 64, export=name, outcome="ok", fuel_used=1, memory_peak_bytes=65536,
        duration_us=1, input_bytes=2, output_bytes=2, log_excerpt=f"{name} ran",
    )  # fmt: skip


def _counted_version(org) -> ExtensionVersion:
    """The first version of the org's one extension (made on first use)."""
    version = ExtensionVersion.objects.filter(extension=_extension(org)).order_by("pk").first()
    if version is None:
        add_version(Grower(org, None, add_version), "counted-v")
        version = ExtensionVersion.objects.filter(extension=_extension(org)).order_by("pk").first()
    return version


def _counted_run(org) -> CertificationRun:
    """Run 1 of the org's first version (made on first use)."""
    version = _counted_version(org)
    return CertificationRun.objects.get_or_create(version=version, number=1, defaults={"org": org})[0]


def add_run(g, name):
    """Another certification run of the org's first version, with a check of its own."""
    version = _counted_version(g.org)
    run = CertificationRun.objects.create(version=version, org=g.org, number=version.certification_runs.count() + 1)
    CheckResult.objects.create(run=run, position=0, check_id=name, check_version=1, title=name, status="passed")


def add_check(g, name):
    """Another check of the org's run 1, with a finding."""
    run = _counted_run(g.org)
    finding = {"rule": f"{name}.rule", "severity": "warning", "message": name, "location": "$", "hint": "fix"}
    CheckResult.objects.create(
        run=run, position=run.checks.count(), check_id=name, check_version=1, title=name, status="warned",
        findings=[finding], duration_ms=1,
    )  # fmt: skip


def add_review_run(g, name):
    """A run waiting for review, of a version of another publisher (its own org, extension and key)."""
    publisher = OrganizationFactory(name=f"pub-{name}", slug=f"pub-{name}")
    add_version(Grower(publisher, None, add_version), name)
    run = CertificationRun.objects.create(
        version=ExtensionVersion.objects.get(extension__org=publisher), org=publisher, number=1, status="review"
    )
    CheckResult.objects.create(run=run, position=0, check_id="sbom", check_version=1, title="SBOM", status="warned")
    CheckResult.objects.create(run=run, position=1, check_id="smoke", check_version=1, title="Smoke", status="passed")


def add_event_type(g, name):
    event_type = EventType.objects.create(name=f"{name.replace('-', '_')}.happened", description=name)
    EventSchema.objects.create(event_type=event_type, version=1, schema={"type": "object"}, fingerprint="0" * 64)


def add_group(g, name):
    """A group with a workspace and a member of its own."""
    group = Group.objects.create(
        org=g.org, display_name=name, role=Role.DEVELOPER, workspace=Workspace.objects.filter(org=g.org).first()
    )
    group.members.add(MembershipFactory(org=g.org, user=UserFactory(email=f"{name}@example.com")))


def add_console_member(g, name):
    """A SCIM-provisioned member with a second factor, a tracked session and a group of their own."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    member = MembershipFactory(
        org=g.org, role=Role.MEMBER, source="scim", user=UserFactory(email=f"{name}@example.com", name=name)
    )
    TOTPDevice.objects.create(user=member.user, name="phone", confirmed=True)
    UserSession.objects.create(user=member.user, session_key=secrets.token_hex(16), ip="10.0.0.2")
    Group.objects.create(org=g.org, display_name=f"{name}-group").members.add(member)


def _counted_group(org) -> Group:
    return Group.objects.get_or_create(org=org, display_name="Counted")[0]


def add_group_member(g, name):
    """Another member of the org's group "Counted"."""
    member = MembershipFactory(org=g.org, role=Role.MEMBER, user=UserFactory(email=f"{name}@example.com", name=name))
    _counted_group(g.org).members.add(member)


def add_identity_event(g, name):
    audit_record(action="group.updated", org_id=g.org.pk, target_type="group", target_label=name)


def both(first, second):
    def add(g, name):
        first(g, name)
        second(g, name)

    return add


# --- the API --------------------------------------------------------------------------------------
API_LISTS = {
    # path (after /api/v1/orgs/{org}) -> what to grow, and whether a token can list it
    "orgs": (add_org, False),
    "workspaces": (add_workspace, True),
    "members": (add_member, True),
    "invitations": (add_invitation, True),
    "domains": (add_domain, True),
    "service-accounts": (add_service_account, True),
    "tokens": (add_token, True),
    "audit-events": (add_audit_event, True),
    "me/sessions": (add_session, False),
    "workspaces/{first_workspace}/managers": (add_workspace_manager, True),
    "extensions": (add_extension, True),
    "extensions/{first_extension}/versions": (add_version, True),
    "extensions/{first_extension}/invocations": (add_invocation, True),
    "signing-keys": (add_signing_key, True),
    "event-types": (add_event_type, True),
    "groups": (add_group, True),
}
OUTSIDE_ORGS = ("orgs", "me/sessions", "event-types")
API_CASES = [
    pytest.param(name, kind, id=f"{kind}-{name}")
    for name, (_, token_ok) in API_LISTS.items()
    for kind in (["session", "token"] if token_ok else ["session"])
]


@pytest.mark.parametrize(("name", "kind"), API_CASES)
def test_api_list_runs_a_fixed_number_of_queries(acme, api_for, name, kind):
    # given acme's owner, signed in or holding an owner token
    if kind == "session":
        client = ApiClient()
        client.force_login(acme.owner)
    else:
        client = api_for(acme.org, role=Role.OWNER)
    add_one, _ = API_LISTS[name]
    first_workspace = Workspace.objects.filter(org=acme.org).order_by("pk").first().pk
    ids = {"first_workspace": first_workspace, "first_extension": _extension(acme.org).pk}
    path = name if name in OUTSIDE_ORGS else f"orgs/{acme.org.pk}/{name}".format(**ids)
    # then listing 20 items costs what listing 2 does
    assert_constant_queries(
        lambda: client.call("GET", path, {"limit": 100}),
        Grower(acme.org, acme.owner, add_one),
        marker="item",
    )


# --- the portal -----------------------------------------------------------------------------------
PORTAL_PAGES = {
    # page -> what grows on it (every page also shows the org switcher, which grows too)
    "org_overview": both(add_workspace, add_workspace_manager),
    "org_members": add_member_and_invitation,
    "org_domains": add_domain,
    "org_tokens": both(add_service_account, add_token),
    "org_security": None,
    "org_audit": add_audit_event,
    "sessions": add_session,
    "mfa_settings": None,
    "home": None,
    "extension_list": add_extension,
    "extension_detail": add_version,
    "invocation_list": add_invocation,
    "signing_key_list": add_signing_key,
    "event_catalog": add_event_type,
    "version_detail": add_run,
    "certification_run": add_check,
    "staff_certification_queue": add_review_run,
    "staff_certification_run": add_check,
    "org_console": None,
    "org_console_members": add_console_member,
    "org_console_groups": add_group,
    "org_console_group": add_group_member,
    "org_console_audit": add_identity_event,
}
ORG_PAGES = {
    "extension_list", "signing_key_list", "extension_detail", "invocation_list", "version_detail", "certification_run",
}  # fmt: skip
STAFF_PAGES = {"staff_certification_queue", "staff_certification_run"}  # acme is made the platform organisation


@pytest.mark.parametrize("page", list(PORTAL_PAGES))
def test_portal_page_runs_a_fixed_number_of_queries(acme, page):
    # given alice, acme's owner, signed in
    client = ApiClient()
    client.force_login(acme.owner)
    kwargs = {"org_id": acme.org.pk} if page.startswith("org_") or page in ORG_PAGES else {}
    if page in ("extension_detail", "invocation_list", "version_detail"):
        kwargs["extension_id"] = _extension(acme.org).pk
    if page == "version_detail":
        kwargs["version_id"] = _counted_version(acme.org).pk
    if page in ("certification_run", "staff_certification_run"):
        kwargs["run_id"] = _counted_run(acme.org).pk
    if page == "org_console_group":
        kwargs["group_id"] = _counted_group(acme.org).pk
    if page in STAFF_PAGES:
        Organization.objects.filter(pk=acme.org.pk).update(is_platform=True)
    url = reverse(page, kwargs=kwargs)
    add_one = both(PORTAL_PAGES[page], add_org) if PORTAL_PAGES[page] else add_org
    # then the page costs as much with 20 items (and 20 more organisations) as with 2
    assert_constant_queries(
        lambda: client.get(url),
        Grower(acme.org, acme.owner, add_one),
        marker="item",
        expect_status=302 if page == "home" else 200,
    )


def test_home_redirects_to_the_first_organisation(acme):
    # (the page above only redirects; make sure it still does once there are many organisations)
    client = ApiClient()
    client.force_login(acme.owner)
    Grower(acme.org, acme.owner, add_org)(LARGE)
    res = client.get("/")
    assert res.status_code == 302
    first = Membership.objects.filter(user=acme.owner).order_by("org__name").first()
    assert res["Location"].endswith(f"/orgs/{first.org_id}/")
